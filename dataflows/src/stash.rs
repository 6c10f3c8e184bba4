//! Holding updates until their time is complete.
//!
//! augur's stateful operators must see all of an epoch's updates before acting on any of them
//! (the result has to depend on what happened, not on how messages were batched or routed), so
//! they park updates here by time, with a capability to send at that time, and drain the times
//! the input frontiers have passed, oldest first.

use std::collections::BTreeMap;

use timely::dataflow::operators::Capability;
use timely::progress::frontier::MutableAntichain;

use crate::types::Time;

/// Updates parked by time, each time with the capability to answer at it.
pub(crate) struct TimeStash<D> {
    parked: BTreeMap<Time, (Capability<Time>, Vec<D>)>,
}

impl<D> TimeStash<D> {
    pub(crate) fn new() -> Self {
        TimeStash {
            parked: BTreeMap::new(),
        }
    }

    /// Parks `data` at `time`; `capability` is asked for a capability at `time` only when this
    /// is the first update parked there.
    pub(crate) fn park(
        &mut self,
        time: Time,
        capability: impl FnOnce() -> Capability<Time>,
        data: impl IntoIterator<Item = D>,
    ) {
        self.slot(time, capability).extend(data);
    }

    /// The list parked at `time`, to push to (one lookup for a run of updates at one time);
    /// `capability` is asked for as in [`Self::park`].
    pub(crate) fn slot(
        &mut self,
        time: Time,
        capability: impl FnOnce() -> Capability<Time>,
    ) -> &mut Vec<D> {
        &mut self
            .parked
            .entry(time)
            .or_insert_with(|| (capability(), Vec::new()))
            .1
    }

    /// Removes and returns, oldest first, every parked time that no frontier can still reach.
    pub(crate) fn drain_complete(
        &mut self,
        frontiers: &[&MutableAntichain<Time>],
    ) -> Vec<(Capability<Time>, Vec<D>)> {
        let mut complete = Vec::new();
        while let Some(entry) = self.parked.first_entry() {
            let time = *entry.key();
            if frontiers.iter().any(|f| f.less_equal(&time)) {
                break;
            }
            complete.push(entry.remove());
        }
        complete
    }
}
