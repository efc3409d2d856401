//! Streaming responses: the incremental SSE scanner that taps relayed streams.

pub mod meter;
pub mod sse;

pub use meter::Meter;
pub use sse::{SseError, SseEvent, SseScanner};
