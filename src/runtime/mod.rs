//! Threads and sockets: the monoio runtimes, listeners, pinning and the shutdown/reload plumbing.

pub mod io;
