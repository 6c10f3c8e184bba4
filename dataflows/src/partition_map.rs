//! The partition map: which device each live task goes to, kept current incrementally.
//!
//! The rule is greedy and capacity-aware (see [`crate::placement`]): each decision depends on the
//! load the earlier decisions put on the devices, so one logical instance holds the map. All of its
//! input is routed to worker 0, which always lives in process 0; the forecasts and task states that
//! feed it are computed data-parallel on every worker. Each epoch is applied whole, in event-time
//! order, after both inputs have passed it, so the map is the same for any number of workers or
//! processes.

use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Operator;

use crate::placement::{EpochChanges, PlacementConfig, Placer};
use crate::stash::TimeStash;
use crate::types::{DeviceId, DeviceSpec, Ppm, TaskKey, TaskState, Time};

enum Update {
    Contention((DeviceId, Ppm), isize),
    State((TaskKey, TaskState), isize),
}

/// `(task, device)` for every live task the devices can host.
pub fn partition_map<'scope>(
    contention: VecCollection<'scope, Time, (DeviceId, Ppm)>,
    states: VecCollection<'scope, Time, (TaskKey, TaskState)>,
    devices: &[DeviceSpec],
    config: PlacementConfig,
) -> VecCollection<'scope, Time, (TaskKey, DeviceId)> {
    let mut placer = Placer::new(devices, config);
    let mut stash = TimeStash::new();
    contention
        .inner
        .binary_frontier(
            states.inner,
            Exchange::new(|_: &((DeviceId, Ppm), Time, isize)| 0u64),
            Exchange::new(|_: &((TaskKey, TaskState), Time, isize)| 0u64),
            "PartitionMap",
            move |_, _| {
                move |(contention, contention_frontier), (states, states_frontier), output| {
                    contention.for_each(|capability, data| {
                        for (record, time, diff) in data.drain(..) {
                            stash.park(
                                time,
                                || capability.delayed(&time, 0),
                                [Update::Contention(record, diff)],
                            );
                        }
                    });
                    states.for_each(|capability, data| {
                        for (record, time, diff) in data.drain(..) {
                            stash.park(
                                time,
                                || capability.delayed(&time, 0),
                                [Update::State(record, diff)],
                            );
                        }
                    });
                    let complete = stash.drain_complete(&[contention_frontier, states_frontier]);
                    for (capability, updates) in complete {
                        let time = *capability.time();
                        let changes = epoch_changes(updates);
                        let mut session = output.session(&capability);
                        for change in placer.apply(changes) {
                            if let Some(from) = change.from {
                                session.give(((change.task, from), time, -1isize));
                            }
                            if let Some(to) = change.to {
                                session.give(((change.task, to), time, 1isize));
                            }
                        }
                    }
                }
            },
        )
        .as_collection()
}

/// Folds one epoch's updates into the net changes: per key, the record left with a positive count
/// is the new value; a key left with none was removed.
fn epoch_changes(updates: Vec<Update>) -> EpochChanges {
    let mut contention = Vec::new();
    let mut states = Vec::new();
    for update in updates {
        match update {
            Update::Contention(record, diff) => contention.push((record, diff)),
            Update::State(record, diff) => states.push((record, diff)),
        }
    }
    differential_dataflow::consolidation::consolidate(&mut contention);
    differential_dataflow::consolidation::consolidate(&mut states);

    let mut changes = EpochChanges::default();
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
    changes
}

/// For consolidated `((key, value), diff)` updates sorted by key: each key with the value that
/// gained a positive count, or `None` if none did (the key was only retracted).
fn net_by_key<K: Copy + Eq, V: Copy>(updates: &[((K, V), isize)]) -> Vec<(K, Option<V>)> {
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
