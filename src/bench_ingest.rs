//! Ingest and soak benchmarks of `augur run` itself: seeded logs are written to disk, then read
//! by the same code path a user's `augur run` takes (flags validated by `run_config`, files read
//! by the feed, the full dataflow, every output written).
//!
//! - **ingest** (`augur bench ingest`): metric samples per second through `run`, per worker,
//!   against a bare parse of the same log in the same process (the parser alone, counting
//!   records), in two scenarios: `changing` (every series a random walk, so forecasts and the
//!   map keep changing) and `steady` (every series holds its value, so after the first epochs no
//!   output changes). Every timestamp carries one sample per series: epochs are batches of
//!   `devices × resources` samples.
//! - **soak** (`augur bench soak`): millions of metric samples and task events (workflows
//!   arriving, their tasks starting and completing) through one `run`, with the resident set size
//!   read along the way; it compares RSS after `--compare-at` samples with RSS at the end, and
//!   checks that `summary.json` accounts for every record written.
//!
//! The generated inputs go to `--dir` (kept) or to a temporary folder (removed at the end).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::Args;
use serde::Serialize;

use crate::cli::{run_config, RunArgs};
use crate::input::{MetricFormat, MetricOptions, MetricReader};
use crate::run::{run, RunOutcome};
use crate::thread_cpu::ThreadCpu;

/// First timestamp of the generated logs (2024-01-01T00:00:00Z), seconds.
const START_S: u64 = 1_704_067_200;

/// Seconds between consecutive timestamps of a series.
const STEP_S: u64 = 10;

/// Flags of `augur bench ingest`.
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Metric samples in each scenario's log [default: 2000000, smoke 40000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub samples: Option<u64>,
    /// Devices; each reports cpu and memory at every timestamp [default: 100, smoke 20].
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub devices: Option<usize>,
    /// Worker threads of `run`.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Forecast model of every series (as `[forecast] model` in a config file).
    #[arg(long, default_value = "auto", value_parser = ["auto", "ewma", "holt", "hw", "ar", "median"])]
    pub model: String,
    /// Layout of the generated log: `long` CSV or JSONL.
    #[arg(long, default_value = "csv", value_parser = ["csv", "jsonl"])]
    pub log: String,
    /// Rounds of (bare parse, run) per scenario; the report gives the round whose run / parse
    /// is the median, so one slow moment of a shared machine does not decide it [default: 3,
    /// smoke 1].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub rounds: Option<u32>,
    /// Keep the generated inputs and `run`'s outputs in this folder.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// A size that finishes in seconds (for CI): 40,000 samples over 20 devices, one round
    /// (each of them unless given).
    #[arg(long)]
    pub smoke: bool,
}

/// Flags of `augur bench soak`.
#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// Metric samples in the log (cpu of every device at every timestamp) [default: 10000000,
    /// smoke 200000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub samples: Option<u64>,
    /// Task events (about: whole workflows of 100 tasks, each an arrival, starts, completions)
    /// [default: 1000000, smoke 20000].
    #[arg(long)]
    pub events: Option<u64>,
    /// Devices [default: 200, smoke 20].
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub devices: Option<usize>,
    /// RSS after this many samples is compared with RSS at the end [default: 1000000, smoke
    /// 20000].
    #[arg(long)]
    pub compare_at: Option<u64>,
    /// Worker threads of `run`.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Keep the generated inputs and `run`'s outputs in this folder.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// A size that finishes in seconds (for CI): 200,000 samples, 20,000 events, 20 devices
    /// (each of them unless given).
    #[arg(long)]
    pub smoke: bool,
}

/// Why a benchmark could not complete.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The options are inconsistent.
    #[error("invalid benchmark options: {0}")]
    Options(String),
    /// A generated input could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `run` refused its flags.
    #[error("run flags: {0}")]
    Config(String),
    /// `run` failed.
    #[error("run: {0}")]
    Run(String),
    /// `run` ended without process 0's outcome.
    #[error("run returned no outcome")]
    NoOutcome,
}

