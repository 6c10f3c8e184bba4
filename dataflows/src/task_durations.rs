//! The feedback loop: completions correct the duration model, inside the dataflow.
//!
//! The model learns per (task kind, device class) and falls back on what any task has shown, so
//! its state is shared across kinds: one instance holds it, on worker 0 (completions are few
//! next to metric samples). Each epoch's completions are learned in a canonical order, and the
//! estimate of every (kind, class) they touched is published: the predicted duration of a task of
//! that kind, with no estimate of its own and sizes unknown, on a device of that class at speed 1 and no
//! contention, in milliseconds. Beside it, once tasks of the kind with estimates have completed,
//! the kind's correction ratio on that class (actual over estimated duration, in millionths),
//! under the class with [`RATIO_CLASS`] set, so the one collection carries both and a consumer
//! predicts each task with an estimate as `estimate × ratio` ([`learned_work_ms`]): a per-kind
//! figure would erase the differences between the tasks of a kind that the estimates know.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use differential_dataflow::{AsCollection, VecCollection};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::core::OkErr;
use timely::dataflow::operators::Operator;
use timely::dataflow::StreamVec;

use crate::checkpoint::{Control, Emitted, Entry, Epoch, StatePart};
use crate::duration::{DeviceFeatures, DurationConfig, DurationModel, TaskFeatures};
use crate::stash::TimeStash;
use crate::types::{Completion, Time};

/// A change of a published estimate: `((kind, class), ms)` and +1 or -1; or, for a class with
/// [`RATIO_CLASS`] set, `((kind, class | RATIO_CLASS), ratio in millionths)`.
pub type DurationChange = (((u32, u32), u64), isize);

/// Set in the class of a published key whose value is the kind's correction ratio on that class
/// in millionths, not milliseconds. Classes are dense ids of the platform's device classes, far
/// below it.
pub const RATIO_CLASS: u32 = 1 << 31;

/// Millionths in 1, the unit of published ratios.
const RATIO_UNIT: f64 = 1_000_000.0;

/// The work at speed 1 the published estimates give a task of `kind` on a device of `class`
/// (milliseconds): its own estimate `estimate_ms` (0 when it has none) times the kind's ratio
/// when both are known, else the kind's figure; `None` when nothing is published for it.
pub fn learned_work_ms(
    learned: &HashMap<(u32, u32), u64>,
    kind: u32,
    class: u32,
    estimate_ms: u64,
) -> Option<u64> {
    let ratio = learned.get(&(kind, class | RATIO_CLASS)).copied();
    match ratio {
        Some(ratio) if estimate_ms > 0 && class & RATIO_CLASS == 0 => {
            let ms = estimate_ms as f64 * (ratio as f64 / RATIO_UNIT);
            Some(ms.round().clamp(0.0, u64::MAX as f64) as u64)
        }
        _ => learned.get(&(kind, class)).copied(),
    }
}

/// The model and the estimates it last published; the same code serves the operator and the
/// oracle.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct DurationLearner {
    model: DurationModel,
    published: BTreeMap<(u32, u32), u64>,
}

impl DurationLearner {
    /// A learner that has seen no completion.
    pub fn new(config: DurationConfig) -> DurationLearner {
        DurationLearner {
            model: DurationModel::new(config),
            published: BTreeMap::new(),
        }
    }

    /// The model.
    pub fn model(&self) -> &DurationModel {
        &self.model
    }

    /// Learns one epoch's completions; returns the changes of the published estimates,
    /// `((kind, class), ms)` with +1 for the new value and -1 for the one it replaces.
    pub fn learn(&mut self, mut completions: Vec<Completion>) -> Vec<DurationChange> {
        completions.sort_by(|a, b| {
            (a.category, a.class, a.input_bytes)
                .cmp(&(b.category, b.class, b.input_bytes))
                .then(a.seconds.total_cmp(&b.seconds))
                .then(a.speed.total_cmp(&b.speed))
                .then(a.estimate_s.total_cmp(&b.estimate_s))
                .then(a.cores.total_cmp(&b.cores))
        });
        let mut touched = BTreeSet::new();
        for completion in completions {
            let task = TaskFeatures {
                category: completion.category,
                estimate_s: (completion.estimate_s > 0.0).then_some(completion.estimate_s),
                input_bytes: completion.input_bytes,
                output_bytes: 0,
                cores: completion.cores,
            };
            let device = DeviceFeatures {
                class: completion.class,
                speed: completion.speed,
                contention: 0.0,
            };
            if self.model.observe(&task, &device, completion.seconds) {
                touched.insert((completion.category, completion.class));
            }
        }
        let mut changes = Vec::new();
        for key in touched {
            let (category, class) = key;
            let ratio = self
                .model
                .ratio(category, class)
                .map(|ratio| ((category, class | RATIO_CLASS), to_millionths(ratio)));
            for (key, value) in std::iter::once((key, self.estimate_ms(key))).chain(ratio) {
                let before = self.published.insert(key, value);
                if before != Some(value) {
                    if let Some(before) = before {
                        changes.push(((key, before), -1));
                    }
                    changes.push(((key, value), 1));
                }
            }
        }
        changes
    }

