//! The finish-time rule (policies `predictive` and `heft`) and its incremental engine.
//!
//! # The rule
//! A device `d` runs its tasks as a fluid queue. A task `t` placed there takes `D(t, d)`
//! milliseconds undisturbed: its work at speed 1 (when the policy learns and the duration model
//! has published for `t`'s kind on `d`'s class, `t`'s estimate times the kind's learned ratio, or
//! the kind's figure if `t` has no estimate; else the workflow's estimate) divided by `d`'s speed.
//! Predicted contention `c_d` slows it to `run(t, d) = D(t, d) (1 + c_d)`, and it takes
//! `share(t, d)`, the larger of its shares of `d`'s cores and memory. The *backlog* of `d` is the
//! time its mapped work needs at full use, `(1 + c_d) max(Σ D·cores / cores_d, Σ D·memory / memory_d)`
//! (it orders pulls only).
//!
//! Its data is ready at `ready(t, d)`: the latest, over its parents, of the parent's predicted
//! finish (or completion) plus the transfer of the edge's bytes at the smaller bandwidth of the
//! two devices (nothing when they are the same device or a bandwidth is unknown), and never
//! before now. Each device runs its mapped tasks as a queue: its running (pinned) tasks, then
//! the others in placement order. Its *available time* `A_d` is the predicted drain of that
//! queue: from now plus each running task's remaining predicted time times its share, each
//! queued task in turn finishes at `max(ready + run, A + run·share)` (not faster than alone,
//! nor before the queue ahead of it drains) and advances `A` by `share × max(run, finish − A)`
//! (its share of the device for its run and for any idle gap before its data is ready). With
//! whole-device tasks this is HEFT's append-only earliest finish, `max(ready, A_d) + run`.
//! (Measured from now instead, as a backlog, tasks that became ready together later each saw
//! the same fast device free and piled onto it: BENCHMARKS.md, "Closed-loop simulation".)
//! A new task is predicted at the end of a queue, behind `max(A_d, now)`, and advances `A_d`;
//! the whole queue is re-predicted from now, with its inputs as predicted then, whenever the
//! device's contention changes or a task there starts, finishes, leaves or changes state
//! (so actual starts replace stale predictions); only that device's tasks are re-predicted.
//! Under *severe* predicted congestion (`c_d` at least
//! [`PlacementConfig::reorder_contention`]) the re-prediction may reorder the front of the
//! queue (its first `REORDER_WINDOW` places): a head
//! whose inputs are not ready when the device frees lets one of the next `REORDER_WINDOW`
//! tasks (the first that is not a child of a task still ahead of it) run in its wait, when that
//! task then finishes sooner than right behind the head and the head no later; each such
//! decision is published ([`crate::types::Reorder`]) until the queue stops keeping it.
//! Its *score* on `d` weighs the finish (seconds from now) with the cost, energy and bytes
//! moved ([`PlacementConfig::weights`]).
//!
//! A device *has room* while its utilisation (contention plus the share of its cores or memory
//! that ready and running mapped tasks take) is below the capacity target.
//!
//! One epoch (all changes at one event time) is applied as:
//! 1. completed tasks leave the map (where they ran is remembered while children still need
//!    their output); edges and duration estimates are updated; a task that started is pinned to
//!    its device, its finish predicted from now;
//! 2. the new contention values are taken; every device whose queue or contention changed in
//!    steps 1 and 2 has its queue re-predicted, by id;
//! 3. ranks are brought up to date (`ranks`: HEFT's `rank_u`, mean duration plus the longest
//!    chain of mean transfers and durations below, kept for every mapped task and recomputed
//!    only where a duration estimate, an edge or a task changed); new unpinned tasks are placed
//!    in order of decreasing rank (over the new tasks and their mapped children), then
//!    shallower first, then by key. A batch the hierarchy applies to
//!    ([`PlacementConfig::hierarchy`]) is first coarsened and its clusters mapped onto device
//!    groups; each of its tasks then draws its candidates from its group only
//!    ([`crate::hierarchy`]). Each goes to the best *candidate* by `(score, id)`:
//!    every capability class (or group's share of one) that can host it offers all its devices
//!    when it has at most `SCAN_CLASS_UP_TO`, else its device of least
//!    `(full, available time, id)` and its device of least `(full, contention, id)`; every
//!    device holding a parent's output is a candidate; candidates with room beat those without. A task that declares
//!    alternatives (re-sculpting) runs as the best of them instead when that one has room where
//!    the declared task has none, or scores better by more than `resculpt_margin`; it keeps
//!    its variant until it is next moved;
//! 4. rebalance where the epoch changed something. Each device whose contention rose (by id)
//!    sheds: its most recently placed movable task (the last of its queue, so staying it is
//!    predicted behind the available time before it, which the device returns to when it
//!    leaves) moves to the best candidate elsewhere if that beats its score where it is by more
//!    than the hysteresis (and, if that device has no room,
//!    only while the device it leaves stays full without it), again and again; the first task
//!    that stays ends the step. Then each device that became cheaper (its contention fell or a
//!    task left it; by id) pulls: the most recently placed movable task of the other device of
//!    greatest `(full, backlog, id)` moves to it if it is that task's best candidate and beats
//!    staying by more than the hysteresis, again and again, until one does not. Nothing else
//!    moves, so a change touches only the tasks it concerns. (Rank-ordered rebalancing, the
//!    least or most critical task first, was built and measured: in `augur simulate` every
//!    such order made makespans worse, up to 1.76x heft on rnaseq without background (see
//!    BENCHMARKS.md). So ranks order placements and clusters, and are kept current for them.)
//!
//! Durations learned later apply to tasks placed later, and to a placed task when it is next
//! moved or changes state: the map's sums stay exact integers, so the oracle can recompute them.
//!
//! # The engine
//! Each class keeps its devices ordered by both keys, so a placement costs
//! O((classes + parents) × log devices) (plus the devices of classes small enough to scan) and
//! never forms the tasks × devices product; appending a task to a queue is O(1), re-predicting
//! one O(its tasks × their parents).
//! [`crate::oracle`] is the same rule written with plain scans.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

use crate::hierarchy;
use crate::placement::{same_capability, state_is_sane, EpochChanges, MapChange, PlacementConfig};
use crate::placement::{Hierarchy, Movable, Score, TaskMap};
use crate::task_durations::learned_work_ms;
use crate::types::{fraction_from_ppm, ppm_from_fraction, DeviceId, DeviceSpec, Reorder};
use crate::types::{TaskKey, TaskSpec, TaskState, Time};

pub mod cost;
mod groups;
mod ranks;

pub use ranks::rank_updates_total;

/// A capability class (or a group's share of one) of at most this many devices offers every
/// device as a candidate; a larger one offers its earliest-available and its least-contended
/// device (a device between the two, available a little later with less contention, can be
/// missed there; scanning a thousand devices per placement is what that saves).
pub(crate) const SCAN_CLASS_UP_TO: usize = 32;

/// How far into its queue a severely congested device looks for a task to run in a waiting
/// head's gap: the first this many places of the queue (where the next tasks to run are
/// decided; deeper predictions are the least certain) may be filled out of order, each from
/// the next this many tasks behind the head. It bounds the extra work of a re-prediction by a
/// constant: unbounded, the look-ahead doubled the 1,000-change batches of `augur bench --large`.
pub(crate) const REORDER_WINDOW: usize = 8;
use ranks::{level_below, placement_order, upward_ranks};

