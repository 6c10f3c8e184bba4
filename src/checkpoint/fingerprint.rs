//! What a checkpoint must have been taken over to be resumed: the same inputs and settings.
//!
//! Workflows and the platform are hashed whole (they are read whole anyway). Metric and event
//! logs are named here ([`log_paths`]), and each checkpoint records the hash of every byte the
//! run had read of each ([`super::RunCheckpoint::logs`]): a log may have grown since (it is
//! read on from the checkpoint's offset), but one replaced, cut or edited within what was read
//! is refused. Hashing a log's first bytes into the fingerprint refused a short log that had
//! merely grown; hashing only a fixed head let an edit past it through. The worker layout is
//! left out on purpose: a checkpoint resumes with any number of workers or processes.

use std::path::{Path, PathBuf};

use super::{fnv1a, hash_range, FNV_OFFSET};
use crate::run::RunConfig;

/// A run's inputs and settings, hashed part by part: a checkpoint keeps every part's hash, so
/// that a resume it refuses can say which input or setting changed since, not only that one did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    parts: Vec<(&'static str, u64)>,
}

impl Fingerprint {
    /// A fingerprint for `command` (`augur run`, `augur serve`): a checkpoint of one is never
    /// taken for the other's.
    pub fn of_command(command: &'static str) -> Fingerprint {
        // Named as the mismatch a resume meets: there are two commands, so it is the other's.
        let what = if command == "run" {
            "the command (the checkpoint is augur serve's, not augur run's)"
        } else {
            "the command (the checkpoint is augur run's, not augur serve's)"
        };
        Fingerprint::default().with(what, text_hash(command))
    }

    /// Adds the part `what` (named as a user would find it: the flag or file), hashed.
    pub fn with(mut self, what: &'static str, hash: u64) -> Fingerprint {
        self.parts.push((what, hash));
        self
    }

    /// Every part's hash, in order: what a checkpoint records.
    pub fn hashes(&self) -> Vec<u64> {
        self.parts.iter().map(|&(_, hash)| hash).collect()
    }

    /// The parts whose hashes differ from `saved` (a checkpoint's [`Fingerprint::hashes`]),
    /// named and joined for a message; `None` where every part is the same.
    pub fn differences(&self, saved: &[u64]) -> Option<String> {
        // Another command's checkpoint has other parts: that alone is what to say.
        if let (Some(&(what, hash)), Some(theirs)) = (self.parts.first(), saved.first()) {
            if hash != *theirs {
                return Some(what.to_string());
            }
        }
        if saved.len() != self.parts.len() {
            return Some("the inputs and settings it records".into());
        }
        let changed: Vec<&str> = self
            .parts
            .iter()
            .zip(saved)
            .filter(|((_, hash), saved)| hash != *saved)
            .map(|((what, _), _)| *what)
            .collect();
        match changed.split_last()? {
            (last, []) => Some(last.to_string()),
            (last, rest) => Some(format!("{} and {last}", rest.join(", "))),
        }
    }
}

/// The fingerprint of a run's inputs and settings.
pub fn fingerprint(config: &RunConfig) -> Fingerprint {
    let files = |paths: &[std::path::PathBuf]| {
        paths.iter().fold(FNV_OFFSET, |hash, path| {
            file_hash(
                path,
                fnv1a(format!("{:?}", spelling(path)).as_bytes(), hash),
            )
        })
    };
    let maps = config
        .maps
        .iter()
        .map(|(path, device, resource)| format!("{:?}={device}:{resource:?}", spelling(path)))
        .collect::<Vec<_>>()
        .join("|");
    let logs = logs_of(config)
        .map(|path| format!("{:?}", spelling(path)))
        .collect::<Vec<_>>()
        .join("|");
    Fingerprint::of_command("run")
        .with("the workflow files (--workflow)", files(&config.workflows))
        .with(
            "the platform file (--platform)",
            files(config.platform.as_slice()),
        )
        .with(
            "the logs named (--metrics, --events)",
            text_hash(&format!("{}|{logs}", config.metrics.len())),
        )
        .with(
            "the metric format (--format, --map)",
            text_hash(&format!("{:?}|{maps}", config.format)),
        )
        .with(
            "the allowed lateness (--lateness, lateness_s in --config)",
            text_hash(&config.lateness_ms.to_string()),
        )
        .with(
            "the line limit (max_line_bytes in --config)",
            text_hash(&config.max_line_bytes.to_string()),
        )
        .with("--strict", text_hash(&config.strict.to_string()))
        .with(
            "the forecast settings ([forecast] in --config)",
            text_hash(&format!("{:?}", config.forecast)),
        )
        .with(
            "the placement settings (--policy, [placement] in --config)",
            text_hash(&format!("{:?}", config.placement)),
        )
}

