//! The provider side: where a request goes and the connection it goes over.
//!
//! - [`pool`]: per-worker idle connection pools and the [`pool::Checkout`] guard.
//! - [`dns`]: the address table the coordinator keeps fresh.
//! - [`Upstream`]: one exchange's response source — a pooled TCP connection, or the bytes the
//!   built-in mock provider rendered. The relay reads both the same way, so the mock takes the
//!   real response path (framing, relay, accounting).

pub mod dns;
pub mod forward;
pub mod gcp;
pub mod pool;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;

use crate::error::{ErrorKind, GatewayError};
use crate::net::io::read_more;
use pool::Checkout;

/// A connection to a provider: plain TCP, or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<monoio_rustls::ClientTlsStream<TcpStream>>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stream::Plain(_) => "Stream::Plain",
            Stream::Tls(_) => "Stream::Tls",
        })
    }
}

#[derive(Debug)]
pub enum Upstream {
    Tcp(Checkout),
    /// A complete response rendered in memory; reads hand it out in order.
    Memory {
        data: Vec<u8>,
        pos: usize,
    },
}

impl Upstream {
    /// Reads more bytes onto the end of `buf` (growing it by up to `spare`). 0 = end of input.
    pub async fn read_more(
        &mut self,
        mut buf: Vec<u8>,
        spare: usize,
    ) -> (io::Result<usize>, Vec<u8>) {
        match self {
            Upstream::Tcp(c) => match c.stream.as_mut() {
                Some(Stream::Plain(s)) => read_more(s, buf, spare).await,
                Some(Stream::Tls(s)) => read_more(&mut **s, buf, spare).await,
                None => (Err(io::ErrorKind::NotConnected.into()), buf),
            },
            Upstream::Memory { data, pos } => {
                let n = (data.len() - *pos).min(spare.max(1));
                buf.extend_from_slice(&data[*pos..*pos + n]);
                *pos += n;
                (Ok(n), buf)
            }
        }
    }

    pub async fn write_all<B: monoio::buf::IoBuf>(&mut self, buf: B) -> (io::Result<usize>, B) {
        match self {
            Upstream::Tcp(c) => match c.stream.as_mut() {
                Some(Stream::Plain(s)) => s.write_all(buf).await,
                Some(Stream::Tls(s)) => s.write_all(buf).await,
                None => (Err(io::ErrorKind::NotConnected.into()), buf),
            },
            Upstream::Memory { .. } => (Ok(buf.bytes_init()), buf),
        }
    }

    /// The exchange ended cleanly: the connection may serve another request.
    pub fn release(&mut self) {
        if let Upstream::Tcp(c) = self {
            c.reusable = true;
        }
    }

    /// True for a pooled connection that had served an earlier request.
    pub fn reused(&self) -> bool {
        matches!(self, Upstream::Tcp(c) if c.reused)
    }
}

/// Opens a TLS session over `tcp` to `host`, verified by `config`, within `timeout`.
pub async fn connect_tls(
    tcp: TcpStream,
    host: &str,
    config: &std::sync::Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<Stream, GatewayError> {
    let fail = |why: String| {
        GatewayError::new(
            ErrorKind::UpstreamTls,
            format!("TLS with the provider at {host}: {why}"),
        )
    };
    let name = crate::tls::server_name(host).map_err(fail)?;
    let connector = monoio_rustls::TlsConnector::from(config.clone());
    match monoio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Ok(Ok(s)) => Ok(Stream::Tls(Box::new(s))),
        Ok(Err(e)) => Err(fail(tls_reason(e))),
        Err(_) => Err(fail(format!("no handshake within {timeout:?}"))),
    }
}

/// What went wrong in a handshake, in rustls's words (a certificate problem is carried inside
/// the I/O error the handshake returns).
fn tls_reason(e: monoio_rustls::TlsError) -> String {
    match e {
        monoio_rustls::TlsError::Rustls(e) => e.to_string(),
        monoio_rustls::TlsError::Io(e) => match e.get_ref() {
            Some(inner) => inner.to_string(),
            None => e.to_string(),
        },
    }
}

/// Opens a TCP connection with TCP_NODELAY, within `timeout`.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, GatewayError> {
    let s = match monoio::time::timeout(timeout, TcpStream::connect_addr(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(GatewayError::io(
                ErrorKind::UpstreamConnect,
                &format!("connecting to the provider at {addr}"),
                e,
            ));
        }
        Err(_) => {
            return Err(GatewayError::new(
                ErrorKind::UpstreamConnect,
                format!("connecting to the provider at {addr}: no answer within {timeout:?}"),
            ));
        }
    };
    let _ = s.set_nodelay(true);
    Ok(s)
}
