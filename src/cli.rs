//! Command-line flags as parsed (raw), and their validation into a [`RunConfig`].

use crate::checkpoint::CheckpointConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;

use augur_dataflows::contention_forecast::{AnomalyPolicy, ForecastConfig};
use augur_dataflows::placement::{Hierarchy, PlacementConfig, Policy, Weights};
use augur_dataflows::types::Resource;
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::engine::Workers;
use crate::input::lines::line_limit;
use crate::input::metrics::MetricFormat;
use crate::run::RunConfig;
use crate::same_file::FileIndex;

/// augur places the tasks of workflow DAGs onto devices by predicted resource contention, and
/// keeps that placement current, incrementally, as metrics and task events stream in.
#[derive(Debug, Parser)]
#[command(name = "augur", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// augur's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Keep a partition map current over workflow, metric and event logs; write it to --out.
    Run(RunArgs),
    /// Run the bundled scenario in data/ end to end and print a readable summary.
    Demo(DemoArgs),
    /// Benchmark incremental repartitioning; prints JSON.
    Bench(BenchArgs),
    /// Rolling-origin evaluation of the forecasters on series files (MAE, sMAPE, MASE).
    Forecast(ForecastArgs),
    /// Anomaly scores per series, in the NAB results layout (and NAB's score with --labels).
    Anomalies(AnomaliesArgs),
    /// How well the task-duration model predicts real runtimes as completions arrive.
    Durations(DurationsArgs),
    /// Makespan against cost against energy of one workflow's plan, across objective weights.
    Pareto(crate::pareto::ParetoArgs),
    /// Closed-loop simulation of a cluster running workflows by each policy's placement.
    Simulate(SimulateArgs),
    /// Sample this host, scrape node_exporters or read Prometheus history into a metric file.
    Collect(crate::collect::CollectArgs),
    /// Run the engine continuously behind an HTTP API (workflows, metrics and events in; the
    /// map, predictions, scale-out advice and a Kubernetes scheduler extender out).
    Serve(crate::serve::ServeArgs),
}

/// Flags of `augur run`, as given.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// WfFormat workflow files (schema 1.4-1.6); each is known by its file stem.
    #[arg(long = "workflow", num_args = 1.., required = true, value_name = "FILE")]
    pub workflows: Vec<PathBuf>,
    /// Platform TOML (devices); without it the devices are the workflows' `machines`.
    #[arg(long, value_name = "FILE")]
    pub platform: Option<PathBuf>,
    /// Metric logs.
    #[arg(long = "metrics", num_args = 1.., value_name = "FILE")]
    pub metrics: Vec<PathBuf>,
    /// Format of the metric logs.
    #[arg(long, default_value = "long", value_parser = ["long", "nab", "bitbrains", "alibaba"])]
    pub format: String,
    /// For NAB files: which device and resource a file measures (repeatable).
    #[arg(long = "map", value_name = "FILE=DEVICE:RESOURCE")]
    pub maps: Vec<String>,
    /// Task-event logs (JSONL: arrival, start, complete).
    #[arg(long = "events", num_args = 1.., value_name = "FILE")]
    pub events: Vec<PathBuf>,
    /// TOML file of engine knobs (forecast, placement, lateness).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Out-of-order tolerance per input file, seconds [default: 60, or the config file's].
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    pub lateness: Option<f64>,
    /// Placement policy [default: predictive, or the config file's]: predictive (finish time on
    /// forecasts and learned durations), heft (finish time on static estimates), reactive (least
    /// loaded now), static (round robin), seed (least predicted contention plus load).
    #[arg(long, value_parser = ["predictive", "heft", "reactive", "static", "seed"])]
    pub policy: Option<String>,
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Worker threads (per process).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Number of processes (timely cluster mode).
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// This process's index, 0-based.
    #[arg(long, default_value_t = 0)]
    pub process: usize,
    /// File of `host:port` lines, one per process (default: localhost:2101, 2102, ...).
    #[arg(long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
    /// With --processes: seconds to wait for every other process to be connected before
    /// giving up with an error naming the missing one.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub connect_timeout: f64,
    /// With --processes: seconds a peer may send nothing during the run before this process
    /// gives it up as stopped, hung or unreachable and exits with an error naming it (0: wait
    /// for ever; else at least 2). Every process sends each peer a heartbeat every 0.5 s on a
    /// connection of its own, so a peer that is busy or has nothing to send is never silent.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub peer_timeout: f64,
    /// Make the first rejected record fatal.
    #[arg(long)]
    pub strict: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Read the resident set size every N epochs into summary.json's `memory` (soak runs).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub memory_every: u64,
    /// Also write DIR/report.html: per device, the utilisation sampled, its forecast with the
    /// error band, the anomaly alarms and the tasks mapped there over event time (a few
    /// thousand points per line however long the run; the first 200 devices).
    #[arg(long)]
    pub report: bool,
    /// Checkpoint folder: the run writes a checkpoint there (model state, partition map,
    /// input positions, output lengths) every --checkpoint-every epochs.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// Epochs (distinct event times) between checkpoints [default: 1000].
    #[arg(long, value_name = "N", requires = "checkpoint")]
    pub checkpoint_every: Option<u64>,
    /// Resume from the latest checkpoint in --checkpoint DIR (same inputs and settings; any
    /// number of workers): outputs are cut back to the checkpoint and continued.
    #[arg(long, requires = "checkpoint")]
    pub resume: bool,
}

/// Flags of `augur demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Output folder.
    #[arg(long, default_value = "out/demo", value_name = "DIR")]
    pub out: PathBuf,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Placement policy (as for `run`).
    #[arg(long, value_parser = ["predictive", "heft", "reactive", "static", "seed"])]
    pub policy: Option<String>,
}

/// Flags of `augur bench`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// A small size that finishes in seconds (for CI).
    #[arg(long)]
    pub smoke: bool,
    /// Devices [default: 1000, smoke 50].
    #[arg(long)]
    pub devices: Option<usize>,
    /// Pending tasks [default: 100000, smoke 2000].
    #[arg(long)]
    pub tasks: Option<usize>,
    /// Capability classes the devices fall into [default: 8, smoke 4; at most the devices].
    #[arg(long)]
    pub classes: Option<usize>,
    /// Epochs with one metric change each [default: 10000, smoke 300, large 2000].
    #[arg(long)]
    pub single_epochs: Option<usize>,
    /// Epochs with many metric changes each [default: 200, smoke 20, large 100].
    #[arg(long)]
    pub batch_epochs: Option<usize>,
    /// Metric changes per batch epoch, on distinct devices [default: 1000, smoke 50; with
    /// --devices alone, at most the devices].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Total epochs at which to read RSS, comma-separated; the run lasts at least until the
    /// largest (longer where the phases take more epochs) [default: 10000,1000000, smoke 300,3000, large 2000,20000].
    #[arg(long, value_delimiter = ',')]
    pub rss_at: Option<Vec<u64>>,
    /// Worker threads.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Independent tasks only (no DAG edges), so no task waits on a parent or its data.
    #[arg(long)]
    pub independent: bool,
    /// Placement policy measured.
    #[arg(long, default_value = "predictive", value_parser = ["predictive", "heft", "reactive", "static", "seed"])]
    pub policy: String,
    /// The large size: 12,500 devices, 1,000,000 tasks, 2,000 single changes, 100 batches.
    #[arg(long, conflicts_with = "smoke")]
    pub large: bool,
    /// Hierarchical placement of the initial batch, as `[placement] hierarchy` [default: auto,
    /// from 50,000 tasks].
    #[arg(long, value_parser = ["auto", "on", "off"])]
    pub hierarchy: Option<String>,
    /// Number of processes (timely cluster mode); only process 0 prints the report.
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// This process's index, 0-based.
    #[arg(long, default_value_t = 0)]
    pub process: usize,
    /// File of `host:port` lines, one per process (default: localhost:2101, 2102, ...).
    #[arg(long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
    /// Another benchmark than incremental repartitioning.
    #[command(subcommand)]
    pub kind: Option<BenchKind>,
}

