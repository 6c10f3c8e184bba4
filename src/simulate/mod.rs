//! `augur simulate`: a closed-loop, discrete-event simulation of a heterogeneous cluster that
//! runs workflows by the placement augur's dataflow keeps current, one policy at a time.
//!
//! - [`platform`]: devices and links (platform TOML, SAGA network JSON, or the workflow's
//!   machines), and `--ccr`.
//! - [`background`]: real utilisation traces mapped onto devices.
//! - [`dag`]: a workflow as the simulator runs it.
//! - [`heft`]: the static HEFT plan (SAGA's algorithm, rule for rule) the `heft` policy follows.
//! - [`cluster`]: the discrete-event model (contention, transfers, capacity, dispatch).
//! - [`feedback`]: the `BatchSource`/`MapSink` pair that closes the loop through
//!   [`crate::engine::run_engine`].
//! - [`outcome`]: the per-run figures; [`report`]: the table and the HTML page.

pub mod background;
pub mod cluster;
pub mod dag;
pub mod feedback;
pub mod heft;
pub mod outcome;
pub mod platform;
pub mod report;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use augur_dataflows::contention_forecast::ForecastConfig;
use augur_dataflows::placement::{PlacementConfig, Policy};
use augur_dataflows::EngineConfig;

use crate::catalog::Catalog;
use crate::engine::{run_engine, EngineError, Workers};
use crate::input::wfformat::read_workflow;
use crate::series::SeriesFormat;

use background::Background;
use cluster::Cluster;
use dag::Dag;
use feedback::{Progress, SimSink, SimSource};
use outcome::Outcome;
use platform::SimPlatform;

/// How long the background runs before the workflow arrives, so the forecasters have history
/// (seconds; only with `--background`).
pub const WARM_UP_S: f64 = 3600.0;

