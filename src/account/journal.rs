//! The spend journal: each worker's own append-only record of the calls it let through to a
//! provider and what each was charged, so that a `kill -9` loses no spend (ARCHITECTURE.md,
//! "Persistence").
//!
//! **What is written, when.** Before a call is forwarded (after admission), an `Open` record:
//! the request's serial, its key and team, and its estimate (the tokens and cost its
//! reservation assumed). Each charge the worker adds to its spend sums is a `Charge` record
//! written in the same step; the request's final charge closes it, and a request that ends
//! without one (it failed before a provider accepted it) gets a `Close`. Records go into a
//! file mapped into the worker's memory (`mmap`, `MAP_SHARED`): a store into it is in the
//! kernel's page cache the moment it is made, so a killed process has lost nothing it
//! wrote — no system call per record, no wait. (io_uring writes would cost a submission and a
//! completion per batch and hold each call until its batch is written; the mapping costs a
//! `memcpy` and a page fault per 4 KiB.)
//!
//! **Segments.** A worker's journal is a series of [`SEGMENT_BYTES`] files,
//! `journal/<journal id>.<segment>`, allocated in full when created (`posix_fallocate`, so a
//! full disk is an error at creation, never a fault on a store). When one is full the worker
//! starts the next, first copying into it the `Open` records of the calls still in flight:
//! every segment but the current one can then be deleted once the ledger covers it.
//!
//! **Marks.** A position in the journal is `segment << 32 | offset`. Each time a worker
//! hands its spend sums to the coordinator it also sends the journal position they cover
//! (`WorkerEvent::JournalMark`); the ledger writes those sums and then a mark line naming the
//! position (`ledger.rs`), and once that is synced deletes the segments before it.
//!
//! **Recovery** ([`replay`]): for each journal left by an earlier run, the records after the
//! ledger's last mark for it are charged (the sums that never reached the ledger), and every
//! `Open` never closed is charged at its estimate, counted as an estimated request — the call
//! may have been billed, and its estimate is what admission allowed it to cost. Then the
//! journal is deleted.
//!
//! **Bounds.** The ledger is never below what providers billed for calls whose estimate
//! covered their cost (the estimate is the reservation: prompt bytes / 4 and `max_tokens`),
//! and above it by at most the estimates of the calls in flight at the kill (sent but not yet
//! answered, or answered but not yet settled — settlement follows the response's last byte by
//! microseconds). A record is checksummed (CRC-32, `crc32fast`); a torn last
//! record (the kill fell inside its `memcpy`) is the end of the journal; a bad record anywhere
//! else is damage: the segment is kept under a `.damaged` name and reported, never deleted.
//! Against power loss the journal is not synced: the window is the ledger's sync period
//! (`[ledger] sync_ms`), as before the journal.

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use super::Spend;

/// Bytes in one journal segment (a worker at 60,000 requests/s fills one in about a second).
pub const SEGMENT_BYTES: usize = 4 << 20;
/// A record's head: CRC-32 of the rest (4), payload length (2), kind (1).
const HEAD: usize = 7;

const OPEN: u8 = 1;
const CHARGE: u8 = 2;
const CLOSE: u8 = 3;

/// What a call's reservation assumed it would use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micro_usd: u64,
}

impl Estimate {
    /// The estimate as spend: one request, flagged estimated.
    pub fn as_spend(&self) -> Spend {
        Spend {
            requests: 1,
            estimated_requests: 1,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cost_micro_usd: self.cost_micro_usd,
            ..Spend::default()
        }
    }
}

/// Whose spend a record is: the key's id and its team's (borrowed when written, owned when
/// read back).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Payer<S = String> {
    pub key: S,
    pub team: Option<S>,
}

/// One record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry<S = String> {
    Open {
        serial: u64,
        t: u64,
        payer: Payer<S>,
        estimate: Estimate,
    },
    Charge {
        serial: u64,
        t: u64,
        payer: Payer<S>,
        spend: Spend,
        last: bool,
    },
    Close {
        serial: u64,
    },
}

impl<S> Entry<S> {
    /// The same record with its payer's strings mapped by `f` (`String` ↔ `&str`).
    pub fn map<'a, T>(&'a self, f: impl Fn(&'a S) -> T) -> Entry<T> {
        let payer = |p: &'a Payer<S>| Payer {
            key: f(&p.key),
            team: p.team.as_ref().map(&f),
        };
        match self {
            Entry::Open {
                serial,
                t,
                payer: p,
                estimate,
            } => Entry::Open {
                serial: *serial,
                t: *t,
                payer: payer(p),
                estimate: *estimate,
            },
            Entry::Charge {
                serial,
                t,
                payer: p,
                spend,
                last,
            } => Entry::Charge {
                serial: *serial,
                t: *t,
                payer: payer(p),
                spend: *spend,
                last: *last,
            },
            Entry::Close { serial } => Entry::Close { serial: *serial },
        }
    }
}