/// The benchmarks other than incremental repartitioning.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchKind {
    /// Metric ingest through `run`: samples/s per worker, and against a bare parse of the same
    /// log in the same run; prints JSON.
    Ingest(crate::bench_ingest::IngestArgs),
    /// Soak: millions of metric samples and task events through `run`; RSS along the way and
    /// the accounting of every record; prints JSON.
    Soak(crate::bench_ingest::SoakArgs),
    /// The finish-time map of WfFormat workflows on a platform in one batch, flat or
    /// hierarchical: initial map time, predicted makespan, bytes moved, peak RSS; prints JSON.
    Workflow(crate::bench_workflow::WorkflowArgs),
}

/// Which series files to read, and how (shared by `augur forecast` and `augur anomalies`).
#[derive(Debug, Clone, Args)]
pub struct SeriesArgs {
    /// Series files.
    #[arg(long = "series", num_args = 1.., required = true, value_name = "FILE")]
    pub series: Vec<PathBuf>,
    /// Format of the series files.
    #[arg(long, default_value = "nab", value_parser = ["nab", "bitbrains", "alibaba", "long"])]
    pub format: String,
    /// Value column (Bitbrains default 'CPU usage [%]', Alibaba default 'cpu_util_percent');
    /// for `long` files, the resource to read (default: every resource, one series each).
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
}

/// Flags of `augur forecast`: a rolling-origin evaluation of the forecasters on series files,
/// with the protocol of `../shared/peers/forecast_eval.py`.
#[derive(Debug, Clone, Args)]
pub struct ForecastArgs {
    /// The series to read.
    #[command(flatten)]
    pub input: SeriesArgs,
    /// Steps ahead to score.
    #[arg(long, default_value = "1,6,12", value_delimiter = ',')]
    pub horizons: Vec<u32>,
    /// Points at the end of each series that form the test region (1 to 100,000,000).
    #[arg(long, default_value_t = 1008,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000_000))]
    pub test_size: usize,
    /// Model to evaluate.
    #[arg(long, default_value = "auto", value_parser = ["auto", "ewma", "holt", "hw", "ar", "median", "all"])]
    pub model: String,
    /// Season length in steps for Holt-Winters, 2 to 100000 [default: detected per series].
    #[arg(long, value_name = "STEPS",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..=100_000))]
    pub season: Option<usize>,
    /// One JSON line per series x model x horizon instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Update the model at every point before the test region instead of catching it up
    /// (slower; every single model forecasts the same to the bit, `auto` all but the same).
    #[arg(long)]
    pub full_replay: bool,
}

/// Flags of `augur anomalies`: anomaly scores per series in the NAB results layout.
#[derive(Debug, Clone, Args)]
pub struct AnomaliesArgs {
    /// The series to read.
    #[command(flatten)]
    pub input: SeriesArgs,
    /// NAB label windows (combined_windows.json) for the `label` column and the score report.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Output folder: `DIR/augur/<category>/augur_<file>.csv`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Flags of `augur durations`: how well the task-duration model predicts real runtimes as
/// completions arrive.
#[derive(Debug, Clone, Args)]
pub struct DurationsArgs {
    /// WfFormat workflow files whose tasks' real runtimes are replayed as completions.
    #[arg(long = "workflow", num_args = 1.., required = true, value_name = "FILE")]
    pub workflows: Vec<PathBuf>,
    /// Completions of a task type after which predictions are scored.
    #[arg(long, default_value_t = 5)]
    pub after: usize,
    /// One JSON line per workflow and task type instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `augur simulate`: a discrete-event simulation of a heterogeneous cluster that runs
/// each workflow by the placement the dataflow keeps current, under each policy.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// WfFormat workflow files, each simulated on its own.
    #[arg(long = "workflow", num_args = 1.., required = true, value_name = "FILE")]
    pub workflows: Vec<PathBuf>,
    /// Platform TOML, or a SAGA network JSON (../shared/peers/networks/*.json); without it the
    /// devices are the workflow's `machines`.
    #[arg(long, value_name = "FILE")]
    pub platform: Option<PathBuf>,
    /// Background utilisation traces: trace i loads device i (cycling), shifted to start with
    /// the simulation.
    #[arg(long = "background", num_args = 1.., value_name = "FILE")]
    pub background: Vec<PathBuf>,
    /// Format of the background traces.
    #[arg(long, default_value = "nab", value_parser = ["nab", "bitbrains", "alibaba", "long"])]
    pub background_format: String,
    /// Which policies to run.
    #[arg(long, default_value = "all", value_parser = ["all", "predictive", "heft", "reactive", "static", "seed"])]
    pub policy: String,
    /// Seed: 0 starts each trace at its beginning; any other value at a seeded point of it.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rescale every link so that mean transfer over mean compute time is this ratio (as SAGA's
    /// scale_to_ccr and saga_makespan.py --ccr), from 1e-6 to 1e6.
    #[arg(long, value_name = "X")]
    pub ccr: Option<f64>,
    /// One JSON line per workflow x policy instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write a self-contained HTML report (Gantt charts, utilisation, comparison table).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// TOML of engine knobs, as for `run` (`[forecast]`, `[placement]`, `[anomaly]`; the
    /// policy comes from `--policy`; on one-task-per-node platforms the capacity target is off).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Diagnostic: write each run's tasks (times, devices), each device's background every
    /// second and the published forecasts to DIR/WORKFLOW-POLICY.json.
    #[arg(long, value_name = "DIR")]
    pub trace_tasks: Option<PathBuf>,
    /// Diagnostic: `heft` plans with the actual future background of every device (what a
    /// perfect contention forecast could give a static plan: a bound, not a policy).
    #[arg(long)]
    pub heft_knows_background: bool,
}

/// Validates `augur simulate`'s flags.
pub fn simulate_config(
    args: &SimulateArgs,
) -> Result<crate::simulate::SimConfig, crate::simulate::SimError> {
    use crate::simulate::SimError;
    let flag = |flag: &'static str, reason: String| SimError::Flag { flag, reason };
    crate::series::check_distinct(&args.workflows).map_err(|r| flag("--workflow", r))?;
    crate::series::check_distinct(&args.background).map_err(|r| flag("--background", r))?;
    for (name, paths) in [
        ("--workflow", &args.workflows[..]),
        ("--background", &args.background[..]),
        ("--platform", args.platform.as_slice()),
    ] {
        if let Some(reason) = paths.iter().find_map(|path| not_an_input_file(path)) {
            return Err(flag(name, reason));
        }
    }
    if let Some(reason) = args.report.as_deref().and_then(not_an_output_file) {
        return Err(flag("--report", reason));
    }
    if let Some(reason) = args.trace_tasks.as_deref().and_then(not_an_output_folder) {
        return Err(flag("--trace-tasks", reason));
    }
    if let Some(ccr) = args.ccr {
        // SAGA's sweeps go from 0.1 to 10; past a million every transfer outweighs all the
        // computing a million times over, and 1e300 printed 300-digit makespans.
        if !(MIN_CCR..=MAX_CCR).contains(&ccr) {
            return Err(flag(
                "--ccr",
                format!(
                    "must be within {}..={}, not {}",
                    short_number(MIN_CCR),
                    short_number(MAX_CCR),
                    short_number(ccr)
                ),
            ));
        }
    }
    let background_format = args
        .background_format
        .parse()
        .map_err(|r| flag("--background-format", r))?;
    let file = match &args.config {
        Some(path) => read_config_file(path).map_err(|e| flag("--config", e.to_string()))?,
        None => ConfigFile::default(),
    };
    let (forecast, placement) =
        engine_knobs(&file, None).map_err(|e| flag("--config", e.to_string()))?;
    Ok(crate::simulate::SimConfig {
        lockstep: false,
        workflows: args.workflows.clone(),
        platform: args.platform.clone(),
        background: args.background.clone(),
        background_format,
        policies: crate::simulate::policies(&args.policy)?,
        seed: args.seed,
        ccr: args.ccr,
        forecast,
        placement,
        progress: true,
        trace_tasks: args.trace_tasks.clone(),
        heft_knows_background: args.heft_knows_background,
    })
}

/// A flag combination that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag's value is unusable.
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// The config file is unusable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The `--config` TOML file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Out-of-order tolerance per input file, seconds.
    pub lateness_s: Option<f64>,
    /// Longest accepted input line, bytes.
    pub max_line_bytes: Option<usize>,
    /// Forecast knobs.
    #[serde(default)]
    pub forecast: ForecastFile,
    /// Placement knobs.
    #[serde(default)]
    pub placement: PlacementFile,
    /// What anomalous devices cost in placement.
    #[serde(default)]
    pub anomaly: AnomalyFile,
}

