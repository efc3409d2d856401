//! The spend ledger: what every key (and team) spent, per UTC day, on disk — owned and
//! written by the coordinator alone.
//!
//! Files in the ledger directory, for epoch `E`:
//! - `spend.E.log` — append-only, one record per line: `<checksum> <payload>\n`, where the
//!   payload is a JSON object (`t` unix seconds, `s` scope such as `key:demo`, then the spend
//!   sums) and the checksum is the first 16 hex digits of the payload's SHA-256. Appended once
//!   per coordinator tick with the deltas the workers sent.
//! - `spend.snapshot` — a first line `{"epoch":E}` and then the same record format, one
//!   record per (scope, day) with that day's totals: everything in the logs of epochs before E.
//!
//! Compaction from epoch E to E+1: new records go to a new `spend.E+1.log`; the totals so far
//! (snapshot + `spend.E.log`) are written to a temporary file as epoch E+1's snapshot, synced
//! and renamed into place; then `spend.E.log` is deleted. Recovery reads the snapshot's epoch
//! and folds only the logs of that epoch and later — so a crash at any step counts every
//! record exactly once (before the rename, the old snapshot plus both logs; after it, the new
//! snapshot plus the new log; a leftover older log is deleted).
//!
//! Recovery ([`Ledger::open`]) folds the snapshot and then the log into per-day totals. A line
//! that is cut short (a torn write) or fails its checksum ends the valid log: everything from
//! it on is moved to `spend.log.corrupt-<unix seconds>` (kept, never deleted), the log is
//! truncated there, and [`Recovered`] says how many bytes were set aside — the caller reports
//! it. Nothing is reset silently.
//!
//! Durability: records reach the operating system every tick and the disk on
//! [`Ledger::sync`] (the coordinator syncs every second and at shutdown). What is younger than
//! a tick — spend coalescing on a worker, in the rings, in the coordinator's hands, and the
//! calls in flight — is in the workers' spend journals (`journal.rs`), which a killed process
//! cannot lose. Workers' sums arrive with the journal position they cover; the ledger writes a
//! worker's sums as one batch of lines flagged `j` (the journal's id) followed by a mark line
//! (`"s":"#mark"`, the journal id `m` and position `p`). A batch without its mark (the kill
//! fell inside the write) is not counted: recovery truncates it and the journal replays it.
//! On open, every journal of an earlier run is replayed from its mark (`journal::replay`:
//! the charges after it, and the calls never settled at their estimate), the result written
//! as a batch with its mark, synced, and the journal deleted — a crash at any step of that
//! replays it again from the new mark, counting nothing twice. A snapshot's first line also
//! holds the marks (`"marks"`) of the journals still alive when it was written. Measured by
//! `tests/lifecycle.rs` (`kill_9...`): no spend lost over 20 kills under load.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Spend, journal};
use crate::calendar::{Day, day_of};
use crate::config::{Quota, Unit};
use crate::json;

/// What [`Ledger::open`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Records read from the snapshot and the log.
    pub records: u64,
    /// Bytes of the log set aside as torn or corrupt (0 when the log was clean).
    pub set_aside_bytes: u64,
    /// Where they were put.
    pub set_aside_to: Option<PathBuf>,
    /// Ledger lines of a batch whose mark never landed (dropped: the journal replays them).
    pub uncommitted: u64,
    /// Charges replayed from the spend journals (their sums had not reached the ledger).
    pub journal_charges: u64,
    /// Calls in flight when an earlier run ended, charged at their estimate (flagged).
    pub journal_estimated: u64,
    /// What those estimates cost.
    pub journal_estimated_micro_usd: u64,
    /// A journal's last record was torn by the kill (expected; nothing lost but that record,
    /// whose call is then charged at its estimate or was never sent).
    pub journal_torn: u64,
    /// Journal segments with damage before their end, kept under these names.
    pub journal_damaged: Vec<PathBuf>,
}

impl Recovered {
    /// What recovery found worth saying, a line each.
    pub fn report(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(aside) = &self.set_aside_to {
            out.push(format!(
                "{} byte(s) of a torn or corrupt spend log set aside in {} (not counted); {} \
                 record(s) recovered",
                self.set_aside_bytes,
                aside.display(),
                self.records
            ));
        }
        out.extend(self.journal_report());
        out
    }

