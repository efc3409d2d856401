//! A worker's side of budgets and rate limits: one [`Allowance`] per quota of the snapshot it
//! serves, the asks in flight, and what goes back to the coordinator ([`LeaseMsg`]).
//!
//! Sans-IO: the worker calls [`Quotas::reserve`] at admission, [`Quotas::settle`] or
//! [`Quotas::release`] when the call ends, [`Quotas::apply`] with what the coordinator sent,
//! and [`Quotas::drain`] to take the messages to send. Nothing here blocks or allocates per
//! request (the reservation list lives in a buffer the connection reuses).
//!
//! - A request needs an amount of several quotas at once (its key's, its team's and its
//!   deployment's); it is admitted only if every one of them covers it, else nothing is
//!   reserved ([`Reserve::Short`]) and the worker asks for what is missing.
//! - One ask per quota is in flight at a time; every request short of that quota waits for
//!   the same answer.
//! - A refusal from the coordinator (nothing left even after taking back what other workers
//!   held idle) is remembered until its retry time, capped at [`REFUSAL_MEMORY`], so that a
//!   key hammering an exhausted budget is refused locally rather than by a round trip each
//!   time; a period reset or an admin reset clears it early.
//! - When a quota's allowance runs low after a reservation, the worker asks ahead of need, so
//!   a busy worker rarely waits.

use std::time::{Duration, Instant};

use super::budget::{Allowance, Micros};
use crate::config::QuotaId;

/// How long a refusal is remembered locally at most.
pub const REFUSAL_MEMORY: Duration = Duration::from_millis(250);

/// Worker → coordinator, per quota (coalesced: several requests' use goes in one message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseMsg {
    pub worker: u16,
    pub generation: u64,
    pub quota: QuotaId,
    /// Consumed by calls that ended (moves from the worker's grant to spent).
    pub used: Micros,
    /// Allowance handed back unused.
    pub returned: Micros,
    /// More wanted now (0: none).
    pub want: Micros,
    /// What calls in flight hold reserved (absolute, for the admin API).
    pub reserved: Micros,
    /// This answers a reclaim.
    pub reclaimed: bool,
}

/// Coordinator → worker, per quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaControl {
    /// Allowance added (`amount` may be 0); `free` is what the coordinator has left to grant;
    /// `refused_ms` says the ask could not be met, and when to try again.
    Grant {
        amount: Micros,
        free: Micros,
        refused_ms: Option<u64>,
    },
    /// Hand back what is not reserved: another worker is short.
    Reclaim,
    /// The soft threshold was crossed (`true`) or a period began (`false`).
    Warn(bool),
    /// The period began anew (or an admin reset it): forget refusals.
    Reset,
}

#[derive(Clone, Copy, Debug, Default)]
struct State {
    allowance: Allowance,
    /// An ask is in flight.
    asked: bool,
    /// The largest amount a request waiting for this quota needs: a reclaim leaves it.
    waiting_need: Micros,
    refused_until: Option<Instant>,
    /// When the last refusal said to try again.
    retry_at: Option<Instant>,
    /// The coordinator's free amount as of its last answer (for `x-ratelimit-remaining-*`).
    free: Micros,
    last_grant: Micros,
    warned: bool,
    used: Micros,
    returned: Micros,
    want: Micros,
    reclaimed: bool,
    reported_reserved: Micros,
    dirty: bool,
}

/// Admission's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reserve {
    /// Everything reserved.
    Granted,
    /// Some quota is short; asks are queued (see [`Quotas::has_urgent`]) — wait for an answer
    /// and try again.
    Short,
    /// The coordinator refused `quota`: reject, retry after `retry_ms`.
    Refused { quota: QuotaId, retry_ms: u64 },
}

/// Every quota of one snapshot, as one worker holds them.
#[derive(Debug, Default)]
pub struct Quotas {
    pub generation: u64,
    worker: u16,
    states: Vec<State>,
    dirty: Vec<QuotaId>,
    /// Messages that must go out now (asks, reclaim answers), not on the next tick.
    urgent: bool,
    /// A newer snapshot replaced these quotas: grants that still arrive go straight back.
    retired: bool,
}

impl Quotas {
    pub fn new(worker: u16, generation: u64, quotas: usize) -> Self {
        Quotas {
            generation,
            worker,
            states: vec![State::default(); quotas],
            dirty: Vec::new(),
            urgent: false,
            retired: false,
        }
    }

