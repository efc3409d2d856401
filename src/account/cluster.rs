//! `[cluster]`: the coordinator's line to Redis (ARCHITECTURE.md, "Many instances").
//!
//! A plain thread owns the one Redis connection, so that a slow or unreachable Redis never
//! stalls the coordinator's tick: the coordinator hands it a [`Batch`] (at most one out at a
//! time) and goes on; the thread sends the whole batch as one pipeline — this instance's
//! heartbeat, one lease script per quota that has news, the spend per scope and day, circuits
//! opened here, and now and then a read of the circuits opened elsewhere — and answers with a
//! [`Reply`], ringing the coordinator's doorbell. Every script is atomic and idempotent per
//! batch (`account/cluster.lua`), so a batch whose answer was lost is resent as it was.
//!
//! The client is the `redis` crate (redis-rs), in its synchronous form: the most used Rust
//! client, kept up to date with the server; it speaks RESP, ACL users, TLS through rustls (the
//! gateway's own TLS stack), and loads scripts by hash. The workers never see it.
//!
//! Connecting: a failure is answered at once and the next attempt waits a backoff that doubles
//! from [`BACKOFF_MIN`] to [`BACKOFF_MAX`]; meanwhile batches fail fast. Every call has the
//! configured timeout, so no batch waits longer than that.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use redis::Value;

use super::{Control, Spend, Wake};
use crate::calendar::Day;
use crate::config::cluster::Cluster;
use crate::config::{DeploymentId, Snapshot};
use crate::policy::books::Books;
use crate::policy::route::Change;
use crate::policy::shared::{Answer, Ask};
use std::collections::VecDeque;

pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a day's spend per scope stays in Redis after its last write.
const SPEND_TTL_MS: u64 = 40 * 86_400_000;
const SCRIPTS: &str = include_str!("cluster.lua");

/// One round trip's worth of news for Redis.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub seq: u64,
    pub asks: Vec<Ask>,
    /// Settled spend per scope (`key:alice`, `team:ml`) and day.
    pub spend: Vec<(String, Day, Spend)>,
    /// Circuits opened here: the deployment and for how long.
    pub opened: Vec<(String, u64)>,
    /// Deployments whose shared circuit to read.
    pub poll: Vec<String>,
    /// `[cluster] cache`: entries asked for (worker, ticket, key) and entries to store.
    pub gets: Vec<(u16, u32, [u8; 32])>,
    pub puts: Vec<([u8; 32], Vec<u8>, u64)>,
}

/// Redis's answers to one batch.
#[derive(Debug, Default)]
pub struct Answers {
    pub answers: Vec<Answer>,
    pub instances: u32,
    pub lapsed: bool,
    /// Per polled deployment: the instance that opened its circuit and for how much longer.
    pub circuits: Vec<Option<(String, u64)>>,
    /// Per cache get: the entry's bytes, if Redis has them.
    pub cached: Vec<Option<Vec<u8>>>,
    /// Per spend scope of the batch: every instance's totals for its day.
    pub totals: Vec<Spend>,
}

#[derive(Debug)]
pub struct Reply {
    pub seq: u64,
    pub result: Result<Answers, String>,
}

/// Counters for the metrics.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Redis commands sent (scripts count one each).
    pub ops: AtomicU64,
    pub batches: AtomicU64,
    pub failures: AtomicU64,
    pub connects: AtomicU64,
}

/// The coordinator's end.
#[derive(Debug)]
pub struct Link {
    pub to: Sender<Batch>,
    pub from: Receiver<Reply>,
    pub stats: Arc<LinkStats>,
    pub instance: String,
    pub shown: String,
}

