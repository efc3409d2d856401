//! The forward phase: the upstream request goes out over a pooled connection (or to the
//! built-in mock, which renders its answer in memory), and the response head comes back.
//!
//! A pooled connection that turns out dead before answering (the provider closed it while it
//! was idle) is replaced by a fresh one once: nothing has reached the client, so that is safe.
//! Errors say whether another attempt could succeed (`GatewayError::retry`), which the
//! failover decision reads.

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::rc::Rc;
use std::time::Instant;

use super::Upstream;
use super::dns::AddrTable;
use super::pool::{Checkout, Pool};
use crate::config::{DeploymentId, ProviderKind, Snapshot};
use crate::error::{ErrorKind, GatewayError};
use crate::http1::{self, Method, ResponseHead};
use crate::mock;
use crate::translate::Pair;

/// Room read for a response head at a time.
const HEAD_READ_BYTES: usize = 4 * 1024;
/// Limits on a provider's response head (generous: providers send many headers).
const UPSTREAM_HEAD_LIMITS: http1::Limits = http1::Limits {
    max_head_bytes: 64 * 1024,
    max_headers: http1::MAX_HEADERS_HARD,
};

#[derive(Debug)]
/// One exchange with a provider: the request to send and its response as it arrives.
pub struct Exchange {
    /// Upstream request bytes.
    pub ureq: Vec<u8>,
    /// The end of the upstream request, sent from `Conn::buf` itself (a large body's tail
    /// after the last edited span): not copied into `ureq`.
    pub ureq_tail: Option<Range<usize>>,
    /// Upstream response bytes.
    pub ubuf: Vec<u8>,
    pub uhead: ResponseHead,
    /// The request was translated for a provider of another dialect: its answer is too.
    pub pair: Option<Pair>,
}

impl Default for Exchange {
    fn default() -> Self {
        Exchange {
            ureq: Vec::new(),
            ureq_tail: None,
            ubuf: Vec::new(),
            uhead: ResponseHead::new(),
            pair: None,
        }
    }
}

/// What every attempt of a request sends, and what the built-in mock needs to answer it.
#[derive(Clone, Debug)]
pub struct Call {
    /// The API the built-in mock answers.
    pub api: mock::Api,
    pub stream: bool,
    pub include_usage: bool,
    pub max_tokens: Option<u32>,
    pub body_len: usize,
    /// The request's serial (unique per worker) and start time: the mock's response id and
    /// `created`.
    pub serial: u64,
    pub created: u64,
    /// Embeddings: the input texts (the mock's vectors are drawn from their words).
    pub texts: Vec<String>,
}

/// The worker's side of forwarding: its connection pool, the addresses the coordinator
/// resolved, its id, and the count of connections a request's attempts opened.
#[derive(Debug)]
pub struct Egress<'a> {
    pub pool: &'a Rc<RefCell<Pool>>,
    pub addrs: &'a AddrTable,
    pub worker: u16,
    pub attempts: &'a Cell<u8>,
}

