//! `augur run`: reads workflows, a platform, metric logs and task events, keeps the partition
//! map current through the dataflow, and writes `partition.jsonl`, `final_map.json`,
//! `summary.json` and `rejected.jsonl`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use augur_dataflows::contention_forecast::ForecastConfig;
use augur_dataflows::placement::PlacementConfig;
use augur_dataflows::types::{Resource, TaskKey, Time};
use augur_dataflows::EngineConfig;

use crate::catalog::Catalog;
use crate::checkpoint::{self, CheckpointConfig, CheckpointDir, CheckpointError};
use crate::engine::{connect_workers, run_engine_connected, Checkpointing, EngineError, Workers};
use crate::feed::{Feed, FeedError, FeedState, RejectLog};
use crate::input::events::{EventKind, EventReader};
use crate::input::lines::BoundedLines;
use crate::input::metrics::{MetricFormat, MetricOptions, MetricReader};
use crate::input::platform::{
    clock_of, device_of_machine, read_platform, replay_on_own_machines, Device,
};
use crate::input::reorder::Reorder;
use crate::input::wfformat::{read_workflow, Machine, Workflow};
use crate::input::{InputStats, RejectKind, Rejection};
use crate::lifecycle::TaskLifecycle;
use crate::output::{ForecastView, InputSummary, LatencySummary, MapWriter, Summary};
use crate::read_ahead::ReadAhead;
use crate::same_file::FileIndex;
use crate::write_behind::WriteBehind;

/// The files a run writes into its output folder.
pub const OUTPUTS: [&str; 10] = [
    "partition.jsonl",
    "prewarm.jsonl",
    "scaleout.jsonl",
    "resculpt.jsonl",
    "final_map.json",
    "forecasts.json",
    "durations.json",
    "summary.json",
    "rejected.jsonl",
    "report.html",
];

/// The outputs written as the run goes (the rest are written at its end): a checkpoint
/// records their lengths, and a resumed run cuts them back to those and appends.
pub const STREAMED: [&str; 5] = [
    "partition.jsonl",
    "prewarm.jsonl",
    "scaleout.jsonl",
    "resculpt.jsonl",
    "rejected.jsonl",
];

/// Everything `augur run` needs, validated.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// WfFormat workflow files.
    pub workflows: Vec<PathBuf>,
    /// Platform TOML; `None` takes the devices from the workflows' `machines`.
    pub platform: Option<PathBuf>,
    /// Metric logs.
    pub metrics: Vec<PathBuf>,
    /// Their format.
    pub format: MetricFormat,
    /// For NAB files: file → (device, resource).
    pub maps: Vec<(PathBuf, String, Resource)>,
    /// Task-event logs.
    pub events: Vec<PathBuf>,
    /// Out-of-order tolerance per input file, milliseconds.
    pub lateness_ms: i64,
    /// Longest accepted input line, bytes.
    pub max_line_bytes: usize,
    /// Output folder.
    pub out: PathBuf,
    /// Worker layout.
    pub workers: Workers,
    /// First rejection is fatal.
    pub strict: bool,
    /// Forecast knobs.
    pub forecast: ForecastConfig,
    /// Placement knobs.
    pub placement: PlacementConfig,
    /// Progress lines on stderr.
    pub progress: bool,
    /// Read the resident set size every this many epochs into `summary.json` (0: never).
    pub memory_every: u64,
    /// Also write `report.html`.
    pub report: bool,
    /// Checkpoints: where, how often, and whether to resume from the latest.
    pub checkpoint: Option<CheckpointConfig>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An output could not be written.
    #[error("{path}: {source}")]
    Output {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The platform file is unusable.
    #[error("platform: {0}")]
    Platform(Rejection),
    /// No devices to place on; `refused` says what was refused in the workflows (their
    /// machines among it), if anything.
    #[error(
        "no devices: give --platform, or workflows whose WfFormat 'machines' section names some{refused}"
    )]
    NoDevices {
        /// `""`, or the first refusals of the workflows' records, in parentheses.
        refused: String,
    },
    /// `--strict` and an input record was rejected.
    #[error("rejected input (--strict): {0}")]
    Strict(Rejection),
    /// The engine failed.
    #[error("engine: {0}")]
    Engine(String),
    /// The processes of a cluster run were started with different workers, settings or
    /// inputs (a usage error).
    #[error("{0}")]
    Disagree(String),
    /// A checkpoint could not be written, read or used.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
}

