//! The partition map: which device each live task goes to, kept current incrementally, and the
//! warm-up advice that falls out of it.
//!
//! Every rule is greedy and capacity-aware: each decision depends on the load the earlier
//! decisions put on the devices, so one logical instance holds the map. All of its input is
//! routed to worker 0, which always lives in process 0; the forecasts, task states and duration
//! estimates that feed it are computed data-parallel on every worker. Each epoch is applied
//! whole, in event-time order, after every input has passed it, so the map is the same for any
//! number of workers or processes.

use differential_dataflow::{AsCollection, VecCollection};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::core::OkErr;
use timely::dataflow::operators::Operator;
use timely::dataflow::StreamVec;

use crate::checkpoint::{Control, Emitted, Entry, Epoch, StatePart};

use crate::finish_time::FinishTimePlacer;
use crate::placement::{EpochChanges, MapChange, PlacementConfig, Placer, Policy};
use crate::round_robin::RoundRobin;
use crate::stash::TimeStash;
use crate::types::{Alternative, DeviceId, DeviceSpec, Edge, Ppm, Reorder, Resculpt, TaskKey};
use crate::types::{TaskState, Time};

/// One input record of the map, from any of its four inputs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
enum Update {
    Contention(DeviceId, Ppm),
    State(TaskKey, TaskState),
    Edge(Edge),
    Duration((u32, u32), u64),
    Alternative(Alternative),
}

/// One output record: a map entry, a warm-up advice `(class, devices to add)`, or a task the
/// map re-sculpted (runs as one of its alternatives, or ahead of its placement order).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
enum Output {
    Map(TaskKey, DeviceId),
    Prewarm(u32, u32),
    Resculpt(Resculpt),
}

/// The rule in force, behind one interface.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Engine {
    Load(Placer),
    /// Boxed: the finish-time placer's tables dwarf the other rules'.
    FinishTime(Box<FinishTimePlacer>),
    RoundRobin(RoundRobin),
}

impl Engine {
    fn new(devices: &[DeviceSpec], config: PlacementConfig) -> Engine {
        match config.policy {
            Policy::Predictive => {
                Engine::FinishTime(Box::new(FinishTimePlacer::new(devices, config, true)))
            }
            Policy::Heft => {
                Engine::FinishTime(Box::new(FinishTimePlacer::new(devices, config, false)))
            }
            Policy::Reactive | Policy::Seed => Engine::Load(Placer::new(devices, config)),
            Policy::Static => Engine::RoundRobin(RoundRobin::new(devices)),
        }
    }

    fn apply(&mut self, changes: EpochChanges) -> Vec<MapChange> {
        // An epoch whose updates cancelled out changes nothing (the finish-time rule would
        // otherwise see the clock move).
        if changes.is_empty() {
            return Vec::new();
        }
        match self {
            Engine::Load(placer) => placer.apply(changes),
            Engine::FinishTime(placer) => placer.apply(changes),
            Engine::RoundRobin(placer) => placer.apply(changes),
        }
    }

    fn placements(&self) -> Vec<(TaskKey, DeviceId, u32)> {
        match self {
            Engine::Load(placer) => placer.placements(),
            Engine::FinishTime(placer) => placer.placements(),
            Engine::RoundRobin(placer) => placer.placements(),
        }
    }

    fn prewarm(&self) -> Vec<(u32, u32)> {
        match self {
            Engine::FinishTime(placer) => placer.prewarm(),
            _ => Vec::new(),
        }
    }

    /// Tasks run ahead of their placement order (the finish-time rule's queues only).
    fn reorders(&self) -> Vec<Reorder> {
        match self {
            Engine::FinishTime(placer) => placer.reorders(),
            _ => Vec::new(),
        }
    }

    fn take_reorder_changes(&mut self) -> Vec<(Reorder, isize)> {
        match self {
            Engine::FinishTime(placer) => placer.take_reorder_changes(),
            _ => Vec::new(),
        }
    }
}

/// Everything the map's operator holds: the rule's engine and the warm-up advice it last
/// published. Opaque outside this module; it travels in checkpoints.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MapState {
    engine: Engine,
    advised: Vec<(u32, u32)>,
}

/// The map's collections.
pub struct PartitionOutputs<'scope> {
    /// `(task, device)` for every live task the devices can host.
    pub partition: VecCollection<'scope, Time, (TaskKey, DeviceId)>,
    /// `(class, devices)`: capability classes whose predicted demand exceeds the capacity
    /// target, with how many more devices of the class would bring it under.
    pub prewarm: VecCollection<'scope, Time, (u32, u32)>,
    /// Every mapped task the map runs as one of its alternatives, and every queued task it runs
    /// ahead of its placement order.
    pub variants: VecCollection<'scope, Time, Resculpt>,
    /// The operator's state, at each time `control` asked for a checkpoint.
    pub state: StreamVec<'scope, Time, StatePart>,
}

