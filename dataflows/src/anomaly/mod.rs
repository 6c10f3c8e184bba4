//! Streaming anomaly scores for utilisation series, in event time, in O(1) per sample.
//!
//! Three detectors read the residual of a fast exponentially weighted baseline, and the score
//! is the largest of theirs:
//!
//! - **Likelihood of a burst.** Each residual, divided by a running mean absolute residual and
//!   capped, is a bounded *raw surprise* in [0, 1]. A short average of it is compared with its
//!   own long-run mean and spread (the idea of HTM's anomaly likelihood): a series that is always
//!   spiky has a high long-run mean, so only an unusual concentration of surprise counts. A level
//!   shift, a change of variance and a cluster of spikes all raise the short average.
//! - **Record magnitude.** A residual well beyond the largest of the recent past (a maximum
//!   that decays with a half-life of days) is new, even when a series' noise is heavy-tailed.
//!   A spike that recurs at the same height (a nightly job) stops alarming after its first day.
//! - **Absence of bursts** ([`absence`]). A series that bursts in a rhythm (a batch job every few
//!   hours) can fail by falling silent, which leaves no residual: a silence between bursts a
//!   quarter longer than the longest on record alarms, once.
//!
//! Residuals are measured against what the time of day usually does ([`daily`]): a residual as
//! large as the largest one seen at about this time on recent days counts as ordinary noise, so
//! a nightly job's spike, which HTM learns as a sequence, stops alarming once it has recurred,
//! while the same spike at another hour still alarms.
//!
//! The likelihood becomes a score through its Gaussian upper-tail probability on a log scale,
//! `−log10 p / (2 L)`, so the decision threshold [`THRESHOLD`] (0.5) sits at `p = 10^−L`; the
//! record detector reaches 0.5 when a residual is `record_ratio` times the recent maximum, the
//! absence detector when a silence is `absence_ratio` times the longest on record. These knobs
//! are one fixed calibration for every series, chosen on NAB's AWS CloudWatch and known-cause
//! CPU series, not per series.
//!
//! Alarms are what the scores are for, so the scorer also shapes them: nothing alarms during a
//! warm-up while the statistics settle, and after an alarm the score is held just below the
//! threshold for a refractory period, because an operator (and NAB) gains from the first alarm of
//! an episode and pays for every repeat.
//!
//! Samples may be irregular: every smoothing weight is per *nominal step*, the running mean of
//! the gaps between samples, and a gap of `g` steps applies it `g` times. After a gap longer
//! than `max_gap_steps` the baseline restarts at the new value and that sample scores 0: a
//! silence of hours says nothing about whether the next value is surprising.
//!
//! ```
//! use augur_dataflows::anomaly::{AnomalyParams, AnomalyScorer, THRESHOLD};
//!
//! let mut scorer = AnomalyScorer::new(AnomalyParams::default());
//! let minute = 60_000;
//! let mut alarms = 0;
//! for i in 0..2000_i64 {
//!     let value = if i == 1500 { 90.0 } else { 10.0 + (i % 7) as f64 * 0.1 };
//!     if scorer.update(i * 5 * minute, value) >= THRESHOLD {
//!         alarms += 1;
//!     }
//! }
//! assert_eq!(alarms, 1);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::Time;

pub mod absence;
pub mod daily;

use absence::Absence;
use daily::DailyProfile;

/// The score at or above which a sample is an alarm.
pub const THRESHOLD: f64 = 0.5;

/// Where a suppressed score is held: just below [`THRESHOLD`], so that it still reads as "high"
/// to a person looking at the series but never counts as a new alarm.
const SUPPRESSED_CEILING: f64 = 0.49;