/// What a finished run produced (process 0 only; other processes get `None`).
pub struct RunOutcome {
    /// `summary.json`.
    pub summary: Summary,
    /// `final_map.json`.
    pub final_map: BTreeMap<String, BTreeMap<String, String>>,
    /// `forecasts.json`: device → resource → latest and predicted utilisation at the end.
    pub forecasts: BTreeMap<String, BTreeMap<String, ForecastView>>,
    /// The catalog the run used.
    pub catalog: Arc<Catalog>,
}

/// Runs augur over files.
pub fn run(config: &RunConfig) -> Result<Option<RunOutcome>, RunError> {
    let started = Instant::now();
    let writes_outputs = match &config.workers {
        Workers::Threads(_) => true,
        Workers::Cluster { process, .. } => *process == 0,
    };
    if config.report && !writes_outputs && config.progress {
        // Only process 0 writes outputs; the flag is not one the processes must agree on.
        crate::say!("augur: --report: only process 0 writes outputs; give it --report there");
    }
    let fingerprint = config
        .checkpoint
        .as_ref()
        .map(|_| checkpoint::fingerprint(config));
    // Held to the end of the run: one folder, one writer. Taken before the checkpoint is read,
    // so that a run cannot resume from one that its folder's writer is about to replace.
    let _folder_lock = match (&config.checkpoint, writes_outputs) {
        (Some(checkpoint), true) => {
            Some(checkpoint::lock_folder(&checkpoint.dir, checkpoint.resume)?)
        }
        _ => None,
    };
    let mut resumed = match (&config.checkpoint, &fingerprint) {
        (Some(checkpoint), Some(fingerprint)) if checkpoint.resume && writes_outputs => {
            let loaded = checkpoint::load(&checkpoint.dir, fingerprint)?;
            checkpoint::check_logs(&checkpoint.dir, &loaded, config)?;
            Some(loaded)
        }
        _ => None,
    };
    let was_resumed = resumed.is_some();
    // The processes of a cluster connect (and compare their settings) before any output is
    // touched: one refused, or a peer that never came, left an earlier run's outputs cleared.
    let connected = connect_workers(
        config
            .workers
            .clone()
            .agreeing_on(checkpoint::cluster_agreement(config)),
    )
    .map_err(|error| engine_error(error, was_resumed))?;
    let mut inputs: BTreeMap<String, InputSummary> = BTreeMap::new();
    let mut early_rejections: Vec<Rejection> = Vec::new();

    let platform = match &config.platform {
        Some(path) => Some(read_platform(path).map_err(RunError::Platform)?),
        None => None,
    };

    let mut parsed = Vec::new();
    let mut notes = Vec::new();
    for path in &config.workflows {
        let read = read_workflow(path);
        inputs.insert(path.display().to_string(), read.stats.into());
        early_rejections.extend(read.rejections);
        if let Some(mut workflow) = read.workflow {
            let path = &workflow.path;
            notes.extend(workflow.notes.drain(..).map(|note| (path.clone(), note)));
            parsed.push(workflow);
        }
    }
    let platform = match platform {
        Some(platform) => platform,
        None => {
            parsed = refuse_contradicting_machines(parsed, &mut inputs, &mut early_rejections);
            let (platform, restated) = replay_on_own_machines(&mut parsed);
            for (workflow, said) in parsed.iter().zip(restated) {
                notes.extend(said.into_iter().map(|note| (workflow.path.clone(), note)));
            }
            platform
        }
    };
    if platform.devices.is_empty() {
        // A strict run stops at its first refusal (a cyclic workflow, the only source of
        // devices, say), logged as the run below would log it, before there is any platform
        // to complain of.
        if let (true, Some(first)) = (config.strict, early_rejections.first()) {
            if !(writes_outputs && resumed.is_none()) {
                return Err(RunError::Strict(first.clone()));
            }
            clear_outputs(&config.out)?;
            std::fs::create_dir_all(&config.out).map_err(|source| RunError::Output {
                path: config.out.clone(),
                source,
            })?;
            let mut log = RejectLog::new(create(&config.out.join("rejected.jsonl"))?, true);
            let stopped = log.record(first.clone()).and_then(|()| log.flush());
            return Err(stopped
                .err()
                .map_or(RunError::Strict(first.clone()), feed_error));
        }
        // A workflow's machines may have been refused (a negative core count, say): say so,
        // or the message would send the user looking for a section that is there.
        let first: Vec<String> = early_rejections
            .iter()
            .take(3)
            .map(|r| format!("{}: {}", r.file, r.reason))
            .collect();
        let refused = match early_rejections.len() {
            0 => String::new(),
            n if n <= 3 => format!(" (refused: {})", first.join("; ")),
            n => format!(" (refused: {}; {} more)", first.join("; "), n - 3),
        };
        return Err(RunError::NoDevices { refused });
    }
    let mut catalog = Catalog::new(platform);
    for workflow in parsed {
        let path = workflow.path.clone();
        let tasks = workflow.tasks.len() as u64;
        if let Err(rejections) = catalog.admit(workflow) {
            // A refused workflow's notes would only distract from why it was refused.
            notes.retain(|(file, _)| *file != path);
            early_rejections.extend(rejections);
            if let Some(entry) = inputs.get_mut(&path) {
                entry.accepted = entry.accepted.saturating_sub(tasks);
                entry.rejected += tasks;
            }
        }
    }
    // A fresh run's writer logs them first (rejected.jsonl, as it logs a refused metric) and
    // its log stops a strict run at the first; a process without outputs stops here, as does a
    // resumed run, which logged them before its checkpoint.
    if config.strict && !(writes_outputs && resumed.is_none()) {
        if let Some(first) = early_rejections.first() {
            return Err(RunError::Strict(first.clone()));
        }
    }
    let catalog = Arc::new(catalog);
    // A fresh run clears its outputs once its workflows and platform are read (a run refused
    // for want of devices, say, leaves an earlier run's results alone); a resumed one once its
    // inputs have reopened where the checkpoint left them (below), so that a refused resume
    // leaves the results alone too.
    if writes_outputs && resumed.is_none() {
        clear_outputs(&config.out)?;
    }

    let io = if writes_outputs {
        std::fs::create_dir_all(&config.out).map_err(|source| RunError::Output {
            path: config.out.clone(),
            source,
        })?;
        let mut reopened: BTreeMap<String, File> = match &resumed {
            Some(checkpoint) => checkpoint::reopen_outputs(&config.out, checkpoint)?
                .into_iter()
                .collect(),
            None => BTreeMap::new(),
        };
        let mut open = |name: &str| -> Result<Box<dyn Write + Send>, RunError> {
            match reopened.remove(name) {
                Some(file) => Ok(Box::new(BufWriter::new(file))),
                None => create(&config.out.join(name)),
            }
        };
        let mut log = RejectLog::new(open("rejected.jsonl")?, config.strict);
        let feed_state = match &resumed {
            Some(checkpoint) => {
                Some(FeedState::decode(&checkpoint.engine.source).map_err(corrupt(config))?)
            }
            None => {
                // A resumed run logged these before its checkpoint.
                for rejection in early_rejections {
                    log.record(rejection).map_err(feed_error)?;
                }
                None
            }
        };
        let (feed, opened) = open_feed(config, &catalog, log, feed_state)?;
        if resumed.is_some() {
            // The streamed outputs are kept (cut back to the checkpoint); the rest are
            // rewritten at the end.
            clear_outputs_but(&config.out, &STREAMED)?;
        }
        for (path, stats) in opened {
            inputs.insert(path, stats.into());
        }
        let mut writer = MapWriter::new(
            Arc::clone(&catalog),
            open("partition.jsonl")?,
            config.progress,
        )
        .with_prewarm(
            open("prewarm.jsonl")?,
            config.forecast.horizon_ms as f64 / 1000.0,
            config.placement.capacity_target,
        )
        .with_resculpt(open("resculpt.jsonl")?)
        .with_scaleout(
            open("scaleout.jsonl")?,
            config.forecast.horizon_ms,
            config.placement.capacity_target,
        )
        .with_memory_readings(config.memory_every);
        if config.report {
            writer = writer.with_history();
        }
        if let Some(checkpoint) = &resumed {
            writer
                .restore(checkpoint.engine.time, &checkpoint.engine.sink)
                .map_err(corrupt(config))?;
        }
        Some((feed, writer))
    } else {
        None
    };

    let engine_config = EngineConfig {
        devices: catalog.device_specs(),
        forecast: config.forecast,
        placement: config.placement,
        durations: Default::default(),
    };
    let checkpointing = match (&config.checkpoint, fingerprint) {
        (Some(checkpoint), Some(fingerprint)) if writes_outputs => Some(Checkpointing {
            every: checkpoint.every,
            // A finished run has nothing to resume.
            at_end: false,
            store: Box::new(
                CheckpointDir::new(
                    &checkpoint.dir,
                    &config.out,
                    &STREAMED,
                    &fingerprint,
                    config.progress,
                )
                .with_logs(checkpoint::log_paths(config))
                .resuming(resumed.as_ref()),
            ),
            resume: resumed.take().map(|checkpoint| checkpoint.engine),
        }),
        _ => None,
    };
    // Inputs are read ahead and outputs written behind on threads of their own wherever the
    // machine has a second core, and unless checkpoints need the feed's and the writer's state
    // at each epoch the engine has seen.
    let read_ahead = checkpointing.is_none() && io_threads_pay();
    let io = Mutex::new(io.map(|(feed, writer)| {
        (
            ReadAhead::new(feed, read_ahead),
            WriteBehind::new(writer, read_ahead),
        )
    }));
    let idle_catalog = Arc::clone(&catalog);
    let outcome = run_engine_connected(connected, engine_config, checkpointing, move || {
        let taken = io.lock().ok().and_then(|mut io| io.take());
        taken.unwrap_or_else(|| {
            let (feed, writer) = idle_io(&idle_catalog);
            (ReadAhead::new(feed, false), WriteBehind::new(writer, false))
        })
    })
    .map_err(|error| engine_error(error, was_resumed))?;

    let Some((stats, feed, writer)) = outcome else {
        return Ok(None);
    };
    let mut feed = feed.into_inner();
    let mut writer = writer.into_inner().map_err(|error| {
        RunError::Engine(EngineError::<FeedError, std::io::Error>::Sink(error).to_string())
    })?;
    feed.log_mut().flush().map_err(feed_error)?;
    writer.flush().map_err(|source| RunError::Output {
        path: config.out.join("partition.jsonl"),
        source,
    })?;
    for (path, stats) in feed.stats() {
        inputs.insert(path, stats.into());
    }
    let final_map = writer.final_map();
    let (threads, processes) = match &config.workers {
        Workers::Threads(n) => (*n, 1),
        Workers::Cluster {
            threads, addresses, ..
        } => (*threads, addresses.len()),
    };
    let summary = Summary {
        inputs,
        epochs: stats.epochs,
        tasks_placed: writer.placed,
        tasks_moved: writer.moved,
        wall_s: started.elapsed().as_secs_f64(),
        rejected_lines: feed.log_mut().count,
        tasks_in_final_map: writer.len() as u64,
        devices: catalog.platform.devices.len() as u64,
        workers: threads as u64,
        processes: processes as u64,
        epoch_latency: LatencySummary::of(&writer.latency_us),
        policy: config.placement.policy.name().to_string(),
        prewarm_actions: writer.prewarm_actions,
        resculpted: writer.resculpted,
        peak_rss_mib: crate::memory::peak_resident_mib(),
        memory: std::mem::take(&mut writer.memory),
        notes: (notes.into_iter())
            .map(|(path, note)| format!("{path}: {note}"))
            .collect(),
    };
    let forecasts = writer.forecasts();
    let durations = writer.durations();
    write_json(&config.out.join("final_map.json"), &final_map)?;
    write_json(&config.out.join("forecasts.json"), &forecasts)?;
    write_json(&config.out.join("durations.json"), &durations)?;
    write_json(&config.out.join("summary.json"), &summary)?;
    if let Some(history) = writer.history() {
        let path = config.out.join("report.html");
        let page = crate::run_report::html(
            &config.out.display().to_string(),
            &summary,
            &catalog,
            history,
        );
        std::fs::write(&path, page).map_err(|source| RunError::Output { path, source })?;
    }
    Ok(Some(RunOutcome {
        summary,
        final_map,
        forecasts,
        catalog,
    }))
}