/// Where a task's output is (or will be) and when: a placed task's predicted finish, or a
/// completed task's device and completion time.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Output {
    device: DeviceId,
    at: f64,
}

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Placed {
    state: TaskState,
    /// The requirements of the variant the map runs it as.
    spec: TaskSpec,
    variant: u32,
    device: DeviceId,
    seq: u64,
    duration_ms: u64,
    finish_ms: f64,
    /// The device's available time it was last predicted behind (queued tasks only): what the
    /// device's available time returns to when it, the last of the queue, moves away.
    queue_at: f64,
    /// Its upward rank ([`ranks`]), kept current as durations, edges and tasks change.
    rank: f64,
    /// A topological number (deeper below its parents), for the order of rank propagation.
    level: u32,
    /// Whether its device's queue runs it ahead of a task placed before it (the decision is in
    /// [`FinishTimePlacer::reordered`]; a flag here keeps every placed task small).
    reordered: bool,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Device {
    spec: DeviceSpec,
    class: usize,
    /// Its group ([`hierarchy::device_groups`]) and its (class, group) cell.
    group: u32,
    cell: usize,
    contention: f64,
    /// The contention this device is filed under in its class's `by_contention` (the field
    /// above changes first, then [`FinishTimePlacer::rekey`] refiles it).
    indexed_contention: f64,
    work: cost::Work,
    /// The work of its queued (not running) tasks: the queue cannot drain before now plus this
    /// at full use, however stale its available time.
    queued: cost::Work,
    active_cores: u64,
    active_memory: u64,
    backlog: f64,
    full: bool,
    movable: Movable,
    /// Its running (pinned) tasks, by placement sequence: the head of its queue.
    running: Movable,
    /// Its *available time*: the predicted drain of its queue (running tasks, then the movable
    /// ones in placement order); 0 while nothing is mapped on it.
    available: f64,
    /// The available time it is filed under in its class's `by_available`.
    indexed_available: f64,
    /// Whether its queue must be re-predicted before the epoch places anything.
    stale: bool,
}

impl Device {
    fn order(&self, id: DeviceId) -> (bool, Score, DeviceId) {
        (self.full, Score(self.backlog), id)
    }

    fn by_available(&self, id: DeviceId) -> (bool, Score, DeviceId) {
        (self.full, Score(self.available), id)
    }

    fn queue_is_empty(&self) -> bool {
        self.movable.is_empty() && self.running.is_empty()
    }

    fn by_contention(&self, id: DeviceId) -> (bool, Score, DeviceId) {
        (self.full, Score(self.contention), id)
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Class {
    spec: DeviceSpec,
    devices: Vec<DeviceId>,
    by_available: BTreeSet<(bool, Score, DeviceId)>,
    by_contention: BTreeSet<(bool, Score, DeviceId)>,
}

/// The devices of one class within one group, ordered as a class orders its devices: the
/// candidates of a task the hierarchical mode restricts to that group. Kept only when the
/// platform has two or more groups and the hierarchy is not off.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Cell {
    class: usize,
    by_available: BTreeSet<(bool, Score, DeviceId)>,
    by_contention: BTreeSet<(bool, Score, DeviceId)>,
}

/// A variant of a task: 0 and its declared requirements, or an alternative.
/// A device's most recently placed movable task, and its score staying there (see
/// [`FinishTimePlacer::try_pull`]).
struct Stay {
    from: DeviceId,
    task: TaskKey,
    placed: Placed,
    inputs: Vec<(DeviceId, f64, u64)>,
    score: f64,
}

#[derive(Clone, Copy, Debug)]
struct Choice {
    variant: u32,
    spec: TaskSpec,
}

impl Choice {
    fn declared(state: &TaskState) -> Choice {
        Choice {
            variant: 0,
            spec: state.spec,
        }
    }
}

/// One candidate's evaluation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Evaluation {
    device: DeviceId,
    score: f64,
    finish: f64,
    room: bool,
}

impl Evaluation {
    fn beats(&self, other: &Evaluation) -> bool {
        (!self.room, Score(self.score), self.device)
            < (!other.room, Score(other.score), other.device)
    }
}

/// The incremental finish-time map (see the module docs for the rule it maintains).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FinishTimePlacer {
    config: PlacementConfig,
    learn: bool,
    devices: Vec<Device>,
    classes: Vec<Class>,
    cells: Vec<Cell>,
    /// The cells of each group, by class.
    group_cells: Vec<Vec<usize>>,
    /// Whether huge batches may be placed hierarchically (the cells are kept).
    hierarchical: bool,
    with_movable: BTreeSet<(bool, Score, DeviceId)>,
    bulk: bool,
    tasks: TaskMap<Placed>,
    parents: TaskMap<Vec<(TaskKey, u64)>>,
    /// Each task's live out-edges (children and bytes): for ranks, and to remember a
    /// completed task's output while a child still needs it.
    children: TaskMap<Vec<(TaskKey, u64)>>,
    /// Mapped tasks by declared kind: those whose rank a new duration estimate changes.
    by_kind: HashMap<u32, TaskMap<()>>,
    /// Ranks recomputed so far (see [`ranks`]).
    rank_updates: u64,
    done: TaskMap<Output>,
    alternatives: TaskMap<Vec<(u32, TaskSpec)>>,
    learned: HashMap<(u32, u32), u64>,
    mean_bandwidth: f64,
    next_seq: u64,
    now: Time,
    /// Devices whose queue this epoch changed other than at its end (see [`Self::repredict`]).
    stale: Vec<DeviceId>,
    /// Why each task its queue runs ahead of its placement order is there (see
    /// [`Self::repredict`]): the decision as it was first made, kept while the queue keeps it
    /// ahead of the same task.
    reordered: TaskMap<Reorder>,
    /// This epoch's changes of the reordered tasks (drained by [`Self::take_reorder_changes`]).
    reorder_changes: Vec<(Reorder, isize)>,
}

