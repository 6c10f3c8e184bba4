//! Additive Holt-Winters: Holt's (damped) level and trend plus a seasonal profile of one period,
//! configured or detected at each refit.

use serde::{Deserialize, Serialize};

use super::fit_memo::FitMemo;
use super::holt::{Trend, VarianceMemo, LOOPED_STEPS};
use super::season::{detect_period, DEFAULT_SEASON_CANDIDATES};
use super::{
    burn_in, coordinate_search, recent, replay_pass, History, Member, FIT_SPAN, REPLAY_LANES,
};

const ALPHAS: [f64; 4] = [0.05, 0.2, 0.5, 0.8];
/// A trend inside a daily cycle is mostly the season's own slope; keep the trend weight small.
const BETAS: [f64; 2] = [0.0, 0.02];
const GAMMAS: [f64; 3] = [0.05, 0.2, 0.4];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct HoltWinters {
    fixed: Option<usize>,
    damped: bool,
    params: Trend,
    gamma: f64,
    level: f64,
    trend: f64,
    /// One entry per phase; a single zero when no season is in use (then this is damped Holt).
    season: Vec<f64>,
    /// The phase of the next step.
    phase: usize,
    started: bool,
    refits: u64,
    /// The periods sought when none is fixed, in steps (0: none).
    candidates: [usize; 6],
    /// Whether the candidates changed since the period was last sought.
    redetect: bool,
    /// The last fit, when its window was constant ([`FitMemo`]; keyed by the period too).
    #[serde(skip)]
    memo: FitMemo<(Trend, f64, Replay)>,
    #[serde(skip)]
    variance: VarianceMemo,
}

/// The period is looked for again at every this many refits (and at each of the first eight,
/// while the window fills), times the window's length in FIT_SPANs: it is the costliest part
/// of a refit and rarely changes.
const DETECT_EVERY: u64 = 4;

/// The state a replay ends in.
#[derive(Clone, Debug)]
struct Replay {
    level: f64,
    trend: f64,
    season: Vec<f64>,
    score: f64,
}

impl HoltWinters {
    pub(crate) fn new(fixed: Option<usize>, damped: bool) -> HoltWinters {
        HoltWinters {
            fixed,
            damped,
            params: Trend {
                alpha: 0.5,
                beta: 0.0,
                phi: if damped { 0.9 } else { 1.0 },
            },
            gamma: 0.0,
            level: 0.0,
            trend: 0.0,
            season: vec![0.0],
            phase: 0,
            started: false,
            refits: 0,
            candidates: DEFAULT_SEASON_CANDIDATES,
            redetect: false,
            memo: FitMemo::default(),
            variance: VarianceMemo::default(),
        }
    }

    /// How many refits it has counted (they decide when the period is sought).
    #[cfg(test)]
    pub(crate) fn refit_count(&self) -> u64 {
        self.refits
    }

    #[cfg(test)]
    pub(crate) fn candidates(&self) -> [usize; 6] {
        self.candidates
    }

    /// The periods to seek from now on (see [`super::season_candidates`]).
    pub(crate) fn set_candidates(&mut self, candidates: [usize; 6]) {
        if candidates != self.candidates {
            self.candidates = candidates;
            self.redetect = true;
        }
    }

    pub(crate) fn period(&self) -> Option<usize> {
        (self.season.len() > 1).then_some(self.season.len())
    }

    fn choose_period(&self, values: &[f64]) -> usize {
        match self.fixed {
            Some(period) if period >= 2 && values.len() >= 2 * period => period,
            Some(_) => 1,
            // A window grown for long seasons costs its length again at each detection:
            // seek as often per value as in a FIT_SPAN window.
            None if self.redetect
                || self.refits < 8
                || self.refits.is_multiple_of(
                    DETECT_EVERY * values.len().div_ceil(FIT_SPAN).max(1) as u64,
                ) =>
            {
                detect_period(values, &self.candidates).unwrap_or(1)
            }
            None => self.season.len(),
        }
    }

