//! What a checkpoint must have been taken over to be resumed: the same inputs and settings.
//!
//! Workflows and the platform are hashed whole (they are read whole anyway). Metric and event
//! logs are named here, and their heads (first 64 KiB, or all of a shorter log) are recorded
//! in each checkpoint ([`log_heads`]): a log may have grown since (it is read on from the
//! checkpoint's offset), but one replaced by another is refused. Hashing a log's first 64 KiB
//! into the fingerprint refused a short log that had merely grown. The worker layout is left
//! out on purpose: a checkpoint resumes with any number of workers or processes.

use std::io::Read;
use std::path::Path;

use super::{fnv1a, FNV_OFFSET};
use crate::run::RunConfig;

const LOG_HEAD_BYTES: u64 = 64 * 1024;

/// The fingerprint of a run's inputs and settings.
pub fn fingerprint(config: &RunConfig) -> u64 {
    let mut hash = FNV_OFFSET;
    let settings = format!(
        "{:?}|{:?}|{:?}|{}|{}|{}|{:?}|{:?}",
        config.workflows,
        config.platform,
        config.format,
        config.lateness_ms,
        config.max_line_bytes,
        config.strict,
        config.forecast,
        config.placement,
    );
    hash = fnv1a(settings.as_bytes(), hash);
    for (path, device, resource) in &config.maps {
        hash = fnv1a(format!("{path:?}={device}:{resource:?}").as_bytes(), hash);
    }
    for path in config.workflows.iter().chain(&config.platform) {
        hash = file_hash(path, u64::MAX, hash);
    }
    for path in config.metrics.iter().chain(&config.events) {
        hash = fnv1a(format!("{path:?}").as_bytes(), hash);
    }
    hash
}

/// Each metric and event log's head as it is now: its path, how many bytes of it (64 KiB, or
/// all of a shorter log) and their hash. An empty or unreadable log has an empty head, which a
/// resume does not check (the run itself reports why a log cannot be read). The path is kept
/// for reading only; a resume checks each head against the log at its place in the run's list.
pub fn log_heads(config: &RunConfig) -> Vec<(String, u64, u64)> {
    config
        .metrics
        .iter()
        .chain(&config.events)
        .map(|path| {
            let mut bytes = Vec::new();
            if let Ok(file) = std::fs::File::open(path) {
                if file.take(LOG_HEAD_BYTES).read_to_end(&mut bytes).is_err() {
                    bytes.clear();
                }
            }
            (
                path.display().to_string(),
                bytes.len() as u64,
                fnv1a(&bytes, FNV_OFFSET),
            )
        })
        .collect()
}

/// The fingerprint of settings given as text and of files read whole (for a caller whose
/// inputs are not a `RunConfig`, such as `augur serve`: its platform and knobs).
pub fn fingerprint_of(settings: &str, files: &[&Path]) -> u64 {
    let mut hash = fnv1a(settings.as_bytes(), FNV_OFFSET);
    for path in files {
        hash = file_hash(path, u64::MAX, hash);
    }
    hash
}

/// Folds up to `limit` bytes of a file into `hash` (an unreadable file adds a marker: the run
/// itself reports why it cannot be read).
fn file_hash(path: &Path, limit: u64, hash: u64) -> u64 {
    let Ok(file) = std::fs::File::open(path) else {
        return fnv1a(b"<unreadable>", hash);
    };
    let mut bytes = Vec::new();
    if file.take(limit).read_to_end(&mut bytes).is_err() {
        return fnv1a(b"<unreadable>", hash);
    }
    fnv1a(&bytes, hash)
}