impl Link {
    pub fn start(cfg: &Cluster, wake: Arc<Wake>) -> std::io::Result<Link> {
        let client = redis::Client::open(cfg.url.as_str())
            .map_err(|e| std::io::Error::other(format!("cluster.redis `{}`: {e}", cfg.shown)))?;
        let (to, batches) = channel();
        let (replies, from) = channel();
        let stats = Arc::new(LinkStats::default());
        let mut conn = Conn {
            client,
            cfg: cfg.clone(),
            conn: None,
            next_try: Instant::now(),
            backoff: BACKOFF_MIN,
            scripts: Scripts::new(),
            seen: false,
            stats: stats.clone(),
            told_down: false,
        };
        std::thread::Builder::new()
            .name("tollgate-cluster".into())
            .spawn(move || {
                for batch in batches.iter() {
                    let result = conn.run(&batch);
                    if replies
                        .send(Reply {
                            seq: batch.seq,
                            result,
                        })
                        .is_err()
                    {
                        return;
                    }
                    wake.wake();
                }
            })?;
        Ok(Link {
            to,
            from,
            stats,
            instance: cfg.instance.clone(),
            shown: cfg.shown.clone(),
        })
    }
}

struct Scripts {
    lease: redis::Script,
    alive: redis::Script,
    spend: redis::Script,
}

impl Scripts {
    fn new() -> Scripts {
        let part = |name: &str| {
            let start = SCRIPTS
                .find(&format!("--! {name}\n"))
                .map_or(0, |i| i + name.len() + 5);
            let end = SCRIPTS[start..]
                .find("\n--! ")
                .map_or(SCRIPTS.len(), |i| start + i);
            // Lua's top level shares nothing between the parts: each is its own script.
            let common = SCRIPTS.split("--! ").next().unwrap_or("");
            redis::Script::new(&format!("{common}\n{}", &SCRIPTS[start..end]))
        };
        Scripts {
            lease: part("lease"),
            alive: part("alive"),
            spend: part("spend"),
        }
    }
}

struct Conn {
    client: redis::Client,
    cfg: Cluster,
    conn: Option<redis::Connection>,
    next_try: Instant,
    backoff: Duration,
    scripts: Scripts,
    /// This instance announced itself before (a lapse can be told).
    seen: bool,
    stats: Arc<LinkStats>,
    told_down: bool,
}

