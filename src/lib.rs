//! tollgate — an AI gateway data plane.
//!
//! The request path, in the order `worker::conn` runs it (ARCHITECTURE.md, "The request
//! path"):
//!
//! ```text
//! read head → route → authenticate → read body → parse fields → plan
//!   → per attempt: admit → translate → forward → relay (failover picks the next attempt)
//! → settle → finish (always runs)
//! ```
//!
//! The parts, bottom to top (ARCHITECTURE.md, "Parts and the arrows between them"; enforced
//! by `tests/architecture.rs`):
//!
//! - [`calendar`], [`json`], [`http1`], [`sse`], [`tls`], [`usage`], [`error`]: the ground
//!   floor — dates, JSON, HTTP/1.1 framing (shared with `loadtest/`), the SSE scanner, TLS
//!   configs, integer usage and prices, the one error type.
//! - [`dialect`], [`translate`], [`mock`]: provider wire formats, translation between them, and
//!   the mock provider's renderer.
//! - [`config`]: one TOML file → an immutable `Snapshot`.
//! - [`policy`], [`stream`]: sans-IO decisions (keys, quotas, routing, failover) and the
//!   relay's metering tap.
//! - [`net`], [`telemetry`], [`upstream`], [`account`]: sockets, the audit record, provider
//!   connections, the coordinator.
//! - [`worker`], [`runtime`]: the request path on each core, and the threads around it.

pub mod account;
pub mod cache;
pub mod calendar;
pub mod config;
pub mod dialect;
pub mod error;
pub mod guard;
pub mod http1;
pub mod json;
pub mod mock;
pub mod net;
pub mod policy;
pub mod runtime;
pub mod sse;
pub mod stream;
pub mod telemetry;
pub mod tls;
pub mod translate;
pub mod upstream;
pub mod usage;
pub mod worker;