/// Knobs of [`AnomalyScorer`]. Weights are per nominal step (the running mean sampling gap).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnomalyParams {
    /// Weight of a new sample in the baseline the residuals are taken from. Fast, so that the
    /// baseline follows a shift within a few steps and the shift shows up as a burst.
    pub baseline_alpha: f64,
    /// Weight of a new absolute residual in the running scale.
    pub scale_alpha: f64,
    /// Residuals are capped at this many scales, in the raw surprise and in the baseline and
    /// scale updates, so one outlier can neither blow the scale up nor drag the baseline.
    pub cap: f64,
    /// Weight of a new raw surprise in its short average.
    pub short_alpha: f64,
    /// Weight of a new raw surprise in its long-run mean and variance.
    pub long_alpha: f64,
    /// The spread of the raw surprise is at least this, so a perfectly regular series does not
    /// turn a tiny change into certainty.
    pub spread_floor: f64,
    /// `L`: the likelihood score is 0.5 at a tail probability of `10^−L`.
    pub decision_level: f64,
    /// The record detector scores 0.5 at this multiple of the recent maximum residual.
    pub record_ratio: f64,
    /// Half-life of the recent maximum residual, in steps.
    pub record_half_life: f64,
    /// The recent maximum is at least this many scales, so a quiet spell does not make the
    /// ordinary noise a record.
    pub record_floor: f64,
    /// The scale is at least this fraction of the baseline's magnitude.
    pub relative_floor: f64,
    /// And at least this, in the series' unit: a constant series has no other scale.
    pub absolute_floor: f64,
    /// Samples seen before any alarm.
    pub warmup_samples: u32,
    /// Steps after an alarm during which the score stays below the threshold.
    pub refractory_steps: f64,
    /// A gap longer than this many steps restarts the baseline.
    pub max_gap_steps: f64,
    /// Half-life, in days, of what each time of day did on earlier days ([`daily`]); 0 turns
    /// the daily profile off.
    pub daily_half_life_days: f64,
    /// The daily profile is read this many quarter-hour bins either side of a sample's time of
    /// day, because a scheduled job drifts by minutes from day to day.
    pub daily_reach_bins: u32,
    /// A residual of at least this many scales is a burst, for the rhythm of [`absence`]. As
    /// many as `cap`: `record_floor` scales are still the ordinary noise maximum, and a noise
    /// peak taken for a burst would give a quiet series a rhythm to lose.
    /// (Absent from a checkpoint taken before the absence detector: 0, with the detector off.)
    #[serde(default)]
    pub burst_scales: f64,
    /// Bursts closer than this many steps are one episode, not a silence between two.
    #[serde(default)]
    pub burst_episode_steps: f64,
    /// A silence between bursts scores 0.5 at this multiple of the longest on record; 1 or
    /// less turns the absence detector off.
    #[serde(default)]
    pub absence_ratio: f64,
    /// Half-life, in steps, of the longest silence on record; not positive: it never fades.
    #[serde(default)]
    pub absence_half_life: f64,
    /// Silences measured before a silence may alarm.
    #[serde(default)]
    pub absence_min_silences: u32,
}

impl Default for AnomalyParams {
    /// The calibration chosen on NAB's development series (at 5-minute samples, the warm-up is
    /// one day and the refractory period half a day).
    fn default() -> Self {
        AnomalyParams {
            baseline_alpha: 0.1,
            scale_alpha: 0.003,
            cap: 10.0,
            short_alpha: 0.2,
            long_alpha: 0.001,
            spread_floor: 0.01,
            decision_level: 4.0,
            record_ratio: 1.5,
            record_half_life: 1000.0,
            record_floor: 4.0,
            relative_floor: 0.001,
            absolute_floor: 1e-9,
            warmup_samples: 288,
            refractory_steps: 144.0,
            max_gap_steps: 48.0,
            daily_half_life_days: 3.0,
            daily_reach_bins: 2,
            burst_scales: 10.0,
            burst_episode_steps: 12.0,
            absence_ratio: 1.25,
            absence_half_life: 0.0,
            absence_min_silences: 4,
        }
    }
}

