//! The coordinator's books: one [`LeaseBook`] per quota, answering the workers' asks.
//!
//! Sans-IO: [`Books::lease`] takes a worker's [`LeaseMsg`], [`Books::tick`] advances time
//! (rate buckets drain, budget periods roll over, soft thresholds are crossed), and both leave
//! the messages for the workers in [`Books::out`].
//!
//! Quotas are identified by name across reloads (`key:alice/usd`): a reload re-indexes them
//! but keeps their books, so spend, grants and rate buckets carry over. A message names its
//! quota by (snapshot generation, [`QuotaId`]); generations the coordinator still remembers
//! map to books.
//!
//! An ask is answered at once when the book has enough free. When it has not, every other
//! worker holding allowance of that quota is told to hand back what it does not have
//! reserved; once they all answered (or [`RECLAIM_WAIT`] passed) the waiting asks are granted
//! if they now can be, and refused otherwise with the time after which trying again makes
//! sense: for a rate limit, when the bucket will have drained enough; for a budget, the next
//! period.
//!
//! Rate limits are leaky buckets of `cap` that drain at `cap` per minute: a scope idle for a
//! minute can burst its whole limit, and sustained use is held to the limit per minute.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::budget::{LeaseBook, Micros};
use super::quota::{LeaseMsg, QuotaControl};
use super::shared::{CLUSTER_RETRY_MS, Known, Link, LinkState, Upper};
use crate::calendar::{Day, Period, day_of};
use crate::config::{Quota, QuotaId, Snapshot, Window};

/// How long waiting asks wait for reclaim answers before they are decided anyway.
pub const RECLAIM_WAIT: Duration = Duration::from_millis(50);
/// The retry time of a refusal by a `total` budget (it only changes by an admin reset or a
/// new config).
const TOTAL_RETRY_MS: u64 = 86_400_000;
const MINUTE_NS: u128 = 60_000_000_000;

/// One message for one worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Out {
    pub worker: u16,
    pub generation: u64,
    pub quota: QuotaId,
    pub msg: QuotaControl,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Waiting {
    pub(super) worker: u16,
    pub(super) generation: u64,
    pub(super) quota: QuotaId,
    pub(super) want: Micros,
    pub(super) since: Instant,
}

#[derive(Debug)]
pub struct Book {
    pub quota: Quota,
    pub(super) lease: LeaseBook,
    /// Per worker, what its calls in flight hold reserved (as last reported).
    pub(super) reserved: Vec<Micros>,
    pub(super) waiting: Vec<Waiting>,
    /// Reclaim answers still expected, and since when.
    pub(super) reclaiming: u32,
    pub(super) reclaim_since: Instant,
    /// Rate limits: the bucket has drained up to this instant.
    pub(super) drained_to: Instant,
    /// Budgets: the first day of the current period.
    pub(super) period_start: Day,
    pub(super) warned: bool,
    /// Everything consumed since the gateway started (rate buckets drain; this does not).
    pub(super) consumed: i64,
    /// With `[cluster]`: the quota one level up (`policy::shared`).
    pub(super) upper: Upper,
}

impl Book {
    /// What the workers are told is left (for `x-ratelimit-remaining-*`): with `[cluster]`,
    /// what no instance holds yet plus this instance's unhanded lease.
    pub(super) fn shown_free(&self) -> Micros {
        let own = self.lease.free();
        self.upper.known.map_or(own, |k| {
            (self.quota.cap as Micros - k.spent - k.out).max(0) + own.max(0)
        })
    }
}

impl Waiting {
    /// The coordinator's answer to this ask: `amount` granted (0: none), `refused_ms` when
    /// refused.
    pub(super) fn answer(&self, amount: Micros, free: Micros, refused_ms: Option<u64>) -> Out {
        Out {
            worker: self.worker,
            generation: self.generation,
            quota: self.quota,
            msg: QuotaControl::Grant {
                amount,
                free,
                refused_ms,
            },
        }
    }
}

