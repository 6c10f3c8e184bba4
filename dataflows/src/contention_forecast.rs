//! Per-series forecasts and per-device predicted contention.
//!
//! Samples are routed by device, so all series of a device live on one worker and each series'
//! model ([`crate::models::TimedModel`], `auto` by default) is updated in event-time order there:
//! O(1) work per sample (O(p) for AR), and only the series that received samples in an epoch
//! emit anything. Forecasts are quantised (`quantum_ppm`) before they leave, so noise below the
//! quantum does not ripple into the partition map.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::{Capability, Operator};
use timely::dataflow::StreamVec;

use crate::anomaly::{AnomalyParams, AnomalyScorer, THRESHOLD};
use crate::checkpoint::{Control, Entry, Epoch, StatePart};
use crate::models::{round_half_away, ModelConfig, TimedModel};
use crate::stash::TimeStash;
use crate::types::{DeviceId, Ppm, Resource, Sample, Time};

/// Knobs of the forecasts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForecastConfig {
    /// The model of each series.
    pub model: ModelConfig,
    /// Predicted contention is the mean forecast over this many milliseconds ahead.
    pub horizon_ms: Time,
    /// Forecasts are rounded to a multiple of this many ppm (1000 = 0.1% of capacity).
    pub quantum_ppm: Ppm,
    /// Dynamic granularity: when set, a series is published at this coarser quantum while it
    /// is far from congestion, and at `quantum_ppm` once its forecast (plus `risk` sigmas)
    /// reaches `refine_above` or its last one-step miss exceeds the coarse quantum: fine where
    /// placement decisions are close, coarse (fewer changes reaching the map) elsewhere.
    pub coarse_quantum_ppm: Option<Ppm>,
    /// Utilisation (fraction) from which a series is refined to the fine quantum.
    pub refine_above: f64,
    /// Risk weight k: a device's contention is the mean forecast plus k prediction-error sigmas,
    /// so a volatile device looks as busy as it may turn out to be.
    pub risk: f64,
    /// What an anomalous device costs in placement.
    pub anomaly: AnomalyPolicy,
}

/// How placement treats a device while any of its series scores as anomalous (at or above the
/// scorer's threshold of 0.5).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum AnomalyPolicy {
    /// Anomalies are reported but do not change placement.
    Ignore,
    /// The device's contention is raised by this fraction of capacity.
    Penalise(f64),
    /// The device is avoided: its contention is raised so far that nothing new goes there
    /// while any other device can take the work.
    Exclude,
}

/// The contention an excluded device shows (100× capacity).
pub const EXCLUDED_PPM: Ppm = 100_000_000;

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            model: ModelConfig::default(),
            horizon_ms: 600_000,
            quantum_ppm: 1_000,
            coarse_quantum_ppm: None,
            refine_above: 0.7,
            // Measured in `augur simulate` (BENCHMARKS.md): on Alibaba's noisy 10-second samples
            // a sigma term scaled every device's predicted queue by its own noise and tripled
            // predictive makespans; on NAB it changed nothing. The mean alone is the default;
            // `risk` stays a knob for users who would rather pay for caution.
            risk: 0.0,
            anomaly: AnomalyPolicy::Penalise(0.25),
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
    /// Anomaly score of the latest sample in [0, 1], quantised.
    pub anomaly: Ppm,
}

impl SeriesForecast {
    /// The contention placement sees: the mean plus `risk` sigmas.
    pub fn at_risk(&self, risk: f64) -> Ppm {
        self.predicted
            .saturating_add(round_half_away(self.sigma as f64 * risk) as Ppm)
    }
}

/// The most steps of its series an alarm is held for (an episode, as the scorer's bursts). The
/// scorer's false alarms are per step (about one in 2,000 steps of Gaussian noise): held for a
/// 10-minute horizon, that kept a quiet series sampled every second (600 steps) in alarm a
/// quarter of the time or more, where at 5-minute samples (2 steps) it is a few minutes a week.
pub const HOLD_STEPS: f64 = 12.0;

/// Steps of a series' model that its horizon spans, at the least: samples closer than a
/// quarter of `horizon / HORIZON_STEPS` are modelled as bucket means of that length (10-s
/// samples for a 10-minute horizon as 50-s steps; see [`TimedModel::for_series`], whose cap
/// of a minute bounds the lag a bucket adds). What is published is the mean over the horizon,
/// which 12 steps resolve, while every step costs the whole model (`auto`'s five members
/// updated, scored and blended): at a step per 10-s sample that was five times the work, for
/// a window of 1,008 steps that spanned under 3 hours where 50-s steps span 14.
pub const HORIZON_STEPS: f64 = 12.0;

/// What the dataflow keeps for one series: its forecaster and its anomaly scorer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeriesState {
    model: TimedModel,
    anomaly: AnomalyScorer,
    /// The last alarm: its time and score. The scorer reports an anomaly once, at its onset
    /// (as NAB rewards), but a device whose load jumped stays suspect for a while after it:
    /// the horizon, or [`HOLD_STEPS`] steps where those are shorter.
    alarm: Option<(Time, f64)>,
    latest_time: Time,
    /// The scorer of the steps whose model the series' [`TimedModel`] put aside when its rate
    /// changed, taken back with it: a collector alternating between two rates would otherwise
    /// restart the scorer at every alternation and never leave its warm-up.
    shelved_anomaly: Option<Box<AnomalyScorer>>,
    /// The model's part of the published forecast, while no step has changed it: a coarse
    /// series (10-s samples in 50-s steps) takes several samples a step, and the blend's mean
    /// and sigma were most of what each of the others cost. Not saved: a restored series
    /// computes it afresh.
    #[serde(skip)]
    held: Option<HeldForecast>,
}

/// What [`SeriesState::forecast`] reads from the model: the mean and sigma over the horizon,
/// and the one-step sigma where dynamic granularity needs it, for one horizon.
#[derive(Clone, Copy, Debug, PartialEq)]
struct HeldForecast {
    horizon_ms: Time,
    one_step: Option<f64>,
    mean: f64,
    sigma: f64,
}

