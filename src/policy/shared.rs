//! Leases one level up (ARCHITECTURE.md, "Many instances"), sans-IO: with `[cluster]`, the
//! coordinator's books grant its workers only what the instance leased from Redis.
//!
//! Every quota (a key's, team's or deployment's budget or rate limit) is one Redis hash per
//! period: `spent` (settled, all instances), `out` (leased to instances and not yet consumed
//! or returned), and per instance its lease `h:<instance>`. One server-side script
//! (`account/cluster.lua`) does what [`super::budget::LeaseBook`] does for workers, atomically:
//! it adds the instance's settled use to `spent` (a rate limit's `spent` drains at `cap` per
//! minute, by Redis's clock), takes back what the instance returns, and grants from
//! `free = cap − spent − out` — never more than is free. Here, per quota, the instance keeps
//! [`Upper`]: use and returns not yet sent, what to ask for, the consumption rate that sizes
//! the next lease, and Redis's figures as of the last answer. [`super::books::Books::take_asks`] collects a
//! batch (at most one in flight), `answered` or `failed` applies its fate.
//!
//! **The global overshoot bound.** Redis never leases more than is free, an instance never
//! grants its workers more than it leased, and a worker admits only against its grant; so, as
//! with one instance, spending past a cap happens only through requests that cost more than
//! their reservation: `spent ≤ cap + Σ over all instances' admitted requests of max(actual −
//! estimate, 0)`. Three things widen it, each bounded:
//! - **An instance that dies holding a lease**: its lease returns to the pool once it has been
//!   silent for `instance_ttl_ms`, but what it settled and had not flushed yet (at most one
//!   `flush_ms` of its spend, and never more than the lease it held) is never added to
//!   `spent`: a dead instance widens the bound by at most its last lease.
//! - Leases themselves add nothing: what an instance holds is counted as taken until it is
//!   used or returned, so the lease size only decides how often an instance asks, not how far
//!   a cap can be passed.
//! - **Fail-open** (Redis unreachable): each instance may spend, beyond the lease it held, its
//!   *share* of what was free when Redis was last seen, `free_then / N` (a rate limit's
//!   share then refills locally at `cap / N` per minute), where `N` is `cluster.instances` or
//!   else the number of instances alive at the last contact. While all instances agree on `N`
//!   the shares add up to what was free, so a budget still holds; the spend is flushed when
//!   Redis returns (nothing is lost, and `spent` may then pass the cap by the rate limits'
//!   shares and the estimation error).
//! - **Clock skew** between instances only moves spend across a period boundary (the period a
//!   hash belongs to is named in its key); Redis's own clock drains rate limits.
//!
//! **Lease sizing.** An ask is for what the waiting requests need plus the instance's
//! consumption over [`LEASE_HORIZON`]; Redis grants at most half of what is free beyond the
//! need, so the last of a cap is shared rather than taken by one instance. Every flush, an
//! instance returns what it holds idle beyond twice its horizon's consumption, so a quiet
//! instance gives back its lease within a flush or two and a busy one keeps asking ahead.
//! An instance short while others hold leases is refused with a short retry
//! ([`CLUSTER_RETRY_MS`]): their idle part comes back on their next flush.

use std::time::{Duration, Instant};

use super::books::{Books, Waiting, next_period_start};
use super::budget::Micros;
use super::quota::QuotaControl;
use crate::calendar::{Day, Period};
use crate::config::cluster::{Cluster, FailMode};
use crate::config::{Quota, Window};

/// How often a held lease is shown to Redis without news.
const RENEW: Duration = Duration::from_secs(1);

/// The consumption a lease is sized for.
pub const LEASE_HORIZON: Duration = Duration::from_millis(500);
/// The retry time of a refusal while other instances hold leases of the quota.
pub const CLUSTER_RETRY_MS: u64 = 100;

/// One quota's part of a batch to Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ask {
    /// The book's index (the answer names it back).
    pub book: u32,
    /// The hash's name after the prefix: the quota's name and its period (`…@20424`,
    /// `…@total`, `…@rate`).
    pub key: String,
    pub cap: Micros,
    /// A rate limit: `spent` drains at `cap` per minute.
    pub drain: bool,
    /// How long the hash outlives its last write (0: forever).
    pub ttl_ms: u64,
    /// Settled use since the last batch.
    pub used: Micros,
    /// Lease handed back.
    pub returned: Micros,
    /// Wanted now (0: nothing).
    pub want: Micros,
    /// The least a grant is useful at: Redis grants `max(need, free / 2)` of `want` at most.
    pub need: Micros,
    /// An admin reset: `spent` starts over.
    pub reset: bool,
}