/// The anomaly state of one series. Feed samples in non-decreasing time order; a sample
/// earlier than the previous one is scored as if at the previous one's time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnomalyScorer {
    params: AnomalyParams,
    samples: u64,
    /// Residuals seen: until there are `1 / alpha` of them, running statistics weigh them
    /// equally, so that they are unbiased when the warm-up ends rather than pulled to zero.
    residuals: u64,
    last_time: Option<Time>,
    /// Mean gap between samples (milliseconds); 0 until a positive gap is seen.
    step_ms: f64,
    baseline: f64,
    /// Running mean absolute residual; `None` until the first residual.
    scale: Option<f64>,
    short: f64,
    long_mean: f64,
    long_var: f64,
    recent_max: f64,
    /// Steps left in the refractory period.
    refractory: f64,
    daily: DailyProfile,
    #[serde(default)]
    absence: Absence,
    latest: f64,
    /// The per-step weights at the last gap seen (not state: recomputed when absent).
    #[serde(skip)]
    weights: WeightCache,
}

/// The smoothing weights of one gap, in steps: every sample of a regularly sampled series has
/// the same gap, so its five powers are computed once instead of per sample.
#[derive(Clone, Copy, Debug)]
struct StepWeights {
    baseline: f64,
    scale: f64,
    short: f64,
    long: f64,
    record_decay: f64,
    /// The decay of the longest silence on record over the gap.
    absence_decay: f64,
    /// `sqrt(short / (2 − short))`: the spread of an exponential average of `short`.
    short_spread: f64,
}

/// [`StepWeights`] for the last `steps` seen.
#[derive(Clone, Copy, Debug, Default)]
struct WeightCache {
    last: Option<(u64, StepWeights)>,
}

impl WeightCache {
    fn at(&mut self, p: &AnomalyParams, steps: f64) -> StepWeights {
        match self.last {
            Some((bits, weights)) if bits == steps.to_bits() => weights,
            _ => {
                let short = weight(p.short_alpha, steps);
                let weights = StepWeights {
                    baseline: weight(p.baseline_alpha, steps),
                    scale: weight(p.scale_alpha, steps),
                    short,
                    long: weight(p.long_alpha, steps),
                    record_decay: 0.5_f64.powf(steps / p.record_half_life),
                    absence_decay: if p.absence_half_life > 0.0 {
                        0.5_f64.powf(steps / p.absence_half_life)
                    } else {
                        1.0
                    },
                    short_spread: {
                        // The spread of the short average over its draws: what it is at one
                        // step or more. A sample a fraction of a step after the last (a retry
                        // 2 s after a 60-s sample) barely moves the average, and scaling its
                        // settled deviation by a fraction-of-a-step spread made it 5 sigma: a
                        // lone duplicate alarmed.
                        let settled = weight(p.short_alpha, steps.max(1.0));
                        (settled / (2.0 - settled)).sqrt()
                    },
                };
                self.last = Some((steps.to_bits(), weights));
                weights
            }
        }
    }
}

/// A cache is no part of a scorer's value.
impl PartialEq for WeightCache {
    fn eq(&self, _other: &WeightCache) -> bool {
        true
    }
}

impl AnomalyScorer {
    /// A scorer that has seen nothing.
    pub fn new(params: AnomalyParams) -> AnomalyScorer {
        AnomalyScorer {
            params,
            samples: 0,
            residuals: 0,
            last_time: None,
            step_ms: 0.0,
            baseline: 0.0,
            scale: None,
            short: 0.0,
            long_mean: 0.0,
            long_var: 0.0,
            recent_max: 0.0,
            refractory: 0.0,
            daily: DailyProfile::new(),
            absence: Absence::new(),
            latest: 0.0,
            weights: WeightCache::default(),
        }
    }

    /// The score of the latest sample (0 before any).
    pub fn latest(&self) -> f64 {
        self.latest
    }