    /// What replaying the journals did, or `None` when there was nothing to say.
    pub fn journal_report(&self) -> Option<String> {
        if self.journal_charges + self.journal_estimated + self.uncommitted == 0
            && self.journal_damaged.is_empty()
        {
            return None;
        }
        let mut s = format!(
            "spend journals replayed: {} charge(s) the ledger lacked; {} call(s) in flight at \
             the end of the last run charged at their estimate ({} micro-USD, flagged \
             estimated); {} uncommitted ledger line(s) replaced",
            self.journal_charges,
            self.journal_estimated,
            self.journal_estimated_micro_usd,
            self.uncommitted
        );
        for d in &self.journal_damaged {
            s.push_str(&format!(
                "; DAMAGED journal segment kept at {} (records after the damage not counted)",
                d.display()
            ));
        }
        Some(s)
    }
}

#[derive(Debug)]
pub struct Ledger {
    dir: PathBuf,
    epoch: u64,
    log: BufWriter<File>,
    log_bytes: u64,
    /// Totals per (scope, day), snapshot and log together.
    days: BTreeMap<(String, Day), Spend>,
    line: Vec<u8>,
    /// This run's journal ids are `<run>-<worker>`.
    run: String,
    /// Per journal id: the position its last committed batch covers.
    marks: BTreeMap<String, u64>,
    /// Per worker of this run: sums received since its last mark (committed with the next);
    /// `None` for a worker without a journal (its sums are written as they come).
    pending: Vec<Option<Vec<(u64, String, Spend)>>>,
    /// Per worker of this run: the first segment not yet deleted.
    pruned: Vec<u64>,
}