/// What the admin API shows of one quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookView {
    pub name: String,
    pub scope: String,
    pub unit: crate::config::Unit,
    pub window: Window,
    pub cap: u64,
    pub spent: i64,
    /// Granted to workers and not yet consumed or returned.
    pub granted: i64,
    /// Held by calls in flight (part of `granted`).
    pub reserved: i64,
    /// What could still be granted.
    pub free: i64,
    pub warned: bool,
    /// Consumed since the gateway started.
    pub consumed: i64,
    /// With `[cluster]`: all instances' settled spend and outstanding leases, as Redis last
    /// said, and what this instance holds leased.
    pub global: Option<Known>,
    pub leased: Option<i64>,
}

#[derive(Debug)]
pub struct Books {
    pub(super) workers: usize,
    pub(super) books: Vec<Book>,
    pub(super) by_name: HashMap<String, usize>,
    /// Per remembered generation, the book of each of its quotas.
    pub(super) generations: Vec<(u64, Vec<usize>)>,
    /// The generation each worker serves.
    pub(super) applied: Vec<u64>,
    pub out: Vec<Out>,
    /// Log lines for the operator (soft thresholds crossed).
    pub notices: Vec<String>,
    /// Log lines about the link to Redis.
    pub link_notices: Vec<String>,
    /// Wall-clock seconds at the last tick (a budget's retry time is counted from it).
    pub(super) wall_s: u64,
    /// `[cluster]`: the books lease from Redis.
    pub(super) link: Option<Link>,
}

impl Books {
    /// Books for `snap`'s quotas; a budget starts from `spent(quota, period start)` (the
    /// ledger's figure).
    pub fn new(
        workers: usize,
        snap: &Snapshot,
        today: Day,
        now: Instant,
        spent: &dyn Fn(&Quota, Day) -> Micros,
    ) -> Self {
        let mut b = Books {
            workers,
            books: Vec::new(),
            by_name: HashMap::new(),
            generations: Vec::new(),
            applied: vec![snap.generation; workers],
            out: Vec::new(),
            notices: Vec::new(),
            link_notices: Vec::new(),
            wall_s: u64::from(today) * 86_400,
            link: None,
        };
        b.add_generation(snap, today, now, spent);
        b
    }

    /// A reload: `snap`'s quotas map onto existing books by name; new ones get new books.
    /// Changed caps take effect at once.
    pub fn add_generation(
        &mut self,
        snap: &Snapshot,
        today: Day,
        now: Instant,
        spent: &dyn Fn(&Quota, Day) -> Micros,
    ) {
        if let Some(l) = &mut self.link {
            l.lease_wait = snap.quota_settings.lease_wait;
        }
        let mut ids = Vec::with_capacity(snap.quotas.len());
        for q in &snap.quotas {
            let i = match self.by_name.get(&q.name) {
                Some(&i) if self.books[i].quota == *q => i,
                Some(&i) => {
                    // Same scope and kind, new cap or period: grants and rate buckets stay.
                    let period_start = match q.window {
                        Window::Period(p) => p.start(today),
                        Window::Minute => 0,
                    };
                    let mut lease = self.books[i].lease.clone();
                    lease.set_cap(q.cap as Micros);
                    if q.window != self.books[i].quota.window {
                        lease.set_spent(match q.window {
                            Window::Period(_) => spent(q, period_start),
                            Window::Minute => 0,
                        });
                    }
                    let b = &mut self.books[i];
                    b.quota = q.clone();
                    b.lease = lease;
                    b.period_start = period_start;
                    i
                }
                None => {
                    let period_start = match q.window {
                        Window::Period(p) => p.start(today),
                        Window::Minute => 0,
                    };
                    let mut lease = LeaseBook::new(q.cap as Micros, self.workers);
                    if q.is_budget() {
                        lease.set_spent(spent(q, period_start));
                    }
                    if self.link.is_some() {
                        lease.set_instance(Some(0));
                    }
                    self.books.push(Book {
                        quota: q.clone(),
                        lease,
                        reserved: vec![0; self.workers],
                        waiting: Vec::new(),
                        reclaiming: 0,
                        reclaim_since: now,
                        drained_to: now,
                        period_start,
                        warned: false,
                        consumed: 0,
                        upper: Upper::default(),
                    });
                    self.by_name.insert(q.name.clone(), self.books.len() - 1);
                    self.books.len() - 1
                }
            };
            ids.push(i);
        }
        self.generations.push((snap.generation, ids));
        if self.generations.len() > 8 {
            self.generations.remove(0);
        }
    }

