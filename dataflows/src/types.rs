//! The records that flow through augur's dataflows.
//!
//! Everything here is plain data with a total order, so differential can consolidate it and
//! every worker sorts it the same way. Names (workflow, task and device strings) never enter the
//! graph: the driver interns them into dense ids, in input order, so all processes agree.

use serde::{Deserialize, Serialize};

/// Event time in milliseconds, as the inputs give it (Unix epoch or trace-relative; may be negative).
pub type Time = i64;

/// Dense index of a device in the platform.
pub type DeviceId = u32;

/// Utilisation in parts per million of capacity (1.0 = 1_000_000). Values above one million mean
/// over-commit and are kept. Integers, so that collections of them consolidate exactly.
pub type Ppm = i64;

/// Converts a utilisation fraction into [`Ppm`], saturating at the extremes.
pub fn ppm_from_fraction(fraction: f64) -> Ppm {
    let scaled = (fraction * 1_000_000.0).round();
    if scaled.is_nan() {
        0
    } else {
        scaled.clamp(i64::MIN as f64, i64::MAX as f64) as Ppm
    }
}

/// Converts [`Ppm`] back into a fraction of capacity.
pub fn fraction_from_ppm(ppm: Ppm) -> f64 {
    ppm as f64 / 1_000_000.0
}

/// A task of a live workflow: the workflow's dense index and the task's index within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskKey {
    /// Index of the workflow in the driver's catalog.
    pub workflow: u32,
    /// Index of the task within its workflow.
    pub task: u32,
}

/// A resource whose utilisation devices report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Resource {
    /// Processor utilisation.
    Cpu,
    /// Memory in use.
    Memory,
    /// Disk throughput as a fraction of the device's disk bandwidth.
    Disk,
    /// Network throughput as a fraction of the device's network bandwidth.
    Network,
}

impl Resource {
    /// All resources, in their canonical order.
    pub const ALL: [Resource; 4] = [
        Resource::Cpu,
        Resource::Memory,
        Resource::Disk,
        Resource::Network,
    ];

    /// The lower-case name used in every input and output format.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::Disk => "disk",
            Resource::Network => "network",
        }
    }

    /// Parses a lower-case resource name.
    pub fn from_name(name: &str) -> Option<Resource> {
        match name {
            "cpu" => Some(Resource::Cpu),
            "memory" | "mem" => Some(Resource::Memory),
            "disk" => Some(Resource::Disk),
            "network" | "net" => Some(Resource::Network),
            _ => None,
        }
    }
}

/// One utilisation reading of one resource of one device.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The device that reported it.
    pub device: DeviceId,
    /// The resource it measures.
    pub resource: Resource,
    /// Utilisation as a fraction of capacity; above 1 is over-commit. Finite and non-negative
    /// (the driver rejects anything else before it gets here).
    pub value: f64,
}

/// What the partitioning needs to know of a task, in integer units so that it is `Ord`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct TaskSpec {
    /// Cores the task occupies, in thousandths of a core.
    pub cores_milli: u32,
    /// Memory the task needs, in bytes (0 when unknown).
    pub memory_bytes: u64,
    /// Estimated duration on a device of relative speed 1, in milliseconds.
    pub duration_ms: u64,
    /// The task's kind (dense id of its category), under which the duration model learns.
    pub kind: u32,
}

/// The capability of a device, as the partitioning sees it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// Cores, in thousandths of a core.
    pub cores_milli: u32,
    /// Memory in bytes (`u64::MAX` when the platform does not say).
    pub memory_bytes: u64,
    /// Relative speed: a task's estimated duration is divided by it.
    pub speed: f64,
    /// Network bandwidth in bytes per second (0 when the platform does not say: transfers to
    /// and from it are then taken as free).
    pub network_bytes_per_s: f64,
    /// Price of the whole device per hour, in the platform's currency.
    pub cost_per_hour: f64,
    /// Power drawn by the whole device when busy, in watts.
    pub power_watts: f64,
    /// The device's zone (failure or locality domain), a dense id numbered by first appearance
    /// in the platform; 0 for every device when the platform names none. Not part of the
    /// capability: devices of one class may sit in several zones. The hierarchical placement
    /// ([`crate::hierarchy`]) maps coarse clusters of a huge batch onto zones.
    #[serde(default)]
    pub zone: u32,
}