/// One scenario of the ingest benchmark.
#[derive(Clone, Debug, Serialize)]
pub struct IngestScenario {
    /// `changing` or `steady`.
    pub name: &'static str,
    /// Samples in the log.
    pub samples: u64,
    /// Samples per epoch (one per series at each timestamp).
    pub samples_per_epoch: u64,
    /// Bytes of the log.
    pub log_bytes: u64,
    /// The parser alone over the log, seconds.
    pub parse_s: f64,
    /// Samples per second of the parser alone.
    pub parse_samples_per_s: f64,
    /// The whole `run`, seconds.
    pub run_s: f64,
    /// Samples per second through `run`, per worker.
    pub run_samples_per_s_per_worker: f64,
    /// `run`'s rate over the parser's: how much of the parse speed the engine keeps.
    pub run_over_parse: f64,
    /// CPU seconds of the bare parse (Linux only, 10 ms ticks).
    pub parse_cpu_s: Option<f64>,
    /// CPU seconds of the process during `run`, every thread (Linux only, 10 ms ticks).
    pub run_cpu_s: Option<f64>,
    /// `parse_cpu_s / run_cpu_s`: `run_over_parse` in CPU time, which a machine busy with
    /// other work disturbs less than wall-clock time.
    pub run_cpu_over_parse: Option<f64>,
    /// CPU seconds of each of `run`'s threads, by name (`timely:work-N`, `augur:feed` reading
    /// and admitting the inputs, `augur:sink` writing the outputs; Linux only, 10 ms ticks):
    /// where the run's time goes. Empty where it cannot be read.
    pub run_thread_cpu_s: BTreeMap<String, f64>,
    /// The thread with the most CPU time in `run`, and that time over `run_s`: near 1, that
    /// thread was busy the whole run and bounds it (adding cores elsewhere buys nothing).
    pub busiest_thread: Option<BusiestThread>,
    /// Epochs `run` processed.
    pub epochs: u64,
    /// Tasks moved over the run (0 once nothing changes).
    pub tasks_moved: u64,
    /// Metric records `run` accepted (must equal `samples`).
    pub accepted: u64,
    /// Every round's parse and run, in the order run; the figures above are the median
    /// round's (by `run_over_parse`; with an even count, the lower of the middle two).
    pub rounds: Vec<RoundFigures>,
}

/// One round of a scenario: a bare parse, then a run.
#[derive(Clone, Debug, Serialize)]
pub struct RoundFigures {
    /// The parser alone, seconds.
    pub parse_s: f64,
    /// The whole `run`, seconds.
    pub run_s: f64,
    /// `parse_s / run_s`.
    pub run_over_parse: f64,
}

/// The busiest thread of a run.
#[derive(Clone, Debug, Serialize)]
pub struct BusiestThread {
    /// Its name.
    pub name: String,
    /// Its CPU seconds over the run's wall-clock seconds.
    pub cpu_over_run: f64,
}

impl BusiestThread {
    fn of(threads: &BTreeMap<String, f64>, run_s: f64) -> Option<BusiestThread> {
        threads
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(name, &cpu)| BusiestThread {
                name: name.clone(),
                cpu_over_run: cpu / run_s.max(1e-9),
            })
    }
}

/// What `augur bench ingest` measured.
#[derive(Clone, Debug, Serialize)]
pub struct IngestReport {
    /// Devices.
    pub devices: usize,
    /// Worker threads.
    pub workers: usize,
    /// Forecast model.
    pub model: String,
    /// Log layout.
    pub log: String,
    /// Whether `run` read its inputs and wrote its outputs on threads of their own beside its
    /// workers (it does wherever the machine has a second core): the wall-clock figures then
    /// count on that core, the CPU ones (`run_cpu_over_parse`) do not.
    pub io_threads: bool,
    /// Both scenarios.
    pub scenarios: Vec<IngestScenario>,
    /// `run` keeps at least half of the bare parse's rate (changing scenario).
    pub target_run_over_parse: Target,
    /// At least 2M samples/s per worker when no output changes (steady scenario).
    pub target_steady_rate: Target,
}

/// One target and whether the run met it.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    /// The target, as stated.
    pub target: &'static str,
    /// What was measured.
    pub measured: f64,
    /// Whether it was met.
    pub met: bool,
}