impl FinishTimePlacer {
    /// An empty map over these devices; `learn` takes the duration model's estimates
    /// (`predictive`) instead of the workflows' own only (`heft`).
    pub fn new(devices: &[DeviceSpec], config: PlacementConfig, learn: bool) -> Self {
        let mut classes: Vec<Class> = Vec::new();
        let mut states = Vec::with_capacity(devices.len());
        let groups = hierarchy::device_groups(devices);
        let group_count = groups.iter().map(|g| *g as usize + 1).max().unwrap_or(0);
        let hierarchical = config.hierarchy != Hierarchy::Off && group_count > 1;
        let mut cells: Vec<Cell> = Vec::new();
        let mut cell_index: HashMap<(usize, u32), usize> = HashMap::new();
        for (index, spec) in devices.iter().enumerate() {
            let id = index as DeviceId;
            let class = match classes.iter().position(|c| same_capability(&c.spec, spec)) {
                Some(class) => class,
                None => {
                    classes.push(Class {
                        spec: *spec,
                        devices: Vec::new(),
                        by_available: BTreeSet::new(),
                        by_contention: BTreeSet::new(),
                    });
                    classes.len() - 1
                }
            };
            let group = groups[index];
            let cell = *cell_index.entry((class, group)).or_insert_with(|| {
                cells.push(Cell {
                    class,
                    by_available: BTreeSet::new(),
                    by_contention: BTreeSet::new(),
                });
                cells.len() - 1
            });
            let device = Device {
                spec: *spec,
                class,
                group,
                cell,
                contention: 0.0,
                indexed_contention: 0.0,
                work: cost::Work::default(),
                queued: cost::Work::default(),
                active_cores: 0,
                active_memory: 0,
                backlog: 0.0,
                full: config.capacity_target <= 0.0,
                movable: Movable::default(),
                running: Movable::default(),
                available: 0.0,
                indexed_available: 0.0,
                stale: false,
            };
            classes[class].devices.push(id);
            classes[class].by_available.insert(device.by_available(id));
            classes[class]
                .by_contention
                .insert(device.by_contention(id));
            if hierarchical {
                cells[cell].by_available.insert(device.by_available(id));
                cells[cell].by_contention.insert(device.by_contention(id));
            }
            states.push(device);
        }
        let mut group_cells = vec![Vec::new(); group_count];
        let mut keys: Vec<(&(usize, u32), &usize)> = cell_index.iter().collect();
        keys.sort_unstable();
        for (&(_, group), &cell) in keys {
            group_cells[group as usize].push(cell);
        }
        FinishTimePlacer {
            config,
            learn,
            mean_bandwidth: mean_bandwidth(devices),
            devices: states,
            classes,
            cells: if hierarchical { cells } else { Vec::new() },
            group_cells,
            hierarchical,
            with_movable: BTreeSet::new(),
            bulk: false,
            tasks: TaskMap::default(),
            parents: TaskMap::default(),
            children: TaskMap::default(),
            by_kind: HashMap::new(),
            rank_updates: 0,
            done: TaskMap::default(),
            alternatives: TaskMap::default(),
            learned: HashMap::new(),
            next_seq: 0,
            now: 0,
            stale: Vec::new(),
            reordered: TaskMap::default(),
            reorder_changes: Vec::new(),
        }
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

    /// Every mapped task with its device and variant, in no particular order.
    pub fn placements(&self) -> Vec<(TaskKey, DeviceId, u32)> {
        self.tasks
            .iter()
            .map(|(task, placed)| (*task, placed.device, placed.variant))
            .collect()
    }

    /// The queued tasks its devices' queues run ahead of their placement order, by task.
    pub fn reorders(&self) -> Vec<Reorder> {
        let mut reorders: Vec<Reorder> = self.reordered.values().copied().collect();
        reorders.sort_unstable();
        reorders
    }

    /// How the reordered tasks changed since the last call (consolidated).
    pub fn take_reorder_changes(&mut self) -> Vec<(Reorder, isize)> {
        let mut changes = std::mem::take(&mut self.reorder_changes);
        differential_dataflow::consolidation::consolidate(&mut changes);
        changes
    }

    /// The task's predicted finish (absolute milliseconds), if mapped.
    pub fn finish_of(&self, task: &TaskKey) -> Option<f64> {
        self.tasks.get(task).map(|placed| placed.finish_ms)
    }

    /// A device's predicted utilisation: contention plus what the active mapped tasks take.
    pub fn utilisation_of(&self, device: DeviceId) -> f64 {
        self.devices.get(device as usize).map_or(0.0, |d| {
            cost::utilisation(&d.spec, d.contention, d.active_cores, d.active_memory)
        })
    }

    /// Per capability class with predicted demand over the capacity target, the devices it
    /// would need to add: `(class, amount)`, by class.
    pub fn prewarm(&self) -> Vec<(u32, u32)> {
        self.classes
            .iter()
            .enumerate()
            .filter_map(|(index, class)| {
                let capacity: f64 = class
                    .devices
                    .iter()
                    .map(|d| f64::from(self.devices[*d as usize].spec.cores_milli))
                    .sum();
                let demand: f64 = class
                    .devices
                    .iter()
                    .map(|d| {
                        let device = &self.devices[*d as usize];
                        cost::utilisation(
                            &device.spec,
                            device.contention,
                            device.active_cores,
                            device.active_memory,
                        ) * f64::from(device.spec.cores_milli)
                    })
                    .sum();
                let amount = cost::prewarm_amount(
                    demand,
                    capacity,
                    self.config.capacity_target,
                    class.spec.cores_milli,
                );
                (amount > 0).then_some((index as u32, amount))
            })
            .collect()
    }

    /// Applies one epoch of changes and returns how the map changed, sorted by task.
    pub fn apply(&mut self, mut changes: EpochChanges) -> Vec<MapChange> {
        self.now = changes.time;
        let mut before: Vec<(TaskKey, Option<DeviceId>, u32)> = Vec::new();

        // Tasks whose rank may have changed this epoch (see `ranks`).
        let mut seeds: Vec<TaskKey> = Vec::new();
        let mut kinds: Vec<u32> = Vec::new();
        if self.learn {
            for (key, value) in changes.durations.drain(..) {
                kinds.push(key.0);
                match value {
                    Some(ms) => self.learned.insert(key, ms),
                    None => self.learned.remove(&key),
                };
            }
        }

        // Devices that became cheaper this epoch: they pull work in step 4.
        let mut freed = Vec::new();
        changes.removed.sort_unstable();
        changes.removed.dedup();
        for task in &changes.removed {
            if let Some(placed) = self.tasks.get(task).copied() {
                before.push((*task, Some(placed.device), placed.variant));
                freed.push(placed.device);
                self.detach(*task, &placed);
                self.mark_stale(placed.device);
                if let Some(parents) = self.parents.get(task) {
                    seeds.extend(parents.iter().map(|(parent, _)| *parent));
                }
                if self.children.get(task).is_some_and(|c| !c.is_empty()) {
                    let at = self.now as f64;
                    self.done.insert(
                        *task,
                        Output {
                            device: placed.device,
                            at,
                        },
                    );
                }
            }
            self.parents.remove(task);
        }

        changes.alternatives.sort_unstable();
        for ((task, (variant, spec)), diff) in changes.alternatives {
            if diff > 0 {
                let list = self.alternatives.entry(task).or_default();
                list.push((variant, spec));
                list.sort_unstable();
            } else if let Some(list) = self.alternatives.get_mut(&task) {
                list.retain(|entry| *entry != (variant, spec));
                if list.is_empty() {
                    self.alternatives.remove(&task);
                }
            }
        }

        // Additions first, so that a parent's count of live children never touches zero
        // in passing and drops the record of its output.
        changes
            .edges
            .sort_unstable_by_key(|&(edge, diff)| (Reverse(diff.signum()), edge));
        for (((child, parent), bytes), diff) in changes.edges {
            seeds.push(parent);
            if diff > 0 {
                self.parents.entry(child).or_default().push((parent, bytes));
                self.children
                    .entry(parent)
                    .or_default()
                    .push((child, bytes));
            } else {
                if let Some(list) = self.parents.get_mut(&child) {
                    if let Some(at) = list.iter().position(|e| *e == (parent, bytes)) {
                        list.swap_remove(at);
                    }
                    if list.is_empty() {
                        self.parents.remove(&child);
                    }
                }
                if let Some(list) = self.children.get_mut(&parent) {
                    if let Some(at) = list.iter().position(|e| *e == (child, bytes)) {
                        list.swap_remove(at);
                    }
                    if list.is_empty() {
                        self.children.remove(&parent);
                        self.done.remove(&parent);
                    }
                }
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
                    before.push((task, Some(placed.device), placed.variant));
                    if placed.state.spec != state.spec {
                        seeds.push(task);
                    }
                    let kept = if placed.reordered {
                        self.reordered.get(&task).copied()
                    } else {
                        None
                    };
                    self.detach(task, &placed);
                    self.mark_stale(placed.device);
                    let device = state.pinned.unwrap_or(placed.device);
                    // It keeps the variant the map chose; the declared one if that is gone.
                    let choice = match self.variant_spec(task, &state, placed.variant) {
                        Some(spec) => Choice {
                            variant: placed.variant,
                            spec,
                        },
                        None => Choice::declared(&state),
                    };
                    // A queued task's finish is re-predicted with its device's queue below.
                    let finish = match (state.pinned, placed.state.pinned) {
                        (Some(_), Some(_)) if device == placed.device => placed.finish_ms,
                        (Some(_), _) => self.started_finish(&choice.spec, device),
                        (None, _) => placed.finish_ms,
                    };
                    self.mark_stale(device);
                    let at = (device, placed.seq, placed.rank, placed.level);
                    // Still queued where it was, it stays ahead of the task it went ahead of
                    // until its queue is re-predicted below.
                    let reorder =
                        kept.filter(|_| state.pinned.is_none() && device == placed.device);
                    self.attach(task, state, choice, at, finish, reorder);
                }
                None => {
                    before.push((task, None, 0));
                    match state.pinned {
                        Some(device) => {
                            let seq = self.take_seq();
                            let finish = self.started_finish(&state.spec, device);
                            self.mark_stale(device);
                            // Its rank is computed with the seeds, before new tasks are placed.
                            seeds.push(task);
                            let level = level_below(self.parents.get(&task), |p| {
                                self.tasks.get(p).map(|placed| placed.level)
                            });
                            let at = (device, seq, 0.0, level);
                            self.attach(task, state, Choice::declared(&state), at, finish, None);
                        }
                        None => to_place.push((task, state)),
                    }
                }
            }
        }

        changes.contention.sort_unstable();
        let mut rising = Vec::new();
        for (device, ppm) in changes.contention {
            if let Some(state) = self.devices.get_mut(device as usize) {
                let value = fraction_from_ppm(ppm);
                if value > state.contention {
                    rising.push(device);
                } else if value < state.contention {
                    freed.push(device);
                }
                state.contention = value;
                // Stale, so re-predicted below, which re-keys it (once, not twice an epoch).
                self.mark_stale(device);
            }
        }
        // Every device whose queue or contention changed, or where a task started or finished,
        // has its queue re-predicted from now (by id, so that the order is the oracle's).
        let mut stale = std::mem::take(&mut self.stale);
        stale.sort_unstable();
        for device in stale {
            self.repredict(device);
        }

        // Ranks of the map as it stands, then of the new tasks over it.
        kinds.sort_unstable();
        kinds.dedup();
        for kind in kinds {
            if let Some(tasks) = self.by_kind.get(&kind) {
                seeds.extend(tasks.keys().copied());
            }
        }
        self.propagate_ranks(seeds);
        let ranks = self.batch_ranks(&to_place);
        let order = placement_order(&to_place, &ranks);
        let groups = if self.hierarchical && self.config.hierarchy.applies(to_place.len()) {
            self.assign_groups(&to_place, &ranks)
        } else {
            Vec::new()
        };
        self.bulk = to_place.len() > self.devices.len();
        for index in order {
            let (task, state) = to_place[index];
            let group = groups.get(index).copied().flatten();
            if let Some((best, choice)) = self.best_choice(task, &state, None, group) {
                let seq = self.take_seq();
                let at = (best.device, seq, ranks[index].0, ranks[index].2);
                self.attach(task, state, choice, at, best.finish, None);
            }
        }
        // The new tasks' mapped parents gain children; a new task whose child could not be
        // placed loses one: recompute them (the rest is settled when nothing changes).
        let mut seeds: Vec<TaskKey> = Vec::new();
        for (task, _) in &to_place {
            if let Some(parents) = self.parents.get(task) {
                seeds.extend(parents.iter().map(|(parent, _)| *parent));
            }
        }
        self.propagate_ranks(seeds);
        if self.bulk {
            self.bulk = false;
            self.with_movable = self
                .devices
                .iter()
                .enumerate()
                .filter(|(_, d)| !d.movable.is_empty())
                .map(|(id, d)| d.order(id as DeviceId))
                .collect();
        }

        let mut moved = Vec::new();
        for device in rising {
            let budget = self.devices[device as usize].movable.len();
            for _ in 0..budget {
                match self.try_move_latest(device) {
                    Some((task, variant)) => moved.push((task, device, variant)),
                    None => break,
                }
            }
        }
        freed.sort_unstable();
        freed.dedup();
        let mut stay = None;
        for device in freed {
            let budget = self.tasks.len();
            for _ in 0..budget {
                match self.try_pull(device, &mut stay) {
                    Some((task, from, variant)) => moved.push((task, from, variant)),
                    None => break,
                }
            }
        }
        before.extend(
            moved
                .into_iter()
                .map(|(task, from, variant)| (task, Some(from), variant)),
        );

        before.sort_by_key(|(task, _, _)| *task);
        before.dedup_by_key(|(task, _, _)| *task);
        before
            .into_iter()
            .filter_map(|(task, from, from_variant)| {
                let to = self.device_of(&task);
                let to_variant = self.tasks.get(&task).map_or(0, |placed| placed.variant);
                (from != to || (to.is_some() && from_variant != to_variant)).then_some(MapChange {
                    task,
                    from,
                    to,
                    from_variant,
                    to_variant,
                })
            })
            .collect()
    }

