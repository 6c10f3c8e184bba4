//! Checkpoints of `augur run`: what a checkpoint file holds, how it is written (atomically:
//! a temporary file, fsync, rename) and how it is read back and checked.
//!
//! A checkpoint is a snapshot, not a log: the dataflow's operators' state (per-series
//! forecasters and anomaly scorers, the duration model, the partition map's engine), the
//! feed's input positions and buffers, the map writer's state, and the length of every
//! streamed output file. Resuming cuts those files back to their recorded lengths, restores
//! everything and reads on from the recorded positions, so the outputs come out byte for byte
//! as an uninterrupted run's.

mod codec;
mod fingerprint;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub use codec::{decode, encode};
pub(crate) use fingerprint::text_hash;
pub use fingerprint::{
    cluster_agreement, fingerprint, fingerprint_of, log_paths, spelling, Fingerprint,
};

use crate::engine::{CheckpointStore, EngineSnapshot};

/// The latest checkpoint in a checkpoint folder.
pub const LATEST: &str = "checkpoint.bin";
/// The one before it, kept until the next is safely in place.
pub const PREVIOUS: &str = "checkpoint.prev.bin";
const TEMPORARY: &str = "checkpoint.tmp";
const PREVIOUS_TEMPORARY: &str = "checkpoint.prev.tmp";
/// `AUGURCK` and the layout version: bumped whenever the encoded state changes shape (2: the
/// anomaly scorer's absence detector; 3: AR's flat fit; 4: a hash of each streamed output's
/// prefix; 5: a series model's coarse buckets; 6: its run of off-rate gaps, the feed's floor,
/// and the logs' heads beside the fingerprint; 7: the model and anomaly scorer a series put
/// aside when its rate changed; 8: whether a log's last line read had no newline; 9: a
/// series' last step apart from its last sample, and the retries in a slower run; A, the
/// tenth, the samples since a series put its model aside, and the dropped fields of events
/// waiting in the reorder buffer; B, a series' focus and the error buckets `auto` tracks; C,
/// the fingerprint part by part; D, the service's count of records refused when applied; E,
/// the same layout, but a run without a platform builds its machines' speeds relative to
/// their most common clock, so state learnt under the old speeds must not be resumed under
/// the new; F, the machine each of a service's workflow tasks was recorded on, and a run
/// without a platform restating runtimes recorded on other clocks; G, a series' latest off-rate
/// gaps in place of their mean, by whose median a run is judged a new rate), since bincode is not self-describing and
/// an older layout would fail to decode with a message about enum tags.
const MAGIC: &[u8; 8] = b"AUGURCKG";
/// Magic, payload length, checksum.
const HEADER_BYTES: usize = 24;

/// Test-only fault injection: with this set to `k`, the process exits (status 75, no
/// cleanup, buffered output lost, as after `kill -9`) right after writing its k-th checkpoint.
pub const EXIT_AFTER_ENV: &str = "AUGUR_TEST_EXIT_AFTER_CHECKPOINT";

/// Test-only: with this set to `k`, the process stops making progress right after writing its
/// k-th checkpoint and waits to be killed, so a test can `kill -9` a live run at a known point
/// however fast the run is.
pub const PAUSE_AFTER_ENV: &str = "AUGUR_TEST_PAUSE_AFTER_CHECKPOINT";

/// Checkpointing of `augur run`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// The checkpoint folder.
    pub dir: PathBuf,
    /// A checkpoint every this many epochs (event times), counted from the start of input.
    pub every: u64,
    /// Resume from the folder's latest checkpoint instead of starting afresh.
    pub resume: bool,
}

/// Why a checkpoint could not be written, read or used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No checkpoint can be written into the folder (found when the run starts).
    #[error("{path}: no checkpoint can be written into this folder ({source})")]
    Unwritable {
        /// The name that cannot be written: where a checkpoint is first written, or a name it
        /// is linked or renamed to.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `--resume` and the folder holds no checkpoint.
    #[error("{0}: no checkpoint to resume from")]
    Missing(PathBuf),
    /// Another process holds the folder's lock.
    #[error(
        "{0}: another augur is using this checkpoint folder (it holds {LOCK}); two writing one \
         folder would replace each other's checkpoints"
    )]
    Busy(PathBuf),
    /// The file is not an intact checkpoint.
    #[error("{path}: not a usable checkpoint ({reason})")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The checkpoint was taken over other inputs or settings.
    #[error(
        "{path}: {reason}; start afresh without --resume, or with another --checkpoint folder"
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// State could not be encoded.
    #[error("cannot encode the checkpoint: {0}")]
    Encode(String),
}