/// The run's error for the engine's.
fn engine_error(error: EngineError<FeedError, std::io::Error>, was_resumed: bool) -> RunError {
    match error {
        EngineError::Source(FeedError::Strict(rejection)) => RunError::Strict(rejection),
        EngineError::Disagree(message) => RunError::Disagree(message),
        // The checksum catches a damaged checkpoint, not one edited and re-checksummed, whose
        // state may not hold together: say where the failure may come from.
        EngineError::Worker(message) if was_resumed => RunError::Engine(format!(
            "a worker failed after resuming from the checkpoint: {message}; if the checkpoint \
             was edited it is not usable (run again without --resume)"
        )),
        other => RunError::Engine(other.to_string()),
    }
}

/// Whether `run` reads its inputs and writes its outputs on threads of their own: wherever the
/// machine has more than one core, even when the workers number as many. Inline, the feed and
/// the sink run on worker 0, which then does their work besides its share of the series, and
/// the other workers wait on it at every epoch: 2 workers on 2 cores took 4.2-4.6 s on `augur
/// bench ingest`'s changing log inline and 3.3-3.8 s with the threads (BENCHMARKS.md). On one
/// core the threads could only take turns with the worker and pay for the hand-over.
pub fn io_threads_pay() -> bool {
    std::thread::available_parallelism().is_ok_and(|cores| cores.get() > 1)
}