/// Runs `augur bench ingest`.
pub fn run_ingest(
    args: &IngestArgs,
    progress: &mut dyn FnMut(&str),
) -> Result<IngestReport, IngestError> {
    // Given flags stand, with --smoke too (as `bench --smoke` takes them): only the sizes
    // not given are the smoke ones.
    let pick = |given: Option<u64>, full: u64, smoke: u64| {
        given.unwrap_or(if args.smoke { smoke } else { full })
    };
    let samples = pick(args.samples, 2_000_000, 40_000);
    let devices = pick(args.devices.map(|d| d as u64), 100, 20) as usize;
    let rounds = pick(args.rounds.map(u64::from), 3, 1).max(1) as u32;
    if devices == 0 || samples == 0 || args.workers == 0 {
        return Err(IngestError::Options(
            "samples, devices and workers must be positive".into(),
        ));
    }
    let folder = Folder::new(args.dir.as_deref(), "ingest")?;
    let platform = folder.path.join("platform.toml");
    write_platform(&platform, devices)?;
    let workflow = folder.path.join("idle.json");
    write_workflow(&workflow, "idle", 1)?;
    let config = folder.path.join("config.toml");
    write_file(
        &config,
        &format!("[forecast]\nmodel = \"{}\"\n", args.model),
    )?;
    let series_per_time = devices as u64 * 2;
    let mut scenarios = Vec::new();
    for (name, steady) in [("changing", false), ("steady", true)] {
        let log = folder.path.join(format!("{name}.{}", args.log));
        progress(&format!("writing {samples} samples to {}", log.display()));
        write_metrics(&log, devices, samples, steady, args.log == "jsonl")?;
        let log_bytes = std::fs::metadata(&log).map_or(0, |m| m.len());

        let mut run_args = base_args(&folder.path.join(format!("out-{name}")), args.workers);
        run_args.workflows = vec![workflow.clone()];
        run_args.platform = Some(platform.clone());
        run_args.metrics = vec![log.clone()];
        run_args.config = Some(config.clone());
        let mut measured = Vec::new();
        for round in 1..=rounds {
            let figures = measure_round(&log, samples, &run_args)?;
            let busiest = figures.busiest_thread.as_ref().map_or(String::new(), |b| {
                format!(
                    ", busiest thread {} ({:.0}% of the run)",
                    b.name,
                    100.0 * b.cpu_over_run
                )
            });
            progress(&format!(
                "{name}, round {round} of {rounds}: bare parse {:.2} s, run {:.2} s, {} epochs, {} moves{busiest}",
                figures.parse_s, figures.run_s, figures.epochs, figures.tasks_moved
            ));
            measured.push(figures);
        }
        let rounds: Vec<RoundFigures> = measured
            .iter()
            .map(|m| RoundFigures {
                parse_s: m.parse_s,
                run_s: m.run_s,
                run_over_parse: m.run_over_parse(),
            })
            .collect();
        let median = median_round(&measured);
        let Round {
            parse_s,
            parse_cpu_s,
            run_s,
            run_cpu_s,
            run_thread_cpu_s,
            busiest_thread,
            epochs,
            tasks_moved,
            accepted,
        } = measured.swap_remove(median);
        scenarios.push(IngestScenario {
            name,
            samples,
            samples_per_epoch: series_per_time.min(samples),
            log_bytes,
            parse_s,
            parse_samples_per_s: samples as f64 / parse_s.max(1e-9),
            run_s,
            run_samples_per_s_per_worker: samples as f64 / run_s.max(1e-9) / args.workers as f64,
            run_over_parse: parse_s / run_s.max(1e-9),
            parse_cpu_s,
            run_cpu_s,
            // A parse too short for the CPU clock to see has no ratio, not a ratio of 0.
            run_cpu_over_parse: parse_cpu_s
                .zip(run_cpu_s)
                .filter(|&(parse, _)| parse > 0.0)
                .map(|(parse, run)| parse / run.max(1e-9)),
            run_thread_cpu_s,
            busiest_thread,
            epochs,
            tasks_moved,
            accepted,
            rounds,
        });
    }
    folder.finish();
    let changing = scenarios[0].run_over_parse;
    let steady = scenarios[1].run_samples_per_s_per_worker;
    Ok(IngestReport {
        devices,
        workers: args.workers,
        model: args.model.clone(),
        log: args.log.clone(),
        io_threads: crate::run::io_threads_pay(),
        target_run_over_parse: Target {
            target: "run >= 50% of the bare parse's samples/s (changing)",
            measured: changing,
            met: changing >= 0.5,
        },
        target_steady_rate: Target {
            target: ">= 2M samples/s per worker when no output changes (steady)",
            measured: steady,
            met: steady >= 2e6,
        },
        scenarios,
    })
}

/// One RSS reading of the soak, with the samples fed by then.
#[derive(Clone, Debug, Serialize)]
pub struct SoakReading {
    /// Metric samples fed (every series reports at every timestamp up to this one).
    pub samples: u64,
    /// Epochs processed.
    pub epochs: u64,
    /// VmRSS, MiB.
    pub rss_mib: Option<f64>,
}