    /// Whether every refit fits in full, whatever period it settles on. A season longer than
    /// a third of FIT_SPAN is fitted at one refit in a few, the others keeping the state.
    fn fits_at_every_refit(&self) -> bool {
        let longest = match self.fixed {
            Some(period) => period,
            None => self.candidates.iter().copied().max().unwrap_or(0),
        };
        longest.saturating_mul(3) <= FIT_SPAN
    }

    /// Whether one of the `later` refits to come (over `len` values now, as many then when
    /// `full`) chooses its period afresh, so that nothing a refit now would set outlives it: a
    /// refit that does not seek the period keeps the last one's, and a fixed period is chosen
    /// from the window alone. Only while every refit fits in full
    /// ([`HoltWinters::fits_at_every_refit`]).
    fn superseded(&self, len: usize, later: u64, full: bool) -> bool {
        if later == 0 || !self.fits_at_every_refit() {
            return false;
        }
        if self.fixed.is_some() {
            return true;
        }
        // This refit runs with the count `refits`, the j-th after it with `refits + j`. While
        // the window fills, a later window could be long enough to space the seeking wider.
        let next = self.refits + 1;
        let spacing = DETECT_EVERY * len.div_ceil(FIT_SPAN).max(1) as u64;
        next < 8 || (full && next.next_multiple_of(spacing) <= self.refits + later)
    }

    /// The parameters that replay `values` best with a season of `period`, with the state
    /// they end in; `None` when no trial scores.
    fn fit(values: &[f64], period: usize, damped: bool) -> Option<(Trend, f64, Replay)> {
        let (level0, season0) = HoltWinters::initial(values, period);
        let phi = if damped { 0.9 } else { 1.0 };
        let gammas: &[f64] = if period > 1 { &GAMMAS } else { &[0.0] };
        let start = [0.2, 0.0, gammas[gammas.len() / 2]];
        // Every replay with its trial, so that the winner's need not be replayed again.
        let mut replayed: Vec<((Trend, f64), Replay)> = Vec::new();
        let mut params = Vec::new();
        let ([alpha, beta, gamma], score) =
            coordinate_search([&ALPHAS, &BETAS, gammas], start, |ps| {
                params.clear();
                params.extend(ps.iter().map(|p| {
                    let trend = Trend {
                        alpha: p[0],
                        beta: p[1],
                        phi,
                    };
                    (trend, p[2])
                }));
                let replays = HoltWinters::replay_all(&params, values, level0, &season0);
                let scores = replays.iter().map(|r| r.score).collect();
                replayed.extend(params.iter().copied().zip(replays));
                scores
            });
        let winner = (Trend { alpha, beta, phi }, gamma);
        let replay = replayed
            .into_iter()
            .find(|(trial, _)| *trial == winner)
            .map(|(_, replay)| replay)?;
        score.is_finite().then_some((winner.0, winner.1, replay))
    }

    /// The first cycle's mean and the mean profile of up to four first cycles, so that the
    /// replay starts near the right state instead of spending days learning the season.
    fn initial(values: &[f64], period: usize) -> (f64, Vec<f64>) {
        if period < 2 {
            return (values.first().copied().unwrap_or(0.0), vec![0.0]);
        }
        let cycles = (values.len() / period).clamp(1, 4);
        let mut profile = vec![0.0; period];
        let mut first_mean = 0.0;
        for (c, cycle) in values.chunks_exact(period).take(cycles).enumerate() {
            let mean = cycle.iter().sum::<f64>() / period as f64;
            if c == 0 {
                first_mean = mean;
            }
            for (p, y) in profile.iter_mut().zip(cycle) {
                *p += (y - mean) / cycles as f64;
            }
        }
        (first_mean, profile)
    }

    /// Replays each of `trials` (the trend's parameters and the season's weight) over `values`
    /// from `level0` and `season0`. The trials run side by side, a step of each per value, as
    /// in Holt's refit: their dependency chains overlap instead of queueing. Each trial's
    /// arithmetic is exactly its own replay's.
    fn replay_all(
        trials: &[(Trend, f64)],
        values: &[f64],
        level0: f64,
        season0: &[f64],
    ) -> Vec<Replay> {
        let period = season0.len();
        let skip = burn_in(values.len()).max(if period > 1 { period } else { 0 });
        let (unscored, scored) = values.split_at(skip.min(values.len()));
        let mut out = Vec::with_capacity(trials.len());
        for lanes in trials.chunks(REPLAY_LANES) {
            let replay = replay_pass!(lanes.len(), Self::replay_lanes);
            replay(lanes, unscored, scored, level0, season0, &mut out);
        }
        out
    }

