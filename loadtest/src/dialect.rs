//! The wire dialects live in the gateway library; the bench tools use the same definitions.

pub use tollgate::dialect::Dialect;