    /// Upward rank and depth of each new task, over the new tasks and the mapped ones.
    fn batch_ranks(&self, to_place: &[(TaskKey, TaskState)]) -> Vec<(f64, u32, u32)> {
        let none: &[(TaskKey, u64)] = &[];
        upward_ranks(
            to_place,
            |task| self.children.get(task).map_or(none, |list| list.as_slice()),
            |task| self.tasks.get(task).map(|placed| placed.rank),
            |task| {
                level_below(self.parents.get(task), |p| {
                    self.tasks.get(p).map(|placed| placed.level)
                })
            },
            |spec| self.mean_duration(spec),
            self.mean_bandwidth,
        )
    }

    /// A task's duration averaged over the capability classes, for ranks.
    fn mean_duration(&self, spec: &TaskSpec) -> f64 {
        let total: f64 = (0..self.classes.len())
            .map(|class| self.duration_ms(spec, class) as f64)
            .sum();
        total / self.classes.len().max(1) as f64
    }

    /// `D(t, d)` for a device of this class.
    fn duration_ms(&self, spec: &TaskSpec, class: usize) -> u64 {
        let learned = (self.learn && !self.learned.is_empty()).then_some(&self.learned);
        duration_on(spec, &self.classes[class].spec, class, learned)
    }

    fn started_finish(&self, spec: &TaskSpec, device: DeviceId) -> f64 {
        let state = &self.devices[device as usize];
        let duration = self.duration_ms(spec, state.class);
        self.now as f64 + cost::run_ms(duration, state.contention)
    }

    /// Where a task's inputs are and when they are ready there: `(device, at, bytes)` per
    /// parent whose output is placed or remembered.
    fn inputs_of(&self, task: TaskKey) -> Vec<(DeviceId, f64, u64)> {
        match self.parents.get(&task) {
            None => Vec::new(),
            Some(parents) => parents
                .iter()
                .filter_map(|&(parent, bytes)| {
                    self.output_of(&parent)
                        .map(|output| (output.device, output.at, bytes))
                })
                .collect(),
        }
    }

    /// When a task queued on `device` behind `available` can start at the earliest: not before
    /// now plus the device's queued work at full use (`without` some of it), so that a queue
    /// whose predictions went stale (its tasks start late, nothing re-predicted it) still counts.
    fn queue_start(&self, device: DeviceId, available: f64, without: cost::Work) -> f64 {
        let state = &self.devices[device as usize];
        let queued = cost::backlog_ms(&state.spec, state.contention, state.queued.minus(without));
        available.max(self.now as f64 + queued)
    }

    /// When a task's inputs are all on `device` (never before now), and the bytes that come
    /// from elsewhere.
    fn ready_on(&self, inputs: &[(DeviceId, f64, u64)], device: DeviceId) -> (f64, u64) {
        let spec = &self.devices[device as usize].spec;
        let mut ready = self.now as f64;
        let mut remote = 0u64;
        for &(from, at, bytes) in inputs {
            let mut at = at;
            if from != device {
                remote = remote.saturating_add(bytes);
                at += cost::transfer_ms(bytes, &self.devices[from as usize].spec, spec);
            }
            ready = ready.max(at);
        }
        (ready, remote)
    }

    /// [`Self::ready_on`] without listing the inputs.
    #[inline(always)]
    fn ready_of(&self, task: TaskKey, device: DeviceId) -> f64 {
        let spec = &self.devices[device as usize].spec;
        let mut ready = self.now as f64;
        for &(parent, bytes) in self.parents.get(&task).map_or(&[][..], |p| p.as_slice()) {
            if let Some(output) = self.output_of(&parent) {
                let mut at = output.at;
                if output.device != device {
                    at +=
                        cost::transfer_ms(bytes, &self.devices[output.device as usize].spec, spec);
                }
                ready = ready.max(at);
            }
        }
        ready
    }

    /// The predicted finish and score of a task on `device` that can start from `start`
    /// ([`Self::queue_start`]).
    fn evaluate_with(
        &self,
        inputs: &[(DeviceId, f64, u64)],
        spec: &TaskSpec,
        device: DeviceId,
        start: f64,
    ) -> Evaluation {
        let state = &self.devices[device as usize];
        let now = self.now as f64;
        let (ready, remote) = self.ready_on(inputs, device);
        let duration = self.duration_ms(spec, state.class);
        let run = cost::run_ms(duration, state.contention);
        let share = cost::share(&state.spec, spec);
        let finish = cost::finish_ms(ready, start, run, share);
        let score = cost::score(
            &self.config.weights,
            &state.spec,
            now,
            finish,
            run,
            share,
            remote,
        );
        Evaluation {
            device,
            score,
            finish,
            room: !state.full,
        }
    }

    #[inline(always)]
    fn output_of(&self, task: &TaskKey) -> Option<Output> {
        match self.tasks.get(task) {
            Some(placed) => Some(Output {
                device: placed.device,
                at: placed.finish_ms,
            }),
            None => self.done.get(task).copied(),
        }
    }

    /// The best device and variant for a task, excluding `except`: the best candidate for its
    /// declared requirements, unless the best of its alternatives beats it: by having room
    /// where it has none, or by more than the re-sculpting margin.
    fn best_choice(
        &self,
        task: TaskKey,
        state: &TaskState,
        except: Option<DeviceId>,
        group: Option<u32>,
    ) -> Option<(Evaluation, Choice)> {
        let declared = self
            .best_candidate(task, &state.spec, except, group)
            .map(|e| (e, Choice::declared(state)));
        let Some(alternatives) = self.alternatives.get(&task) else {
            return declared;
        };
        let mut best_alternative: Option<(Evaluation, Choice)> = None;
        for &(variant, spec) in alternatives {
            if let Some(evaluation) = self.best_candidate(task, &spec, except, group) {
                let better = best_alternative.is_none_or(|(current, _)| {
                    (!evaluation.room, Score(evaluation.score), variant)
                        < (!current.room, Score(current.score), 0)
                });
                if better {
                    best_alternative = Some((evaluation, Choice { variant, spec }));
                }
            }
        }
        match (declared, best_alternative) {
            (Some(d), Some(a)) if resculpt(&d.0, &a.0, self.config.resculpt_margin) => Some(a),
            (None, Some(a)) => Some(a),
            (d, _) => d,
        }
    }

