//! tollgate's measuring bench: the instruments every performance claim is made with.
//!
//! - [`mock`]: `tollgate-mock`, a fake provider (OpenAI, Anthropic, Gemini wire formats) with
//!   shaped timing, injected faults and an honest ledger.
//! - [`load`]: `tollgate-load`, an open- and closed-loop load generator that understands
//!   streams, corrects for coordinated omission and runs A/B comparisons.
//!
//! Both speak HTTP through `tollgate::http1` and scan streams with `tollgate::sse`:
//! there is one HTTP/1.1 implementation in the repository.

pub mod dialect;
pub mod io;
pub mod json;
pub mod load;
pub mod mock;
pub mod tls;
