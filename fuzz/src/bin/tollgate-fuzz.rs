//! The AFL++ entry point: `tollgate-fuzz <target>` runs one target on the inputs AFL++ feeds
//! it (fuzz/README.md lists the targets and how to run each).

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(&(_, target)) = tollgate_fuzz::TARGETS.iter().find(|(n, _)| *n == name) else {
        let names: Vec<_> = tollgate_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "usage: tollgate-fuzz <target>; targets: {}",
            names.join(" ")
        );
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| target(data));
}
