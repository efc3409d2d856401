//! The semantic cache's embeddings, asked of the gateway itself: a `POST /v1/embeddings` over
//! loopback to the gateway's own listener, with the client's key, so the call is routed,
//! admitted, metered and failed over like any other call (it has its own audit record and
//! counts against the key's budgets and limits). A gateway listening with TLS has no
//! plaintext door to knock on: there the semantic cache is skipped (the config says so).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::*;

/// A ready-to-send embeddings request and where to send it.
#[derive(Debug)]
pub(super) struct EmbedCall {
    addr: SocketAddr,
    bytes: Vec<u8>,
}

/// Answers larger than this are refused (a 4096-dimension vector is ~80 KB of JSON).
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// The request for `text`'s embedding by `model`, sent with the client's `key`.
pub(super) fn request(
    snap: &Snapshot,
    listen: SocketAddr,
    key: &[u8],
    model: &str,
    text: &str,
) -> Option<EmbedCall> {
    if snap.server.tls.is_some() {
        return None;
    }
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let mut body = Vec::with_capacity(text.len() + model.len() + 32);
    body.extend_from_slice(b"{\"model\":");
    crate::json::string(&mut body, model.as_bytes());
    body.extend_from_slice(b",\"input\":");
    crate::json::string(&mut body, text.as_bytes());
    body.push(b'}');
    let mut bytes = Vec::with_capacity(body.len() + 256);
    bytes.extend_from_slice(b"POST /v1/embeddings HTTP/1.1\r\nhost: tollgate\r\n");
    write::header(&mut bytes, "authorization", &[b"Bearer ", key].concat());
    write::header(&mut bytes, "content-type", b"application/json");
    write::header(&mut bytes, "x-tollgate-purpose", b"semantic-cache");
    write::header_u64(&mut bytes, "content-length", body.len() as u64);
    write::header(&mut bytes, "connection", b"close");
    write::end_head(&mut bytes);
    bytes.extend_from_slice(&body);
    Some(EmbedCall { addr, bytes })
}

/// Sends the call and returns the answer's body when it is a 200.
pub(super) async fn call(snap: &Snapshot, call: EmbedCall) -> Option<Vec<u8>> {
    let mut s = crate::upstream::connect(call.addr, snap.upstream.connect)
        .await
        .ok()?;
    let (r, _) = s.write_all(call.bytes).await;
    r.ok()?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut head = http1::ResponseHead::new();
    let limits = snap.limits.head;
    // The head.
    let head_len = loop {
        let (r, b) = read_more(&mut s, buf, 16 * 1024).await;
        buf = b;
        if r.ok()? == 0 {
            return None;
        }
        if let Some(n) = head.parse(&buf, &limits, Method::Post).ok()? {
            break n;
        }
    };
    if head.status != 200 {
        return None;
    }
    let mut decoder = BodyDecoder::new(head.body, MAX_ANSWER_BYTES as u64).ok()?;
    let mut body = Vec::new();
    let mut pos = head_len;
    loop {
        let step = decoder.decode(&buf[pos..]).ok()?;
        body.extend_from_slice(&buf[pos + step.data.start..pos + step.data.end]);
        pos += step.consumed;
        if step.done {
            return Some(body);
        }
        if step.consumed == 0 {
            if buf.len() > MAX_ANSWER_BYTES * 2 {
                return None;
            }
            let (r, b) = read_more(&mut s, buf, 16 * 1024).await;
            buf = b;
            if r.ok()? == 0 {
                decoder.finish_eof().ok()?;
                return Some(body);
            }
        }
    }
}

/// The first embedding of an OpenAI embeddings answer, scaled to unit length.
pub(super) fn vector(body: &[u8], scratch: &mut crate::json::Scratch) -> Option<Vec<f32>> {
    #[derive(serde::Deserialize)]
    struct Answer {
        data: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        embedding: Vec<f32>,
    }
    let a: Answer = scratch.parse(body)?;
    let mut v = a.data.into_iter().next()?.embedding;
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !norm.is_normal() {
        return None;
    }
    for x in &mut v {
        *x /= norm;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_unit_length() {
        let mut s = crate::json::Scratch::default();
        let v = vector(br#"{"data":[{"embedding":[3,4]}]}"#, &mut s).unwrap();
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert!(vector(br#"{"data":[{"embedding":[0,0]}]}"#, &mut s).is_none());
        assert!(vector(br#"{"data":[]}"#, &mut s).is_none());
    }
}