/// What one checkpoint file holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct RunCheckpoint {
    /// The hashes of the run's inputs and settings, part by part ([`Fingerprint::hashes`]).
    pub fingerprint: Vec<u64>,
    /// The engine's snapshot (dataflow, feed and writer state).
    pub engine: EngineSnapshot,
    /// Streamed output files (name in the output folder), their length at the checkpoint, and
    /// the FNV-1a hash of those bytes, so that a resume into outputs another run has since
    /// rewritten is refused rather than spliced onto them.
    pub outputs: Vec<(String, u64, u64)>,
    /// How many checkpoints the run had written with this one, resumes included: a resumed
    /// run numbers its checkpoints on from there.
    pub number: u64,
    /// Per metric and event log ([`log_paths`]' order), how many of its bytes the run had read
    /// (the furthest of its streams' offsets) and their hash. A resume reads the logs on, so
    /// they may have grown, but each must still hold those bytes unchanged.
    pub logs: Vec<(u64, u64)>,
}

/// FNV-1a, 64 bits: enough to tell a damaged file from an intact one.
pub(crate) fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The lock file of a checkpoint folder, held by the process writing checkpoints into it.
pub const LOCK: &str = "checkpoint.lock";

/// A checkpoint folder held for one process, for as long as this lives. The lock is the
/// operating system's on [`LOCK`], so a process that dies (even by `kill -9`) lets it go, and a
/// resume after a crash is never refused for it.
#[derive(Debug)]
pub struct FolderLock {
    _file: std::fs::File,
}

/// Takes `dir` (made if missing) for this process: [`CheckpointError::Busy`] while another
/// holds it (two services resumed from one folder raced each other's checkpoints, and the
/// first lost its last one). Where the file system cannot lock (it says so, or fails the
/// call: NFS without a lock daemon answers ENOLCK), the folder is taken as is.
///
/// To `resume`, the folder must hold a checkpoint already: [`CheckpointError::Missing`]
/// otherwise, with nothing made (a mistyped folder was created, parents and all, and left
/// holding a lock file).
pub fn lock_folder(dir: &Path, resume: bool) -> Result<FolderLock, CheckpointError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CheckpointError::Io { path, source }
    };
    if resume && std::fs::symlink_metadata(dir.join(LATEST)).is_err() {
        return Err(CheckpointError::Missing(dir.to_path_buf()));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(LOCK);
    // Opening a named pipe for writing blocks until something reads it: refused first.
    if let Ok(metadata) = std::fs::metadata(&path) {
        if !metadata.is_file() {
            return Err(io(&path)(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file: the lock must be one",
            )));
        }
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    let (lock, locked) = match file.try_lock() {
        Ok(()) => (FolderLock { _file: file }, true),
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(CheckpointError::Busy(dir.to_path_buf()))
        }
        Err(std::fs::TryLockError::Error(_)) => (FolderLock { _file: file }, false),
    };
    // A folder no checkpoint can be written into is found now, not at the first checkpoint,
    // perhaps hours into the run: the file each checkpoint is first written to is made and
    // removed. Without a lock, another writer may be using that name: a name of our own.
    let probe = if locked {
        dir.join(TEMPORARY)
    } else {
        dir.join(format!("{TEMPORARY}.{}", std::process::id()))
    };
    create_fresh(&probe)
        .and_then(|file| file.sync_all())
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|source| CheckpointError::Unwritable {
            path: probe.clone(),
            source,
        })?;
    // The other names a checkpoint is renamed or linked to: a folder at one of them would
    // fail only the first (or the second) checkpoint.
    for name in [LATEST, PREVIOUS_TEMPORARY, PREVIOUS] {
        let path = dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|metadata| metadata.is_dir()) {
            return Err(CheckpointError::Unwritable {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::IsADirectory,
                    "a folder is in the way of the checkpoint's file",
                ),
            });
        }
    }
    Ok(lock)
}

