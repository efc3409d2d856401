//! Threads and sockets: worker threads (one monoio runtime each, pinned, with its own
//! SO_REUSEPORT listener), the coordinator thread, and the start / reload / drain plumbing
//! ([`Gateway`]).

pub mod admin;
mod gateway;
pub mod io;
pub mod latch;
pub mod tls;

pub use gateway::{AdminHandle, Gateway, StartError};