impl<S: AsRef<str>> Entry<S> {
    /// Appends the record (head and payload) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; HEAD]);
        let kind = match self {
            Entry::Open {
                serial,
                t,
                payer,
                estimate: e,
            } => {
                put(out, &[*serial, *t, e.input_tokens, e.output_tokens]);
                put(out, &[e.cost_micro_usd]);
                put_payer(out, payer);
                OPEN
            }
            Entry::Charge {
                serial,
                t,
                payer,
                spend: s,
                last,
            } => {
                put(out, &[*serial, *t, s.requests, s.estimated_requests]);
                put(out, &[s.input_tokens, s.output_tokens, s.cache_read_tokens]);
                put(out, &[s.cache_creation_tokens, s.reasoning_tokens]);
                put(out, &[s.cost_micro_usd]);
                out.push(u8::from(*last));
                put_payer(out, payer);
                CHARGE
            }
            Entry::Close { serial } => {
                put(out, &[*serial]);
                CLOSE
            }
        };
        let len = (out.len() - start - HEAD) as u16;
        out[start + 4..start + 6].copy_from_slice(&len.to_le_bytes());
        out[start + 6] = kind;
        let crc = crc32fast::hash(&out[start + 4..]);
        out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Numbers as LEB128 varints: most are small (token counts, flags) and a record is written
/// for every call — fewer bytes are fewer pages touched.
fn put(out: &mut Vec<u8>, vs: &[u64]) {
    for &v in vs {
        let mut v = v;
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
}

/// Names are cut at 255 bytes (key and team ids are far shorter).
fn put_payer<S: AsRef<str>>(out: &mut Vec<u8>, p: &Payer<S>) {
    for name in [Some(p.key.as_ref()), p.team.as_ref().map(AsRef::as_ref)] {
        let name = name.unwrap_or("");
        // cut at a character boundary: the name must read back as UTF-8
        let mut end = name.len().min(255);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let b = &name.as_bytes()[..end];
        out.push(b.len() as u8);
        out.extend_from_slice(b);
    }
}

/// What reading one record found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// A record, and the bytes it took.
    Entry(Entry, usize),
    /// Zeros: nothing was ever written here.
    End,
    /// A record cut short or failing its checksum, with only zeros after it: the write the
    /// process was killed in.
    Torn,
    /// A bad record with data after it: damage the journal cannot explain.
    Damaged,
}

/// Reads the record at the start of `b` (the rest of a segment).
pub fn read(b: &[u8]) -> Read {
    if b.len() < HEAD || b[..HEAD].iter().all(|&x| x == 0) {
        return if b.iter().all(|&x| x == 0) {
            Read::End
        } else {
            bad(b, 0)
        };
    }
    let len = usize::from(u16::from_le_bytes([b[4], b[5]]));
    let Some(rec) = b.get(..HEAD + len) else {
        return bad(b, 0);
    };
    let crc = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]);
    if crc != crc32fast::hash(&rec[4..]) {
        return bad(b, HEAD + len);
    }
    match decode(rec[6], &rec[HEAD..]) {
        Some(e) => Read::Entry(e, HEAD + len),
        None => bad(b, HEAD + len),
    }
}

/// A bad record: torn when nothing follows it (past what its own head claims).
fn bad(b: &[u8], claimed: usize) -> Read {
    if b[claimed.min(b.len())..].iter().all(|&x| x == 0) {
        Read::Torn
    } else {
        Read::Damaged
    }
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn u64(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }
    fn u8(&mut self) -> Option<u8> {
        let (v, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*v)
    }
    fn name(&mut self) -> Option<String> {
        let n = usize::from(self.u8()?);
        let b = self.0.get(..n)?;
        self.0 = &self.0[n..];
        String::from_utf8(b.to_vec()).ok()
    }
    fn payer(&mut self) -> Option<Payer> {
        let key = self.name()?;
        let team = self.name()?;
        Some(Payer {
            key,
            team: (!team.is_empty()).then_some(team),
        })
    }
}

