//! What the gateway tells operators: access records (formatted by the coordinator, never by a
//! worker) and counters.

pub mod audit;
pub mod log;