    /// The published estimates.
    pub fn published(&self) -> &BTreeMap<(u32, u32), u64> {
        &self.published
    }

    fn estimate_ms(&self, (category, class): (u32, u32)) -> u64 {
        let device = DeviceFeatures {
            class,
            ..DeviceFeatures::default()
        };
        let seconds = self.model.predict_kind(category, &device).seconds;
        (seconds * 1000.0).round().clamp(0.0, u64::MAX as f64) as u64
    }
}

/// A ratio in millionths, at least 1 (a published ratio of 0 would make every task free).
fn to_millionths(ratio: f64) -> u64 {
    (ratio * RATIO_UNIT).round().clamp(1.0, u64::MAX as f64) as u64
}

/// Published duration estimates, `((kind, class), ms)`.
pub type Estimates<'scope> = VecCollection<'scope, Time, ((u32, u32), u64)>;

/// `((kind, class), predicted ms)` for every (task kind, device class) some completion taught,
/// and, when `control` asks for it, the learner's state (see [`crate::checkpoint`]).
pub fn task_durations<'scope>(
    completions: StreamVec<'scope, Time, Completion>,
    control: StreamVec<'scope, Time, Control>,
    config: DurationConfig,
) -> (Estimates<'scope>, StreamVec<'scope, Time, StatePart>) {
    let mut learner = DurationLearner::new(config);
    let mut stash = TimeStash::new();
    type Update = (((u32, u32), u64), Time, isize);
    let (estimates, state) = completions
        .binary_frontier::<_, CapacityContainerBuilder<Vec<Emitted<Update>>>, _, _, _, _>(
            control,
            Exchange::new(|_: &Completion| 0u64),
            Exchange::new(|_: &Control| 0u64),
            "TaskDurations",
            move |_, _| {
                move |(input, frontier), (control, control_frontier), output| {
                    input.for_each(|capability, data| {
                        if let Some(time) = capability.least().copied() {
                            let entries = data.drain(..).map(Entry::Data);
                            stash.park(time, || capability.delayed(&time, 0), entries);
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
                        for part in epoch.restore {
                            if let StatePart::Durations(restored) = part {
                                learner = *restored;
                                // Published again, so the estimates downstream are whole.
                                for (&key, &ms) in learner.published() {
                                    let update: Emitted<Update> = Ok(((key, ms), time, 1));
                                    session.give(update);
                                }
                            }
                        }
                        for (record, diff) in learner.learn(epoch.data) {
                            session.give(Ok((record, time, diff)));
                        }
                        if epoch.checkpoint {
                            session.give(Err(StatePart::Durations(Box::new(learner.clone()))));
                        }
                    }
                }
            },
        )
        .ok_err::<Vec<Update>, _, Vec<StatePart>, _, _>(|emitted: Emitted<Update>| emitted);
    (estimates.as_collection(), state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(category: u32, class: u32, estimate_s: f64, seconds: f64) -> Completion {
        Completion {
            category,
            class,
            speed: 1.0,
            estimate_s,
            input_bytes: 0,
            cores: 1.0,
            seconds,
        }
    }

    #[test]
    fn publishes_the_ratio_beside_the_figure_and_work_follows_each_task_estimate() {
        let mut learner = DurationLearner::new(DurationConfig::default());
        // Kind 0 runs 1.5 times its estimates; kind 1 has no estimates.
        let changes = learner.learn(vec![
            completion(0, 0, 2.0, 3.0),
            completion(0, 0, 20.0, 30.0),
            completion(1, 0, 0.0, 4.0),
        ]);
        let published: HashMap<(u32, u32), u64> = changes
            .iter()
            .map(|&((key, value), _)| (key, value))
            .collect();
        assert!(changes.iter().all(|&(_, diff)| diff == 1));
        assert_eq!(published.get(&(0, RATIO_CLASS)), Some(&1_500_000));
        assert_eq!(published.get(&(1, RATIO_CLASS)), None);
        // Each task of kind 0 keeps its own size; one without an estimate gets the kind's figure.
        assert_eq!(learned_work_ms(&published, 0, 0, 10_000), Some(15_000));
        assert_eq!(learned_work_ms(&published, 0, 0, 1_000), Some(1_500));
        assert_eq!(
            learned_work_ms(&published, 0, 0, 0),
            published.get(&(0, 0)).copied()
        );
        assert_eq!(learned_work_ms(&published, 1, 0, 10_000), Some(4_000));
        assert_eq!(learned_work_ms(&published, 2, 0, 10_000), None);
        // A changed ratio retracts the old value.
        let changes = learner.learn(vec![
            completion(0, 0, 1.0, 3.0),
            completion(0, 0, 1.0, 3.0),
            completion(0, 0, 1.0, 3.0),
        ]);
        assert!(changes.contains(&(((0, RATIO_CLASS), 1_500_000), -1)));
        assert!(changes.contains(&(((0, RATIO_CLASS), 3_000_000), 1)));
        assert_eq!(learner.published().get(&(0, RATIO_CLASS)), Some(&3_000_000));
    }
}