/// What `augur bench soak` measured.
#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    /// Samples in the metric log.
    pub samples: u64,
    /// Events in the event log.
    pub events: u64,
    /// Workflows those events run.
    pub workflows: u64,
    /// Devices.
    pub devices: usize,
    /// Worker threads.
    pub workers: usize,
    /// Seconds to write the inputs.
    pub generate_s: f64,
    /// Seconds of the whole `run`.
    pub run_s: f64,
    /// Samples per second through `run`.
    pub samples_per_s: f64,
    /// Epochs processed.
    pub epochs: u64,
    /// RSS along the run.
    pub readings: Vec<SoakReading>,
    /// The reading nearest `compare_at` samples.
    pub rss_at_compare_mib: Option<f64>,
    /// The last reading.
    pub rss_at_end_mib: Option<f64>,
    /// Peak RSS of the process (includes generating nothing: inputs are written first).
    pub peak_rss_mib: Option<f64>,
    /// End over compare: about 1 when memory is flat.
    pub end_over_compare: Option<f64>,
    /// Records read, accepted and rejected per input, and whether they add up and match what
    /// was written.
    pub accounted: bool,
    /// Metric records accepted.
    pub samples_accepted: u64,
    /// Events accepted.
    pub events_accepted: u64,
    /// RSS at the end within 5% of RSS at `compare_at` samples.
    pub target_memory_flat: Option<bool>,
}

/// Runs `augur bench soak`.
pub fn run_soak(
    args: &SoakArgs,
    progress: &mut dyn FnMut(&str),
) -> Result<SoakReport, IngestError> {
    let pick = |given: Option<u64>, full: u64, smoke: u64| {
        given.unwrap_or(if args.smoke { smoke } else { full })
    };
    let samples = pick(args.samples, 10_000_000, 200_000);
    let events = pick(args.events, 1_000_000, 20_000);
    let devices = pick(args.devices.map(|d| d as u64), 200, 20) as usize;
    // Not given, it is inside the run whatever --samples says (a tenth of it at most).
    let compare_at = args
        .compare_at
        .unwrap_or_else(|| pick(None, 1_000_000, 20_000).min(samples / 10).max(1));
    if devices == 0 || samples == 0 || args.workers == 0 {
        return Err(IngestError::Options(
            "samples, devices and workers must be positive".into(),
        ));
    }
    if compare_at >= samples {
        // The default --compare-at (1,000,000) is what a small --samples runs into.
        return Err(IngestError::Options(format!(
            "--compare-at ({compare_at}) must be below --samples ({samples}): the RSS at \
             --compare-at samples is compared with the RSS at the end"
        )));
    }
    let folder = Folder::new(args.dir.as_deref(), "soak")?;
    let generated = Instant::now();
    let platform = folder.path.join("platform.toml");
    write_platform(&platform, devices)?;
    let timestamps = samples.div_ceil(devices as u64);
    let span_s = timestamps * STEP_S;
    progress(&format!(
        "writing {samples} samples over {devices} devices ({} days of event time)",
        span_s / 86_400
    ));
    let metrics = folder.path.join("metrics.csv");
    write_cpu_walk(&metrics, devices, samples)?;
    progress(&format!("writing about {events} task events"));
    let plan = EventPlan::new(events, span_s, devices);
    let workflows = plan.write_workflows(&folder.path)?;
    let events_path = folder.path.join("events.jsonl");
    let events_written = plan.write_events(&events_path)?;
    let generate_s = generated.elapsed().as_secs_f64();

    let mut run_args = base_args(&folder.path.join("out"), args.workers);
    run_args.workflows = workflows;
    run_args.platform = Some(platform);
    run_args.metrics = vec![metrics.clone()];
    run_args.events = vec![events_path.clone()];
    // Event epochs fall between the metric timestamps; about 200 readings over the run.
    let epochs_estimate = timestamps + events_written;
    run_args.memory_every = (epochs_estimate / 200).max(1);
    run_args.quiet = false;
    progress("running augur run over them");
    let started = Instant::now();
    let outcome = run_once(&run_args)?;
    let run_s = started.elapsed().as_secs_f64();

    let readings: Vec<SoakReading> = outcome
        .summary
        .memory
        .iter()
        .map(|reading| {
            let time_s = reading.time.as_f64().unwrap_or(START_S as f64);
            let stamps = ((time_s - START_S as f64) / STEP_S as f64).floor().max(0.0) as u64 + 1;
            SoakReading {
                samples: (stamps * devices as u64).min(samples),
                epochs: reading.epochs,
                rss_mib: reading.rss_mib,
            }
        })
        .collect();
    let at_compare = readings
        .iter()
        .min_by_key(|reading| reading.samples.abs_diff(compare_at))
        .and_then(|reading| reading.rss_mib);
    let at_end = readings.last().and_then(|reading| reading.rss_mib);
    let end_over_compare = match (at_compare, at_end) {
        (Some(compare), Some(end)) if compare > 0.0 => Some(end / compare),
        _ => None,
    };
    let input = |path: &Path| outcome.summary.inputs.get(&path.display().to_string());
    let samples_accepted = input(&metrics).map_or(0, |i| i.accepted);
    let events_accepted = input(&events_path).map_or(0, |i| i.accepted);
    let adds_up = outcome
        .summary
        .inputs
        .values()
        .all(|i| i.read == i.accepted + i.rejected);
    let accounted = adds_up
        && samples_accepted == samples
        && events_accepted == events_written
        && outcome.summary.rejected_lines == 0;
    folder.finish();
    Ok(SoakReport {
        samples,
        events: events_written,
        workflows: plan.workflows,
        devices,
        workers: args.workers,
        generate_s,
        run_s,
        samples_per_s: samples as f64 / run_s.max(1e-9),
        epochs: outcome.summary.epochs,
        readings,
        rss_at_compare_mib: at_compare,
        rss_at_end_mib: at_end,
        peak_rss_mib: outcome.summary.peak_rss_mib,
        end_over_compare,
        accounted,
        samples_accepted,
        events_accepted,
        target_memory_flat: end_over_compare.map(|ratio| ratio <= 1.05),
    })
}

