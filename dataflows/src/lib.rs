//! augur-dataflows: the timely/differential operator graphs and the pure models they run.
//!
//! Nothing here does I/O: the driver in the `augur` package owns inputs, probes and outputs and
//! calls [`augur`] to build the graph.
#![deny(missing_docs)]

pub mod anomaly;
pub mod checkpoint;
pub mod contention_forecast;
pub mod duration;
pub mod finish_time;
pub mod hierarchy;
pub mod models;
pub mod oracle;
pub mod partition_map;
pub mod placement;
pub mod round_robin;
mod stash;
pub mod task_durations;
pub mod task_states;
pub mod types;

use differential_dataflow::VecCollection;
use timely::dataflow::operators::core::{Concat, Exchange};
use timely::dataflow::operators::vec::{Broadcast, Map};
use timely::dataflow::StreamVec;

use crate::checkpoint::{Control, StatePart};
use crate::contention_forecast::{
    device_observed, series_forecasts, ForecastConfig, SeriesForecast,
};
use crate::duration::DurationConfig;
use crate::partition_map::{partition_map, MapInputs};
use crate::placement::{PlacementConfig, Policy};
use crate::task_durations::task_durations;
use crate::task_states::task_states;
use crate::types::{
    Alternative, Completion, DeviceId, DeviceSpec, Edge, Ppm, Resculpt, Resource, Sample, TaskKey,
    TaskSpec, TaskState, Time,
};

/// Everything augur's graph is configured with.
#[derive(Clone, Debug, Default)]
pub struct EngineConfig {
    /// The devices, indexed by [`DeviceId`].
    pub devices: Vec<DeviceSpec>,
    /// Forecast knobs.
    pub forecast: ForecastConfig,
    /// Placement knobs.
    pub placement: PlacementConfig,
    /// Duration-model knobs.
    pub durations: DurationConfig,
}

/// The graph's inputs.
pub struct EngineInputs<'scope> {
    /// Metric samples.
    pub samples: StreamVec<'scope, Time, Sample>,
    /// Completed tasks with their durations.
    pub completions: StreamVec<'scope, Time, Completion>,
    /// Live tasks.
    pub tasks: VecCollection<'scope, Time, (TaskKey, TaskSpec)>,
    /// Started tasks, on the device they started on.
    pub started: VecCollection<'scope, Time, (TaskKey, DeviceId)>,
    /// Live edges, `((child, parent), bytes)`.
    pub edges: VecCollection<'scope, Time, Edge>,
    /// Live alternatives of tasks, `(task, (variant, requirements))`.
    pub alternatives: VecCollection<'scope, Time, Alternative>,
    /// Checkpoint requests: one at an epoch's time asks every stateful operator for its state
    /// once that epoch is applied (see [`checkpoint`]).
    pub checkpoints: StreamVec<'scope, Time, ()>,
    /// Saved state to resume from, fed at the checkpoint's time before any later epoch.
    pub restore: StreamVec<'scope, Time, StatePart>,
}

/// The collections augur maintains.
pub struct EngineOutputs<'scope> {
    /// Latest value and forecast of every reporting series.
    pub forecasts: VecCollection<'scope, Time, ((DeviceId, Resource), SeriesForecast)>,
    /// Contention of every reporting device as the policy sees it: predicted (`predictive`,
    /// `seed`), observed (`reactive`) or none (`heft`, `static`).
    pub contention: VecCollection<'scope, Time, (DeviceId, Ppm)>,
    /// State of every live task.
    pub states: VecCollection<'scope, Time, (TaskKey, TaskState)>,
    /// The partition map: `(task, device)` for every live task.
    pub partition: VecCollection<'scope, Time, (TaskKey, DeviceId)>,
    /// Predicted duration (ms) of a task of each kind on each device class, from completions.
    pub durations: VecCollection<'scope, Time, ((u32, u32), u64)>,
    /// Warm-up advice: `(class, devices to add)` where predicted demand exceeds capacity.
    pub prewarm: VecCollection<'scope, Time, (u32, u32)>,
    /// Re-sculpted tasks: each mapped task run as an alternative, and each queued task run
    /// ahead of its placement order.
    pub variants: VecCollection<'scope, Time, Resculpt>,
    /// The stateful operators' state at each checkpoint request, on the workers that hold it.
    pub state: StreamVec<'scope, Time, StatePart>,
}

/// Builds the whole augur graph from its inputs.
pub fn augur<'scope>(inputs: EngineInputs<'scope>, config: &EngineConfig) -> EngineOutputs<'scope> {
    // Every worker holds series, so every worker must see each request; restored series go
    // where their samples go. The other operators route their control to worker 0 themselves.
    let requests = inputs.checkpoints.map(|()| Control::Checkpoint);
    let restore = inputs.restore.map(Control::Restore);
    let series_control = requests
        .clone()
        .broadcast()
        .concat(restore.clone().exchange(|control| match control {
            Control::Restore(part) => part.route(),
            Control::Checkpoint => 0,
        }));
    let central_control = requests.concat(restore);
    let forecast_contention = matches!(config.placement.policy, Policy::Predictive | Policy::Seed);
    let series = series_forecasts(
        inputs.samples,
        series_control,
        config.forecast,
        forecast_contention,
    );
    let (forecasts, series_state) = (series.forecasts, series.state);
    // Predictive and seed read the forecasts' contention; reactive the latest samples; heft
    // and static none (the series operator then publishes no contention).
    let contention = match config.placement.policy {
        Policy::Reactive => device_observed(forecasts.clone()),
        Policy::Predictive | Policy::Seed | Policy::Heft | Policy::Static => series.contention,
    };
    let states = task_states(inputs.tasks, inputs.started, inputs.edges.clone());
    let (durations, durations_state) = task_durations(
        inputs.completions,
        central_control.clone(),
        config.durations,
    );
    let map = partition_map(
        MapInputs {
            contention: contention.clone(),
            states: states.clone(),
            edges: inputs.edges,
            durations: durations.clone(),
            alternatives: inputs.alternatives,
            control: central_control,
        },
        &config.devices,
        config.placement,
    );
    EngineOutputs {
        forecasts,
        contention,
        states,
        partition: map.partition,
        durations,
        prewarm: map.prewarm,
        variants: map.variants,
        state: series_state.concat(durations_state).concat(map.state),
    }
}