/// The checkpoint's positions of the streams of the file at `path` (as the run names it).
fn positions_of<P: Clone>(all: &[(String, P)], path: &Path) -> Vec<P> {
    // By the name's spelling, as the fingerprint takes it (`./m.csv` finds `m.csv`'s), and
    // as text, as the checkpoint names the streams (a name that is not UTF-8 made lossy alike).
    let spelled = |path: &Path| crate::checkpoint::spelling(path).display().to_string();
    let name = spelled(path);
    all.iter()
        .filter(|(file, _)| spelled(Path::new(file)) == name)
        .map(|(_, position)| position.clone())
        .collect()
}

/// Opens every metric and event input, works out arrival times, and builds the feed; or, given
/// a checkpoint's feed state, reopens the inputs where it left them.
fn open_feed(
    config: &RunConfig,
    catalog: &Arc<Catalog>,
    mut log: RejectLog,
    resume: Option<FeedState>,
) -> Result<(Feed, Vec<(String, InputStats)>), RunError> {
    let metric_positions = resume.as_ref().map(FeedState::metric_positions);
    let event_positions = resume.as_ref().map(FeedState::event_positions);
    let mut unopened = Vec::new();
    let mut reopen_failures: Vec<String> = Vec::new();
    let bandwidth: HashMap<String, (Option<f64>, Option<f64>)> = catalog
        .platform
        .devices
        .iter()
        .map(|d| (d.id.clone(), (d.disk_bytes_per_s, d.network_bytes_per_s)))
        .collect();
    let mut metrics = Vec::new();
    let mut mapped = FileIndex::new();
    for (file, device, resource) in &config.maps {
        mapped.insert(file, (device, *resource));
    }
    // A file's streams take the checkpoint's positions recorded for that file: matched by
    // index, a file that failed to reopen handed its position to the next one (refused at the
    // wrong offset, as though it had changed too). A file the checkpointed run could not open
    // has none: it was logged and counted then, and is counted again as it was.
    for path in &config.metrics {
        let mine = metric_positions
            .as_deref()
            .map(|all| positions_of(all, path));
        if mine.as_ref().is_some_and(Vec::is_empty) {
            unopened.push(whole_file_stats(path));
            continue;
        }
        let options = MetricOptions {
            max_line_bytes: config.max_line_bytes,
            nab_target: mapped
                .same_as(path)
                .map(|(device, resource)| (device.clone(), resource)),
            bandwidth: bandwidth.clone(),
            only_machine: None,
            lateness_ms: Some(config.lateness_ms),
        };
        // Alibaba's machine_usage is grouped by machine, not sorted by time: read it as one
        // time-ordered stream per machine, each with its own lateness window.
        let groups = if config.format == MetricFormat::Alibaba {
            machines_in(path, config.max_line_bytes)
        } else {
            Vec::new()
        };
        let per_group: Vec<MetricOptions> = if groups.is_empty() {
            vec![options]
        } else {
            groups
                .into_iter()
                .enumerate()
                .map(|(index, machine)| MetricOptions {
                    only_machine: Some((machine, index == 0)),
                    ..options.clone()
                })
                .collect()
        };
        for (group, options) in per_group.into_iter().enumerate() {
            // An Alibaba log gains a machine when rows of one not seen before are appended:
            // its stream is new, read from the start (its rows the run had passed refused).
            let mut new = false;
            let opened = match &mine {
                Some(positions) => match positions.get(group) {
                    Some(position) => {
                        MetricReader::open_at(path, config.format, &options, position)
                    }
                    None if group > 0 && options.only_machine.is_some() => {
                        new = true;
                        MetricReader::open(path, config.format, &options)
                    }
                    None => return Err(mismatch(config, "more metric streams than it read")),
                },
                None => MetricReader::open(path, config.format, &options),
            };
            match opened {
                Ok(reader) => metrics.push((reader, new)),
                Err(rejection) => {
                    unopened.push(whole_file_stats(path));
                    // A resumed run logged this before its checkpoint (if the file failed
                    // then too); the reason is kept in case the resume is refused.
                    if metric_positions.is_none() {
                        log.record(rejection).map_err(feed_error)?;
                    } else {
                        reopen_failures.push(format!("{}: {}", rejection.file, rejection.reason));
                    }
                    break;
                }
            }
        }
    }

    let mut arrivals: BTreeMap<Time, Vec<TaskKey>> = BTreeMap::new();
    let mut workflow_arrival: HashMap<u32, Time> = HashMap::new();
    let mut task_arrival: HashMap<TaskKey, Time> = HashMap::new();
    let mut events = Vec::new();
    if let Some(all) = &event_positions {
        for path in &config.events {
            let Some(position) = positions_of(all, path).into_iter().next() else {
                unopened.push(whole_file_stats(path));
                continue;
            };
            match EventReader::open_at(path, config.max_line_bytes, position) {
                Ok(reader) => events.push(reader),
                Err(rejection) => {
                    unopened.push(whole_file_stats(path));
                    reopen_failures.push(format!("{}: {}", rejection.file, rejection.reason));
                }
            }
        }
    }
    if let Some(state) = resume {
        // Why a stream the checkpoint read does not reopen is the answer, not the counts of
        // streams that it leaves.
        if !reopen_failures.is_empty() {
            return Err(mismatch(config, &reopen_failures.join("; ")));
        }
        let feed = Feed::resume(
            Arc::clone(catalog),
            metrics,
            events,
            state,
            config.lateness_ms,
            log,
        )
        .map_err(|reason| mismatch(config, &reason))?;
        return Ok((feed, unopened));
    }
    for path in &config.events {
        match EventReader::open(path, config.max_line_bytes) {
            Ok(reader) => {
                let lateness = config.lateness_ms;
                scan_arrivals(
                    reader,
                    catalog,
                    lateness,
                    &mut workflow_arrival,
                    &mut task_arrival,
                );
                match EventReader::open(path, config.max_line_bytes) {
                    Ok(reader) => events.push(reader),
                    Err(rejection) => {
                        unopened.push(whole_file_stats(path));
                        log.record(rejection).map_err(feed_error)?;
                    }
                }
            }
            Err(rejection) => {
                unopened.push(whole_file_stats(path));
                log.record(rejection).map_err(feed_error)?;
            }
        }
    }
    let mut feed = Feed::new(
        Arc::clone(catalog),
        metrics.into_iter().map(|(reader, _)| reader).collect(),
        events,
        BTreeMap::new(),
        config.lateness_ms,
        log,
    );
    // A workflow without an arrival event arrives with the earliest record of any input.
    let default_time = feed.earliest_input_time().map_err(feed_error)?.unwrap_or(0);
    for (index, entry) in catalog.workflows.iter().enumerate() {
        let workflow = index as u32;
        let whole = workflow_arrival.get(&workflow).copied();
        for task in 0..entry.specs.len() as u32 {
            let key = TaskKey { workflow, task };
            // A workflow's arrival brings all of its tasks; a task's own arrival event can only
            // bring it earlier, or, for a workflow that has none, on its own.
            let time = match (task_arrival.get(&key).copied(), whole) {
                (Some(own), Some(whole)) => own.min(whole),
                (Some(own), None) => own,
                (None, Some(whole)) => whole,
                (None, None) => default_time,
            };
            arrivals.entry(time).or_default().push(key);
        }
    }
    for (time, tasks) in arrivals {
        feed.set_default_arrivals(time, tasks);
    }
    Ok((feed, unopened))
}

