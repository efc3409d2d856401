//! The layering of `src/` (ARCHITECTURE.md, "Parts and the arrows between them"), enforced:
//! every `crate::` path in a part's non-test code must name a part it is allowed to use, the
//! sans-IO parts name no runtime, socket, thread or ring, and no file grows past the size the
//! architecture allows.
//!
//! The check reads the source as text (comments and `#[cfg(test)] mod tests` blocks left
//! out), so it sees `use crate::x::…` lines and inline `crate::x::f()` paths alike.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each part of `src/` and the parts it may use. Everything not listed is forbidden; the
/// order is bottom-up, and every arrow points to an earlier line (so there are no cycles).
const ALLOWED: &[(&str, &[&str])] = &[
    // The ground floor: codecs and arithmetic, sans-IO, depending on nothing.
    ("calendar", &[]),
    ("json", &[]),
    ("http1", &["calendar"]),
    ("sse", &[]),
    ("tls", &[]),
    ("usage", &["json"]),
    // Wire formats: what each provider's bytes mean (and its error shapes), the one error
    // type written in them, and the mock that renders them.
    ("dialect", &["json", "sse", "usage", "http1"]),
    ("error", &["dialect", "http1", "json"]),
    ("translate", &["dialect", "json", "sse", "usage"]),
    // Guardrails: detectors, redaction, stream hold-back, sans-IO.
    ("guard", &["json"]),
    ("mock", &["dialect", "http1", "json", "sse", "usage"]),
    // The compiled configuration: knows wire formats and TLS settings, nothing of threads,
    // sockets, connections, rings or the ledger.
    (
        "config",
        &[
            "calendar", "dialect", "guard", "http1", "json", "mock", "tls", "usage",
        ],
    ),
    // Decisions and taps, sans-IO.
    (
        "policy",
        &["calendar", "config", "error", "http1", "json", "usage"],
    ),
    (
        "stream",
        &["dialect", "guard", "json", "sse", "translate", "usage"],
    ),
    // The cache's keys, entries, shards and the rings between workers, sans-IO.
    ("cache", &["dialect", "json", "sse", "translate", "usage"]),
    // Sockets and the runtime under them.
    ("net", &["config"]),
    (
        "telemetry",
        &[
            "calendar", "config", "error", "http1", "json", "net", "usage",
        ],
    ),
    (
        "upstream",
        &[
            "config",
            "dialect",
            "error",
            "http1",
            "json",
            "mock",
            "net",
            "tls",
            "translate",
            "usage",
        ],
    ),
    // The coordinator's side of the rings: never reaches into a worker.
    (
        "account",
        &[
            "cache",
            "calendar",
            "config",
            "error",
            "json",
            "policy",
            "telemetry",
            "upstream",
            "usage",
        ],
    ),
    // A worker: the request path, over everything below it.
    (
        "worker",
        &[
            "account",
            "cache",
            "calendar",
            "config",
            "dialect",
            "error",
            "guard",
            "http1",
            "json",
            "mock",
            "net",
            "policy",
            "sse",
            "stream",
            "telemetry",
            "tls",
            "translate",
            "upstream",
            "usage",
        ],
    ),
    // Threads: start, reload, drain, the admin API.
    (
        "runtime",
        &[
            "account",
            "cache",
            "calendar",
            "config",
            "error",
            "http1",
            "json",
            "net",
            "telemetry",
            "upstream",
            "worker",
        ],
    ),
];

/// Parts that do no I/O of their own: they take bytes and state and return decisions, so they
/// are tested without sockets and can be fuzzed.
const SANS_IO: &[&str] = &[
    "calendar",
    "json",
    "http1",
    "sse",
    "usage",
    "error",
    "dialect",
    "translate",
    "guard",
    "mock",
    "config",
    "policy",
    "stream",
];

/// What a sans-IO part must not mention.
const IO_WORDS: &[&str] = &[
    "monoio",
    "socket2",
    "TcpStream",
    "TcpListener",
    "UdpSocket",
    "thread::spawn",
    "thread::Builder",
    "rtrb",
    "Mutex",
    "RwLock",
    "redis::",
];

/// The largest a file in `src/` may be, in lines of non-test code.
const MAX_FILE_LINES: usize = 800;

/// Files allowed past [`MAX_FILE_LINES`] for now, each with the most it may have. A listed
/// file may shrink, never grow; a file off this list may not pass the limit.
const OVERSIZE: &[(&str, usize)] = &[];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The part a file belongs to: its first path component under `src/`, without `.rs`.
/// `lib.rs` and `main.rs` sit above every part and are not checked.
fn part_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    let part = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(part, "lib" | "main")).then(|| part.to_owned())
}

