//! The placement rule and its incremental engine.
//!
//! # The rule
//! Every device `d` has a predicted contention `c_d` (from the forecasts) and an occupancy `o_d`:
//! the larger of the shares of its cores and of its memory that the live tasks the map itself
//! puts there use. Its *key* is the predicted relative latency of work on it,
//! `(1 + c_d + o_d) / s_d`, with `s_d` its speed. A task `t` would see `add(t, d)`, the key with
//! `t`'s cores and memory added.
//!
//! One epoch (all changes at one event time) is applied as:
//! 1. completed tasks leave the map; changed task states are recorded; a task that started is
//!    pinned to the device it started on (moved there if the map had it elsewhere);
//! 2. the new contention values are taken;
//! 3. new unpinned tasks are placed, ready ones first, then by key: each goes to the best
//!    *candidate*, where every capability class (devices with equal cores, memory and speed) that
//!    can host the task offers its device of least `(key, id)`, and the candidate of least
//!    `(add, id)` wins;
//! 4. rebalance: take the device of greatest `(key, id)` among those holding movable tasks, and
//!    its most recently placed movable task; if the best candidate elsewhere beats staying by more
//!    than the hysteresis (`key > add × (1 + h)`), move it and repeat; otherwise stop.
//!
//! Because the map's own load is part of the key, a burst of arrivals spreads over the devices
//! in proportion to their capacity instead of herding onto the quietest one (capacity-aware). A
//! metric change moves tasks only while the changed device is worse than the best alternative by
//! more than the hysteresis, so a small change moves few tasks (stable).
//!
//! # The engine
//! [`Placer`] never forms the tasks × devices product: each class keeps its devices ordered by
//! key, so a placement costs O(classes × log devices), and a metric change costs O(log devices)
//! plus O(classes × log devices) per task it moves. [`crate::oracle`] is the same rule written
//! with plain scans, for tests.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::types::{
    fraction_from_ppm, Alternative, DeviceId, DeviceSpec, Edge, Ppm, TaskKey, TaskSpec, TaskState,
    Time,
};

/// Which placement rule builds the map: augur's own and the baselines it is compared against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Policy {
    /// Predicted finish time of the whole DAG ([`crate::finish_time`]): learned durations slowed
    /// by forecast contention, data transfers from the parents' devices, upward-rank order.
    #[default]
    Predictive,
    /// The same list scheduling on static estimates: the workflows' own durations, no
    /// forecasts, no learning (HEFT).
    Heft,
    /// Least loaded right now: the load-index rule of [`Placer`] on the latest observed
    /// utilisation instead of a forecast.
    Reactive,
    /// Round robin over the devices that can host each task.
    Static,
    /// The original rule: per task, the device of lowest predicted contention plus the load the
    /// map puts there ([`Placer`] on forecasts).
    Seed,
}

impl Policy {
    /// Every policy, in the order reports list them.
    pub const ALL: [Policy; 5] = [
        Policy::Predictive,
        Policy::Heft,
        Policy::Reactive,
        Policy::Static,
        Policy::Seed,
    ];

    /// The name used on the command line and in every output.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Predictive => "predictive",
            Policy::Heft => "heft",
            Policy::Reactive => "reactive",
            Policy::Static => "static",
            Policy::Seed => "seed",
        }
    }

    /// Parses a policy name.
    pub fn from_name(name: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether the policy places by forecast contention (and so sees the forecasts).
    pub fn uses_forecasts(self) -> bool {
        matches!(self, Policy::Predictive | Policy::Seed)
    }
}

/// What one unit of each objective is worth, summed into one score per candidate device.
/// Latency is in seconds of predicted finish time, cost in the platform's currency, energy in
/// kilojoules and locality in gigabytes moved between devices.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// Per second of predicted finish time (from now).
    pub latency: f64,
    /// Per unit of currency the task's share of the device costs while it runs.
    pub cost: f64,
    /// Per kilojoule the task's share of the device draws while it runs.
    pub energy: f64,
    /// Per gigabyte of parents' output moved from another device.
    pub locality: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            latency: 1.0,
            cost: 0.0,
            energy: 0.0,
            locality: 0.0,
        }
    }
}