/// First pass over an event log: the arrival times it gives workflows and tasks (the earliest
/// when several are given). Invalid lines are ignored here; the main pass rejects them.
fn scan_arrivals(
    reader: EventReader,
    catalog: &Catalog,
    lateness_ms: i64,
    workflows: &mut HashMap<u32, Time>,
    tasks: &mut HashMap<TaskKey, Time>,
) {
    // Only the events the feed will accept: one it refuses (a name it does not know, a time
    // too far behind the file's newest) must not bring a workflow in at its time. The feed
    // parks what passes both checks in a reorder buffer like this one.
    let mut admitted = Reorder::<()>::new(lateness_ms);
    for (seq, outcome) in reader.enumerate() {
        let Ok(event) = outcome.event else { continue };
        if TaskLifecycle::check_names(catalog, &event).is_err()
            || admitted.push(event.time, seq as u64, ()).is_err()
        {
            continue;
        }
        while admitted.pop_ready().is_some() {}
        if event.kind != EventKind::Arrival {
            continue;
        }
        match &event.task {
            None => {
                if let Some(id) = catalog.workflow_id(&event.workflow) {
                    let entry = workflows.entry(id).or_insert(event.time);
                    *entry = (*entry).min(event.time);
                }
            }
            Some(task) => {
                if let Some(key) = catalog.task_key(&event.workflow, task) {
                    let entry = tasks.entry(key).or_insert(event.time);
                    *entry = (*entry).min(event.time);
                }
            }
        }
    }
}

