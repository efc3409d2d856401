//! Threads: worker threads (one monoio runtime each, pinned, with its own SO_REUSEPORT
//! listener), the coordinator thread, the admin API's thread, and the start / reload / drain
//! plumbing ([`Gateway`]).

pub mod admin;
mod gateway;
pub mod top;

pub use gateway::{Gateway, StartError};
