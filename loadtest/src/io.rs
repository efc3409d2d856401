//! Socket plumbing: the runtime helpers come from `tollgate::net::io`; the abortive close
//! the mock uses to inject resets works on plain and TLS connections alike.

pub use tollgate::net::io::*;

/// A connection the mock can reset: plain TCP or TLS over TCP.
pub trait Abortable {
    /// Resets the underlying TCP connection.
    fn abort(self);
}

impl Abortable for monoio::net::TcpStream {
    fn abort(self) {
        abort_tcp(self);
    }
}

impl Abortable for monoio_rustls::ServerTlsStream<monoio::net::TcpStream> {
    fn abort(self) {
        abort_tcp(self.into_parts().0);
    }
}