/// Sends `ex`'s request (its tail from `buf`) to deployment `d` and reads the response head
/// into `ex`; returns the connection and how long the head took (µs). Connections opened
/// count in `attempts`. A pooled connection that turns out to be dead before answering (the
/// provider closed it while idle) is replaced by a fresh one once; nothing has reached the
/// client, so that is safe.
pub async fn forward(
    eg: &Egress<'_>,
    snap: &Snapshot,
    ex: &mut Exchange,
    buf: &mut Vec<u8>,
    call: &Call,
    d: DeploymentId,
) -> Result<(Upstream, u64), GatewayError> {
    let dep = snap.deployment(d);
    let provider = snap.provider(dep.provider);
    let sent = Instant::now();
    ex.ubuf.clear();
    let Some(ep) = provider
        .endpoint
        .as_ref()
        .filter(|_| provider.kind != ProviderKind::Mock)
    else {
        let mut data = Vec::with_capacity(1024);
        crate::mock::respond(
            &crate::mock::Ask {
                api: &call.api,
                model: &dep.upstream_model,
                body_len: call.body_len,
                stream: call.stream,
                include_usage: call.include_usage,
                max_tokens: call.max_tokens,
                worker: eg.worker,
                serial: call.serial,
                created: call.created,
                texts: &call.texts,
            },
            &mut data,
        );
        let mut up = Upstream::Memory { data, pos: 0 };
        eg.attempts.set(eg.attempts.get().saturating_add(1));
        read_response_head(snap, ex, &mut up, sent).await?;
        return Ok((up, sent.elapsed().as_micros() as u64));
    };
    let Some(addr) = eg.addrs.get(&ep.host, ep.port) else {
        return Err(GatewayError::new(
            ErrorKind::UpstreamConnect,
            format!("no address known for {}:{} (DNS)", ep.host, ep.port),
        ));
    };
    let tls = provider.tls.as_ref().map_or(crate::tls::PLAIN, |t| t.1);
    let slot = eg.pool.borrow_mut().slot_of(&ep.host, ep.port, tls);
    let mut attempt = 0;
    loop {
        attempt += 1;
        eg.attempts.set(eg.attempts.get().saturating_add(1));
        let pooled = eg.pool.borrow_mut().take(slot, sent);
        let (stream, reused) = match pooled {
            Some(s) => {
                eg.pool.borrow_mut().stats.reuses += 1;
                (s, true)
            }
            None => {
                eg.pool.borrow_mut().stats.connects += 1;
                let tcp = super::connect(addr, snap.upstream.connect).await?;
                let stream = match &provider.tls {
                    None => super::Stream::Plain(tcp),
                    Some((cfg, _)) => {
                        super::connect_tls(tcp, &ep.host, cfg, snap.upstream.connect).await?
                    }
                };
                (stream, false)
            }
        };
        let mut up = Upstream::Tcp(Checkout::new(eg.pool.clone(), slot, stream, reused));
        let req = std::mem::take(&mut ex.ureq);
        let (mut res, req) = up.write_all(req).await;
        ex.ureq = req;
        if let (Ok(_), Some(tail)) = (&res, ex.ureq_tail.clone()) {
            let whole = std::mem::take(buf);
            let (r, slice) = up.write_all(monoio::buf::IoBuf::slice(whole, tail)).await;
            *buf = slice.into_inner();
            res = r;
        }
        let result = match res {
            Ok(_) => read_response_head(snap, ex, &mut up, sent).await,
            Err(e) => Err(GatewayError::io(
                ErrorKind::UpstreamConnect,
                "sending the request to the provider",
                e,
            )
            .retryable(true)),
        };
        match result {
            Ok(()) => return Ok((up, sent.elapsed().as_micros() as u64)),
            Err(e) if reused && e.retry && attempt == 1 && ex.ubuf.is_empty() => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads until `ex.uhead` holds a final (non-1xx) response head. Errors from a connection
/// that produced no byte at all are marked retryable (a stale pooled connection).
async fn read_response_head(
    snap: &Snapshot,
    ex: &mut Exchange,
    up: &mut Upstream,
    sent: Instant,
) -> Result<(), GatewayError> {
    let deadline = sent
        + snap
            .upstream
            .head
            .min(snap.upstream.ttft)
            .min(snap.upstream.total);
    loop {
        if !ex.ubuf.is_empty() {
            match ex
                .uhead
                .parse(&ex.ubuf, &UPSTREAM_HEAD_LIMITS, Method::Post)
            {
                Ok(Some(n)) if ex.uhead.is_interim() => {
                    ex.ubuf.drain(..n);
                    continue;
                }
                Ok(Some(_)) => return Ok(()),
                Ok(None) => {}
                Err(e) => {
                    return Err(GatewayError::new(
                        ErrorKind::UpstreamProtocol,
                        format!("the provider sent an invalid response head: {e}"),
                    ));
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let buf = std::mem::take(&mut ex.ubuf);
        let (res, buf) = match monoio::time::timeout(left, up.read_more(buf, HEAD_READ_BYTES)).await
        {
            Ok(r) => r,
            Err(_) => {
                return Err(GatewayError::new(
                    ErrorKind::UpstreamTimeout,
                    format!(
                        "the provider sent no response head within {} ms",
                        snap.upstream
                            .head
                            .min(snap.upstream.ttft)
                            .min(snap.upstream.total)
                            .as_millis()
                    ),
                ));
            }
        };
        ex.ubuf = buf;
        let nothing_yet = ex.ubuf.is_empty();
        match res {
            Ok(0) => {
                return Err(GatewayError::new(
                    ErrorKind::UpstreamProtocol,
                    "the provider closed the connection before sending a complete response head",
                )
                .retryable(nothing_yet));
            }
            Err(e) => {
                return Err(GatewayError::io(
                    ErrorKind::UpstreamProtocol,
                    "reading the provider's response",
                    e,
                )
                .retryable(nothing_yet));
            }
            Ok(_) => {}
        }
    }
}