    /// Takes one sample and returns its anomaly score in [0, 1]; [`THRESHOLD`] and above is an
    /// alarm. A non-finite value is ignored (scores 0, changes nothing).
    pub fn update(&mut self, time_ms: Time, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        // Values are bounded well inside f64 so that squares and differences stay finite.
        let value = value.clamp(-1e150, 1e150);
        let score = self.score(time_ms, value);
        self.latest = score;
        score
    }

    /// Takes one sample as the next after `previous_ms`, whatever the scorer saw last: it was
    /// put aside while the series was sampled at another rate, and is taken back. The time in
    /// between stays out of its step, which a gap of a whole phase would stretch (from which
    /// its own samples read as fractions of a step), and its baseline stands: restarted from
    /// one noisy sample, as after an outage, it raised false alarms at every few returns.
    ///
    /// `level`, where known, is the series' level meanwhile (the baseline of the scorer that
    /// followed the other rate's turn): a change of level during the turn was scored there,
    /// and taken from this scorer's old baseline it alarmed again when the rate returned, an
    /// hour after the jump.
    pub fn rejoin(
        &mut self,
        previous_ms: Time,
        time_ms: Time,
        value: f64,
        level: Option<f64>,
    ) -> f64 {
        if let (Some(level), true) = (level, self.samples > 0) {
            if level.is_finite() {
                self.baseline = level;
            }
        }
        if let Some(last) = &mut self.last_time {
            *last = (*last).max(previous_ms.min(time_ms));
        }
        self.update(time_ms, value)
    }

    /// The level this scorer's residuals are taken from, once it has seen a sample.
    pub fn level(&self) -> Option<f64> {
        (self.samples > 0).then_some(self.baseline)
    }

    fn score(&mut self, time_ms: Time, value: f64) -> f64 {
        let p = self.params;
        self.samples += 1;
        let Some(last) = self.last_time else {
            self.last_time = Some(time_ms);
            self.baseline = value;
            return 0.0;
        };
        let gap = time_ms.saturating_sub(last).max(0) as f64;
        self.last_time = Some(time_ms.max(last));
        if gap > 0.0 {
            self.step_ms = if self.step_ms > 0.0 {
                // Mean gap over the last ~100 gaps; long gaps would drag it, so they count as at
                // most max_gap_steps.
                let bounded = gap.min(self.step_ms * p.max_gap_steps);
                self.step_ms + 0.01 * (bounded - self.step_ms)
            } else {
                gap
            };
        }
        // A second sample at the same instant is one more observation: one step.
        let steps = if gap > 0.0 && self.step_ms > 0.0 {
            gap / self.step_ms
        } else {
            1.0
        };
        self.refractory = (self.refractory - steps).max(0.0);
        if steps > p.max_gap_steps {
            self.baseline = value;
            self.absence.restart();
            return 0.0;
        }

        let residual = value - self.baseline;
        self.residuals += 1;
        let equal_weight = 1.0 / self.residuals as f64;
        let floor = (p.relative_floor * self.baseline.abs()).max(p.absolute_floor);
        let scale = self.scale.unwrap_or(residual.abs()).max(floor);
        let magnitude = residual.abs();
        // A residual as large as the largest this time of day showed on recent days is as
        // surprising as the ordinary noise maximum (`record_floor` scales): a daily job's spike
        // stops standing out once it has recurred.
        let now = time_ms.max(last);
        let reach = p.daily_reach_bins as usize;
        let usual_floor = p.record_floor.max(1.0);
        // Most samples are ordinary at their time of day: when even the undecayed profile is
        // within the scale, `usual` cannot change `surprise_scale`, so its decays are skipped.
        let surprise_scale = if self.daily.bound(now, reach) / usual_floor <= scale {
            scale
        } else {
            let usual = self.daily.expected(now, reach, p.daily_half_life_days);
            scale.max(usual / usual_floor)
        };
        self.daily.record(now, magnitude, p.daily_half_life_days);
        let raw = (magnitude / surprise_scale).min(p.cap) / p.cap;

        let recent_max = self.recent_max.max(p.record_floor * scale).max(floor);
        let record = if p.record_ratio > 1.0 {
            0.5 * (magnitude / recent_max - 1.0) / (p.record_ratio - 1.0)
        } else {
            0.0
        };
        let weights = self.weights.at(&p, steps);
        let absence = self.absence.update(
            now,
            magnitude >= p.burst_scales * scale,
            self.step_ms,
            weights.absence_decay,
            &p,
        );
        self.recent_max = magnitude.max(self.recent_max * weights.record_decay);

        // A lone spike moves the baseline by at most `cap` scales, as it moves the scale: were
        // it to drag the baseline up, the ordinary samples after it would read as a burst of
        // surprise of their own (an echo that outlasts the refractory period's reason).
        let clipped = magnitude.min(p.cap * scale);
        self.baseline += weights.baseline * clipped.copysign(residual);
        self.scale = Some(match self.scale {
            Some(old) => old + weights.scale.max(equal_weight) * (clipped - old),
            None => magnitude,
        });

        let short_w = weights.short;
        self.short += short_w * (raw - self.short);
        // The standard deviation of an exponential average of independent draws.
        let spread = self.long_var.max(0.0).sqrt().max(p.spread_floor) * weights.short_spread;
        let z = (self.short - self.long_mean) / spread;
        let likelihood = log_tail_score(z, p.decision_level);
        let long_w = weights.long.max(equal_weight);
        let d = raw - self.long_mean;
        self.long_mean += long_w * d;
        self.long_var = (1.0 - long_w) * (self.long_var + long_w * d * d);

        let score = clamp01(likelihood.max(record).max(absence));
        if self.samples <= u64::from(p.warmup_samples) {
            0.0
        } else if self.refractory > 0.0 {
            score.min(SUPPRESSED_CEILING)
        } else {
            if score >= THRESHOLD {
                self.refractory = p.refractory_steps;
            }
            if absence >= THRESHOLD {
                self.absence.report();
            }
            score
        }
    }
}