/// A file's code without its unit-test module and without comments.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string literal (a URL) is rare in code lines; a stripped tail
            // can only hide a path, never invent one.
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The parts named by `crate::` paths in `code`, with the line each first appears on.
fn crate_paths(code: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (n, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                group[..end]
                    .split(',')
                    .map(|s| s.trim().split("::").next().unwrap_or("").trim())
                    .collect()
            } else {
                vec![
                    rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or(""),
                ]
            };
            for name in names.into_iter().filter(|s| !s.is_empty()) {
                out.entry(name.to_owned()).or_insert(n + 1);
            }
        }
    }
    // A multi-line `use crate::{…}` group: the names on the following lines.
    let mut inside = false;
    for (n, line) in code.lines().enumerate() {
        let t = line.trim();
        if t.starts_with("use crate::{") && !t.contains('}') {
            inside = true;
            continue;
        }
        if inside {
            for name in t.trim_end_matches(['}', ';']).split(',') {
                let name = name.trim().split("::").next().unwrap_or("").trim();
                if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    out.entry(name.to_owned()).or_insert(n + 1);
                }
            }
            if t.contains('}') {
                inside = false;
            }
        }
    }
    out
}

/// Every forbidden arrow in `src/`, as `file:line: part -> other`.
fn violations(src: &Path) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let Some(part) = part_of(rel) else { continue };
        let code = code_of(&std::fs::read_to_string(&f).unwrap());
        let Some(may) = allowed.get(part.as_str()) else {
            out.push(format!(
                "src/{}: part `{part}` is not in the architecture's table",
                rel.display()
            ));
            continue;
        };
        for (other, line) in crate_paths(&code) {
            if other != part && !may.contains(&other.as_str()) {
                out.push(format!(
                    "src/{}:{line}: `{part}` may not use `{other}`",
                    rel.display()
                ));
            }
        }
        if SANS_IO.contains(&part.as_str()) {
            for (n, l) in code.lines().enumerate() {
                for w in IO_WORDS {
                    if l.contains(w) {
                        out.push(format!(
                            "src/{}:{}: `{part}` is sans-IO but mentions `{w}`",
                            rel.display(),
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn arrows_run_down() {
    let v = violations(&src_dir());
    assert!(
        v.is_empty(),
        "forbidden dependencies (see ARCHITECTURE.md):\n{}",
        v.join("\n")
    );
}

#[test]
fn every_arrow_in_the_table_points_down() {
    // An allowed part must come earlier in the table: the table itself has no cycle.
    for (i, (part, may)) in ALLOWED.iter().enumerate() {
        for m in *may {
            let j = ALLOWED.iter().position(|(p, _)| p == m);
            assert!(
                j.is_some_and(|j| j < i),
                "`{part}` may use `{m}`, which is not below it"
            );
        }
    }
}

#[test]
fn the_check_sees_a_forbidden_arrow() {
    // A copy of `config` that reaches for the worker, in a scratch tree: the check must say so.
    let dir = std::env::temp_dir().join(format!("tollgate-arch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(
        dir.join("config/mod.rs"),
        "//! x\nuse crate::dialect::Dialect;\nuse crate::{json, worker::Worker};\n\
         fn f() { crate::account::x(); let _ = monoio::spawn; }\n\
         #[cfg(test)]\nmod tests {\n    use crate::runtime::Gateway;\n}\n",
    )
    .unwrap();
    let v = violations(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        v,
        [
            "src/config/mod.rs:4: `config` may not use `account`",
            "src/config/mod.rs:3: `config` may not use `worker`",
            "src/config/mod.rs:4: `config` is sans-IO but mentions `monoio`",
        ]
    );
}

/// The Redis client is the coordinator's line to the other instances (`account/cluster.rs`):
/// no worker, and nothing on the request path, may reach it.
#[test]
fn only_the_cluster_link_uses_the_redis_client() {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let users: Vec<String> = files
        .iter()
        .filter(|f| code_of(&std::fs::read_to_string(f).unwrap()).contains("redis::"))
        .map(|f| f.strip_prefix(&src).unwrap().display().to_string())
        .collect();
    assert_eq!(users, ["account/cluster.rs"]);
}

#[test]
fn no_file_is_too_long() {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut over = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().display().to_string();
        let text = std::fs::read_to_string(&f).unwrap();
        let lines = match text.find("#[cfg(test)]\nmod tests") {
            Some(i) => text[..i].lines().count(),
            None => text.lines().count(),
        };
        let max = OVERSIZE
            .iter()
            .find(|(p, _)| *p == rel)
            .map_or(MAX_FILE_LINES, |&(_, n)| n);
        if lines > max {
            over.push(format!("src/{rel}: {lines} lines (at most {max})"));
        }
    }
    assert!(over.is_empty(), "files too long:\n{}", over.join("\n"));
}