/// A path as the fingerprint takes it: without `.` components, so that `./m.csv` on the resume
/// names the `m.csv` of the run (and `a//b` the `a/b`). Only the text is read, not the file
/// system: a log moved with its folder and named relative to it is the same log.
pub fn spelling(path: &Path) -> PathBuf {
    path.components()
        .filter(|part| !matches!(part, std::path::Component::CurDir))
        .collect()
}

/// The hash of settings written out as text.
pub(crate) fn text_hash(text: &str) -> u64 {
    fnv1a(text.as_bytes(), FNV_OFFSET)
}

/// What every process of a cluster run must agree on to compute the same map: the settings of
/// the dataflow (forecasting, placement), the contents of the workflow and platform files,
/// which every process reads, and how input is admitted (lateness, line limit, --strict, the
/// metric format). The logs are left out: only process 0 reads them, and the other processes'
/// paths may differ (another host's mount point), as may --map's. Admission is process 0's
/// to apply, but a process started otherwise would have it ignored without a word (a
/// --strict given to process 1 alone stopped nothing).
pub fn cluster_agreement(config: &RunConfig) -> crate::cluster::Agreement {
    let files = |paths: &mut dyn Iterator<Item = &std::path::PathBuf>| {
        paths.fold(FNV_OFFSET, |hash, path| file_hash(path, hash))
    };
    // One part per thing a user gives each process, so that a refusal names the one.
    crate::cluster::Agreement {
        parts: [
            (
                text_hash(&format!("{:?}", config.forecast)),
                "forecast settings ([forecast] in --config)",
            ),
            (
                text_hash(&format!("{:?}", config.placement)),
                "placement settings (--policy, [placement] in --config)",
            ),
            (files(&mut config.workflows.iter()), "workflow files"),
            (
                files(&mut config.platform.iter()),
                "platform file (--platform)",
            ),
            (
                text_hash(&config.lateness_ms.to_string()),
                "lateness (--lateness, lateness_s in --config)",
            ),
            (
                text_hash(&config.strict.to_string()),
                "strictness (--strict)",
            ),
            (
                text_hash(&format!("{:?}", config.format)),
                "metric format (--format)",
            ),
            (
                text_hash(&config.max_line_bytes.to_string()),
                "line limit (max_line_bytes in --config)",
            ),
        ],
        shared: "--workers, settings (--policy, --lateness, --strict, --format, --config) and \
                 workflow and platform files",
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

/// The metric and event logs a run reads, metric logs first: the order of
/// [`super::RunCheckpoint::logs`].
pub fn log_paths(config: &RunConfig) -> Vec<PathBuf> {
    logs_of(config).map(Path::to_path_buf).collect()
}

/// The hash of the first `length` bytes of `path`, read in pieces (a log may be far larger
/// than memory); `None` where it is unreadable or shorter now.
pub(super) fn prefix_hash(path: &Path, length: u64) -> Option<u64> {
    let mut file = crate::input::regular::open_regular(path).ok()?;
    if file.metadata().ok()?.len() < length {
        return None;
    }
    hash_range(&mut file, 0, length, FNV_OFFSET).ok()
}

/// The fingerprint of settings given as text and of files read whole (for a caller whose
/// inputs are not a `RunConfig`, such as `augur serve`: its platform and knobs).
pub fn fingerprint_of(settings: &str, files: &[&Path]) -> u64 {
    let mut hash = fnv1a(settings.as_bytes(), FNV_OFFSET);
    for path in files {
        hash = file_hash(path, hash);
    }
    hash
}

/// Folds a whole file into `hash` (an unreadable file adds a marker: the run itself reports
/// why it cannot be read).
fn file_hash(path: &Path, hash: u64) -> u64 {
    match crate::input::regular::read_regular(path) {
        Ok(bytes) => fnv1a(&bytes, hash),
        Err(_) => fnv1a(b"<unreadable>", hash),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_resume_names_what_changed() {
        let before = Fingerprint::of_command("run")
            .with("the platform file (--platform)", 1)
            .with("--strict", 2)
            .with("the forecast settings", 3);
        assert_eq!(before.differences(&before.hashes()), None);
        let after = Fingerprint::of_command("run")
            .with("the platform file (--platform)", 10)
            .with("--strict", 20)
            .with("the forecast settings", 30);
        assert_eq!(
            after.differences(&before.hashes()).as_deref(),
            Some("the platform file (--platform), --strict and the forecast settings")
        );
        let mut one = before.hashes();
        one[2] = 0;
        assert_eq!(before.differences(&one).as_deref(), Some("--strict"));
        // A checkpoint of the other command is named as such, whatever else it holds.
        let serve = Fingerprint::of_command("serve").with("the platform file (--platform)", 1);
        assert_eq!(
            serve.differences(&before.hashes()).as_deref(),
            Some("the command (the checkpoint is augur run's, not augur serve's)")
        );
        assert_eq!(
            before.differences(&serve.hashes()).as_deref(),
            Some("the command (the checkpoint is augur serve's, not augur run's)")
        );
        assert!(after.differences(&after.hashes()[..2]).is_some());
    }
}