/// Creates `path` afresh for writing: whatever was there is removed first, so that a named
/// pipe left in its place (which opening for writing would wait on) is not opened.
fn create_fresh(path: &Path) -> std::io::Result<File> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    File::create(path)
}

/// The checkpoint folder of one run: a [`CheckpointStore`] that also records how long the
/// run's streamed outputs are.
pub struct CheckpointDir {
    dir: PathBuf,
    out: PathBuf,
    streamed: Vec<String>,
    fingerprint: Vec<u64>,
    saved: u64,
    /// Checkpoints of the run before this process resumed it.
    saved_before: u64,
    exit_after: Option<u64>,
    pause_after: Option<u64>,
    /// A line on stderr per checkpoint: its size and how long it took.
    report: bool,
    /// Bytes and seconds of every checkpoint written.
    pub written: Vec<(u64, f64)>,
    /// Per streamed output, how many of its bytes are hashed and their hash: a checkpoint
    /// hashes only what was appended since the one before.
    hashed: std::collections::BTreeMap<String, (u64, u64)>,
    /// The run's logs, and per log how many of the bytes it has read are hashed and their
    /// hash ([`RunCheckpoint::logs`]): a checkpoint hashes only what was read since the one
    /// before.
    logs: Vec<(PathBuf, u64, u64)>,
}

impl CheckpointDir {
    /// A store writing into `dir` for a run whose streamed outputs are `streamed` (names in
    /// `out`).
    pub fn new(
        dir: &Path,
        out: &Path,
        streamed: &[&str],
        fingerprint: &Fingerprint,
        report: bool,
    ) -> CheckpointDir {
        CheckpointDir {
            dir: dir.to_path_buf(),
            out: out.to_path_buf(),
            streamed: streamed.iter().map(|name| name.to_string()).collect(),
            fingerprint: fingerprint.hashes(),
            saved: 0,
            saved_before: 0,
            exit_after: std::env::var(EXIT_AFTER_ENV)
                .ok()
                .and_then(|value| value.parse().ok()),
            pause_after: std::env::var(PAUSE_AFTER_ENV)
                .ok()
                .and_then(|value| value.parse().ok()),
            report,
            written: Vec::new(),
            hashed: Default::default(),
            logs: Vec::new(),
        }
    }

    /// Records in each checkpoint what the run had read of each of these logs ([`log_paths`]);
    /// its source's snapshots must then be a [`crate::feed::Feed`]'s.
    pub fn with_logs(mut self, paths: Vec<PathBuf>) -> CheckpointDir {
        self.logs = paths
            .into_iter()
            .map(|path| (path, 0, FNV_OFFSET))
            .collect();
        self
    }

    /// Continues the prefix hashes of the checkpoint a run resumes from (its outputs were cut
    /// back to those prefixes and checked against them).
    pub fn resuming(mut self, checkpoint: Option<&RunCheckpoint>) -> CheckpointDir {
        if let Some(checkpoint) = checkpoint {
            self.saved_before = checkpoint.number;
            for (name, length, hash) in &checkpoint.outputs {
                self.hashed.insert(name.clone(), (*length, *hash));
            }
            // `check_logs` held the logs to these prefixes; the resumed run reads on from them.
            if checkpoint.logs.len() == self.logs.len() {
                for ((_, done, hash), &(length, saved)) in
                    self.logs.iter_mut().zip(&checkpoint.logs)
                {
                    (*done, *hash) = (length, saved);
                }
            }
        }
        self
    }

