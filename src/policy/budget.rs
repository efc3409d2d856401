//! Leases (ARCHITECTURE.md, "Money"), sans-IO: the coordinator's book of what each worker may spend
//! ([`LeaseBook`]) and a worker's side of it ([`Allowance`]). [`super::books`] keeps one
//! `LeaseBook` per quota on the coordinator, [`super::quota`] one `Allowance` per quota on each
//! worker; the rings carry asks one way and grants the other.
//!
//! One quota (a key's, a team's or a deployment's cap: micro-dollars or tokens for the current
//! period, or requests or tokens per minute); described here for a budget in micro-dollars:
//!
//! - The coordinator owns `cap`, the settled `spent`, and per worker the allowance `held[w]`
//!   it granted and has not yet seen consumed. It grants only from
//!   `free = cap − spent − Σ max(held[w], 0)`, so **the sum of outstanding grants never
//!   exceeds what remains**.
//! - A worker admits a request only if its allowance covers the request's *estimate*
//!   (reserve); when the call ends it settles the *actual* cost (the unused part of the
//!   reservation returns to its allowance) and reports the actual cost, which the coordinator
//!   moves from `held[w]` to `spent`.
//! - A worker short of allowance asks for more (at least its estimate; a slice of the cap so
//!   that a busy worker does not ask per request) and waits briefly; grants follow demand, so
//!   one worker can use the whole cap. Allowance a worker holds but does not need can be
//!   taken back ([`Allowance::give_back`]) when another worker is short.
//!
//! **The overshoot bound.** Spending beyond the cap happens only through requests admitted
//! against reservations smaller than their actual cost: `spent ≤ cap + Σ max(actual −
//! estimate, 0)` over the admitted requests. With estimates built from the request's own
//! `max_tokens` (or the key's default) at the deployment's price, a request's actual cost
//! can exceed its estimate only by the prompt-estimate error (and, when the key sets no
//! default and the client no `max_tokens`, by output beyond `quotas.default_output_tokens`);
//! the test below checks the bound with adversarial estimates.
//!
//! With `cut_stream_at_cap`, a stream's output is held to its reservation as it is relayed:
//! past it, the relay reserves more or ends the stream (`worker::admit::extend_output`). The
//! client then receives no more than the cap; what the provider had already sent past it
//! (the rest of the upstream read in which the cap was reached — one event for a stream paced
//! token by token) is still charged, since the provider bills it.

/// Micro-dollars (signed: an allowance can go negative after an underestimate).
pub type Micros = i64;

/// A worker's request for more allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantRequest {
    pub worker: usize,
    pub want: Micros,
}

/// The coordinator's book for one scope.
#[derive(Debug, Clone)]
pub struct LeaseBook {
    cap: Micros,
    spent: Micros,
    held: Vec<Micros>,
    /// Grants are at least this (a fraction of the cap), to amortise round trips.
    slice: Micros,
    /// With `[cluster]`: what this instance leased from Redis and has not seen consumed or
    /// returned (its workers' grants included); grants come from it, not from `cap − spent`
    /// (`policy::shared`).
    instance: Option<Micros>,
}

impl LeaseBook {
    pub fn new(cap: Micros, workers: usize) -> Self {
        LeaseBook {
            cap,
            spent: 0,
            held: vec![0; workers],
            slice: (cap / (16 * workers.max(1) as Micros)).max(1),
            instance: None,
        }
    }

    /// What can still be granted.
    pub fn free(&self) -> Micros {
        let held = self.outstanding();
        match self.instance {
            Some(lease) => lease - held,
            None => self.cap - self.spent - held,
        }
    }

    /// The instance's lease from Redis (`None`: the cap is this instance's alone).
    pub fn instance(&self) -> Option<Micros> {
        self.instance
    }

    pub fn set_instance(&mut self, lease: Option<Micros>) {
        self.instance = lease;
    }

    pub fn spent(&self) -> Micros {
        self.spent
    }

    /// Outstanding grants (allowance held by workers, not yet consumed).
    pub fn outstanding(&self) -> Micros {
        self.held.iter().map(|h| (*h).max(0)).sum()
    }

    pub fn cap(&self) -> Micros {
        self.cap
    }

    /// What worker `w` holds (granted, not yet reported consumed or returned).
    pub fn held(&self, w: usize) -> Micros {
        self.held.get(w).copied().unwrap_or(0)
    }

    /// Grants at least `want` (a slice, when that is more and free), or nothing at all.
    pub fn grant_at_least(&mut self, worker: usize, want: Micros) -> Micros {
        if self.free() < want {
            return 0;
        }
        self.grant(GrantRequest { worker, want })
    }

    /// A new cap (a reload changed it); grants and spend stay.
    pub fn set_cap(&mut self, cap: Micros) {
        self.cap = cap;
        self.slice = (cap / (16 * self.held.len().max(1) as Micros)).max(1);
    }

    /// A rate limit's bucket drains: `amount` of what was spent no longer counts.
    pub fn leak(&mut self, amount: Micros) {
        self.spent = (self.spent - amount).max(0);
    }

    /// A new budget period (or an admin reset): nothing spent yet.
    pub fn set_spent(&mut self, spent: Micros) {
        self.spent = spent;
    }

    /// Answers a request: the grant (0 when nothing is free). Never more than is free.
    pub fn grant(&mut self, r: GrantRequest) -> Micros {
        let free = self.free();
        if free <= 0 {
            return 0;
        }
        // Near the cap, a grant leaves half of what is free for the other workers, so that
        // the last of a budget is shared rather than passed back and forth whole.
        let g = r.want.max(self.slice.min(free / 2)).min(free);
        self.held[r.worker] += g;
        g
    }