/// The capacity target on exclusive (one-task-per-node) platforms: never reached.
pub const EXCLUSIVE_CAPACITY_TARGET: f64 = 1e6;

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A flag's value is unusable.
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// A workflow could not be read or admitted.
    #[error("{path}: {reason}")]
    Workflow {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The platform is unusable.
    #[error("platform {path}: {reason}")]
    Platform {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// No devices to run on.
    #[error("{workflow}: no devices: give --platform, or a workflow whose 'machines' section names some")]
    NoDevices {
        /// The workflow.
        workflow: String,
    },
    /// `--ccr` cannot be applied to a workflow.
    #[error("--ccr on {workflow}: {reason}")]
    Ccr {
        /// The workflow.
        workflow: String,
        /// Why.
        reason: String,
    },
    /// The background traces are unusable.
    #[error("--background: {0}")]
    Background(String),
    /// The map stopped sending ready tasks anywhere they can run.
    #[error("the simulation stalled at t = {time_s:.1} s with {done}/{tasks} tasks done")]
    Stalled {
        /// Seconds since the workflow arrived.
        time_s: f64,
        /// Tasks completed.
        done: usize,
        /// Tasks in all.
        tasks: usize,
    },
    /// The engine failed.
    #[error("engine: {0}")]
    Engine(String),
    /// A bug: state the simulator itself keeps became unusable.
    #[error("internal error: {0}")]
    Internal(String),
    /// Some workflows were refused (each named on stderr as it was); the others were
    /// simulated.
    #[error("{refused} of {total} workflows could not be simulated (the first: {first})")]
    Refused {
        /// Workflows refused.
        refused: usize,
        /// Workflows given.
        total: usize,
        /// Why the first was.
        first: String,
    },
    /// The report could not be written.
    #[error("{path}: {source}")]
    Output {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A validated `augur simulate`.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// WfFormat files, each simulated on its own.
    pub workflows: Vec<PathBuf>,
    /// `--platform`: TOML or SAGA network JSON; `None` for the workflow's machines.
    pub platform: Option<PathBuf>,
    /// Background traces.
    pub background: Vec<PathBuf>,
    /// Their format.
    pub background_format: SeriesFormat,
    /// The policies to compare, in output order.
    pub policies: Vec<Policy>,
    /// Seed: 0 starts every trace at its beginning; another value at a seeded point.
    pub seed: u64,
    /// `--ccr`: rescale every link to this communication-to-computation ratio.
    pub ccr: Option<f64>,
    /// Forecast knobs of the dataflow.
    pub forecast: ForecastConfig,
    /// Placement knobs (the policy is set per run).
    pub placement: PlacementConfig,
    /// Progress lines on stderr.
    pub progress: bool,
    /// `--trace-tasks`: where to write each run's per-task trace (a diagnostic).
    pub trace_tasks: Option<PathBuf>,
    /// `--heft-knows-background`: `heft` plans with the actual future background (a bound).
    pub heft_knows_background: bool,
    /// Feed one epoch at a time, the map back after each, instead of in groups while the map
    /// cannot matter ([`feedback::SimSource`]): the reference the groups are tested against.
    pub lockstep: bool,
}

/// Parses `--policy`.
pub fn policies(name: &str) -> Result<Vec<Policy>, SimError> {
    if name == "all" {
        return Ok(Policy::ALL.to_vec());
    }
    Policy::from_name(name)
        .map(|p| vec![p])
        .ok_or_else(|| SimError::Flag {
            flag: "--policy",
            reason: format!(
                "unknown policy '{name}' (all, predictive, heft, reactive, static or seed)"
            ),
        })
}

/// Everything one workflow needs before a policy runs it.
pub struct Prepared {
    /// The workflow's name (file stem).
    pub name: String,
    /// Its catalog (the workflow is id 0).
    pub catalog: Arc<Catalog>,
    /// Its DAG.
    pub dag: Dag,
    /// The platform, with `--ccr` applied.
    pub platform: SimPlatform,
    /// What its user should hear of how it was read (tasks without a runtime, runtimes
    /// restated at the reference clock).
    pub notes: Vec<String>,
}

/// The longest simulated time a workflow may need at the least (its longest chain of tasks on
/// the fastest device), seconds: about 317 years.
pub const MAX_SIMULATED_S: f64 = 1e10;

/// Reads and admits one workflow on the platform (its own machines without one).
pub fn prepare(
    path: &Path,
    platform: Option<&SimPlatform>,
    ccr: Option<f64>,
) -> Result<Prepared, SimError> {
    let read = read_workflow(path);
    let Some(mut workflow) = read.workflow else {
        let reason = read
            .rejections
            .first()
            .map_or("unreadable".to_string(), |r| r.reason.clone());
        return Err(SimError::Workflow {
            path: path.display().to_string(),
            reason,
        });
    };
    let mut notes = std::mem::take(&mut workflow.notes);
    let mut platform = match platform {
        Some(platform) => platform.clone(),
        None => {
            let (platform, restated) = SimPlatform::from_machines(&mut workflow)?;
            notes.extend(restated);
            platform
        }
    };
    if let Some(ccr) = ccr {
        platform.scale_to_ccr(&workflow, ccr)?;
    }
    if platform.exclusive {
        // SAGA's model: a node runs one task at a time, whatever the task's cores.
        for task in &mut workflow.tasks {
            task.cores = 1.0;
            task.memory_bytes = None;
        }
    }
    let dag = Dag::of(&workflow);
    // The simulator steps through the background at every sample of it (up to one a second
    // per device) however long its tasks run: a span of centuries took hours, and 1e9-s tasks
    // on a 1e-6-speed platform (both accepted) would never end. Refused at once instead.
    let fastest = platform
        .platform
        .devices
        .iter()
        .map(|device| device.speed)
        .fold(0.0, f64::max);
    // Nor can it end before the whole work is done on every core of every device at once.
    let capacity: f64 = (platform.platform.devices.iter())
        .map(|device| device.speed * device.cores.max(1.0))
        .sum();
    let total_work: f64 = dag.work_s.iter().sum();
    let shortest_span = (dag.critical_work_s() / fastest).max(total_work / capacity);
    if fastest > 0.0 && shortest_span > MAX_SIMULATED_S {
        return Err(SimError::Workflow {
            path: path.display().to_string(),
            reason: format!(
                "it takes at least {} s even on the fastest devices (its longest chain of \
                 tasks, or all of its work on every core), past the {} s (about 317 years) a \
                 simulation may span",
                crate::input::short_number(shortest_span),
                crate::input::short_number(MAX_SIMULATED_S)
            ),
        });
    }
    let name = workflow.name.clone();
    let mut catalog = Catalog::new(platform.platform.clone());
    catalog
        .admit(workflow)
        .map_err(|rejections| SimError::Workflow {
            path: path.display().to_string(),
            reason: rejections
                .first()
                .map_or("refused".to_string(), |r| r.reason.clone()),
        })?;
    Ok(Prepared {
        name,
        catalog: Arc::new(catalog),
        dag,
        platform,
        notes,
    })
}

/// Runs one workflow under one policy through the dataflow and returns what happened.
pub fn simulate_one(
    prepared: &Prepared,
    background: &Background,
    policy: Policy,
    config: &SimConfig,
) -> Result<Outcome, SimError> {
    let arrival = if background.is_empty() {
        0.0
    } else {
        WARM_UP_S
    };
    let processors = heft::processors(&prepared.platform);
    let rank = heft::upward_ranks(&prepared.dag, &prepared.platform, &processors);
    let plan = (policy == Policy::Heft).then(|| {
        // Diagnostic (opt-in): HEFT told the actual future background, an upper bound on what
        // a perfect contention forecast gives a static plan.
        if config.heft_knows_background {
            heft::plan_clairvoyant(&prepared.dag, &prepared.platform, background, arrival)
        } else {
            heft::plan(&prepared.dag, &prepared.platform)
        }
    });
    let cluster = Cluster::new(
        prepared.dag.clone(),
        prepared.platform.clone(),
        background.clone(),
        arrival,
        rank,
        plan.clone(),
    );
    let cluster = Arc::new(Mutex::new(cluster));
    let engine_config = EngineConfig {
        devices: prepared.catalog.device_specs(),
        forecast: config.forecast,
        placement: PlacementConfig {
            policy,
            // On exclusive devices one ready task fills a device, so the capacity target would
            // send the next tasks to whatever device is still empty (the slowest ones): there,
            // every device has room and the finish-time rule alone decides.
            capacity_target: if prepared.platform.exclusive {
                EXCLUSIVE_CAPACITY_TARGET
            } else {
                config.placement.capacity_target
            },
            ..config.placement
        },
        durations: Default::default(),
    };
    let shared = Arc::clone(&cluster);
    let catalog = Arc::clone(&prepared.catalog);
    let label = format!("{} {}", prepared.name, policy.name());
    let (progress, lockstep) = (config.progress, config.lockstep);
    let outcome = run_engine(Workers::Threads(1), engine_config, move || {
        let progress = progress.then(|| Progress::new(label.clone()));
        (
            SimSource::new(Arc::clone(&shared), Arc::clone(&catalog), progress)
                .in_lockstep(lockstep),
            SimSink::new(Arc::clone(&shared)),
        )
    })
    .map_err(|error| match error {
        EngineError::Source(e) | EngineError::Sink(e) => e,
        other => SimError::Engine(other.to_string()),
    })?;
    if outcome.is_none() {
        return Err(SimError::Internal("worker 0 returned nothing".to_string()));
    }
    let cluster = cluster
        .lock()
        .map_err(|_| SimError::Internal("the simulation state was poisoned".to_string()))?;
    let outcome = Outcome::of(
        &prepared.name,
        policy,
        &cluster,
        config.forecast.horizon_ms as f64 / 1000.0,
        plan.as_ref(),
    )?;
    if let Some(dir) = &config.trace_tasks {
        outcome::write_task_trace(dir, &outcome, &cluster)?;
    }
    Ok(outcome)
}

/// Runs every workflow under every policy, calling `each` with each outcome as it is ready;
/// [`SimError::Refused`] if any workflow was refused.
pub fn simulate(
    config: &SimConfig,
    each: impl FnMut(&Outcome) -> Result<(), SimError>,
) -> Result<Vec<Outcome>, SimError> {
    let simulated = simulate_noting(config, |_| {}, each)?;
    match simulated.refused {
        Some(refused) => Err(refused),
        None => Ok(simulated.outcomes),
    }
}

/// What a simulation of several workflows gave.
#[derive(Debug)]
pub struct Simulated {
    /// Every outcome, workflow by workflow, policy by policy.
    pub outcomes: Vec<Outcome>,
    /// [`SimError::Refused`] when some workflows could not be simulated.
    pub refused: Option<SimError>,
}

/// [`simulate`], telling `note` what the inputs lost on the way in (background rows that did
/// not parse, values clamped) before the first outcome, and each workflow refused (each is
/// simulated on its own: one refused does not stop the others, and is counted in
/// [`Simulated::refused`]).
pub fn simulate_noting(
    config: &SimConfig,
    mut note: impl FnMut(&str),
    mut each: impl FnMut(&Outcome) -> Result<(), SimError>,
) -> Result<Simulated, SimError> {
    let platform = match &config.platform {
        Some(path) => Some(SimPlatform::read(path)?),
        None => None,
    };
    // Read once: every workflow maps the same traces onto its own devices.
    let traces = if config.background.is_empty() {
        Vec::new()
    } else {
        let (traces, notes) =
            Background::read_traces(&config.background, config.background_format)?;
        notes.iter().for_each(|line| note(line));
        traces
    };
    let mut outcomes = Vec::new();
    let (mut refused, mut first) = (0, None);
    for path in &config.workflows {
        let prepared = match prepare(path, platform.as_ref(), config.ccr) {
            Ok(prepared) => prepared,
            Err(
                error @ (SimError::Workflow { .. }
                | SimError::NoDevices { .. }
                | SimError::Ccr { .. }),
            ) => {
                note(&format!("skipped {error}"));
                refused += 1;
                first.get_or_insert_with(|| error.to_string());
                continue;
            }
            Err(error) => return Err(error),
        };
        for line in &prepared.notes {
            note(&format!("{}: {line}", prepared.name));
        }
        let background = if traces.is_empty() {
            Background::none(prepared.platform.len())
        } else {
            Background::from_traces(traces.clone(), prepared.platform.len(), config.seed)
        };
        for &policy in &config.policies {
            let outcome = simulate_one(&prepared, &background, policy, config)?;
            each(&outcome)?;
            outcomes.push(outcome);
        }
    }
    Ok(Simulated {
        outcomes,
        refused: first.map(|first| SimError::Refused {
            refused,
            total: config.workflows.len(),
            first,
        }),
    })
}
