//! Event time onto steps: the wrapper the dataflow runs per series.
//!
//! Real traces are sampled irregularly (Alibaba's machines report every 10 to 60 s, with gaps of
//! hours), but the models work in steps. The sampling interval is estimated from the gaps that
//! look like sampling; a few missing steps are filled by linear interpolation (the models stay
//! aligned with the clock and nothing is extrapolated); longer gaps advance the models' clocks
//! without samples, dropping their trends and keeping the season's phase on time.

use serde::{Deserialize, Serialize};

use super::{round_half_away, EwMean, ModelConfig, SeriesModel};
use crate::types::Time;

/// Missing steps filled by interpolation; beyond this a gap is a gap.
pub const DEFAULT_MAX_FILL: u64 = 12;

/// Memory of the interval estimate, about a thousand gaps. A long mean of consecutive gaps
/// telescopes, so timestamp jitter cancels instead of adding up: the estimate must be good to
/// a fraction of a percent for a gap of hundreds of steps to keep the season's phase.
const INTERVAL_DECAY: f64 = 0.999;

/// A [`SeriesModel`] fed by timestamped samples, forecasting by milliseconds ahead.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TimedModel {
    model: SeriesModel,
    last_time: Option<Time>,
    last_value: f64,
    /// Estimated sampling interval in milliseconds; 0 until a positive gap has been seen.
    interval_ms: f64,
    /// The regular gaps behind `interval_ms`.
    gaps: EwMean,
    fixed_interval: bool,
    max_fill: u64,
    /// The interval the model was last told (0: never), so that it is told again only when the
    /// estimate moves by more than [`RETELL`].
    #[serde(default)]
    told_interval_ms: f64,
}

/// Relative change of the interval estimate that is passed on to the model (its seasons in
/// steps): jitter in the estimate is far below it.
const RETELL: f64 = 0.01;

impl TimedModel {
    /// A model that estimates the sampling interval from the samples.
    pub fn new(config: &ModelConfig) -> TimedModel {
        TimedModel {
            model: SeriesModel::new(config),
            last_time: None,
            last_value: 0.0,
            interval_ms: 0.0,
            gaps: EwMean::default(),
            fixed_interval: false,
            max_fill: DEFAULT_MAX_FILL,
            told_interval_ms: 0.0,
        }
    }

    /// A model whose step is `interval_ms` (when the trace's period is known; at least 1 ms).
    pub fn with_interval(config: &ModelConfig, interval_ms: Time) -> TimedModel {
        let interval_ms = interval_ms.max(1) as f64;
        TimedModel {
            interval_ms,
            fixed_interval: true,
            told_interval_ms: interval_ms,
            ..TimedModel::new(&ModelConfig {
                interval_ms: Some(interval_ms),
                ..*config
            })
        }
    }

    /// The same, filling gaps of up to `max_fill` missing steps by interpolation.
    pub fn with_max_fill(mut self, max_fill: u64) -> TimedModel {
        self.max_fill = max_fill;
        self
    }

    /// Takes one sample. Times should not decrease; a sample at or before the previous one's
    /// time counts as the next step. Non-finite values are ignored.
    pub fn update(&mut self, time: Time, value: f64) {
        if !value.is_finite() {
            return;
        }
        let Some(last) = self.last_time else {
            self.model.update(value);
            self.last_time = Some(time);
            self.last_value = value;
            return;
        };
        let gap = time.saturating_sub(last);
        if gap > 0 {
            self.learn_interval(gap as f64);
        }
        let steps = self.steps_in(gap);
        if steps > 1 && steps - 1 <= self.max_fill {
            let from = self.last_value;
            for k in 1..steps {
                self.model
                    .update(from + (value - from) * k as f64 / steps as f64);
            }
        } else if steps > 1 {
            self.model.gap(steps - 1);
        }
        self.model.update(value);
        self.last_time = Some(time.max(last));
        self.last_value = value;
    }

