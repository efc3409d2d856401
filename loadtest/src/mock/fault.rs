//! Fault injection: what can go wrong with a response, chosen per request (the `x-mock-fault`
//! header) or for a fraction of all requests (`--fault SPEC@RATE`).
//!
//! A spec is a comma-separated list of items:
//!
//! | item | effect |
//! | --- | --- |
//! | `status=CODE` | answer CODE (429, 500, 503, 529, …) with the dialect's error body (400: OpenAI's context-length error) |
//! | `policy` | answer 400 with a content-policy refusal (`content_policy_violation`) |
//! | `retry-after=SECS` | `retry-after` on that error (default 1 for 429/503/529) |
//! | `reset` | reset the connection (TCP RST) before sending anything |
//! | `reset-after=N` | reset after N SSE events (streams) or N body bytes (JSON) |
//! | `stall=MS` | send nothing for MS milliseconds before the head… |
//! | `stall-after=N` | …or, with this, after the Nth SSE event |
//! | `malformed` | streams: one event's JSON is cut off; JSON: the body is cut off mid-value (framing stays valid) |
//! | `truncate` | streams: end cleanly at the framing level but without the final events (no usage, no `[DONE]`/`message_stop`) |
//! | `drip` | send the whole response one byte per write, `drip-ms=MS` apart (default 1) |

use std::str::FromStr;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fault {
    pub status: Option<u16>,
    pub retry_after: Option<u32>,
    pub reset: bool,
    pub reset_after: Option<u32>,
    pub stall_ms: Option<u64>,
    pub stall_after: Option<u32>,
    pub malformed: bool,
    pub truncate: bool,
    pub drip: bool,
    pub drip_ms: Option<u64>,
    /// A 400 content-policy refusal (`content_policy_violation`).
    pub policy: bool,
}

impl Fault {
    /// The label counted in the ledger's `faults` map.
    pub fn label(&self) -> &'static str {
        if self.reset {
            "reset"
        } else if self.status.is_some() {
            "status"
        } else if self.reset_after.is_some() {
            "reset_after"
        } else if self.stall_ms.is_some() {
            "stall"
        } else if self.malformed {
            "malformed"
        } else if self.truncate {
            "truncate"
        } else if self.drip {
            "drip"
        } else {
            "none"
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let mut f = Fault::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, val) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (item, None),
            };
            let num = |v: Option<&str>| -> Result<u64, String> {
                v.ok_or_else(|| format!("`{key}` needs a value, e.g. `{key}=3`"))?
                    .parse::<u64>()
                    .map_err(|_| format!("`{key}` wants a non-negative integer, got `{item}`"))
            };
            let small = |n: u64| u32::try_from(n).map_err(|_| format!("`{item}` is too large"));
            match key {
                "status" => {
                    let code = num(val)?;
                    if !(400..=599).contains(&code) {
                        return Err(format!("`{item}`: status must be 400..=599"));
                    }
                    f.status = Some(code as u16);
                }
                "retry-after" => f.retry_after = Some(small(num(val)?)?),
                "reset" => f.reset = true,
                "reset-after" => f.reset_after = Some(small(num(val)?)?),
                "stall" => f.stall_ms = Some(num(val)?),
                "stall-after" => f.stall_after = Some(small(num(val)?)?),
                "malformed" => f.malformed = true,
                "truncate" => f.truncate = true,
                "drip" => f.drip = true,
                "drip-ms" => f.drip_ms = Some(num(val)?),
                "policy" => {
                    f.policy = true;
                    f.status = Some(400);
                }
                other => {
                    return Err(format!(
                        "unknown fault `{other}` (known: status, retry-after, reset, reset-after, \
                         stall, stall-after, malformed, truncate, drip, drip-ms, policy)"
                    ));
                }
            }
        }
        if f.stall_after.is_some() && f.stall_ms.is_none() {
            return Err("`stall-after` needs `stall=MS` too".into());
        }
        Ok(f)
    }
}

/// A fault applied to a fraction of all requests: `SPEC@RATE`, e.g. `status=429@0.05`.
#[derive(Clone, Debug, PartialEq)]
pub struct RatedFault {
    pub fault: Fault,
    pub rate: f64,
}

impl FromStr for RatedFault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (spec, rate) = s
            .rsplit_once('@')
            .ok_or_else(|| format!("`{s}`: expected SPEC@RATE, e.g. status=429@0.05"))?;
        let rate: f64 = rate
            .parse()
            .map_err(|_| format!("`{s}`: rate must be a number in 0..=1"))?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!("`{s}`: rate must be in 0..=1"));
        }
        Ok(RatedFault {
            fault: spec.parse()?,
            rate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let f: Fault = "status=429, retry-after=3".parse().unwrap();
        assert_eq!(
            (f.status, f.retry_after, f.label()),
            (Some(429), Some(3), "status")
        );
        let f: Fault = "reset-after=2".parse().unwrap();
        assert_eq!(f.reset_after, Some(2));
        let f: Fault = "stall=50,stall-after=1".parse().unwrap();
        assert_eq!((f.stall_ms, f.stall_after), (Some(50), Some(1)));
        assert!("stall-after=1".parse::<Fault>().is_err());
        assert!("status=200".parse::<Fault>().is_err());
        assert!(
            "explode"
                .parse::<Fault>()
                .unwrap_err()
                .contains("unknown fault")
        );
        let r: RatedFault = "status=503@0.25".parse().unwrap();
        assert_eq!((r.fault.status, r.rate), (Some(503), 0.25));
        assert!("reset@2".parse::<RatedFault>().is_err());
    }
}
