//! JSON writers live in the gateway library.

pub use tollgate::json::*;
