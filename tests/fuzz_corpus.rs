//! Replays every input the fuzzers kept (`fuzz/corpus/<target>/*`) and every crash they found
//! (`fuzz/regressions/<target>/*`) through the fuzz targets' own checks, so plain `cargo test`
//! guards what fuzzing established without a fuzzer or a nightly toolchain.

use std::path::{Path, PathBuf};

#[path = "../fuzz/src/lib.rs"]
mod checks;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir/<target>/` for every target, sorted, with their target.
fn inputs(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let mut inputs = Vec::new();
    for target in checks::TARGETS {
        let Ok(entries) = std::fs::read_dir(dir.join(target)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        inputs.extend(files.into_iter().map(|path| (target, path)));
    }
    inputs
}

/// Runs each input through its target and lists every one that broke a check.
fn replay(inputs: &[(&'static str, PathBuf)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (target, path) in inputs {
        let data = match std::fs::read(path) {
            Ok(data) => data,
            Err(error) => {
                failures.push(format!("{}: {error}", path.display()));
                continue;
            }
        };
        let outcome = std::panic::catch_unwind(|| checks::run(target, &data));
        match outcome {
            Ok(true) => {}
            Ok(false) => failures.push(format!("{}: no target {target}", path.display())),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{} ({target}): {message}", path.display()));
            }
        }
    }
    failures
}

#[test]
fn every_corpus_input_passes_its_target() {
    let inputs = inputs(&fuzz_dir().join("corpus"));
    for target in checks::TARGETS {
        assert!(
            inputs.iter().any(|(t, _)| *t == target),
            "fuzz/corpus/{target} is empty or missing"
        );
    }
    let failures = replay(&inputs);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fuzz_regression_passes_its_target() {
    let dir = fuzz_dir().join("regressions");
    let inputs = inputs(&dir);
    // Every folder there must be a target, or its inputs would silently not be replayed.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() {
                assert!(
                    checks::TARGETS.contains(&name.as_str()),
                    "fuzz/regressions/{name} is not a fuzz target"
                );
            }
        }
    }
    let failures = replay(&inputs);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