    fn learn_interval(&mut self, gap: f64) {
        if self.fixed_interval {
            return;
        }
        let interval = self.interval_ms;
        if interval == 0.0 || gap < 0.25 * interval {
            // The first gap, or sampling turned out finer than thought (the first gap was a gap).
            self.gaps = EwMean::default();
        } else if gap > 2.0 * interval {
            return;
        }
        self.gaps.add(gap, INTERVAL_DECAY);
        self.interval_ms = self.gaps.get().unwrap_or(gap);
        if (self.interval_ms - self.told_interval_ms).abs() > RETELL * self.interval_ms {
            self.model.set_interval_ms(self.interval_ms);
            self.told_interval_ms = self.interval_ms;
        }
    }

    /// Whole steps in `ms` milliseconds, at least 1.
    fn steps_in(&self, ms: Time) -> u64 {
        if self.interval_ms <= 0.0 || ms <= 0 {
            return 1;
        }
        let steps = round_half_away(ms as f64 / self.interval_ms);
        if steps >= u64::MAX as f64 {
            u64::MAX
        } else {
            (steps as u64).max(1)
        }
    }

    /// The horizon in steps that `ahead_ms` milliseconds after the newest sample is (at least
    /// 1; 1 while the interval is unknown). Capped at a week of 1-second steps, since no model
    /// says anything useful past that and a horizon loop must stay bounded.
    pub fn steps(&self, ahead_ms: Time) -> usize {
        const MAX_STEPS: u64 = 7 * 24 * 3600;
        self.steps_in(ahead_ms).min(MAX_STEPS) as usize
    }

    /// The point forecast `ahead_ms` milliseconds after the newest sample.
    pub fn forecast(&self, ahead_ms: Time) -> f64 {
        self.model.forecast(self.steps(ahead_ms))
    }

    /// The mean forecast over the next `horizon_ms` milliseconds.
    pub fn mean_over(&self, horizon_ms: Time) -> f64 {
        self.model.mean_over(self.steps(horizon_ms))
    }

    /// [`Self::mean_over`] and [`Self::sigma`] of one horizon, its steps worked out once (the
    /// forecast operator asks for both at every sample).
    pub fn mean_and_sigma(&self, horizon_ms: Time) -> (f64, f64) {
        let steps = self.steps(horizon_ms);
        (self.model.mean_over(steps), self.model.sigma(steps))
    }

    /// Standard deviation of the forecast error `ahead_ms` milliseconds ahead.
    pub fn sigma(&self, ahead_ms: Time) -> f64 {
        self.model.sigma(self.steps(ahead_ms))
    }

    /// The estimated (or given) sampling interval in milliseconds, once known.
    pub fn interval_ms(&self) -> Option<f64> {
        (self.interval_ms > 0.0).then_some(self.interval_ms)
    }

    /// The time of the newest sample.
    pub fn last_time(&self) -> Option<Time> {
        self.last_time
    }

    /// The newest sample's value (0 before any).
    pub fn latest(&self) -> f64 {
        self.last_value
    }