#[derive(Deserialize)]
struct Header {
    epoch: u64,
    #[serde(default)]
    marks: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct Record {
    t: u64,
    s: String,
    #[serde(default)]
    r: u64,
    #[serde(default)]
    e: u64,
    #[serde(default)]
    i: u64,
    #[serde(default)]
    o: u64,
    #[serde(default)]
    cr: u64,
    #[serde(default)]
    cc: u64,
    #[serde(default)]
    rs: u64,
    #[serde(default)]
    c: u64,
    /// A line of a journal batch: that journal's id.
    #[serde(default)]
    j: Option<String>,
    /// A mark: the journal id, and the position `p` its batch covers.
    #[serde(default)]
    m: Option<String>,
    #[serde(default)]
    p: u64,
}

/// The scope of a mark line.
const MARK: &str = "#mark";

impl Ledger {
    /// Opens (creating) the ledger in `dir` and recovers its totals.
    pub fn open(dir: &Path) -> io::Result<(Ledger, Recovered)> {
        std::fs::create_dir_all(dir)?;
        let mut days = BTreeMap::new();
        let mut rec = Recovered::default();
        let mut scratch = json::Scratch::default();
        // The snapshot is written whole and renamed into place: any bad line in it is damage
        // the ledger cannot explain, and is refused rather than guessed around.
        let mut epoch = 0;
        let mut marks = BTreeMap::new();
        if let Ok(bytes) = std::fs::read(dir.join("spend.snapshot")) {
            let damaged = || {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: damaged; restore it or move it away",
                        dir.join("spend.snapshot").display()
                    ),
                )
            };
            let nl = memchr::memchr(b'\n', &bytes).ok_or_else(damaged)?;
            let header = scratch.parse::<Header>(&bytes[..nl]).ok_or_else(damaged)?;
            (epoch, marks) = (header.epoch, header.marks);
            let body = &bytes[nl + 1..];
            let f = fold(body, &mut days, &mut marks, &mut scratch);
            if f.valid != body.len() || f.committed != body.len() {
                return Err(damaged());
            }
            rec.records += f.records;
        }
        // Logs of this epoch and later hold what the snapshot does not; older ones are
        // already in it (a compaction stopped before deleting them).
        let mut logs: Vec<u64> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let Some(e) = name
                .to_str()
                .and_then(|n| n.strip_prefix("spend."))
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if e < epoch {
                std::fs::remove_file(dir.join(name))?;
            } else {
                logs.push(e);
            }
        }
        logs.sort_unstable();
        let current = logs.last().copied().unwrap_or(epoch);
        for &e in &logs {
            let path = log_path(dir, e);
            let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            let f = fold(&bytes, &mut days, &mut marks, &mut scratch);
            rec.records += f.records;
            rec.uncommitted += f.uncommitted;
            let good = f.valid;
            if good < bytes.len() {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let aside = dir.join(format!("spend.{e}.log.corrupt-{now}"));
                std::fs::write(&aside, &bytes[good..])?;
                rec.set_aside_bytes += (bytes.len() - good) as u64;
                rec.set_aside_to = Some(aside);
            }
            if f.committed < bytes.len() {
                file.set_len(f.committed as u64)?;
                file.sync_all()?;
            }
        }
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(log_path(dir, current))?;
        let log_bytes = file.seek(SeekFrom::End(0))?;
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut l = Ledger {
            dir: dir.to_path_buf(),
            epoch: current,
            log: BufWriter::with_capacity(64 * 1024, file),
            log_bytes,
            days,
            line: Vec::with_capacity(256),
            run: format!("{run:x}"),
            marks,
            pending: Vec::new(),
            pruned: Vec::new(),
        };
        l.replay_journals(&mut rec)?;
        Ok((l, rec))
    }

    fn journal_dir(&self) -> PathBuf {
        self.dir.join("journal")
    }

    /// Replays every journal in the directory (all are an earlier run's), then deletes them.
    fn replay_journals(&mut self, rec: &mut Recovered) -> io::Result<()> {
        let dir = self.journal_dir();
        let journals = journal::list(&dir)?;
        if journals.is_empty() {
            return Ok(());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for (id, segs) in &journals {
            let mut loaded = Vec::with_capacity(segs.len());
            for &s in segs {
                loaded.push((s, std::fs::read(journal::segment_path(&dir, id, s))?));
            }
            let mark = self.marks.get(id).copied().unwrap_or(0);
            let r = journal::replay(&loaded, mark);
            let mut batch = Vec::new();
            for (t, payer, s) in r.charges.iter().chain(&r.unsettled) {
                batch.push((*t, format!("key:{}", payer.key), *s));
                if let Some(team) = &payer.team {
                    batch.push((*t, format!("team:{team}"), *s));
                }
            }
            rec.journal_charges += r.charges.len() as u64;
            rec.journal_estimated += r.unsettled.len() as u64;
            for u in &r.unsettled {
                rec.journal_estimated_micro_usd = rec
                    .journal_estimated_micro_usd
                    .saturating_add(u.2.cost_micro_usd);
            }
            rec.journal_torn += u64::from(r.torn);
            self.commit(id, batch, r.end.max(mark))?;
            for s in r.damaged {
                let from = journal::segment_path(&dir, id, s);
                let to = dir.join(format!("{id}.{s}.damaged-{now}"));
                std::fs::rename(&from, &to)?;
                rec.journal_damaged.push(to);
            }
        }
        self.sync()?;
        for (id, segs) in &journals {
            for &s in segs {
                match std::fs::remove_file(journal::segment_path(&dir, id, s)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            self.marks.remove(id);
        }
        Ok(())
    }

    /// Starts this run's journals, one per worker (`None` for one that could not be created:
    /// said on stderr; that worker's spend then reaches the ledger as sums alone).
    pub fn journals(&mut self, workers: usize) -> Vec<Option<journal::Writer>> {
        let dir = self.journal_dir();
        self.pruned = vec![0; workers];
        let writers: Vec<_> = (0..workers)
            .map(|w| {
                let id = self.journal_id(w);
                journal::Writer::create(&dir, &id, journal::SEGMENT_BYTES)
                    .map_err(|e| {
                        eprintln!(
                            "tollgate: spend journal {}: {e}; worker {w}'s spend reaches the \
                             ledger every tick, but a kill -9 can lose its last moments",
                            journal::segment_path(&dir, &id, 0).display()
                        );
                    })
                    .ok()
            })
            .collect();
        self.pending = writers
            .iter()
            .map(|w| w.as_ref().map(|_| Vec::new()))
            .collect();
        writers
    }

    fn journal_id(&self, worker: usize) -> String {
        format!("{}-{worker}", self.run)
    }

    /// Records that `scope` spent `s`, as part of `worker`'s next batch (written and counted
    /// when its mark arrives: [`Ledger::mark`]).
    pub fn journaled(
        &mut self,
        worker: usize,
        unix_secs: u64,
        scope: &str,
        s: &Spend,
    ) -> io::Result<()> {
        match self.pending.get_mut(worker) {
            Some(Some(p)) => {
                p.push((unix_secs, scope.to_owned(), *s));
                Ok(())
            }
            _ => self.append(unix_secs, scope, s),
        }
    }

    /// `worker`'s sums so far cover its journal up to `upto`: they go to the log as one batch
    /// and its mark.
    pub fn mark(&mut self, worker: usize, upto: u64) -> io::Result<()> {
        let Some(Some(p)) = self.pending.get_mut(worker) else {
            return Ok(());
        };
        let batch = std::mem::take(p);
        let id = self.journal_id(worker);
        self.commit(&id, batch, upto)
    }

    /// Writes `batch` as journal `id`'s lines and then its mark at `upto`, and counts them.
    fn commit(&mut self, id: &str, batch: Vec<(u64, String, Spend)>, upto: u64) -> io::Result<()> {
        let mut t = 0;
        for (unix_secs, scope, s) in &batch {
            self.line.clear();
            encode(&mut self.line, *unix_secs, scope, s, Some(id));
            self.log.write_all(&self.line)?;
            self.log_bytes += self.line.len() as u64;
            t = t.max(*unix_secs);
        }
        self.line.clear();
        encode_mark(&mut self.line, t, id, upto);
        self.log.write_all(&self.line)?;
        self.log_bytes += self.line.len() as u64;
        for (unix_secs, scope, s) in batch {
            self.days
                .entry((scope, day_of(unix_secs)))
                .or_default()
                .add(&s);
        }
        self.marks.insert(id.to_owned(), upto);
        Ok(())
    }

    /// Deletes this run's journal segments that every mark has passed (after a sync: the
    /// marks are on disk).
    fn prune(&mut self) {
        let dir = self.journal_dir();
        for w in 0..self.pruned.len() {
            let id = self.journal_id(w);
            let Some(&m) = self.marks.get(&id) else {
                continue;
            };
            while self.pruned[w] < m >> 32 {
                let _ = std::fs::remove_file(journal::segment_path(&dir, &id, self.pruned[w]));
                self.pruned[w] += 1;
            }
        }
    }

    /// Records that `scope` spent `s` at `unix_secs` (buffered; see [`Ledger::flush`]).
    pub fn append(&mut self, unix_secs: u64, scope: &str, s: &Spend) -> io::Result<()> {
        self.line.clear();
        encode(&mut self.line, unix_secs, scope, s, None);
        self.log.write_all(&self.line)?;
        self.log_bytes += self.line.len() as u64;
        self.days
            .entry((scope.to_owned(), day_of(unix_secs)))
            .or_default()
            .add(s);
        Ok(())
    }

    /// Hands buffered records to the operating system (they survive the process).
    pub fn flush(&mut self) -> io::Result<()> {
        self.log.flush()
    }

    /// Flushes and asks the disk to keep them (they survive the machine).
    pub fn sync(&mut self) -> io::Result<()> {
        self.log.flush()?;
        self.log.get_ref().sync_data()?;
        self.prune();
        Ok(())
    }

    /// Bytes in the log since the last compaction.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes
    }

    /// Folds everything so far into a new snapshot and starts a new, empty log (see the
    /// module docs for why a crash at any step counts every record once).
    pub fn compact(&mut self) -> io::Result<()> {
        self.log.flush()?;
        let next = self.epoch + 1;
        let new_log = OpenOptions::new()
            .append(true)
            .create(true)
            .open(log_path(&self.dir, next))?;
        let old_log =
            std::mem::replace(&mut self.log, BufWriter::with_capacity(64 * 1024, new_log));
        old_log.get_ref().sync_all()?;
        let tmp = self.dir.join("spend.snapshot.tmp");
        {
            let mut out = BufWriter::new(File::create(&tmp)?);
            self.line.clear();
            self.line.extend_from_slice(b"{\"epoch\":");
            json::uint(&mut self.line, next);
            self.line.extend_from_slice(b",\"marks\":{");
            let prefix = format!("{}-", self.run);
            let live = self.marks.iter().filter(|(id, _)| id.starts_with(&prefix));
            for (i, (id, p)) in live.enumerate() {
                if i > 0 {
                    self.line.push(b',');
                }
                json::string(&mut self.line, id.as_bytes());
                self.line.push(b':');
                json::uint(&mut self.line, *p);
            }
            self.line.extend_from_slice(b"}}\n");
            out.write_all(&self.line)?;
            for ((scope, day), s) in &self.days {
                self.line.clear();
                encode(&mut self.line, u64::from(*day) * 86_400, scope, s, None);
                out.write_all(&self.line)?;
            }
            out.flush()?;
            out.get_ref().sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join("spend.snapshot"))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        std::fs::remove_file(log_path(&self.dir, self.epoch))?;
        self.epoch = next;
        self.log_bytes = 0;
        Ok(())
    }

    /// Totals per (scope, UTC day).
    pub fn days(&self) -> &BTreeMap<(String, Day), Spend> {
        &self.days
    }

    /// What `scope` spent from day `from` on (the current budget period, see [`Period`]).
    pub fn spent_since(&self, scope: &str, from: Day) -> Spend {
        let mut out = Spend::default();
        for (_, s) in self
            .days
            .range((scope.to_owned(), from)..=(scope.to_owned(), Day::MAX))
        {
            out.add(s);
        }
        out
    }

    /// Totals per scope over all days.
    pub fn totals(&self) -> BTreeMap<String, Spend> {
        let mut out: BTreeMap<String, Spend> = BTreeMap::new();
        for ((scope, _), s) in &self.days {
            out.entry(scope.clone()).or_default().add(s);
        }
        out
    }
}

fn log_path(dir: &Path, epoch: u64) -> PathBuf {
    dir.join(format!("spend.{epoch}.log"))
}

fn checksum(payload: &[u8]) -> [u8; 16] {
    let d = ring::digest::digest(&ring::digest::SHA256, payload);
    let mut out = [0u8; 16];
    for (o, b) in out.chunks_mut(2).zip(d.as_ref()) {
        o[0] = b"0123456789abcdef"[usize::from(b >> 4)];
        o[1] = b"0123456789abcdef"[usize::from(b & 0xf)];
    }
    out
}

fn encode(out: &mut Vec<u8>, t: u64, scope: &str, s: &Spend, journal: Option<&str>) {
    let mut p = Vec::with_capacity(200);
    p.extend_from_slice(b"{\"t\":");
    json::uint(&mut p, t);
    p.extend_from_slice(b",\"s\":");
    json::string(&mut p, scope.as_bytes());
    for (k, v) in [
        (&b",\"r\":"[..], s.requests),
        (b",\"e\":", s.estimated_requests),
        (b",\"i\":", s.input_tokens),
        (b",\"o\":", s.output_tokens),
        (b",\"cr\":", s.cache_read_tokens),
        (b",\"cc\":", s.cache_creation_tokens),
        (b",\"rs\":", s.reasoning_tokens),
        (b",\"c\":", s.cost_micro_usd),
    ] {
        p.extend_from_slice(k);
        json::uint(&mut p, v);
    }
    if let Some(j) = journal {
        p.extend_from_slice(b",\"j\":");
        json::string(&mut p, j.as_bytes());
    }
    p.push(b'}');
    frame(out, &p);
}

fn encode_mark(out: &mut Vec<u8>, t: u64, journal: &str, upto: u64) {
    let mut p = Vec::with_capacity(96);
    p.extend_from_slice(b"{\"t\":");
    json::uint(&mut p, t);
    p.extend_from_slice(b",\"s\":\"#mark\",\"m\":");
    json::string(&mut p, journal.as_bytes());
    p.extend_from_slice(b",\"p\":");
    json::uint(&mut p, upto);
    p.push(b'}');
    frame(out, &p);
}

/// `<checksum> <payload>\n`.
fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&checksum(payload));
    out.push(b' ');
    out.extend_from_slice(payload);
    out.push(b'\n');
}

