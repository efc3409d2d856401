//! Calls on responses OpenAI stored (`Route::StoredResponse`: `GET`/`DELETE
//! /v1/responses/{id}`, `POST …/cancel`, `GET …/input_items`). Stored state lives with the
//! OpenAI organisation that made the response, so these go as they came to an OpenAI provider
//! that answers the Responses API itself — never translated, since no other provider holds
//! the state. They name no model and generate nothing: no admission, no metering (a retrieved
//! response's `usage` was charged when it was made), cost 0 in the audit record.
//!
//! Where: the key's models in config order (or only the one `x-tollgate-model` names), each
//! deployment whose provider answers Responses natively, one per provider. They are asked in
//! that order while they answer 404 (an id lives with one organisation; a key reaching two
//! asks both), and the last answer goes to the client as it came.

use super::relay::relay;
use super::*;
use crate::dialect::responses::stored_call;

/// The header that names the model whose providers a stored-response call goes to.
const MODEL_HEADER: &str = "x-tollgate-model";

pub(super) async fn stored_response(
    w: &Worker,
    snap: &Snapshot,
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    key: KeyId,
) -> Result<(), GatewayError> {
    targets(snap, c, key)?;
    let path = c.head.path(&c.buf);
    let Some((id, call)) = stored_call(path) else {
        return Err(GatewayError::new(ErrorKind::NotFound, "No such response."));
    };
    let api = crate::mock::Api::StoredResponse {
        id: String::from_utf8_lossy(id).into_owned(),
        call,
        delete: c.head.method == Method::Delete,
    };
    c.ex.pair = None;
    for i in 0..c.cands.len() {
        let (m, d) = c.cands[i];
        ctx.model = Some(m);
        ctx.deployment = Some(d);
        upstream_request(snap, c, ctx, d);
        let call = Call {
            api: api.clone(),
            stream: false,
            include_usage: false,
            max_tokens: None,
            body_len: c.body.len(),
            serial: ctx.serial & SERIAL_MASK,
            created: ctx.start_unix_us / 1_000_000,
            texts: Vec::new(),
        };
        let attempts = Cell::new(ctx.attempts);
        let addrs = w.addrs.borrow().clone();
        let egress = w.egress(&addrs, &attempts);
        let r = forward(&egress, snap, &mut c.ex, &mut c.buf, &call, d).await;
        ctx.attempts = attempts.get();
        let (mut up, us) = r?;
        ctx.upstream_us += us;
        if c.ex.uhead.status == 404 && i + 1 < c.cands.len() {
            continue;
        }
        return relay(w, snap, io, c, ctx, &mut up).await;
    }
    Err(GatewayError::new(ErrorKind::NotFound, "No such response."))
}

/// Fills `c.cands` with where to ask, in order, or says why there is nowhere.
fn targets(snap: &Snapshot, c: &mut Conn, key: KeyId) -> Result<(), GatewayError> {
    let k = &snap.keys[key.0 as usize];
    let named = match c.head.header(&c.buf, MODEL_HEADER) {
        None => None,
        Some(name) => {
            let m = snap.model(name).ok_or_else(|| {
                GatewayError::new(
                    ErrorKind::ModelNotFound,
                    format!(
                        "The model `{}` (`{MODEL_HEADER}`) does not exist.",
                        String::from_utf8_lossy(name)
                    ),
                )
            })?;
            if !k.allows(m) {
                return Err(GatewayError::new(
                    ErrorKind::ModelNotAllowed,
                    format!(
                        "This key may not use the model `{}`.",
                        snap.models[m.0 as usize].name
                    ),
                ));
            }
            Some(m)
        }
    };
    c.cands.clear();
    let models = (0..snap.models.len() as u32)
        .map(ModelId)
        .filter(|&m| named.map_or(k.allows(m), |n| n == m));
    for m in models {
        for &d in &snap.models[m.0 as usize].deployments {
            let dep = snap.deployment(d);
            let native = dep
                .dialect_for(Dialect::Responses)
                .is_none_or(|p| p == Dialect::Responses);
            let new = !c
                .cands
                .iter()
                .any(|&(_, e)| snap.deployment(e).provider == dep.provider);
            if native && new {
                c.cands.push((m, d));
            }
        }
    }
    if c.cands.is_empty() {
        let whose = match named {
            Some(m) => format!("the model `{}`", snap.models[m.0 as usize].name),
            None => "any model this key may use".to_owned(),
        };
        return Err(GatewayError::new(
            ErrorKind::InvalidBody,
            format!(
                "Stored responses live with OpenAI, and no OpenAI provider answering the \
                 Responses API serves {whose}; this gateway keeps no responses of its own."
            ),
        ));
    }
    Ok(())
}

/// The request for deployment `d` in `c.ex.ureq`: the client's method, the call's path under
/// the provider's base path, the provider's query then the client's, the client's headers
/// (its credential replaced by the provider's) and body.
fn upstream_request(snap: &Snapshot, c: &mut Conn, ctx: &RequestCtx, d: DeploymentId) {
    let provider = snap.provider(snap.deployment(d).provider);
    c.ex.ureq_tail = None;
    let out = &mut c.ex.ureq;
    out.clear();
    let Some(ep) = &provider.endpoint else {
        // Built-in mock: answered in `forward` from the call.
        return;
    };
    let path = c.head.path(&c.buf);
    // The route is `/v1/responses/…`: the call's path is what follows `/v1`.
    let call = &path[b"/v1".len()..];
    out.extend_from_slice(match c.head.method {
        Method::Delete => b"DELETE ".as_slice(),
        Method::Post => b"POST ",
        _ => b"GET ",
    });
    out.extend_from_slice(ep.base_path.as_bytes());
    out.extend_from_slice(call);
    out.extend_from_slice(provider.query.as_bytes());
    if let Some(q) = c.head.query(&c.buf).filter(|q| !q.is_empty()) {
        out.push(if provider.query.is_empty() {
            b'?'
        } else {
            b'&'
        });
        out.extend_from_slice(q);
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    upstream_headers(out, snap, &c.head, &c.buf, d, false);
    trace_header(out, ctx);
    let body = &c.buf[c.body.clone()];
    if !body.is_empty() || c.head.method == Method::Post {
        write::header_u64(out, "content-length", body.len() as u64);
    }
    write::end_head(out);
    out.extend_from_slice(body);
}