/// A per-step weight applied over `steps` steps: `1 − (1 − alpha)^steps`.
fn weight(alpha: f64, steps: f64) -> f64 {
    let alpha = clamp01(alpha);
    1.0 - (1.0 - alpha).powf(steps.max(0.0))
}

fn clamp01(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// `−log10 Q(z) / (2 L)` in [0, 1], with `Q` the standard normal upper tail; 0 for `z <= 0`.
/// Computed in logs so that very large `z` saturate at 1 instead of underflowing.
fn log_tail_score(z: f64, level: f64) -> f64 {
    if z.is_nan() || z <= 0.0 || level <= 0.0 {
        return 0.0;
    }
    let z = z.min(1e6);
    // ln erfc(x) from the Chebyshev fit of Numerical Recipes (erfcc), relative error < 1.2e-7
    // everywhere, written as a logarithm; Q(z) = erfc(z / √2) / 2.
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let ln_q = t.ln() - x * x + poly - std::f64::consts::LN_2;
    clamp01(-ln_q / std::f64::consts::LN_10 / (2.0 * level))
}

/// The largest finite score, in [0, 1]: a device is as anomalous as its most anomalous
/// resource, because one saturated resource is enough to slow what runs there.
pub fn device_score(scores: impl IntoIterator<Item = f64>) -> f64 {
    scores
        .into_iter()
        .filter(|s| s.is_finite())
        .fold(0.0, f64::max)
        .clamp(0.0, 1.0)
}

/// One [`AnomalyScorer`] per series of a device (keyed by resource, or any name), and the
/// device's score: [`device_score`] over each series' latest score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceAnomaly<K: Ord> {
    params: AnomalyParams,
    series: BTreeMap<K, AnomalyScorer>,
}

impl<K: Ord> DeviceAnomaly<K> {
    /// A device with no series yet.
    pub fn new(params: AnomalyParams) -> Self {
        DeviceAnomaly {
            params,
            series: BTreeMap::new(),
        }
    }