/// What [`fold`] found in a log.
struct Folded {
    /// Where the valid prefix ends (a torn or corrupt line after it).
    valid: usize,
    /// Where the counted prefix ends: before a journal batch whose mark is missing.
    committed: usize,
    records: u64,
    /// Lines of that batch.
    uncommitted: u64,
}

/// Folds every valid, committed record of `bytes` into `days` (a journal batch counts when its
/// mark follows it), and the marks into `marks`.
fn fold(
    bytes: &[u8],
    days: &mut BTreeMap<(String, Day), Spend>,
    marks: &mut BTreeMap<String, u64>,
    scratch: &mut json::Scratch,
) -> Folded {
    let mut pos = 0;
    let mut n = 0;
    let mut batch: Vec<(String, Day, Spend)> = Vec::new();
    let mut batch_at = 0;
    while pos < bytes.len() {
        let Some(nl) = memchr::memchr(b'\n', &bytes[pos..]) else {
            break; // torn: the last line never got its end
        };
        let line = &bytes[pos..pos + nl];
        let Some(r) = decode(line, scratch) else {
            break;
        };
        let s = Spend {
            requests: r.r,
            estimated_requests: r.e,
            input_tokens: r.i,
            output_tokens: r.o,
            cache_read_tokens: r.cr,
            cache_creation_tokens: r.cc,
            reasoning_tokens: r.rs,
            cost_micro_usd: r.c,
        };
        if let Some(id) = r.m.filter(|_| r.s == MARK) {
            for (scope, day, s) in batch.drain(..) {
                days.entry((scope, day)).or_default().add(&s);
            }
            marks.insert(id, r.p);
        } else if r.j.is_some() {
            if batch.is_empty() {
                batch_at = pos;
            }
            batch.push((r.s, day_of(r.t), s));
        } else {
            days.entry((r.s, day_of(r.t))).or_default().add(&s);
        }
        n += 1;
        pos += nl + 1;
    }
    let uncommitted = batch.len() as u64;
    Folded {
        valid: pos,
        committed: if batch.is_empty() { pos } else { batch_at },
        records: n - uncommitted,
        uncommitted,
    }
}