/// The workflows whose `machines` agree with those of the files before them. Without a
/// platform the devices are the union of the workflows' machines by name, and a machine that a
/// later file describes as another device (cores, speed or memory, as the device is built:
/// a missing or unusable figure is its default) would be merged silently, the first file
/// winning; such a file is refused whole instead, as a file contradicting itself is.
fn refuse_contradicting_machines(
    parsed: Vec<Workflow>,
    inputs: &mut BTreeMap<String, InputSummary>,
    rejections: &mut Vec<Rejection>,
) -> Vec<Workflow> {
    let mut known: HashMap<String, ((Device, Option<f64>), String)> = HashMap::new();
    let mut kept = Vec::with_capacity(parsed.len());
    for workflow in parsed {
        let contradiction = workflow.machines.iter().find_map(|machine| {
            known
                .get(&machine.name)
                .filter(|(earlier, _)| *earlier != spec_of(machine))
                .map(|(_, file)| (machine.name.clone(), file.clone()))
        });
        if let Some((name, file)) = contradiction {
            rejections.push(Rejection::whole_file(
                workflow.path.clone(),
                RejectKind::DuplicateId,
                format!("machine '{name}' is given with other specs than in {file}"),
            ));
            if let Some(entry) = inputs.get_mut(&workflow.path) {
                let tasks = workflow.tasks.len() as u64;
                entry.accepted = entry.accepted.saturating_sub(tasks);
                entry.rejected += tasks;
            }
            continue;
        }
        for machine in &workflow.machines {
            known
                .entry(machine.name.clone())
                .or_insert_with(|| (spec_of(machine), workflow.path.clone()));
        }
        kept.push(workflow);
    }
    kept
}

