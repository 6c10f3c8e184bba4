//! What the engine hands a sink after each wait on the probe: the changes of the group of
//! epochs it fed, as captured (each update with its time), and how to hand them out per epoch.
//!
//! The split is the sink's to make ([`crate::engine::MapSink::group`]), so that a sink that
//! runs on a thread of its own ([`crate::write_behind::WriteBehind`]) takes it off the worker.

use std::time::Duration;

use augur_dataflows::contention_forecast::SeriesForecast;
use augur_dataflows::types::{DeviceId, Resculpt, Resource, TaskKey, Time};

use crate::engine::{
    DurationUpdate, ForecastUpdate, MapSink, MapUpdate, PrewarmUpdate, VariantUpdate,
};

/// A captured collection's updates, each with its time.
pub type Captured<D> = Vec<(D, Time, isize)>;

/// A series' forecast, keyed by its series.
pub type SeriesKeyed = ((DeviceId, Resource), SeriesForecast);

/// A group of epochs and every change the dataflow made in them, as captured.
#[derive(Debug, Default)]
pub struct EpochGroup {
    /// Each epoch's time and how long it took from feeding to completion, in time order.
    pub epochs: Vec<(Time, Duration)>,
    /// Series forecasts, each change with its time.
    pub forecasts: Captured<SeriesKeyed>,
    /// Duration estimates.
    pub durations: Captured<((u32, u32), u64)>,
    /// Warm-up advice.
    pub prewarm: Captured<(u32, u32)>,
    /// Re-sculpted tasks.
    pub variants: Captured<Resculpt>,
    /// The partition map.
    pub map: Captured<(TaskKey, DeviceId)>,
}

impl EpochGroup {
    /// Whether no epoch of the group changed anything.
    pub fn is_empty(&self) -> bool {
        self.forecasts.is_empty()
            && self.durations.is_empty()
            && self.prewarm.is_empty()
            && self.variants.is_empty()
            && self.map.is_empty()
    }
}

/// One epoch's net changes, consolidated, as a sink is told them.
#[derive(Debug, Default)]
pub struct EpochReport {
    /// The epoch.
    pub time: Time,
    /// How long it took from feeding to completion.
    pub latency: Duration,
    /// Series forecasts.
    pub forecasts: Vec<ForecastUpdate>,
    /// Duration estimates.
    pub durations: Vec<DurationUpdate>,
    /// Warm-up advice.
    pub prewarm: Vec<PrewarmUpdate>,
    /// Re-sculpted tasks.
    pub variants: Vec<VariantUpdate>,
    /// The partition map.
    pub map: Vec<MapUpdate>,
}

impl EpochGroup {
    /// The group's epochs in time order, each with its consolidated changes.
    pub fn split(self) -> Vec<EpochReport> {
        let times: Vec<Time> = self.epochs.iter().map(|(time, _)| *time).collect();
        let mut forecasts = split_by_epoch(&times, self.forecasts).into_iter();
        let mut durations = split_by_epoch(&times, self.durations).into_iter();
        let mut prewarm = split_by_epoch(&times, self.prewarm).into_iter();
        let mut variants = split_by_epoch(&times, self.variants).into_iter();
        let mut map = split_by_epoch(&times, self.map).into_iter();
        self.epochs
            .into_iter()
            .map(|(time, latency)| EpochReport {
                time,
                latency,
                forecasts: forecasts.next().unwrap_or_default(),
                durations: durations.next().unwrap_or_default(),
                prewarm: prewarm.next().unwrap_or_default(),
                variants: variants.next().unwrap_or_default(),
                map: map.next().unwrap_or_default(),
            })
            .collect()
    }
}

impl EpochReport {
    /// Tells `sink` this epoch: the forecasts, durations, warm-up advice and variants when any
    /// changed, then the map (always).
    pub fn replay<Snk: MapSink>(&self, sink: &mut Snk) -> Result<(), Snk::Error> {
        if !self.forecasts.is_empty() {
            sink.forecasts(self.time, &self.forecasts)?;
        }
        if !self.durations.is_empty() {
            sink.durations(self.time, &self.durations)?;
        }
        if !self.prewarm.is_empty() {
            sink.prewarm(self.time, &self.prewarm)?;
        }
        if !self.variants.is_empty() {
            sink.variants(self.time, &self.variants)?;
        }
        sink.epoch(self.time, &self.map, self.latency)
    }
}