impl SeriesState {
    /// A series that has seen nothing.
    pub fn new(config: &ForecastConfig) -> SeriesState {
        // A configured interval fixes the step (and sizes the window for it); otherwise each
        // series estimates its own. Either way the step is kept coarse enough for the window
        // to span the horizon, and the horizon to be about HORIZON_STEPS steps: the mean over
        // 10 minutes ahead needs no 1-ms steps, and a model that has seen one second of them
        // would extrapolate 600,000 steps.
        let mut model = TimedModel::for_series(
            &config.model,
            config.model.interval_ms.map(|ms| ms as Time),
            (config.horizon_ms as f64 / config.model.window.max(1) as f64)
                .max(config.horizon_ms as f64 / HORIZON_STEPS),
        );
        // What `forecast` reads: the mean and sigma over the horizon, and with dynamic
        // granularity the one-step sigma.
        match config.coarse_quantum_ppm {
            None => model.focus_on(&[config.horizon_ms]),
            Some(_) => model.focus_on(&[config.horizon_ms, 0]),
        }
        SeriesState {
            model,
            anomaly: AnomalyScorer::new(AnomalyParams::default()),
            alarm: None,
            latest_time: Time::MIN,
            shelved_anomaly: None,
            held: None,
        }
    }

    /// Takes one sample.
    pub fn update(&mut self, time: Time, value: f64) {
        // The scorer takes the model's steps: a fine series' buckets, not its samples. Its
        // false alarms are per step (about one in 2,000 steps of Gaussian noise, whatever
        // their length): per 1-ms sample that was one every two seconds, and with each held
        // for the horizon a fine device was never out of alarm.
        let previous = self.latest_time;
        let steps = self.model.update_steps(time, value);
        // A sample that only joined the open bucket of a coarse series changed nothing the
        // forecast reads from the model; anything else may have. (Going coarse or fine is a
        // change of rate; a model with no step yet forecasts the open bucket's mean.)
        let unchanged = self.model.is_coarse()
            && !steps.rate_changed()
            && steps.iter().next().is_none()
            && !self.model.model().is_empty();
        if !unchanged {
            self.held = None;
        }
        let mut rejoins = false;
        let mut level = None;
        if steps.rate_changed() {
            // The scorer's noise scale and profile were learnt on steps of another kind: bucket
            // means of 3 samples are far noisier than those of 60, and a collector that slowed
            // would otherwise read as an anomaly of the device. It starts again, or where the
            // rate returned to one seen before, the scorer of those steps is taken back.
            let recalled = steps
                .recalled()
                .then(|| self.shelved_anomaly.take())
                .flatten();
            rejoins = recalled.is_some();
            let incoming =
                recalled.map_or_else(|| AnomalyScorer::new(AnomalyParams::default()), |s| *s);
            let outgoing = std::mem::replace(&mut self.anomaly, incoming);
            level = outgoing.level();
            if steps.shelved() {
                self.shelved_anomaly = Some(Box::new(outgoing));
            }
            self.alarm = None;
        }
        for (time, value) in steps.iter() {
            let score = if std::mem::take(&mut rejoins) {
                self.anomaly.rejoin(previous, time, value, level)
            } else {
                self.anomaly.update(time, value)
            };
            if score >= THRESHOLD {
                self.alarm = Some((time, score));
            }
        }
        self.latest_time = self.latest_time.max(time);
    }

    /// The anomaly score placement sees: the latest, or the last alarm's while it is younger
    /// than `horizon` milliseconds and [`HOLD_STEPS`] of the series' steps.
    fn anomaly_score(&self, horizon: Time) -> f64 {
        let step = self.model.step_ms();
        let hold = if step > 0.0 {
            // `as` saturates: a step of days holds for the horizon.
            horizon.min((HOLD_STEPS * step) as Time)
        } else {
            horizon
        };
        let latest = self.anomaly.latest();
        match self.alarm {
            Some((at, score)) if self.latest_time.saturating_sub(at) < hold => latest.max(score),
            _ => latest,
        }
    }

    /// Whether any sample has been taken.
    pub fn is_empty(&self) -> bool {
        self.model.last_time().is_none()
    }

    /// The model's part of the forecast over `config`'s horizon, computed afresh.
    fn model_forecast(&self, config: &ForecastConfig) -> HeldForecast {
        let (mean, sigma) = self.model.mean_and_sigma(config.horizon_ms);
        HeldForecast {
            horizon_ms: config.horizon_ms,
            // The one-step sigma is only needed (and only computed) with dynamic granularity
            // on: this runs for every step of every series.
            one_step: config.coarse_quantum_ppm.map(|_| self.model.sigma(0)),
            mean,
            sigma,
        }
    }

    /// The forecast as the dataflow publishes it.
    pub fn forecast(&self, config: &ForecastConfig) -> SeriesForecast {
        self.forecast_from(self.model_forecast(config), config)
    }

    /// [`Self::forecast`], the model's part kept from the last call while no step has changed
    /// it (what the dataflow's operator calls, at every sample).
    pub fn publish(&mut self, config: &ForecastConfig) -> SeriesForecast {
        let held = match self.held {
            Some(held)
                if held.horizon_ms == config.horizon_ms
                    && held.one_step.is_some() == config.coarse_quantum_ppm.is_some() =>
            {
                // Every test run checks the rule that kept it (`update`) against the model.
                #[cfg(debug_assertions)]
                {
                    let fresh = self.model_forecast(config);
                    let bits = |h: HeldForecast| {
                        (
                            h.mean.to_bits(),
                            h.sigma.to_bits(),
                            h.one_step.map(f64::to_bits),
                        )
                    };
                    assert_eq!(bits(held), bits(fresh), "a held forecast went stale");
                }
                held
            }
            _ => {
                let fresh = self.model_forecast(config);
                self.held = Some(fresh);
                fresh
            }
        };
        self.forecast_from(held, config)
    }

    fn forecast_from(&self, held: HeldForecast, config: &ForecastConfig) -> SeriesForecast {
        let (mean, sigma) = (held.mean, held.sigma);
        let fraction = |value: f64| {
            if value.is_finite() {
                value.max(0.0)
            } else {
                0.0
            }
        };
        let predicted = fraction(mean);
        let quantum = match (config.coarse_quantum_ppm, held.one_step) {
            (Some(_), Some(one_step)) => granularity(
                config,
                predicted + config.risk * fraction(sigma),
                fraction(one_step),
            ),
            _ => config.quantum_ppm,
        };
        SeriesForecast {
            latest: quantise(to_ppm(self.model.latest()), quantum),
            predicted: quantise(to_ppm(predicted), quantum),
            sigma: quantise(to_ppm(fraction(sigma)), quantum),
            anomaly: quantise(
                to_ppm(fraction(self.anomaly_score(config.horizon_ms)).min(1.0)),
                1_000,
            ),
        }
    }
}

