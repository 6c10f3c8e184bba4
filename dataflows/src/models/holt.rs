//! Holt's linear trend, additive, damped by `phi` (Gardner and McKenzie) unless configured off.

use std::cell::Cell;

use serde::{Deserialize, Serialize};

use super::fit_memo::FitMemo;
use super::{
    burn_in, coordinate_search, recent, replay_pass, History, Member, FIT_SPAN, REPLAY_LANES,
};

/// Horizons up to this many steps sum their variance term by term (as they always have);
/// longer ones use the closed form.
pub(crate) const LOOPED_STEPS: usize = 4096;

const ALPHAS: [f64; 5] = [0.1, 0.3, 0.5, 0.8, 1.0];
const BETAS: [f64; 3] = [0.01, 0.05, 0.2];
/// Damping factors tried when damped; a trend that persists undamped over an hour is rare in
/// utilisation, and damping keeps a spike's slope from running away at long horizons.
const PHIS: [f64; 3] = [0.8, 0.9, 0.98];

/// Level and trend recursion shared with Holt-Winters (which adds its season outside).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Trend {
    pub(crate) alpha: f64,
    pub(crate) beta: f64,
    pub(crate) phi: f64,
}

impl Trend {
    /// phi + phi^2 + ... + phi^h: how much of today's trend the h-step forecast carries.
    pub(crate) fn carried(&self, h: usize) -> f64 {
        if self.phi >= 1.0 {
            h as f64
        } else {
            self.phi * (1.0 - self.phi.powi(h.min(i32::MAX as usize) as i32)) / (1.0 - self.phi)
        }
    }

    /// The mean of `carried(k)` over k = 1..=h.
    pub(crate) fn mean_carried(&self, h: usize) -> f64 {
        let h = h.max(1);
        if self.phi >= 1.0 {
            (h as f64 + 1.0) / 2.0
        } else {
            self.phi / (1.0 - self.phi) * (h as f64 - self.carried(h)) / h as f64
        }
    }

    /// One step: the new (level, trend) after `y`, whose deseasonalised value is `target`.
    pub(crate) fn step(&self, level: f64, trend: f64, target: f64) -> (f64, f64) {
        let projected = level + self.phi * trend;
        let new_level = projected + self.alpha * (target - projected);
        let new_trend = self.phi * trend + self.beta * (new_level - level - self.phi * trend);
        (new_level, new_trend)
    }

    /// The h-step error's variance over the 1-step error's: the innovation of step j ahead
    /// reaches the forecast through alpha (1 + beta carried(j)), plus `gamma` where j is a
    /// whole number of seasons of `period` steps (Holt: no season, period 0). Summed term by
    /// term up to [`LOOPED_STEPS`]; past it, in closed form, so that a horizon of many steps
    /// costs no more than a short one.
    pub(crate) fn variance_factor(&self, h: usize, period: usize, gamma: f64) -> f64 {
        let seasonal = |j: usize| {
            if period > 1 && j.is_multiple_of(period) {
                gamma
            } else {
                0.0
            }
        };
        if h > LOOPED_STEPS {
            return self.variance_factor_closed(h, period, gamma);
        }
        let mut factor = 1.0;
        for j in 1..h {
            let c = self.alpha * (1.0 + self.beta * self.carried(j)) + seasonal(j);
            factor += c * c;
        }
        factor
    }

    /// [`Trend::variance_factor`] in closed form. The term of step j is a − b r^j when damped
    /// (carried(j) = K (1 − phi^j), K = phi / (1 − phi): a = alpha (1 + beta K), b = alpha
    /// beta K, r = phi) and alpha (1 + beta j) when not; the season adds gamma at j = mP.
    fn variance_factor_closed(&self, h: usize, period: usize, gamma: f64) -> f64 {
        let n = h.saturating_sub(1) as f64;
        let (alpha, beta, phi) = (self.alpha, self.beta, self.phi);
        // Σ_{j=1}^{count} r^j.
        let geometric = |r: f64, count: f64| {
            if r == 1.0 {
                count
            } else {
                r * (1.0 - r.powf(count)) / (1.0 - r)
            }
        };
        let damped = phi < 1.0;
        let (a, b) = if damped {
            let k = phi / (1.0 - phi);
            (alpha * (1.0 + beta * k), alpha * beta * k)
        } else {
            (alpha, alpha * beta)
        };
        // Σ_{j=1}^{n} term_j²: damped (a − b r^j)², undamped (a + b j)².
        let mut sum = if damped {
            n * a * a - 2.0 * a * b * geometric(phi, n) + b * b * geometric(phi * phi, n)
        } else {
            n * a * a + a * b * n * (n + 1.0) + b * b * n * (n + 1.0) * (2.0 * n + 1.0) / 6.0
        };
        if period > 1 {
            // j = mP for m = 1..=M: (term + gamma)² − term² = 2 gamma term + gamma².
            let p = period as f64;
            let m = (h.saturating_sub(1) / period) as f64;
            let terms = if damped {
                m * a - b * geometric(phi.powf(p), m)
            } else {
                m * a + b * p * m * (m + 1.0) / 2.0
            };
            sum += m * gamma * gamma + 2.0 * gamma * terms;
        }
        1.0 + sum
    }
}

