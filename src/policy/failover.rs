//! The failover decision, sans-IO: after an attempt failed before anything reached the
//! client, which candidate comes next — at once, after a backoff (the same deployment again),
//! or none, and the client gets this failure.
//!
//! The candidates are a request's deployments in the order `plan` put them: the model's, best
//! first by its strategy, then its fallback models'. The rules:
//!
//! - at most `routing.max_attempts` attempts in all;
//! - a targeted fallback (a context-length or content-policy refusal diverted to the model's
//!   `context_fallback` / `policy_fallback`, whose deployments the driver inserted right after
//!   the current one) goes to the next candidate in order;
//! - otherwise the next candidate whose circuit lets a request through, wrapping around, so a
//!   model with one deployment retries it;
//! - another attempt after a provider failure spends the failed deployment's retry budget (a
//!   refusal by its own rate limit, or a diversion, does not); with the budget spent, none;
//! - the same deployment again waits a backoff that grows with each retry in a row.

use crate::config::{DeploymentId, ModelId};

/// Where a request's failover stands.
#[derive(Clone, Copy, Debug)]
pub struct Failover {
    max_attempts: usize,
    index: usize,
    /// The deployment whose admission holds the request's reservations.
    admitted_on: Option<DeploymentId>,
    same_in_a_row: u32,
}

/// How an attempt failed, as far as the decision needs it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Failed {
    /// Attempts made so far, this one included.
    pub tries: usize,
    /// The deployment's own rate limit refused it (nothing was sent).
    pub rate_limited: bool,
    /// Its refusal was diverted to a targeted fallback model.
    pub diverted: bool,
    /// It was admitted (its reservations now sit on its deployment).
    pub admitted: bool,
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// No other attempt: the client gets this failure.
    Stop,
    /// The candidate at `index`, after the `backoff`-th backoff step when it is the same
    /// deployment again (`None`: at once).
    Try { index: usize, backoff: Option<u32> },
}

impl Failover {
    pub fn new(max_attempts: u32) -> Self {
        Failover {
            max_attempts: max_attempts.max(1) as usize,
            index: 0,
            admitted_on: None,
            same_in_a_row: 0,
        }
    }

    /// The candidate the current attempt uses.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The deployment an earlier attempt was admitted on (its reservations move with the
    /// request), or `None` before the first admission.
    pub fn admitted_on(&self) -> Option<DeploymentId> {
        self.admitted_on
    }

    /// Decides after the current attempt failed. `usable(i)` says whether candidate `i`'s
    /// circuit lets a request through now; `take_retry(d)` spends deployment `d`'s retry
    /// budget and says whether there was any.
    pub fn next(
        &mut self,
        failed: Failed,
        cands: &[(ModelId, DeploymentId)],
        usable: impl Fn(usize) -> bool,
        take_retry: impl FnOnce(DeploymentId) -> bool,
    ) -> Next {
        let i = self.index;
        let Some(&(_, d)) = cands.get(i) else {
            return Next::Stop;
        };
        if failed.admitted {
            self.admitted_on = Some(d);
        }
        if failed.tries >= self.max_attempts {
            return Next::Stop;
        }
        let n = cands.len();
        let next = if failed.diverted {
            (i + 1 < n).then_some(i + 1)
        } else {
            (1..=n).map(|k| (i + k) % n).find(|&j| usable(j))
        };
        let Some(next) = next else {
            return Next::Stop;
        };
        if !(failed.rate_limited || failed.diverted || take_retry(d)) {
            return Next::Stop;
        }
        let same = cands[next].1 == d;
        self.same_in_a_row = if same { self.same_in_a_row + 1 } else { 0 };
        self.index = next;
        Next::Try {
            index: next,
            backoff: same.then_some(self.same_in_a_row),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: ModelId = ModelId(0);

    fn cands(ds: &[u32]) -> Vec<(ModelId, DeploymentId)> {
        ds.iter().map(|&d| (M, DeploymentId(d))).collect()
    }

    fn failed(tries: usize) -> Failed {
        Failed {
            tries,
            admitted: true,
            ..Failed::default()
        }
    }

    #[test]
    fn goes_to_the_next_usable_candidate_at_once() {
        let c = cands(&[0, 1, 2]);
        let mut f = Failover::new(3);
        assert_eq!(f.admitted_on(), None);
        // Candidate 1's circuit is open: skipped.
        let next = f.next(failed(1), &c, |i| i != 1, |_| true);
        assert_eq!(
            next,
            Next::Try {
                index: 2,
                backoff: None
            }
        );
        assert_eq!(f.index(), 2);
        assert_eq!(f.admitted_on(), Some(DeploymentId(0)));
    }

    #[test]
    fn one_deployment_is_retried_with_a_growing_backoff_until_the_attempts_run_out() {
        let c = cands(&[7]);
        let mut f = Failover::new(3);
        let a = f.next(failed(1), &c, |_| true, |_| true);
        assert_eq!(
            a,
            Next::Try {
                index: 0,
                backoff: Some(1)
            }
        );
        let b = f.next(failed(2), &c, |_| true, |_| true);
        assert_eq!(
            b,
            Next::Try {
                index: 0,
                backoff: Some(2)
            }
        );
        assert_eq!(f.next(failed(3), &c, |_| true, |_| true), Next::Stop);
    }

    #[test]
    fn a_spent_retry_budget_stops_but_a_rate_limit_refusal_does_not_spend_it() {
        let c = cands(&[0, 1]);
        let mut f = Failover::new(5);
        let mut asked = Vec::new();
        let mut budget = |d: DeploymentId| {
            asked.push(d);
            false
        };
        assert_eq!(f.next(failed(1), &c, |_| true, &mut budget), Next::Stop);
        let refused = Failed {
            tries: 1,
            rate_limited: true,
            ..Failed::default()
        };
        let mut f = Failover::new(5);
        let next = f.next(refused, &c, |_| true, &mut budget);
        assert_eq!(
            next,
            Next::Try {
                index: 1,
                backoff: None
            }
        );
        // Asked once (the provider failure), not for the refusal; not admitted there.
        assert_eq!(asked, [DeploymentId(0)]);
        assert_eq!(f.admitted_on(), None);
    }

    #[test]
    fn a_diversion_takes_the_next_candidate_in_order_even_past_open_circuits() {
        let c = cands(&[0, 3, 1]);
        let mut f = Failover::new(3);
        let diverted = Failed {
            diverted: true,
            ..failed(1)
        };
        let next = f.next(diverted, &c, |_| false, |_| panic!("no budget spent"));
        assert_eq!(
            next,
            Next::Try {
                index: 1,
                backoff: None
            }
        );
        // Nothing after the last candidate.
        let mut f = Failover::new(3);
        let c = cands(&[0]);
        assert_eq!(f.next(diverted, &c, |_| true, |_| true), Next::Stop);
    }

    #[test]
    fn no_usable_candidate_stops() {
        let c = cands(&[0, 1]);
        let mut f = Failover::new(3);
        assert_eq!(f.next(failed(1), &c, |_| false, |_| true), Next::Stop);
    }
}