    /// Takes one sample of series `key` and returns the device's score after it.
    pub fn update(&mut self, key: K, time_ms: Time, value: f64) -> f64 {
        let params = self.params;
        self.series
            .entry(key)
            .or_insert_with(|| AnomalyScorer::new(params))
            .update(time_ms, value);
        self.score()
    }

    /// The device's score: the largest latest score of its series (0 with none).
    pub fn score(&self) -> f64 {
        device_score(self.series.values().map(AnomalyScorer::latest))
    }

    /// The latest score of one series.
    pub fn series_score(&self, key: &K) -> Option<f64> {
        self.series.get(key).map(AnomalyScorer::latest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: Time = 300_000;

    fn run(values: &[f64]) -> Vec<f64> {
        let mut scorer = AnomalyScorer::new(AnomalyParams::default());
        values
            .iter()
            .enumerate()
            .map(|(i, v)| scorer.update(i as Time * STEP, *v))
            .collect()
    }

    fn alarms(scores: &[f64]) -> Vec<usize> {
        (0..scores.len())
            .filter(|&i| scores[i] >= THRESHOLD)
            .collect()
    }

    /// A deterministic, mildly noisy series around `level` (a fixed-seed LCG).
    fn noisy(n: usize, level: f64, amplitude: f64) -> Vec<f64> {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
                level + amplitude * (unit - 0.5)
            })
            .collect()
    }

    #[test]
    fn constant_series_never_alarms() {
        for level in [0.0, 1.0, -3.5, 1e12] {
            let scores = run(&vec![level; 3000]);
            assert!(scores.iter().all(|&s| s == 0.0), "level {level}");
        }
    }

    #[test]
    fn slow_trend_with_noise_never_alarms() {
        let values: Vec<f64> = noisy(4000, 20.0, 2.0)
            .iter()
            .enumerate()
            .map(|(i, v)| v + i as f64 * 0.005)
            .collect();
        assert_eq!(alarms(&run(&values)), Vec::<usize>::new());
    }

    #[test]
    fn spike_alarms_at_the_spike() {
        let mut values = noisy(3000, 20.0, 2.0);
        values[2000] = 60.0;
        assert_eq!(alarms(&run(&values)), vec![2000]);
    }

    #[test]
    fn spike_on_a_constant_series_alarms() {
        let mut values = vec![0.0; 3000];
        values[1000] = 5.0;
        assert_eq!(alarms(&run(&values)), vec![1000]);
    }

    #[test]
    fn level_shift_alarms_once_near_its_start() {
        let mut values = noisy(3000, 20.0, 2.0);
        for v in values.iter_mut().skip(2000) {
            *v += 6.0;
        }
        let found = alarms(&run(&values));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!((2000..2010).contains(&found[0]), "{found:?}");
    }

    /// Ten days at 5 minutes with a nightly job: a spike near 03:00 that drifts by up to 15
    /// minutes from day to day.
    fn nightly_job(days: usize) -> Vec<f64> {
        let mut values = noisy(days * 288, 20.0, 2.0);
        for day in 0..days {
            let drift = [0, 2, -1, 3, -3, 1, 0, -2, 2, -1][day % 10];
            let at = (day * 288 + 36) as i64 + drift;
            values[at as usize] = 45.0;
        }
        values
    }

    #[test]
    fn daily_recurring_spike_stops_alarming_after_its_first_days() {
        let values = nightly_job(10);
        let found = alarms(&run(&values));
        // The warm-up day already teaches the pattern here; the second and third nights may
        // still surprise, later ones may not.
        assert!(found.iter().all(|&i| i < 3 * 288), "{found:?}");
    }

    #[test]
    fn spike_at_another_time_of_day_still_alarms_amid_a_nightly_job() {
        let mut values = nightly_job(10);
        values[8 * 288 + 150] = 45.0;
        let found = alarms(&run(&values));
        assert!(found.contains(&(8 * 288 + 150)), "{found:?}");
        assert!(
            found.iter().all(|&i| i < 3 * 288 || i == 8 * 288 + 150),
            "{found:?}"
        );
    }