/// The last [`Trend::variance_factor`] a model asked for, keyed by everything it depends on
/// (the parameters' bits, the horizon, the period, gamma's bits), so it never needs clearing:
/// a refit that changes the parameters misses it. The series operator asks every series for
/// its sigma at the same horizon at every sample, and the sum is h − 1 terms each with a
/// power of phi (a fifth of `holt`'s whole ingest run).
#[derive(Clone, Debug, Default)]
pub(crate) struct VarianceMemo(Cell<Option<VarianceAsked>>);

/// The bits of (alpha, beta, phi, gamma), the horizon, the period, and the factor.
type VarianceAsked = ([u64; 4], usize, usize, f64);

impl VarianceMemo {
    pub(crate) fn factor(&self, trend: &Trend, h: usize, period: usize, gamma: f64) -> f64 {
        let key = [
            trend.alpha.to_bits(),
            trend.beta.to_bits(),
            trend.phi.to_bits(),
            gamma.to_bits(),
        ];
        if let Some((k, at, of, factor)) = self.0.get() {
            if k == key && at == h && of == period {
                return factor;
            }
        }
        let factor = trend.variance_factor(h, period, gamma);
        self.0.set(Some((key, h, period, factor)));
        factor
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Holt {
    damped: bool,
    params: Trend,
    level: f64,
    trend: f64,
    started: bool,
    /// The last fit, when its window was constant ([`FitMemo`]).
    #[serde(skip)]
    memo: FitMemo<(Trend, f64, f64)>,
    #[serde(skip)]
    variance: VarianceMemo,
}

impl Holt {
    pub(crate) fn new(damped: bool) -> Holt {
        Holt {
            damped,
            params: Trend {
                alpha: 0.5,
                beta: 0.05,
                phi: if damped { 0.9 } else { 1.0 },
            },
            level: 0.0,
            trend: 0.0,
            started: false,
            memo: FitMemo::default(),
            variance: VarianceMemo::default(),
        }
    }

    /// The parameters that replay `values` best, with the (level, trend) they end in; `None`
    /// when no trial scores.
    fn fit(values: &[f64], damped: bool) -> Option<(Trend, f64, f64)> {
        let phis: &[f64] = if damped { &PHIS } else { &[1.0] };
        let start = [0.5, 0.05, if damped { 0.9 } else { 1.0 }];
        // Every replay's end state, so that the winner's need not be replayed again.
        let mut ends: Vec<(Trend, f64, f64)> = Vec::new();
        let mut params = Vec::new();
        let ([alpha, beta, phi], score) = coordinate_search([&ALPHAS, &BETAS, phis], start, |ps| {
            params.clear();
            params.extend(ps.iter().map(|p| Trend {
                alpha: p[0],
                beta: p[1],
                phi: p[2],
            }));
            let replays = Holt::replay_all(&params, values);
            ends.extend(
                params
                    .iter()
                    .zip(&replays)
                    .map(|(&trial, &(level, trend, _))| (trial, level, trend)),
            );
            replays.iter().map(|&(_, _, score)| score).collect()
        });
        let winner = Trend { alpha, beta, phi };
        let end = ends.iter().find(|(trial, _, _)| *trial == winner);
        end.copied().filter(|_| score.is_finite())
    }

    /// Replays each of `trials` over `values` from the first value: the (level, trend) each
    /// ends in and its mean squared one-step error after the burn-in. The trials run side by
    /// side, a step of each per value: one trial's step waits on its previous step, so
    /// interleaved they overlap where one at a time they would queue. Each trial's arithmetic
    /// is exactly its own replay's.
    fn replay_all(trials: &[Trend], values: &[f64]) -> Vec<(f64, f64, f64)> {
        let Some((&first, rest)) = values.split_first() else {
            return vec![(0.0, 0.0, 0.0); trials.len()];
        };
        // The errors of the first `skip - 1` steps are not scored.
        let (unscored, scored) = rest.split_at((burn_in(values.len()) - 1).min(rest.len()));
        let mut out = Vec::with_capacity(trials.len());
        for lanes in trials.chunks(REPLAY_LANES) {
            let replay = replay_pass!(lanes.len(), Holt::replay_lanes);
            replay(lanes, first, unscored, scored, &mut out);
        }
        out
    }

    /// [`Holt::replay_all`]'s pass over up to `N` trials side by side, from `first`, appending
    /// (level, trend, mean squared error) per trial to `out`. Each trial's arithmetic is
    /// exactly its own replay's.
    fn replay_lanes<const N: usize>(
        lanes: &[Trend],
        first: f64,
        unscored: &[f64],
        scored: &[f64],
        out: &mut Vec<(f64, f64, f64)>,
    ) {
        let Some(&last) = lanes.last() else {
            return;
        };
        let params: [Trend; N] = std::array::from_fn(|k| lanes.get(k).copied().unwrap_or(last));
        let mut level = [first; N];
        let mut trend = [0.0; N];
        let mut sse = [0.0; N];
        for &y in unscored {
            for k in 0..N {
                (level[k], trend[k]) = params[k].step(level[k], trend[k], y);
            }
        }
        for &y in scored {
            for k in 0..N {
                let error = y - level[k] - params[k].phi * trend[k];
                sse[k] += error * error;
                (level[k], trend[k]) = params[k].step(level[k], trend[k], y);
            }
        }
        let count = scored.len().max(1) as f64;
        out.extend((0..lanes.len()).map(|k| (level[k], trend[k], sse[k] / count)));
    }
}

impl Member for Holt {
    fn observe(&mut self, value: f64, _history: &History) {
        if self.started {
            (self.level, self.trend) = self.params.step(self.level, self.trend, value);
        } else {
            self.level = value;
            self.started = true;
        }
    }

    fn refit(&mut self, values: &[f64]) {
        let values = recent(values, FIT_SPAN);
        let damped = self.damped;
        if let Some((params, level, trend)) = self
            .memo
            .fit_or_recall(values, 0, || Holt::fit(values, damped))
        {
            self.params = params;
            (self.level, self.trend) = (level, trend);
            self.started = true;
        }
    }

    fn forecast(&self, h: usize, _history: &History) -> f64 {
        self.level + self.params.carried(h) * self.trend
    }

    fn mean_over(&self, h: usize, _history: &History) -> f64 {
        self.level + self.params.mean_carried(h) * self.trend
    }

    fn variance_factor(&self, h: usize) -> f64 {
        self.variance.factor(&self.params, h, 0, 0.0)
    }

    fn gap(&mut self, _steps: u64) {
        // After a long silence the old slope says nothing about what comes next, and the jump
        // to the next sample is no slope either: restart from that sample.
        self.trend = 0.0;
        self.started = false;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Noise;
    use super::super::{ModelConfig, ModelKind, SeriesModel};
    use super::*;

    /// The memo answers what the sum itself would, to the bit, whatever changed between two
    /// asks (a refit's parameters, the horizon, the period, gamma), and repeats of one ask.
    #[test]
    fn the_variance_memo_answers_as_the_sum_whatever_changed() {
        let memo = VarianceMemo::default();
        let trends = [
            Trend {
                alpha: 0.3,
                beta: 0.05,
                phi: 0.9,
            },
            Trend {
                alpha: 0.3,
                beta: 0.05,
                phi: 0.98,
            },
            Trend {
                alpha: 0.8,
                beta: 0.05,
                phi: 0.98,
            },
            Trend {
                alpha: 0.8,
                beta: 0.2,
                phi: 0.98,
            },
        ];
        for trend in trends.iter().chain(trends.iter().rev()) {
            for (h, period, gamma) in [
                (60, 0, 0.0),
                (60, 0, 0.0),
                (12, 0, 0.0),
                (60, 24, 0.1),
                (60, 24, 0.2),
                (60, 12, 0.2),
                (5_000, 24, 0.2),
                (60, 0, 0.0),
            ] {
                assert_eq!(
                    memo.factor(trend, h, period, gamma).to_bits(),
                    trend.variance_factor(h, period, gamma).to_bits(),
                    "{trend:?} h {h} period {period} gamma {gamma}"
                );
            }
        }
    }

    /// The closed form of the variance factor against the term-by-term sum, damped or not,
    /// with and without a season, at horizons past where the loop stops.
    #[test]
    fn the_closed_variance_factor_is_the_sum_of_its_terms() {
        for &(alpha, beta, phi) in &[
            (0.3, 0.05, 0.9),
            (0.8, 0.2, 0.98),
            (0.1, 0.01, 0.8),
            (0.5, 0.05, 1.0),
            (1.0, 0.2, 1.0),
        ] {
            let trend = Trend { alpha, beta, phi };
            for (period, gamma) in [(0, 0.0), (24, 0.1), (288, 0.3), (7, 0.05)] {
                for h in [2, 3, 25, 289, 1000, 4097, 9001] {
                    let mut looped = 1.0;
                    for j in 1..h {
                        let season = if period > 1 && j % period == 0 {
                            gamma
                        } else {
                            0.0
                        };
                        let c = alpha * (1.0 + beta * trend.carried(j)) + season;
                        looped += c * c;
                    }
                    let closed = trend.variance_factor_closed(h, period, gamma);
                    assert!(
                        (closed - looped).abs() <= 1e-9 * looped,
                        "{alpha} {beta} {phi} P {period} h {h}: {closed} vs {looped}"
                    );
                    let asked = trend.variance_factor(h, period, gamma);
                    if h <= LOOPED_STEPS {
                        assert_eq!(asked.to_bits(), looped.to_bits(), "h {h}");
                    }
                }
            }
        }
    }

    fn model(damped: bool) -> SeriesModel {
        SeriesModel::new(&ModelConfig {
            damped,
            ..ModelConfig::new(ModelKind::Holt)
        })
    }

    #[test]
    fn carried_trend_sums_match_their_closed_forms() {
        let damped = Trend {
            alpha: 0.5,
            beta: 0.1,
            phi: 0.9,
        };
        let direct: f64 = (1..=5).map(|i| 0.9f64.powi(i)).sum();
        assert!((damped.carried(5) - direct).abs() < 1e-12);
        let mean: f64 = (1..=5).map(|k| damped.carried(k)).sum::<f64>() / 5.0;
        assert!((damped.mean_carried(5) - mean).abs() < 1e-12);
        let plain = Trend { phi: 1.0, ..damped };
        assert_eq!(plain.carried(7), 7.0);
        assert_eq!(plain.mean_carried(7), 4.0);
        // h = 3, undamped: 1 + (a(1 + b))^2 + (a(1 + 2b))^2.
        let expected = 1.0 + (0.5f64 * 1.1).powi(2) + (0.5f64 * 1.2).powi(2);
        assert!((plain.variance_factor(3, 0, 0.0) - expected).abs() < 1e-12);
    }

    #[test]
    fn constant_series_forecasts_the_constant() {
        let mut m = model(true);
        for _ in 0..300 {
            m.update(3.0);
        }
        assert!((m.forecast(12) - 3.0).abs() < 1e-12);
    }

    #[test]
    fn undamped_linear_trend_is_extrapolated_exactly() {
        let mut m = model(false);
        for t in 0..800 {
            m.update(100.0 + 0.25 * t as f64);
        }
        for h in [1, 6, 12] {
            let expected = 100.0 + 0.25 * (799 + h) as f64;
            assert!(
                (m.forecast(h) - expected).abs() < 1e-6,
                "h={h} {}",
                m.forecast(h)
            );
        }
        let mean_expected = 100.0 + 0.25 * (799.0 + 6.5);
        assert!((m.mean_over(12) - mean_expected).abs() < 1e-6);
    }

    #[test]
    fn damped_trend_extrapolates_less_than_the_line() {
        let mut m = model(true);
        for t in 0..800 {
            m.update(100.0 + 0.25 * t as f64);
        }
        let last = 100.0 + 0.25 * 799.0;
        let f = m.forecast(12);
        assert!(f > last && f <= last + 0.25 * 12.0 + 1e-9, "{f}");
    }

    #[test]
    fn step_change_is_followed() {
        let mut m = model(true);
        let mut noise = Noise::new(5);
        for _ in 0..400 {
            m.update(10.0 + 0.1 * noise.next());
        }
        for _ in 0..200 {
            m.update(30.0 + 0.1 * noise.next());
        }
        assert!((m.forecast(6) - 30.0).abs() < 0.3, "{}", m.forecast(6));
    }

    #[test]
    fn gap_drops_the_trend() {
        let mut m = model(false);
        for t in 0..100 {
            m.update(t as f64);
        }
        m.gap(1000);
        assert!((m.forecast(10) - m.forecast(1)).abs() < 1e-12);
    }
}
