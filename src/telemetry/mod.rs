//! What the gateway tells operators: one audit record per request (formatted by the
//! coordinator in [`log`], written by the [`audit`] writer thread — never by a worker) and
//! counters.

pub mod audit;
pub mod log;
pub mod record;