/// A device's contention from its series' forecasts: the largest risk-weighted forecast among
/// its resources (the bottleneck is what slows a task down), raised per the anomaly policy when
/// any series is anomalous.
pub fn contention_of(forecasts: &[SeriesForecast], risk: f64, policy: AnomalyPolicy) -> Ppm {
    contention_over(forecasts.iter(), risk, policy)
}

/// [`contention_of`] over any list of forecasts, so the operator needs no list of its own.
fn contention_over<'a>(
    forecasts: impl Iterator<Item = &'a SeriesForecast> + Clone,
    risk: f64,
    policy: AnomalyPolicy,
) -> Ppm {
    let base = forecasts
        .clone()
        .map(|f| f.at_risk(risk))
        .max()
        .unwrap_or(0);
    let mut forecasts = forecasts;
    let threshold = to_ppm(THRESHOLD);
    let anomalous = forecasts.any(|f| f.anomaly >= threshold);
    match (anomalous, policy) {
        (false, _) | (true, AnomalyPolicy::Ignore) => base,
        (true, AnomalyPolicy::Penalise(penalty)) => base.saturating_add(to_ppm(penalty)),
        (true, AnomalyPolicy::Exclude) => base.saturating_add(EXCLUDED_PPM),
    }
}

/// The quantum a series is published at: the fine one unless dynamic granularity is on and the
/// series is both far from congestion (`at_risk` below `refine_above`) and predictable (its
/// one-step error sigma under the coarse quantum).
pub fn granularity(config: &ForecastConfig, at_risk: f64, one_step_sigma: f64) -> Ppm {
    match config.coarse_quantum_ppm {
        Some(coarse) if at_risk < config.refine_above && to_ppm(one_step_sigma) < coarse => coarse,
        _ => config.quantum_ppm,
    }
}

/// [`crate::types::ppm_from_fraction`] to the bit, with the call-free rounding: it runs four
/// times per sample here.
fn to_ppm(fraction: f64) -> Ppm {
    let scaled = round_half_away(fraction * 1_000_000.0);
    if scaled.is_nan() {
        0
    } else {
        scaled.clamp(i64::MIN as f64, i64::MAX as f64) as Ppm
    }
}

fn quantise(ppm: Ppm, quantum: Ppm) -> Ppm {
    // The default quantum as a constant: the division becomes a multiply (the same result), where
    // a division by a run-time quantum costs tens of cycles three times per sample.
    if quantum == 1_000 {
        return quantise_by(ppm, 1_000);
    }
    if quantum <= 1 {
        return ppm;
    }
    quantise_by(ppm, quantum)
}

#[inline(always)]
fn quantise_by(ppm: Ppm, quantum: Ppm) -> Ppm {
    let half = quantum / 2;
    // Saturating: the lowest multiple of the quantum below i64::MIN does not exist.
    (ppm.saturating_add(half))
        .div_euclid(quantum)
        .saturating_mul(quantum)
}

/// The hash of the operators' maps, keyed by dense integer ids: FxHash's mixing step, where
/// the default SipHash cost more per sample than the map's work. Ids are the catalog's, never
/// chosen by an input, so there is nothing to flood.
type IdHash = BuildHasherDefault<IdHasher>;

#[derive(Default)]
struct IdHasher {
    hash: u64,
}

