//! Streaming responses: the incremental SSE scanner that taps relayed streams.

pub mod sse;

pub use sse::{SseError, SseEvent, SseScanner};