/// Knobs of the placement rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlacementConfig {
    /// The rule.
    pub policy: Policy,
    /// Relative improvement a move must bring before a placed task is moved (0.05 = 5%).
    pub hysteresis: f64,
    /// Predicted utilisation (contention plus the share of its cores or memory that ready and
    /// running mapped tasks take) above which a device takes no more tasks while another has
    /// room (1.0 = full).
    pub capacity_target: f64,
    /// How the objectives trade off (finish-time policies only).
    pub weights: Weights,
    /// How much better (relatively) an alternative of a task must score than the task as
    /// declared before the map re-sculpts it (0.25 = 25%): alternatives are for severe
    /// predicted congestion, not for every small edge.
    pub resculpt_margin: f64,
    /// Predicted contention at or above which a device's queue is *severely congested*: its
    /// queued tasks may then run out of placement order, a task whose inputs are ready going
    /// ahead of a head still waiting for its own when that finishes it sooner and the head no
    /// later (finish-time policies; above 1 only over-committed devices qualify).
    pub reorder_contention: f64,
    /// Whether a huge batch of arrivals is first coarsened into clusters mapped onto device
    /// groups ([`crate::hierarchy`]; finish-time policies only).
    pub hierarchy: Hierarchy,
}

/// When the finish-time map places a batch of new tasks hierarchically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hierarchy {
    /// Never: every task considers the candidates of every class (the flat rule).
    Off,
    /// Every batch of new tasks, whatever its size.
    On,
    /// Batches of at least this many new unpinned tasks: below it the flat rule is cheap and
    /// finds better maps; above it coarsening bounds the work per task and keeps heavy
    /// transfers inside a group.
    Auto(usize),
}

impl Hierarchy {
    /// The default threshold of [`Hierarchy::Auto`]: the flat map of a 100k-task Montage takes
    /// about 1.5 s, so batches from half that size up are coarsened.
    pub const AUTO_MIN_TASKS: usize = 50_000;

    /// Whether a batch of `tasks` new tasks is placed hierarchically.
    pub fn applies(self, tasks: usize) -> bool {
        match self {
            Hierarchy::Off => false,
            Hierarchy::On => tasks > 0,
            Hierarchy::Auto(min) => tasks >= min.max(1),
        }
    }
}

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig {
            policy: Policy::default(),
            hysteresis: 0.05,
            capacity_target: 1.0,
            weights: Weights::default(),
            resculpt_margin: 0.25,
            reorder_contention: 0.5,
            hierarchy: Hierarchy::Auto(Hierarchy::AUTO_MIN_TASKS),
        }
    }
}

/// All the changes of one epoch, as the partition map receives them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochChanges {
    /// The epoch's event time.
    pub time: Time,
    /// Devices whose predicted contention changed, with the new value.
    pub contention: Vec<(DeviceId, Ppm)>,
    /// Tasks that left (completed or withdrawn).
    pub removed: Vec<TaskKey>,
    /// Tasks that arrived or whose state changed, with the new state.
    pub upserted: Vec<(TaskKey, TaskState)>,
    /// Edges that arrived (`+1`) or left (`-1`).
    pub edges: Vec<(Edge, isize)>,
    /// Duration estimates per `(kind, class)` that changed: the new value, or `None` if gone.
    pub durations: Vec<((u32, u32), Option<u64>)>,
    /// Alternatives of tasks that arrived (`+1`) or left (`-1`).
    pub alternatives: Vec<(Alternative, isize)>,
}

impl EpochChanges {
    /// Whether the epoch changes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.contention.is_empty()
            && self.removed.is_empty()
            && self.upserted.is_empty()
            && self.edges.is_empty()
            && self.durations.is_empty()
            && self.alternatives.is_empty()
    }
}