impl IdHasher {
    fn mix(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.hash
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.mix(u64::from(byte));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.mix(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.mix(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.mix(value as u64);
    }

    fn write_isize(&mut self, value: isize) {
        self.mix(value as u64);
    }
}

/// Every reporting series' latest forecast.
pub type Forecasts<'scope> = VecCollection<'scope, Time, ((DeviceId, Resource), SeriesForecast)>;

/// Every reporting device's predicted contention (see [`contention_of`]).
pub type Contention<'scope> = VecCollection<'scope, Time, (DeviceId, Ppm)>;

/// What [`series_forecasts`] publishes.
pub struct SeriesOutputs<'scope> {
    /// The latest value and forecast of every series that has reported.
    pub forecasts: Forecasts<'scope>,
    /// With `with_contention`, each reporting device's contention, as [`device_contention`]
    /// computes it from the forecasts; else empty.
    pub contention: Contention<'scope>,
    /// Every series' state, when the control asks for it.
    pub state: StreamVec<'scope, Time, StatePart>,
}

/// Which of a device's resources have a series (bit `Resource as u8`), and the contention
/// last published for it.
#[derive(Clone, Copy, Debug, Default)]
struct DeviceSeries {
    resources: u8,
    published: Option<Ppm>,
}

/// The latest value and forecast of every `(device, resource)` series that has reported, and,
/// when `control` asks for it, every series' state (see [`crate::checkpoint`]). `control` must
/// reach every worker: checkpoint requests broadcast, restored parts routed by
/// [`StatePart::route`].
///
/// With `with_contention`, it also publishes each device's contention. A device's series all
/// live on the worker its samples go to, so the contention is computed where the forecasts
/// change, which a separate operator ([`device_contention`]) did at the cost of parking and
/// regrouping every forecast change again (6% of the changing ingest log).
pub fn series_forecasts<'scope>(
    samples: StreamVec<'scope, Time, Sample>,
    control: StreamVec<'scope, Time, Control>,
    config: ForecastConfig,
    with_contention: bool,
) -> SeriesOutputs<'scope> {
    // Each series' state and the forecast it last published (what it publishes now, since
    // the state has not changed since), so a sample costs one forecast, not two.
    let mut models: HashMap<(DeviceId, Resource), (SeriesState, Option<SeriesForecast>), IdHash> =
        HashMap::default();
    let mut devices: HashMap<DeviceId, DeviceSeries, IdHash> = HashMap::default();
    let mut stash = TimeStash::new();
    // A capability on the state output for each time a control message came at: only those
    // times can ask for the state.
    let mut state_capabilities: BTreeMap<Time, Capability<Time>> = BTreeMap::new();
    // With the contention on, one on the contention output for each time that brought data.
    let mut contention_capabilities: BTreeMap<Time, Capability<Time>> = BTreeMap::new();
    type Update = (((DeviceId, Resource), SeriesForecast), Time, isize);
    type ContentionUpdate = ((DeviceId, Ppm), Time, isize);
    // Two outputs, forecasts and state, where one output split by `ok_err` copied every
    // forecast change once more (4% of the changing ingest log).
    let mut builder = OperatorBuilder::new("SeriesForecasts".to_owned(), samples.scope());
    let mut input = builder.new_input(
        samples,
        Exchange::new(|sample: &Sample| u64::from(sample.device)),
    );
    let mut control = builder.new_input(control, Pipeline);
    let (forecasts_output, forecasts) = builder.new_output::<Vec<Update>>();
    let (state_output, state) = builder.new_output::<Vec<StatePart>>();
    let (contention_output, contention) = builder.new_output::<Vec<ContentionUpdate>>();
    let mut forecasts_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<Update>>>::from(forecasts_output);
    let mut contention_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<ContentionUpdate>>>::from(
            contention_output,
        );
    let mut state_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<StatePart>>>::from(state_output);
    builder.build(move |capabilities| {
        // Every capability is taken from an input's; the initial ones go at once.
        drop(capabilities);
        move |frontiers| {
            let (frontier, control_frontier) = (&frontiers[0], &frontiers[1]);
            input.for_each(|capability, data| {
                if let Some(time) = capability.least().copied() {
                    if with_contention {
                        contention_capabilities
                            .entry(time)
                            .or_insert_with(|| capability.delayed(&time, 2));
                    }
                    let entries = data.drain(..).map(Entry::Data);
                    stash.park(time, || capability.delayed(&time, 0), entries);
                }
            });
            control.for_each(|capability, data| {
                if let Some(time) = capability.least().copied() {
                    state_capabilities
                        .entry(time)
                        .or_insert_with(|| capability.delayed(&time, 1));
                    // A restored series publishes its device's contention.
                    if with_contention {
                        contention_capabilities
                            .entry(time)
                            .or_insert_with(|| capability.delayed(&time, 2));
                    }
                    let entries = data.drain(..).map(Entry::Control);
                    stash.park(time, || capability.delayed(&time, 0), entries);
                }
            });
            let mut forecasts_handle = forecasts_output.activate();
            let mut state_handle = state_output.activate();
            let mut contention_handle = contention_output.activate();
            for (capability, entries) in stash.drain_complete(&[frontier, control_frontier]) {
                let time = *capability.time();
                let state_capability = state_capabilities.remove(&time);
                let contention_capability = contention_capabilities.remove(&time);
                let Epoch {
                    data: mut batch,
                    checkpoint,
                    restore,
                } = Epoch::of(entries);
                let mut session = forecasts_handle.session_with_builder(&capability);
                // Resuming: take the saved series and publish their forecasts, so that
                // the contention downstream is whole again.
                let mut restored: Vec<_> = restore
                    .into_iter()
                    .filter_map(|part| match part {
                        StatePart::Series(series, state) => Some((series, state)),
                        _ => None,
                    })
                    .collect();
                restored.sort_by_key(|(series, _)| *series);
                // Devices whose contention may have changed, in order once sorted.
                let mut touched: Vec<DeviceId> = Vec::new();
                for (series, mut state) in restored {
                    let published = (!state.is_empty()).then(|| state.publish(&config));
                    if let Some(forecast) = published {
                        session.give(((series, forecast), time, 1));
                    }
                    models.insert(series, (*state, published));
                    devices.entry(series.0).or_default().resources |= 1 << series.1 as u8;
                    if with_contention {
                        touched.push(series.0);
                    }
                }
                // Samples of one series at one instant are taken in a canonical order, so
                // the result does not depend on how they were routed.
                let order = |a: &Sample, b: &Sample| {
                    (a.device, a.resource)
                        .cmp(&(b.device, b.resource))
                        .then(a.value.total_cmp(&b.value))
                };
                // A log written per timestamp in device order arrives sorted already.
                if !batch.is_sorted_by(|a, b| order(a, b).is_le()) {
                    batch.sort_by(order);
                }
                let mut changes: Vec<Update> = Vec::with_capacity(2 * batch.len());
                let mut index = 0;
                while index < batch.len() {
                    let series = (batch[index].device, batch[index].resource);
                    let (model, published) = models.entry(series).or_insert_with(|| {
                        devices.entry(series.0).or_default().resources |= 1 << series.1 as u8;
                        (SeriesState::new(&config), None)
                    });
                    let before = *published;
                    while index < batch.len()
                        && (batch[index].device, batch[index].resource) == series
                    {
                        model.update(time, batch[index].value);
                        index += 1;
                    }
                    let after = model.publish(&config);
                    // As before the cache: a series whose samples were all ignored
                    // (non-finite) still counts as having published nothing.
                    *published = (!model.is_empty()).then_some(after);
                    if before != Some(after) {
                        // The smaller value first: with the series in order, an epoch's
                        // updates leave sorted, and the consolidations downstream (the
                        // contention operator's, the driver's) find them so.
                        let retract = before.map(|before| (before, -1isize));
                        let mut change = [retract, Some((after, 1isize))];
                        if retract.is_some_and(|(before, _)| after < before) {
                            change.swap(0, 1);
                        }
                        for (forecast, diff) in change.into_iter().flatten() {
                            changes.push(((series, forecast), time, diff));
                        }
                        if with_contention && touched.last() != Some(&series.0) {
                            touched.push(series.0);
                        }
                    }
                }
                // The epoch's changes as one container: pushed one by one into the session,
                // each paid the builder's checks (2% of the changing log).
                if !changes.is_empty() {
                    session.give_container(&mut changes);
                    changes.clear();
                }
                drop(session);
                if let (false, Some(contention_capability)) =
                    (touched.is_empty(), &contention_capability)
                {
                    touched.sort_unstable();
                    touched.dedup();
                    let mut updates: Vec<ContentionUpdate> = Vec::with_capacity(2 * touched.len());
                    for device in touched {
                        let Some(entry) = devices.get_mut(&device) else {
                            continue;
                        };
                        // The device's published forecasts, each series looked up once.
                        let mut present = [None; Resource::ALL.len()];
                        for (slot, resource) in present.iter_mut().zip(Resource::ALL) {
                            if entry.resources & (1 << resource as u8) != 0 {
                                *slot = models
                                    .get(&(device, resource))
                                    .and_then(|(_, published)| *published);
                            }
                        }
                        let present = present.iter().flatten();
                        // As the separate operator: no contention for a device with no forecasts.
                        let current = if present.clone().next().is_some() {
                            Some(contention_over(present, config.risk, config.anomaly))
                        } else {
                            None
                        };
                        if current != entry.published {
                            // The smaller value first, devices in order: the epoch's updates
                            // leave sorted, as the map's consolidation finds them.
                            let retract = entry.published.map(|old| ((device, old), time, -1));
                            let insert = current.map(|new| ((device, new), time, 1));
                            match (retract, insert) {
                                (Some(old), Some(new)) if new.0 .1 < old.0 .1 => {
                                    updates.extend([new, old]);
                                }
                                (retract, insert) => {
                                    updates.extend(retract.into_iter().chain(insert))
                                }
                            }
                            entry.published = current;
                        }
                    }
                    if !updates.is_empty() {
                        contention_handle
                            .session_with_builder(contention_capability)
                            .give_container(&mut updates);
                    }
                }
                if let (true, Some(state_capability)) = (checkpoint, &state_capability) {
                    let mut session = state_handle.session_with_builder(state_capability);
                    for (series, (state, _)) in &models {
                        let state = Box::new(state.clone());
                        session.give(StatePart::Series(*series, state));
                    }
                }
            }
        }
    });
    SeriesOutputs {
        forecasts: forecasts.as_collection(),
        contention: contention.as_collection(),
        state,
    }
}