    /// The requirements of a variant of a task, if it still has it.
    fn variant_spec(&self, task: TaskKey, state: &TaskState, variant: u32) -> Option<TaskSpec> {
        if variant == 0 {
            return Some(state.spec);
        }
        self.alternatives
            .get(&task)?
            .iter()
            .find(|(v, _)| *v == variant)
            .map(|(_, spec)| *spec)
    }

    /// The best device for a task, excluding `except` (see the module docs); with a `group`,
    /// among that group's devices only ([`crate::hierarchy`]).
    fn best_candidate(
        &self,
        task: TaskKey,
        spec: &TaskSpec,
        except: Option<DeviceId>,
        group: Option<u32>,
    ) -> Option<Evaluation> {
        let inputs = self.inputs_of(task);
        let mut best: Option<Evaluation> = None;
        let mut consider = |device: DeviceId| {
            let state = &self.devices[device as usize];
            let start = self.queue_start(device, state.available, cost::Work::default());
            let evaluation = self.evaluate_with(&inputs, spec, device, start);
            if best.is_none_or(|current| evaluation.beats(&current)) {
                best = Some(evaluation);
            }
        };
        let mut offer = |spec_of_class: &DeviceSpec,
                         sets: [&BTreeSet<(bool, Score, DeviceId)>; 2]| {
            if !spec_of_class.can_host(spec) {
                return;
            }
            if sets[0].len() <= SCAN_CLASS_UP_TO {
                for &(_, _, device) in sets[0] {
                    if Some(device) != except {
                        consider(device);
                    }
                }
                return;
            }
            for set in sets {
                let least = set.iter().take(2).find(|(_, _, d)| Some(*d) != except);
                if let Some(&(_, _, device)) = least {
                    consider(device);
                }
            }
        };
        match group.filter(|_| self.hierarchical) {
            None => {
                for class in &self.classes {
                    offer(&class.spec, [&class.by_available, &class.by_contention]);
                }
            }
            Some(group) => {
                for &cell in &self.group_cells[group as usize] {
                    let cell = &self.cells[cell];
                    let class = &self.classes[cell.class];
                    offer(&class.spec, [&cell.by_available, &cell.by_contention]);
                }
            }
        }
        // A task may read from thousands of parents on a handful of devices: each device once.
        let mut homes: Vec<DeviceId> = inputs.iter().map(|&(device, _, _)| device).collect();
        homes.sort_unstable();
        homes.dedup();
        for device in homes {
            let state = &self.devices[device as usize];
            let in_group = group.is_none_or(|g| !self.hierarchical || state.group == g);
            if Some(device) != except && in_group && state.spec.can_host(spec) {
                consider(device);
            }
        }
        best
    }

    /// Moves the device's most recently placed movable task if the best candidate elsewhere beats
    /// staying by more than the hysteresis; returns it and its variant before.
    fn try_move_latest(&mut self, device: DeviceId) -> Option<(TaskKey, u32)> {
        self.move_latest(device, None)
    }

    /// Pulls the most recently placed movable task of the most backlogged other device into
    /// `device`, if `device` is that task's best candidate and beats where it is by more than the
    /// hysteresis; returns the task, where it was and its variant before.
    ///
    /// `stay` carries what staying costs that task from one pulling device to the next: every
    /// device that became cheaper in an epoch asks about the same task, and until one of them
    /// takes it nothing it depends on changes.
    fn try_pull(
        &mut self,
        device: DeviceId,
        stay: &mut Option<Stay>,
    ) -> Option<(TaskKey, DeviceId, u32)> {
        let &(_, _, worst) = self
            .with_movable
            .iter()
            .rev()
            .take(2)
            .find(|(_, _, d)| *d != device)?;
        if stay.as_ref().is_none_or(|known| known.from != worst) {
            *stay = self.stay_of(worst);
        }
        let known = stay.as_ref()?;
        // `move_latest`'s first test for a pull, on the cached figures.
        if !self.could_beat_on(
            known.task,
            &known.placed.state,
            &known.inputs,
            device,
            known.score,
        ) {
            return None;
        }
        let moved = self.move_latest(worst, Some(device));
        if moved.is_some() {
            *stay = None;
        }
        moved.map(|(task, variant)| (task, worst, variant))
    }

    /// The most recently placed movable task of `from` and what staying there costs it.
    fn stay_of(&self, from: DeviceId) -> Option<Stay> {
        let task = self.devices[from as usize].movable.latest()?;
        let placed = *self.tasks.get(&task)?;
        let inputs = self.inputs_of(task);
        // It is the last of its device's queue: staying, it is queued where it is.
        let own = cost::Work::of(&placed.spec, placed.duration_ms);
        let start = self.queue_start(from, placed.queue_at, own);
        let score = self.evaluate_with(&inputs, &placed.spec, from, start).score;
        Some(Stay {
            from,
            task,
            placed,
            inputs,
            score,
        })
    }

    /// The one move of the rebalancing: `from`'s most recently placed movable task goes to its
    /// best candidate elsewhere (which must be `only_to`, when given) if that beats staying by
    /// more than the hysteresis and [`Self::may_move`] allows it.
    fn move_latest(&mut self, from: DeviceId, only_to: Option<DeviceId>) -> Option<(TaskKey, u32)> {
        let Stay {
            task,
            placed,
            inputs,
            score: stay,
            ..
        } = self.stay_of(from)?;
        // A pull moves the task only onto `only_to`, and only if some variant of it there beats
        // staying by more than the hysteresis; when none does, the search over every candidate
        // (every device of a small class, for each device pulling) cannot end in a move.
        if let Some(to) = only_to {
            if !self.could_beat_on(task, &placed.state, &inputs, to, stay) {
                return None;
            }
        }
        let (target, choice) = self.best_choice(task, &placed.state, Some(from), None)?;
        if only_to.is_some_and(|to| to != target.device)
            || !cost::worth_moving(stay, target.score, self.config.hysteresis)
            || !self.may_move(&placed, &target)
        {
            return None;
        }
        // The device it leaves is available again when it would have started, unless its queue
        // ran it out of placement order: then the tasks predicted after it are re-predicted.
        let left = &mut self.devices[from as usize];
        left.available = if left.movable.len() + left.running.len() > 1 {
            placed.queue_at
        } else {
            0.0
        };
        self.detach(task, &placed);
        if placed.reordered {
            self.repredict(from);
        }
        let seq = self.take_seq();
        let at = (target.device, seq, placed.rank, placed.level);
        self.attach(task, placed.state, choice, at, target.finish, None);
        Some((task, placed.variant))
    }

    /// Whether the task, in its declared form or one of its alternatives, would beat a score of
    /// `stay` by more than the hysteresis on `device`, evaluated as [`Self::best_candidate`]
    /// evaluates a candidate.
    fn could_beat_on(
        &self,
        task: TaskKey,
        state: &TaskState,
        inputs: &[(DeviceId, f64, u64)],
        device: DeviceId,
        stay: f64,
    ) -> bool {
        let target = &self.devices[device as usize];
        let start = self.queue_start(device, target.available, cost::Work::default());
        let alternatives = self.alternatives.get(&task).map_or(&[][..], Vec::as_slice);
        std::iter::once(state.spec)
            .chain(alternatives.iter().map(|&(_, spec)| spec))
            .filter(|spec| target.spec.can_host(spec))
            .any(|spec| {
                let elsewhere = self.evaluate_with(inputs, &spec, device, start).score;
                cost::worth_moving(stay, elsewhere, self.config.hysteresis)
            })
    }

