//! A first forecaster of one utilisation series: Holt's linear trend on irregular samples.
//!
//! Real traces are sampled irregularly (Alibaba's machines report every ~60 s with gaps of hours),
//! so the trend is kept per second of event time rather than per step, and a gap simply scales
//! the trend's contribution. The prediction used for placement is the mean of the forecast over a
//! horizon, which is what a task starting now would see on average.

use serde::{Deserialize, Serialize};

use crate::types::Time;

/// Smoothing parameters of [`Holt`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HoltParams {
    /// Weight of a new sample in the level (0 < alpha <= 1).
    pub alpha: f64,
    /// Weight of a new slope in the trend (0 <= beta <= 1); 0 makes this plain EWMA.
    pub beta: f64,
    /// The trend is ignored across gaps longer than this (milliseconds): after hours of silence
    /// the old slope says nothing about the next hour.
    pub max_gap_ms: Time,
}

impl Default for HoltParams {
    fn default() -> Self {
        HoltParams {
            alpha: 0.5,
            beta: 0.1,
            max_gap_ms: 3_600_000,
        }
    }
}

/// Holt's linear-trend exponential smoothing on one series, in event time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Holt {
    params: HoltParams,
    level: f64,
    /// Change of the level per millisecond.
    trend: f64,
    last_time: Option<Time>,
    latest: f64,
}

impl Holt {
    /// A forecaster that has seen nothing yet.
    pub fn new(params: HoltParams) -> Holt {
        Holt {
            params,
            level: 0.0,
            trend: 0.0,
            last_time: None,
            latest: 0.0,
        }
    }

    /// Takes one sample; samples must come in non-decreasing time order.
    pub fn update(&mut self, time: Time, value: f64) {
        self.latest = value;
        let Some(last) = self.last_time else {
            self.level = value;
            self.trend = 0.0;
            self.last_time = Some(time);
            return;
        };
        let gap = time.saturating_sub(last);
        let HoltParams {
            alpha,
            beta,
            max_gap_ms,
        } = self.params;
        if gap <= 0 {
            // A second reading at the same instant refines the level but says nothing of slope.
            self.level = alpha * value + (1.0 - alpha) * self.level;
        } else if gap > max_gap_ms {
            self.level = alpha * value + (1.0 - alpha) * self.level;
            self.trend = 0.0;
        } else {
            let gap = gap as f64;
            let projected = self.level + self.trend * gap;
            let level = alpha * value + (1.0 - alpha) * projected;
            self.trend = beta * (level - self.level) / gap + (1.0 - beta) * self.trend;
            self.level = level;
        }
        self.last_time = Some(time);
    }

    /// The most recent sample.
    pub fn latest(&self) -> f64 {
        self.latest
    }

    /// The forecast `ahead` milliseconds after the last sample, never below zero.
    pub fn forecast(&self, ahead: Time) -> f64 {
        (self.level + self.trend * ahead as f64).max(0.0)
    }

    /// The mean forecast over the next `horizon` milliseconds, never below zero.
    pub fn mean_over(&self, horizon: Time) -> f64 {
        self.forecast(horizon / 2)
    }

    /// Whether any sample has been seen.
    pub fn is_empty(&self) -> bool {
        self.last_time.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_series_forecasts_the_constant() {
        let mut holt = Holt::new(HoltParams::default());
        for step in 0..50 {
            holt.update(step * 60_000, 0.4);
        }
        assert!((holt.forecast(600_000) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn linear_trend_is_extrapolated() {
        let mut holt = Holt::new(HoltParams {
            alpha: 0.8,
            beta: 0.5,
            max_gap_ms: i64::MAX,
        });
        // 0.001 per second.
        for step in 0..400 {
            holt.update(step * 1000, step as f64 * 0.001);
        }
        let expected = 0.399 + 0.1;
        assert!(
            (holt.forecast(100_000) - expected).abs() < 1e-6,
            "{}",
            holt.forecast(100_000)
        );
    }

    #[test]
    fn long_gap_drops_the_trend() {
        let mut holt = Holt::new(HoltParams::default());
        for step in 0..20 {
            holt.update(step * 1000, step as f64 * 0.01);
        }
        holt.update(20 * 1000 + 10 * 3_600_000, 0.5);
        assert_eq!(holt.trend, 0.0);
    }

    #[test]
    fn forecast_never_negative() {
        let mut holt = Holt::new(HoltParams::default());
        for step in 0..20 {
            holt.update(step * 1000, 1.0 - step as f64 * 0.05);
        }
        assert!(holt.forecast(3_600_000) >= 0.0);
    }
}
