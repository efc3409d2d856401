//! tollgate — an AI gateway data plane.
//!
//! The request path, in the order the worker runs it (see `../shared/DESIGN.md` §2):
//!
//! ```text
//! accept → read head → authenticate → read body → parse the few fields needed → admit
//! (rate limit, budget reservation, guardrails) → plan route → translate → forward → relay
//! (SSE scanned on the fly) → settle → finish (always runs)
//! ```
//!
//! What exists today is the protocol layer every later phase stands on, shared with the
//! bundled mock provider and load generator (`loadtest/`) so that there is one HTTP/1.1
//! implementation in the repository:
//!
//! - [`http1`]: sans-IO HTTP/1.1 heads (httparse, offsets into the read buffer) and body
//!   framing (Content-Length, chunked, close-delimited), strict about smuggling vectors.
//! - [`stream::sse`]: the incremental server-sent-events scanner that taps streams.

pub mod http1;
pub mod stream;
