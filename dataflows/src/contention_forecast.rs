//! Per-series forecasts and per-device predicted contention.
//!
//! Samples are routed by device, so all series of a device live on one worker and each series'
//! model ([`crate::models::TimedModel`], `auto` by default) is updated in event-time order there:
//! O(1) work per sample (O(p) for AR), and only the series that received samples in an epoch
//! emit anything. Forecasts are quantised (`quantum_ppm`) before they leave, so noise below the
//! quantum does not ripple into the partition map.

use std::collections::HashMap;

use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Operator;
use timely::dataflow::StreamVec;

use crate::models::{ModelConfig, TimedModel};
use crate::stash::TimeStash;
use crate::types::{ppm_from_fraction, DeviceId, Ppm, Resource, Sample, Time};

/// Knobs of the forecasts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForecastConfig {
    /// The model of each series.
    pub model: ModelConfig,
    /// Predicted contention is the mean forecast over this many milliseconds ahead.
    pub horizon_ms: Time,
    /// Forecasts are rounded to a multiple of this many ppm (1000 = 0.1% of capacity).
    pub quantum_ppm: Ppm,
    /// Risk weight k: a device's contention is the mean forecast plus k prediction-error sigmas,
    /// so a volatile device looks as busy as it may turn out to be.
    pub risk: f64,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            model: ModelConfig::default(),
            horizon_ms: 600_000,
            quantum_ppm: 1_000,
            risk: 1.0,
        }
    }
}

/// What the model says of one series after its latest sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesForecast {
    /// The latest sample, quantised.
    pub latest: Ppm,
    /// Mean predicted utilisation over the horizon, quantised.
    pub predicted: Ppm,
    /// Sigma of the forecast error at the horizon, quantised.
    pub sigma: Ppm,
}

impl SeriesForecast {
    /// The contention placement sees: the mean plus `risk` sigmas.
    pub fn at_risk(&self, risk: f64) -> Ppm {
        self.predicted
            .saturating_add((self.sigma as f64 * risk).round() as Ppm)
    }
}

/// A fresh model for one series.
pub fn series_model(config: &ForecastConfig) -> TimedModel {
    TimedModel::new(&config.model)
}

/// The forecast a series' model gives, as the dataflow publishes it.
pub fn series_forecast(model: &TimedModel, config: &ForecastConfig) -> SeriesForecast {
    let sigma = model.sigma(config.horizon_ms);
    SeriesForecast {
        latest: quantise(ppm_from_fraction(model.latest()), config.quantum_ppm),
        predicted: quantise(
            ppm_from_fraction(model.mean_over(config.horizon_ms).max(0.0)),
            config.quantum_ppm,
        ),
        sigma: quantise(
            ppm_from_fraction(if sigma.is_finite() {
                sigma.max(0.0)
            } else {
                0.0
            }),
            config.quantum_ppm,
        ),
    }
}

fn quantise(ppm: Ppm, quantum: Ppm) -> Ppm {
    if quantum <= 1 {
        return ppm;
    }
    let half = quantum / 2;
    (ppm.saturating_add(half)).div_euclid(quantum) * quantum
}

/// The latest value and forecast of every `(device, resource)` series that has reported.
pub fn series_forecasts<'scope>(
    samples: StreamVec<'scope, Time, Sample>,
    config: ForecastConfig,
) -> VecCollection<'scope, Time, ((DeviceId, Resource), SeriesForecast)> {
    let mut models: HashMap<(DeviceId, Resource), TimedModel> = HashMap::new();
    let mut stash = TimeStash::new();
    samples
        .unary_frontier(
            Exchange::new(|sample: &Sample| u64::from(sample.device)),
            "SeriesForecasts",
            move |_, _| {
                move |(input, frontier), output| {
                    input.for_each(|capability, data| {
                        if let Some(time) = capability.least().copied() {
                            stash.park(time, || capability.delayed(&time, 0), data.drain(..));
                        }
                    });
                    for (capability, mut batch) in stash.drain_complete(&[frontier]) {
                        let time = *capability.time();
                        // Samples of one series at one instant are taken in a canonical order, so
                        // the result does not depend on how they were routed.
                        batch.sort_by(|a, b| {
                            (a.device, a.resource)
                                .cmp(&(b.device, b.resource))
                                .then(a.value.total_cmp(&b.value))
                        });
                        let mut session = output.session(&capability);
                        let mut index = 0;
                        while index < batch.len() {
                            let series = (batch[index].device, batch[index].resource);
                            let model = models
                                .entry(series)
                                .or_insert_with(|| series_model(&config));
                            let before = model
                                .last_time()
                                .is_some()
                                .then(|| series_forecast(model, &config));
                            while index < batch.len()
                                && (batch[index].device, batch[index].resource) == series
                            {
                                model.update(time, batch[index].value);
                                index += 1;
                            }
                            let after = series_forecast(model, &config);
                            if before != Some(after) {
                                if let Some(before) = before {
                                    session.give(((series, before), time, -1isize));
                                }
                                session.give(((series, after), time, 1isize));
                            }
                        }
                    }
                }
            },
        )
        .as_collection()
}

/// Predicted contention of every device that has reported: the largest risk-weighted predicted
/// utilisation among its resources (the bottleneck is what slows a task down).
pub fn device_contention<'scope>(
    forecasts: VecCollection<'scope, Time, ((DeviceId, Resource), SeriesForecast)>,
    risk: f64,
) -> VecCollection<'scope, Time, (DeviceId, Ppm)> {
    forecasts
        .map(move |((device, _resource), forecast)| (device, forecast.at_risk(risk)))
        .reduce(|_device, predictions, output| {
            // Values arrive sorted, so the last is the largest.
            if let Some((largest, _)) = predictions.last() {
                output.push((**largest, 1));
            }
        })
}
