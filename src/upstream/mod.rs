//! The provider side: where a request goes and the connection it goes over.
//!
//! - [`pool`]: per-worker idle connection pools and the [`pool::Checkout`] guard.
//! - [`dns`]: the address table the coordinator keeps fresh.
//! - [`Upstream`]: one exchange's response source — a pooled TCP connection, or the bytes the
//!   built-in mock provider rendered. The relay reads both the same way, so the mock takes the
//!   real response path (framing, relay, accounting).

pub mod dns;
pub mod pool;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;

use crate::error::{ErrorKind, GatewayError};
use crate::runtime::io::read_more;
use pool::Checkout;

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
                Some(s) => read_more(s, buf, spare).await,
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
                Some(s) => s.write_all(buf).await,
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

/// Opens a TCP connection with TCP_NODELAY, within `timeout`.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, GatewayError> {
    let s = match monoio::time::timeout(timeout, TcpStream::connect_addr(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(GatewayError::new(
                ErrorKind::UpstreamConnect,
                format!("connecting to the provider at {addr}: {e}"),
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