/// `[anomaly]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyFile {
    /// `penalise` (default), `exclude` or `ignore`.
    pub mode: Option<String>,
    /// With `penalise`: how much contention an anomalous device gains, as a fraction of capacity.
    pub penalty: Option<f64>,
}

/// `[forecast]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastFile {
    /// The model of each series: auto, ewma, holt, hw, ar or median.
    pub model: Option<String>,
    /// Holt-Winters' season in samples (default: detected).
    pub season: Option<usize>,
    /// The metrics' sampling interval in seconds, when known (default: estimated from the
    /// samples). Known up front, each series keeps a window of three days at that step (up to
    /// 4,608 values), so daily seasons are found at 1-minute sampling too.
    pub interval_s: Option<f64>,
    /// AR order.
    pub ar_order: Option<usize>,
    /// Predicted contention is the mean forecast over this many seconds.
    pub horizon_s: Option<f64>,
    /// Risk weight: contention = mean + risk × sigma of the forecast error.
    pub risk: Option<f64>,
    /// Forecasts are rounded to multiples of this fraction of capacity.
    pub quantum: Option<f64>,
    /// Dynamic granularity: the coarser quantum used far from congestion, (0, 1].
    pub coarse_quantum: Option<f64>,
    /// Utilisation from which a series is published at the fine quantum again, [0, 10].
    pub refine_above: Option<f64>,
}

/// `[placement]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementFile {
    /// The placement policy (as `--policy`).
    pub policy: Option<String>,
    /// Relative improvement a move must bring, [0, 10].
    pub hysteresis: Option<f64>,
    /// Predicted utilisation above which a device takes no more tasks while another has room,
    /// (0, 10].
    pub capacity_target: Option<f64>,
    /// How much better an alternative of a task must score before the map re-sculpts it,
    /// [0, 10].
    pub resculpt_margin: Option<f64>,
    /// Predicted contention at or above which a device's queued tasks may run out of placement
    /// order, [0, 10].
    pub reorder_contention: Option<f64>,
    /// What each objective is worth (finish-time policies).
    #[serde(default)]
    pub weights: WeightsFile,
    /// Hierarchical placement of huge arrival batches: "auto" (default), "on" or "off".
    pub hierarchy: Option<String>,
    /// With "auto": the fewest new tasks in one batch that are placed hierarchically.
    pub hierarchy_min_tasks: Option<usize>,
}

/// `[placement.weights]` of the config file: each weight in [0, 1e9].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsFile {
    /// Per second of predicted finish time.
    pub latency: Option<f64>,
    /// Per unit of the platform's currency.
    pub cost: Option<f64>,
    /// Per kilojoule.
    pub energy: Option<f64>,
    /// Per gigabyte moved between devices.
    pub locality: Option<f64>,
}

/// Reads and validates a config file.
pub fn read_config_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    let error = |reason: String| ConfigError::File {
        path: path.to_path_buf(),
        reason,
    };
    let text =
        crate::input::regular::read_regular_string(path).map_err(|e| error(e.to_string()))?;
    toml::from_str(&text).map_err(|e| error(e.to_string()))
}

pub use crate::input::short_number;

fn in_range(flag: &'static str, value: f64, low: f64, high: f64) -> Result<f64, ConfigError> {
    if value.is_finite() && value >= low && value <= high {
        Ok(value)
    } else {
        Err(ConfigError::Flag {
            flag,
            reason: format!(
                "{} is not within [{}, {}]",
                short_number(value),
                short_number(low),
                short_number(high)
            ),
        })
    }
}

/// The largest `simulate --ccr`.
pub const MAX_CCR: f64 = 1e6;
/// The smallest: at 5e-324 the rescaled bandwidths overflowed to infinity and the platform
/// was refused as having no usable link, an input error for what is a flag's.
pub const MIN_CCR: f64 = 1e-6;

