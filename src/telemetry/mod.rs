//! What the gateway tells operators: one audit record per request (formatted on the worker
//! that served it by [`log`], written by the [`audit`] writer thread), and metrics (counted on
//! each worker in [`metrics`], merged by the coordinator, written for a scrape by
//! [`exposition`]).

pub mod audit;
pub mod exposition;
pub mod log;
pub mod metrics;
pub mod record;