    /// Reserves every `(quota, amount)` of `need`, or none of them.
    pub fn reserve(&mut self, need: &[(QuotaId, Micros)], now: Instant) -> Reserve {
        for &(q, _) in need {
            let s = &mut self.states[q.0 as usize];
            if let Some(until) = s.refused_until {
                if now < until {
                    let retry = s
                        .retry_at
                        .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
                    return Reserve::Refused {
                        quota: q,
                        retry_ms: (retry.as_millis() as u64).max(1),
                    };
                }
                s.refused_until = None;
            }
        }
        for (i, &(q, amount)) in need.iter().enumerate() {
            self.mark(q);
            if !self.states[q.0 as usize].allowance.reserve(amount) {
                for &(q, amount) in &need[..i] {
                    self.states[q.0 as usize].allowance.release(amount);
                }
                for &(q, amount) in need {
                    let s = &mut self.states[q.0 as usize];
                    s.waiting_need = s.waiting_need.max(amount);
                    if s.allowance.available() < amount && !s.asked {
                        let want = amount - s.allowance.available();
                        self.ask(q, want);
                    }
                }
                return Reserve::Short;
            }
        }
        // Ask ahead when the allowance runs low, so the next requests need not wait.
        for &(q, amount) in need {
            let s = &mut self.states[q.0 as usize];
            s.waiting_need = 0;
            if !s.asked && s.allowance.available() < (s.last_grant / 4).max(amount) {
                self.ask(q, amount);
            }
        }
        Reserve::Granted
    }

    fn ask(&mut self, q: QuotaId, want: Micros) {
        let s = &mut self.states[q.0 as usize];
        s.asked = true;
        s.want = want.max(1);
        self.mark(q);
        self.urgent = true;
    }

    fn mark(&mut self, q: QuotaId) {
        let s = &mut self.states[q.0 as usize];
        if !s.dirty {
            s.dirty = true;
            self.dirty.push(q);
        }
    }

    /// A call that held `estimate` cost `actual`.
    pub fn settle(&mut self, q: QuotaId, estimate: Micros, actual: Micros) {
        let s = &mut self.states[q.0 as usize];
        s.used += s.allowance.settle(estimate, actual);
        self.mark(q);
    }

    /// A call that held `estimate` ended without cost.
    pub fn release(&mut self, q: QuotaId, estimate: Micros) {
        self.states[q.0 as usize].allowance.release(estimate);
        self.mark(q);
    }

    /// Applies one message from the coordinator.
    pub fn apply(&mut self, q: QuotaId, msg: QuotaControl, now: Instant) {
        let Some(s) = self.states.get_mut(q.0 as usize) else {
            return;
        };
        match msg {
            QuotaControl::Grant {
                amount,
                free,
                refused_ms,
            } => {
                let was_asked = s.asked;
                s.allowance.granted(amount);
                s.asked = false;
                // A retired snapshot keeps only what a request of its own is waiting for.
                if self.retired && !was_asked {
                    s.returned += s.allowance.give_back(0);
                    self.mark(q);
                    self.urgent = true;
                    return;
                }
                let s = &mut self.states[q.0 as usize];
                s.free = free;
                if amount > 0 {
                    s.last_grant = amount;
                }
                // A refusal of an ask ahead of need is no reason to refuse the next request.
                if let Some(ms) = refused_ms
                    && s.waiting_need > 0
                {
                    s.retry_at = Some(now + Duration::from_millis(ms));
                    s.refused_until = Some(now + Duration::from_millis(ms).min(REFUSAL_MEMORY));
                }
            }
            QuotaControl::Reclaim => {
                s.returned += s.allowance.give_back(s.waiting_need);
                s.reclaimed = true;
                self.mark(q);
                self.urgent = true;
            }
            QuotaControl::Warn(on) => s.warned = on,
            QuotaControl::Reset => {
                s.refused_until = None;
                s.warned = false;
            }
        }
    }

    /// An ask or a reclaim answer is waiting to go out.
    pub fn has_urgent(&self) -> bool {
        self.urgent
    }

    /// Takes every message due.
    pub fn drain(&mut self, mut emit: impl FnMut(LeaseMsg)) {
        self.urgent = false;
        for q in self.dirty.drain(..) {
            let s = &mut self.states[q.0 as usize];
            s.dirty = false;
            let reserved = s.allowance.reserved();
            if s.used == 0
                && s.returned == 0
                && s.want == 0
                && !s.reclaimed
                && reserved == s.reported_reserved
            {
                continue;
            }
            emit(LeaseMsg {
                worker: self.worker,
                generation: self.generation,
                quota: q,
                used: std::mem::take(&mut s.used),
                returned: std::mem::take(&mut s.returned),
                want: std::mem::take(&mut s.want),
                reserved,
                reclaimed: std::mem::take(&mut s.reclaimed),
            });
            s.reported_reserved = reserved;
        }
    }

    /// Everything available goes back (a new snapshot replaces these quotas); reservations
    /// of calls in flight are settled later through [`Quotas::settle`] on this same object.
    /// Called again on every tick while such calls remain.
    pub fn retire(&mut self) {
        self.retired = true;
        for i in 0..self.states.len() {
            let s = &mut self.states[i];
            let back = s.allowance.give_back(0);
            if back > 0 {
                s.returned += back;
                self.mark(QuotaId(i as u32));
                self.urgent = true;
            }
        }
    }

    /// True when no call holds a reservation and nothing is left to report.
    pub fn is_idle(&self) -> bool {
        self.dirty.is_empty() && self.states.iter().all(|s| s.allowance.reserved() == 0)
    }

    /// The soft threshold has been crossed for `q`.
    pub fn warned(&self, q: QuotaId) -> bool {
        self.states[q.0 as usize].warned
    }