/// Hands a capture's updates out per epoch of `epochs` (sorted), consolidated: an update
/// belongs to the first epoch at or after its time (every operator emits at its input's time,
/// so this is the epoch itself).
fn split_by_epoch<D: Ord>(
    epochs: &[Time],
    captured: Vec<(D, Time, isize)>,
) -> Vec<Vec<(D, isize)>> {
    let last = epochs.len().saturating_sub(1);
    // Updates mostly come epoch by epoch: try the previous one's epoch first.
    let epoch_of = |index: usize, time: Time| {
        if epochs.get(index).is_none_or(|epoch| *epoch != time) {
            epochs.partition_point(|epoch| *epoch < time).min(last)
        } else {
            index
        }
    };
    // Each epoch's list is sized first, so the changes are moved once, without regrowing.
    let mut sizes = vec![0usize; epochs.len()];
    let mut index = 0;
    for (_, time, _) in &captured {
        index = epoch_of(index, *time);
        if let Some(size) = sizes.get_mut(index) {
            *size += 1;
        }
    }
    let mut per_epoch: Vec<Vec<(D, isize)>> = sizes.into_iter().map(Vec::with_capacity).collect();
    let mut index = 0;
    for (record, time, diff) in captured {
        index = epoch_of(index, time);
        if let Some(updates) = per_epoch.get_mut(index) {
            updates.push((record, diff));
        }
    }
    for updates in &mut per_epoch {
        consolidate(updates);
    }
    per_epoch
}

/// Differential's `consolidate` (sorted by record, equal records' diffs summed, zeros dropped),
/// with an unstable sort: records that compare equal are merged, so stability cannot show in
/// the result, and the unstable sort costs less on an epoch's hundreds of forecast changes.
fn consolidate<D: Ord>(updates: &mut Vec<(D, isize)>) {
    if updates.len() < 2 {
        updates.retain(|(_, diff)| *diff != 0);
        return;
    }
    // The series and contention operators send an epoch's changes in order: then the merge
    // below is all there is to do.
    if !updates.is_sorted_by(|a, b| a.0 <= b.0) {
        updates.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }
    let mut kept = 0;
    for index in 0..updates.len() {
        if kept > 0 && updates[kept - 1].0 == updates[index].0 {
            let diff = updates[index].1;
            updates[kept - 1].1 += diff;
        } else {
            if kept > 0 && updates[kept - 1].1 == 0 {
                kept -= 1;
            }
            updates.swap(kept, index);
            kept += 1;
        }
    }
    if kept > 0 && updates[kept - 1].1 == 0 {
        kept -= 1;
    }
    updates.truncate(kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consolidation_is_differentials() {
        let mut state: u64 = 11;
        for len in [0usize, 1, 2, 3, 10, 100, 1000] {
            for round in 0..20 {
                let mut updates: Vec<((u8, u8), isize)> = (0..len)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1442695040888963407);
                        let bits = state >> 33;
                        (
                            ((bits % 7) as u8, ((bits >> 3) % 3) as u8),
                            (bits >> 8) as isize % 3 - 1,
                        )
                    })
                    .collect();
                // Half the cases sorted already (the operators' usual order), with repeats and
                // zeros, which skip the sort.
                if round % 2 == 1 {
                    updates.sort();
                }
                let (mut ours, mut theirs) = (updates.clone(), updates);
                consolidate(&mut ours);
                differential_dataflow::consolidation::consolidate(&mut theirs);
                assert_eq!(ours, theirs);
            }
        }
    }

    #[test]
    fn updates_go_to_their_epoch_consolidated() {
        let epochs = [10, 20, 30];
        let captured = vec![
            ((1u8, 1u8), 10, 1),
            ((0, 5), 10, 1),
            ((1, 1), 10, -1),
            ((2, 2), 20, 1),
            // Out of time order, and one between epochs (it belongs to the next).
            ((3, 3), 10, 1),
            ((4, 4), 25, 1),
            ((5, 5), 99, 1),
        ];
        assert_eq!(
            split_by_epoch(&epochs, captured),
            vec![
                vec![((0, 5), 1), ((3, 3), 1)],
                vec![((2, 2), 1)],
                vec![((4, 4), 1), ((5, 5), 1)],
            ]
        );
        assert_eq!(
            split_by_epoch::<u8>(&[], Vec::new()),
            Vec::<Vec<(u8, isize)>>::new()
        );
    }
}
