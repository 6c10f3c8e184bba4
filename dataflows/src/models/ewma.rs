//! Simple exponential smoothing: the level follows each sample by a fraction `alpha`.

use serde::{Deserialize, Serialize};

use super::fit_memo::FitMemo;
use super::{burn_in, recent, History, Member, FIT_SPAN};

/// The smoothing weights tried at each refit; 1.0 is the naive forecast, which wins on series
/// that move like random walks.
const ALPHAS: [f64; 9] = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.85, 1.0];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Ewma {
    alpha: f64,
    level: f64,
    started: bool,
    /// The last fit, when its window was constant ([`FitMemo`]).
    #[serde(skip)]
    memo: FitMemo<(f64, f64)>,
}

impl Ewma {
    pub(crate) fn new() -> Ewma {
        Ewma {
            alpha: 0.5,
            level: 0.0,
            started: false,
            memo: FitMemo::default(),
        }
    }

    /// The weight that replays `values` best and the level it ends in; `None` when none
    /// scores.
    fn fit(values: &[f64]) -> Option<(f64, f64)> {
        let mut best: Option<(f64, f64, f64)> = None;
        for (alpha, (level, score)) in ALPHAS.into_iter().zip(Ewma::replay_all(values)) {
            // Strictly better only: ties (a constant series) keep the smoother weight.
            if score < best.map_or(f64::INFINITY, |(best, _, _)| best) {
                best = Some((score, alpha, level));
            }
        }
        best.map(|(_, alpha, level)| (alpha, level))
    }

    #[cfg(test)]
    pub(crate) fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Runs the recursion over `values` from their first; returns the final level and the mean
    /// squared 1-step error after the burn-in.
    #[cfg(test)]
    fn replay(alpha: f64, values: &[f64]) -> (f64, f64) {
        let Some((&first, rest)) = values.split_first() else {
            return (0.0, 0.0);
        };
        let skip = burn_in(values.len());
        let mut level = first;
        let (mut sse, mut count) = (0.0, 0usize);
        for (i, &y) in rest.iter().enumerate() {
            let error = y - level;
            if i + 1 >= skip {
                sse += error * error;
                count += 1;
            }
            level += alpha * error;
        }
        (level, sse / count.max(1) as f64)
    }

    /// [`Ewma::replay`] for every weight of [`ALPHAS`] in one pass over `values`. The nine
    /// recursions are independent, so running them side by side lets the processor overlap
    /// them (one replay is a chain of dependent multiply-adds, latency-bound); each lane does
    /// the very same operations in the same order as its own replay, so the results are equal
    /// to the last bit. A refit is most of what EWMA costs per sample.
    fn replay_all(values: &[f64]) -> [(f64, f64); ALPHAS.len()] {
        let Some((&first, rest)) = values.split_first() else {
            return [(0.0, 0.0); ALPHAS.len()];
        };
        let skip = burn_in(values.len()).min(rest.len() + 1);
        let (warm, scored) = rest.split_at(skip - 1);
        let mut level = [first; ALPHAS.len()];
        for &y in warm {
            for (level, alpha) in level.iter_mut().zip(ALPHAS) {
                *level += alpha * (y - *level);
            }
        }
        let mut sse = [0.0; ALPHAS.len()];
        for &y in scored {
            for ((level, sse), alpha) in level.iter_mut().zip(sse.iter_mut()).zip(ALPHAS) {
                let error = y - *level;
                *sse += error * error;
                *level += alpha * error;
            }
        }
        let count = scored.len().max(1) as f64;
        std::array::from_fn(|k| (level[k], sse[k] / count))
    }
}

impl Member for Ewma {
    fn observe(&mut self, value: f64, _history: &History) {
        if self.started {
            self.level += self.alpha * (value - self.level);
        } else {
            self.level = value;
            self.started = true;
        }
    }

    fn refit(&mut self, values: &[f64]) {
        let values = recent(values, FIT_SPAN);
        if let Some((alpha, level)) = self.memo.fit_or_recall(values, 0, || Ewma::fit(values)) {
            self.alpha = alpha;
            self.level = level;
            self.started = true;
        }
    }