    /// Worker `w` now serves `generation`.
    pub fn applied(&mut self, worker: u16, generation: u64) {
        if let Some(a) = self.applied.get_mut(usize::from(worker)) {
            *a = generation;
        }
    }

    fn book_of(&self, generation: u64, q: QuotaId) -> Option<usize> {
        self.generations
            .iter()
            .find(|(g, _)| *g == generation)
            .and_then(|(_, ids)| ids.get(q.0 as usize).copied())
    }

    /// The id of book `b` in `generation`.
    fn id_in(&self, generation: u64, b: usize) -> Option<QuotaId> {
        self.generations
            .iter()
            .find(|(g, _)| *g == generation)
            .and_then(|(_, ids)| ids.iter().position(|&i| i == b))
            .map(|i| QuotaId(i as u32))
    }

    /// One message from a worker.
    pub fn lease(&mut self, m: LeaseMsg, now: Instant) {
        let Some(b) = self.book_of(m.generation, m.quota) else {
            return;
        };
        let w = usize::from(m.worker);
        if w >= self.workers {
            return;
        }
        let book = &mut self.books[b];
        book.lease.consumed(w, m.used);
        book.consumed += m.used;
        if self.link.is_some() {
            book.upper.used += m.used;
            book.upper.window_used += m.used;
        }
        book.lease.returned(w, m.returned);
        book.reserved[w] = m.reserved;
        if m.reclaimed && book.reclaiming > 0 {
            book.reclaiming -= 1;
            if book.reclaiming == 0 {
                self.decide_waiting(b);
            }
        }
        if m.want > 0 {
            self.ask(b, m, now);
        }
    }

    fn ask(&mut self, b: usize, m: LeaseMsg, now: Instant) {
        let w = usize::from(m.worker);
        let waiting = Waiting {
            worker: m.worker,
            generation: m.generation,
            quota: m.quota,
            want: m.want,
            since: now,
        };
        let book = &mut self.books[b];
        let g = book.lease.grant_at_least(w, m.want);
        if g > 0 {
            let free = book.shown_free();
            self.out.push(Out {
                worker: m.worker,
                generation: m.generation,
                quota: m.quota,
                msg: QuotaControl::Grant {
                    amount: g,
                    free,
                    refused_ms: None,
                },
            });
            return;
        }
        // One level up: ask Redis for the shortfall and the horizon's use.
        if let Some(link) = &mut self.link
            && matches!(link.state, LinkState::Up | LinkState::Starting)
        {
            let short = m.want - book.lease.free().max(0);
            book.upper.need = book.upper.need.max(short);
            book.upper.want = book.upper.want.max(short + book.upper.ahead());
            link.urgent = true;
        }
        if book.reclaiming > 0 {
            book.waiting.push(waiting);
            return;
        }
        // Short: take back what the other workers hold idle, then decide.
        let holders: Vec<u16> = (0..self.workers)
            .filter(|&o| o != w && book.lease.held(o) > book.reserved[o])
            .map(|o| o as u16)
            .collect();
        let mut asked = 0;
        for o in holders {
            let generation = self.applied[usize::from(o)];
            if let Some(quota) = self.id_in(generation, b) {
                self.out.push(Out {
                    worker: o,
                    generation,
                    quota,
                    msg: QuotaControl::Reclaim,
                });
                asked += 1;
            }
        }
        let book = &mut self.books[b];
        book.waiting.push(waiting);
        if asked == 0 {
            if self.upper_ready(b) {
                self.decide_waiting(b);
            }
        } else {
            book.reclaiming = asked;
            book.reclaim_since = now;
        }
    }