/// Redis's answer for one [`Ask`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    pub book: u32,
    pub granted: Micros,
    /// What the instance holds leased after this call.
    pub held: Micros,
    pub spent: Micros,
    pub out: Micros,
}

/// Redis's figures for a quota as of the last answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Known {
    pub spent: Micros,
    pub out: Micros,
}

/// One quota's state one level up.
#[derive(Clone, Debug, Default)]
pub struct Upper {
    pub used: Micros,
    pub returned: Micros,
    pub want: Micros,
    pub need: Micros,
    pub reset: bool,
    /// An ask of this quota is in the batch in flight.
    pub asking: bool,
    /// Consumption per second, smoothed over flushes.
    pub rate: f64,
    pub window_used: Micros,
    pub known: Option<Known>,
    /// Fail-open: what the local rate share has added since the outage began.
    pub refilled: Micros,
}

impl Upper {
    /// An ask is pending or in flight: waiting asks wait for its answer.
    pub fn pending(&self) -> bool {
        self.asking || self.want > 0
    }

    /// What the next lease should add beyond the need: the horizon's consumption.
    pub fn ahead(&self) -> Micros {
        (self.rate * LEASE_HORIZON.as_secs_f64()) as Micros
    }

    /// Folds the use since the last flush (`secs` ago) into the rate.
    pub fn sample(&mut self, secs: f64) {
        if secs <= 0.0 {
            return;
        }
        let now = self.window_used as f64 / secs;
        self.rate = if self.rate == 0.0 {
            now
        } else {
            0.7 * self.rate + 0.3 * now
        };
        self.window_used = 0;
    }

    /// What to hand back of `idle` (leased, not granted to workers): beyond twice the
    /// horizon's consumption.
    pub fn surplus(&self, idle: Micros) -> Micros {
        (idle - 2 * self.ahead()).max(0)
    }
}

/// How the instance stands with Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Not yet reached.
    Starting,
    Up,
    /// Unreachable since the first failure; `open`: failing open on local shares.
    Down {
        open: bool,
    },
}

/// A fail-open share: `1/n` of what was free (budgets), or of the cap per minute (rates).
pub fn share(free: Micros, n: u32) -> Micros {
    free.max(0) / Micros::from(n.max(1))
}

/// With `[cluster]`: how the books stand with Redis.
#[derive(Debug)]
pub(super) struct Link {
    pub(super) state: LinkState,
    pub(super) fail: FailMode,
    /// `cluster.instances`: the fail-open share's divisor, when fixed.
    pub(super) fixed_n: Option<u32>,
    /// Instances alive at the last contact.
    pub(super) instances: u32,
    pub(super) flush: Duration,
    pub(super) lease_wait: Duration,
    pub(super) next_flush: Instant,
    pub(super) last_flush: Instant,
    /// An ask cannot wait for the next flush.
    pub(super) urgent: bool,
    /// A batch is out (or failed, and is being resent as it was).
    pub(super) in_flight: bool,
    /// The next batch carries every quota, so that every lease is re-read.
    pub(super) resync: bool,
    pub(super) down_at: Instant,
    /// Quotas this instance holds a lease of are in the next batch even without news, so
    /// that it sees the others' state (and gives back what it holds idle when nothing is
    /// free anywhere).
    pub(super) next_renew: Instant,
    /// Times this instance was counted as gone by the others.
    pub(super) lapses: u64,
    /// Times Redis became unreachable.
    pub(super) outages: u64,
}

/// What the metrics and the admin API show of the link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkView {
    pub up: bool,
    pub failing_open: bool,
    pub instances: u32,
    /// Settled use not yet in Redis, summed over quotas (mixed units: a count of backlog).
    pub unsynced: i64,
    pub outages: u64,
    pub lapses: u64,
}

impl Books {
    /// `[cluster]`: the books lease from Redis from now on (before any worker asks).
    pub fn set_cluster(&mut self, c: &Cluster, lease_wait: Duration, now: Instant) {
        self.link = Some(Link {
            state: LinkState::Starting,
            fail: c.fail,
            fixed_n: c.instances,
            instances: c.instances.unwrap_or(1),
            flush: c.flush,
            lease_wait,
            next_flush: now,
            last_flush: now,
            urgent: true,
            in_flight: false,
            resync: true,
            down_at: now,
            next_renew: now,
            lapses: 0,
            outages: 0,
        });
        for book in &mut self.books {
            book.lease.set_instance(Some(0));
        }
    }