/// Predicted contention of every device that has reported (see [`contention_of`]), from any
/// forecasts: the separate operator that [`series_forecasts`] with `with_contention` stands in
/// for, and the reference its fused output is tested against.
///
/// The rule of a `reduce` by device over the forecasts, computed by an operator that keeps each
/// device's current forecasts in a map: a reduce replays a key's history at every time it
/// changes, and every sample changes a forecast, while here an epoch costs one update per
/// changed forecast and one [`contention_of`] per device touched.
pub fn device_contention<'scope>(
    forecasts: VecCollection<'scope, Time, ((DeviceId, Resource), SeriesForecast)>,
    config: &ForecastConfig,
) -> VecCollection<'scope, Time, (DeviceId, Ppm)> {
    let (risk, policy) = (config.risk, config.anomaly);
    type In = (((DeviceId, Resource), SeriesForecast), Time, isize);
    type Out = ((DeviceId, Ppm), Time, isize);
    // Per device: each forecast value's count (a handful, one per resource: a list beats a
    // hash), and the contention last published.
    type Device = (Vec<(SeriesForecast, isize)>, Option<Ppm>);
    let mut devices: HashMap<DeviceId, Device, IdHash> = HashMap::default();
    let mut stash = TimeStash::new();
    forecasts
        .inner
        .unary_frontier::<CapacityContainerBuilder<Vec<Out>>, _, _, _>(
            Exchange::new(|update: &In| u64::from(((update.0).0).0)),
            "DeviceContention",
            move |_, _| {
                move |(input, frontier), output| {
                    input.for_each(|capability, data| {
                        // A message's updates mostly share one time: park each run of equal
                        // times at once, one stash lookup per run instead of per update.
                        // One pass: each run's list is looked up once and pushed to.
                        let mut parked: Option<(Time, &mut Vec<_>)> = None;
                        for &(((device, _), forecast), time, diff) in data.iter() {
                            let list = match parked {
                                Some((at, list)) if at == time => list,
                                _ => stash.slot(time, || capability.delayed(&time, 0)),
                            };
                            list.push((device, forecast, diff));
                            parked = Some((time, list));
                        }
                        data.clear();
                    });
                    for (capability, mut updates) in stash.drain_complete(&[frontier]) {
                        let time = *capability.time();
                        // Devices in order, so the output does not depend on arrival order (the
                        // series operator on one worker sends them in order already).
                        if !updates.is_sorted_by_key(|(device, _, _)| *device) {
                            updates.sort_by_key(|(device, _, _)| *device);
                        }
                        let mut session = output.session(&capability);
                        let mut index = 0;
                        while index < updates.len() {
                            let device = updates[index].0;
                            let (counts, published) = devices.entry(device).or_default();
                            while index < updates.len() && updates[index].0 == device {
                                let (_, forecast, diff) = updates[index];
                                match counts.iter().position(|(held, _)| *held == forecast) {
                                    Some(at) => {
                                        counts[at].1 += diff;
                                        if counts[at].1 == 0 {
                                            counts.swap_remove(at);
                                        }
                                    }
                                    None if diff != 0 => counts.push((forecast, diff)),
                                    None => {}
                                }
                                index += 1;
                            }
                            // As the reduce: no output for a device with no forecasts, and
                            // only forecasts present (a positive count) are looked at.
                            let current = (!counts.is_empty()).then(|| {
                                let present = counts
                                    .iter()
                                    .filter(|(_, count)| *count > 0)
                                    .map(|(forecast, _)| forecast);
                                contention_over(present, risk, policy)
                            });
                            if current != *published {
                                // The smaller value first: an epoch's updates then leave sorted
                                // (devices in order), and the map's consolidation finds them so.
                                let mut change = [
                                    published.map(|old| ((device, old), time, -1)),
                                    current.map(|new| ((device, new), time, 1)),
                                ];
                                if let [Some(old), Some(new)] = &change {
                                    if new.0 .1 < old.0 .1 {
                                        change.swap(0, 1);
                                    }
                                }
                                for update in change.into_iter().flatten() {
                                    session.give(update);
                                }
                                *published = current;
                            }
                            if counts.is_empty() {
                                devices.remove(&device);
                            }
                        }
                    }
                }
            },
        )
        .as_collection()
}