    /// [`HoltWinters::replay_all`]'s pass over up to `N` trials side by side, appending a
    /// [`Replay`] per trial to `out`. Each trial's arithmetic is exactly its own replay's.
    fn replay_lanes<const N: usize>(
        lanes: &[(Trend, f64)],
        unscored: &[f64],
        scored: &[f64],
        level0: f64,
        season0: &[f64],
        out: &mut Vec<Replay>,
    ) {
        let Some(&last) = lanes.last() else {
            return;
        };
        let period = season0.len();
        let trial = |k: usize| lanes.get(k).copied().unwrap_or(last);
        let params: [Trend; N] = std::array::from_fn(|k| trial(k).0);
        let gammas: [f64; N] = std::array::from_fn(|k| trial(k).1);
        let mut level = [level0; N];
        let mut trend = [0.0; N];
        let mut sse = [0.0; N];
        // Phase-major: a step's lanes read and write one run of `N` values.
        let mut season: Vec<[f64; N]> = season0.iter().map(|&s| [s; N]).collect();
        let mut phase = 0;
        // One step of every lane; a macro rather than a closure, which the compiler left as a
        // call per value.
        macro_rules! step {
            ($y:expr, $scored:expr) => {{
                let y = $y;
                let slots = &mut season[phase];
                for k in 0..N {
                    let s = slots[k];
                    if $scored {
                        let error = y - level[k] - params[k].phi * trend[k] - s;
                        sse[k] += error * error;
                    }
                    (level[k], trend[k]) = params[k].step(level[k], trend[k], y - s);
                    slots[k] = s + gammas[k] * (y - level[k] - s);
                }
                phase += 1;
                if phase == period {
                    phase = 0;
                }
            }};
        }
        for &y in unscored {
            step!(y, false);
        }
        for &y in scored {
            step!(y, true);
        }
        let count = scored.len().max(1) as f64;
        out.extend((0..lanes.len()).map(|k| Replay {
            level: level[k],
            trend: trend[k],
            season: season.iter().map(|slots| slots[k]).collect(),
            score: sse[k] / count,
        }));
    }

    fn seasonal(&self, ahead: usize) -> f64 {
        // Auto asks for five horizons at every sample, each within a season mostly: a
        // division only past its end.
        let index = self.phase + ahead;
        let period = self.season.len();
        self.season[if index < period {
            index
        } else {
            index % period
        }]
    }
}

impl Member for HoltWinters {
    fn observe(&mut self, value: f64, _history: &History) {
        let s = self.season[self.phase];
        if self.started {
            (self.level, self.trend) = self.params.step(self.level, self.trend, value - s);
            self.season[self.phase] = s + self.gamma * (value - self.level - s);
        } else {
            self.level = value - s;
            self.started = true;
        }
        self.phase += 1;
        if self.phase >= self.season.len() {
            self.phase = 0;
        }
    }

    fn refit(&mut self, values: &[f64]) {
        if values.is_empty() {
            return;
        }
        let period = self.choose_period(values);
        self.redetect = false;
        self.refits += 1;
        // Three cycles at least, so that the initial profile averages out the noise.
        let span = FIT_SPAN.max(3 * period);
        // A long season replays several FIT_SPANs at each fit: fit it at only one refit in so
        // many, so that a sample's share of the fitting stays what it is for short seasons (the
        // state follows every sample in between). Not when the period changes.
        let stride = span.div_ceil(FIT_SPAN) as u64;
        if self.started && period == self.season.len() && !self.refits.is_multiple_of(stride) {
            return;
        }
        let values = recent(values, span);
        let damped = self.damped;
        let fitted = self
            .memo
            .fit_or_recall(values, period, || HoltWinters::fit(values, period, damped));
        if let Some((params, gamma, replay)) = fitted {
            self.params = params;
            self.gamma = gamma;
            self.level = replay.level;
            self.trend = replay.trend;
            self.phase = values.len() % replay.season.len();
            self.season = replay.season;
            self.started = true;
        }
    }

