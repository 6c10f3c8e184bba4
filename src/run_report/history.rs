//! What `run --report` keeps of a run as it goes, bounded: per drawn device, each resource's
//! latest sample, forecast and its error band, and anomaly score, and the tasks mapped there,
//! each a [`Trace`] of at most a few thousand points however long the run.

use std::collections::BTreeMap;

use augur_dataflows::types::{fraction_from_ppm, DeviceId, Resource, Time};

use crate::engine::{ForecastUpdate, MapUpdate};

use super::trace::{Band, Trace};

/// Devices drawn at most (the first in platform order); the page lists the rest.
pub const MAX_DEVICES: usize = 200;

/// One series' traces, fractions of capacity.
#[derive(Clone, Debug, Default)]
pub struct SeriesTraces {
    /// The latest sample.
    pub latest: Trace,
    /// The predicted mean over the horizon.
    pub predicted: Trace,
    /// `predicted` less and plus one sigma of its error.
    pub band: Band,
    /// The anomaly score, 0 to 1 (low and high alike).
    pub anomaly: Band,
}

/// The run's history, as the sink sees it.
#[derive(Clone, Debug, Default)]
pub struct RunHistory {
    /// The first and last event times seen.
    pub span: Option<(Time, Time)>,
    /// Per drawn device and resource.
    pub series: BTreeMap<(DeviceId, Resource), SeriesTraces>,
    /// Per drawn device: tasks mapped there now, and over time.
    pub tasks: BTreeMap<DeviceId, (i64, Trace)>,
    /// Moves per epoch (tasks leaving one device for another), over time.
    pub moves: Trace,
    /// Whether the run resumed from a checkpoint: the charts begin there.
    pub resumed: bool,
}

impl RunHistory {
    fn saw(&mut self, time: Time) {
        self.span = Some(match self.span {
            None => (time, time),
            Some((first, last)) => (first.min(time), last.max(time)),
        });
    }

    fn drawn(device: DeviceId) -> bool {
        (device as usize) < MAX_DEVICES
    }

    /// A resumed run's history: nothing before the checkpoint at `time` is known but its map
    /// and forecasts, drawn from there (a state that never changes again would otherwise
    /// not be drawn at all).
    pub fn resume(
        &mut self,
        time: Time,
        mapped: impl IntoIterator<Item = DeviceId>,
        forecasts: &[ForecastUpdate],
    ) {
        self.resumed = true;
        for device in mapped.into_iter().filter(|&d| Self::drawn(d)) {
            self.tasks.entry(device).or_default().0 += 1;
        }
        for (count, trace) in self.tasks.values_mut() {
            trace.push(time, *count as f64);
        }
        self.forecasts(time, forecasts);
    }

    /// Takes an epoch's forecast changes (the insertions are the new forecasts).
    pub fn forecasts(&mut self, time: Time, changes: &[ForecastUpdate]) {
        self.saw(time);
        for &(((device, resource), forecast), diff) in changes {
            if diff <= 0 || !Self::drawn(device) {
                continue;
            }
            let traces = self.series.entry((device, resource)).or_default();
            let predicted = fraction_from_ppm(forecast.predicted);
            let sigma = fraction_from_ppm(forecast.sigma);
            traces.latest.push(time, fraction_from_ppm(forecast.latest));
            traces.predicted.push(time, predicted);
            traces
                .band
                .push(time, ((predicted - sigma).max(0.0), predicted + sigma));
            traces.anomaly.push(
                time,
                (
                    fraction_from_ppm(forecast.anomaly),
                    fraction_from_ppm(forecast.anomaly),
                ),
            );
        }
    }

    /// Takes an epoch's map changes and the moves among them (as the sink counts them for
    /// `summary.json`, so that the two agree and the changes are not searched twice).
    pub fn epoch(&mut self, time: Time, changes: &[MapUpdate], moves: u64) {
        self.saw(time);
        let mut before: BTreeMap<DeviceId, i64> = BTreeMap::new();
        for &((_, device), diff) in changes {
            if !Self::drawn(device) {
                continue;
            }
            let (count, _) = self.tasks.entry(device).or_default();
            before.entry(device).or_insert(*count);
            *count += diff as i64;
        }
        for (device, was) in before {
            let (count, trace) = self.tasks.entry(device).or_default();
            trace.push(time, was as f64);
            trace.push(time, *count as f64);
        }
        if moves > 0 || !self.moves.is_empty() {
            self.moves.push(time, moves as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use augur_dataflows::contention_forecast::SeriesForecast;
    use augur_dataflows::types::TaskKey;

    fn forecast(latest: i64, predicted: i64, sigma: i64) -> SeriesForecast {
        SeriesForecast {
            latest,
            predicted,
            sigma,
            anomaly: 0,
        }
    }

    #[test]
    fn counts_tasks_per_device_and_moves() {
        let mut history = RunHistory::default();
        let (a, b) = (
            TaskKey {
                workflow: 0,
                task: 0,
            },
            TaskKey {
                workflow: 0,
                task: 1,
            },
        );
        history.epoch(10, &[((a, 0), 1), ((b, 0), 1)], 0);
        history.epoch(20, &[((a, 0), -1), ((a, 1), 1)], 1);
        assert_eq!(history.tasks[&0].0, 1);
        assert_eq!(history.tasks[&1].0, 1);
        assert_eq!(
            history.tasks[&0].1.points(),
            vec![(10, 0.0), (10, 2.0), (20, 2.0), (20, 1.0)]
        );
        assert_eq!(history.moves.points(), vec![(20, 1.0)]);
        assert_eq!(history.span, Some((10, 20)));
    }

    #[test]
    fn keeps_the_new_forecasts_of_drawn_devices_only() {
        let mut history = RunHistory::default();
        let far = MAX_DEVICES as DeviceId;
        history.forecasts(
            5,
            &[
                (((0, Resource::Cpu), forecast(100_000, 200_000, 50_000)), -1),
                (((0, Resource::Cpu), forecast(300_000, 400_000, 500_000)), 1),
                (((far, Resource::Cpu), forecast(1, 1, 1)), 1),
            ],
        );
        let traces = &history.series[&(0, Resource::Cpu)];
        assert_eq!(traces.latest.points(), vec![(5, 0.3)]);
        assert_eq!(traces.predicted.points(), vec![(5, 0.4)]);
        assert_eq!(
            traces.band.extents().collect::<Vec<_>>(),
            vec![(5, 5, 0.0, 0.9)]
        );
        assert_eq!(history.series.len(), 1);
    }

    #[test]
    fn a_resumed_history_starts_from_the_restored_map_and_forecasts() {
        let mut history = RunHistory::default();
        history.resume(
            100,
            [0, 0, 1],
            &[(((1, Resource::Memory), forecast(500_000, 500_000, 0)), 1)],
        );
        assert!(history.resumed);
        assert_eq!(history.span, Some((100, 100)));
        assert_eq!(history.tasks[&0].1.points(), vec![(100, 2.0)]);
        assert_eq!(history.tasks[&1].1.points(), vec![(100, 1.0)]);
        let traces = &history.series[&(1, Resource::Memory)];
        assert_eq!(traces.latest.points(), vec![(100, 0.5)]);
    }
}