    /// What this worker believes is left of `q`: its own allowance plus the coordinator's
    /// free amount at its last answer (approximate by design: other workers hold grants too).
    pub fn remaining(&self, q: QuotaId) -> Micros {
        let s = &self.states[q.0 as usize];
        (s.allowance.available() + s.free).max(0)
    }

    pub fn reserved(&self, q: QuotaId) -> Micros {
        self.states[q.0 as usize].allowance.reserved()
    }

    /// What this worker's allowance for `q` holds unreserved (no coordinator involved).
    pub fn available(&self, q: QuotaId) -> Micros {
        self.states[q.0 as usize].allowance.available().max(0)
    }

    /// Reserves `need` from the worker's allowance alone — no asks, whatever was refused
    /// recently — or none of it. For a stream taking the last of a budget before it is cut.
    pub fn reserve_local(&mut self, need: &[(QuotaId, Micros)]) -> bool {
        for (i, &(q, amount)) in need.iter().enumerate() {
            if !self.states[q.0 as usize].allowance.reserve(amount) {
                for &(q, amount) in &need[..i] {
                    self.states[q.0 as usize].allowance.release(amount);
                }
                return false;
            }
            self.mark(q);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(q: &mut Quotas) -> Vec<LeaseMsg> {
        let mut out = Vec::new();
        q.drain(|m| out.push(m));
        out
    }

    #[test]
    fn all_or_nothing_and_one_ask_per_quota() {
        let now = Instant::now();
        let mut q = Quotas::new(3, 7, 2);
        let need = [(QuotaId(0), 10), (QuotaId(1), 1)];
        q.apply(
            QuotaId(0),
            QuotaControl::Grant {
                amount: 100,
                free: 0,
                refused_ms: None,
            },
            now,
        );
        assert_eq!(q.reserve(&need, now), Reserve::Short);
        assert_eq!(
            q.reserved(QuotaId(0)),
            0,
            "nothing reserved when one quota is short"
        );
        assert_eq!(q.reserve(&need, now), Reserve::Short);
        assert!(q.has_urgent());
        let msgs = drained(&mut q);
        assert_eq!(msgs.len(), 1, "one ask, for the short quota only: {msgs:?}");
        assert_eq!(
            (msgs[0].quota, msgs[0].want, msgs[0].worker),
            (QuotaId(1), 1, 3)
        );
        q.apply(
            QuotaId(1),
            QuotaControl::Grant {
                amount: 5,
                free: 0,
                refused_ms: None,
            },
            now,
        );
        assert_eq!(q.reserve(&need, now), Reserve::Granted);
        q.settle(QuotaId(0), 10, 4);
        q.release(QuotaId(1), 1);
        assert_eq!(q.reserved(QuotaId(0)), 0, "settled");
        assert_eq!(q.reserved(QuotaId(1)), 0, "released");
        assert!(
            !q.dirty.is_empty(),
            "the settlement is waiting to be reported"
        );
        let msgs = drained(&mut q);
        let used: Vec<(u32, i64)> = msgs.iter().map(|m| (m.quota.0, m.used)).collect();
        assert!(used.contains(&(0, 4)), "{used:?}");
        assert!(q.is_idle());
    }

    #[test]
    fn a_refusal_is_remembered_until_reset() {
        let now = Instant::now();
        let mut q = Quotas::new(0, 0, 1);
        let need = [(QuotaId(0), 10)];
        assert_eq!(q.reserve(&need, now), Reserve::Short);
        q.apply(
            QuotaId(0),
            QuotaControl::Grant {
                amount: 0,
                free: 0,
                refused_ms: Some(60_000),
            },
            now,
        );
        assert!(matches!(
            q.reserve(&need, now),
            Reserve::Refused {
                retry_ms: 60_000,
                ..
            }
        ));
        q.apply(QuotaId(0), QuotaControl::Reset, now);
        assert_eq!(
            q.reserve(&need, now),
            Reserve::Short,
            "asks again after a reset"
        );
        // Remembered at most REFUSAL_MEMORY.
        q.apply(
            QuotaId(0),
            QuotaControl::Grant {
                amount: 0,
                free: 0,
                refused_ms: Some(60_000),
            },
            now,
        );
        assert_eq!(
            q.reserve(&need, now + REFUSAL_MEMORY),
            Reserve::Short,
            "asks again once the memory lapses"
        );
    }

    #[test]
    fn reclaim_hands_back_only_what_is_not_reserved() {
        let now = Instant::now();
        let mut q = Quotas::new(1, 0, 1);
        q.apply(
            QuotaId(0),
            QuotaControl::Grant {
                amount: 100,
                free: 0,
                refused_ms: None,
            },
            now,
        );
        assert_eq!(q.reserve(&[(QuotaId(0), 30)], now), Reserve::Granted);
        drained(&mut q);
        q.apply(QuotaId(0), QuotaControl::Reclaim, now);
        assert!(q.has_urgent());
        let m = drained(&mut q);
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].returned, m[0].reserved, m[0].reclaimed),
            (70, 30, true)
        );
    }
}