/// Validates `run` flags (and the config file they name) into a [`RunConfig`].
pub fn run_config(args: &RunArgs) -> Result<RunConfig, ConfigError> {
    let file = match &args.config {
        Some(path) => {
            // Worded as every other command's missing input is.
            if let Some(reason) = not_an_input_file(path) {
                return Err(ConfigError::Flag {
                    flag: "--config",
                    reason,
                });
            }
            read_config_file(path)?
        }
        None => ConfigFile::default(),
    };
    let format: MetricFormat = args.format.parse().map_err(|reason| ConfigError::Flag {
        flag: "--format",
        reason,
    })?;
    check_inputs(args)?;
    let maps = args
        .maps
        .iter()
        .map(|map| parse_map(map))
        .collect::<Result<Vec<_>, _>>()?;
    if !maps.is_empty() && format != MetricFormat::Nab {
        return Err(ConfigError::Flag {
            flag: "--map",
            reason: format!(
                "only NAB files need a map (the {} format names its devices itself)",
                args.format
            ),
        });
    }
    let mut mapped = FileIndex::new();
    for (file, _, _) in &maps {
        if mapped.same_as(file).is_some() {
            return Err(ConfigError::Flag {
                flag: "--map",
                reason: format!("{} is mapped twice", file.display()),
            });
        }
        mapped.insert(file, ());
    }
    // A map for a file that is not read is a typo for one that is (a path written differently
    // from --metrics' canonicalises to the same file and is fine).
    let read = FileIndex::of(args.metrics.iter().map(PathBuf::as_path));
    if let Some((file, _, _)) = maps
        .iter()
        .find(|(file, _, _)| read.same_as(file).is_none())
    {
        return Err(ConfigError::Flag {
            flag: "--map",
            reason: format!("{} is not one of the --metrics files", file.display()),
        });
    }
    if format == MetricFormat::Nab {
        for path in &args.metrics {
            if mapped.same_as(path).is_none() {
                return Err(ConfigError::Flag {
                    flag: "--map",
                    reason: format!(
                        "NAB file {} needs --map {}=DEVICE:RESOURCE",
                        path.display(),
                        path.display()
                    ),
                });
            }
        }
    }
    // A bad value is named where the user wrote it: the flag, or else the config file's key.
    let (lateness_source, lateness_s) = match (args.lateness, file.lateness_s) {
        (Some(seconds), _) => ("--lateness", seconds),
        (None, Some(seconds)) => ("lateness_s", seconds),
        (None, None) => ("--lateness", 60.0),
    };
    let lateness_s = in_range(lateness_source, lateness_s, 0.0, 1e9)?;
    let (forecast, placement) = engine_knobs(&file, args.policy.clone())?;
    if args.workers == 0 || args.workers > 1024 {
        return Err(ConfigError::Flag {
            flag: "--workers",
            reason: "must be between 1 and 1024".into(),
        });
    }
    if args.processes == 0 || args.processes > 1024 {
        return Err(ConfigError::Flag {
            flag: "--processes",
            reason: "must be between 1 and 1024".into(),
        });
    }
    if args.process >= args.processes {
        return Err(ConfigError::Flag {
            flag: "--process",
            reason: format!("must be below --processes ({})", args.processes),
        });
    }
    // Checked with or without --processes, so that a bad value is never accepted silently.
    if args.peer_timeout != 0.0 {
        in_range("--peer-timeout", args.peer_timeout, 2.0, 86_400.0)?;
    }
    let workers = if args.processes > 1 {
        if args.process >= args.processes {
            return Err(ConfigError::Flag {
                flag: "--process",
                reason: format!("must be below --processes ({})", args.processes),
            });
        }
        Workers::Cluster {
            threads: args.workers,
            process: args.process,
            addresses: hosts(args.hostfile.as_deref(), args.processes)?,
            connect_timeout: Duration::from_secs_f64(in_range(
                "--connect-timeout",
                args.connect_timeout,
                0.1,
                86_400.0,
            )?),
            peer_timeout: if args.peer_timeout == 0.0 {
                None
            } else {
                Some(Duration::from_secs_f64(in_range(
                    "--peer-timeout",
                    args.peer_timeout,
                    2.0,
                    86_400.0,
                )?))
            },
            // Set by the run from its settings and inputs (`Workers::agreeing_on`).
            agreement: crate::cluster::Agreement::default(),
        }
    } else {
        // One process reads no hostfile, but one named must still be there and well formed
        // (it was silently ignored, and a typo in its name went unnoticed).
        if args.hostfile.is_some() {
            hosts(args.hostfile.as_deref(), 1)?;
        }
        Workers::Threads(args.workers)
    };
    let checkpoint = match &args.checkpoint {
        Some(dir) => {
            let every = args.checkpoint_every.unwrap_or(1000);
            if every == 0 {
                return Err(ConfigError::Flag {
                    flag: "--checkpoint-every",
                    reason: "must be at least 1".into(),
                });
            }
            Some(CheckpointConfig {
                dir: dir.clone(),
                every,
                resume: args.resume,
            })
        }
        None => None,
    };
    let max_line_bytes = line_limit(file.max_line_bytes).map_err(|reason| ConfigError::Flag {
        flag: "max_line_bytes",
        reason,
    })?;
    Ok(RunConfig {
        workflows: args.workflows.clone(),
        platform: args.platform.clone(),
        metrics: args.metrics.clone(),
        format,
        maps,
        events: args.events.clone(),
        lateness_ms: seconds_to_ms(lateness_s),
        max_line_bytes,
        out: args.out.clone(),
        workers,
        strict: args.strict,
        forecast,
        placement,
        progress: !args.quiet,
        memory_every: args.memory_every,
        report: args.report,
        checkpoint,
    })
}

/// The forecast and placement knobs of a config file (`--policy`, when given, overrides its
/// policy): shared by `run` and `simulate`.
pub fn engine_knobs(
    file: &ConfigFile,
    policy_flag: Option<String>,
) -> Result<(ForecastConfig, PlacementConfig), ConfigError> {
    let defaults = ForecastConfig::default();
    let mut model = defaults.model;
    if let Some(name) = &file.forecast.model {
        model.kind = name.parse().map_err(|reason| ConfigError::Flag {
            flag: "forecast.model",
            reason,
        })?;
    }
    if let Some(season) = file.forecast.season {
        // Fitted over two cycles at least, so the window holds three, as for the seasons
        // detected and within the same bound: the week-long default window held none past
        // 504, and such a season was ignored without a word.
        let longest = augur_dataflows::models::MAX_SEASON_WINDOW / 3;
        if !(2..=longest).contains(&season) {
            return Err(ConfigError::Flag {
                flag: "forecast.season",
                reason: format!(
                    "{season} is not within [2, {longest}] samples (each series keeps three \
                     seasons, at most {} values)",
                    augur_dataflows::models::MAX_SEASON_WINDOW
                ),
            });
        }
        model.season = Some(season);
        model.window = model.window.max(3 * season);
    }
    if let Some(interval) = file.forecast.interval_s {
        model.interval_ms =
            Some(in_range("forecast.interval_s", interval, 0.001, 86_400.0)? * 1000.0);
    }
    if let Some(order) = file.forecast.ar_order {
        if !(1..=64).contains(&order) {
            return Err(ConfigError::Flag {
                flag: "forecast.ar_order",
                reason: format!("{order} is not within [1, 64]"),
            });
        }
        model.ar_order = order;
    }
    // A mild default: the scorer raises a false alarm or two a day per series, and every
    // penalty moves tasks away and back (demo: 46 moves without, 135 at 0.25, 265 at 0.5).
    let penalty = in_range(
        "anomaly.penalty",
        file.anomaly.penalty.unwrap_or(0.25),
        0.0,
        100.0,
    )?;
    let anomaly = match file.anomaly.mode.as_deref().unwrap_or("penalise") {
        "penalise" | "penalize" => AnomalyPolicy::Penalise(penalty),
        "exclude" => AnomalyPolicy::Exclude,
        "ignore" => AnomalyPolicy::Ignore,
        other => {
            return Err(ConfigError::Flag {
                flag: "anomaly.mode",
                reason: format!("unknown mode '{other}' (penalise, exclude or ignore)"),
            })
        }
    };
    let forecast = ForecastConfig {
        anomaly,
        model,
        risk: in_range(
            "forecast.risk",
            file.forecast.risk.unwrap_or(defaults.risk),
            0.0,
            10.0,
        )?,
        horizon_ms: seconds_to_ms(in_range(
            "forecast.horizon_s",
            file.forecast
                .horizon_s
                .unwrap_or(defaults.horizon_ms as f64 / 1000.0),
            0.0,
            1e9,
        )?),
        quantum_ppm: (in_range(
            "forecast.quantum",
            file.forecast
                .quantum
                .unwrap_or(defaults.quantum_ppm as f64 / 1e6),
            0.0,
            1.0,
        )? * 1e6)
            .round() as i64,
        coarse_quantum_ppm: match file.forecast.coarse_quantum {
            Some(coarse) => {
                Some((in_range("forecast.coarse_quantum", coarse, 1e-6, 1.0)? * 1e6).round() as i64)
            }
            None => None,
        },
        refine_above: in_range(
            "forecast.refine_above",
            file.forecast.refine_above.unwrap_or(defaults.refine_above),
            0.0,
            10.0,
        )?,
    };
    let defaults = PlacementConfig::default();
    // Named where it came from: the flag, or the config file's key.
    let policy_source = if policy_flag.is_some() {
        "--policy"
    } else {
        "placement.policy"
    };
    let policy_name = policy_flag
        .or_else(|| file.placement.policy.clone())
        .unwrap_or_else(|| defaults.policy.name().to_string());
    let policy = Policy::from_name(&policy_name).ok_or_else(|| ConfigError::Flag {
        flag: policy_source,
        reason: format!(
            "unknown policy '{policy_name}' (one of predictive, heft, reactive, static, seed)"
        ),
    })?;
    let weight = |name: &'static str, value: Option<f64>, default: f64| {
        in_range(name, value.unwrap_or(default), 0.0, 1e9)
    };
    let weights = &file.placement.weights;
    let placement = PlacementConfig {
        policy,
        hysteresis: in_range(
            "placement.hysteresis",
            file.placement.hysteresis.unwrap_or(defaults.hysteresis),
            0.0,
            10.0,
        )?,
        capacity_target: in_range(
            "placement.capacity_target",
            file.placement
                .capacity_target
                .unwrap_or(defaults.capacity_target),
            1e-6,
            10.0,
        )?,
        resculpt_margin: in_range(
            "placement.resculpt_margin",
            file.placement
                .resculpt_margin
                .unwrap_or(defaults.resculpt_margin),
            0.0,
            10.0,
        )?,
        reorder_contention: in_range(
            "placement.reorder_contention",
            file.placement
                .reorder_contention
                .unwrap_or(defaults.reorder_contention),
            0.0,
            10.0,
        )?,
        weights: Weights {
            latency: weight(
                "placement.weights.latency",
                weights.latency,
                defaults.weights.latency,
            )?,
            cost: weight(
                "placement.weights.cost",
                weights.cost,
                defaults.weights.cost,
            )?,
            energy: weight(
                "placement.weights.energy",
                weights.energy,
                defaults.weights.energy,
            )?,
            locality: weight(
                "placement.weights.locality",
                weights.locality,
                defaults.weights.locality,
            )?,
        },
        hierarchy: match file.placement.hierarchy.as_deref().unwrap_or("auto") {
            "auto" => Hierarchy::Auto(
                file.placement
                    .hierarchy_min_tasks
                    .unwrap_or(Hierarchy::AUTO_MIN_TASKS),
            ),
            "on" => Hierarchy::On,
            "off" => Hierarchy::Off,
            other => {
                return Err(ConfigError::Flag {
                    flag: "placement.hierarchy",
                    reason: format!("unknown mode '{other}' (auto, on or off)"),
                })
            }
        },
    };
    Ok((forecast, placement))
}

