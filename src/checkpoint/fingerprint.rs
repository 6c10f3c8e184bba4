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
    for path in logs_of(config) {
        hash = fnv1a(format!("{path:?}").as_bytes(), hash);
    }
    hash
}

/// What every process of a cluster run must agree on to compute the same map: the settings of
/// the dataflow (forecasting, placement) and the contents of the workflow and platform files,
/// which every process reads. The logs are left out: only process 0 reads them, and the other
/// processes' paths may differ (another host's mount point).
pub fn cluster_agreement(config: &RunConfig) -> crate::cluster::Agreement {
    let text = |settings: String| fnv1a(settings.as_bytes(), FNV_OFFSET);
    let files = |paths: &mut dyn Iterator<Item = &std::path::PathBuf>| {
        paths.fold(FNV_OFFSET, |hash, path| file_hash(path, u64::MAX, hash))
    };
    crate::cluster::Agreement {
        parts: [
            (
                text(format!("{:?}", config.forecast)),
                "forecast settings ([forecast] in --config)",
            ),
            (
                text(format!("{:?}", config.placement)),
                "placement settings (--policy, [placement] in --config)",
            ),
            (files(&mut config.workflows.iter()), "workflow files"),
            (files(&mut config.platform.iter()), "platform file"),
        ],
        shared: "--workers, settings (--policy, --config) and workflow and platform files",
    }
}

/// The run's metric logs, then its event logs: the order of [`log_heads`].
pub(super) fn logs_of(config: &RunConfig) -> impl Iterator<Item = &Path> {
    config
        .metrics
        .iter()
        .chain(&config.events)
        .map(|path| path.as_path())
}

/// Each metric and event log's head as it is now (metric logs, then event logs): how many
/// bytes of it (64 KiB, or all of a shorter log) and their hash. An empty or unreadable log has
/// an empty head, which a resume does not check (the run itself reports why it cannot be read).
pub fn log_heads(config: &RunConfig) -> Vec<(u64, u64)> {
    logs_of(config)
        .map(|path| log_head(path, LOG_HEAD_BYTES))
        .collect()
}

/// The length and hash of up to `limit` bytes at the start of `path` (nothing if unreadable).
pub(super) fn log_head(path: &Path, limit: u64) -> (u64, u64) {
    let mut bytes = Vec::new();
    if let Ok(file) = std::fs::File::open(path) {
        if file.take(limit).read_to_end(&mut bytes).is_err() {
            bytes.clear();
        }
    }
    (bytes.len() as u64, fnv1a(&bytes, FNV_OFFSET))
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