    fn refits_to_settle(&self, window: usize) -> Option<u64> {
        if !self.fits_at_every_refit() {
            return None;
        }
        // A run of this many refits over a full window holds one that seeks the period.
        Some(match self.fixed {
            Some(_) => 1,
            None => DETECT_EVERY * window.div_ceil(FIT_SPAN).max(1) as u64,
        })
    }

    fn pass_refits(&mut self, count: u64) {
        if count > 0 {
            self.redetect = false;
            self.refits += count;
        }
    }

    fn refit_ahead(&mut self, values: &[f64], later: u64, full: bool) {
        if values.is_empty() || later == 0 || !self.fits_at_every_refit() {
            return self.refit(values);
        }
        if !self.superseded(values.len(), later, full) {
            // The refits to come keep the period this one chooses, and the last of them fits
            // with it: choose it (the season's length carries it), leave the fit to that one.
            let period = self.choose_period(values);
            if period != self.season.len() {
                self.season = vec![0.0; period];
                self.phase = 0;
            }
        }
        // Only the counters that decide when the period is sought carry over, as `refit`
        // moves them.
        self.redetect = false;
        self.refits += 1;
    }

    fn forecast(&self, h: usize, _history: &History) -> f64 {
        self.level + self.params.carried(h) * self.trend + self.seasonal(h - 1)
    }

    fn mean_over(&self, h: usize, _history: &History) -> f64 {
        // The same terms as `seasonal(k)` for k in 0..h, in order, with the phase stepped and
        // wrapped instead of a division per term (a 60-step horizon is asked at every sample).
        let period = self.season.len();
        let mut phase = self.phase % period;
        // `Sum` for floats starts from -0.0; so does this, to the bit.
        let mut sum = -0.0;
        match self.season.as_slice() {
            // No season in use: its one entry is a zero, and h zeros of one sign add up to
            // the first sum (h > 0 always, see `SeriesModel::mean_over`), without the walk.
            [only] if *only == 0.0 && h > 0 => sum += *only,
            // A long horizon: whole seasons at once, then the part of one, O(period) however
            // many steps (the walk would be O(h) at every sample).
            season if h > LOOPED_STEPS => {
                let whole: f64 = season.iter().sum();
                let mut part = 0.0;
                for _ in 0..h % period {
                    part += season[phase];
                    phase += 1;
                    if phase == period {
                        phase = 0;
                    }
                }
                sum = whole * (h / period) as f64 + part;
            }
            _ => {
                for _ in 0..h {
                    sum += self.season[phase];
                    phase += 1;
                    if phase == period {
                        phase = 0;
                    }
                }
            }
        }
        let seasonal = sum / h as f64;
        self.level + self.params.mean_carried(h) * self.trend + seasonal
    }

    fn variance_factor(&self, h: usize) -> f64 {
        self.variance
            .factor(&self.params, h, self.season.len(), self.gamma)
    }