/// One change of the partition map: `from` is `None` for a first placement, `to` is `None`
/// when the task left the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MapChange {
    /// The task.
    pub task: TaskKey,
    /// Where the map had it before the epoch.
    pub from: Option<DeviceId>,
    /// Where the map has it after the epoch.
    pub to: Option<DeviceId>,
    /// The variant the map ran it as before the epoch (0: its own requirements).
    pub from_variant: u32,
    /// The variant after the epoch.
    pub to_variant: u32,
}

/// A total order on `f64`, for keys in ordered sets.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Score(pub(crate) f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The arithmetic of the rule, shared by the engine and the oracle so both compute the very same
/// floating-point values.
pub mod cost {
    use crate::types::{DeviceSpec, TaskSpec};

    /// What the map puts on a device: the cores and the memory of its tasks.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub struct Load {
        /// Cores, in thousandths.
        pub cores_milli: u64,
        /// Memory, in bytes.
        pub memory_bytes: u64,
    }

    impl Load {
        /// The load of one task.
        pub fn of(task: &TaskSpec) -> Load {
            Load {
                cores_milli: u64::from(task.cores_milli),
                memory_bytes: task.memory_bytes,
            }
        }

        /// This load with another added.
        pub fn plus(self, other: Load) -> Load {
            Load {
                cores_milli: self.cores_milli.saturating_add(other.cores_milli),
                memory_bytes: self.memory_bytes.saturating_add(other.memory_bytes),
            }
        }

        /// This load with another taken away.
        pub fn minus(self, other: Load) -> Load {
            Load {
                cores_milli: self.cores_milli.saturating_sub(other.cores_milli),
                memory_bytes: self.memory_bytes.saturating_sub(other.memory_bytes),
            }
        }
    }

    /// Predicted relative latency of work on a device: `(1 + c + occupancy) / speed`, where the
    /// occupancy is the larger of the shares of its cores and of its memory that the map
    /// already uses (so memory-hungry tasks spread too, not only busy ones).
    pub fn key(spec: &DeviceSpec, contention: f64, load: Load) -> f64 {
        let cores = load.cores_milli as f64 / spec.cores_milli as f64;
        let memory = load.memory_bytes as f64 / spec.memory_bytes as f64;
        (1.0 + contention + cores.max(memory)) / spec.speed
    }

    /// What a task would see if added to the device.
    pub fn add(spec: &DeviceSpec, contention: f64, load: Load, task: &TaskSpec) -> f64 {
        key(spec, contention, load.plus(Load::of(task)))
    }

    /// Whether moving beats staying by more than the hysteresis.
    pub fn worth_moving(stay: f64, elsewhere: f64, hysteresis: f64) -> bool {
        stay > elsewhere * (1.0 + hysteresis)
    }
}

/// A fast hasher for task keys (two small integers): SipHash's resistance to flooding buys
/// nothing here, since keys are dense ids the driver assigns, and costs a visible share of a
/// 100k-task placement. The map is never iterated, so the hash cannot influence any result.
#[derive(Clone, Copy, Default)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(crate) type TaskMap<V> = HashMap<TaskKey, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// Devices of equal capability, ordered by key.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Class {
    spec: DeviceSpec,
    by_key: BTreeSet<(Score, DeviceId)>,
}

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Placed {
    state: TaskState,
    device: DeviceId,
    /// Order of the last placement decision; the most recent movable task moves first.
    seq: u64,
}

/// A device's movable tasks by placement sequence. Sequence numbers only grow, so almost every
/// insertion is an append: a sorted vector beats a tree map on the 100k-task bursts.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Movable(Vec<(u64, TaskKey)>);

impl Movable {
    pub(crate) fn insert(&mut self, seq: u64, task: TaskKey) {
        match self.0.last() {
            Some(&(last, _)) if last > seq => {
                let at = self.0.partition_point(|&(s, _)| s < seq);
                self.0.insert(at, (seq, task));
            }
            _ => self.0.push((seq, task)),
        }
    }