    /// Grants what the waiting asks can now get — the rest of what is free when that is less
    /// than an ask wanted (the worker may need less than it asked for ahead of need) — and
    /// refuses asks only when nothing at all is free.
    pub(super) fn decide_waiting(&mut self, b: usize) {
        let mut today_retry = self.retry_ms(b, 0);
        let book = &mut self.books[b];
        // Other instances hold leases of it: their idle part comes back on their next flush.
        let others = book
            .upper
            .known
            .is_some_and(|k| k.out > book.lease.instance().unwrap_or(0));
        let cluster_retry = self.link.is_some() && others;
        if cluster_retry {
            today_retry = today_retry.min(CLUSTER_RETRY_MS);
        }
        book.reclaiming = 0;
        for wt in std::mem::take(&mut book.waiting) {
            let w = usize::from(wt.worker);
            let mut g = book.lease.grant_at_least(w, wt.want);
            if g == 0 {
                g = book.lease.grant_at_least(w, book.lease.free().max(0));
            }
            let refused_ms = (g == 0).then(|| match book.quota.window {
                Window::Minute if cluster_retry => CLUSTER_RETRY_MS,
                Window::Minute => rate_retry_ms(&book.lease, book.quota.cap, wt.want),
                Window::Period(_) => today_retry,
            });
            self.out.push(wt.answer(g, book.shown_free(), refused_ms));
        }
    }

    /// A budget's retry time: the start of its next period (set by [`Books::tick`]).
    fn retry_ms(&self, b: usize, _want: Micros) -> u64 {
        let book = &self.books[b];
        match book.quota.window {
            Window::Period(Period::Total) => TOTAL_RETRY_MS,
            Window::Period(p) => {
                let next = next_period_start(p, book.period_start);
                (u64::from(next) * 86_400)
                    .saturating_sub(self.wall_s)
                    .max(1)
                    * 1000
            }
            Window::Minute => rate_retry_ms(&book.lease, book.quota.cap, 1),
        }
    }

    /// Time passes (`now`, and `wall_s` seconds since the Unix epoch): buckets drain, periods
    /// roll over, thresholds are crossed, reclaims that took too long are decided.
    pub fn tick(&mut self, now: Instant, wall_s: u64) {
        self.wall_s = wall_s;
        let today = day_of(wall_s);
        for b in 0..self.books.len() {
            let book = &mut self.books[b];
            match book.quota.window {
                Window::Minute => {
                    let cap = book.quota.cap.max(1) as u128;
                    let ns = now.saturating_duration_since(book.drained_to).as_nanos();
                    let drained = ns * cap / MINUTE_NS;
                    if book.lease.spent() == 0 {
                        book.drained_to = now;
                    } else if drained > 0 {
                        book.lease.leak(drained as Micros);
                        book.drained_to += Duration::from_nanos((drained * MINUTE_NS / cap) as u64);
                    }
                }
                Window::Period(p) => {
                    let start = p.start(today);
                    if start != book.period_start {
                        book.period_start = start;
                        book.lease.set_spent(0);
                        book.warned = false;
                        // One level up, the new period is a new hash: nothing leased yet.
                        if book.lease.instance().is_some() {
                            book.lease.set_instance(Some(0));
                            book.upper.known = None;
                        }
                        self.broadcast(b, QuotaControl::Reset);
                        self.broadcast(b, QuotaControl::Warn(false));
                    }
                }
            }
            let book = &mut self.books[b];
            // With `[cluster]`, the threshold is of everyone's spend.
            let spent = book
                .upper
                .known
                .map_or(book.lease.spent(), |k| k.spent + book.upper.used);
            if let Some(warn) = book.quota.warn
                && !book.warned
                && spent >= warn as Micros
                && book.quota.is_budget()
            {
                book.warned = true;
                self.notices.push(format!(
                    "{}: {} of {} spent this period: past the soft threshold ({})",
                    book.quota.name, spent, book.quota.cap, warn
                ));
                self.broadcast(b, QuotaControl::Warn(true));
            }
            let book = &self.books[b];
            if book.reclaiming > 0
                && now.duration_since(book.reclaim_since) >= RECLAIM_WAIT
                && self.upper_ready(b)
            {
                self.decide_waiting(b);
            }
        }
        self.tick_link(now);
    }

    /// Waiting asks need no answer from Redis first.
    pub(super) fn upper_ready(&self, b: usize) -> bool {
        match self.link.as_ref().map(|l| l.state) {
            None | Some(LinkState::Down { open: true }) => true,
            Some(LinkState::Down { open: false }) => false,
            Some(_) => !self.books[b].upper.pending(),
        }
    }

