//! Admission policy: who the caller is ([`auth`]); budgets and rate limits — leases of a quota's cap ([`budget`]), the
//! coordinator's books of them ([`books`]) and a worker's allowances ([`quota`]); routing
//! ([`route`]: strategies, circuit breakers, retry budgets); guardrails join here.

pub mod auth;
pub mod books;
pub mod budget;
pub mod failover;
pub mod quota;
pub mod route;
pub mod shared;