    /// The link's part of a tick: fail-open rate shares refill; fail-closed asks that waited
    /// `lease_wait` are answered (with what is free here, else nothing: the request gets a
    /// 503).
    pub(super) fn tick_link(&mut self, now: Instant) {
        let Some(link) = &self.link else { return };
        let LinkState::Down { open } = link.state else {
            return;
        };
        let (n, lease_wait) = (self.share_n(), link.lease_wait);
        let since = now.saturating_duration_since(link.down_at).as_millis() as i64;
        for b in 0..self.books.len() {
            let book = &mut self.books[b];
            if open {
                if book.quota.window == Window::Minute {
                    // A local bucket of `cap / N` per minute.
                    let per_min = share(book.quota.cap as Micros, n);
                    let due = per_min * since / 60_000;
                    let add = due - book.upper.refilled;
                    if add > 0 {
                        book.upper.refilled = due;
                        let lease = book.lease.instance().unwrap_or(0);
                        book.lease
                            .set_instance(Some((lease + add).min(per_min.max(lease))));
                    }
                }
                continue;
            }
            if book
                .waiting
                .iter()
                .any(|w| now.duration_since(w.since) >= lease_wait)
            {
                let (late, young): (Vec<Waiting>, Vec<Waiting>) = std::mem::take(&mut book.waiting)
                    .into_iter()
                    .partition(|w| now.duration_since(w.since) >= lease_wait);
                book.waiting = young;
                for wt in late {
                    let g = book.lease.grant_at_least(usize::from(wt.worker), wt.want);
                    self.out.push(wt.answer(g, book.shown_free(), None));
                }
            }
        }
    }

    fn share_n(&self) -> u32 {
        self.link
            .as_ref()
            .map_or(1, |l| l.fixed_n.unwrap_or(l.instances).max(1))
    }

    /// The next batch for Redis, when one is due (every flush, or at once for an ask) and
    /// none is out: per quota, the use settled and the lease returned since the last batch,
    /// and what to ask for. Idle lease beyond the horizon's need goes back here.
    pub fn take_asks(&mut self, now: Instant) -> Option<Vec<Ask>> {
        let link = self.link.as_mut()?;
        if link.in_flight || !(link.urgent || link.resync || now >= link.next_flush) {
            return None;
        }
        let secs = now.saturating_duration_since(link.last_flush).as_secs_f64();
        link.last_flush = now;
        link.next_flush = now + link.flush;
        link.urgent = false;
        let (up, all) = (link.state == LinkState::Up, link.resync);
        link.resync = false;
        let renew = now >= link.next_renew;
        if renew {
            link.next_renew = now + RENEW;
        }
        let mut asks = Vec::new();
        for (i, book) in self.books.iter_mut().enumerate() {
            let u = &mut book.upper;
            u.sample(secs);
            if up && u.want == 0 && book.waiting.is_empty() {
                let back = u.surplus(book.lease.free());
                if back > 0 {
                    let lease = book.lease.instance().unwrap_or(0);
                    book.lease.set_instance(Some(lease - back));
                    u.returned += back;
                }
            }
            let holds = book.lease.instance().unwrap_or(0) != 0 || book.lease.outstanding() > 0;
            let news = u.used != 0 || u.returned != 0 || u.want != 0 || u.reset;
            if !(all || news || renew && holds) {
                continue;
            }
            let (key, drain, ttl_ms) = upper_key(&book.quota, book.period_start);
            let u = &mut book.upper;
            asks.push(Ask {
                book: i as u32,
                key,
                cap: book.quota.cap as Micros,
                drain,
                ttl_ms,
                used: std::mem::take(&mut u.used),
                returned: std::mem::take(&mut u.returned),
                want: std::mem::take(&mut u.want),
                need: std::mem::take(&mut u.need),
                reset: std::mem::take(&mut u.reset),
            });
            u.asking = asks.last().is_some_and(|a| a.want > 0);
        }
        link.in_flight = true;
        Some(asks)
    }