/// A machine as its device is built, with its clock as given (`None` without a usable one):
/// the device's speed is relative to the run's most common clock, so a machine without one
/// is not the same as one at 1,000 MHz.
fn spec_of(machine: &Machine) -> (Device, Option<f64>) {
    (device_of_machine(machine), clock_of(machine))
}

/// The machine ids of an Alibaba usage file, in order of first appearance (empty when the file
/// cannot be read; opening it then reports why).
fn machines_in(path: &Path, max_line_bytes: usize) -> Vec<String> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let mut seen = std::collections::HashSet::new();
    let mut machines = Vec::new();
    let lines = BoundedLines::new(std::io::BufReader::new(file), max_line_bytes);
    for (_, line) in lines {
        let Ok(line) = line else { continue };
        let machine = crate::input::metrics::first_field(&line, ',');
        if !machine.is_empty() && seen.insert(machine.to_string()) {
            machines.push(machine.to_string());
        }
    }
    machines
}

fn whole_file_stats(path: &Path) -> (String, InputStats) {
    (
        path.display().to_string(),
        InputStats {
            read: 1,
            accepted: 0,
            rejected: 1,
            dropped_fields: 0,
        },
    )
}

/// The inputs and outputs of a worker that reads and writes nothing (never called on worker 0
/// of process 0, which gets the real ones).
fn idle_io(catalog: &Arc<Catalog>) -> (Feed, MapWriter) {
    let log = RejectLog::new(Box::new(std::io::sink()), false);
    let feed = Feed::new(
        Arc::clone(catalog),
        Vec::new(),
        Vec::new(),
        BTreeMap::new(),
        0,
        log,
    );
    let writer = MapWriter::new(Arc::clone(catalog), Box::new(std::io::sink()), false);
    (feed, writer)
}