/// Every input file exists, is a file, and is given once: a typo must not look like a run
/// over empty input, and a file read twice would be counted twice.
fn check_inputs(args: &RunArgs) -> Result<(), ConfigError> {
    let named = [
        ("--workflow", &args.workflows),
        ("--metrics", &args.metrics),
        ("--events", &args.events),
    ];
    let mut seen: FileIndex<&'static str> = FileIndex::new();
    // The outputs the run rewrites, resolved once for every input to be looked up in.
    let out_names: Vec<(PathBuf, &str)> = crate::run::OUTPUTS
        .iter()
        .map(|name| (args.out.join(name), *name))
        .collect();
    let mut outputs = FileIndex::new();
    for (path, name) in &out_names {
        outputs.insert(path, *name);
    }
    let singles = [("--platform", &args.platform), ("--config", &args.config)];
    let all = named
        .iter()
        .flat_map(|(flag, paths)| paths.iter().map(move |p| (*flag, p.as_path())))
        .chain(
            singles
                .iter()
                .filter_map(|(flag, path)| path.as_deref().map(|p| (*flag, p))),
        );
    for (flag, path) in all {
        if let Some(reason) = not_an_input_file(path) {
            return Err(ConfigError::Flag { flag, reason });
        }
        if let Some(other) = seen.same_as(path) {
            return Err(ConfigError::Flag {
                flag,
                reason: format!("{} is already given to {other}", path.display()),
            });
        }
        if let Some(other) = seen.reads_like(path) {
            return Err(ConfigError::Flag {
                flag,
                reason: read_alike_reason(other, path),
            });
        }
        // The run clears and rewrites its outputs before it reads a line: an input that is one
        // of them would be destroyed unread.
        if let Some(output) = outputs.same_as(path) {
            return Err(ConfigError::Flag {
                flag,
                reason: format!(
                    "{} is the run's own {output} in --out {}, which the run rewrites: move it, \
                     or choose another --out",
                    path.display(),
                    args.out.display()
                ),
            });
        }
        seen.insert(path, flag);
    }
    if let Some(reason) = not_an_output_folder(&args.out) {
        return Err(ConfigError::Flag {
            flag: "--out",
            reason,
        });
    }
    if let Some(reason) = args.checkpoint.as_deref().and_then(not_an_output_folder) {
        return Err(ConfigError::Flag {
            flag: "--checkpoint",
            reason,
        });
    }
    Ok(())
}

/// Checks, before a command starts, that each of `paths` given to `flag` is a regular file
/// (which `run` and `simulate` check in their own validation): a missing input is bad usage,
/// exit code 2, for every command alike.
pub fn check_input_files<'a>(
    flag: &str,
    paths: impl IntoIterator<Item = &'a PathBuf>,
) -> Result<(), String> {
    let mut seen = FileIndex::new();
    for path in paths {
        if let Some(reason) = not_an_input_file(path) {
            return Err(format!("{flag}: {reason}"));
        }
        if seen.same_as(path).is_some() {
            return Err(format!("{flag}: {} is given twice", path.display()));
        }
        if seen.reads_like(path).is_some() {
            return Err(format!("{flag}: {}", read_alike_reason(flag, path)));
        }
        seen.insert(path, ());
    }
    Ok(())
}

/// Why `path` cannot be an output folder, if that is known now: something else is there (the
/// command would fail at its first write with the operating system's bare "Not a directory").
pub fn not_an_output_folder(path: &Path) -> Option<String> {
    // The nearest part of the path that exists must be a folder (`FILE/sub` cannot be made).
    let existing = path
        .ancestors()
        .find(|part| !part.as_os_str().is_empty() && std::fs::symlink_metadata(part).is_ok())?;
    (!existing.is_dir()).then(|| format!("{} exists and is not a folder", existing.display()))
}

/// Why a file to be written at the end of a long command cannot be, if that is known now: the
/// path is a folder, or its folder does not exist (a simulation ran whole and then failed).
pub fn not_an_output_file(path: &Path) -> Option<String> {
    if path.is_dir() {
        return Some(format!("{} is a folder, not a file", path.display()));
    }
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    if folder.is_dir() {
        None
    } else if folder.exists() {
        Some(format!("{} is not a folder", folder.display()))
    } else {
        Some(format!("the folder {} does not exist", folder.display()))
    }
}

/// Why `path` cannot be an input file (`PATH does not exist`, `PATH is not a regular file`), if
/// it cannot.
fn not_an_input_file(path: &Path) -> Option<String> {
    if path.is_file() {
        return None;
    }
    let what = if path.exists() {
        "is not a regular file"
    } else {
        "does not exist"
    };
    Some(format!("{} {what}", path.display()))
}