/// The latest observed utilisation of every reporting device: the busiest resource's last
/// sample, no forecast and no anomaly handling (what the `reactive` policy sees).
pub fn device_observed<'scope>(
    forecasts: VecCollection<'scope, Time, ((DeviceId, Resource), SeriesForecast)>,
) -> VecCollection<'scope, Time, (DeviceId, Ppm)> {
    forecasts
        .map(|((device, _resource), forecast)| (device, forecast.latest))
        .reduce(|_device, latest, output| {
            let busiest = latest
                .iter()
                .filter(|(_, count)| *count > 0)
                .map(|(value, _)| **value)
                .max()
                .unwrap_or(0);
            output.push((busiest, 1));
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forecast(predicted: Ppm, sigma: Ppm, anomaly: Ppm) -> SeriesForecast {
        SeriesForecast {
            latest: predicted,
            predicted,
            sigma,
            anomaly,
        }
    }

    /// A working-hours load sampled each minute: 0.8 from 09:00 to 17:00, else 0.1.
    fn office_hours(minute: i64) -> f64 {
        if (9 * 60..17 * 60).contains(&(minute % 1440)) {
            0.8
        } else {
            0.1
        }
    }

    #[test]
    fn a_configured_interval_lets_a_daily_season_be_seen_at_one_minute_steps() {
        // Four days at one-minute steps, then the forecast at 08:00 of the fifth for the two
        // hours ahead (half of them working hours). Estimating the step, a series keeps
        // 1,008 values (17 hours), which cannot hold a day; told the step, it keeps three days
        // and Holt-Winters finds the daily cycle.
        let forecast_at_eight = |interval_ms: Option<f64>| {
            let config = ForecastConfig {
                model: ModelConfig {
                    interval_ms,
                    ..ModelConfig::new(crate::models::ModelKind::HoltWinters)
                },
                horizon_ms: 2 * 3_600_000,
                ..ForecastConfig::default()
            };
            let mut series = SeriesState::new(&config);
            for minute in 0..4 * 1440 + 8 * 60 {
                series.update(minute * 60_000, office_hours(minute));
            }
            series.forecast(&config).predicted as f64 / 1e6
        };
        let told = forecast_at_eight(Some(60_000.0));
        let estimated = forecast_at_eight(None);
        // The truth over 08:00-10:00 is 0.1 for one hour and 0.8 for the next: 0.45.
        assert!((told - 0.45).abs() < 0.1, "told the step: {told}");
        assert!(estimated < 0.2, "estimating the step: {estimated}");
    }

    /// A seeded uniform stream in [-0.5, 0.5) (an LCG), so tests need no RNG crate.
    fn uniform(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        }
    }

    #[test]
    fn millisecond_samples_are_forecast_and_scored_in_coarse_steps() {
        // Four minutes of 1-ms samples of a noisy 30% load (Gaussian), then a jump to 80% for
        // five seconds (the scorer's warm-up is 288 steps: 171 s of buckets). Per sample, the
        // default 10-minute horizon was 600,000 steps over a window of one second, every
        // model's sigma several times the capacity, and the scorer (about one false alarm in
        // 2,000 steps of noise, whatever their length) alarmed every few seconds. In 0.6-s buckets the spread is the load's, the quiet
        // stretch raises an alarm or two at most, and the jump one of its own. (A 7.2-s
        // horizon keeps the buckets at 0.6 s, those of the window's old rule, horizon / 1,008
        // of 10 minutes; under the default 10 minutes they are 50 s.)
        let config = ForecastConfig {
            horizon_ms: 7_200,
            ..ForecastConfig::default()
        };
        let mut uniform = uniform(0x9e37_79b9_7f4a_7c15);
        // Twelve uniforms: near enough Gaussian, with unit variance.
        let mut noise = move || (0..12).map(|_| uniform()).sum::<f64>();
        let mut series = SeriesState::new(&config);
        let mut per_sample = AnomalyScorer::new(AnomalyParams::default());
        let (mut alarms, mut per_sample_alarms) = (0, 0);
        let start: Time = 1_704_067_200_000;
        for ms in 0..240_000 {
            let value = 0.3 + 0.02 * noise();
            let before = series.alarm;
            series.update(start + ms, value);
            alarms += usize::from(series.alarm != before);
            per_sample_alarms += usize::from(per_sample.update(start + ms, value) >= THRESHOLD);
        }
        let quiet = series.forecast(&config);
        assert!((quiet.predicted - 300_000).abs() <= 10_000, "{quiet:?}");
        assert!(quiet.sigma <= 20_000, "{quiet:?}");
        // Per step, the rate is the scorer's on any series: a false alarm or so in a thousand
        // steps; per sample it was a hundred or more in these four minutes.
        assert!(alarms <= 2, "{alarms} alarms in steps");
        assert!(
            per_sample_alarms >= 50,
            "{per_sample_alarms} alarms per sample"
        );
        for ms in 240_000..245_000 {
            series.update(start + ms, 0.8 + 0.02 * noise());
        }
        // The alarm is stamped with its bucket's start, which may fall just before the jump.
        let (alarmed_at, _) = series.alarm.expect("the jump raised an alarm");
        assert!(
            alarmed_at > start + 240_000 - 600,
            "the jump raised no alarm of its own"
        );
        let jumped = series.forecast(&config);
        assert!(jumped.anomaly >= to_ppm(THRESHOLD), "{jumped:?}");
        assert!(jumped.predicted > quiet.predicted, "{jumped:?}");
    }

    #[test]
    fn a_fine_series_whose_sampling_slows_at_once_is_not_an_anomaly() {
        // 10-ms samples of a quiet load, then the collector slows to 200 ms: the 0.6-s buckets
        // hold 3 samples instead of 60, and their means are four times as noisy. The scorer had
        // learnt the quieter means, and every such series was flagged within seconds and
        // stayed so (a tester saw 20 of 20 a hundred seconds on). The rate change is learnt
        // and the scorer starts again on the new steps. (A 7.2-s horizon makes the buckets
        // 0.6 s.)
        let config = ForecastConfig {
            model: ModelConfig::new(crate::models::ModelKind::Ewma),
            horizon_ms: 7_200,
            ..ForecastConfig::default()
        };
        let start: Time = 1_704_067_200_000;
        let mut flagged = 0;
        for seed in 1..=6_u64 {
            let mut uniform = uniform(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut noise = move || (0..12).map(|_| uniform()).sum::<f64>();
            let mut series = SeriesState::new(&config);
            for k in 0..24_000 {
                series.update(start + 10 * k, 0.4 + 0.03 * noise());
            }
            let slowed = start + 240_000;
            // The first sixteen slow gaps (3.2 s) are not yet a rate, and their noisier
            // means may alarm the scorer; from the sixteenth on, the device is not suspect.
            let mut alarmed = false;
            for k in 0..500 {
                series.update(slowed + 200 * k, 0.4 + 0.03 * noise());
                let anomaly = series.forecast(&config).anomaly;
                alarmed |= k >= 16 && anomaly >= to_ppm(THRESHOLD);
            }
            assert_eq!(series.model.step_ms(), 600.0, "still bucketed");
            flagged += usize::from(alarmed);
        }
        assert_eq!(
            flagged, 0,
            "{flagged} of 6 series flagged after the slow-down"
        );
    }

    #[test]
    fn a_series_whose_collector_alternates_rates_keeps_a_scorer_per_rate_and_alarms() {
        // A collector that samples every 10 s, then every minute, in turns of 40 samples.
        // Each turn is a rate learnt anew, and the scorer used to start again at each: it
        // never left its 288-sample warm-up, so the device could not alarm at all. The scorer
        // of each rate is now put aside and taken back with its model.
        let config = ForecastConfig {
            model: ModelConfig::new(crate::models::ModelKind::Ewma),
            ..ForecastConfig::default()
        };
        let mut uniform = uniform(0x5eed);
        let mut noise = move || (0..12).map(|_| uniform()).sum::<f64>();
        let mut series = SeriesState::new(&config);
        let mut time: Time = 1_704_067_200_000;
        let mut quiet_alarms = 0;
        for turn in 0..40 {
            let gap = if turn % 2 == 0 { 10_000 } else { 60_000 };
            for _ in 0..40 {
                time += gap;
                series.update(time, 0.4 + 0.01 * noise());
                let anomaly = series.forecast(&config).anomaly;
                quiet_alarms += usize::from(anomaly >= to_ppm(THRESHOLD));
            }
        }
        let seen = series.model.model().len();
        assert!(
            seen > 200,
            "the 10-s model has {seen} steps: restarted, not taken back"
        );
        // Into a 10-s turn (taken back after 4 gaps), the load jumps.
        for k in 0..12 {
            time += 10_000;
            let value = if k < 6 { 0.4 } else { 0.8 };
            series.update(time, value + 0.01 * noise());
        }
        let jumped = series.forecast(&config);
        assert!(jumped.anomaly >= to_ppm(THRESHOLD), "{jumped:?}");
        assert!(quiet_alarms <= 2, "{quiet_alarms} alarms on a quiet load");
    }

    #[test]
    fn a_jump_during_the_other_rates_turn_alarms_once_not_again_when_the_rate_returns() {
        // The load jumps during a minute turn: the minute's scorer alarms then. When 10-s
        // samples return an hour later, the 10-s scorer taken back used to measure them
        // against its baseline from before the jump and alarmed again.
        let config = ForecastConfig {
            model: ModelConfig::new(crate::models::ModelKind::Ewma),
            ..ForecastConfig::default()
        };
        let mut uniform = uniform(0x0dd5);
        let mut noise = move || (0..12).map(|_| uniform()).sum::<f64>();
        let mut series = SeriesState::new(&config);
        let mut time: Time = 1_704_067_200_000;
        let mut sample = |series: &mut SeriesState, gap: Time, level: f64| {
            time += gap;
            series.update(time, level + 0.01 * noise());
            series.forecast(&config).anomaly >= to_ppm(THRESHOLD)
        };
        for turn in 0..20 {
            let gap = if turn % 2 == 0 { 10_000 } else { 60_000 };
            for _ in 0..40 {
                sample(&mut series, gap, 0.4);
            }
        }
        // A minute turn (its model and scorer taken back after 4 gaps), the jump 10 minutes
        // in, then an hour of it.
        let mut alarmed_at_jump = false;
        for k in 0..80 {
            let level = if k < 10 { 0.4 } else { 0.8 };
            let alarm = sample(&mut series, 60_000, level);
            alarmed_at_jump |= (10..14).contains(&k) && alarm;
        }
        assert!(alarmed_at_jump, "the jump alarms when it happens");
        let mut again = 0;
        for _ in 0..40 {
            again += usize::from(sample(&mut series, 10_000, 0.8));
        }
        assert_eq!(
            again, 0,
            "alarms when the 10-s rate returned, an hour after the jump"
        );
    }

    #[test]
    fn an_alarm_is_held_for_the_horizon_or_twelve_steps_whichever_is_shorter() {
        // A level that jumps once, sampled every second under a 30-s horizon and every five
        // minutes under 10 minutes: the alarm at the jump is held 12 steps (12 s) at 1-s
        // samples, where the horizon is 30 (a 10-minute one was 600, before such samples
        // became bucket means, and the scorer's false alarms, about one in 2,000 steps, kept
        // a quiet series in alarm a quarter of the time), and the horizon (two steps) at 5
        // minutes.
        for (step, horizon_ms) in [(1_000, 30_000), (300_000, 600_000)] {
            let config = ForecastConfig {
                horizon_ms,
                ..ForecastConfig::default()
            };
            let mut series = SeriesState::new(&config);
            let mut noise = uniform(0x2545_f491_4f6c_dd1d);
            for k in 0..600 {
                series.update(k * step, 0.3 + 0.02 * noise());
            }
            let mut held = Vec::new();
            for k in 600..640 {
                series.update(k * step, 0.8 + 0.02 * noise());
                held.push(series.forecast(&config).anomaly >= to_ppm(THRESHOLD));
            }
            let (at, _) = series.alarm.expect("the jump raised an alarm");
            assert_eq!(at, 600 * step, "step {step}");
            let expected: Vec<bool> = (0..40)
                .map(|k| k * step < config.horizon_ms.min(12 * step))
                .collect();
            assert_eq!(held, expected, "step {step}");
        }
    }

    #[test]
    fn quantising_by_the_default_quantum_is_the_general_rule() {
        let general = |ppm: Ppm, quantum: Ppm| {
            (ppm.saturating_add(quantum / 2))
                .div_euclid(quantum)
                .saturating_mul(quantum)
        };
        let mut cases = vec![
            0, 1, 499, 500, 501, 999, 1_000, 1_500, -1, -499, -500, -501, -1_500,
        ];
        cases.extend([
            i64::MAX,
            i64::MAX - 499,
            i64::MAX - 500,
            i64::MIN,
            i64::MIN + 1,
        ]);
        let mut state: u64 = 3;
        for _ in 0..100_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            cases.push((state as i64) >> (state % 50));
        }
        for ppm in cases {
            assert_eq!(quantise(ppm, 1_000), general(ppm, 1_000), "{ppm}");
            assert_eq!(quantise(ppm, 7), general(ppm, 7), "{ppm}");
        }
    }

    #[test]
    fn contention_is_the_riskiest_resource() {
        let series = [forecast(300_000, 100_000, 0), forecast(350_000, 0, 0)];
        assert_eq!(contention_of(&series, 1.0, AnomalyPolicy::Ignore), 400_000);
        assert_eq!(contention_of(&series, 0.0, AnomalyPolicy::Ignore), 350_000);
        assert_eq!(contention_of(&[], 1.0, AnomalyPolicy::Exclude), 0);
    }

    #[test]
    fn anomalous_device_is_penalised_excluded_or_ignored() {
        let series = [forecast(200_000, 0, 0), forecast(100_000, 0, 600_000)];
        assert_eq!(contention_of(&series, 1.0, AnomalyPolicy::Ignore), 200_000);
        assert_eq!(
            contention_of(&series, 1.0, AnomalyPolicy::Penalise(0.5)),
            700_000
        );
        assert_eq!(
            contention_of(&series, 1.0, AnomalyPolicy::Exclude),
            200_000 + EXCLUDED_PPM
        );
        let calm = [forecast(200_000, 0, 499_000)];
        assert_eq!(
            contention_of(&calm, 1.0, AnomalyPolicy::Exclude),
            200_000,
            "below the 0.5 threshold nothing changes"
        );
    }

    #[test]
    fn series_state_scores_a_spike_as_anomalous() {
        let config = ForecastConfig::default();
        let mut series = SeriesState::new(&config);
        let minute = 60_000;
        for step in 0..600 {
            series.update(step * minute, 0.2 + 0.01 * ((step % 7) as f64));
        }
        assert!(series.forecast(&config).anomaly < 500_000);
        series.update(600 * minute, 0.95);
        assert!(series.forecast(&config).anomaly >= 500_000);
        // The jump persists: the scorer stays quiet after its alarm, but placement keeps the
        // device suspect for the horizon (10 minutes), then lets it go.
        series.update(601 * minute, 0.95);
        series.update(602 * minute, 0.95);
        assert!(series.forecast(&config).anomaly >= 500_000);
        for step in 603..640 {
            series.update(step * minute, 0.95);
        }
        assert!(series.forecast(&config).anomaly < 500_000);
    }
}

