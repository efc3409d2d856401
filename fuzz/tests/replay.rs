//! Every saved corpus entry (`fuzz/corpus/<target>/`), and every crash once found
//! (`fuzz/crashes/<target>/`, fixed since), run through its target: the fuzzers' findings as
//! regression tests, in the workspace's `cargo test`.

use std::path::Path;

#[test]
fn every_saved_input_keeps_every_property() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ran = 0;
    for (name, target) in tollgate_fuzz::TARGETS {
        let mut seen = 0;
        for dir in ["corpus", "crashes"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                continue;
            };
            let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
            paths.sort();
            for p in paths {
                let data = std::fs::read(&p).unwrap();
                let r = std::panic::catch_unwind(|| target(&data));
                assert!(r.is_ok(), "{name}: {} broke a property", p.display());
                seen += 1;
            }
        }
        assert!(seen > 0, "{name}: no saved corpus");
        ran += seen;
    }
    eprintln!(
        "replayed {ran} saved inputs over {} targets",
        tollgate_fuzz::TARGETS.len()
    );
}