/// Removes what an earlier run wrote into `out`: a failed run must not leave those files looking
/// like its own.
fn clear_outputs(out: &Path) -> Result<(), RunError> {
    for name in OUTPUTS {
        let path = out.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(RunError::Output { path, source }),
        }
    }
    Ok(())
}

/// Removes the outputs written at the end of a run, keeping `kept`.
fn clear_outputs_but(out: &Path, kept: &[&str]) -> Result<(), RunError> {
    for name in OUTPUTS.iter().filter(|name| !kept.contains(name)) {
        let path = out.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(RunError::Output { path, source }),
        }
    }
    Ok(())
}

/// The checkpoint file of a run, for errors.
fn checkpoint_file(config: &RunConfig) -> PathBuf {
    config
        .checkpoint
        .as_ref()
        .map_or_else(PathBuf::new, |c| c.dir.join(checkpoint::LATEST))
}

fn corrupt(config: &RunConfig) -> impl Fn(String) -> RunError + '_ {
    move |reason| {
        RunError::Checkpoint(CheckpointError::Corrupt {
            path: checkpoint_file(config),
            reason,
        })
    }
}

fn mismatch(config: &RunConfig, reason: &str) -> RunError {
    RunError::Checkpoint(CheckpointError::Mismatch {
        path: checkpoint_file(config),
        reason: format!("the inputs differ from the checkpoint's: {reason}"),
    })
}

fn feed_error(error: FeedError) -> RunError {
    match error {
        FeedError::Strict(rejection) => RunError::Strict(rejection),
        FeedError::RejectLog(source) => RunError::Output {
            path: PathBuf::from("rejected.jsonl"),
            source,
        },
        FeedError::Checkpoint(reason) => RunError::Checkpoint(CheckpointError::Encode(reason)),
    }
}

fn create(path: &Path) -> Result<Box<dyn Write + Send>, RunError> {
    let file = File::create(path).map_err(|source| RunError::Output {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Box::new(BufWriter::new(file)))
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), RunError> {
    let mut out = create(path)?;
    let io = |source| RunError::Output {
        path: path.to_path_buf(),
        source,
    };
    serde_json::to_writer_pretty(&mut out, value).map_err(|e| io(std::io::Error::other(e)))?;
    out.write_all(b"\n").map_err(io)?;
    out.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resumed file's streams are found by its name, not by its place among the files: one
    /// the checkpointed run could not open has none, and the files after it keep theirs.
    #[test]
    fn positions_are_found_by_file_not_by_index() {
        let all = vec![
            ("a".to_string(), 1),
            ("b".to_string(), 2),
            ("b".to_string(), 3),
        ];
        assert_eq!(positions_of(&all, Path::new("b")), vec![2, 3]);
        assert_eq!(positions_of(&all, Path::new("a")), vec![1]);
        assert!(positions_of(&all, Path::new("never-opened")).is_empty());
    }
}