    #[test]
    fn nightly_spike_keeps_alarming_without_the_daily_profile() {
        // Pins what the daily profile is for: the same series alarms night after night.
        let values = nightly_job(10);
        let mut scorer = AnomalyScorer::new(AnomalyParams {
            daily_half_life_days: 0.0,
            ..AnomalyParams::default()
        });
        let late = (0..values.len())
            .filter(|&i| scorer.update(i as Time * STEP, values[i]) >= THRESHOLD)
            .filter(|&i| i >= 3 * 288)
            .count();
        assert!(late >= 5, "{late}");
    }

    #[test]
    fn level_shift_after_days_of_a_nightly_job_alarms_once() {
        let mut values = nightly_job(10);
        for v in values.iter_mut().skip(6 * 288 + 100) {
            *v += 6.0;
        }
        let found = alarms(&run(&values));
        let late: Vec<usize> = found.into_iter().filter(|&i| i >= 3 * 288).collect();
        assert_eq!(late.len(), 1, "{late:?}");
        assert!(
            (6 * 288 + 100..6 * 288 + 110).contains(&late[0]),
            "{late:?}"
        );
    }

    /// Noise around 20 with a burst to 60 every 36 steps (3 hours) for `bursts` bursts, and
    /// `n` samples in all.
    fn rhythm(bursts: usize, n: usize) -> Vec<f64> {
        let mut values = noisy(n, 20.0, 2.0);
        for k in 0..bursts {
            values[k * 36] = 60.0;
        }
        values
    }

    fn alarms_with(values: &[f64], params: AnomalyParams) -> Vec<usize> {
        let mut scorer = AnomalyScorer::new(params);
        (0..values.len())
            .filter(|&i| scorer.update(i as Time * STEP, values[i]) >= THRESHOLD)
            .collect()
    }

    #[test]
    fn bursts_that_stop_alarm_once_where_the_silence_beats_the_record() {
        // 60 bursts (7.5 days), then quiet: the absence detector adds exactly one alarm, when
        // the silence reaches 1.25 times the 36 steps on record, and changes no other.
        let values = rhythm(60, 60 * 36 + 1000);
        let off = AnomalyParams {
            absence_ratio: 1.0,
            ..AnomalyParams::default()
        };
        let mut expected = alarms_with(&values, off);
        expected.push(59 * 36 + 45);
        expected.sort_unstable();
        assert_eq!(alarms_with(&values, AnomalyParams::default()), expected);
        // While the bursts go on, the absence detector never alarms.
        let going_on = rhythm(80, 80 * 36);
        assert_eq!(
            alarms_with(&going_on, AnomalyParams::default()),
            alarms_with(&going_on, off)
        );
    }

    #[test]
    fn warmup_and_refractory_hold_scores_below_threshold() {
        let mut values = noisy(3000, 20.0, 2.0);
        values[100] = 500.0;
        values[2000] = 500.0;
        values[2010] = 900.0;
        let scores = run(&values);
        assert_eq!(scores[100], 0.0);
        assert_eq!(alarms(&scores), vec![2000]);
        assert!(scores[2010] > 0.0 && scores[2010] < THRESHOLD);
    }

    #[test]
    fn scores_stay_in_unit_interval_on_extremes() {
        let extremes = [
            0.0,
            f64::MAX,
            f64::MIN,
            1e-300,
            -1e300,
            f64::MIN_POSITIVE,
            1e150,
            -0.0,
            f64::NAN,
            f64::INFINITY,
        ];
        let mut scorer = AnomalyScorer::new(AnomalyParams {
            warmup_samples: 0,
            ..AnomalyParams::default()
        });
        let mut t: Time = 0;
        for round in 0..500 {
            let value = extremes[round % extremes.len()];
            let s = scorer.update(t, value);
            assert!((0.0..=1.0).contains(&s), "{value} -> {s}");
            // Irregular, duplicate, backwards and huge gaps.
            t = match round % 4 {
                0 => t,
                1 => t.saturating_sub(STEP),
                2 => t.saturating_add(7 * STEP),
                _ => t.saturating_add(i64::MAX / 4),
            };
        }
        for z in [-1.0, 0.0, 1e-9, 3.0, 40.0, 1e300, f64::INFINITY] {
            assert!((0.0..=1.0).contains(&log_tail_score(z, 4.0)));
        }
    }