fn decode(kind: u8, payload: &[u8]) -> Option<Entry> {
    let mut c = Cursor(payload);
    let e = match kind {
        OPEN => Entry::Open {
            serial: c.u64()?,
            t: c.u64()?,
            estimate: Estimate {
                input_tokens: c.u64()?,
                output_tokens: c.u64()?,
                cost_micro_usd: c.u64()?,
            },
            payer: c.payer()?,
        },
        CHARGE => {
            let (serial, t) = (c.u64()?, c.u64()?);
            let spend = Spend {
                requests: c.u64()?,
                estimated_requests: c.u64()?,
                input_tokens: c.u64()?,
                output_tokens: c.u64()?,
                cache_read_tokens: c.u64()?,
                cache_creation_tokens: c.u64()?,
                reasoning_tokens: c.u64()?,
                cost_micro_usd: c.u64()?,
            };
            let last = c.u8()? != 0;
            Entry::Charge {
                serial,
                t,
                spend,
                last,
                payer: c.payer()?,
            }
        }
        CLOSE => Entry::Close { serial: c.u64()? },
        _ => return None,
    };
    c.0.is_empty().then_some(e)
}

/// A segment's file name.
pub fn segment_path(dir: &Path, journal: &str, segment: u64) -> PathBuf {
    dir.join(format!("{journal}.{segment}"))
}

/// A worker's journal, as it writes.
#[derive(Debug)]
pub struct Writer {
    dir: PathBuf,
    id: String,
    segment_bytes: usize,
    segment: u64,
    map: Option<Map>,
    offset: usize,
    /// Calls in flight: serial → where its latest `Open` record starts, and its length.
    open: HashMap<u64, (usize, usize), BuildHasherDefault<SerialHash>>,
    record: Vec<u8>,
    /// The position last handed out by [`Writer::unmarked`].
    marked: Option<u64>,
    /// Set when a segment could not be created: the journal stops (spend still travels to
    /// the coordinator as before; only the protection against a kill is gone, and said).
    failed: bool,
}

impl Writer {
    /// Starts journal `id` in `dir` (its first segment).
    pub fn create(dir: &Path, id: &str, segment_bytes: usize) -> io::Result<Writer> {
        std::fs::create_dir_all(dir)?;
        let map = Map::create(&segment_path(dir, id, 0), segment_bytes)?;
        Ok(Writer {
            dir: dir.to_path_buf(),
            id: id.to_owned(),
            segment_bytes,
            segment: 0,
            map: Some(map),
            offset: 0,
            open: HashMap::default(),
            record: Vec::with_capacity(256),
            marked: None,
            failed: false,
        })
    }

    /// The position after the last record written.
    pub fn position(&self) -> u64 {
        (self.segment << 32) | self.offset as u64
    }

