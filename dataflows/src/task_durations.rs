//! The feedback loop: completions correct the duration model, inside the dataflow.
//!
//! The model learns per (task kind, device class) and falls back on what any task has shown, so
//! its state is shared across kinds: one instance holds it, on worker 0 (completions are few
//! next to metric samples). Each epoch's completions are learned in a canonical order, and the
//! estimate of every (kind, class) they touched is published: the predicted duration of a task of
//! that kind, with no estimate of its own and sizes unknown, on a device of that class at speed 1 and no
//! contention, in milliseconds.

use std::collections::{BTreeMap, BTreeSet};

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

/// A change of a published estimate: `((kind, class), ms)` and +1 or -1.
pub type DurationChange = (((u32, u32), u64), isize);

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
            let estimate = self.estimate_ms(key);
            let before = self.published.insert(key, estimate);
            if before != Some(estimate) {
                if let Some(before) = before {
                    changes.push(((key, before), -1));
                }
                changes.push(((key, estimate), 1));
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