/// What the map reads.
pub struct MapInputs<'scope> {
    /// Predicted (or observed) contention per device.
    pub contention: VecCollection<'scope, Time, (DeviceId, Ppm)>,
    /// Every live task's state.
    pub states: VecCollection<'scope, Time, (TaskKey, TaskState)>,
    /// Live edges with their bytes.
    pub edges: VecCollection<'scope, Time, Edge>,
    /// The duration model's estimates per `(kind, class)`.
    pub durations: VecCollection<'scope, Time, ((u32, u32), u64)>,
    /// Live alternatives of tasks.
    pub alternatives: VecCollection<'scope, Time, Alternative>,
    /// Checkpoint requests and restored state (see [`crate::checkpoint`]).
    pub control: StreamVec<'scope, Time, Control>,
}

/// The partition map under `config.policy`, from its [`MapInputs`].
pub fn partition_map<'scope>(
    inputs: MapInputs<'scope>,
    devices: &[DeviceSpec],
    config: PlacementConfig,
) -> PartitionOutputs<'scope> {
    let MapInputs {
        contention,
        states,
        edges,
        durations,
        alternatives,
        control,
    } = inputs;
    let mut map = MapState {
        engine: Engine::new(devices, config),
        advised: Vec::new(),
    };
    let mut stash = TimeStash::new();
    type Emit = Emitted<(Output, Time, isize)>;
    let updates = contention
        .map(|(device, ppm)| Update::Contention(device, ppm))
        .concat(states.map(|(task, state)| Update::State(task, state)))
        .concat(edges.map(Update::Edge))
        .concat(durations.map(|(key, ms)| Update::Duration(key, ms)))
        .concat(alternatives.map(Update::Alternative));
    let (outputs, state) = updates
        .inner
        .binary_frontier::<_, CapacityContainerBuilder<Vec<Emit>>, _, _, _, _>(
            control,
            Exchange::new(|_: &(Update, Time, isize)| 0u64),
            Exchange::new(|_: &Control| 0u64),
            "PartitionMap",
            move |_, _| {
                move |(input, frontier), (control, control_frontier), output| {
                    input.for_each(|capability, data| {
                        // Records of one time come in runs (a whole workflow at once); each
                        // run is parked with one lookup of its time.
                        let mut records = data.drain(..).peekable();
                        while let Some((record, time, diff)) = records.next() {
                            let rest = std::iter::from_fn(|| {
                                records
                                    .next_if(|(_, next, _)| *next == time)
                                    .map(|(record, _, diff)| Entry::Data((record, diff)))
                            });
                            let run = std::iter::once(Entry::Data((record, diff))).chain(rest);
                            stash.park(time, || capability.delayed(&time, 0), run);
                        }
                    });
                    control.for_each(|capability, data| {
                        if let Some(time) = capability.least().copied() {
                            let entries = data.drain(..).map(Entry::Control);
                            stash.park(time, || capability.delayed(&time, 0), entries);
                        }
                    });
                    for (capability, entries) in stash.drain_complete(&[frontier, control_frontier])
                    {
                        let time = *capability.time();
                        let epoch = Epoch::of(entries);
                        let mut session = output.session(&capability);
                        if epoch.is_restore() {
                            // The epoch's updates re-insert the collections as they stood at the
                            // checkpoint, which the restored engine already reflects; what it
                            // holds is published again, so the map's collections are whole.
                            for part in epoch.restore {
                                if let StatePart::Map(restored) = part {
                                    map = *restored;
                                    for record in map.contents() {
                                        session.give(Ok((record, time, 1)));
                                    }
                                }
                            }
                        } else {
                            let changes = epoch_changes(time, epoch.data);
                            for (record, diff) in map.apply(changes) {
                                session.give(Ok((record, time, diff)));
                            }
                        }
                        if epoch.checkpoint {
                            let part: Emit = Err(StatePart::Map(Box::new(map.clone())));
                            session.give(part);
                        }
                    }
                }
            },
        )
        .ok_err::<Vec<(Output, Time, isize)>, _, Vec<StatePart>, _, _>(|emitted: Emit| emitted);
    let outputs = outputs.as_collection();
    let partition = outputs.clone().flat_map(|record| match record {
        Output::Map(task, device) => Some((task, device)),
        _ => None,
    });
    let prewarm = outputs.clone().flat_map(|record| match record {
        Output::Prewarm(class, amount) => Some((class, amount)),
        _ => None,
    });
    let variants = outputs.flat_map(|record| match record {
        Output::Resculpt(resculpt) => Some(resculpt),
        _ => None,
    });
    PartitionOutputs {
        partition,
        prewarm,
        variants,
        state,
    }
}

