//! augur-dataflows: the timely/differential operator graphs and the pure models they run.
//!
//! Nothing here does I/O: the driver in the `augur` package owns inputs, probes and outputs and
//! calls [`augur`] to build the graph.
#![deny(missing_docs)]

pub mod anomaly;
pub mod contention_forecast;
pub mod duration;
pub mod models;
pub mod oracle;
pub mod partition_map;
pub mod placement;
mod stash;
pub mod task_states;
pub mod types;

use differential_dataflow::VecCollection;
use timely::dataflow::StreamVec;

use crate::contention_forecast::{
    device_contention, series_forecasts, ForecastConfig, SeriesForecast,
};
use crate::partition_map::partition_map;
use crate::placement::PlacementConfig;
use crate::task_states::task_states;
use crate::types::{
    DeviceId, DeviceSpec, Ppm, Resource, Sample, TaskKey, TaskSpec, TaskState, Time,
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
}

/// The collections augur maintains.
pub struct EngineOutputs<'scope> {
    /// Latest value and forecast of every reporting series.
    pub forecasts: VecCollection<'scope, Time, ((DeviceId, Resource), SeriesForecast)>,
    /// Predicted contention of every reporting device.
    pub contention: VecCollection<'scope, Time, (DeviceId, Ppm)>,
    /// State of every live task.
    pub states: VecCollection<'scope, Time, (TaskKey, TaskState)>,
    /// The partition map: `(task, device)` for every live task.
    pub partition: VecCollection<'scope, Time, (TaskKey, DeviceId)>,
}

/// Builds the whole augur graph from its four inputs: metric samples, live tasks, started tasks
/// and live edges `(child, parent)`.
pub fn augur<'scope>(
    samples: StreamVec<'scope, Time, Sample>,
    tasks: VecCollection<'scope, Time, (TaskKey, TaskSpec)>,
    started: VecCollection<'scope, Time, (TaskKey, DeviceId)>,
    edges: VecCollection<'scope, Time, (TaskKey, TaskKey)>,
    config: &EngineConfig,
) -> EngineOutputs<'scope> {
    let forecasts = series_forecasts(samples, config.forecast);
    let contention = device_contention(forecasts.clone(), &config.forecast);
    let states = task_states(tasks, started, edges);
    let partition = partition_map(
        contention.clone(),
        states.clone(),
        &config.devices,
        config.placement,
    );
    EngineOutputs {
        forecasts,
        contention,
        states,
        partition,
    }
}