    pub(crate) fn remove(&mut self, seq: u64) {
        if let Ok(at) = self.0.binary_search_by_key(&seq, |&(s, _)| s) {
            self.0.remove(at);
        }
    }

    /// The tasks in placement order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = TaskKey> + '_ {
        self.0.iter().map(|&(_, task)| task)
    }

    /// The most recently placed movable task.
    pub(crate) fn latest(&self) -> Option<TaskKey> {
        self.0.last().map(|&(_, task)| task)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct DeviceState {
    spec: DeviceSpec,
    class: usize,
    contention: f64,
    load: cost::Load,
    key: f64,
    /// Movable (unpinned) tasks by the sequence number of their placement.
    movable: Movable,
}

/// The incremental partition map (see the module docs for the rule it maintains).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Placer {
    config: PlacementConfig,
    devices: Vec<DeviceState>,
    classes: Vec<Class>,
    /// Devices holding at least one movable task, by key.
    with_movable: BTreeSet<(Score, DeviceId)>,
    /// While many tasks are placed at once, `with_movable` (read only by the rebalance) is
    /// rebuilt once afterwards instead of updated per placement.
    bulk: bool,
    tasks: TaskMap<Placed>,
    next_seq: u64,
}

impl Placer {
    /// An empty map over these devices (device `i` has id `i`).
    pub fn new(devices: &[DeviceSpec], config: PlacementConfig) -> Placer {
        let mut classes: Vec<Class> = Vec::new();
        let mut states = Vec::with_capacity(devices.len());
        for (index, spec) in devices.iter().enumerate() {
            let class = match classes.iter().position(|c| same_capability(&c.spec, spec)) {
                Some(class) => class,
                None => {
                    classes.push(Class {
                        spec: *spec,
                        by_key: BTreeSet::new(),
                    });
                    classes.len() - 1
                }
            };
            let key = cost::key(spec, 0.0, cost::Load::default());
            classes[class]
                .by_key
                .insert((Score(key), index as DeviceId));
            states.push(DeviceState {
                spec: *spec,
                class,
                contention: 0.0,
                load: cost::Load::default(),
                key,
                movable: Movable::default(),
            });
        }
        Placer {
            config,
            devices: states,
            classes,
            with_movable: BTreeSet::new(),
            bulk: false,
            tasks: TaskMap::default(),
            next_seq: 0,
        }
    }

    /// Number of capability classes the devices fall into.
    pub fn class_count(&self) -> usize {
        self.classes.len()
    }

    /// Number of tasks in the map.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Where the map has a task.
    pub fn device_of(&self, task: &TaskKey) -> Option<DeviceId> {
        self.tasks.get(task).map(|placed| placed.device)
    }

    /// Every mapped task with its device (and variant 0: this rule never re-sculpts), in no
    /// particular order.
    pub fn placements(&self) -> Vec<(TaskKey, DeviceId, u32)> {
        self.tasks
            .iter()
            .map(|(task, placed)| (*task, placed.device, 0))
            .collect()
    }

    /// The cores (in thousandths) the map places on a device.
    pub fn load_of(&self, device: DeviceId) -> u64 {
        self.devices
            .get(device as usize)
            .map_or(0, |state| state.load.cores_milli)
    }

