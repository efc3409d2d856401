//! The config loader and the money on disk: the ledger's log and the workers' journals.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use tollgate::account::journal::{self, Entry, Read};
use tollgate::account::ledger::Ledger;

use crate::settings;

/// The config loader: any text gets a snapshot or an error that can be printed — the same
/// answer every time.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |v: &str| (v == "FUZZ_KEY").then(|| "sk-fuzz".to_owned());
    let first = tollgate::config::parse(text, "fuzz", &env).map_err(|e| e.to_string());
    let again = tollgate::config::parse(text, "fuzz", &env).map_err(|e| e.to_string());
    match (&first, &again) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => assert_eq!(a, b, "the same text, two different errors"),
        _ => panic!("the same text loaded once and failed once"),
    }
}

fn fresh_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "tollgate-fuzz-ledger-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Recovery of a torn or corrupt ledger log: it opens (or refuses, saying why); what it
/// counted is what a second open counts, with nothing more set aside — whatever the bytes, a
/// recovery is final and never counts a line twice.
pub fn ledger_log(data: &[u8]) {
    let (s, rest) = settings(data);
    let d = fresh_dir();
    // The input as the log, or (settings bit) as a journal segment of an earlier run.
    if s & 1 == 0 {
        std::fs::write(d.join("spend.0.log"), rest).unwrap();
    } else {
        std::fs::create_dir_all(d.join("journal")).unwrap();
        std::fs::write(d.join("journal").join("0-0.0"), rest).unwrap();
    }
    let first = Ledger::open(&d);
    if let Ok((l, rec)) = first {
        let days = l.days().clone();
        assert!(rec.set_aside_bytes <= rest.len() as u64);
        drop(l);
        let (l2, rec2) = Ledger::open(&d).expect("a recovered ledger reopens");
        assert_eq!(l2.days(), &days, "a second recovery counted differently");
        assert_eq!(rec2.set_aside_bytes, 0, "set aside again");
        assert_eq!(rec2.uncommitted, 0);
        assert_eq!(
            rec2.journal_charges + rec2.journal_estimated,
            0,
            "a journal replayed twice"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// Journal records: a record read back re-encodes to one that reads the same; replay never
/// charges more after a mark than from the start, and what was never settled does not depend
/// on the mark.
pub fn journal(data: &[u8]) {
    let (s, rest) = settings(data);
    let mut at = 0;
    while at < rest.len() {
        match journal::read(&rest[at..]) {
            Read::Entry(e, n) => {
                assert!((7..=rest.len() - at).contains(&n));
                let borrowed: Entry<&str> = e.map(String::as_str);
                let mut b = Vec::new();
                borrowed.encode(&mut b);
                b.extend_from_slice(&[0; 8]);
                match journal::read(&b) {
                    Read::Entry(e2, _) => assert_eq!(e2, e, "re-encoded record reads differently"),
                    other => panic!("a record read back does not re-read: {other:?}"),
                }
                at += n;
            }
            _ => break,
        }
    }
    let segments = vec![(0u64, rest.to_vec())];
    let mark = u64::from(s) * 13 % (rest.len() as u64 + 1);
    let all = journal::replay(&segments, 0);
    let after = journal::replay(&segments, mark);
    assert!(after.charges.len() <= all.charges.len());
    assert_eq!(
        after.unsettled, all.unsettled,
        "what never settled depends on the mark"
    );
    for seg in &all.damaged {
        assert_eq!(*seg, 0);
    }
}