impl Default for DeviceSpec {
    fn default() -> Self {
        DeviceSpec {
            cores_milli: 1000,
            memory_bytes: u64::MAX,
            speed: 1.0,
            network_bytes_per_s: 0.0,
            cost_per_hour: 0.0,
            power_watts: 0.0,
            zone: 0,
        }
    }
}

impl DeviceSpec {
    /// Whether a task with these requirements fits on this device at all.
    pub fn can_host(&self, task: &TaskSpec) -> bool {
        task.cores_milli <= self.cores_milli && task.memory_bytes <= self.memory_bytes
    }
}

/// The state of a live task (arrived, not completed), as the partition map consumes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskState {
    /// Its requirements.
    pub spec: TaskSpec,
    /// The device it started on, if it has started: the map must keep it there.
    pub pinned: Option<DeviceId>,
    /// Whether all of its parents have completed.
    pub ready: bool,
}

/// A live dependency `((child, parent), bytes)`: the child waits for the parent and reads
/// `bytes` of its output.
pub type Edge = ((TaskKey, TaskKey), u64);

/// An equivalent alternative of a task `(task, (variant, requirements))`, variant ≥ 1 (the task's
/// own requirements are variant 0): a GPU and a CPU build of the same step, say.
pub type Alternative = (TaskKey, (u32, TaskSpec));

/// A queued task the map predicts to run ahead of a task placed before it on the same device
/// (re-sculpting by order, under severe predicted congestion: see [`crate::finish_time`]), with
/// the figures of the decision, as they stood when it was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Reorder {
    /// The task moved ahead.
    pub task: TaskKey,
    /// The device whose queue it is.
    pub device: DeviceId,
    /// The task it now runs ahead of: the head of the queue, waiting for its inputs.
    pub ahead_of: TaskKey,
    /// The device's predicted contention.
    pub contention: Ppm,
    /// When the inputs of `ahead_of` are predicted ready (event time, ms).
    pub head_ready_ms: i64,
    /// The task's predicted finish ahead (event time, ms).
    pub finish_ms: i64,
    /// Its predicted finish had it stayed behind `ahead_of` (event time, ms).
    pub behind_ms: i64,
}

/// What the map re-sculpted: a task it runs as one of its alternatives, or a task it runs
/// ahead of its placement order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Resculpt {
    /// `(task, variant)`: a mapped task run as an alternative (variant ≥ 1).
    Variant(TaskKey, u32),
    /// A queued task moved ahead of a task placed before it.
    Reorder(Reorder),
}

/// A task that completed, as the duration model learns from it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The task's kind (dense id of its category).
    pub category: u32,
    /// The capability class of the device it ran on.
    pub class: u32,
    /// That device's relative speed.
    pub speed: f64,
    /// The workflow's estimate of its duration at speed 1, in seconds (0 when none).
    pub estimate_s: f64,
    /// Total size of its inputs, bytes.
    pub input_bytes: u64,
    /// Cores it used.
    pub cores: f64,
    /// How long it actually ran, in seconds.
    pub seconds: f64,
}

/// Everything that enters the graph at one event time: metric samples, task completions (for
/// the duration model) and changes to the three input collections (live tasks, started tasks,
/// live edges `(child, parent)`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InputBatch {
    /// Metric samples.
    pub samples: Vec<Sample>,
    /// Completions with a known duration.
    pub completions: Vec<Completion>,
    /// Changes to the live-task collection.
    pub tasks: Vec<((TaskKey, TaskSpec), isize)>,
    /// Changes to the started-task collection.
    pub started: Vec<((TaskKey, DeviceId), isize)>,
    /// Changes to the live-edge collection.
    pub edges: Vec<(Edge, isize)>,
    /// Changes to the live alternatives of tasks.
    pub alternatives: Vec<(Alternative, isize)>,
}

impl InputBatch {
    /// Whether the batch carries nothing.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
            && self.completions.is_empty()
            && self.tasks.is_empty()
            && self.started.is_empty()
            && self.edges.is_empty()
            && self.alternatives.is_empty()
    }
}