    pub(super) fn broadcast(&mut self, b: usize, msg: QuotaControl) {
        for w in 0..self.workers {
            let generation = self.applied[w];
            if let Some(quota) = self.id_in(generation, b) {
                self.out.push(Out {
                    worker: w as u16,
                    generation,
                    quota,
                    msg,
                });
            }
        }
    }

    /// Admin: the budgets of `scope` (`key:alice`, `team:ml`) start over. Returns their names.
    pub fn reset(&mut self, scope: &str) -> Vec<String> {
        let mut names = Vec::new();
        for b in 0..self.books.len() {
            let book = &mut self.books[b];
            if book.quota.scope == scope && book.quota.is_budget() {
                book.lease.set_spent(0);
                book.warned = false;
                if let Some(link) = &mut self.link {
                    book.upper.reset = true;
                    book.upper.known = None;
                    link.urgent = true;
                }
                names.push(book.quota.name.clone());
                self.broadcast(b, QuotaControl::Reset);
                self.broadcast(b, QuotaControl::Warn(false));
            }
        }
        names
    }

    pub fn views(&self) -> Vec<BookView> {
        self.books
            .iter()
            .map(|b| BookView {
                name: b.quota.name.clone(),
                scope: b.quota.scope.clone(),
                unit: b.quota.unit,
                window: b.quota.window,
                cap: b.quota.cap,
                spent: b.lease.spent(),
                granted: b.lease.outstanding(),
                reserved: b.reserved.iter().sum(),
                free: b.lease.free(),
                warned: b.warned,
                consumed: b.consumed,
                global: b.upper.known,
                leased: b.lease.instance(),
            })
            .collect()
    }
}

/// When a bucket will have drained enough for `want`.
fn rate_retry_ms(lease: &LeaseBook, cap: u64, want: Micros) -> u64 {
    let deficit = (want - lease.free()).max(1) as u128;
    let ms = (deficit * 60_000).div_ceil(u128::from(cap.max(1)));
    (ms as u64).max(1)
}