    /// A worker reports what its calls actually cost (settled spend).
    pub fn consumed(&mut self, worker: usize, cost: Micros) {
        self.spent += cost;
        self.held[worker] -= cost;
        if let Some(lease) = &mut self.instance {
            *lease -= cost;
        }
    }

    /// A worker gave back unused allowance.
    pub fn returned(&mut self, worker: usize, amount: Micros) {
        self.held[worker] -= amount;
    }
}

/// A worker's allowance for one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allowance {
    /// Granted and not reserved or consumed.
    available: Micros,
    /// Reserved by calls in flight.
    reserved: Micros,
}

impl Allowance {
    /// Reserves `estimate` for a call; false (nothing reserved) when the allowance is short —
    /// then ask the coordinator for at least `estimate − available`.
    pub fn reserve(&mut self, estimate: Micros) -> bool {
        if self.available < estimate {
            return false;
        }
        self.available -= estimate;
        self.reserved += estimate;
        true
    }

    /// The call ended: it cost `actual` against its reservation of `estimate`. Returns the
    /// cost to report to the coordinator.
    pub fn settle(&mut self, estimate: Micros, actual: Micros) -> Micros {
        self.reserved -= estimate;
        self.available += estimate - actual;
        actual
    }

    /// The call ended without cost (nothing was started): the reservation returns whole.
    pub fn release(&mut self, estimate: Micros) {
        self.reserved -= estimate;
        self.available += estimate;
    }

    pub fn granted(&mut self, amount: Micros) {
        self.available += amount;
    }

    /// Hands back what is available beyond `keep` (never what calls in flight reserved), for
    /// another worker.
    pub fn give_back(&mut self, keep: Micros) -> Micros {
        let back = (self.available - keep.max(0)).max(0);
        self.available -= back;
        back
    }

    pub fn available(&self) -> Micros {
        self.available
    }

    pub fn reserved(&self) -> Micros {
        self.reserved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic generator (xorshift), so the race is reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn grants_never_exceed_what_remains_and_one_worker_can_use_the_whole_cap() {
        let mut book = LeaseBook::new(1_000, 4);
        let mut a = Allowance::default();
        let mut used = 0;
        loop {
            if !a.reserve(10) {
                let g = book.grant(GrantRequest {
                    worker: 0,
                    want: 10,
                });
                if g == 0 {
                    break;
                }
                a.granted(g);
                assert!(book.outstanding() + book.spent() <= 1_000);
                continue;
            }
            used += a.settle(10, 10);
            book.consumed(0, 10);
        }
        assert_eq!(used, 1_000, "a single worker spent the whole cap");
        assert_eq!(book.free(), 0);
    }

    /// Many workers race one cap with calls whose actual cost differs from the estimate
    /// (both ways, in flight concurrently, some never started). At every step the grants stay
    /// within what remains; at the end spent ≤ cap + Σ max(actual − estimate, 0) over the
    /// admitted calls, and every reservation was settled or released.
    #[test]
    fn the_overshoot_is_bounded_by_the_estimation_error_of_admitted_calls() {
        for seed in 1..=50u64 {
            let workers = 4;
            let cap = 100_000;
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut book = LeaseBook::new(cap, workers);
            let mut allow = vec![Allowance::default(); workers];
            // Calls in flight: (worker, estimate, actual, started).
            let mut flight: Vec<(usize, Micros, Micros, bool)> = Vec::new();
            let mut underestimate = 0;
            let mut refused = 0;
            for _ in 0..20_000 {
                let w = (rng.next() % workers as u64) as usize;
                if rng.next().is_multiple_of(3) && !flight.is_empty() {
                    // A call ends.
                    let i = (rng.next() % flight.len() as u64) as usize;
                    let (fw, est, actual, started) = flight.swap_remove(i);
                    if started {
                        let cost = allow[fw].settle(est, actual);
                        book.consumed(fw, cost);
                        underestimate += (actual - est).max(0);
                    } else {
                        allow[fw].release(est);
                    }
                } else {
                    // A call arrives: estimate 100..1100; actual 0..1.5× of it.
                    let est = 100 + (rng.next() % 1000) as Micros;
                    let actual = est * (rng.next() % 150) as Micros / 100;
                    let started = !rng.next().is_multiple_of(10);
                    if !allow[w].reserve(est) {
                        let want = est - allow[w].available();
                        let mut g = book.grant(GrantRequest { worker: w, want });
                        if g < want {
                            // Short: take back idle allowance from the others, then ask again.
                            for o in (0..workers).filter(|&o| o != w) {
                                let back = allow[o].give_back(0);
                                book.returned(o, back);
                            }
                            allow[w].granted(g);
                            g = book.grant(GrantRequest {
                                worker: w,
                                want: est - allow[w].available(),
                            });
                            allow[w].granted(g);
                        } else {
                            allow[w].granted(g);
                        }
                        if !allow[w].reserve(est) {
                            refused += 1;
                            continue;
                        }
                    }
                    flight.push((w, est, actual, started));
                }
                assert!(
                    book.spent() + book.outstanding() <= cap + underestimate,
                    "seed {seed}: grants beyond what remains"
                );
            }
            for (fw, est, actual, started) in flight.drain(..) {
                if started {
                    let cost = allow[fw].settle(est, actual);
                    book.consumed(fw, cost);
                    underestimate += (actual - est).max(0);
                } else {
                    allow[fw].release(est);
                }
            }
            assert!(refused > 0, "seed {seed}: the cap was reached");
            assert!(
                book.spent() <= cap + underestimate,
                "seed {seed}: spent {} > cap {cap} + underestimates {underestimate}",
                book.spent()
            );
            assert!(
                allow.iter().all(|a| a.reserved() == 0),
                "seed {seed}: every reservation was settled or released"
            );
        }
    }
}
