//! Where the load goes: a target URL resolved once, and a connection that is plain TCP or
//! TLS (rustls) to it.

use std::net::SocketAddr;
use std::sync::Arc;

use monoio::BufResult;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;

use super::client::{Client, ExchangeError};

/// A parsed `http://host:port` or `https://host:port` target.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    pub addr: SocketAddr,
    /// The `host` header value (and TLS server name).
    pub host: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Target {
    /// Parses `url`. Host names are resolved here, once, before any load runs.
    pub fn parse(url: &str, tls: Option<Arc<rustls::ClientConfig>>) -> anyhow::Result<Target> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            anyhow::bail!("target `{url}` must start with http:// or https://");
        };
        let hostport = rest.split('/').next().unwrap_or(rest);
        anyhow::ensure!(
            hostport.contains(':'),
            "target `{url}` needs an explicit port"
        );
        #[allow(
            clippy::disallowed_methods,
            reason = "resolved once at startup, never on a worker"
        )]
        let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport)?
            .next()
            .ok_or_else(|| anyhow::anyhow!("`{hostport}` did not resolve"))?;
        let tls = match (https, tls) {
            (false, _) => None,
            (true, Some(cfg)) => Some(cfg),
            (true, None) => anyhow::bail!("https target `{url}` needs --ca FILE (the CA to trust)"),
        };
        let host = hostport
            .rsplit_once(':')
            .map_or(hostport, |(h, _)| h)
            .to_owned();
        Ok(Target {
            url: url.to_owned(),
            addr,
            host,
            tls,
        })
    }

    /// Opens a connection (TCP_NODELAY, TLS handshake when https).
    pub async fn connect(&self) -> Result<Client<Stream>, ExchangeError> {
        let tcp = TcpStream::connect_addr(self.addr)
            .await
            .map_err(|e| ExchangeError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| ExchangeError::Connect(e.to_string()))?;
                let tls = monoio_rustls::TlsConnector::from(cfg.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| {
                        // TlsError's Display hides the cause; the io::Error carries it.
                        let e: std::io::Error = e.into();
                        ExchangeError::Connect(format!("TLS handshake with {}: {e}", self.host))
                    })?;
                Stream::Tls(Box::new(tls))
            }
        };
        Ok(Client::new(stream))
    }
}

/// Plain or TLS client stream.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<monoio_rustls::ClientTlsStream<TcpStream>>),
}

impl AsyncReadRent for Stream {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Stream::Plain(s) => s.readv(buf).await,
            Stream::Tls(s) => s.readv(buf).await,
        }
    }
}

impl AsyncWriteRent for Stream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Stream::Plain(s) => s.write(buf).await,
            Stream::Tls(s) => s.write(buf).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Stream::Plain(s) => s.writev(buf).await,
            Stream::Tls(s) => s.writev(buf).await,
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush().await,
            Stream::Tls(s) => s.flush().await,
        }
    }

    async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
        }
    }
}