    /// Extends each log's hash over what the run has read of it since the last checkpoint (the
    /// furthest offset of the log's streams, [`EngineSnapshot::read`]).
    fn hash_logs(&mut self, snapshot: &EngineSnapshot) -> Vec<(u64, u64)> {
        let mut read: std::collections::HashMap<&str, u64> = Default::default();
        for (name, offset) in &snapshot.read {
            let furthest = read.entry(name.as_str()).or_default();
            *furthest = (*furthest).max(*offset);
        }
        for (path, done, hash) in &mut self.logs {
            let offset = read
                .get(path.display().to_string().as_str())
                .copied()
                .unwrap_or(0);
            if offset > *done {
                // A log cut under the running run cannot be hashed that far: the checkpoint
                // then holds the resume to the prefix hashed before, not to nothing.
                let extended = crate::input::regular::open_regular(path)
                    .and_then(|mut file| hash_range(&mut file, *done, offset, *hash));
                if let Ok(extended) = extended {
                    (*done, *hash) = (offset, extended);
                }
            }
        }
        self.logs
            .iter()
            .map(|&(_, done, hash)| (done, hash))
            .collect()
    }

    /// The length of the streamed output `name` now and the hash of all of it, reading only
    /// the bytes appended since the last call.
    fn hash_output(&mut self, name: &str) -> Result<(u64, u64), CheckpointError> {
        let path = self.out.join(name);
        let failed = |source| CheckpointError::Io {
            path: path.clone(),
            source,
        };
        let length = match std::fs::metadata(&path) {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(failed(source)),
        };
        let (mut done, mut hash) = self.hashed.get(name).copied().unwrap_or((0, FNV_OFFSET));
        if length < done {
            // Outputs only grow during a run; start over rather than trust the old prefix.
            (done, hash) = (0, FNV_OFFSET);
        }
        if length > done {
            let mut file = File::open(&path).map_err(failed)?;
            hash = hash_range(&mut file, done, length, hash).map_err(failed)?;
        }
        self.hashed.insert(name.to_string(), (length, hash));
        Ok((length, hash))
    }

    fn write(&mut self, snapshot: &EngineSnapshot) -> Result<(), CheckpointError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CheckpointError::Io { path, source }
        };
        let logs = self.hash_logs(snapshot);
        let mut outputs = Vec::with_capacity(self.streamed.len());
        for name in self.streamed.clone() {
            let (length, hash) = self.hash_output(&name)?;
            outputs.push((name, length, hash));
        }
        // Borrowed, so a large snapshot is not copied to be encoded.
        #[derive(serde::Serialize)]
        struct Borrowed<'a> {
            fingerprint: &'a [u64],
            engine: &'a EngineSnapshot,
            outputs: &'a [(String, u64, u64)],
            number: u64,
            logs: &'a [(u64, u64)],
        }
        let payload = encode(&Borrowed {
            fingerprint: &self.fingerprint,
            engine: snapshot,
            outputs: &outputs,
            number: self.saved_before + self.saved + 1,
            logs: &logs,
        })
        .map_err(CheckpointError::Encode)?;
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let temporary = self.dir.join(TEMPORARY);
        let mut file = create_fresh(&temporary).map_err(io(&temporary))?;
        file.write_all(MAGIC).map_err(io(&temporary))?;
        file.write_all(&(payload.len() as u64).to_le_bytes())
            .map_err(io(&temporary))?;
        file.write_all(&fnv1a(&payload, FNV_OFFSET).to_le_bytes())
            .map_err(io(&temporary))?;
        file.write_all(&payload).map_err(io(&temporary))?;
        file.sync_all().map_err(io(&temporary))?;
        drop(file);
        // The latest checkpoint must exist at every instant (a kill can come between any two
        // steps): the previous one is kept through a link, and each rename replaces a file
        // whole.
        let latest = self.dir.join(LATEST);
        if latest.exists() {
            let previous = self.dir.join(PREVIOUS);
            let linked = self.dir.join(PREVIOUS_TEMPORARY);
            let _ = std::fs::remove_file(&linked);
            if std::fs::hard_link(&latest, &linked).is_err() {
                std::fs::copy(&latest, &linked).map_err(io(&linked))?;
            }
            std::fs::rename(&linked, &previous).map_err(io(&previous))?;
        }
        std::fs::rename(&temporary, &latest).map_err(io(&latest))?;
        // The renames are durable only once the folder itself is synced.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.written
            .push(((payload.len() + HEADER_BYTES) as u64, 0.0));
        Ok(())
    }
}