#[cfg(test)]
mod fused_contention_tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use differential_dataflow::Collection;
    use timely::dataflow::operators::{Input, Inspect, Probe};
    use timely::dataflow::{InputHandleVec, ProbeHandle};

    use super::*;

    /// A seeded stream of epochs of samples: a few devices, each reporting some of its
    /// resources, some epochs twice for a series, some devices silent for a while.
    fn seeded_samples(seed: u64, epochs: usize) -> Vec<(Time, Vec<Sample>)> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        let mut stream = Vec::new();
        let mut time: Time = 0;
        for _ in 0..epochs {
            time += 1 + next(90_000) as Time;
            let mut samples = Vec::new();
            for _ in 0..next(12) {
                let spike = next(40) == 0;
                samples.push(Sample {
                    device: next(7) as DeviceId,
                    resource: Resource::ALL[next(4) as usize],
                    value: if spike {
                        1.5
                    } else {
                        next(1_000) as f64 / 1_000.0
                    },
                });
            }
            stream.push((time, samples));
        }
        stream
    }

    /// Runs the series operator with its contention on and, beside it, the separate operator
    /// over its forecasts; returns the updates by which the two differ, and how many
    /// contention updates the series operator made.
    fn differences(seed: u64, workers: usize, config: ForecastConfig) -> (usize, usize) {
        let stream = seeded_samples(seed, 300);
        let outcome = timely::execute(timely::Config::process(workers), move |worker| {
            let mut samples = InputHandleVec::new();
            let mut control = InputHandleVec::new();
            let probe = ProbeHandle::new();
            let differences = Rc::new(RefCell::new(0usize));
            let published = Rc::new(RefCell::new(0usize));
            worker.dataflow::<Time, _, _>(|scope| {
                let outputs = series_forecasts(
                    scope.input_from(&mut samples),
                    scope.input_from(&mut control),
                    config,
                    true,
                );
                let separate = device_contention(outputs.forecasts.clone(), &config);
                let counted = Rc::clone(&published);
                let fused: Collection<_, _> = outputs
                    .contention
                    .inner
                    .inspect(move |_| *counted.borrow_mut() += 1)
                    .as_collection();
                let seen = Rc::clone(&differences);
                fused
                    .negate()
                    .concat(separate)
                    .consolidate()
                    .inner
                    .inspect(move |_| *seen.borrow_mut() += 1)
                    .probe_with(&probe);
            });
            if worker.index() == 0 {
                for (time, batch) in &stream {
                    samples.advance_to(*time);
                    control.advance_to(*time);
                    for sample in batch {
                        samples.send(*sample);
                    }
                }
            }
            drop((samples, control));
            while worker.step() {}
            let counts = (*differences.borrow(), *published.borrow());
            counts
        })
        .expect("the dataflow runs");
        outcome
            .join()
            .into_iter()
            .map(|result| result.expect("a worker ends"))
            .fold((0, 0), |(d, p), (dw, pw)| (d + dw, p + pw))
    }

    #[test]
    fn fused_contention_is_the_separate_operators_at_1_2_and_3_workers() {
        let policies = [
            AnomalyPolicy::Ignore,
            AnomalyPolicy::Penalise(0.2),
            AnomalyPolicy::Exclude,
        ];
        for seed in 1..=4 {
            for workers in [1, 2, 3] {
                let config = ForecastConfig {
                    risk: [0.0, 1.0, 2.0, 0.5][seed as usize - 1],
                    anomaly: policies[seed as usize % 3],
                    ..ForecastConfig::default()
                };
                let (differences, published) = differences(seed, workers, config);
                assert_eq!(differences, 0, "seed {seed}, {workers} workers");
                assert!(
                    published > 300,
                    "seed {seed}: only {published} contention updates"
                );
            }
        }
    }
}