/// `augur run` flags with nothing to read yet, writing to `out`.
fn base_args(out: &Path, workers: usize) -> RunArgs {
    RunArgs {
        workflows: Vec::new(),
        platform: None,
        metrics: Vec::new(),
        format: "long".to_string(),
        maps: Vec::new(),
        events: Vec::new(),
        config: None,
        lateness: None,
        policy: None,
        out: out.to_path_buf(),
        workers,
        processes: 1,
        process: 0,
        hostfile: None,
        connect_timeout: 30.0,
        peer_timeout: 60.0,
        strict: false,
        quiet: true,
        memory_every: 0,
        report: false,
        checkpoint: None,
        checkpoint_every: None,
        resume: false,
    }
}

/// What one round of a scenario measured.
struct Round {
    parse_s: f64,
    parse_cpu_s: Option<f64>,
    run_s: f64,
    run_cpu_s: Option<f64>,
    run_thread_cpu_s: BTreeMap<String, f64>,
    busiest_thread: Option<BusiestThread>,
    epochs: u64,
    tasks_moved: u64,
    accepted: u64,
}

impl Round {
    fn run_over_parse(&self) -> f64 {
        self.parse_s / self.run_s.max(1e-9)
    }
}

/// A bare parse of `log`, then `run` over it.
fn measure_round(log: &Path, samples: u64, run_args: &RunArgs) -> Result<Round, IngestError> {
    let cpu_before = process_cpu_s();
    let started = Instant::now();
    let parsed = bare_parse(log);
    let parse_s = started.elapsed().as_secs_f64();
    let parse_cpu_s = process_cpu_s()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    if parsed != samples {
        return Err(IngestError::Run(format!(
            "the parser read {parsed} samples of {samples}"
        )));
    }
    let cpu_before = process_cpu_s();
    let watch = ThreadCpu::start();
    let started = Instant::now();
    let outcome = run_once(run_args);
    let run_s = started.elapsed().as_secs_f64();
    let run_thread_cpu_s = watch.map(ThreadCpu::finish).unwrap_or_default();
    let outcome = outcome?;
    let run_cpu_s = process_cpu_s()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let accepted = outcome
        .summary
        .inputs
        .get(&log.display().to_string())
        .map_or(0, |input| input.accepted);
    Ok(Round {
        parse_s,
        parse_cpu_s,
        run_s,
        busiest_thread: BusiestThread::of(&run_thread_cpu_s, run_s),
        run_cpu_s,
        run_thread_cpu_s,
        epochs: outcome.summary.epochs,
        tasks_moved: outcome.summary.tasks_moved,
        accepted,
    })
}

/// The index of the round whose run / parse is the median (the lower middle one of an even
/// count); 0 for none.
fn median_round(rounds: &[Round]) -> usize {
    let mut order: Vec<usize> = (0..rounds.len()).collect();
    order.sort_by(|&a, &b| {
        rounds[a]
            .run_over_parse()
            .total_cmp(&rounds[b].run_over_parse())
    });
    order
        .get(rounds.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
}

fn run_once(args: &RunArgs) -> Result<RunOutcome, IngestError> {
    let config = run_config(args).map_err(|error| IngestError::Config(error.to_string()))?;
    run(&config)
        .map_err(|error| IngestError::Run(error.to_string()))?
        .ok_or(IngestError::NoOutcome)
}

/// User and system CPU seconds of this process so far, all threads (`/proc/self/stat`, in
/// Linux's fixed 100 ticks per second); `None` where there is no such file.
fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, ticks) = crate::thread_cpu::parse_stat(&stat)?;
    Some(ticks as f64 / crate::thread_cpu::TICKS_PER_S)
}