impl CheckpointStore for CheckpointDir {
    fn save(&mut self, snapshot: &EngineSnapshot) -> Result<(), String> {
        let started = std::time::Instant::now();
        self.write(snapshot).map_err(|error| error.to_string())?;
        self.saved += 1;
        if let Some(last) = self.written.last_mut() {
            last.1 = started.elapsed().as_secs_f64();
            if self.report {
                let (inputs, outputs) = (snapshot.source.len(), snapshot.sink.len());
                crate::say!(
                    "checkpoint {} at {}: {} bytes (inputs {inputs}, outputs {outputs}, \
                     models and map the rest) written in {:.1} ms",
                    self.saved_before + self.saved,
                    crate::input::time::format_seconds(snapshot.time),
                    last.0,
                    last.1 * 1000.0
                );
            }
        }
        if self.exit_after == Some(self.saved) {
            // Fault injection for the tests: die as abruptly as `kill -9` would let us.
            std::process::exit(75);
        }
        if self.pause_after == Some(self.saved) {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        Ok(())
    }
}

/// Reads the latest checkpoint in `dir` and checks it was taken over inputs and settings with
/// this `fingerprint`; where it was not, the error names the parts that differ.
pub fn load(dir: &Path, fingerprint: &Fingerprint) -> Result<RunCheckpoint, CheckpointError> {
    let path = dir.join(LATEST);
    // A named pipe or a device in its place would block the read, or never end it.
    let mut file = match crate::input::regular::open_regular(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(CheckpointError::Missing(dir.to_path_buf()))
        }
        Err(source) => return Err(CheckpointError::Io { path, source }),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|source| CheckpointError::Io {
            path: path.clone(),
            source,
        })?;
    let checkpoint = parse(&bytes).map_err(|reason| CheckpointError::Corrupt {
        path: path.clone(),
        reason,
    })?;
    if let Some(changed) = fingerprint.differences(&checkpoint.fingerprint) {
        return Err(CheckpointError::Mismatch {
            path,
            reason: format!(
                "the checkpoint was taken over other inputs or settings, changed since: {changed}"
            ),
        });
    }
    Ok(checkpoint)
}