pub(super) fn next_period_start(p: Period, start: Day) -> Day {
    let mut d = start + 1;
    while p.start(d) == start {
        d += 1;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Unit;
    use crate::config::cluster::{Cluster, FailMode};
    use crate::policy::quota::{Quotas, Reserve};
    use crate::policy::shared::Answer;

    fn snap(quotas: Vec<Quota>) -> Snapshot {
        let mut s = crate::config::validate::compile(&Default::default(), &|_| None)
            .expect("the empty config compiles");
        s.quotas = quotas;
        s
    }

    fn quota(name: &str, window: Window, cap: u64) -> Quota {
        Quota {
            name: name.into(),
            scope: "key:k".into(),
            unit: Unit::MicroUsd,
            window,
            cap,
            warn: Some(cap * 8 / 10),
        }
    }

    /// Workers and the coordinator exchanging messages in memory, in rounds.
    struct World {
        books: Books,
        workers: Vec<Quotas>,
        now: Instant,
    }

    impl World {
        fn new(workers: usize, q: Quota) -> World {
            let s = snap(vec![q]);
            let now = Instant::now();
            World {
                books: Books::new(workers, &s, 20_000, now, &|_, _| 0),
                workers: (0..workers).map(|w| Quotas::new(w as u16, 0, 1)).collect(),
                now,
            }
        }

        /// Delivers everything both ways until quiet.
        fn settle_messages(&mut self) {
            loop {
                let mut any = false;
                for w in 0..self.workers.len() {
                    let mut msgs = Vec::new();
                    self.workers[w].drain(|m| msgs.push(m));
                    for m in msgs {
                        any = true;
                        self.books.lease(m, self.now);
                    }
                }
                for o in std::mem::take(&mut self.books.out) {
                    any = true;
                    self.workers[usize::from(o.worker)].apply(o.quota, o.msg, self.now);
                }
                if !any {
                    return;
                }
            }
        }

        /// Reserves on worker `w`, asking and waiting as a request would.
        fn admit(&mut self, w: usize, amount: Micros) -> Reserve {
            for _ in 0..4 {
                match self.workers[w].reserve(&[(QuotaId(0), amount)], self.now) {
                    Reserve::Short => self.settle_messages(),
                    r => return r,
                }
            }
            Reserve::Short
        }
    }

    #[test]
    fn one_worker_can_use_the_whole_cap_after_another_held_some() {
        let mut world = World::new(2, quota("key:k/usd", Window::Period(Period::Total), 1000));
        assert_eq!(world.admit(1, 10), Reserve::Granted);
        world.workers[1].settle(QuotaId(0), 10, 10);
        let mut spent = 10;
        loop {
            match world.admit(0, 10) {
                Reserve::Granted => {
                    world.workers[0].settle(QuotaId(0), 10, 10);
                    spent += 10;
                }
                Reserve::Refused { retry_ms, .. } => {
                    assert_eq!(retry_ms, TOTAL_RETRY_MS);
                    break;
                }
                Reserve::Short => panic!("an ask went unanswered"),
            }
        }
        world.settle_messages();
        assert_eq!(spent, 1000, "worker 0 got what worker 1 held idle");
        let v = &world.books.views()[0];
        assert_eq!((v.spent, v.reserved), (1000, 0));
    }

    #[test]
    fn rate_buckets_drain_per_minute() {
        let mut world = World::new(1, quota("key:k/rpm", Window::Minute, 60));
        for _ in 0..60 {
            assert_eq!(world.admit(0, 1), Reserve::Granted);
            world.workers[0].settle(QuotaId(0), 1, 1);
        }
        let Reserve::Refused { retry_ms, .. } = world.admit(0, 1) else {
            panic!("the 61st request in a minute is refused");
        };
        assert!((1..=1000).contains(&retry_ms), "{retry_ms}");
        world.settle_messages();
        // Ten seconds later, ten requests' worth has drained.
        world.now += Duration::from_secs(10) + REFUSAL_GRACE;
        world.books.tick(world.now, 20_000 * 86_400);
        let mut n = 0;
        while world.admit(0, 1) == Reserve::Granted {
            world.workers[0].settle(QuotaId(0), 1, 1);
            n += 1;
        }
        assert_eq!(n, 10);
    }

    const REFUSAL_GRACE: Duration = crate::policy::quota::REFUSAL_MEMORY;

    #[test]
    fn a_new_period_starts_from_zero_and_the_warning_follows_the_spend() {
        let mut world = World::new(1, quota("key:k/usd", Window::Period(Period::Daily), 100));
        assert_eq!(world.admit(0, 90), Reserve::Granted);
        world.workers[0].settle(QuotaId(0), 90, 90);
        world.settle_messages();
        world.books.tick(world.now, 20_000 * 86_400);
        assert_eq!(
            world.books.notices.len(),
            1,
            "the soft threshold is logged once"
        );
        world.settle_messages();
        assert!(world.workers[0].warned(QuotaId(0)));
        assert!(matches!(world.admit(0, 20), Reserve::Refused { .. }));
        world.books.tick(world.now, 20_001 * 86_400);
        world.settle_messages();
        assert!(!world.workers[0].warned(QuotaId(0)));
        assert_eq!(
            world.admit(0, 20),
            Reserve::Granted,
            "the next day has its own cap"
        );
        assert_eq!(world.books.views()[0].spent, 0);
    }

    fn cluster(fail: FailMode) -> Cluster {
        Cluster {
            url: String::new(),
            shown: String::new(),
            prefix: "t".into(),
            instance: "i".into(),
            fail,
            flush: Duration::from_millis(100),
            instance_ttl: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            instances: None,
            share_health: false,
            cache: None,
        }
    }

    fn grants(out: &[Out]) -> Vec<(Micros, Option<u64>)> {
        out.iter()
            .filter_map(|o| match o.msg {
                QuotaControl::Grant {
                    amount, refused_ms, ..
                } => Some((amount, refused_ms)),
                _ => None,
            })
            .collect()
    }

    /// With `[cluster]` the books grant only what Redis leased; an ask goes up at once and is
    /// answered when Redis's answer arrives; the lease is what Redis says the instance holds,
    /// less what was used since the batch left.
    #[test]
    fn with_a_cluster_workers_get_only_what_the_instance_leased() {
        let mut world = World::new(1, quota("key:k/usd", Window::Period(Period::Daily), 1000));
        world.books.set_cluster(
            &cluster(FailMode::Open),
            Duration::from_millis(100),
            world.now,
        );
        assert_eq!(
            world.workers[0].reserve(&[(QuotaId(0), 10)], world.now),
            Reserve::Short
        );
        world.settle_messages();
        assert!(grants(&world.books.out).is_empty(), "nothing leased yet");
        let asks = world
            .books
            .take_asks(world.now)
            .expect("an ask goes up at once");
        assert_eq!(asks.len(), 1);
        assert_eq!(
            (asks[0].need, asks[0].key.as_str()),
            (10, "key:k/usd@20000")
        );
        assert!(
            world.books.take_asks(world.now).is_none(),
            "one batch out at a time"
        );
        world.books.answered(
            &[Answer {
                book: 0,
                granted: 40,
                held: 40,
                spent: 0,
                out: 40,
            }],
            2,
            false,
        );
        world.settle_messages();
        assert_eq!(world.admit(0, 10), Reserve::Granted);
        let v = &world.books.views()[0];
        assert_eq!(v.leased, Some(40));
        assert_eq!(v.global, Some(Known { spent: 0, out: 40 }));
        assert!(v.granted <= 40, "{v:?}");
        // Use settled here goes up with the next batch.
        world.workers[0].settle(QuotaId(0), 10, 7);
        world.settle_messages();
        world.now += Duration::from_millis(150);
        let asks = world.books.take_asks(world.now).unwrap();
        assert_eq!(asks[0].used, 7);
    }

    /// Fail-open: each quota gets its share of what was free at the last answer; fail-closed:
    /// an ask the instance cannot cover is answered with nothing after `lease_wait`.
    #[test]
    fn when_redis_is_unreachable_shares_or_nothing() {
        for fail in [FailMode::Open, FailMode::Closed] {
            let q = quota("key:k/usd", Window::Period(Period::Daily), 1000);
            let mut world = World::new(1, q);
            world
                .books
                .set_cluster(&cluster(fail), Duration::from_millis(100), world.now);
            world.books.take_asks(world.now).unwrap();
            world.books.answered(
                &[Answer {
                    book: 0,
                    granted: 0,
                    held: 0,
                    spent: 400,
                    out: 200,
                }],
                2,
                false,
            );
            world
                .books
                .take_asks(world.now + Duration::from_millis(150));
            world.books.failed(world.now);
            assert!(!world.books.link_view().unwrap().up);
            let r = world.admit(0, 100);
            if fail == FailMode::Open {
                assert_eq!(r, Reserve::Granted);
                assert_eq!(world.books.views()[0].leased, Some(200), "(1000 − 600) / 2");
                continue;
            }
            assert_eq!(
                r,
                Reserve::Short,
                "fail-closed: no answer before lease_wait"
            );
            world.now += Duration::from_millis(100);
            world.books.tick(world.now, 20_000 * 86_400);
            assert_eq!(
                grants(&world.books.out),
                [(0, None)],
                "nothing, and no refusal"
            );
        }
    }

    /// A reload's `quotas.lease_wait_ms` is the fail-closed hold from then on.
    #[test]
    fn a_reload_changes_how_long_fail_closed_holds_an_ask() {
        let q = quota("key:k/usd", Window::Period(Period::Daily), 1000);
        let mut world = World::new(1, q.clone());
        let hold = Duration::from_millis(100);
        world
            .books
            .set_cluster(&cluster(FailMode::Closed), hold, world.now);
        let mut next = snap(vec![q]);
        next.quota_settings.lease_wait = Duration::from_secs(1);
        world
            .books
            .add_generation(&next, 20_000, world.now, &|_, _| 0);
        world.books.take_asks(world.now).unwrap();
        world.books.failed(world.now);
        assert_eq!(world.admit(0, 100), Reserve::Short);
        world.now += hold;
        world.books.tick(world.now, 20_000 * 86_400);
        assert!(
            grants(&world.books.out).is_empty(),
            "still held past the old wait"
        );
        world.now += Duration::from_secs(1);
        world.books.tick(world.now, 20_000 * 86_400);
        assert_eq!(grants(&world.books.out), [(0, None)]);
    }
}