fn decode(line: &[u8], scratch: &mut json::Scratch) -> Option<Record> {
    if line.len() < 18 || line[16] != b' ' {
        return None;
    }
    let payload = &line[17..];
    if checksum(payload) != line[..16] {
        return None;
    }
    scratch.parse::<Record>(payload)
}

/// The day a quota's current period began (today, for a rate limit).
pub fn period_start(q: &Quota, today: Day) -> Day {
    match q.window {
        crate::config::Window::Period(p) => p.start(today),
        crate::config::Window::Minute => today,
    }
}

impl Ledger {
    /// What `scope` spent from `from` on, less the credits of admin resets.
    pub fn net_spent(&self, scope: &str, from: Day) -> Spend {
        self.spent_since(scope, from)
            .saturating_sub(&self.spent_since(&format!("credit:{scope}"), from))
    }

    /// A budget's spend in its current period.
    pub fn budget_spent(&self, q: &Quota, from: Day) -> i64 {
        let s = self.net_spent(&q.scope, from);
        let v = match q.unit {
            Unit::MicroUsd => s.cost_micro_usd,
            Unit::Tokens => s.input_tokens + s.output_tokens,
            Unit::Requests => s.requests,
        };
        v.min(i64::MAX as u64) as i64
    }

    /// Keys an admin disabled (and did not re-enable), from the records.
    pub fn runtime_disabled(&self) -> BTreeSet<String> {
        let totals = self.totals();
        totals
            .iter()
            .filter_map(|(scope, s)| {
                let id = scope.strip_prefix("disable:key:")?;
                let enabled = totals
                    .get(&format!("enable:key:{id}"))
                    .map_or(0, |e| e.requests);
                (s.requests > enabled).then(|| id.to_owned())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::journal::{Entry, Estimate, Payer};

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tollgate-ledger-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn spend(i: u64) -> Spend {
        Spend {
            requests: 1,
            input_tokens: i,
            output_tokens: 2 * i,
            cost_micro_usd: 3 * i,
            ..Spend::default()
        }
    }

    const DAY: u64 = 86_400;

    fn journal_charge(serial: u64, i: u64) -> Entry<&'static str> {
        Entry::Charge {
            serial,
            t: 3 * DAY,
            payer: Payer {
                key: "a",
                team: Some("t"),
            },
            spend: spend(i),
            last: true,
        }
    }

    fn journal_open(serial: u64, i: u64) -> Entry<&'static str> {
        Entry::Open {
            serial,
            t: 3 * DAY,
            payer: Payer {
                key: "a",
                team: Some("t"),
            },
            estimate: Estimate {
                input_tokens: i,
                output_tokens: i,
                cost_micro_usd: i,
            },
        }
    }

    /// A call charged and marked counts once; one charged whose batch lost its mark is
    /// replayed from the journal (its unmarked lines dropped); one in flight is charged at its
    /// estimate, flagged — and reopening again changes nothing.
    #[test]
    fn journals_replay_what_the_ledger_lacks_and_nothing_twice() {
        let d = dir("journal");
        let a = ("key:a".to_owned(), 3);
        {
            let (mut l, _) = Ledger::open(&d).unwrap();
            let mut js = l.journals(1);
            let j = js[0].as_mut().unwrap();
            j.write(&journal_open(1, 1000));
            j.write(&journal_charge(1, 10));
            for scope in ["key:a", "team:t"] {
                l.journaled(0, 3 * DAY, scope, &spend(10)).unwrap();
            }
            l.mark(0, j.position()).unwrap();
            l.compact().unwrap(); // the mark must survive it
            j.write(&journal_open(2, 2000));
            j.write(&journal_charge(2, 20));
            // Its batch reached the log without its mark.
            let mut torn = Vec::new();
            encode(
                &mut torn,
                3 * DAY,
                "key:a",
                &spend(20),
                Some(&l.journal_id(0)),
            );
            l.log.write_all(&torn).unwrap();
            l.flush().unwrap();
            j.write(&journal_open(3, 300)); // in flight at the kill
        }
        let (l, rec) = Ledger::open(&d).unwrap();
        assert_eq!((rec.uncommitted, rec.journal_charges), (1, 1), "{rec:?}");
        assert_eq!(rec.journal_estimated, 1);
        assert_eq!(rec.journal_estimated_micro_usd, 300);
        let got = l.days()[&a];
        assert_eq!(got.requests, 3);
        assert_eq!(got.estimated_requests, 1);
        assert_eq!(got.input_tokens, 10 + 20 + 300);
        assert_eq!(l.days()[&("team:t".to_owned(), 3)], got);
        assert!(journal::list(&l.journal_dir()).unwrap().is_empty());
        drop(l);
        let (l, rec) = Ledger::open(&d).unwrap();
        assert_eq!(l.days()[&a], got);
        assert_eq!(rec.journal_report(), None);
    }

    #[test]
    fn spend_survives_reopening_and_compaction_per_scope_and_day() {
        let d = dir("reopen");
        {
            let (mut l, rec) = Ledger::open(&d).unwrap();
            assert_eq!(rec, Recovered::default());
            l.append(10 * DAY + 5, "key:a", &spend(1)).unwrap();
            l.append(10 * DAY + 6, "key:a", &spend(2)).unwrap();
            l.append(11 * DAY, "key:a", &spend(4)).unwrap();
            l.append(11 * DAY, "team:t", &spend(8)).unwrap();
            l.flush().unwrap();
        }
        let (mut l, rec) = Ledger::open(&d).unwrap();
        assert_eq!(rec.records, 4);
        assert_eq!(l.days()[&("key:a".to_owned(), 10)].input_tokens, 3);
        assert_eq!(l.days()[&("key:a".to_owned(), 11)].requests, 1);
        assert_eq!(l.totals()["key:a"].cost_micro_usd, 21);
        l.compact().unwrap();
        assert_eq!(l.log_bytes(), 0);
        l.append(11 * DAY + 1, "team:t", &spend(16)).unwrap();
        l.sync().unwrap();
        drop(l);
        let (l, rec) = Ledger::open(&d).unwrap();
        assert_eq!(
            rec.records,
            3 + 1,
            "three day records in the snapshot, one in the log"
        );
        assert_eq!(l.totals()["team:t"].input_tokens, 24);
        assert_eq!(l.totals()["key:a"].input_tokens, 7);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_set_aside_and_reported_never_silently_reset() {
        for damage in ["torn", "flipped"] {
            let d = dir(damage);
            {
                let (mut l, _) = Ledger::open(&d).unwrap();
                for i in 1..=3 {
                    l.append(DAY, "key:a", &spend(i)).unwrap();
                }
                l.flush().unwrap();
            }
            let log = d.join("spend.0.log");
            let mut bytes = std::fs::read(&log).unwrap();
            let clean = bytes.len();
            match damage {
                // A write cut off mid-record.
                "torn" => bytes.extend_from_slice(b"0123456789abcdef {\"t\":86400,\"s\":\"ke"),
                // A bit flipped inside the last record.
                _ => {
                    let at = clean - 5;
                    bytes[at] ^= 0x01;
                }
            }
            std::fs::write(&log, &bytes).unwrap();
            let (mut l, rec) = Ledger::open(&d).unwrap();
            let kept = if damage == "torn" { 3 } else { 2 };
            assert_eq!(rec.records, kept, "{damage}");
            assert!(rec.set_aside_bytes > 0, "{damage}: reported");
            let aside = std::fs::read(rec.set_aside_to.as_ref().unwrap()).unwrap();
            assert_eq!(
                aside.len() as u64,
                rec.set_aside_bytes,
                "{damage}: kept aside"
            );
            assert_eq!(l.totals()["key:a"].requests, kept);
            // The log goes on from the valid prefix.
            l.append(DAY, "key:a", &spend(10)).unwrap();
            l.flush().unwrap();
            drop(l);
            let (l, rec) = Ledger::open(&d).unwrap();
            assert_eq!(rec.set_aside_bytes, 0, "{damage}: clean after recovery");
            assert_eq!(l.totals()["key:a"].requests, kept + 1);
            let _ = std::fs::remove_dir_all(&d);
        }
    }

    #[test]
    fn a_compaction_cut_short_at_any_step_counts_every_record_once() {
        // Stopped after the new log was opened and the snapshot renamed, before the old log
        // was deleted: recovery must not count the old log on top of the snapshot.
        let d = dir("cut");
        {
            let (mut l, _) = Ledger::open(&d).unwrap();
            l.append(DAY, "key:a", &spend(1)).unwrap();
            l.compact().unwrap();
            l.append(DAY, "key:a", &spend(2)).unwrap();
            l.flush().unwrap();
        }
        // Re-create the deleted epoch-0 log as if the delete had not happened.
        let mut line = Vec::new();
        encode(&mut line, DAY, "key:a", &spend(1), None);
        std::fs::write(d.join("spend.0.log"), &line).unwrap();
        let (l, _) = Ledger::open(&d).unwrap();
        assert_eq!(
            l.totals()["key:a"].requests,
            2,
            "the old log is not counted twice"
        );
        assert!(!d.join("spend.0.log").exists(), "and it is cleaned up");
        // Stopped before the rename: the old snapshot (none) plus both logs.
        let d2 = dir("cut2");
        std::fs::create_dir_all(&d2).unwrap();
        std::fs::write(d2.join("spend.0.log"), &line).unwrap();
        let mut line2 = Vec::new();
        encode(&mut line2, DAY, "key:a", &spend(2), None);
        std::fs::write(d2.join("spend.1.log"), &line2).unwrap();
        let (mut l, _) = Ledger::open(&d2).unwrap();
        assert_eq!(l.totals()["key:a"].input_tokens, 3);
        l.append(DAY, "key:a", &spend(4)).unwrap();
        l.flush().unwrap();
        assert!(
            std::fs::read(d2.join("spend.1.log")).unwrap().len() > line2.len(),
            "appends go to the newest log"
        );
        assert_eq!(std::fs::read(d2.join("spend.0.log")).unwrap(), line);
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&d2);
    }

    #[test]
    fn spend_since_a_period_start() {
        let d = dir("since");
        let (mut l, _) = Ledger::open(&d).unwrap();
        for day in [9u64, 10, 11, 12] {
            l.append(day * DAY, "key:a", &spend(day)).unwrap();
        }
        l.append(11 * DAY, "key:b", &spend(100)).unwrap();
        assert_eq!(l.spent_since("key:a", 11).input_tokens, 11 + 12);
        assert_eq!(l.spent_since("key:a", 0).requests, 4);
        assert_eq!(l.spent_since("key:c", 0), Spend::default());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_damaged_snapshot_is_refused() {
        let d = dir("snapshot");
        {
            let (mut l, _) = Ledger::open(&d).unwrap();
            l.append(DAY, "key:a", &spend(1)).unwrap();
            l.compact().unwrap();
        }
        let snap = d.join("spend.snapshot");
        let mut bytes = std::fs::read(&snap).unwrap();
        let at = bytes.len() - 10;
        bytes[at] ^= 0x01;
        std::fs::write(&snap, &bytes).unwrap();
        let e = Ledger::open(&d).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