impl Conn {
    fn run(&mut self, b: &Batch) -> Result<Answers, String> {
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        let r = self.connected().and_then(|c| {
            let p = self.pipeline(b);
            self.stats
                .ops
                .fetch_add(p.cmd_iter().count() as u64, Ordering::Relaxed);
            match self.conn.as_mut() {
                Some(conn) => p.query::<Vec<Value>>(conn).map_err(|e| e.to_string()),
                None => Err(c),
            }
        });
        match r.and_then(|values| self.read(b, &values)) {
            Ok(a) => {
                self.seen = true;
                if self.told_down {
                    self.told_down = false;
                    eprintln!(
                        "tollgate: cluster: redis {} reachable again",
                        self.cfg.shown
                    );
                }
                Ok(a)
            }
            Err(e) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                if self.conn.take().is_some() || !self.told_down {
                    eprintln!(
                        "tollgate: cluster: redis {}: {e}; reconnecting (backoff from {} ms)",
                        self.cfg.shown,
                        self.backoff.as_millis()
                    );
                }
                self.told_down = true;
                Err(e)
            }
        }
    }

    /// The connection, made (scripts loaded) when there is none and the backoff has passed.
    /// `Ok` carries a message for the impossible case of no connection after all.
    fn connected(&mut self) -> Result<String, String> {
        if self.conn.is_some() {
            return Ok(String::new());
        }
        let now = Instant::now();
        if now < self.next_try {
            return Err("not connected (waiting to retry)".into());
        }
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        let made = self
            .client
            .get_connection_with_timeout(self.cfg.timeout)
            .and_then(|mut c| {
                c.set_read_timeout(Some(self.cfg.timeout))?;
                c.set_write_timeout(Some(self.cfg.timeout))?;
                for s in [
                    &self.scripts.lease,
                    &self.scripts.alive,
                    &self.scripts.spend,
                ] {
                    s.prepare_invoke().load(&mut c)?;
                }
                Ok(c)
            });
        match made {
            Ok(c) => {
                self.conn = Some(c);
                self.backoff = BACKOFF_MIN;
                Ok("connection lost".into())
            }
            Err(e) => {
                self.next_try = now + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                Err(format!("cannot connect: {e}"))
            }
        }
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.cfg.prefix.clone();
        for p in parts {
            k.push(':');
            k.push_str(p);
        }
        k
    }

    fn pipeline(&self, b: &Batch) -> redis::Pipeline {
        let inst = self.cfg.instance.as_str();
        let seq = b.seq.to_string();
        let instances = self.key(&["instances"]);
        let mut p = redis::pipe();
        let evalsha = |p: &mut redis::Pipeline, s: &redis::Script, keys: &[&str]| {
            let c = p.cmd("EVALSHA").arg(s.get_hash()).arg(keys.len());
            for k in keys {
                c.arg(*k);
            }
        };
        evalsha(&mut p, &self.scripts.alive, &[&instances]);
        p.arg(inst)
            .arg(self.cfg.instance_ttl.as_millis() as u64)
            .arg(if self.seen { "1" } else { "0" });
        for a in &b.asks {
            let q = self.key(&["q", &a.key]);
            evalsha(&mut p, &self.scripts.lease, &[&q, &instances]);
            p.arg(inst)
                .arg(&seq)
                .arg(a.cap)
                .arg(u8::from(a.drain))
                .arg(a.ttl_ms)
                .arg(a.used)
                .arg(a.returned)
                .arg(a.want)
                .arg(a.need)
                .arg(u8::from(a.reset));
        }
        for (scope, day, s) in &b.spend {
            let k = self.key(&["spend", scope, &day.to_string()]);
            evalsha(&mut p, &self.scripts.spend, &[&k]);
            p.arg(inst).arg(&seq).arg(SPEND_TTL_MS);
            // Every field, zeros too: the script answers the totals of the fields named, in
            // this order.
            for (field, v) in spend_fields(s) {
                p.arg(field).arg(v);
            }
        }
        for (deployment, ms) in &b.opened {
            p.cmd("SET")
                .arg(self.key(&["circuit", deployment]))
                .arg(inst)
                .arg("PX")
                .arg((*ms).max(1))
                .ignore();
        }
        for deployment in &b.poll {
            let k = self.key(&["circuit", deployment]);
            p.cmd("GET").arg(&k);
            p.cmd("PTTL").arg(&k);
        }
        for (key, bytes, ttl_ms) in &b.puts {
            p.cmd("SET")
                .arg(self.key(&["cache", &hex(key)]))
                .arg(bytes.as_slice())
                .arg("PX")
                .arg((*ttl_ms).max(1))
                .ignore();
        }
        for (_, _, key) in &b.gets {
            p.cmd("GET").arg(self.key(&["cache", &hex(key)]));
        }
        p
    }

    fn read(&self, b: &Batch, values: &[Value]) -> Result<Answers, String> {
        let mut it = values.iter();
        let mut out = Answers::default();
        let alive = ints(it.next())?;
        out.instances = alive.first().copied().unwrap_or(1).max(1) as u32;
        out.lapsed = alive.get(1) == Some(&1);
        for a in &b.asks {
            let v = ints(it.next())?;
            let [granted, held, spent, out_] = v[..] else {
                return Err(format!("lease script answered {} numbers, not 4", v.len()));
            };
            out.answers.push(Answer {
                book: a.book,
                granted,
                held,
                spent,
                out: out_,
            });
        }
        for _ in &b.spend {
            let Some(Value::Array(fields)) = it.next() else {
                return Err("a spend answer is missing".into());
            };
            let n: Vec<u64> = fields
                .iter()
                .map(|f| match f {
                    Value::BulkString(b) => std::str::from_utf8(b)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                    _ => 0,
                })
                .collect();
            let Ok(n) = <[u64; 8]>::try_from(n) else {
                return Err("spend script answered the wrong number of fields".into());
            };
            out.totals.push(spend_from(n));
        }
        for _ in &b.poll {
            let origin = match it.next() {
                Some(Value::BulkString(s)) => Some(String::from_utf8_lossy(s).into_owned()),
                _ => None,
            };
            let ttl = match it.next() {
                Some(Value::Int(ms)) if *ms > 0 => Some(*ms as u64),
                _ => None,
            };
            out.circuits.push(origin.zip(ttl));
        }
        for _ in &b.gets {
            out.cached.push(match it.next() {
                Some(Value::BulkString(b)) => Some(b.clone()),
                _ => None,
            });
        }
        Ok(out)
    }
}