    #[test]
    fn tail_score_is_calibrated_at_the_decision_level() {
        // Q(3.719) ≈ 1e-4, so with L = 4 the score is 0.5 there.
        assert!((log_tail_score(3.719, 4.0) - 0.5).abs() < 1e-3);
        assert!((log_tail_score(1.0, 1.0) - (-(0.158_655_25_f64).log10() / 2.0)).abs() < 1e-6);
    }

    #[test]
    fn same_samples_same_scores_and_state_round_trips() {
        let values = noisy(1500, 5.0, 1.0);
        assert_eq!(run(&values), run(&values));
        let mut a = AnomalyScorer::new(AnomalyParams::default());
        for (i, v) in values.iter().enumerate().take(700) {
            a.update(i as Time * STEP, *v);
        }
        let mut b = a.clone();
        for (i, v) in values.iter().enumerate().skip(700) {
            let t = i as Time * STEP;
            assert_eq!(a.update(t, *v).to_bits(), b.update(t, *v).to_bits());
        }
    }

    #[test]
    fn irregular_sampling_with_a_long_gap_does_not_alarm() {
        let values = noisy(2000, 50.0, 4.0);
        let mut scorer = AnomalyScorer::new(AnomalyParams::default());
        let mut t: Time = 0;
        let mut found = Vec::new();
        for (i, v) in values.iter().enumerate() {
            t += if i == 1000 {
                86_400_000
            } else {
                60_000 + (i as Time % 5) * 10_000
            };
            let value = if i >= 1000 { v + 10.0 } else { *v };
            if scorer.update(t, value) >= THRESHOLD {
                found.push(i);
            }
        }
        assert_eq!(found, Vec::<usize>::new());
    }

    #[test]
    fn a_retry_seconds_after_a_sample_is_not_an_anomaly() {
        // A noisy series every 60 s; at twenty places a second reading of it 2 s later (a
        // collector's retry). It is 1/30 of a step: its draw barely moves the short average,
        // and it used to be judged by a 1/30-step spread, so an ordinary deviation of that
        // average read as 5 sigma (a tester: 6 of 20 retries alarmed, none without them).
        let values = noisy(3_000, 0.4, 0.06);
        let retries = noisy(20, 0.4, 0.06);
        let mut scorer = AnomalyScorer::new(AnomalyParams::default());
        let mut alarms = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let t = i as Time * 60_000;
            if scorer.update(t, *v) >= THRESHOLD {
                alarms.push(i);
            }
            if i >= 1_000 && i % 100 == 0 {
                let retry = retries[(i - 1_000) / 100];
                if scorer.update(t + 2_000, retry) >= THRESHOLD {
                    alarms.push(i);
                }
            }
        }
        assert_eq!(alarms, Vec::<usize>::new());
    }

    #[test]
    fn device_score_is_the_most_anomalous_series() {
        assert_eq!(device_score([0.1, f64::NAN, 0.7, 0.3]), 0.7);
        assert_eq!(device_score(std::iter::empty()), 0.0);
        let mut device = DeviceAnomaly::new(AnomalyParams {
            warmup_samples: 0,
            ..AnomalyParams::default()
        });
        for i in 0..400 {
            device.update("memory", i * STEP, 40.0);
            device.update("cpu", i * STEP, if i == 300 { 95.0 } else { 10.0 });
            if i == 300 {
                assert!(device.score() >= THRESHOLD);
                assert_eq!(device.series_score(&"memory"), Some(0.0));
            }
        }
    }
}