impl MapState {
    /// What the map's collections hold: every placement, re-sculpted variant and advice.
    fn contents(&self) -> Vec<Output> {
        let mut contents = Vec::new();
        for (task, device, variant) in self.engine.placements() {
            contents.push(Output::Map(task, device));
            if variant != 0 {
                contents.push(Output::Resculpt(Resculpt::Variant(task, variant)));
            }
        }
        contents.extend(
            self.engine
                .reorders()
                .into_iter()
                .map(|reorder| Output::Resculpt(Resculpt::Reorder(reorder))),
        );
        contents.extend(
            self.advised
                .iter()
                .map(|&(class, amount)| Output::Prewarm(class, amount)),
        );
        contents
    }

    /// Applies one epoch's changes; returns the map's, the advice's and the re-sculpted tasks'
    /// changes.
    fn apply(&mut self, changes: EpochChanges) -> Vec<(Output, isize)> {
        let mut out = Vec::new();
        for change in self.engine.apply(changes) {
            if let Some(from) = change.from {
                out.push((Output::Map(change.task, from), -1));
            }
            if let Some(to) = change.to {
                out.push((Output::Map(change.task, to), 1));
            }
            if change.from.is_some() && change.from_variant != 0 {
                let variant = Resculpt::Variant(change.task, change.from_variant);
                out.push((Output::Resculpt(variant), -1));
            }
            if change.to.is_some() && change.to_variant != 0 {
                let variant = Resculpt::Variant(change.task, change.to_variant);
                out.push((Output::Resculpt(variant), 1));
            }
        }
        for (reorder, diff) in self.engine.take_reorder_changes() {
            out.push((Output::Resculpt(Resculpt::Reorder(reorder)), diff));
        }
        let advice = self.engine.prewarm();
        if advice != self.advised {
            for (class, amount) in self.advised.drain(..) {
                out.push((Output::Prewarm(class, amount), -1));
            }
            for &(class, amount) in &advice {
                out.push((Output::Prewarm(class, amount), 1));
            }
            self.advised = advice;
        }
        out
    }
}

/// Folds one epoch's updates into the net changes: per key, the record left with a positive count
/// is the new value; a key left with none was removed.
fn epoch_changes(time: Time, mut updates: Vec<(Update, isize)>) -> EpochChanges {
    differential_dataflow::consolidation::consolidate(&mut updates);
    let mut contention = Vec::new();
    let mut states = Vec::new();
    let mut durations = Vec::new();
    let mut changes = EpochChanges {
        time,
        ..EpochChanges::default()
    };
    for (update, diff) in updates {
        match update {
            Update::Contention(device, ppm) => contention.push(((device, ppm), diff)),
            Update::State(task, state) => states.push(((task, state), diff)),
            Update::Edge(edge) => changes.edges.push((edge, diff)),
            Update::Duration(key, ms) => durations.push(((key, ms), diff)),
            Update::Alternative(alternative) => changes.alternatives.push((alternative, diff)),
        }
    }
    for (device, ppm) in net_by_key(&contention) {
        // A device whose forecasts vanished has no predicted contention.
        changes.contention.push((device, ppm.unwrap_or(0)));
    }
    for (task, state) in net_by_key(&states) {
        match state {
            Some(state) => changes.upserted.push((task, state)),
            None => changes.removed.push(task),
        }
    }
    changes.durations = net_by_key(&durations);
    changes
}

/// For consolidated `((key, value), diff)` updates sorted by key: each key with the value that
/// gained a positive count, or `None` if none did (the key was only retracted).
pub(crate) fn net_by_key<K: Copy + Eq, V: Copy>(
    updates: &[((K, V), isize)],
) -> Vec<(K, Option<V>)> {
    let mut result: Vec<(K, Option<V>)> = Vec::new();
    for &((key, value), diff) in updates {
        if result.last().is_none_or(|(last, _)| *last != key) {
            result.push((key, None));
        }
        if diff > 0 {
            if let Some(last) = result.last_mut() {
                last.1 = Some(value);
            }
        }
    }
    result
}