/// Samples the parser alone reads from a `long` log.
fn bare_parse(path: &Path) -> u64 {
    match MetricReader::open(path, MetricFormat::Long, &MetricOptions::default()) {
        Ok(reader) => reader.map(|outcome| outcome.records.len() as u64).sum(),
        Err(_) => 0,
    }
}

/// Where the generated inputs live: the given folder (kept), or a temporary one (removed).
struct Folder {
    path: PathBuf,
    remove: bool,
}

impl Folder {
    fn new(dir: Option<&Path>, name: &str) -> Result<Folder, IngestError> {
        let (path, remove) = match dir {
            Some(dir) => {
                if let Some(reason) = crate::cli::not_an_output_folder(dir) {
                    return Err(IngestError::Options(format!("--dir: {reason}")));
                }
                (dir.to_path_buf(), false)
            }
            None => {
                // Unique within the process too: two benches in one process (tests) must not
                // share a folder that the first to finish removes.
                static NEXT: AtomicU64 = AtomicU64::new(0);
                let serial = NEXT.fetch_add(1, Ordering::Relaxed);
                let folder = format!("augur-bench-{name}-{}-{serial}", std::process::id());
                (std::env::temp_dir().join(folder), true)
            }
        };
        std::fs::create_dir_all(&path).map_err(|source| IngestError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(Folder { path, remove })
    }

    fn finish(self) {
        if self.remove {
            // A leftover temporary folder is untidy, not a failure of the benchmark.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn create(path: &Path) -> Result<BufWriter<File>, IngestError> {
    File::create(path)
        .map(|file| BufWriter::with_capacity(1 << 20, file))
        .map_err(|source| IngestError::Write {
            path: path.to_path_buf(),
            source,
        })
}

fn write_file(path: &Path, text: &str) -> Result<(), IngestError> {
    std::fs::write(path, text).map_err(|source| IngestError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn written(path: &Path) -> impl Fn(std::io::Error) -> IngestError + '_ {
    move |source| IngestError::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn device_name(index: usize) -> String {
    format!("d{index:05}")
}

/// Devices of four sizes, all reachable at 10 Gb/s.
fn write_platform(path: &Path, devices: usize) -> Result<(), IngestError> {
    let mut text = String::new();
    for index in 0..devices {
        let size = [8, 16, 32, 64][index % 4];
        text.push_str(&format!(
            "[[device]]\nid = \"{}\"\ncores = {size}\nmemory_gib = {}\nspeed = 1.0\nnetwork_gbps = 10\n\n",
            device_name(index),
            size * 4
        ));
    }
    write_file(path, &text)
}

/// A WfFormat 1.5 workflow of `tasks` tasks, task `i` reading the output of task `(i-1)/2`.
fn write_workflow(path: &Path, name: &str, tasks: usize) -> Result<(), IngestError> {
    let spec: Vec<serde_json::Value> = (0..tasks)
        .map(|index| {
            let parents: Vec<String> = if index == 0 {
                Vec::new()
            } else {
                vec![format!("t{}", (index - 1) / 2)]
            };
            serde_json::json!({"name": format!("t{index}"), "id": format!("t{index}"),
                "parents": parents, "children": [], "inputFiles": [], "outputFiles": []})
        })
        .collect();
    let exec: Vec<serde_json::Value> = (0..tasks)
        .map(|index| {
            serde_json::json!({"id": format!("t{index}"), "runtimeInSeconds": 1.0 + (index % 7) as f64,
                "coreCount": 1 + index % 4})
        })
        .collect();
    let document = serde_json::json!({
        "name": name, "schemaVersion": "1.5",
        "workflow": {"specification": {"tasks": spec, "files": []},
                     "execution": {"makespanInSeconds": 1.0, "executedAt": "20240101T000000+0000",
                                   "tasks": exec, "machines": []}}
    });
    write_file(path, &document.to_string())
}

/// splitmix64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1)`.
    fn symmetric(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// `samples` cpu and memory readings, one per series per timestamp, as `long` CSV or JSONL:
/// random walks, or (`steady`) each series at a constant level.
fn write_metrics(
    path: &Path,
    devices: usize,
    samples: u64,
    steady: bool,
    jsonl: bool,
) -> Result<(), IngestError> {
    let mut out = create(path)?;
    let error = written(path);
    if !jsonl {
        out.write_all(b"time,device,resource,value\n")
            .map_err(&error)?;
    }
    let mut rng = Rng(0x1A6E_57ED);
    let names: Vec<String> = (0..devices).map(device_name).collect();
    let mut level: Vec<f64> = (0..devices * 2)
        .map(|i| 0.2 + 0.6 * (i % 10) as f64 / 10.0)
        .collect();
    let mut left = samples;
    let mut time = START_S;
    'outer: loop {
        for (series, value) in level.iter_mut().enumerate() {
            if left == 0 {
                break 'outer;
            }
            left -= 1;
            if !steady {
                *value = (*value + 0.03 * rng.symmetric()).clamp(0.0, 1.0);
            }
            let device = &names[series / 2];
            let resource = if series % 2 == 0 { "cpu" } else { "memory" };
            if jsonl {
                writeln!(
                    out,
                    "{{\"time\":{time},\"device\":\"{device}\",\"resource\":\"{resource}\",\"value\":{value:.4}}}"
                )
            } else {
                writeln!(out, "{time},{device},{resource},{value:.4}")
            }
            .map_err(&error)?;
        }
        time += STEP_S;
    }
    out.flush().map_err(&error)
}

/// `samples` cpu readings, every device at every timestamp, each a random walk.
fn write_cpu_walk(path: &Path, devices: usize, samples: u64) -> Result<(), IngestError> {
    let mut out = create(path)?;
    let error = written(path);
    out.write_all(b"time,device,resource,value\n")
        .map_err(&error)?;
    let mut rng = Rng(0x50A4);
    let names: Vec<String> = (0..devices).map(device_name).collect();
    let mut level: Vec<f64> = (0..devices).map(|i| 0.1 + 0.08 * (i % 10) as f64).collect();
    let mut left = samples;
    let mut time = START_S;
    while left > 0 {
        for (device, value) in level.iter_mut().enumerate() {
            if left == 0 {
                break;
            }
            left -= 1;
            *value = (*value + 0.02 * rng.symmetric()).clamp(0.0, 1.0);
            writeln!(out, "{time},{},cpu,{value:.4}", names[device]).map_err(&error)?;
        }
        time += STEP_S;
    }
    out.flush().map_err(&error)
}

/// Tasks per generated workflow.
const TASKS_PER_WORKFLOW: u64 = 100;

/// Seconds between a task's start and its completion, and between one task's completion and
/// the next one's start.
const TASK_RUN_S: u64 = 3;

/// Workflows arriving evenly over the metric log's span; each runs its tasks one after another
/// (task order is topological), on devices in turn.
struct EventPlan {
    workflows: u64,
    span_s: u64,
    devices: usize,
}

impl EventPlan {
    fn new(events: u64, span_s: u64, devices: usize) -> EventPlan {
        let per_workflow = 1 + 2 * TASKS_PER_WORKFLOW;
        EventPlan {
            workflows: (events / per_workflow).max(1),
            span_s,
            devices,
        }
    }

    fn name(index: u64) -> String {
        format!("wf{index:06}")
    }

    fn arrival_s(&self, index: u64) -> u64 {
        let room = self
            .span_s
            .saturating_sub(2 * TASK_RUN_S * TASKS_PER_WORKFLOW + STEP_S);
        START_S + index * room / self.workflows
    }

    fn write_workflows(&self, dir: &Path) -> Result<Vec<PathBuf>, IngestError> {
        let dir = dir.join("workflows");
        std::fs::create_dir_all(&dir).map_err(written(&dir))?;
        (0..self.workflows)
            .map(|index| {
                let name = Self::name(index);
                let path = dir.join(format!("{name}.json"));
                write_workflow(&path, &name, TASKS_PER_WORKFLOW as usize)?;
                Ok(path)
            })
            .collect()
    }

    /// Writes the events in time order; returns how many.
    fn write_events(&self, path: &Path) -> Result<u64, IngestError> {
        let mut events: Vec<(u64, u64, u8, u64)> = Vec::new();
        for index in 0..self.workflows {
            let arrival = self.arrival_s(index);
            events.push((arrival, index, 0, 0));
            for task in 0..TASKS_PER_WORKFLOW {
                let start = arrival + 1 + 2 * TASK_RUN_S * task;
                events.push((start, index, 1, task));
                events.push((start + TASK_RUN_S, index, 2, task));
            }
        }
        events.sort_unstable();
        let mut out = create(path)?;
        let error = written(path);
        for &(time, index, kind, task) in &events {
            let workflow = Self::name(index);
            match kind {
                0 => writeln!(
                    out,
                    "{{\"time\":{time},\"kind\":\"arrival\",\"workflow\":\"{workflow}\"}}"
                ),
                1 => writeln!(
                    out,
                    "{{\"time\":{time},\"kind\":\"start\",\"workflow\":\"{workflow}\",\"task\":\"t{task}\",\"device\":\"{}\"}}",
                    device_name(((index + task) % self.devices as u64) as usize)
                ),
                _ => writeln!(
                    out,
                    "{{\"time\":{time},\"kind\":\"complete\",\"workflow\":\"{workflow}\",\"task\":\"t{task}\",\"duration\":{TASK_RUN_S}}}"
                ),
            }
            .map_err(&error)?;
        }
        out.flush().map_err(&error)?;
        Ok(events.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_smoke_reads_every_sample_in_both_scenarios() {
        let args = IngestArgs {
            samples: None,
            devices: None,
            workers: 1,
            model: "ewma".into(),
            log: "jsonl".into(),
            rounds: None,
            dir: None,
            smoke: true,
        };
        let report = run_ingest(&args, &mut |_| {}).expect("runs");
        assert_eq!(report.scenarios.len(), 2);
        // The smoke size runs one round unless --rounds says otherwise.
        assert!(report.scenarios.iter().all(|s| s.rounds.len() == 1));
        for scenario in &report.scenarios {
            assert_eq!(scenario.accepted, 40_000, "{scenario:?}");
            assert_eq!(scenario.epochs, 40_000 / 40, "{scenario:?}");
            assert!(scenario.run_over_parse > 0.0);
            // Where the task folder can be read, the worker is among the threads seen.
            if std::path::Path::new("/proc/self/task").is_dir() {
                assert!(
                    scenario.run_thread_cpu_s.contains_key("timely:work-0"),
                    "{:?}",
                    scenario.run_thread_cpu_s
                );
                assert!(scenario.busiest_thread.is_some());
            }
        }
        let steady = &report.scenarios[1];
        assert_eq!(steady.tasks_moved, 0, "a steady log moves nothing");
    }

    /// Every round is reported, and the scenario's figures are the median round's.
    #[test]
    fn rounds_are_all_reported_and_the_median_one_stands_for_the_scenario() {
        // --smoke with sizes given: the given ones stand.
        let args = IngestArgs {
            samples: Some(6_000),
            devices: Some(5),
            workers: 1,
            model: "ewma".into(),
            log: "csv".into(),
            rounds: Some(3),
            dir: None,
            smoke: true,
        };
        let report = run_ingest(&args, &mut |_| {}).expect("runs");
        for scenario in &report.scenarios {
            assert_eq!(scenario.rounds.len(), 3, "{scenario:?}");
            assert_eq!(scenario.accepted, 6_000);
            let mut ratios: Vec<f64> = scenario.rounds.iter().map(|r| r.run_over_parse).collect();
            ratios.sort_by(f64::total_cmp);
            assert_eq!(scenario.run_over_parse.to_bits(), ratios[1].to_bits());
            assert!(scenario
                .rounds
                .iter()
                .any(|r| r.parse_s == scenario.parse_s && r.run_s == scenario.run_s));
        }
    }

    fn round_with(parse_s: f64, run_s: f64) -> Round {
        Round {
            parse_s,
            parse_cpu_s: None,
            run_s,
            run_cpu_s: None,
            run_thread_cpu_s: BTreeMap::new(),
            busiest_thread: None,
            epochs: 0,
            tasks_moved: 0,
            accepted: 0,
        }
    }

    #[test]
    fn the_median_round_is_the_middle_ratio_or_the_lower_middle_one() {
        let rounds = [
            round_with(1.0, 4.0),
            round_with(1.0, 2.0),
            round_with(1.0, 8.0),
        ];
        assert_eq!(median_round(&rounds), 0);
        // Ratios 0.5 and 0.125: the lower one, the second round.
        assert_eq!(median_round(&rounds[1..]), 1);
        assert_eq!(median_round(&rounds[..1]), 0);
        assert_eq!(median_round(&[]), 0);
    }

    #[test]
    fn soak_smoke_accounts_for_every_record() {
        let args = SoakArgs {
            samples: None,
            events: None,
            devices: None,
            compare_at: None,
            workers: 1,
            dir: None,
            smoke: true,
        };
        let report = run_soak(&args, &mut |_| {}).expect("runs");
        assert!(report.accounted, "{report:?}");
        assert_eq!(report.samples_accepted, 200_000);
        assert_eq!(report.events, report.workflows * 201);
        assert!(report.readings.len() >= 100, "{}", report.readings.len());
        let last = report.readings.last().expect("readings");
        assert!(last.samples > 190_000, "{last:?}");
    }

    #[test]
    fn compare_at_must_be_inside_the_run() {
        let args = SoakArgs {
            samples: Some(1_000),
            events: Some(0),
            devices: Some(10),
            compare_at: Some(1_000),
            workers: 1,
            dir: None,
            smoke: false,
        };
        assert!(matches!(
            run_soak(&args, &mut |_| {}),
            Err(IngestError::Options(_))
        ));
    }
}
