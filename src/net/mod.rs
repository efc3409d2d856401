//! Sockets and the runtime under them: monoio runtime selection (io_uring or epoll),
//! SO_REUSEPORT listeners, reads into growing buffers ([`io`]), the client connection a worker
//! serves, plain or TLS ([`stream`]), and the thread-local one-shot signal workers drain with
//! ([`latch`]).

pub mod io;
pub mod latch;
pub mod stream;

pub use stream::ClientStream;
