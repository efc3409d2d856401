//! What the gateway tells operators: one audit record per request (formatted on the worker
//! that served it by [`log`], written by the [`audit`] writer thread), and metrics (counted on
//! each worker in [`metrics`], merged by the coordinator, written for a scrape by
//! [`exposition`]), and traces (spans encoded on the worker by [`trace`], sent to a collector
//! by the [`export`] thread).

pub mod audit;
pub mod export;
pub mod exposition;
pub mod history;
pub mod log;
pub mod metrics;
pub mod record;
pub mod trace;