    /// Applies one epoch of changes and returns how the map changed, sorted by task.
    pub fn apply(&mut self, mut changes: EpochChanges) -> Vec<MapChange> {
        // Where each touched task was before the epoch; the first entry of a task wins.
        let mut before: Vec<(TaskKey, Option<DeviceId>)> = Vec::new();

        changes.removed.sort_unstable();
        changes.removed.dedup();
        for task in &changes.removed {
            if let Some(placed) = self.tasks.get(task).copied() {
                before.push((*task, Some(placed.device)));
                self.detach(*task, &placed);
            }
        }

        changes.upserted.sort_unstable();
        self.tasks.reserve(changes.upserted.len());
        let mut to_place = Vec::new();
        for (task, state) in changes.upserted {
            if !state_is_sane(&state, self.devices.len()) {
                continue;
            }
            match self.tasks.get(&task).copied() {
                Some(placed) => {
                    before.push((task, Some(placed.device)));
                    self.detach(task, &placed);
                    let device = state.pinned.unwrap_or(placed.device);
                    self.attach(task, state, device, placed.seq);
                }
                None => {
                    before.push((task, None));
                    match state.pinned {
                        Some(device) => {
                            let seq = self.take_seq();
                            self.attach(task, state, device, seq);
                        }
                        None => to_place.push((task, state)),
                    }
                }
            }
        }

        changes.contention.sort_unstable();
        for (device, ppm) in changes.contention {
            if let Some(state) = self.devices.get_mut(device as usize) {
                state.contention = fraction_from_ppm(ppm);
                self.rekey(device);
            }
        }

        // Ready tasks go first: they will run soonest, so they get the best devices.
        to_place.sort_unstable_by_key(|(task, state)| (!state.ready, *task));
        self.bulk = to_place.len() > self.devices.len();
        for (task, state) in to_place {
            if let Some(device) = self.best_candidate(&state.spec, None) {
                let seq = self.take_seq();
                self.attach(task, state, device, seq);
            }
        }
        if self.bulk {
            self.bulk = false;
            self.with_movable = self
                .devices
                .iter()
                .enumerate()
                .filter(|(_, state)| !state.movable.is_empty())
                .map(|(device, state)| (Score(state.key), device as DeviceId))
                .collect();
        }

        before.extend(
            self.rebalance()
                .into_iter()
                .map(|(task, from)| (task, Some(from))),
        );

        // A stable sort keeps each task's first entry first, which dedup then keeps.
        before.sort_by_key(|(task, _)| *task);
        before.dedup_by_key(|(task, _)| *task);
        before
            .into_iter()
            .filter_map(|(task, from)| {
                let to = self.device_of(&task);
                (from != to).then_some(MapChange {
                    task,
                    from,
                    to,
                    from_variant: 0,
                    to_variant: 0,
                })
            })
            .collect()
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Moves tasks off the worst device while that helps by more than the hysteresis; returns
    /// each moved task with the device it left.
    fn rebalance(&mut self) -> Vec<(TaskKey, DeviceId)> {
        let mut moved = Vec::new();
        let movable: usize = self.devices.iter().map(|d| d.movable.len()).sum();
        // A move strictly lowers a potential, so this bound is never reached in exact arithmetic;
        // it only guards against a rounding cycle.
        let budget = 4 * movable + 16;
        for _ in 0..budget {
            let Some(&(_, worst)) = self.with_movable.last() else {
                break;
            };
            let state = &self.devices[worst as usize];
            let Some(task) = state.movable.latest() else {
                break;
            };
            let stay = state.key;
            let Some(placed) = self.tasks.get(&task).copied() else {
                break;
            };
            let Some(target) = self.best_candidate(&placed.state.spec, Some(worst)) else {
                break;
            };
            let target_state = &self.devices[target as usize];
            let elsewhere = cost::add(
                &target_state.spec,
                target_state.contention,
                target_state.load,
                &placed.state.spec,
            );
            if !cost::worth_moving(stay, elsewhere, self.config.hysteresis) {
                break;
            }
            self.detach(task, &placed);
            let seq = self.take_seq();
            self.attach(task, placed.state, target, seq);
            moved.push((task, worst));
        }
        moved
    }

    /// The best device for a task, excluding `except`: the least `(add, id)` among the least
    /// `(key, id)` device of each class that can host it.
    fn best_candidate(&self, spec: &TaskSpec, except: Option<DeviceId>) -> Option<DeviceId> {
        let mut best: Option<(Score, DeviceId)> = None;
        for class in &self.classes {
            if !class.spec.can_host(spec) {
                continue;
            }
            // The class's least-key device, or its second if the least is the one excluded.
            let least = match except {
                None => class.by_key.first(),
                Some(except) => class.by_key.iter().take(2).find(|(_, d)| *d != except),
            };
            let Some(&(_, device)) = least else {
                continue;
            };
            let state = &self.devices[device as usize];
            let add = cost::add(&state.spec, state.contention, state.load, spec);
            let candidate = (Score(add), device);
            if best.is_none_or(|current| candidate < current) {
                best = Some(candidate);
            }
        }
        best.map(|(_, device)| device)
    }

    fn attach(&mut self, task: TaskKey, state: TaskState, device: DeviceId, seq: u64) {
        self.tasks.insert(task, Placed { state, device, seq });
        let entry = &mut self.devices[device as usize];
        entry.load = entry.load.plus(cost::Load::of(&state.spec));
        if state.pinned.is_none() {
            entry.movable.insert(seq, task);
        }
        self.rekey(device);
    }

    fn detach(&mut self, task: TaskKey, placed: &Placed) {
        let entry = &mut self.devices[placed.device as usize];
        entry.load = entry.load.minus(cost::Load::of(&placed.state.spec));
        entry.movable.remove(placed.seq);
        self.tasks.remove(&task);
        self.rekey(placed.device);
    }

    /// Recomputes a device's key and its position in the ordered sets.
    fn rekey(&mut self, device: DeviceId) {
        let state = &mut self.devices[device as usize];
        let old = (Score(state.key), device);
        let class = &mut self.classes[state.class];
        class.by_key.remove(&old);
        state.key = cost::key(&state.spec, state.contention, state.load);
        let new = (Score(state.key), device);
        class.by_key.insert(new);
        if !self.bulk {
            self.with_movable.remove(&old);
            if !state.movable.is_empty() {
                self.with_movable.insert(new);
            }
        }
    }
}

/// The capability class of each device: devices with equal cores, memory and speed share one,
/// numbered in order of first appearance (the same grouping the placer uses).
pub fn capability_classes(devices: &[DeviceSpec]) -> Vec<u32> {
    let mut representatives: Vec<&DeviceSpec> = Vec::new();
    devices
        .iter()
        .map(|spec| {
            let class = match representatives
                .iter()
                .position(|r| same_capability(r, spec))
            {
                Some(class) => class,
                None => {
                    representatives.push(spec);
                    representatives.len() - 1
                }
            };
            class as u32
        })
        .collect()
}

/// Devices are interchangeable for the rules when cores, memory, speed, bandwidth, price and
/// power are all equal.
pub(crate) fn same_capability(a: &DeviceSpec, b: &DeviceSpec) -> bool {
    a.cores_milli == b.cores_milli
        && a.memory_bytes == b.memory_bytes
        && a.speed.to_bits() == b.speed.to_bits()
        && a.network_bytes_per_s.to_bits() == b.network_bytes_per_s.to_bits()
        && a.cost_per_hour.to_bits() == b.cost_per_hour.to_bits()
        && a.power_watts.to_bits() == b.power_watts.to_bits()
}

/// A pin to a device that does not exist is ignored rather than trusted (the driver never sends
/// one; this keeps the map total if it ever did).
pub(crate) fn state_is_sane(state: &TaskState, devices: usize) -> bool {
    state
        .pinned
        .is_none_or(|device| (device as usize) < devices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(cores: u32, speed: f64) -> DeviceSpec {
        DeviceSpec {
            cores_milli: cores * 1000,
            memory_bytes: u64::MAX,
            speed,
            ..DeviceSpec::default()
        }
    }

    fn task(workflow: u32, task: u32) -> TaskKey {
        TaskKey { workflow, task }
    }

    fn state(cores: u32) -> TaskState {
        TaskState {
            spec: TaskSpec {
                cores_milli: cores * 1000,
                memory_bytes: 0,
                duration_ms: 1000,
                kind: 0,
            },
            pinned: None,
            ready: true,
        }
    }

    #[test]
    fn burst_spreads_in_proportion_to_capacity() {
        let devices = [device(8, 1.0), device(8, 1.0), device(16, 1.0)];
        let mut placer = Placer::new(&devices, PlacementConfig::default());
        let upserted = (0..1000).map(|i| (task(0, i), state(1))).collect();
        placer.apply(EpochChanges {
            upserted,
            ..EpochChanges::default()
        });
        let loads: Vec<u64> = (0..3).map(|d| placer.load_of(d) / 1000).collect();
        assert_eq!(loads.iter().sum::<u64>(), 1000);
        // Equal load per core, within one task.
        assert!((loads[0] as i64 - 250).abs() <= 1, "{loads:?}");
        assert!((loads[2] as i64 - 500).abs() <= 2, "{loads:?}");
    }

    #[test]
    fn contention_rise_moves_few_tasks_and_small_change_none() {
        let devices = [device(10, 1.0), device(10, 1.0)];
        let mut placer = Placer::new(&devices, PlacementConfig::default());
        let upserted = (0..20).map(|i| (task(0, i), state(1))).collect();
        placer.apply(EpochChanges {
            upserted,
            ..EpochChanges::default()
        });
        let small = placer.apply(EpochChanges {
            contention: vec![(0, 20_000)],
            ..EpochChanges::default()
        });
        assert!(
            small.is_empty(),
            "a 2% change must not move anything: {small:?}"
        );
        let big = placer.apply(EpochChanges {
            contention: vec![(0, 600_000)],
            ..EpochChanges::default()
        });
        assert!(!big.is_empty() && big.len() <= 4, "{big:?}");
        assert!(big.iter().all(|c| c.from == Some(0) && c.to == Some(1)));
    }

    #[test]
    fn memory_hungry_tasks_spread_by_memory_too() {
        let spec = |memory_gib: u64| DeviceSpec {
            cores_milli: 64_000,
            memory_bytes: memory_gib << 30,
            speed: 1.0,
            ..DeviceSpec::default()
        };
        // Equal cores: by cores alone the tasks would split 5/5.
        let devices = [spec(64), spec(256)];
        let mut placer = Placer::new(&devices, PlacementConfig::default());
        let mut hungry = state(1);
        hungry.spec.memory_bytes = 20 << 30;
        let upserted = (0..10).map(|i| (task(0, i), hungry)).collect();
        placer.apply(EpochChanges {
            upserted,
            ..EpochChanges::default()
        });
        let loads: Vec<u64> = (0..2).map(|d| placer.load_of(d) / 1000).collect();
        assert_eq!(
            loads,
            vec![2, 8],
            "memory share decides: 40 of 64 GiB vs 160 of 256 GiB"
        );
    }

    #[test]
    fn started_task_is_pinned_and_never_moved() {
        let devices = [device(4, 1.0), device(4, 1.0)];
        let mut placer = Placer::new(&devices, PlacementConfig::default());
        let mut pinned = state(1);
        pinned.pinned = Some(1);
        placer.apply(EpochChanges {
            upserted: vec![(task(0, 0), pinned)],
            ..EpochChanges::default()
        });
        placer.apply(EpochChanges {
            contention: vec![(1, 5_000_000)],
            ..EpochChanges::default()
        });
        assert_eq!(placer.device_of(&task(0, 0)), Some(1));
    }

    #[test]
    fn task_too_big_for_a_class_goes_where_it_fits() {
        let devices = [device(2, 4.0), device(32, 1.0)];
        let mut placer = Placer::new(&devices, PlacementConfig::default());
        placer.apply(EpochChanges {
            upserted: vec![(task(0, 0), state(8))],
            ..EpochChanges::default()
        });
        assert_eq!(placer.device_of(&task(0, 0)), Some(1));
    }
}