    /// Redis answered the batch out: `instances` are alive; `lapsed`: this instance had been
    /// taken for dead (its leases may have been taken back), so every lease is re-read.
    pub fn answered(&mut self, answers: &[Answer], instances: u32, lapsed: bool) {
        let Some(link) = &mut self.link else { return };
        link.in_flight = false;
        link.instances = instances.max(1);
        if let LinkState::Down { .. } = link.state {
            link.resync = true;
            self.link_notices.push(format!(
                "redis reachable again: spend settled during the outage is now counted; leases re-read ({instances} instance(s) alive)"
            ));
        }
        if lapsed {
            link.resync = true;
            link.lapses += 1;
            self.link_notices.push(
                "this instance was silent past cluster.instance_ttl_ms and counted as gone: its leases are re-read"
                    .into(),
            );
        }
        link.state = LinkState::Up;
        for a in answers {
            let Some(book) = self.books.get_mut(a.book as usize) else {
                continue;
            };
            let u = &mut book.upper;
            u.asking = false;
            u.refilled = 0;
            u.known = Some(Known {
                spent: a.spent,
                out: a.out,
            });
            // What Redis says the instance holds, less what was used or returned since the
            // batch left.
            book.lease.set_instance(Some(a.held - u.used - u.returned));
        }
        for a in answers {
            let b = a.book as usize;
            let Some(book) = self.books.get(b) else {
                continue;
            };
            // Nothing is free anywhere: what this instance's workers hold idle goes back
            // (and from here to Redis on the next flush), for whichever instance needs it.
            let idle = book.lease.outstanding() - book.reserved.iter().sum::<Micros>();
            if book.quota.cap as Micros - a.spent - a.out <= 0 && book.reclaiming == 0 && idle > 0 {
                self.broadcast(b, QuotaControl::Reclaim);
            }
            if !self.books[b].waiting.is_empty()
                && self.books[b].reclaiming == 0
                && self.upper_ready(b)
            {
                self.decide_waiting(b);
            }
        }
    }

    /// The batch out failed (Redis unreachable, or too slow). It stays out, to be resent as
    /// it was; failing open, every quota gets its local share now.
    pub fn failed(&mut self, now: Instant) {
        let n = self.share_n();
        let Some(link) = &mut self.link else { return };
        if let LinkState::Down { .. } = link.state {
            return;
        }
        let open = link.fail == FailMode::Open;
        link.state = LinkState::Down { open };
        link.down_at = now;
        link.outages += 1;
        self.link_notices.push(if open {
            format!(
                "redis unreachable: failing open — each instance spends its share (1/{n}) of what was free, rate limits at 1/{n} of their cap; spend is kept and counted when redis returns"
            )
        } else {
            "redis unreachable: failing closed — requests that need more allowance than this instance holds get 503 after quotas.lease_wait_ms"
                .to_owned()
        });
        if !open {
            return;
        }
        for b in 0..self.books.len() {
            let book = &mut self.books[b];
            book.upper.refilled = 0;
            // What was free (a rate limit's bucket too, which then refills at its share).
            let free = book.upper.known.map_or(book.quota.cap as Micros, |k| {
                book.quota.cap as Micros - k.spent - k.out
            });
            let lease = book.lease.instance().unwrap_or(0);
            book.lease.set_instance(Some(lease + share(free, n)));
            if !book.waiting.is_empty() && book.reclaiming == 0 {
                self.decide_waiting(b);
            }
        }
    }

    /// The next [`Books::take_asks`] returns a batch, due or not (shutdown).
    pub fn flush_now(&mut self) {
        if let Some(l) = &mut self.link {
            l.urgent = true;
        }
    }

    /// Some use or return has not gone to Redis yet.
    pub fn has_news(&self) -> bool {
        self.books
            .iter()
            .any(|b| b.upper.used != 0 || b.upper.returned != 0 || b.upper.reset)
    }

    /// How the link stands.
    pub fn link_view(&self) -> Option<LinkView> {
        let l = self.link.as_ref()?;
        Some(LinkView {
            up: l.state == LinkState::Up,
            failing_open: l.state == LinkState::Down { open: true },
            instances: l.instances,
            unsynced: self.books.iter().map(|b| b.upper.used).sum(),
            outages: l.outages,
            lapses: l.lapses,
        })
    }
}

/// The Redis hash of a book's current period (after the prefix), whether it drains, and how
/// long it outlives its last write.
fn upper_key(quota: &Quota, period_start: Day) -> (String, bool, u64) {
    const DAY_MS: u64 = 86_400_000;
    match quota.window {
        Window::Minute => (format!("{}@rate", quota.name), true, 120_000),
        Window::Period(Period::Total) => (format!("{}@total", quota.name), false, 0),
        Window::Period(p) => {
            let days = u64::from(next_period_start(p, period_start) - period_start);
            (
                format!("{}@{}", quota.name, period_start),
                false,
                (days + 7) * DAY_MS,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_follow_use_and_quiet_instances_give_back() {
        let mut u = Upper {
            window_used: 1_000,
            ..Upper::default()
        };
        u.sample(0.1);
        assert_eq!(u.rate, 10_000.0);
        assert_eq!(u.ahead(), 5_000, "half a second of use");
        assert_eq!(u.surplus(12_000), 2_000);
        // Quiet: the rate decays and the lease goes back.
        for _ in 0..30 {
            u.sample(0.1);
        }
        assert!(u.surplus(12_000) > 11_900);
        assert_eq!(share(900, 3), 300);
        assert_eq!(share(-5, 3), 0);
    }
}
