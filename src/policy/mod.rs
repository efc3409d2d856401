//! Admission policy: budgets (leases of a key's or team's cap, [`budget`]); rate limits and
//! guardrails join here.

pub mod budget;