    /// The step model underneath.
    pub fn model(&self) -> &SeriesModel {
        &self.model
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{seasonal, Noise};
    use super::super::ModelKind;
    use super::*;

    #[test]
    fn interval_is_estimated_from_jittered_samples_despite_a_long_first_gap() {
        let mut model = TimedModel::new(&ModelConfig::new(ModelKind::Ewma));
        let mut noise = Noise::new(31);
        let mut time: Time = 0;
        model.update(time, 1.0);
        // Hours of silence after the first sample, then samples every 60 s +- 10 s.
        time += 4 * 3_600_000;
        for _ in 0..400 {
            model.update(time, 1.0);
            time += 60_000 + (10_000.0 * noise.next()) as Time;
        }
        let interval = model.interval_ms().expect("known");
        assert!((interval - 60_000.0).abs() < 3_000.0, "{interval}");
        assert_eq!(model.steps(600_000), 10);
        assert_eq!(model.steps(0), 1);
    }

    #[test]
    fn short_gaps_are_interpolated() {
        let mut model = TimedModel::with_interval(&ModelConfig::new(ModelKind::Ewma), 1000);
        model.update(0, 0.0);
        model.update(4000, 4.0);
        // Three missing steps were filled: 1, 2, 3, then 4.
        assert_eq!(model.model().len(), 5);
    }

    #[test]
    fn long_gap_drops_the_trend_and_keeps_the_season_on_the_clock() {
        let config = ModelConfig {
            season: Some(24),
            damped: false,
            ..ModelConfig::new(ModelKind::HoltWinters)
        };
        let mut model = TimedModel::new(&config);
        let mut noise = Noise::new(32);
        // A 24-minute season sampled every 60 s with jitter, then five hours of silence.
        let mut step = 0;
        let mut time: Time = 0;
        while step < 600 {
            model.update(time, seasonal(step, 24));
            step += 1;
            time = step as Time * 60_000 + (5_000.0 * noise.next()) as Time;
        }
        let resumed = 600 + 300;
        model.update(resumed as Time * 60_000, seasonal(resumed, 24));
        assert!(model.model().len() < 610, "the gap was not filled");
        let expected = seasonal(resumed + 3, 24);
        assert!(
            (model.forecast(180_000) - expected).abs() < 1.0,
            "{} vs {expected}",
            model.forecast(180_000)
        );
        let mut trending = TimedModel::with_interval(
            &ModelConfig {
                damped: false,
                ..ModelConfig::new(ModelKind::Holt)
            },
            1000,
        );
        for t in 0..200 {
            trending.update(t * 1000, t as f64);
        }
        trending.update(200_000 + 3_600_000, 500.0);
        assert!((trending.forecast(60_000) - trending.forecast(1000)).abs() < 1e-9);
    }

    /// One-minute samples (jittered) of a season of `period` steps, for `days` days.
    fn minute_samples(model: &mut TimedModel, period: usize, days: usize) {
        let mut noise = Noise::new(33);
        for step in 0..days * 1440 {
            let time = step as Time * 60_000 + (5_000.0 * noise.next()) as Time;
            model.update(time, seasonal(step, period) + noise.next());
        }
    }

    #[test]
    fn daily_season_of_one_minute_samples_is_found_when_the_interval_is_given() {
        let config = ModelConfig::new(ModelKind::HoltWinters);
        let mut model = TimedModel::with_interval(&config, 60_000);
        minute_samples(&mut model, 1440, 4);
        assert_eq!(model.model().season(), Some(1440));
        let expected = seasonal(4 * 1440 + 179, 1440);
        let forecast = model.forecast(180 * 60_000);
        assert!(
            (forecast - expected).abs() < 2.0,
            "{forecast} vs {expected}"
        );
    }

    #[test]
    fn hourly_season_of_one_minute_samples_is_found_from_the_estimated_interval() {
        // The fixed 5-minute candidates would take 60 steps for 5 hours and never try it.
        let mut model = TimedModel::new(&ModelConfig::new(ModelKind::HoltWinters));
        minute_samples(&mut model, 60, 2);
        assert_eq!(model.model().season(), Some(60));
        // Told once the estimate settled, not at every jittered gap.
        assert!((model.told_interval_ms - 60_000.0).abs() < 0.02 * 60_000.0);
    }

    #[test]
    fn non_finite_and_out_of_order_samples_do_not_panic() {
        let mut model = TimedModel::new(&ModelConfig::new(ModelKind::Auto));
        model.update(1000, f64::NAN);
        assert!(model.last_time().is_none());
        model.update(1000, 1.0);
        model.update(500, 2.0);
        model.update(i64::MAX, 3.0);
        model.update(i64::MIN, 4.0);
        assert!(model.forecast(i64::MAX).is_finite());
        assert!(model.mean_over(60_000).is_finite());
        assert!(model.sigma(60_000).is_finite());
    }
}
