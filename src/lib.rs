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
//! - [`http1`]: sans-IO HTTP/1.1 heads (httparse, offsets into the read buffer) and body
//!   framing (Content-Length, chunked, close-delimited), strict about smuggling vectors. The one
//!   HTTP/1.1 implementation in the repository, shared with `loadtest/`.
//! - [`stream::sse`]: the incremental server-sent-events scanner that taps streams.
//! - [`dialect`], [`json`], [`mock`]: provider wire formats, JSON writers and the mock
//!   provider's renderer (used by the built-in `mock` provider kind and by `tollgate-mock`).
//! - [`runtime::io`]: monoio runtime selection (io_uring or epoll) and SO_REUSEPORT listeners.

pub mod account;
pub mod calendar;
pub mod config;
pub mod dialect;
pub mod error;
pub mod http1;
pub mod json;
pub mod mock;
pub mod policy;
pub mod runtime;
pub mod stream;
pub mod telemetry;
pub mod translate;
pub mod upstream;
pub mod usage;
pub mod worker;
