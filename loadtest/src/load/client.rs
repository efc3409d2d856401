//! The load generator's HTTP/1.1 client: one keep-alive connection, one request at a time.
//!
//! It writes a pre-rendered request, parses the response with `tollgate::http1`, decodes the
//! body framing, and — for `text/event-stream` responses — runs the SSE scanner over the
//! payload to time the first content token and the gaps between events, and to check that the
//! stream ended the way its dialect says a stream ends. Nothing is copied unless the caller
//! asked to capture the response (tests do; load runs do not).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use tollgate::http1::{BodyDecoder, BodyKind, Limits, Method, ResponseHead};
use tollgate::sse::SseScanner;

pub use crate::dialect::Dialect;
use crate::io::read_more;

/// Why an exchange failed; the label is what reports count errors by.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    #[error("connect failed: {0}")]
    Connect(String),
    #[error("write failed: {0}")]
    Write(String),
    #[error("connection closed or reset before the response was complete")]
    Closed,
    #[error("read failed: {0}")]
    Read(String),
    #[error("invalid response: {0}")]
    BadResponse(String),
    #[error("timed out")]
    Timeout,
}

impl ExchangeError {
    pub fn label(&self) -> &'static str {
        match self {
            ExchangeError::Connect(_) => "connect",
            ExchangeError::Write(_) => "write",
            ExchangeError::Closed => "closed",
            ExchangeError::Read(_) => "read",
            ExchangeError::BadResponse(_) => "bad_response",
            ExchangeError::Timeout => "timeout",
        }
    }
}

/// What one request/response exchange measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exchange {
    pub status: u16,
    /// Request written → first response byte.
    pub ttfb: Duration,
    /// Request written → first content event (streams only).
    pub ttft: Option<Duration>,
    /// Request written → response complete.
    pub total: Duration,
    pub is_stream: bool,
    pub events: u32,
    /// The stream ended with its dialect's end event.
    pub stream_ended: bool,
    /// Body payload bytes (after de-chunking).
    pub body_bytes: u64,
    /// The connection can carry another request.
    pub keep_alive: bool,
}

/// A captured event (tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedEvent {
    pub event: String,
    pub data: String,
    /// Time since the request was written.
    pub at: Duration,
}

/// A captured response (tests).
#[derive(Clone, Debug, Default)]
pub struct Captured {
    pub head: Vec<u8>,
    pub body: Vec<u8>,
    pub events: Vec<CapturedEvent>,
}

impl Captured {
    /// First header `name` (case-insensitive) of the captured head.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.head);
        text.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Accounts one SSE event of a response: count, gap since the previous event, first content
/// token, proper end, and the captured copy when capturing.
#[allow(
    clippy::too_many_arguments,
    reason = "the exchange's running state, borrowed field by field"
)]
fn observe(
    x: &mut Exchange,
    last_event: &mut Option<Instant>,
    gap: &mut dyn FnMut(Duration),
    capture: &mut Option<Captured>,
    dialect: Dialect,
    sent: Instant,
    now: Instant,
    e: &tollgate::sse::SseEvent<'_>,
) {
    x.events += 1;
    if let Some(prev) = *last_event {
        gap(now.saturating_duration_since(prev));
    }
    *last_event = Some(now);
    if x.ttft.is_none() && dialect.is_content(e) {
        x.ttft = Some(now.saturating_duration_since(sent));
    }
    if dialect.is_end(e) {
        x.stream_ended = true;
    }
    if let Some(c) = capture {
        c.events.push(CapturedEvent {
            event: String::from_utf8_lossy(e.event).into_owned(),
            data: String::from_utf8_lossy(e.data).into_owned(),
            at: now.saturating_duration_since(sent),
        });
    }
}

/// One client connection.
#[derive(Debug)]
pub struct Client<S> {
    io: S,
    rbuf: Vec<u8>,
    head: ResponseHead,
    sse: SseScanner,
    limits: Limits,
    /// When set, heads, bodies and events are kept here.
    pub capture: Option<Captured>,
}

/// Connects a plain TCP client (TCP_NODELAY on).
pub async fn connect(addr: SocketAddr) -> Result<Client<monoio::net::TcpStream>, ExchangeError> {
    let s = monoio::net::TcpStream::connect_addr(addr)
        .await
        .map_err(|e| ExchangeError::Connect(e.to_string()))?;
    let _ = s.set_nodelay(true);
    Ok(Client::new(s))
}

impl<S: AsyncReadRent + AsyncWriteRent> Client<S> {
    pub fn new(io: S) -> Self {
        Client {
            io,
            rbuf: Vec::with_capacity(16 * 1024),
            head: ResponseHead::new(),
            sse: SseScanner::default(),
            limits: Limits {
                max_head_bytes: 64 * 1024,
                max_headers: 128,
            },
            capture: None,
        }
    }

    /// Writes raw bytes (tests use this to send malformed or pipelined requests).
    pub async fn write_raw(&mut self, bytes: Bytes) -> io::Result<()> {
        let (res, _) = self.io.write_all(bytes).await;
        res.map(|_| ())
    }