    /// The position, if records were written since it was last asked for (an idle worker
    /// sends no marks, and the ledger writes no lines for it).
    pub fn unmarked(&mut self) -> Option<u64> {
        let p = self.position();
        (self.marked != Some(p)).then(|| {
            self.marked = Some(p);
            p
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Records `e` (see the module docs for which records a call gets).
    pub fn write(&mut self, e: &Entry<&str>) {
        if self.failed {
            return;
        }
        let mut rec = std::mem::take(&mut self.record);
        rec.clear();
        e.encode(&mut rec);
        if self.offset + rec.len() > self.segment_bytes {
            self.next_segment();
        }
        if let Some(map) = &mut self.map
            && let Some(dst) = map.bytes().get_mut(self.offset..self.offset + rec.len())
        {
            dst.copy_from_slice(&rec);
            match e {
                Entry::Open { serial, .. } => {
                    self.open.insert(*serial, (self.offset, rec.len()));
                }
                Entry::Charge {
                    serial, last: true, ..
                }
                | Entry::Close { serial } => {
                    self.open.remove(serial);
                }
                Entry::Charge { .. } => {}
            }
            self.offset += rec.len();
        }
        self.record = rec;
    }

    /// Starts the next segment with the `Open` records of the calls still in flight.
    fn next_segment(&mut self) {
        let path = segment_path(&self.dir, &self.id, self.segment + 1);
        let mut map = match Map::create(&path, self.segment_bytes) {
            Ok(m) => m,
            Err(e) => {
                eprintln!(
                    "tollgate: spend journal {}: {e}; journaling stopped (spend still reaches \
                     the ledger, but a kill -9 can lose the last moments of it)",
                    path.display()
                );
                self.failed = true;
                self.map = None;
                return;
            }
        };
        let mut offset = 0;
        if let Some(old) = &mut self.map {
            let (old, new) = (old.bytes(), map.bytes());
            for (at, len) in self.open.values_mut() {
                if offset + *len > new.len() {
                    break; // more calls in flight than a segment holds: not on any real load
                }
                new[offset..offset + *len].copy_from_slice(&old[*at..*at + *len]);
                *at = offset;
                offset += *len;
            }
        }
        self.map = Some(map);
        self.segment += 1;
        self.offset = offset;
    }
}

/// Request serials are unique and count up: one multiply spreads them enough (SipHash, the
/// default, costs more than the rest of a record's bookkeeping).
#[derive(Clone, Copy, Debug, Default)]
struct SerialHash(u64);

impl Hasher for SerialHash {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A file mapped shared into memory, read and write, for as long as this lives.
#[derive(Debug)]
struct Map {
    ptr: NonNull<u8>,
    len: usize,
}

#[allow(
    unsafe_code,
    reason = "the mapping is owned by this value alone; it moves between threads whole"
)]
// SAFETY: nothing else refers to the mapping; moving it moves its only owner.
unsafe impl Send for Map {}

impl Map {
    /// Creates `path` (it must not exist) with `len` bytes allocated, and maps it.
    #[allow(
        unsafe_code,
        reason = "posix_fallocate and mmap have no safe std wrappers"
    )]
    fn create(path: &Path, len: usize) -> io::Result<Map> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        // SAFETY: integer arguments on a descriptor `f` owns.
        let r = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, len as libc::off_t) };
        match r {
            0 => {}
            // A file system without allocation: sized instead (a full disk would then fault
            // on a store; every Linux file system the gateway runs on allocates).
            libc::EOPNOTSUPP | libc::EINVAL => f.set_len(len as u64)?,
            e => return Err(io::Error::from_raw_os_error(e)),
        }
        // SAFETY: a new shared mapping of a file of at least `len` bytes; the descriptor may
        // close afterwards (the mapping keeps the file).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Map { ptr, len })
    }

    #[allow(unsafe_code, reason = "a view of the mapping this value owns")]
    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `ptr..ptr+len` is mapped read-write for as long as `self` lives, and the
        // file is the gateway's own (in its ledger directory; nothing truncates it while
        // mapped); `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Map {
    #[allow(unsafe_code, reason = "munmap has no safe std wrapper")]
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `create` made; no view of it outlives `self`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// What an earlier run's journal adds to the ledger.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Charges after the ledger's mark: `(unix seconds, payer, spend)`.
    pub charges: Vec<(u64, Payer, Spend)>,
    /// Calls opened and never closed, charged at their estimate.
    pub unsettled: Vec<(u64, Payer, Spend)>,
    /// The position after the last record read.
    pub end: u64,
    /// A torn last record was found (the kill fell inside its write).
    pub torn: bool,
    /// Segments with a bad record before their end (the caller keeps them and reports).
    pub damaged: Vec<u64>,
}

/// Reads one journal's segments (number and bytes, ascending) and returns what the ledger
/// lacks, given its mark for this journal (`mark`: every charge before it is in the ledger).
pub fn replay(segments: &[(u64, Vec<u8>)], mark: u64) -> Replayed {
    let mut out = Replayed::default();
    let mut open: BTreeMap<u64, (u64, Payer, Estimate)> = BTreeMap::new();
    for (seg, bytes) in segments {
        let mut at = 0;
        loop {
            let pos = (seg << 32) | at as u64;
            match read(&bytes[at..]) {
                Read::Entry(e, n) => {
                    at += n;
                    out.end = (seg << 32) | at as u64;
                    match e {
                        Entry::Open {
                            serial,
                            t,
                            payer,
                            estimate,
                        } => {
                            open.insert(serial, (t, payer, estimate));
                        }
                        Entry::Charge {
                            serial,
                            t,
                            payer,
                            spend,
                            last,
                        } => {
                            if last {
                                open.remove(&serial);
                            }
                            if pos >= mark {
                                out.charges.push((t, payer, spend));
                            }
                        }
                        Entry::Close { serial } => {
                            open.remove(&serial);
                        }
                    }
                }
                Read::End => break,
                Read::Torn => {
                    out.torn = true;
                    break;
                }
                Read::Damaged => {
                    out.damaged.push(*seg);
                    break;
                }
            }
        }
    }
    out.unsettled = open
        .into_values()
        .map(|(t, p, e)| (t, p, e.as_spend()))
        .collect();
    out
}