    /// A move onto a device without room must not leave room behind: it is allowed only while
    /// the device the task leaves stays at or above the capacity target without it (otherwise
    /// rebalancing would herd work onto full devices while another has room).
    fn may_move(&self, placed: &Placed, target: &Evaluation) -> bool {
        if target.room {
            return true;
        }
        let from = &self.devices[placed.device as usize];
        let (cores, memory) = if is_active(&placed.state) {
            (
                from.active_cores
                    .saturating_sub(u64::from(placed.spec.cores_milli)),
                from.active_memory.saturating_sub(placed.spec.memory_bytes),
            )
        } else {
            (from.active_cores, from.active_memory)
        };
        cost::utilisation(&from.spec, from.contention, cores, memory) >= self.config.capacity_target
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Maps a task `at` (device, placement sequence, rank, level).
    fn attach(
        &mut self,
        task: TaskKey,
        state: TaskState,
        choice: Choice,
        (device, seq, rank, level): (DeviceId, u64, f64, u32),
        finish: f64,
        reorder: Option<Reorder>,
    ) {
        let class = self.devices[device as usize].class;
        let spec = choice.spec;
        let duration_ms = self.duration_ms(&spec, class);
        let now = self.now as f64;
        let at = self.queue_start(
            device,
            self.devices[device as usize].available,
            cost::Work::default(),
        );
        let entry = &mut self.devices[device as usize];
        // A task queued at the end of a device whose queue is current advances the device's
        // available time by itself; anything else re-predicts the queue before placement.
        let queue_at = if state.pinned.is_none() && !entry.stale {
            let run = cost::run_ms(duration_ms, entry.contention);
            entry.available = cost::advance(at, finish, run, cost::share(&entry.spec, &spec));
            at
        } else {
            if !entry.stale {
                entry.stale = true;
                self.stale.push(device);
            }
            now
        };
        self.tasks.insert(
            task,
            Placed {
                state,
                spec,
                variant: choice.variant,
                device,
                seq,
                duration_ms,
                finish_ms: finish,
                queue_at,
                rank,
                level,
                reordered: reorder.is_some(),
            },
        );
        if let Some(reorder) = reorder {
            self.reordered.insert(task, reorder);
            self.reorder_changes.push((reorder, 1));
        }
        self.by_kind
            .entry(state.spec.kind)
            .or_default()
            .insert(task, ());
        let entry = &mut self.devices[device as usize];
        entry.work = entry.work.plus(cost::Work::of(&spec, duration_ms));
        if is_active(&state) {
            entry.active_cores += u64::from(spec.cores_milli);
            entry.active_memory = entry.active_memory.saturating_add(spec.memory_bytes);
        }
        if state.pinned.is_none() {
            entry.queued = entry.queued.plus(cost::Work::of(&spec, duration_ms));
            entry.movable.insert(seq, task);
        } else {
            entry.running.insert(seq, task);
        }
        self.rekey(device);
    }

    fn mark_stale(&mut self, device: DeviceId) {
        let entry = &mut self.devices[device as usize];
        if !entry.stale {
            entry.stale = true;
            self.stale.push(device);
        }
    }

    /// Re-predicts a device's queue from now: its running tasks hold it for their remaining
    /// predicted time (each at its share), then its queued tasks follow in placement order,
    /// each finishing at [`cost::finish_ms`] behind the available time so far (with its inputs
    /// as they are predicted now) and advancing it ([`cost::advance`]). Only this device's
    /// tasks change: a child elsewhere reads the new finish when its own device is next
    /// re-predicted or it is next placed.
    ///
    /// Re-sculpting by order: on a device whose predicted contention is at or above
    /// [`PlacementConfig::reorder_contention`], within the first [`REORDER_WINDOW`] places of
    /// the queue, a head whose inputs are not ready when the device frees would leave it idle (and, congested, every task behind it late). One of the
    /// next [`REORDER_WINDOW`] queued tasks, the first in placement order that is not a child
    /// of a task still ahead of it, runs in that wait instead when it then finishes sooner
    /// than it would right behind the head and the head finishes no later (the conservative
    /// backfilling of batch schedulers); again until none qualifies, then the head runs.
    fn repredict(&mut self, device: DeviceId) {
        let now = self.now as f64;
        let state = &self.devices[device as usize];
        let (spec, contention) = (state.spec, state.contention);
        let severe = contention >= self.config.reorder_contention;
        let running = state.running.iter().filter_map(|task| {
            self.tasks
                .get(&task)
                .map(|placed| (placed.finish_ms, cost::share(&spec, &placed.spec)))
        });
        let mut at = cost::running_until(now, running);
        if !severe {
            // Placement order (the common case, kept as lean as before re-sculpting by order).
            let queued: Vec<TaskKey> = state.movable.iter().collect();
            for task in queued {
                let Some(placed) = self.tasks.get(&task) else {
                    continue;
                };
                let (duration_ms, share) = (placed.duration_ms, cost::share(&spec, &placed.spec));
                let ready = self.ready_of(task, device);
                let run = cost::run_ms(duration_ms, contention);
                let finish = cost::finish_ms(ready, at, run, share);
                self.predicted(task, finish, at, None);
                at = cost::advance(at, finish, run, share);
            }
            let state = &mut self.devices[device as usize];
            state.available = if state.queue_is_empty() { 0.0 } else { at };
            state.stale = false;
            self.rekey(device);
            return;
        }
        // The queue still to predict, in placement order, with each task's run and share, and
        // its ready time once a look-ahead computed it (NaN before). A task looked at has no
        // parent still to predict ahead of it, and one behind it changes only by going first
        // out of order, which forgets what was computed: so a known ready time stays true.
        let mut queued: Vec<(TaskKey, f64, f64, f64)> = state
            .movable
            .iter()
            .filter_map(|task| {
                let placed = self.tasks.get(&task)?;
                let run = cost::run_ms(placed.duration_ms, contention);
                Some((task, run, cost::share(&spec, &placed.spec), f64::NAN))
            })
            .collect();
        let mut next = 0;
        while next < queued.len() {
            let (head, head_run, head_share, known) = queued[next];
            let head_ready = if known.is_nan() {
                self.ready_of(head, device)
            } else {
                known
            };
            let head_finish = cost::finish_ms(head_ready, at, head_run, head_share);
            let mut chosen = (next, head_finish, None);
            if severe && next < REORDER_WINDOW && head_ready > at {
                let after_head = cost::advance(at, head_finish, head_run, head_share);
                // Going first, a task holds the device at least `share × run`; the head, then
                // `head_share × head_run` more, must still be done by `head_ready + head_run`
                // (a cheap bound, 1 ms loose so that rounding never rules out a task the
                // exact test below would take).
                let room = head_ready + head_run - at - head_run * head_share + 1.0;
                let end = queued.len().min(next + 1 + REORDER_WINDOW);
                for index in next + 1..end {
                    let (task, run, share, known) = queued[index];
                    // A known ready time was computed with no parent ahead, and what is ahead
                    // has only shrunk since.
                    if share * run > room
                        || (known.is_nan() && self.has_parent_among(task, &queued[next..index]))
                    {
                        continue;
                    }
                    let ready = if known.is_nan() {
                        self.ready_of(task, device)
                    } else {
                        known
                    };
                    queued[index].3 = ready;
                    let finish = cost::finish_ms(ready, at, run, share);
                    let behind = cost::finish_ms(ready, after_head, run, share);
                    let freed = cost::advance(at, finish, run, share);
                    let head_then = cost::finish_ms(head_ready, freed, head_run, head_share);
                    if finish < behind && head_then <= head_finish {
                        let reorder = Reorder {
                            task,
                            device,
                            ahead_of: head,
                            contention: ppm_from_fraction(contention),
                            head_ready_ms: head_ready.round() as i64,
                            finish_ms: finish.round() as i64,
                            behind_ms: behind.round() as i64,
                        };
                        chosen = (index, finish, Some(reorder));
                        break;
                    }
                }
            }
            let (index, finish, reorder) = chosen;
            let (task, run, share, _) = queued[index];
            if index > next {
                let end = queued.len().min(next + 1 + REORDER_WINDOW);
                queued[next..end]
                    .iter_mut()
                    .for_each(|entry| entry.3 = f64::NAN);
            }
            self.predicted(task, finish, at, reorder);
            at = cost::advance(at, finish, run, share);
            // The task predicted goes first among those left, the rest keep their order.
            queued[next..=index].rotate_right(1);
            next += 1;
        }
        let state = &mut self.devices[device as usize];
        state.available = if state.queue_is_empty() { 0.0 } else { at };
        state.stale = false;
        self.rekey(device);
    }

    /// Whether one of the task's parents is among the queued `tasks`.
    fn has_parent_among(&self, task: TaskKey, tasks: &[(TaskKey, f64, f64, f64)]) -> bool {
        self.parents.get(&task).is_some_and(|parents| {
            parents
                .iter()
                .any(|(parent, _)| tasks.iter().any(|(queued, _, _, _)| queued == parent))
        })
    }

    /// Records a queued task's new prediction (written at once: a child later in its queue
    /// reads its parent's new finish) and whether it runs ahead of its placement order: a
    /// decision already standing (ahead of the same task) keeps its first figures.
    #[inline(always)]
    fn predicted(&mut self, task: TaskKey, finish: f64, at: f64, reorder: Option<Reorder>) {
        let Some(placed) = self.tasks.get_mut(&task) else {
            return;
        };
        placed.finish_ms = finish;
        placed.queue_at = at;
        if !placed.reordered && reorder.is_none() {
            return;
        }
        placed.reordered = reorder.is_some();
        let old = self.reordered.get(&task).copied();
        if old.map(|r| r.ahead_of) == reorder.map(|r| r.ahead_of) {
            return;
        }
        if let Some(old) = old {
            self.reorder_changes.push((old, -1));
            self.reordered.remove(&task);
        }
        if let Some(new) = reorder {
            self.reorder_changes.push((new, 1));
            self.reordered.insert(task, new);
        }
    }

    fn detach(&mut self, task: TaskKey, placed: &Placed) {
        if placed.reordered {
            if let Some(reorder) = self.reordered.remove(&task) {
                self.reorder_changes.push((reorder, -1));
            }
        }
        let entry = &mut self.devices[placed.device as usize];
        entry.work = entry
            .work
            .minus(cost::Work::of(&placed.spec, placed.duration_ms));
        if is_active(&placed.state) {
            entry.active_cores = entry
                .active_cores
                .saturating_sub(u64::from(placed.spec.cores_milli));
            entry.active_memory = entry.active_memory.saturating_sub(placed.spec.memory_bytes);
        }
        if placed.state.pinned.is_none() {
            entry.queued = entry
                .queued
                .minus(cost::Work::of(&placed.spec, placed.duration_ms));
        }
        entry.movable.remove(placed.seq);
        entry.running.remove(placed.seq);
        self.tasks.remove(&task);
        if let Some(tasks) = self.by_kind.get_mut(&placed.state.spec.kind) {
            tasks.remove(&task);
            if tasks.is_empty() {
                self.by_kind.remove(&placed.state.spec.kind);
            }
        }
        self.rekey(placed.device);
    }

    fn rekey(&mut self, device: DeviceId) {
        let target = self.config.capacity_target;
        let state = &mut self.devices[device as usize];
        let old = state.order(device);
        let old_contention = (state.full, Score(state.indexed_contention), device);
        let old_available = (state.full, Score(state.indexed_available), device);
        state.backlog = cost::backlog_ms(&state.spec, state.contention, state.work);
        state.full = cost::utilisation(
            &state.spec,
            state.contention,
            state.active_cores,
            state.active_memory,
        ) >= target;
        state.indexed_contention = state.contention;
        state.indexed_available = state.available;
        let new = state.order(device);
        let new_contention = state.by_contention(device);
        let new_available = state.by_available(device);
        let class = &mut self.classes[state.class];
        rekey_entry(&mut class.by_available, old_available, new_available);
        rekey_entry(&mut class.by_contention, old_contention, new_contention);
        if self.hierarchical {
            let cell = &mut self.cells[state.cell];
            rekey_entry(&mut cell.by_available, old_available, new_available);
            rekey_entry(&mut cell.by_contention, old_contention, new_contention);
        }
        if !self.bulk {
            self.with_movable.remove(&old);
            if !state.movable.is_empty() {
                self.with_movable.insert(new);
            }
        }
    }
}

/// Moves a device's entry in an ordered index from its old key to its new one.
/// An index of at most [`SCAN_CLASS_UP_TO`] devices is only ever scanned whole (its order is
/// never read: the best candidate is chosen by a total order of its own), so it is left as it
/// is; refiling such small indexes was 6% of a run whose forecasts change at every epoch.
fn rekey_entry<K: Ord + Copy>(index: &mut BTreeSet<K>, old: K, new: K) {
    if old != new && index.len() > SCAN_CLASS_UP_TO {
        index.remove(&old);
        index.insert(new);
    }
}

/// Whether an alternative's best evaluation replaces the declared variant's: it has room where
/// the declared one has none, or it scores better by more than the margin.
pub(crate) fn resculpt(declared: &Evaluation, alternative: &Evaluation, margin: f64) -> bool {
    match (declared.room, alternative.room) {
        (false, true) => true,
        (true, false) => false,
        _ => alternative.score * (1.0 + margin) < declared.score,
    }
}

/// Ready and running tasks occupy their device; blocked ones only queue work on it.
pub(crate) fn is_active(state: &TaskState) -> bool {
    state.ready || state.pinned.is_some()
}

/// `D(t, d)` on a device of this spec and class: its work at speed 1 (when learned estimates are
/// given and one is known, the task's own estimate times its kind's learned ratio, or the kind's
/// learned figure: [`crate::task_durations::learned_work_ms`]; else the task's own estimate) at
/// the device's speed.
pub(crate) fn duration_on(
    spec: &TaskSpec,
    device: &DeviceSpec,
    class: usize,
    learned: Option<&HashMap<(u32, u32), u64>>,
) -> u64 {
    // The duration model publishes work at speed 1 without contention (as the workflow's
    // estimate is): either is divided by the device's speed.
    let work_ms = learned
        .and_then(|l| learned_work_ms(l, spec.kind, class as u32, spec.duration_ms))
        .unwrap_or(spec.duration_ms);
    let ms = work_ms as f64 / device.speed;
    if ms.is_finite() {
        ms.round().clamp(0.0, u64::MAX as f64) as u64
    } else {
        0
    }
}

/// The mean of the known bandwidths (zero when none is known).
pub(crate) fn mean_bandwidth(devices: &[DeviceSpec]) -> f64 {
    let known: Vec<f64> = devices
        .iter()
        .map(|d| d.network_bytes_per_s)
        .filter(|b| *b > 0.0)
        .collect();
    if known.is_empty() {
        0.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::Weights;

    fn device(cores: u32, speed: f64) -> DeviceSpec {
        DeviceSpec {
            cores_milli: cores * 1000,
            speed,
            ..DeviceSpec::default()
        }
    }

    fn task(task: u32) -> TaskKey {
        TaskKey { workflow: 0, task }
    }

    fn state(cores: u32, duration_s: u64, ready: bool) -> TaskState {
        TaskState {
            spec: TaskSpec {
                cores_milli: cores * 1000,
                duration_ms: duration_s * 1000,
                ..TaskSpec::default()
            },
            pinned: None,
            ready,
        }
    }

    fn placer(devices: &[DeviceSpec]) -> FinishTimePlacer {
        FinishTimePlacer::new(devices, PlacementConfig::default(), true)
    }

    #[test]
    fn a_long_task_goes_to_the_fast_device_while_it_has_room() {
        let mut p = placer(&[device(4, 1.0), device(4, 2.0)]);
        p.apply(EpochChanges {
            upserted: vec![(task(0), state(1, 100, true))],
            ..EpochChanges::default()
        });
        assert_eq!(p.device_of(&task(0)), Some(1));
        assert_eq!(p.finish_of(&task(0)), Some(50_000.0));
    }

    #[test]
    fn no_device_exceeds_the_target_while_another_has_room() {
        let devices = [device(8, 1.0), device(8, 1.0), device(16, 2.0)];
        let mut p = placer(&devices);
        let upserted = (0..32).map(|i| (task(i), state(1, 10, true))).collect();
        p.apply(EpochChanges {
            upserted,
            ..EpochChanges::default()
        });
        for d in 0..3 {
            assert!(
                p.utilisation_of(d) <= 1.0,
                "device {d}: {}",
                p.utilisation_of(d)
            );
        }
        // 32 one-core tasks on 32 cores: all full, none over.
        assert!((0..3).all(|d| p.utilisation_of(d) == 1.0));
    }

    /// The partitioning issue's herding target: after a burst of 1,000 arrivals, no device is
    /// predicted over the capacity target while any device still has room (a device may pass
    /// the target by the one task that took its last room).
    #[test]
    fn a_burst_of_1000_arrivals_does_not_herd() {
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let devices: Vec<DeviceSpec> = (0..50)
            .map(|i| DeviceSpec {
                cores_milli: [8_000, 16_000, 32_000, 64_000][i % 4],
                memory_bytes: [32u64, 64, 128, 256][i % 4] << 30,
                speed: [1.0, 1.5, 2.0, 0.75][i % 4],
                ..DeviceSpec::default()
            })
            .collect();
        for target in [0.7, 1.0] {
            let config = PlacementConfig {
                capacity_target: target,
                ..PlacementConfig::default()
            };
            let mut p = FinishTimePlacer::new(&devices, config, true);
            let contention = (0..50).map(|d| (d, next(600_000) as i64)).collect();
            let upserted = (0..1000)
                .map(|i| {
                    let mut s = state(1, 1 + next(600), true);
                    s.spec.cores_milli = 250 + next(1_750) as u32;
                    s.spec.memory_bytes = next(2 << 30);
                    (task(i), s)
                })
                .collect();
            p.apply(EpochChanges {
                contention,
                upserted,
                ..EpochChanges::default()
            });
            assert_eq!(p.len(), 1000);
            let utilisation: Vec<f64> = (0..50).map(|d| p.utilisation_of(d)).collect();
            let room = utilisation.iter().any(|u| *u < target);
            // The largest share one task can take of the smallest device: 2 of 8 cores.
            let over: Vec<(usize, f64)> = utilisation
                .iter()
                .copied()
                .enumerate()
                .filter(|(_, u)| *u > target + 0.25)
                .collect();
            assert!(
                !room || over.is_empty(),
                "target {target}: {over:?} over while others have room"
            );
        }
    }

    #[test]
    fn a_child_follows_its_parent_when_the_transfer_is_dear() {
        let mut slow_link = device(4, 1.0);
        slow_link.network_bytes_per_s = 1e6;
        let devices = [slow_link, slow_link];
        let mut p = placer(&devices);
        let mut parent = state(1, 10, true);
        parent.spec.cores_milli = 1000;
        p.apply(EpochChanges {
            upserted: vec![(task(0), parent)],
            ..EpochChanges::default()
        });
        let home = p.device_of(&task(0)).expect("the parent is placed");
        // Load the parent's device a little (too little to move the parent), so that without
        // the data the other device would win.
        p.apply(EpochChanges {
            time: 1,
            contention: vec![(home, 40_000)],
            ..EpochChanges::default()
        });
        assert_eq!(p.device_of(&task(0)), Some(home));
        p.apply(EpochChanges {
            time: 2,
            edges: vec![(((task(1), task(0)), 100_000_000), 1)],
            upserted: vec![(task(1), state(1, 10, false))],
            ..EpochChanges::default()
        });
        assert_eq!(
            p.device_of(&task(1)),
            Some(home),
            "100 MB at 1 MB/s is 100 s"
        );
    }

    /// A four-core device `d0` and a one-core `d1`; the parent `P` (task 0) runs on `d1` for
    /// 100 s; its child `H` (task 1, 10 s) and an independent `T` (task 2, 5 s) need all four
    /// cores, so both queue on `d0`, `H` first (its rank is higher), waiting for `P`.
    fn waiting_head() -> FinishTimePlacer {
        let devices = [device(4, 1.0), device(1, 1.0)];
        let mut p = placer(&devices);
        let mut parent = state(1, 100, true);
        parent.pinned = Some(1);
        p.apply(EpochChanges {
            upserted: vec![(task(0), parent)],
            ..EpochChanges::default()
        });
        p.apply(EpochChanges {
            time: 1,
            edges: vec![(((task(1), task(0)), 0), 1)],
            upserted: vec![(task(1), state(4, 10, false)), (task(2), state(4, 5, true))],
            ..EpochChanges::default()
        });
        assert_eq!(p.device_of(&task(1)), Some(0));
        assert_eq!(p.device_of(&task(2)), Some(0));
        assert_eq!(p.finish_of(&task(1)), Some(110_000.0));
        assert_eq!(
            p.finish_of(&task(2)),
            Some(115_000.0),
            "behind H, in placement order"
        );
        assert!(p.take_reorder_changes().is_empty());
        p
    }

    #[test]
    fn severe_congestion_runs_a_ready_task_in_a_waiting_heads_gap() {
        let mut p = waiting_head();
        // d0 severely congested (60%): T (8 s slowed) fits in H's 100 s wait for P.
        p.apply(EpochChanges {
            time: 2,
            contention: vec![(0, 600_000)],
            ..EpochChanges::default()
        });
        let expected = Reorder {
            task: task(2),
            device: 0,
            ahead_of: task(1),
            contention: 600_000,
            head_ready_ms: 100_000,
            finish_ms: 8_002,
            behind_ms: 124_000,
        };
        assert_eq!(p.reorders(), vec![expected]);
        assert_eq!(p.take_reorder_changes(), vec![(expected, 1)]);
        assert_eq!(p.finish_of(&task(2)), Some(8_002.0));
        assert_eq!(
            p.finish_of(&task(1)),
            Some(116_000.0),
            "H no later than behind P"
        );
        // The same decision re-predicted keeps its first figures and is not news.
        p.apply(EpochChanges {
            time: 3,
            contention: vec![(0, 700_000)],
            ..EpochChanges::default()
        });
        assert_eq!(p.reorders(), vec![expected]);
        assert!(p.take_reorder_changes().is_empty());
        // Mild congestion: the queue keeps placement order again.
        p.apply(EpochChanges {
            time: 4,
            contention: vec![(0, 100_000)],
            ..EpochChanges::default()
        });
        assert!(p.reorders().is_empty());
        assert_eq!(p.take_reorder_changes(), vec![(expected, -1)]);
        assert_eq!(p.finish_of(&task(2)), Some(116_500.0));
    }

    #[test]
    fn a_task_never_goes_ahead_of_a_head_it_would_delay() {
        let mut p = waiting_head();
        // At 99% contention T runs 9.95 s: still inside the wait, so it goes ahead; a T longer
        // than the wait would delay H and stays behind.
        let mut long = state(4, 90, true);
        long.spec.kind = 1;
        p.apply(EpochChanges {
            time: 2,
            upserted: vec![(task(2), long)],
            contention: vec![(0, 990_000)],
            ..EpochChanges::default()
        });
        assert!(
            p.reorders().is_empty(),
            "179 s of T would delay H past P's 100 s"
        );
        assert!(p.finish_of(&task(2)) > p.finish_of(&task(1)));
    }

    #[test]
    fn ranks_put_the_critical_chain_first() {
        let tasks: Vec<(TaskKey, TaskState)> = vec![
            (task(0), state(1, 1, true)),
            (task(1), state(1, 100, false)),
            (task(2), state(1, 1, true)),
        ];
        let mut children = TaskMap::default();
        children.insert(task(0), vec![(task(1), 0)]);
        children.insert(task(2), vec![(task(7), 0)]);
        let none: &[(TaskKey, u64)] = &[];
        let ranks = upward_ranks(
            &tasks,
            |t| children.get(t).map_or(none, |l| l.as_slice()),
            // A mapped child of rank 5 s under task 2.
            |t| (*t == task(7)).then_some(5_000.0),
            // Task 2 has a mapped parent at level 3.
            |t| if *t == task(2) { 4 } else { 0 },
            |s| s.duration_ms as f64,
            0.0,
        );
        assert_eq!(ranks[0], (101_000.0, 0, 0));
        assert_eq!(ranks[1], (100_000.0, 1, 1));
        assert_eq!(ranks[2], (6_000.0, 0, 4));
    }

    #[test]
    fn contention_rise_moves_tasks_off_and_heft_ignores_learning() {
        let devices = [device(8, 1.0), device(8, 1.0)];
        let mut p = placer(&devices);
        let upserted = (0..4).map(|i| (task(i), state(1, 60, true))).collect();
        p.apply(EpochChanges {
            upserted,
            ..EpochChanges::default()
        });
        let on_zero = (0..4).filter(|i| p.device_of(&task(*i)) == Some(0)).count();
        assert!(on_zero > 0);
        let moved = p.apply(EpochChanges {
            time: 10,
            contention: vec![(0, 900_000)],
            ..EpochChanges::default()
        });
        assert!(!moved.is_empty());
        assert!((0..4).all(|i| p.device_of(&task(i)) == Some(1)));

        let mut heft = FinishTimePlacer::new(&devices, PlacementConfig::default(), false);
        heft.apply(EpochChanges {
            durations: vec![((0, 0), Some(1))],
            upserted: vec![(task(0), state(1, 60, true))],
            ..EpochChanges::default()
        });
        assert_eq!(heft.finish_of(&task(0)), Some(60_000.0));
    }

    #[test]
    fn cost_weight_prefers_the_cheap_device() {
        let mut dear = device(4, 1.0);
        dear.cost_per_hour = 10.0;
        let mut cheap = device(4, 1.0);
        cheap.cost_per_hour = 1.0;
        let config = PlacementConfig {
            weights: Weights {
                latency: 0.0,
                cost: 1.0,
                ..Weights::default()
            },
            ..PlacementConfig::default()
        };
        let mut p = FinishTimePlacer::new(&[dear, cheap], config, true);
        p.apply(EpochChanges {
            upserted: vec![(task(0), state(1, 60, true))],
            ..EpochChanges::default()
        });
        assert_eq!(p.device_of(&task(0)), Some(1));
        assert_eq!(cost::prewarm_amount(10_000.0, 8_000.0, 1.0, 4_000), 1);
        assert_eq!(cost::prewarm_amount(7_000.0, 8_000.0, 1.0, 4_000), 0);
    }
}