fn hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// A script's array of integers.
fn ints(v: Option<&Value>) -> Result<Vec<i64>, String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::Int(n) => Ok(*n),
                other => Err(format!("a script answered {other:?}")),
            })
            .collect(),
        Some(Value::ServerError(e)) => Err(format!("redis: {e:?}")),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

/// A day's spend from its fields' values, in [`spend_fields`]' order.
fn spend_from(n: [u64; 8]) -> Spend {
    let [
        requests,
        estimated_requests,
        input_tokens,
        output_tokens,
        cache_read_tokens,
        cache_creation_tokens,
        reasoning_tokens,
        cost_micro_usd,
    ] = n;
    Spend {
        requests,
        estimated_requests,
        input_tokens,
        output_tokens,
        cache_read_tokens,
        cache_creation_tokens,
        reasoning_tokens,
        cost_micro_usd,
    }
}

/// The fields a day's spend is kept under in Redis.
pub fn spend_fields(s: &Spend) -> [(&'static str, u64); 8] {
    [
        ("requests", s.requests),
        ("estimated_requests", s.estimated_requests),
        ("input_tokens", s.input_tokens),
        ("output_tokens", s.output_tokens),
        ("cache_read_tokens", s.cache_read_tokens),
        ("cache_creation_tokens", s.cache_creation_tokens),
        ("reasoning_tokens", s.reasoning_tokens),
        ("cost_micro_usd", s.cost_micro_usd),
    ]
}

/// The coordinator's side of the link: the batch out, what gathers for the next one, and the
/// circuits other instances opened.
#[derive(Debug)]
pub struct Side {
    link: Link,
    /// The batch out, and whether its answer is awaited (else it failed and waits to be
    /// resent as it was).
    out: Option<(Batch, bool)>,
    resend_at: Instant,
    flush: Duration,
    seq: u64,
    spend: std::collections::BTreeMap<(String, Day), Spend>,
    opened: Vec<(String, u64)>,
    share_health: bool,
    next_poll: Instant,
    /// Per deployment name: until when a circuit opened elsewhere was applied here.
    remote: std::collections::HashMap<String, Instant>,
    gets: Vec<(u16, u32, [u8; 32])>,
    puts: Vec<([u8; 32], Vec<u8>, u64)>,
    /// Answers to cache gets, for their workers: (worker, ticket, bytes).
    answers: Vec<(u16, u32, Option<Vec<u8>>)>,
    /// Every instance's spend per scope, for the latest day flushed, as Redis last said.
    shared: std::collections::BTreeMap<String, (Day, Spend)>,
}

/// Cache fills waiting for the next batch at most (past it they stay local).
const MAX_PUTS: usize = 1024;
/// How long shutdown waits for Redis to take the last spend.
pub const CLOSE_WAIT: Duration = Duration::from_secs(3);
/// How often the circuits opened elsewhere are read.
pub const POLL_CIRCUITS: Duration = Duration::from_secs(1);

impl Side {
    pub fn start(cfg: &Cluster, wake: Arc<Wake>) -> std::io::Result<Side> {
        let link = Link::start(cfg, wake)?;
        eprintln!(
            "tollgate: cluster: budgets and rate limits shared through redis {} as instance \
             `{}` (fail {})",
            cfg.shown,
            cfg.instance,
            match cfg.fail {
                crate::config::cluster::FailMode::Open => "open",
                crate::config::cluster::FailMode::Closed => "closed",
            }
        );
        Ok(Side {
            link,
            out: None,
            resend_at: Instant::now(),
            flush: cfg.flush,
            seq: 0,
            spend: Default::default(),
            opened: Vec::new(),
            share_health: cfg.share_health,
            next_poll: Instant::now(),
            remote: Default::default(),
            gets: Vec::new(),
            puts: Vec::new(),
            answers: Vec::new(),
            shared: Default::default(),
        })
    }

    pub fn stats(&self) -> &LinkStats {
        &self.link.stats
    }

    /// Spend a key (and its team) settled here, for their totals of `day` in Redis.
    pub fn settled(&mut self, key: &str, team: Option<&str>, day: Day, s: &Spend) {
        if let Some(t) = team {
            self.spend
                .entry((format!("team:{t}"), day))
                .or_default()
                .add(s);
        }
        self.spend
            .entry((format!("key:{key}"), day))
            .or_default()
            .add(s);
    }

    /// A worker's circuit changed: one that opened is published until it closes again.
    pub fn opened(&mut self, snap: &Snapshot, d: DeploymentId, change: Change) {
        if let (true, Change::Opened(until), Some(dep)) = (
            self.share_health,
            change,
            snap.deployments.get(d.0 as usize),
        ) {
            let ms = until.saturating_duration_since(Instant::now()).as_millis() as u64;
            self.opened.push((dep.name.clone(), ms));
        }
    }

    /// Every instance's spend of `day` per scope (`key:alice`, `team:ml`), as of this
    /// instance's last flush of that scope.
    pub fn shared_spend(&self, day: Day) -> std::collections::BTreeMap<String, Spend> {
        self.shared
            .iter()
            .filter(|(_, (d, _))| *d == day)
            .map(|(k, (_, s))| (k.clone(), *s))
            .collect()
    }

    /// A worker's cache get or put: a get goes out with the next batch, at once.
    pub fn cache(&mut self, e: super::WorkerEvent, books: &mut Books) {
        match e {
            super::WorkerEvent::SharedGet {
                worker,
                ticket,
                key,
            } => {
                self.gets.push((worker, ticket, key));
                books.flush_now();
            }
            super::WorkerEvent::SharedPut { key, bytes, ttl_ms } if self.puts.len() < MAX_PUTS => {
                self.puts.push((key, bytes, ttl_ms));
            }
            _ => {}
        }
    }

    /// The coordinator's tick: [`Side::pump`]; circuits opened on other instances go to every
    /// worker of `snap`, cache answers to the worker that asked (into `to`, per worker).
    pub fn tick(&mut self, books: &mut Books, snap: &Snapshot, to: &mut [VecDeque<Control>]) {
        for (name, until) in self.pump(books, &snap.deployments, Instant::now()) {
            if let Some(i) = snap.deployments.iter().position(|d| d.name == name) {
                for q in to.iter_mut() {
                    q.push_back(Control::Breaker {
                        generation: snap.generation,
                        deployment: DeploymentId(i as u32),
                        change: Change::Opened(until),
                    });
                }
            }
        }
        for (worker, ticket, bytes) in self.answers.drain(..) {
            if let Some(q) = to.get_mut(usize::from(worker)) {
                q.push_back(Control::Shared { ticket, bytes });
            }
        }
    }

    /// Answers in, the next batch out. Returns the circuits opened elsewhere to apply here:
    /// (deployment name, open until).
    pub fn pump(
        &mut self,
        books: &mut Books,
        deployments: &[crate::config::Deployment],
        now: Instant,
    ) -> Vec<(String, Instant)> {
        let mut remote = Vec::new();
        while let Ok(r) = self.link.from.try_recv() {
            self.on_reply(r, books, now, &mut remote);
        }
        // Redis is down (the batch out failed): cache gets are answered "no" at once, and
        // fills are dropped (they are only a cache).
        if let Some((_, false)) = &self.out {
            for (worker, ticket, _) in self.gets.drain(..) {
                self.answers.push((worker, ticket, None));
            }
            self.puts.clear();
        }
        match &mut self.out {
            Some((batch, awaited)) => {
                if !*awaited && now >= self.resend_at && self.link.to.send(batch.clone()).is_ok() {
                    *awaited = true;
                }
            }
            None => {
                if let Some(asks) = books.take_asks(now) {
                    self.seq += 1;
                    let poll = if self.share_health && now >= self.next_poll {
                        self.next_poll = now + POLL_CIRCUITS;
                        deployments.iter().map(|d| d.name.clone()).collect()
                    } else {
                        Vec::new()
                    };
                    let batch = Batch {
                        seq: self.seq,
                        asks,
                        spend: std::mem::take(&mut self.spend)
                            .into_iter()
                            .map(|((scope, day), s)| (scope, day, s))
                            .collect(),
                        opened: std::mem::take(&mut self.opened),
                        poll,
                        gets: std::mem::take(&mut self.gets),
                        puts: std::mem::take(&mut self.puts),
                    };
                    let sent = self.link.to.send(batch.clone()).is_ok();
                    self.out = Some((batch, sent));
                }
            }
        }
        remote
    }

    fn on_reply(
        &mut self,
        r: Reply,
        books: &mut Books,
        now: Instant,
        remote: &mut Vec<(String, Instant)>,
    ) {
        let Some((batch, awaited)) = &mut self.out else {
            return;
        };
        if r.seq != batch.seq || !*awaited {
            return;
        }
        match r.result {
            Ok(a) => {
                books.answered(&a.answers, a.instances, a.lapsed);
                for (name, c) in batch.poll.iter().zip(&a.circuits) {
                    let Some((origin, ms)) = c else { continue };
                    if *origin == self.link.instance {
                        continue;
                    }
                    let until = now + Duration::from_millis(*ms);
                    let known = self.remote.get(name).copied();
                    if known.is_none_or(|k| until > k + Duration::from_millis(500)) {
                        self.remote.insert(name.clone(), until);
                        remote.push((name.clone(), until));
                    }
                }
                for ((scope, day, _), totals) in batch.spend.iter().zip(a.totals) {
                    let seen = self.shared.entry(scope.clone()).or_insert((*day, totals));
                    if *day >= seen.0 {
                        *seen = (*day, totals);
                    }
                }
                for ((worker, ticket, _), bytes) in batch.gets.iter().zip(a.cached) {
                    self.answers.push((*worker, *ticket, bytes));
                }
                self.out = None;
            }
            Err(_) => {
                // Cache gets are not worth waiting for: the requests go to the provider. A
                // resent batch asks again; nobody waits for those answers any more.
                for (worker, ticket, _) in &batch.gets {
                    self.answers.push((*worker, *ticket, None));
                }
                books.failed(now);
                *awaited = false;
                self.resend_at = now + self.flush;
            }
        }
    }

    /// Shutdown: everything settled goes to Redis, waiting up to `wait` for the answers.
    pub fn finish(&mut self, books: &mut Books, wait: Duration) {
        if !self.flush_all(books, wait) {
            eprintln!(
                "tollgate: cluster: redis did not take the last spend before exit (it is in \
                 this instance's ledger, not in the shared totals)"
            );
        }
    }

    fn flush_all(&mut self, books: &mut Books, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let failures = self.stats().failures.load(Ordering::Relaxed);
        loop {
            let now = Instant::now();
            if self.out.is_none()
                && self.spend.is_empty()
                && self.puts.is_empty()
                && !books.has_news()
            {
                return true;
            }
            // Twice failed: Redis is down, not slow.
            if now >= deadline || self.stats().failures.load(Ordering::Relaxed) > failures + 1 {
                return false;
            }
            books.flush_now();
            // A failed batch is resent at once: this is the last chance.
            self.resend_at = now;
            self.pump(books, &[], now);
            if let Ok(r) = self.link.from.recv_timeout(deadline - now) {
                self.on_reply(r, books, Instant::now(), &mut Vec::new());
            }
        }
    }
}