/// Whether two paths to different files read alike once shown (bytes that are not UTF-8 shown
/// as U+FFFD): outputs name each input by that text (the summary's counts, the rejections'
/// file), so the two would be counted and reported as one.
fn read_alike_reason(other_flag: &str, path: &Path) -> String {
    format!(
        "{} reads like another input of {other_flag} once its bytes that are not UTF-8 are \
         shown as U+FFFD, and the outputs name inputs by that text: rename one",
        path.display()
    )
}

fn seconds_to_ms(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

/// Parses `FILE=DEVICE:RESOURCE`.
fn parse_map(map: &str) -> Result<(PathBuf, String, Resource), ConfigError> {
    let error = |reason: String| ConfigError::Flag {
        flag: "--map",
        reason,
    };
    let (file, target) = map
        .rsplit_once('=')
        .ok_or_else(|| error(format!("'{map}' is not FILE=DEVICE:RESOURCE")))?;
    let (device, resource) = target
        .rsplit_once(':')
        .ok_or_else(|| error(format!("'{map}' is not FILE=DEVICE:RESOURCE")))?;
    let resource = Resource::from_name(resource).ok_or_else(|| {
        error(format!(
            "unknown resource '{resource}' (cpu, memory, disk or network)"
        ))
    })?;
    if file.is_empty() || device.is_empty() {
        return Err(error(format!("'{map}' is not FILE=DEVICE:RESOURCE")));
    }
    Ok((PathBuf::from(file), device.to_string(), resource))
}

/// Process addresses: the hostfile's first `processes` lines, or localhost:2101, 2102, ...
pub fn hosts(hostfile: Option<&Path>, processes: usize) -> Result<Vec<String>, ConfigError> {
    let Some(path) = hostfile else {
        return Ok((0..processes)
            .map(|index| format!("localhost:{}", 2101 + index))
            .collect());
    };
    // Errors name the flag, as every other flag's do.
    let refuse = |reason: String| ConfigError::Flag {
        flag: "--hostfile",
        reason: format!("{}: {reason}", path.display()),
    };
    let text =
        crate::input::regular::read_regular_string(path).map_err(|e| refuse(e.to_string()))?;
    let addresses: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .take(processes)
        .map(str::to_string)
        .collect();
    if addresses.len() < processes {
        return Err(refuse(format!(
            "has {} address{}, but --processes is {processes}",
            addresses.len(),
            if addresses.len() == 1 { "" } else { "es" }
        )));
    }
    // Checked here rather than when a process listens or dials: a bad port failed only then,
    // and an address given twice made two processes wait for each other until the timeout.
    for (index, address) in addresses.iter().enumerate() {
        let bad = |reason: String| refuse(format!("address {} ('{address}') {reason}", index + 1));
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| bad("is not host:port".to_string()))?;
        if host.trim_matches(['[', ']']).is_empty() {
            return Err(bad("has no host".to_string()));
        }
        if port.parse::<u16>().map_or(true, |port| port == 0) {
            return Err(bad("needs a port from 1 to 65535".to_string()));
        }
        if let Some(first) = addresses[..index].iter().position(|a| a == address) {
            return Err(bad(format!(
                "is address {} again: every process needs its own",
                first + 1
            )));
        }
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostfiles_are_checked_when_read() {
        let dir = crate::testing::Scratch::new("cli-hostfiles");
        let file = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("hostfile");
            path
        };
        let good = file("good.txt", "127.0.0.1:2101\n\n[::1]:2102\n");
        assert_eq!(
            hosts(Some(&good), 2).expect("two addresses"),
            ["127.0.0.1:2101", "[::1]:2102"]
        );
        for (name, text, reason) in [
            (
                "dup.txt",
                "h:1\nh:1\n",
                "address 2 ('h:1') is address 1 again",
            ),
            (
                "port.txt",
                "h:99999\nh:2\n",
                "address 1 ('h:99999') needs a port",
            ),
            ("zero.txt", "h:1\nh:0\n", "address 2 ('h:0') needs a port"),
            (
                "bare.txt",
                "h:1\nnotanaddress\n",
                "address 2 ('notanaddress') is not host:port",
            ),
            ("nohost.txt", ":1\nh:2\n", "address 1 (':1') has no host"),
            ("short.txt", "h:1\n", "has 1 address, but --processes is 2"),
        ] {
            let error = hosts(Some(&file(name, text)), 2)
                .expect_err(name)
                .to_string();
            assert!(error.contains(reason), "{name}: {error}");
        }
        let missing = dir.join("missing.txt");
        assert!(hosts(Some(&missing), 1).is_err());
    }

    #[test]
    #[cfg(unix)]
    fn inputs_whose_names_differ_only_in_bytes_that_are_not_utf8_are_refused() {
        use std::os::unix::ffi::OsStrExt;
        let dir = crate::testing::Scratch::new("cli-not-utf8");
        let named = |byte: u8| {
            let path = dir
                .path()
                .join(std::ffi::OsStr::from_bytes(&[b'q', byte, b'.', b'j']));
            std::fs::write(&path, "{}").expect("write");
            path
        };
        let (a, b) = (named(0xff), named(0xfe));
        let error = check_input_files("--workflow", [&a, &b]).expect_err("read alike");
        assert!(
            error.contains("U+FFFD") && error.contains("rename one"),
            "{error}"
        );
        assert!(check_input_files("--workflow", [&a]).is_ok());
    }

    #[test]
    fn an_input_file_given_twice_is_refused() {
        let dir = crate::testing::Scratch::new("cli-twice");
        let path = dir.join("a.json");
        std::fs::write(&path, "{}").expect("file");
        let error = check_input_files("--workflow", [&path, &path]).expect_err("twice");
        assert!(
            error.contains("--workflow") && error.contains("is given twice"),
            "{error}"
        );
        assert!(check_input_files("--workflow", [&path]).is_ok());
        // A hard link is the same file under another name: read twice, counted twice.
        let link = dir.join("b.json");
        if std::fs::hard_link(&path, &link).is_ok() {
            let error = check_input_files("--workflow", [&path, &link]).expect_err("a link");
            assert!(error.contains("is given twice"), "{error}");
        }
    }

    #[test]
    fn numbers_in_messages_are_short() {
        assert_eq!(short_number(1e308), "1e308");
        assert_eq!(short_number(2.5), "2.5");
        assert_eq!(short_number(86_400.0), "86400");
        assert_eq!(short_number(-1.5e-300), "-1.5e-300");
        assert_eq!(short_number(-0.0), "0");
        let error = in_range("--lateness", 1e308, 0.0, 1e9).expect_err("out of range");
        assert!(error.to_string().contains("1e308 is not within"), "{error}");
    }
    use augur_dataflows::models::ModelKind;

    /// An empty file of that name in a fixture folder (the flags check that inputs exist). The
    /// tests share it while they run in parallel, so no one test may remove it: one fixed
    /// folder, reused by every run, rather than one left behind per run.
    fn fixture(name: &str) -> String {
        let dir = std::env::temp_dir().join("augur-cli-fixtures");
        std::fs::create_dir_all(&dir).expect("fixture dir");
        let path = dir.join(name);
        std::fs::write(&path, "").expect("fixture file");
        path.display().to_string()
    }

    /// Parses `augur run` flags, with `w.json`, `a.csv` and `b.csv` standing for fixture files.
    fn args(extra: &[&str]) -> RunArgs {
        let mut argv = vec![
            "augur".to_string(),
            "run".into(),
            "--workflow".into(),
            fixture("w.json"),
        ];
        argv.extend(["--out".to_string(), "o".to_string()]);
        for arg in extra {
            let arg = match *arg {
                "a.csv" | "b.csv" => fixture(arg),
                map if map.starts_with("a.csv=") => format!("{}{}", fixture("a.csv"), &map[5..]),
                other => other.to_string(),
            };
            argv.push(arg);
        }
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Run(args),
            }) => args,
            other => panic!("unexpected parse: {other:?}"),
        }
    }

    #[test]
    fn defaults_are_sane() {
        let config = run_config(&args(&[])).expect("valid");
        assert_eq!(config.lateness_ms, 60_000);
        assert!(matches!(config.workers, Workers::Threads(1)));
        assert_eq!(config.format, MetricFormat::Long);
        assert_eq!(config.placement, PlacementConfig::default());
        assert_eq!(config.forecast, ForecastConfig::default());
    }

    #[test]
    fn simulate_ccr_is_bounded_both_ways() {
        let config = |ccr: &str| {
            let ccr = format!("--ccr={ccr}");
            let argv = ["augur", "simulate", "--workflow", &fixture("w.json"), &ccr];
            match Cli::try_parse_from(argv) {
                Ok(Cli {
                    command: Command::Simulate(args),
                }) => simulate_config(&args).map(|config| config.ccr),
                other => panic!("unexpected parse: {other:?}"),
            }
        };
        assert_eq!(config("1e-6").expect("the least"), Some(1e-6));
        assert_eq!(config("1e6").expect("the most"), Some(1e6));
        for bad in ["5e-324", "0", "-0.5e-300", "2e6", "NaN", "inf"] {
            let error = config(bad).expect_err(bad).to_string();
            assert!(error.contains("within 1e-6..=1e6"), "{bad}: {error}");
        }
    }

    /// Where the report or the traces cannot go is a usage error before the simulation runs,
    /// not a failure after it.
    #[test]
    fn simulate_output_paths_are_checked_up_front() {
        let dir = crate::testing::Scratch::new("cli-simulate-out");
        let a_file = dir.join("taken.json");
        std::fs::write(&a_file, "{}").expect("write");
        let check = |extra: &[&str]| {
            let workflow = fixture("w.json");
            let mut argv = vec!["augur", "simulate", "--workflow", &workflow];
            argv.extend_from_slice(extra);
            match Cli::try_parse_from(argv) {
                Ok(Cli {
                    command: Command::Simulate(args),
                }) => simulate_config(&args).map(|_| ()),
                other => panic!("unexpected parse: {other:?}"),
            }
        };
        let folder = dir.path().to_str().unwrap_or("");
        let error = check(&["--report", folder]).expect_err("a folder");
        assert!(error.to_string().contains("is a folder"), "{error}");
        let error = check(&["--report", "/no/such/folder/r.html"]).expect_err("no folder");
        assert!(error.to_string().contains("does not exist"), "{error}");
        let taken = a_file.to_str().unwrap_or("");
        let error = check(&["--trace-tasks", taken]).expect_err("a file");
        assert!(error.to_string().contains("is not a folder"), "{error}");
        let report = dir.join("r.html");
        assert!(check(&["--report", report.to_str().unwrap_or("")]).is_ok());
    }

    #[test]
    fn lateness_flag_in_seconds() {
        let config = run_config(&args(&["--lateness", "2.5"])).expect("valid");
        assert_eq!(config.lateness_ms, 2_500);
        assert!(run_config(&args(&["--lateness", "-1"])).is_err());
    }

    #[test]
    fn a_bad_lateness_is_named_where_it_was_given() {
        let dir = crate::testing::Scratch::new("cli-lateness");
        let nan = dir.join("nan.toml");
        std::fs::write(&nan, "lateness_s = nan\n").expect("write");
        let from_file = args(&["--config", nan.to_str().unwrap_or("")]);
        let error = run_config(&from_file).expect_err("NaN lateness");
        assert!(error.to_string().starts_with("lateness_s: NaN"), "{error}");
        // The flag overrides the file, so a bad flag is the flag's fault.
        let flag = args(&["--config", nan.to_str().unwrap_or(""), "--lateness", "-1"]);
        let error = run_config(&flag).expect_err("negative lateness");
        assert!(error.to_string().starts_with("--lateness: -1"), "{error}");
        let good = args(&["--config", nan.to_str().unwrap_or(""), "--lateness", "3"]);
        assert_eq!(run_config(&good).expect("the flag wins").lateness_ms, 3_000);
    }

    #[test]
    fn workers_must_be_positive() {
        assert!(run_config(&args(&["--workers", "0"])).is_err());
        let config = run_config(&args(&["--workers", "3"])).expect("valid");
        assert!(matches!(config.workers, Workers::Threads(3)));
    }

    #[test]
    fn processes_default_to_localhost_ports() {
        let config = run_config(&args(&["--processes", "2", "--process", "1"])).expect("valid");
        match config.workers {
            Workers::Cluster {
                process, addresses, ..
            } => {
                assert_eq!(process, 1);
                assert_eq!(addresses, vec!["localhost:2101", "localhost:2102"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(run_config(&args(&["--processes", "2", "--process", "2"])).is_err());
    }

    #[test]
    fn connect_timeout_is_positive_and_defaults_to_30_s() {
        let cluster = ["--processes", "2", "--process", "1"];
        let config = run_config(&args(&cluster)).expect("valid");
        assert!(matches!(
            config.workers,
            Workers::Cluster { connect_timeout, .. } if connect_timeout == Duration::from_secs(30)
        ));
        let config = run_config(&args(
            &[&cluster[..], &["--connect-timeout", "2.5"]].concat(),
        ))
        .expect("valid");
        assert!(matches!(
            config.workers,
            Workers::Cluster { connect_timeout, .. } if connect_timeout == Duration::from_millis(2500)
        ));
        for bad in ["0", "-1", "NaN", "inf"] {
            let flag = format!("--connect-timeout={bad}");
            let flags = [&cluster[..], &[flag.as_str()]].concat();
            assert!(run_config(&args(&flags)).is_err(), "{bad}");
        }
    }

    #[test]
    fn peer_timeout_is_off_or_at_least_2_s_with_or_without_processes() {
        let cluster = ["--processes", "2", "--process", "1"];
        let config = run_config(&args(&cluster)).expect("valid");
        assert!(matches!(
            config.workers,
            Workers::Cluster { peer_timeout: Some(t), .. } if t == Duration::from_secs(60)
        ));
        let off = [&cluster[..], &["--peer-timeout", "0"]].concat();
        assert!(matches!(
            run_config(&args(&off)).expect("valid").workers,
            Workers::Cluster {
                peer_timeout: None,
                ..
            }
        ));
        for bad in ["1", "-1", "NaN", "inf", "1e400"] {
            let flag = format!("--peer-timeout={bad}");
            let flags = [&cluster[..], &[flag.as_str()]].concat();
            assert!(run_config(&args(&flags)).is_err(), "{bad}");
            assert!(
                run_config(&args(&[flag.as_str()])).is_err(),
                "{bad}, one process"
            );
        }
    }

    #[test]
    fn nab_needs_a_map_per_file() {
        assert!(run_config(&args(&["--format", "nab", "--metrics", "a.csv"])).is_err());
        let config = run_config(&args(&[
            "--format",
            "nab",
            "--metrics",
            "a.csv",
            "--map",
            "a.csv=n1:cpu",
        ]))
        .expect("valid");
        assert_eq!(
            config.maps,
            vec![(
                PathBuf::from(fixture("a.csv")),
                "n1".to_string(),
                Resource::Cpu
            )]
        );
        assert!(parse_map("a.csv=n1:gpu").is_err());
        assert!(parse_map("a.csv").is_err());
    }

    #[test]
    fn inputs_must_exist_and_be_given_once() {
        assert!(run_config(&args(&["--metrics", "/nonexistent/m.csv"])).is_err());
        assert!(run_config(&args(&["--events", "/tmp"])).is_err());
        assert!(run_config(&args(&["--metrics", "a.csv", "a.csv"])).is_err());
        assert!(run_config(&args(&["--metrics", "a.csv", "--events", "a.csv"])).is_err());
        assert!(run_config(&args(&["--metrics", "a.csv", "b.csv"])).is_ok());
    }

    #[test]
    fn an_input_that_is_one_of_the_outputs_is_refused() {
        let events = fixture("rejected.jsonl");
        let out = Path::new(&events)
            .parent()
            .expect("a folder")
            .display()
            .to_string();
        let parse = |out: &str, checkpoint: Option<&str>| {
            let mut argv = vec!["augur", "run", "--workflow", "W", "--events", &events];
            argv.extend(["--out", out]);
            if let Some(dir) = checkpoint {
                argv.extend(["--checkpoint", dir]);
            }
            let mut argv: Vec<String> = argv.into_iter().map(str::to_string).collect();
            argv[3] = fixture("w.json");
            match Cli::try_parse_from(argv) {
                Ok(Cli {
                    command: Command::Run(args),
                }) => run_config(&args),
                other => panic!("unexpected parse: {other:?}"),
            }
        };
        let error = parse(&out, None).expect_err("the run would clear its own input");
        assert!(
            error
                .to_string()
                .contains("is the run's own rejected.jsonl"),
            "{error}"
        );
        assert!(parse("elsewhere", None).is_ok());
        // A checkpoint folder that is a file is refused before the run, not at its first
        // checkpoint.
        let error = parse("elsewhere", Some(&events)).expect_err("a file, not a folder");
        assert!(error.to_string().contains("is not a folder"), "{error}");
    }

    #[test]
    fn maps_only_for_nab_and_once_per_file() {
        assert!(run_config(&args(&["--metrics", "a.csv", "--map", "a.csv=n1:cpu"])).is_err());
        assert!(run_config(&args(&[
            "--format",
            "nab",
            "--metrics",
            "a.csv",
            "--map",
            "a.csv=n1:cpu",
            "--map",
            "a.csv=n2:cpu",
        ]))
        .is_err());
        let nab = [
            "--format",
            "nab",
            "--metrics",
            "a.csv",
            "--map",
            "a.csv=n1:cpu",
        ];
        assert!(run_config(&args(&nab)).is_ok());
        let stray = [&nab[..], &["--map", "b.csv=n2:cpu"]].concat();
        let error = run_config(&args(&stray)).expect_err("b.csv is not read");
        assert!(error
            .to_string()
            .contains("b.csv is not one of the --metrics files"));
    }

    #[test]
    fn process_index_and_count_are_checked() {
        assert!(run_config(&args(&["--processes", "0"])).is_err());
        assert!(run_config(&args(&["--process", "1"])).is_err());
        assert!(run_config(&args(&["--processes", "5000"])).is_err());
    }

    #[test]
    fn strict_and_quiet_flags() {
        let config = run_config(&args(&["--strict", "--quiet"])).expect("valid");
        assert!(config.strict);
        assert!(!config.progress);
    }

    #[test]
    fn config_file_knobs_are_validated() {
        let dir = crate::testing::Scratch::new("cli");
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "lateness_s = 5\n[forecast]\nmodel = \"holt\"\nseason = 48\ninterval_s = 60\nrisk = 0.5\nhorizon_s = 120\nquantum = 0.01\n[placement]\nhysteresis = 0.2\n",
        )
        .expect("write");
        let config = run_config(&args(&["--config", good.to_str().unwrap_or("")])).expect("valid");
        assert_eq!(config.lateness_ms, 5_000);
        assert_eq!(config.forecast.model.kind, ModelKind::Holt);
        assert_eq!(config.forecast.model.season, Some(48));
        // The window holds three seasons of a long one (it would never be fitted in a week's
        // 1,008 values), and one whose three cycles pass the bound is refused.
        let file = |season: usize| {
            toml::from_str::<ConfigFile>(&format!("[forecast]\nseason = {season}\n"))
                .expect("a config")
        };
        let (forecast, _) = engine_knobs(&file(600), None).expect("season 600");
        assert_eq!(forecast.model.window, 1_800);
        let (forecast, _) = engine_knobs(&file(48), None).expect("season 48");
        assert_eq!(forecast.model.window, 1_008);
        assert!(engine_knobs(&file(1_537), None).is_err());
        assert_eq!(config.forecast.model.interval_ms, Some(60_000.0));
        assert_eq!(config.forecast.risk, 0.5);
        assert_eq!(config.forecast.horizon_ms, 120_000);
        assert_eq!(config.forecast.quantum_ppm, 10_000);
        assert_eq!(config.placement.hysteresis, 0.2);
        let exclude = dir.join("exclude.toml");
        std::fs::write(&exclude, "[anomaly]\nmode = \"exclude\"\n").expect("write");
        let config =
            run_config(&args(&["--config", exclude.to_str().unwrap_or("")])).expect("valid");
        assert_eq!(config.forecast.anomaly, AnomalyPolicy::Exclude);
        let odd = dir.join("odd.toml");
        std::fs::write(&odd, "[anomaly]\nmode = \"panic\"\n").expect("write");
        assert!(run_config(&args(&["--config", odd.to_str().unwrap_or("")])).is_err());
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[forecast]\nrisk = -1.0\n").expect("write");
        assert!(run_config(&args(&["--config", bad.to_str().unwrap_or("")])).is_err());
        let unknown = dir.join("unknown.toml");
        std::fs::write(&unknown, "colour = 1\n").expect("write");
        assert!(run_config(&args(&["--config", unknown.to_str().unwrap_or("")])).is_err());
    }

    #[test]
    fn hierarchy_knob_is_auto_by_default_and_validated() {
        let dir = crate::testing::Scratch::new("cli-h");
        let config = |text: &str| {
            let path = dir.join("hierarchy.toml");
            std::fs::write(&path, text).expect("write");
            run_config(&args(&["--config", path.to_str().unwrap_or("")]))
        };
        let default = config("").expect("valid");
        assert_eq!(
            default.placement.hierarchy,
            Hierarchy::Auto(Hierarchy::AUTO_MIN_TASKS)
        );
        let on = config("[placement]\nhierarchy = \"on\"\n").expect("valid");
        assert_eq!(on.placement.hierarchy, Hierarchy::On);
        let off = config("[placement]\nhierarchy = \"off\"\n").expect("valid");
        assert_eq!(off.placement.hierarchy, Hierarchy::Off);
        let low = config("[placement]\nhierarchy_min_tasks = 10\n").expect("valid");
        assert_eq!(low.placement.hierarchy, Hierarchy::Auto(10));
        assert!(config("[placement]\nhierarchy = \"sometimes\"\n").is_err());
    }
}