/// The journals in `dir`: id → segment numbers, ascending.
pub fn list(dir: &Path) -> io::Result<BTreeMap<String, Vec<u64>>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name();
        let Some((id, seg)) = name.to_str().and_then(|n| n.rsplit_once('.')) else {
            continue;
        };
        if let Ok(seg) = seg.parse::<u64>() {
            out.entry(id.to_owned()).or_default().push(seg);
        }
    }
    for segs in out.values_mut() {
        segs.sort_unstable();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payer(k: &'static str, t: Option<&'static str>) -> Payer<&'static str> {
        Payer { key: k, team: t }
    }

    fn owned(e: &Entry<&str>) -> Entry {
        e.map(|s| (*s).to_owned())
    }

    fn est(i: u64) -> Estimate {
        Estimate {
            input_tokens: i,
            output_tokens: 2 * i,
            cost_micro_usd: 3 * i,
        }
    }

    fn charge(serial: u64, i: u64, last: bool) -> Entry<&'static str> {
        Entry::Charge {
            serial,
            t: 100,
            payer: payer("k", Some("t")),
            spend: Spend {
                requests: 1,
                input_tokens: i,
                cost_micro_usd: i,
                ..Spend::default()
            },
            last,
        }
    }

    fn open(serial: u64, i: u64) -> Entry<&'static str> {
        Entry::Open {
            serial,
            t: 99,
            payer: payer("k", None),
            estimate: est(i),
        }
    }

    #[test]
    fn records_round_trip_and_every_cut_is_torn_never_an_entry() {
        for e in [open(7, 5), charge(8, 9, true), Entry::Close { serial: 9 }] {
            let mut b = Vec::new();
            e.encode(&mut b);
            let n = b.len();
            b.resize(n + 64, 0);
            assert_eq!(read(&b), Read::Entry(owned(&e), n));
            assert_eq!(read(&b[n..]), Read::End);
            // A kill inside the copy leaves a prefix followed by zeros: torn, or the whole
            // record when the bytes not yet copied were zeros anyway.
            for cut in 1..n {
                let mut t = b.clone();
                t[cut..].fill(0);
                match read(&t) {
                    Read::Torn => {}
                    Read::Entry(got, len) => assert!(got == owned(&e) && len == n),
                    other => panic!("cut at {cut} of {e:?}: {other:?}"),
                }
            }
            // A flipped byte with data after it is damage.
            for i in 0..n {
                let mut d = b.clone();
                d[i] ^= 0x5a;
                d[n + 8] = 1;
                assert!(!matches!(read(&d), Read::Entry(..)), "flip at {i}");
            }
        }
    }

    fn dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("tollgate-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn segments(d: &Path, id: &str) -> Vec<(u64, Vec<u8>)> {
        list(d).unwrap()[id]
            .iter()
            .map(|&s| (s, std::fs::read(segment_path(d, id, s)).unwrap()))
            .collect()
    }

    #[test]
    fn replay_charges_what_follows_the_mark_and_estimates_what_never_closed() {
        let d = dir("replay");
        let mut w = Writer::create(&d, "r-0", 4096).unwrap();
        w.write(&open(1, 10));
        w.write(&charge(1, 11, true));
        w.write(&open(2, 20));
        w.write(&Entry::Close { serial: 2 });
        let mark = w.position();
        assert_eq!(w.unmarked(), Some(mark));
        assert_eq!(w.unmarked(), None, "no records since: no mark");
        w.write(&open(3, 30));
        w.write(&charge(3, 5, false)); // a hedge's loser: charged, still open
        w.write(&open(4, 40));
        w.write(&charge(4, 41, true));
        drop(w);
        let r = replay(&segments(&d, "r-0"), mark);
        let charged: Vec<u64> = r.charges.iter().map(|c| c.2.input_tokens).collect();
        assert_eq!(charged, [5, 41]);
        assert_eq!(r.unsettled.len(), 1);
        assert_eq!(r.unsettled[0].2, est(30).as_spend());
        assert!(!r.torn && r.damaged.is_empty());
        // Replayed from the start, everything counts.
        assert_eq!(replay(&segments(&d, "r-0"), 0).charges.len(), 3);
    }

    #[test]
    fn a_new_segment_carries_the_calls_in_flight_so_older_ones_can_go() {
        let d = dir("carry");
        let mut w = Writer::create(&d, "r-1", 512).unwrap();
        w.write(&open(1, 1)); // stays open across every segment
        for s in 2..100 {
            w.write(&open(s, s));
            w.write(&charge(s, s, true));
        }
        assert!(w.segment >= 3, "{}", w.segment);
        let mark = w.position();
        drop(w);
        // Every segment but the last is deleted, as once the ledger covered it.
        let segs = segments(&d, "r-1");
        let last = segs.last().unwrap().clone();
        let r = replay(&[last], mark);
        assert!(r.charges.is_empty());
        assert_eq!(r.unsettled.len(), 1, "{r:?}");
        assert_eq!(r.unsettled[0].2, est(1).as_spend());
    }
}
