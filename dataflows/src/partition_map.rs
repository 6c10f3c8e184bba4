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
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Operator;

use crate::finish_time::FinishTimePlacer;
use crate::placement::{EpochChanges, MapChange, PlacementConfig, Placer, Policy};
use crate::round_robin::RoundRobin;
use crate::stash::TimeStash;
use crate::types::{Alternative, DeviceId, DeviceSpec, Edge, Ppm, TaskKey, TaskState, Time};

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
/// map runs as one of its alternatives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Output {
    Map(TaskKey, DeviceId),
    Prewarm(u32, u32),
    Variant(TaskKey, u32),
}

/// The rule in force, behind one interface.
enum Engine {
    Load(Placer),
    FinishTime(FinishTimePlacer),
    RoundRobin(RoundRobin),
}

impl Engine {
    fn new(devices: &[DeviceSpec], config: PlacementConfig) -> Engine {
        match config.policy {
            Policy::Predictive => Engine::FinishTime(FinishTimePlacer::new(devices, config, true)),
            Policy::Heft => Engine::FinishTime(FinishTimePlacer::new(devices, config, false)),
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

    fn prewarm(&self) -> Vec<(u32, u32)> {
        match self {
            Engine::FinishTime(placer) => placer.prewarm(),
            _ => Vec::new(),
        }
    }
}

/// The map's collections.
pub struct PartitionOutputs<'scope> {
    /// `(task, device)` for every live task the devices can host.
    pub partition: VecCollection<'scope, Time, (TaskKey, DeviceId)>,
    /// `(class, devices)`: capability classes whose predicted demand exceeds the capacity
    /// target, with how many more devices of the class would bring it under.
    pub prewarm: VecCollection<'scope, Time, (u32, u32)>,
    /// `(task, variant)` for every mapped task the map runs as one of its alternatives.
    pub variants: VecCollection<'scope, Time, (TaskKey, u32)>,
}

/// The partition map under `config.policy`, from predicted (or observed) contention, task
/// states, live edges with their bytes, and the duration model's estimates per `(kind, class)`.
pub fn partition_map<'scope>(
    contention: VecCollection<'scope, Time, (DeviceId, Ppm)>,
    states: VecCollection<'scope, Time, (TaskKey, TaskState)>,
    edges: VecCollection<'scope, Time, Edge>,
    durations: VecCollection<'scope, Time, ((u32, u32), u64)>,
    alternatives: VecCollection<'scope, Time, Alternative>,
    devices: &[DeviceSpec],
    config: PlacementConfig,
) -> PartitionOutputs<'scope> {
    let mut engine = Engine::new(devices, config);
    let mut advised: Vec<(u32, u32)> = Vec::new();
    let mut stash = TimeStash::new();
    let updates = contention
        .map(|(device, ppm)| Update::Contention(device, ppm))
        .concat(states.map(|(task, state)| Update::State(task, state)))
        .concat(edges.map(Update::Edge))
        .concat(durations.map(|(key, ms)| Update::Duration(key, ms)))
        .concat(alternatives.map(Update::Alternative));
    let outputs = updates
        .inner
        .unary_frontier(
            Exchange::new(|_: &(Update, Time, isize)| 0u64),
            "PartitionMap",
            move |_, _| {
                move |(input, frontier), output| {
                    input.for_each(|capability, data| {
                        for (record, time, diff) in data.drain(..) {
                            stash.park(time, || capability.delayed(&time, 0), [(record, diff)]);
                        }
                    });
                    for (capability, updates) in stash.drain_complete(&[frontier]) {
                        let time = *capability.time();
                        let changes = epoch_changes(time, updates);
                        let mut session = output.session(&capability);
                        for change in engine.apply(changes) {
                            if let Some(from) = change.from {
                                session.give((Output::Map(change.task, from), time, -1isize));
                            }
                            if let Some(to) = change.to {
                                session.give((Output::Map(change.task, to), time, 1isize));
                            }
                            if change.from.is_some() && change.from_variant != 0 {
                                let old = Output::Variant(change.task, change.from_variant);
                                session.give((old, time, -1isize));
                            }
                            if change.to.is_some() && change.to_variant != 0 {
                                let new = Output::Variant(change.task, change.to_variant);
                                session.give((new, time, 1isize));
                            }
                        }
                        let advice = engine.prewarm();
                        if advice != advised {
                            for (class, amount) in advised.drain(..) {
                                session.give((Output::Prewarm(class, amount), time, -1isize));
                            }
                            for &(class, amount) in &advice {
                                session.give((Output::Prewarm(class, amount), time, 1isize));
                            }
                            advised = advice;
                        }
                    }
                }
            },
        )
        .as_collection();
    let partition = outputs.clone().flat_map(|record| match record {
        Output::Map(task, device) => Some((task, device)),
        _ => None,
    });
    let prewarm = outputs.clone().flat_map(|record| match record {
        Output::Prewarm(class, amount) => Some((class, amount)),
        _ => None,
    });
    let variants = outputs.flat_map(|record| match record {
        Output::Variant(task, variant) => Some((task, variant)),
        _ => None,
    });
    PartitionOutputs {
        partition,
        prewarm,
        variants,
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