    /// Sends `request` (a complete HTTP/1.1 request) and reads the whole response.
    /// `gap` is called with the time between consecutive SSE events.
    pub async fn exchange(
        &mut self,
        request: Bytes,
        method: Method,
        dialect: Dialect,
        gap: &mut dyn FnMut(Duration),
    ) -> Result<Exchange, ExchangeError> {
        let (res, _) = self.io.write_all(request).await;
        res.map_err(|e| ExchangeError::Write(e.to_string()))?;
        let sent = Instant::now();
        self.read_response(sent, method, dialect, gap).await
    }

    /// Reads one response to a request written at `sent`.
    pub async fn read_response(
        &mut self,
        sent: Instant,
        method: Method,
        dialect: Dialect,
        gap: &mut dyn FnMut(Duration),
    ) -> Result<Exchange, ExchangeError> {
        let mut x = Exchange::default();
        let mut first_byte = None;
        // Head (skipping interim 1xx responses).
        let head_len = loop {
            match self.head.parse(&self.rbuf, &self.limits, method) {
                Ok(Some(n)) if self.head.is_interim() => {
                    self.rbuf.drain(..n);
                    continue;
                }
                Ok(Some(n)) => break n,
                Ok(None) => {}
                Err(e) => return Err(ExchangeError::BadResponse(e.to_string())),
            }
            self.fill().await?;
            first_byte.get_or_insert_with(Instant::now);
        };
        let t_first = first_byte.unwrap_or_else(Instant::now);
        x.ttfb = t_first.saturating_duration_since(sent);
        x.status = self.head.status;
        x.keep_alive = self.head.keep_alive;
        x.is_stream = self
            .head
            .header(&self.rbuf, "content-type")
            .is_some_and(|v| v.starts_with(b"text/event-stream"));
        if let Some(c) = &mut self.capture {
            c.head = self.rbuf[..head_len].to_vec();
            c.body.clear();
            c.events.clear();
        }
        let body_kind = self.head.body;
        self.rbuf.drain(..head_len);
        self.sse.reset();

        let mut dec = BodyDecoder::new(body_kind, u64::MAX)
            .map_err(|e| ExchangeError::BadResponse(e.to_string()))?;
        let mut last_event: Option<Instant> = None;
        let mut pos = 0;
        loop {
            let step = dec
                .decode(&self.rbuf[pos..])
                .map_err(|e| ExchangeError::BadResponse(e.to_string()))?;
            let data = &self.rbuf[pos + step.data.start..pos + step.data.end];
            if !data.is_empty() {
                x.body_bytes += data.len() as u64;
                if let Some(c) = &mut self.capture {
                    c.body.extend_from_slice(data);
                }
                if x.is_stream {
                    let capture = &mut self.capture;
                    let scanned = self.sse.feed(data, |e| {
                        observe(
                            &mut x,
                            &mut last_event,
                            gap,
                            capture,
                            dialect,
                            sent,
                            Instant::now(),
                            e,
                        )
                    });
                    scanned.map_err(|e| ExchangeError::BadResponse(e.to_string()))?;
                }
            }
            pos += step.consumed;
            if step.done {
                break;
            }
            if step.consumed == 0 {
                self.rbuf.drain(..pos);
                pos = 0;
                match self.fill().await {
                    Ok(()) => {}
                    Err(ExchangeError::Closed) if body_kind == BodyKind::Close => {
                        dec.finish_eof().map_err(|_| ExchangeError::Closed)?;
                        x.keep_alive = false;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.rbuf.drain(..pos);
        if x.is_stream {
            // An unterminated final event (no blank line before EOF) still counts.
            let capture = &mut self.capture;
            self.sse.finish(|e| {
                observe(
                    &mut x,
                    &mut last_event,
                    gap,
                    capture,
                    dialect,
                    sent,
                    Instant::now(),
                    e,
                )
            });
        }
        x.total = sent.elapsed();
        Ok(x)
    }

    async fn fill(&mut self) -> Result<(), ExchangeError> {
        let (res, buf) = read_more(&mut self.io, std::mem::take(&mut self.rbuf), 16 * 1024).await;
        self.rbuf = buf;
        match res {
            Ok(0) => Err(ExchangeError::Closed),
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                ) =>
            {
                Err(ExchangeError::Closed)
            }
            Err(e) => Err(ExchangeError::Read(e.to_string())),
        }
    }

    /// Reads until the peer closes; returns what arrived (tests of error responses that
    /// close the connection).
    pub async fn read_to_close(&mut self) -> Vec<u8> {
        while self.fill().await.is_ok() {}
        std::mem::take(&mut self.rbuf)
    }

    /// Reads once; returns the bytes buffered so far and whether the peer closed or reset.
    pub async fn read_some(&mut self) -> (Vec<u8>, Option<ExchangeError>) {
        let r = self.fill().await.err();
        (self.rbuf.clone(), r)
    }

    pub fn into_inner(self) -> S {
        self.io
    }
}