    fn gap(&mut self, steps: u64) {
        // As in Holt: restart level and trend from the next sample; the season is kept.
        self.trend = 0.0;
        self.started = false;
        // The season follows the clock, not the samples: skip the phases that passed.
        let period = self.season.len() as u64;
        self.phase = ((self.phase as u64 + steps % period) % period) as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{seasonal, Noise};
    use super::super::{Core, Member, ModelConfig, ModelKind, SeriesModel};
    use super::LOOPED_STEPS;

    #[test]
    fn a_long_horizon_sums_whole_seasons_to_the_walk_within_rounding() {
        let mut m = model(Some(24));
        let mut noise = Noise::new(5);
        for t in 0..600 {
            m.update(seasonal(t, 24) + noise.next());
            if t % 97 != 0 {
                continue;
            }
            let Core::HoltWinters(hw) = &m.core else {
                unreachable!("a Holt-Winters model")
            };
            for h in [LOOPED_STEPS + 1, 5_000, 600_000] {
                let seasonal = (0..h).map(|k| hw.seasonal(k)).sum::<f64>() / h as f64;
                let expected = hw.level + hw.params.mean_carried(h) * hw.trend + seasonal;
                let got = hw.mean_over(h, &m.history);
                assert!(
                    (got - expected).abs() <= 1e-9 * expected.abs().max(1.0),
                    "t {t} h {h}: {got} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn mean_over_sums_the_season_as_the_per_step_lookup_does() {
        // A season, and none (one zero entry, which the sum skips walking).
        for season in [Some(24), Some(1)] {
            let mut m = model(season);
            let mut noise = Noise::new(3);
            for t in 0..500 {
                m.update(seasonal(t, 24) + noise.next());
                let Core::HoltWinters(hw) = &mut m.core else {
                    unreachable!("a Holt-Winters model")
                };
                if season == Some(1) && t % 2 == 1 {
                    // Both zeros: the sum keeps the sign h zeros of one sign give.
                    hw.season[0] = -0.0;
                }
                let hw = &*hw;
                for h in [1, 7, 24, 60, 100] {
                    let seasonal = (0..h).map(|k| hw.seasonal(k)).sum::<f64>() / h as f64;
                    let expected = hw.level + hw.params.mean_carried(h) * hw.trend + seasonal;
                    let got = hw.mean_over(h, &m.history);
                    assert_eq!(got.to_bits(), expected.to_bits(), "t {t} h {h}");
                }
                if season == Some(1) {
                    assert_eq!(hw.season.len(), 1, "no season in use");
                }
            }
        }
    }

    fn model(season: Option<usize>) -> SeriesModel {
        SeriesModel::new(&ModelConfig {
            season,
            ..ModelConfig::new(ModelKind::HoltWinters)
        })
    }

    #[test]
    fn pure_seasonal_series_is_forecast_a_cycle_ahead() {
        for season in [Some(48), None] {
            let mut m = model(season);
            for t in 0..480 {
                m.update(seasonal(t, 48));
            }
            assert_eq!(m.season(), Some(48));
            for h in [1, 6, 12, 47] {
                let expected = seasonal(480 + h - 1, 48);
                assert!(
                    (m.forecast(h) - expected).abs() < 0.05,
                    "{season:?} h={h}: {} vs {expected}",
                    m.forecast(h)
                );
            }
            // Over a whole cycle the season averages out to the level.
            assert!((m.mean_over(48) - 50.0).abs() < 0.05, "{}", m.mean_over(48));
        }
    }

    #[test]
    fn constant_series_has_no_season() {
        let mut m = model(None);
        for _ in 0..1000 {
            m.update(4.0);
        }
        assert_eq!(m.season(), None);
        assert!((m.forecast(12) - 4.0).abs() < 1e-12);
    }

    #[test]
    fn undamped_linear_trend_without_season_is_extrapolated() {
        let mut m = SeriesModel::new(&ModelConfig {
            damped: false,
            ..ModelConfig::new(ModelKind::HoltWinters)
        });
        for t in 0..1000 {
            m.update(2.0 * t as f64);
        }
        let expected = 2.0 * (999 + 12) as f64;
        assert!(
            (m.forecast(12) - expected).abs() < 1e-3,
            "{}",
            m.forecast(12)
        );
    }

    #[test]
    fn step_change_moves_the_level_not_the_season() {
        let mut m = model(Some(24));
        let mut noise = Noise::new(8);
        for t in 0..600 {
            m.update(seasonal(t, 24) + 0.1 * noise.next());
        }
        for t in 600..900 {
            m.update(seasonal(t, 24) + 30.0 + 0.1 * noise.next());
        }
        let expected = seasonal(900 + 5, 24) + 30.0;
        assert!((m.forecast(6) - expected).abs() < 1.0, "{}", m.forecast(6));
    }

    #[test]
    fn gap_keeps_the_season_on_the_clock() {
        let mut m = model(Some(24));
        for t in 0..480 {
            m.update(seasonal(t, 24));
        }
        // 30 steps pass unobserved; the next forecast is for step 480 + 30.
        m.gap(30);
        let expected = seasonal(510, 24);
        assert!((m.forecast(1) - expected).abs() < 0.05, "{}", m.forecast(1));
    }
}
