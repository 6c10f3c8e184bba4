//! Checkpoints as data: what each stateful operator hands out when asked for its state, and
//! what it is handed back to resume from.
//!
//! The driver asks for a checkpoint at an epoch's time by sending a [`Control::Checkpoint`]
//! with that epoch's input; every stateful operator, once it has applied the whole epoch, emits
//! its state as [`StatePart`]s at the same time. To resume, the driver feeds the saved parts as
//! [`Control::Restore`] at the checkpoint's time, with the plain input collections' contents:
//! each operator takes the parts routed to it, publishes what it holds as insertions (so the
//! collections downstream are whole again) and, for the partition map, ignores the re-inserted
//! inputs it already knows. Parts are routed by the same keys as the data, so a checkpoint taken
//! with any number of workers resumes with any other.

use serde::{Deserialize, Serialize};

use crate::contention_forecast::SeriesState;
use crate::partition_map::MapState;
use crate::task_durations::DurationLearner;
use crate::types::{DeviceId, Resource};

/// The state of one stateful operator (or one series of the per-series one).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum StatePart {
    /// One series' forecaster and anomaly scorer; lives on the worker that owns the device.
    Series((DeviceId, Resource), Box<SeriesState>),
    /// The duration model and the estimates it published (worker 0).
    Durations(Box<DurationLearner>),
    /// The partition map's engine and the warm-up advice it published (worker 0).
    Map(Box<MapState>),
}

impl StatePart {
    /// The routing key: the device for a series (as samples are routed), 0 for the rest.
    pub fn route(&self) -> u64 {
        match self {
            StatePart::Series((device, _), _) => u64::from(*device),
            StatePart::Durations(_) | StatePart::Map(_) => 0,
        }
    }

    /// A canonical order for parts gathered from many workers, so a checkpoint's bytes do
    /// not depend on how the workers' messages interleaved.
    pub fn sort_key(&self) -> (u8, u64, u8) {
        match self {
            StatePart::Series((device, resource), _) => (0, u64::from(*device), *resource as u8),
            StatePart::Durations(_) => (1, 0, 0),
            StatePart::Map(_) => (2, 0, 0),
        }
    }
}

/// A request to a stateful operator, beside its data.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Control {
    /// Emit your state once this time is applied.
    Checkpoint,
    /// Resume from this state at this time (the checkpoint's time).
    Restore(StatePart),
}

/// What a stateful operator sends: a data update, or a part of its state.
pub(crate) type Emitted<D> = Result<D, StatePart>;

/// An operator's parked input: data, or a control request at the same time.
pub(crate) enum Entry<D> {
    Data(D),
    Control(Control),
}

/// One epoch's parked input, sorted out.
pub(crate) struct Epoch<D> {
    /// The data, in arrival order.
    pub(crate) data: Vec<D>,
    /// Whether a checkpoint was asked for at this time.
    pub(crate) checkpoint: bool,
    /// The parts to resume from, if this is the epoch a run resumes at.
    pub(crate) restore: Vec<StatePart>,
}

impl<D> Epoch<D> {
    pub(crate) fn of(mut entries: Vec<Entry<D>>) -> Epoch<D> {
        let mut checkpoint = false;
        let mut restore = Vec::new();
        // Controls are a handful per epoch; data can be millions of records (a large workflow
        // arriving at once). Taking the controls out first leaves a pass that only unwraps
        // data, which collects into the same allocation instead of a second copy.
        if entries
            .iter()
            .any(|entry| matches!(entry, Entry::Control(_)))
        {
            entries.retain_mut(|entry| {
                let Entry::Control(control) = entry else {
                    return true;
                };
                match std::mem::replace(control, Control::Checkpoint) {
                    Control::Checkpoint => checkpoint = true,
                    Control::Restore(part) => restore.push(part),
                }
                false
            });
        }
        let data = entries
            .into_iter()
            .filter_map(|entry| match entry {
                Entry::Data(data) => Some(data),
                Entry::Control(_) => None,
            })
            .collect();
        Epoch {
            data,
            checkpoint,
            restore,
        }
    }

    /// Whether this is the epoch a run resumes at (its data, if any, is the re-inserted
    /// contents of collections the restored state already reflects).
    pub(crate) fn is_restore(&self) -> bool {
        !self.restore.is_empty()
    }
}
