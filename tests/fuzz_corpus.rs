//! The fuzz targets (fuzz/src/lib.rs) run on stable over their seed corpora
//! (fuzz/corpus/<target>/) and every past crash (fuzz/regressions/<target>/):
//! what CI can do without nightly and libFuzzer. `scripts/fuzz` does the
//! fuzzing itself.

#[path = "../fuzz/src/lib.rs"]
mod fuzz_bodies;

use std::path::Path;

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_and_regression_input_runs_through_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, target) in fuzz_bodies::TARGETS {
        let mut files = inputs(&root.join("corpus").join(name));
        assert!(!files.is_empty(), "no seed corpus for {name}");
        files.extend(inputs(&root.join("regressions").join(name)));
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} panicked", file.display());
        }
    }
}

#[test]
fn truncations_of_every_seed_are_handled_too() {
    // Cheap stand-in for fuzzing on stable: every prefix of every seed
    // (torn packets, half headers) and every seed with one byte flipped.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, target) in fuzz_bodies::TARGETS {
        for file in inputs(&root.join(name)) {
            let data = std::fs::read(&file).unwrap();
            for end in 0..data.len() {
                target(&data[..end]);
            }
            for i in 0..data.len().min(256) {
                let mut flipped = data.clone();
                flipped[i] ^= 0xff;
                target(&flipped);
            }
        }
    }
}