/// Checks that each log the checkpoint was taken over still holds, unchanged, the bytes the run
/// had read of it then ([`RunCheckpoint::logs`], in [`log_paths`]' order, which the
/// fingerprint holds the same); it may have grown since: a resumed run reads on from the
/// checkpoint's offsets. A log nothing was read of has nothing to check.
pub fn check_logs(
    dir: &Path,
    checkpoint: &RunCheckpoint,
    config: &crate::run::RunConfig,
) -> Result<(), CheckpointError> {
    let logs: Vec<&Path> = fingerprint::logs_of(config).collect();
    let mismatch = |reason: String| CheckpointError::Mismatch {
        path: dir.join(LATEST),
        reason,
    };
    if logs.len() != checkpoint.logs.len() {
        return Err(mismatch(format!(
            "the checkpoint was taken over {} logs, this run reads {}",
            checkpoint.logs.len(),
            logs.len()
        )));
    }
    for (path, &(length, hash)) in logs.iter().zip(&checkpoint.logs) {
        if length > 0 && fingerprint::prefix_hash(path, length) != Some(hash) {
            // A log now shorter says how much shorter: cut, not edited.
            let now = match std::fs::metadata(path) {
                Ok(metadata) if metadata.len() < length => {
                    format!(" (it has {} bytes now)", metadata.len())
                }
                _ => String::new(),
            };
            return Err(mismatch(format!(
                "the log {} no longer holds the {length} bytes the run had read of it when the \
                 checkpoint was taken{now} (was it replaced, cut or edited? a log may only grow)",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Checks the header and checksum of a checkpoint file's bytes, then decodes it.
fn parse(bytes: &[u8]) -> Result<RunCheckpoint, String> {
    let header = bytes
        .get(..HEADER_BYTES)
        .ok_or_else(|| format!("{} bytes, shorter than its header", bytes.len()))?;
    if header.get(..8) != Some(MAGIC.as_slice()) {
        if let (Some(stem), Some(&layout)) = (header.get(..7), header.get(7)) {
            if stem == &MAGIC[..7] {
                return Err(format!(
                    "it was written by another augur build (checkpoint layout {}, this build \
                     reads {}); run again without --resume",
                    char::from(layout).escape_default(),
                    char::from(MAGIC[7]),
                ));
            }
        }
        return Err("it does not start as an augur checkpoint does".to_string());
    }
    let word = |at: usize| {
        header
            .get(at..at + 8)
            .and_then(|slice| <[u8; 8]>::try_from(slice).ok())
            .map_or(0, u64::from_le_bytes)
    };
    let (length, checksum) = (word(8), word(16));
    let payload = bytes.get(HEADER_BYTES..).unwrap_or_default();
    if payload.len() as u64 != length {
        return Err(format!(
            "truncated or extended: {} payload bytes, the header says {length}",
            payload.len()
        ));
    }
    if fnv1a(payload, FNV_OFFSET) != checksum {
        return Err("its checksum does not match its contents".to_string());
    }
    decode(payload)
}

/// Cuts each streamed output back to the length the checkpoint recorded (what a killed run
/// wrote after its checkpoint is written again), and opens it for appending.
pub fn reopen_outputs(
    out: &Path,
    checkpoint: &RunCheckpoint,
) -> Result<Vec<(String, File)>, CheckpointError> {
    // Every output is checked before any is cut, so that a refused resume changes nothing.
    for (name, length, hash) in &checkpoint.outputs {
        let path = out.join(name);
        let io = |source| CheckpointError::Io {
            path: path.clone(),
            source,
        };
        let mismatch = |reason: String| CheckpointError::Mismatch {
            path: path.clone(),
            reason,
        };
        let now = match std::fs::metadata(&path) {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if *length == 0 {
                    continue;
                }
                return Err(mismatch(format!(
                    "the output is missing; the checkpoint recorded {length} bytes of it"
                )));
            }
            Err(source) => return Err(io(source)),
        };
        if now < *length {
            return Err(mismatch(format!(
                "the output has {now} bytes, fewer than the {length} the checkpoint recorded"
            )));
        }
        let mut reading = crate::input::regular::open_regular(&path).map_err(io)?;
        if hash_range(&mut reading, 0, *length, FNV_OFFSET).map_err(io)? != *hash {
            return Err(mismatch(format!(
                "its first {length} bytes are not what the checkpointed run wrote (did \
                 another run write into this --out since?)"
            )));
        }
    }
    let mut files = Vec::new();
    for (name, length, _) in &checkpoint.outputs {
        let path = out.join(name);
        let io = |source| CheckpointError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        file.set_len(*length).map_err(io)?;
        files.push((name.clone(), file));
    }
    Ok(files)
}

/// FNV-1a of bytes `from..to` of `file`, continuing from `hash`.
pub(super) fn hash_range(
    file: &mut File,
    from: u64,
    to: u64,
    mut hash: u64,
) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(from))?;
    let mut left = to - from;
    let mut buffer = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = buffer
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        file.read_exact(&mut buffer[..want])?;
        hash = fnv1a(&buffer[..want], hash);
        left -= want as u64;
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_bytes_are_refused_not_decoded() {
        let snapshot = EngineSnapshot {
            time: 5,
            epochs: 2,
            dataflow: Vec::new(),
            read: vec![("m.csv".into(), 7)],
            source: vec![1, 2, 3],
            sink: vec![4],
        };
        let payload = encode(&RunCheckpoint {
            fingerprint: vec![9, 10],
            engine: snapshot,
            outputs: vec![("partition.jsonl".into(), 10, 7)],
            number: 3,
            logs: vec![(100, 5)],
        })
        .unwrap_or_default();
        let mut bytes = MAGIC.to_vec();
        bytes.extend((payload.len() as u64).to_le_bytes());
        bytes.extend(fnv1a(&payload, FNV_OFFSET).to_le_bytes());
        bytes.extend(&payload);
        // The read extents are the store's to hash up to, not part of what a resume reads.
        assert!(parse(&bytes).is_ok_and(|checkpoint| checkpoint.engine.read.is_empty()));
        assert!(parse(&bytes[..bytes.len() - 1]).is_err());
        assert!(parse(&bytes[..10]).is_err());
        let mut flipped = bytes.clone();
        if let Some(last) = flipped.last_mut() {
            *last ^= 0x40;
        }
        assert!(parse(&flipped).is_err());
        assert!(parse(b"").is_err());
        // A checkpoint of an earlier layout is named as such, not decoded into garbage.
        let mut older = bytes.clone();
        older[7] = b'1';
        let refused = parse(&older).err().unwrap_or_default();
        let expected = format!(
            "checkpoint layout 1, this build reads {}",
            char::from(MAGIC[7])
        );
        assert!(refused.contains(&expected), "{refused}");
    }

    /// A named pipe where the checkpoint or the lock should be is refused, not opened (opening
    /// it blocked the resume until something else opened the pipe: forever).
    #[test]
    fn a_named_pipe_in_the_folder_is_refused_not_waited_on() {
        let dir = crate::testing::Scratch::new("checkpoint-fifo");
        let made = |name: &str| {
            std::process::Command::new("mkfifo")
                .arg(dir.join(name))
                .status()
                .is_ok_and(|status| status.success())
        };
        if !made(LATEST) || !made(LOCK) {
            return; // no mkfifo here: nothing to check
        }
        assert!(matches!(
            load(&dir, &Fingerprint::default()),
            Err(CheckpointError::Io { .. })
        ));
        assert!(matches!(
            lock_folder(&dir, false),
            Err(CheckpointError::Io { .. })
        ));
        // One where the checkpoint is written first is replaced, not waited on.
        let other = crate::testing::Scratch::new("checkpoint-fifo-temporary");
        let status = std::process::Command::new("mkfifo")
            .arg(other.join(TEMPORARY))
            .status();
        assert!(status.is_ok_and(|status| status.success()));
        assert!(lock_folder(&other, false).is_ok());
        assert!(!other.join(TEMPORARY).exists());
    }

    /// A resume from a folder without a checkpoint is refused before anything is made: not
    /// the folder, its parents or a lock file left behind.
    #[test]
    fn a_resume_without_a_checkpoint_makes_nothing() {
        let scratch = crate::testing::Scratch::new("checkpoint-resume-missing");
        let dir = scratch.join("typo/deeper");
        assert!(matches!(
            lock_folder(&dir, true),
            Err(CheckpointError::Missing(_))
        ));
        assert!(!scratch.join("typo").exists());
        // An empty folder: refused, and no lock file left in it.
        std::fs::create_dir_all(&dir).expect("folder");
        assert!(matches!(
            lock_folder(&dir, true),
            Err(CheckpointError::Missing(_))
        ));
        assert!(!dir.join(LOCK).exists());
        // Starting afresh makes the folder.
        let fresh = scratch.join("fresh/deeper");
        assert!(lock_folder(&fresh, false).is_ok());
        assert!(fresh.join(LOCK).exists());
    }

    /// A folder no checkpoint can be written into is refused when the run starts (here, the
    /// checkpoint's temporary name is taken by a folder; a read-only folder fails alike, but
    /// not for root, who runs these tests in CI), not when its first checkpoint is due.
    #[test]
    fn a_folder_checkpoints_cannot_be_written_into_is_refused_at_once() {
        // Each name a checkpoint is written, linked or renamed to (the previous one's only at
        // the second checkpoint).
        for name in [TEMPORARY, LATEST, PREVIOUS_TEMPORARY, PREVIOUS] {
            let dir = crate::testing::Scratch::new(&format!("checkpoint-unwritable-{name}"));
            std::fs::create_dir_all(dir.join(name)).expect("a folder in the way");
            match lock_folder(&dir, false) {
                Err(CheckpointError::Unwritable { path, .. }) => assert_eq!(path, dir.join(name)),
                Err(other) => panic!("{name}: {other}"),
                Ok(_) => panic!("{name}: a folder that cannot take a checkpoint was accepted"),
            }
        }
    }
}
