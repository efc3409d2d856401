//! The relay's tap on a response as it passes: SSE events (scanned by [`crate::sse`]) or a
//! JSON body handed to the dialect's usage reader, translated per event when the client speaks
//! another dialect.

pub mod guarded;
pub mod meter;

pub use meter::Meter;