    fn forecast(&self, _h: usize, _history: &History) -> f64 {
        self.level
    }

    fn mean_over(&self, _h: usize, _history: &History) -> f64 {
        self.level
    }

    fn gap(&mut self, _steps: u64) {
        // A level hours old is no better a start than the next sample.
        self.started = false;
    }

    fn variance_factor(&self, h: usize) -> f64 {
        // SES is ARIMA(0,1,1): every further step adds alpha^2 of the innovation variance.
        1.0 + (h.saturating_sub(1)) as f64 * self.alpha * self.alpha
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Noise;
    use super::super::{ModelConfig, ModelKind, SeriesModel};
    use super::*;

    fn model() -> SeriesModel {
        SeriesModel::new(&ModelConfig::new(ModelKind::Ewma))
    }

    #[test]
    fn recursion_matches_the_closed_form() {
        // Level after y0 then k ones, alpha 0.5: 1 - 0.5^k (before any refit).
        let mut ewma = Ewma::new();
        let history = History::new(10);
        ewma.observe(0.0, &history);
        for _ in 0..3 {
            ewma.observe(1.0, &history);
        }
        assert!((ewma.forecast(1, &history) - 0.875).abs() < 1e-12);
        assert!((ewma.variance_factor(5) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn the_side_by_side_replay_equals_each_replay_to_the_bit() {
        let mut noise = Noise::new(7);
        for n in [0, 1, 2, 3, 9, 10, 11, 50, 1008, 1500] {
            let values: Vec<f64> = (0..n)
                .map(|i| (i as f64 * 0.01).sin() + 0.3 * noise.next())
                .collect();
            for (alpha, all) in ALPHAS.into_iter().zip(Ewma::replay_all(&values)) {
                let one = Ewma::replay(alpha, &values);
                assert_eq!(
                    one.0.to_bits(),
                    all.0.to_bits(),
                    "level, n {n}, alpha {alpha}"
                );
                assert_eq!(
                    one.1.to_bits(),
                    all.1.to_bits(),
                    "score, n {n}, alpha {alpha}"
                );
            }
        }
    }

    #[test]
    fn constant_series_forecasts_the_constant() {
        let mut m = model();
        for _ in 0..300 {
            m.update(7.5);
        }
        assert_eq!(m.forecast(12), 7.5);
    }

    #[test]
    fn linear_trend_lags_by_slope_over_alpha() {
        // SES on y = c t settles at a lag of c (1 - alpha) / alpha; the fit picks alpha = 1
        // (naive), the best SES can do on a pure ramp.
        let mut m = model();
        for t in 0..600 {
            m.update(0.5 * t as f64);
        }
        assert!(
            (m.forecast(1) - 0.5 * 599.0).abs() < 1e-6,
            "{}",
            m.forecast(1)
        );
    }

    #[test]
    fn step_change_is_followed() {
        let mut m = model();
        let mut noise = Noise::new(1);
        for _ in 0..400 {
            m.update(10.0 + 0.1 * noise.next());
        }
        for _ in 0..200 {
            m.update(30.0 + 0.1 * noise.next());
        }
        assert!((m.forecast(6) - 30.0).abs() < 0.2, "{}", m.forecast(6));
    }

    #[test]
    fn noisy_level_picks_a_small_alpha() {
        let mut m = model();
        let mut noise = Noise::new(2);
        let mut ewma_alpha = 1.0;
        for _ in 0..1000 {
            m.update(10.0 + noise.next());
        }
        if let super::super::Core::Ewma(e) = &m.core {
            ewma_alpha = e.alpha();
        }
        assert!(ewma_alpha <= 0.05, "{ewma_alpha}");
        assert!((m.forecast(1) - 10.0).abs() < 0.3);
        // White noise of variance 1/3: the 1-step sigma is about 0.58.
        assert!(
            (m.sigma(1) - (1.0f64 / 3.0).sqrt()).abs() < 0.1,
            "{}",
            m.sigma(1)
        );
    }
}
