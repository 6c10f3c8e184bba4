//! Forecasting models of one utilisation series: EWMA, Holt (damped), additive Holt-Winters,
//! AR(p) by least squares, and `auto`, an online blend of them by recent out-of-sample error.
//!
//! Every model works in steps of the series (one sample = one step); [`TimedModel`] maps event
//! times onto steps for the dataflow. The per-sample update is O(1) (O(p) for AR): parameters
//! are re-estimated only at refits, on a bounded window of recent values, and the state is then
//! replayed over that window so that it agrees with the new parameters. Refits come at 16, 32,
//! 64, … samples while the series is young and then every `refit_every` samples.
//!
//! Forecasts are clamped to the window's range widened by half its span (and at zero for series
//! that never went negative): extrapolating a trend or an unstable AR fit past that is never
//! what a utilisation series does next. Values keep the series' unit; nothing is clamped to 1.
//!
//! ```
//! use augur_dataflows::models::{ModelConfig, ModelKind, SeriesModel};
//!
//! let mut model = SeriesModel::new(&ModelConfig::new(ModelKind::Auto));
//! for step in 0..500 {
//!     model.update(40.0 + (step % 7) as f64);
//! }
//! let predicted = model.mean_over(6) + 2.0 * model.sigma(6);
//! assert!(predicted > 40.0 && predicted < 60.0);
//! ```

mod ar;
mod auto;
mod catch_up;
mod ewma;
mod fit_memo;
mod holt;
mod holt_winters;
mod median;
mod season;
mod timed;

use serde::{Deserialize, Serialize};

pub use season::{detect_period, season_candidates, DEFAULT_SEASON_CANDIDATES, MAX_SEASON_WINDOW};
pub use timed::{NewSteps, TimedModel};

use ar::Ar;
use auto::Auto;
use ewma::Ewma;
use holt::Holt;
use holt_winters::HoltWinters;
use median::Median;

/// Which model a [`SeriesModel`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ModelKind {
    /// Exponentially weighted moving average (simple exponential smoothing).
    Ewma,
    /// Holt's additive trend, damped unless [`ModelConfig::damped`] is off.
    Holt,
    /// Additive Holt-Winters: damped trend plus a seasonal profile of a configured or detected
    /// period.
    HoltWinters,
    /// Autoregression of order [`ModelConfig::ar_order`] with an intercept, by least squares.
    Ar,
    /// The median of the last five samples: a level that ignores lone spikes.
    Median,
    /// A blend of the five above, weighted per horizon by their recent out-of-sample errors.
    Auto,
}

impl ModelKind {
    /// Every kind, in the order `augur forecast --model all` reports them.
    pub const ALL: [ModelKind; 6] = [
        ModelKind::Ewma,
        ModelKind::Holt,
        ModelKind::HoltWinters,
        ModelKind::Ar,
        ModelKind::Median,
        ModelKind::Auto,
    ];

    /// The short name: `ewma`, `holt`, `hw`, `ar`, `median` or `auto`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Ewma => "ewma",
            ModelKind::Holt => "holt",
            ModelKind::HoltWinters => "hw",
            ModelKind::Ar => "ar",
            ModelKind::Median => "median",
            ModelKind::Auto => "auto",
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ModelKind {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "ewma" => Ok(ModelKind::Ewma),
            "holt" => Ok(ModelKind::Holt),
            "hw" | "holt-winters" => Ok(ModelKind::HoltWinters),
            "ar" => Ok(ModelKind::Ar),
            "median" => Ok(ModelKind::Median),
            "auto" => Ok(ModelKind::Auto),
            other => Err(format!(
                "unknown model '{other}' (ewma, holt, hw, ar, median or auto)"
            )),
        }
    }
}

/// How a [`SeriesModel`] is built.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The model.
    pub kind: ModelKind,
    /// Holt-Winters' period in steps; `None` detects it at each refit among the candidates of
    /// [`ModelConfig::interval_ms`] (see [`detect_period`]).
    pub season: Option<usize>,
    /// AR order p.
    pub ar_order: usize,
    /// Recent values kept for refits (at least three periods for a season to be detected).
    pub window: usize,
    /// Samples between refits once the series is older than this.
    pub refit_every: usize,
    /// Whether Holt's (and Holt-Winters') trend is damped.
    pub damped: bool,
    /// The sampling interval in milliseconds, if known when the model is built. Seasons are
    /// sought at a day, 12, 8, 4, 2 and 1 hours in steps of it ([`season_candidates`]), and a
    /// seasonal model's window is sized to hold three cycles of the longest (up to
    /// [`MAX_SEASON_WINDOW`]). `None`: 5-minute steps ([`DEFAULT_SEASON_CANDIDATES`]) until
    /// [`SeriesModel::set_interval_ms`] says otherwise, within `window`.
    #[serde(default)]
    pub interval_ms: Option<f64>,
}

impl ModelConfig {
    /// The defaults for 5-minute data: season detected, AR(8), a week of history, daily refits,
    /// damped trends.
    pub fn new(kind: ModelKind) -> ModelConfig {
        ModelConfig {
            kind,
            season: None,
            ar_order: 8,
            window: 1008,
            refit_every: 288,
            damped: true,
            interval_ms: None,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig::new(ModelKind::Auto)
    }
}

/// The recent values of a series, with the range that forecasts are held to.
///
/// A ring of fixed size, written in full when the series is created: the memory a series will
/// ever need is committed up front, so a long-running engine's footprint does not creep up as
/// windows fill.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct History {
    ring: Vec<f64>,
    /// Index of the oldest value.
    start: usize,
    len: usize,
    lo: f64,
    hi: f64,
    nonnegative: bool,
}

impl History {
    fn new(cap: usize) -> History {
        History {
            ring: vec![f64::NAN; cap.max(1)],
            start: 0,
            len: 0,
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
            nonnegative: true,
        }
    }

    fn slot(&self, index: usize) -> usize {
        // A wrap, not `%`: AR reads its lags through here, 16 integer divisions a sample.
        // (The division stays for a start past the ring, which only a doctored checkpoint has.)
        let (at, size) = (self.start + index, self.ring.len());
        if at < size {
            at
        } else if at - size < size {
            at - size
        } else {
            at % size
        }
    }

    fn push(&mut self, value: f64) {
        if self.len == self.ring.len() {
            self.ring[self.start] = value;
            // A wrap, not `%`: an integer division per sample showed in the profile.
            self.start += 1;
            if self.start == self.ring.len() {
                self.start = 0;
            }
        } else {
            let slot = self.slot(self.len);
            self.ring[slot] = value;
            self.len += 1;
        }
        self.lo = self.lo.min(value);
        self.hi = self.hi.max(value);
        self.nonnegative &= value >= 0.0;
    }

    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        (0..self.len).map(|index| self.ring[self.slot(index)])
    }

    /// Narrows the range to the window's, so that an old spike stops widening it forever.
    fn rebound(&mut self) {
        // One pass over the window as (at most) two slices, oldest first: the same comparisons
        // in the same order as folding `iter()` twice, without a `%` per value (this ran at
        // every refit over the whole window and was most of what an EWMA update cost).
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        let (newer, older) = self.ring.split_at(self.start);
        let from_older = self.len.min(older.len());
        let from_newer = self.len - from_older;
        for &value in older[..from_older].iter().chain(&newer[..from_newer]) {
            lo = lo.min(value);
            hi = hi.max(value);
        }
        self.lo = lo;
        self.hi = hi;
    }

    /// The newest value (0 when empty).
    pub(crate) fn last(&self) -> f64 {
        self.lag(0)
    }

    /// The value `back` steps before the newest (0 = the newest), or the oldest one kept.
    pub(crate) fn lag(&self, back: usize) -> f64 {
        if self.len == 0 {
            return 0.0;
        }
        self.ring[self.slot(self.len - 1 - back.min(self.len - 1))]
    }

    /// Whether the window holds as many values as it can: later refits see as many as now.
    pub(crate) fn is_full(&self) -> bool {
        self.len == self.ring.len()
    }

    /// The window as one contiguous slice, oldest first.
    pub(crate) fn contiguous(&mut self) -> &[f64] {
        self.ring.rotate_left(self.start);
        self.start = 0;
        &self.ring[..self.len]
    }

    /// The width of the band [`Self::clamp`] holds forecasts to: twice the window's range
    /// (infinite while the window is empty).
    pub(crate) fn band_width(&self) -> f64 {
        if self.lo <= self.hi {
            2.0 * (self.hi - self.lo)
        } else {
            f64::INFINITY
        }
    }

    pub(crate) fn clamp(&self, forecast: f64) -> f64 {
        self.band().clamp(forecast)
    }

    /// What [`History::clamp`] holds forecasts to, worked out once for many: `auto` clamps
    /// thirty forecasts a sample against the same window.
    pub(crate) fn band(&self) -> Band {
        let range = (self.lo <= self.hi).then(|| {
            let margin = 0.5 * (self.hi - self.lo);
            let mut low = self.lo - margin;
            if self.nonnegative {
                low = low.max(0.0);
            }
            (low, self.hi + margin)
        });
        Band {
            range,
            last: self.last(),
        }
    }
}

/// The band of [`History::band`]: the window's range widened by half its span each way (at
/// zero for a series never negative), or none while the window is empty; a forecast that is
/// not finite is replaced by the newest value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Band {
    range: Option<(f64, f64)>,
    last: f64,
}

impl Band {
    pub(crate) fn clamp(&self, forecast: f64) -> f64 {
        if !forecast.is_finite() {
            return self.last;
        }
        match self.range {
            Some((low, high)) => forecast.clamp(low, high),
            None => forecast,
        }
    }
}

/// What every model provides to [`SeriesModel`] and to `auto`.
pub(crate) trait Member {
    /// Takes the next value; `history` does not hold it yet.
    fn observe(&mut self, value: f64, history: &History);
    /// Re-estimates the parameters on `values` and replays the state over them.
    fn refit(&mut self, values: &[f64]);
    /// [`Member::refit`] during a catch-up ([`SeriesModel::catch_up`]), when `later` more refits
    /// of this member come before its state is next read: a refit whose every effect a later
    /// one overwrites may be skipped. `full`: the window is at its capacity, so the later
    /// refits see as many values as this one. A member whose refit sets its whole state from
    /// the window alone (EWMA, Holt, AR) skips whenever another refit follows.
    fn refit_ahead(&mut self, values: &[f64], later: u64, _full: bool) {
        if later == 0 {
            self.refit(values);
        }
    }
    /// How many refits in a row, over a full window of `window` values, leave this member in a
    /// state the last of them sets from that window alone, whatever came before: then a
    /// catch-up may leap over the values before them ([`SeriesModel::catch_up`]). One for a
    /// member whose every refit does (and for one whose each step does, like the median);
    /// `None` where some state can outlive any number of refits.
    fn refits_to_settle(&self, _window: usize) -> Option<u64> {
        Some(1)
    }
    /// A catch-up leapt over `count` of this member's refits: advance whatever counts them.
    fn pass_refits(&mut self, _count: u64) {}
    /// The forecast `h >= 1` steps after the newest value, unclamped.
    fn forecast(&self, h: usize, history: &History) -> f64;
    /// Forecasts at each of `horizons` into `out`.
    fn forecasts_at(&self, horizons: &[usize], history: &History, out: &mut [f64]) {
        for (slot, &h) in out.iter_mut().zip(horizons) {
            *slot = self.forecast(h, history);
        }
    }
    /// The mean of the forecasts of steps 1..=h, unclamped.
    fn mean_over(&self, h: usize, history: &History) -> f64 {
        let h = h.max(1);
        (1..=h).map(|k| self.forecast(k, history)).sum::<f64>() / h as f64
    }
    /// Variance of the h-step error over that of the 1-step error.
    fn variance_factor(&self, h: usize) -> f64;
    /// `steps` steps passed unobserved: drop what they made stale.
    fn gap(&mut self, _steps: u64) {}
}

/// Exponentially weighted mean of a stream, normalised by the weight seen so far so that it is
/// unbiased from the first sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct EwMean {
    sum: f64,
    weight: f64,
}

impl EwMean {
    pub(crate) fn add(&mut self, value: f64, decay: f64) {
        self.sum = decay * self.sum + value;
        self.weight = decay * self.weight + 1.0;
    }

    pub(crate) fn get(&self) -> Option<f64> {
        (self.weight > 0.0).then(|| self.sum / self.weight)
    }
}

/// Decay of the 1-step squared-error mean behind [`SeriesModel::sigma`]: about a day of 5-minute
/// samples, so intervals follow changes of regime without jumping at every spike.
const RESIDUAL_DECAY: f64 = 0.995;

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Core {
    Ewma(Ewma),
    Holt(Holt),
    HoltWinters(HoltWinters),
    Ar(Ar),
    Median(Median),
    Auto(Box<Auto>),
}

macro_rules! dispatch {
    ($core:expr, $model:ident => $body:expr) => {
        match $core {
            Core::Ewma($model) => $body,
            Core::Holt($model) => $body,
            Core::HoltWinters($model) => $body,
            Core::Ar($model) => $body,
            Core::Median($model) => $body,
            Core::Auto($model) => $body,
        }
    };
}

impl Core {
    /// [`Member::refits_to_settle`] of the model behind the enum.
    fn refits_to_settle(&self, window: usize) -> Option<u64> {
        dispatch!(self, model => model.refits_to_settle(window))
    }

    /// The model behind the enum, for the paths where a dynamic call costs nothing that shows.
    fn member_mut(&mut self) -> &mut dyn Member {
        match self {
            Core::Ewma(model) => model,
            Core::Holt(model) => model,
            Core::HoltWinters(model) => model,
            Core::Ar(model) => model,
            Core::Median(model) => model,
            Core::Auto(model) => model.as_mut(),
        }
    }
}

/// One series' forecaster: any [`ModelKind`], behind one type (enum dispatch, so a collection of
/// them needs no boxing and serialises whole).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeriesModel {
    kind: ModelKind,
    refit_every: usize,
    seen: u64,
    history: History,
    residual: EwMean,
    core: Core,
}

impl SeriesModel {
    /// A model that has seen nothing yet.
    pub fn new(config: &ModelConfig) -> SeriesModel {
        let core = match config.kind {
            ModelKind::Ewma => Core::Ewma(Ewma::new()),
            ModelKind::Holt => Core::Holt(Holt::new(config.damped)),
            ModelKind::HoltWinters => {
                Core::HoltWinters(HoltWinters::new(config.season, config.damped))
            }
            ModelKind::Ar => Core::Ar(Ar::new(config.ar_order)),
            ModelKind::Median => Core::Median(Median::new()),
            ModelKind::Auto => Core::Auto(Box::new(Auto::new(config))),
        };
        // AR needs its lags even with a tiny window.
        let mut window = config.window.max(config.ar_order + 1);
        let seasonal = matches!(config.kind, ModelKind::HoltWinters | ModelKind::Auto);
        let interval_ms = config.interval_ms.filter(|ms| *ms > 0.0 && ms.is_finite());
        if let (true, Some(ms)) = (seasonal, interval_ms) {
            window = season::season_window(&season_candidates(ms), window);
        }
        let mut model = SeriesModel {
            kind: config.kind,
            refit_every: config.refit_every.max(1),
            seen: 0,
            history: History::new(window),
            residual: EwMean::default(),
            core,
        };
        if let Some(ms) = interval_ms {
            model.set_interval_ms(ms);
        }
        model
    }

    /// Tells the model its sampling interval in milliseconds (a [`TimedModel`] does, once it
    /// has estimated it): the seasons sought from the next refit on are those of
    /// [`season_candidates`] whose three cycles fit in the window. The window itself is sized
    /// once, when the model is built, from [`ModelConfig::interval_ms`]: memory is committed at
    /// creation and never creeps up as intervals are learnt. Ignored unless positive and finite.
    pub fn set_interval_ms(&mut self, interval_ms: f64) {
        if !(interval_ms > 0.0 && interval_ms.is_finite()) {
            return;
        }
        let room = self.history.ring.len();
        let candidates = season_candidates(interval_ms).map(|c| if 3 * c <= room { c } else { 0 });
        match &mut self.core {
            Core::HoltWinters(hw) => hw.set_candidates(candidates),
            Core::Auto(auto) => auto.set_season_candidates(candidates),
            _ => {}
        }
    }

    /// The model this runs.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    /// The season its Holt-Winters (alone or in `auto`) fits now, in steps; `None` for the
    /// other models, or while none is in use (too little history for the one fixed, or none
    /// detected).
    pub fn season_in_use(&self) -> Option<usize> {
        match &self.core {
            Core::HoltWinters(hw) => hw.period(),
            Core::Auto(auto) => auto.hw_period(),
            _ => None,
        }
    }

    /// Takes the next value of the series. Non-finite values are ignored: they carry nothing
    /// and would poison every state.
    pub fn update(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        // `auto` measures its own errors, per horizon.
        if self.seen > 0 && self.kind != ModelKind::Auto {
            let error = value - self.forecast(1);
            self.residual.add(error * error, RESIDUAL_DECAY);
        }
        dispatch!(&mut self.core, model => model.observe(value, &self.history));
        self.history.push(value);
        self.seen += 1;
        self.refit_what_is_due(self.seen);
        if let Core::Auto(auto) = &mut self.core {
            auto.settle(&self.history);
        }
    }

    /// Refits whatever is due now that `seen` samples are in, each refit told how many of its
    /// member's refits follow up to `until` samples (none when `until` is `seen`, as in an
    /// update; a catch-up skips the refits those overwrite, see [`Member::refit_ahead`]).
    fn refit_what_is_due(&mut self, until: u64) {
        if let Core::Auto(auto) = &mut self.core {
            auto.refit_members(self.seen, self.refit_every, &mut self.history, until);
        } else if refit_due(self.seen, self.refit_every, 0) {
            self.history.rebound();
            let later = catch_up::later_refits(self.seen, until, self.refit_every, 0);
            let full = self.history.is_full();
            let values = self.history.contiguous();
            self.core.member_mut().refit_ahead(values, later, full);
        }
    }

    /// Its owner reads forecasts only at `horizons` steps ahead (and means over them) from now
    /// on: `auto` stops recording and scoring its members' forecasts at the error buckets no
    /// such forecast reads, once the series is mature. The forecasts at `horizons` stay what
    /// they are, to the bit, while the focus stays; at other horizons they blend by errors
    /// last measured before the focus. The other models track nothing per horizon.
    pub fn focus(&mut self, horizons: &[usize]) {
        if let Core::Auto(auto) = &mut self.core {
            auto.focus(horizons);
        }
    }

    /// `steps` steps passed without a sample (a gap in the trace): the trend is dropped, the
    /// season's phase moves on and `auto`'s pending forecasts are forgotten; the level stays.
    pub fn gap(&mut self, steps: u64) {
        if steps > 0 && self.seen > 0 {
            dispatch!(&mut self.core, model => model.gap(steps));
        }
    }

    /// The point forecast `h` steps after the newest sample (`h` = 0 is taken as 1); 0 before
    /// any sample.
    pub fn forecast(&self, h: usize) -> f64 {
        if self.seen == 0 {
            return 0.0;
        }
        let h = h.max(1);
        let raw = dispatch!(&self.core, model => model.forecast(h, &self.history));
        self.history.clamp(raw)
    }

    /// The mean of the forecasts of steps 1..=h: what a task running over the next `h` steps
    /// sees on average. 0 before any sample.
    pub fn mean_over(&self, h: usize) -> f64 {
        if self.seen == 0 {
            return 0.0;
        }
        let raw = dispatch!(&self.core, model => model.mean_over(h.max(1), &self.history));
        self.history.clamp(raw)
    }

    /// [`Self::mean_over`] and [`Self::sigma`] of one horizon, as those give them: the
    /// forecast operator asks for both at every sample, and `auto` then works out its members'
    /// weights once where both read the same horizon bucket (five exponentials a sample).
    pub fn mean_and_sigma(&self, h: usize) -> (f64, f64) {
        match &self.core {
            Core::Auto(auto) if self.seen > 0 => {
                let h = h.max(1);
                let (mean, sigma) = auto.mean_and_sigma(h, &self.history);
                (self.history.clamp(mean), self.capped_sigma(sigma))
            }
            _ => (self.mean_over(h), self.sigma(h)),
        }
    }

    /// Standard deviation of the h-step forecast error, from the recent 1-step errors (and,
    /// for `auto`, from its members' recent h-step errors); 0 until an error has been seen.
    pub fn sigma(&self, h: usize) -> f64 {
        let h = h.max(1);
        let sigma = match &self.core {
            Core::Auto(auto) => auto.sigma(h),
            core => {
                let var1 = self.residual.get().unwrap_or(0.0);
                let factor = dispatch!(core, model => model.variance_factor(h));
                (var1 * factor).sqrt()
            }
        };
        self.capped_sigma(sigma)
    }

    /// A model's sigma as published: 0 where not finite, else at most the band forecasts are
    /// held to (see below).
    fn capped_sigma(&self, sigma: f64) -> f64 {
        if !sigma.is_finite() {
            return 0.0;
        }
        // A model's variance factor grows without bound with the horizon (a trend's as h³, an
        // explosive AR fit's exponentially), far past anything a forecast held to the band of
        // `History::clamp` can miss by: the spread is capped at that band's width, or at the
        // 1-step spread where that is wider (asked only when the cap bites: this runs per sample).
        let width = self.history.band_width();
        if sigma <= width {
            return sigma;
        }
        let one_step = match &self.core {
            Core::Auto(auto) => auto.sigma(1),
            _ => self.residual.get().unwrap_or(0.0).sqrt(),
        };
        if one_step.is_finite() {
            sigma.min(width.max(one_step))
        } else {
            sigma.min(width)
        }
    }

    /// The number of samples taken.
    pub fn len(&self) -> u64 {
        self.seen
    }

    /// Whether no sample has been taken.
    pub fn is_empty(&self) -> bool {
        self.seen == 0
    }

    /// The newest sample (0 before any).
    pub fn latest(&self) -> f64 {
        self.history.last()
    }

    /// The seasonal period Holt-Winters uses now (for `hw`, and `auto`'s member), if any.
    pub fn season(&self) -> Option<usize> {
        match &self.core {
            Core::HoltWinters(hw) => hw.period(),
            Core::Auto(auto) => auto.season(),
            _ => None,
        }
    }

    /// `auto`'s current weight of each member at horizon `h`, as (kind, weight); empty for the
    /// other models.
    pub fn weights(&self, h: usize) -> Vec<(ModelKind, f64)> {
        match &self.core {
            Core::Auto(auto) => auto.weights(h.max(1)),
            _ => Vec::new(),
        }
    }
}

/// Whether a model that has taken `seen` samples refits now: at 16, 32, 64, … while the series
/// is younger than `every`, then whenever `seen` is `offset` past a multiple of `every`.
pub(crate) fn refit_due(seen: u64, every: usize, offset: usize) -> bool {
    let every = every.max(1) as u64;
    seen >= 16
        && if seen < every {
            seen.is_power_of_two()
        } else {
            seen % every == offset as u64 % every
        }
}

/// `x.round()` (halves away from zero), equal to it to the last bit (the sign of a zero
/// included), without a call: on the baseline x86-64 target `f64::round` is a library call
/// (`roundsd` needs SSE4.1), and the forecast path rounds several times per sample. Below
/// 2^52 in magnitude the truncation through `i64` is exact and so is the fraction `x - t`;
/// from 2^52 on every double is an integer already (NaN and infinities come back as they are).
#[inline]
pub(crate) fn round_half_away(x: f64) -> f64 {
    const INTEGRAL_FROM: f64 = 4_503_599_627_370_496.0; // 2^52
    if x.is_nan() || x.abs() >= INTEGRAL_FROM {
        return x;
    }
    let truncated = x as i64 as f64;
    let fraction = x - truncated;
    let rounded = if fraction >= 0.5 {
        truncated + 1.0
    } else if fraction <= -0.5 {
        truncated - 1.0
    } else {
        truncated
    };
    rounded.copysign(x)
}

/// Steps of a replay before its 1-step errors count towards the score (the mean squared error,
/// exponential smoothing's likelihood criterion): the start state is a guess.
pub(crate) fn burn_in(n: usize) -> usize {
    (n / 10).clamp(1, 100)
}

/// The newest values a smoothing model's parameters are fitted on: 3.5 days of 5-minute data.
/// Its replays are what a refit costs, and older data moves neither the choice nor the state.
pub(crate) const FIT_SPAN: usize = 1008;

/// The last `span` values (all of them if fewer).
pub(crate) fn recent(values: &[f64], span: usize) -> &[f64] {
    &values[values.len().saturating_sub(span)..]
}

/// Whether `score` beats `best`: strictly lower, and a NaN never wins.
pub(crate) fn improves(score: f64, best: f64) -> bool {
    score < best || (best.is_nan() && !score.is_nan())
}

/// Trials a refit replays side by side (see [`coordinate_search`]): a coordinate's grid and the
/// start fit in one pass.
pub(crate) const REPLAY_LANES: usize = 8;

/// The monomorph of a generic `replay_lanes::<N>` pass for `n` trials. Lanes in a fixed count,
/// the spare ones repeating the last trial, let the compiler pair them in vector registers; the
/// count is the next even one up to [`REPLAY_LANES`], so a pass of two trials does not pay for
/// eight.
macro_rules! replay_pass {
    ($n:expr, $($replay:tt)+) => {
        match $n {
            0..=2 => $($replay)+::<2>,
            3..=4 => $($replay)+::<4>,
            5..=6 => $($replay)+::<6>,
            _ => $($replay)+::<{ $crate::models::REPLAY_LANES }>,
        }
    };
}
pub(crate) use replay_pass;

/// Minimises a score one coordinate at a time over its grid, starting from `start`: a handful
/// of replays instead of the whole product of the grids, which kept the per-sample cost of
/// refits under a microsecond. Returns the best point and its score.
///
/// The trials along one coordinate differ in that coordinate only, so none depends on another's
/// outcome: `score_all` gets them together (the start with the first coordinate's), and returns
/// their scores in the same order. A caller replays them side by side in one pass over the
/// values, where their serial dependency chains overlap instead of queueing (a refit's replays
/// are latency-bound, so a pass of 8 costs about what a pass of 2 does). When the lanes left
/// over allow, the batch also holds the next coordinate's trials from every point that can win
/// this one, so that coordinate needs no pass of its own (Holt's refit: 3 passes to 2).
///
/// `score_all` must be a pure function of each trial: which trials it sees, and in which
/// batches, is not the one-at-a-time search's. The outcome is that search's, point for point: a
/// grid value equal to the coordinate's best at its start is not tried again, and a later trial
/// must beat the best so far strictly ([`improves`]).
pub(crate) fn coordinate_search<const N: usize>(
    grids: [&[f64]; N],
    start: [f64; N],
    mut score_all: impl FnMut(&[[f64; N]]) -> Vec<f64>,
) -> ([f64; N], f64) {
    let mut best = start;
    let mut best_score = f64::NAN;
    // Every trial scored so far, speculative ones included.
    let mut known: Vec<([f64; N], f64)> = Vec::new();
    let same =
        |a: &[f64; N], b: &[f64; N]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
    for i in 0..N {
        let trials = coordinate_trials(grids[i], best, i, i == 0);
        let mut batch: Vec<[f64; N]> = trials
            .iter()
            .filter(|t| !known.iter().any(|(k, _)| same(k, t)))
            .copied()
            .collect();
        if let Some(next) = grids.get(i + 1) {
            // The winner here is one of the trials or the point the coordinate started from.
            let incumbents = trials.iter().chain((i > 0).then_some(&best));
            let ahead: Vec<[f64; N]> = incumbents
                .flat_map(|&from| coordinate_trials(next, from, i + 1, false))
                .filter(|t| !known.iter().any(|(k, _)| same(k, t)))
                .collect();
            if !batch.is_empty() && batch.len() + ahead.len() <= REPLAY_LANES {
                batch.extend(ahead);
            }
        }
        if !batch.is_empty() {
            let scores = score_all(&batch);
            known.extend(batch.into_iter().zip(scores));
        }
        for (k, trial) in trials.iter().enumerate() {
            let Some(&(_, score)) = known.iter().find(|(t, _)| same(t, trial)) else {
                continue;
            };
            if (i == 0 && k == 0) || improves(score, best_score) {
                best = *trial;
                best_score = score;
            }
        }
    }
    (best, best_score)
}

/// The trials of coordinate `i` from `from`: each grid value in place of its own, except the
/// one it has; `from` itself first when `with_start`.
fn coordinate_trials<const N: usize>(
    grid: &[f64],
    from: [f64; N],
    i: usize,
    with_start: bool,
) -> Vec<[f64; N]> {
    let mut trials = Vec::with_capacity(grid.len() + 1);
    if with_start {
        trials.push(from);
    }
    for &value in grid {
        if value == from[i] {
            continue;
        }
        let mut trial = from;
        trial[i] = value;
        trials.push(trial);
    }
    trials
}

#[cfg(test)]
pub(crate) mod testing {
    //! Synthetic series shared by the models' tests.

    /// A deterministic uniform stream in [-1, 1) (xorshift), so tests need no RNG crate.
    pub struct Noise(u64);

    impl Noise {
        pub fn new(seed: u64) -> Noise {
            Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }

        pub fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        }
    }

    pub fn seasonal(step: usize, period: usize) -> f64 {
        50.0 + 20.0 * (2.0 * std::f64::consts::PI * step as f64 / period as f64).sin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The search as it was first written, one trial at a time: the reference for the batched
    /// one.
    fn one_at_a_time<const N: usize>(
        grids: [&[f64]; N],
        start: [f64; N],
        score: impl Fn(&[f64; N]) -> f64,
    ) -> ([f64; N], f64) {
        let mut best = start;
        let mut best_score = score(&best);
        for (i, grid) in grids.iter().enumerate() {
            for &value in grid.iter() {
                if value == best[i] {
                    continue;
                }
                let mut trial = best;
                trial[i] = value;
                let trial_score = score(&trial);
                if improves(trial_score, best_score) {
                    best = trial;
                    best_score = trial_score;
                }
            }
        }
        (best, best_score)
    }

    #[test]
    fn batched_coordinate_search_is_the_one_at_a_time_search() {
        let grids: [&[f64]; 3] = [&[0.1, 0.3, 0.5, 0.8, 1.0], &[0.0, 0.02], &[0.05, 0.2, 0.4]];
        for seed in 0..500u64 {
            // Scores from a few levels only (ties), some NaN, some infinite.
            let score = |p: &[f64; 3]| {
                let mut h = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                for x in p {
                    h = (h ^ x.to_bits()).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    h ^= h >> 31;
                }
                match h % 7 {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    level => level as f64,
                }
            };
            for start in [[0.5, 0.0, 0.2], [0.2, 0.01, 0.9]] {
                let mut calls = 0;
                let batched = coordinate_search(grids, start, |trials| {
                    calls += 1;
                    assert!(trials.len() <= REPLAY_LANES);
                    trials.iter().map(score).collect()
                });
                let reference = one_at_a_time(grids, start, score);
                assert_eq!(batched.0, reference.0, "seed {seed}, start {start:?}");
                assert_eq!(
                    batched.1.to_bits(),
                    reference.1.to_bits(),
                    "seed {seed}, start {start:?}"
                );
                // From the first start, the second coordinate's 1 trial and the third's 2 from
                // each of the 2 points that can win the second fit in one pass with it; from the
                // second, 2 + 3 x 3 would not.
                let passes = if start[0] == 0.5 { 2 } else { 3 };
                assert_eq!(calls, passes, "seed {seed}, start {start:?}");
            }
        }
    }

    #[test]
    fn rebound_is_the_fold_over_the_window_in_order() {
        for cap in [1, 2, 7, 16] {
            let mut history = History::new(cap);
            for step in 0..3 * cap + 2 {
                // Zeros of both signs among other values: the order of comparisons shows.
                let value = match step % 5 {
                    0 => 0.0,
                    1 => -0.0,
                    _ => ((step * 37) % 11) as f64 - 5.0,
                };
                history.push(value);
                let lo = history.iter().fold(f64::INFINITY, f64::min);
                let hi = history.iter().fold(f64::NEG_INFINITY, f64::max);
                history.rebound();
                assert_eq!(
                    (history.lo.to_bits(), history.hi.to_bits()),
                    (lo.to_bits(), hi.to_bits()),
                    "cap {cap}, step {step}"
                );
            }
        }
    }

    #[test]
    fn round_half_away_is_f64_round_to_the_bit() {
        let mut special = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.499_999_999_999_999_94,
            -0.499_999_999_999_999_94,
            4_503_599_627_370_495.5,
            -4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            9_007_199_254_740_993.0,
            1e300,
            -1e300,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
        ];
        // Every bit pattern class: a seeded walk over raw bits, and values near the halves.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            special.push(f64::from_bits(state));
            let near_half = (state % 2_000_001) as f64 / 1000.0 - 1000.0 + 0.5;
            special.push(near_half);
            special.push(f64::from_bits(near_half.to_bits().wrapping_add(1)));
            special.push(f64::from_bits(near_half.to_bits().wrapping_sub(1)));
        }
        for x in special {
            let (ours, std) = (round_half_away(x), x.round());
            if x.is_nan() {
                assert!(ours.is_nan());
            } else {
                assert_eq!(ours.to_bits(), std.to_bits(), "{x:e}: {ours:e} vs {std:e}");
            }
        }
    }

    #[test]
    fn kinds_parse_and_name_round_trip() {
        for kind in ModelKind::ALL {
            assert_eq!(kind.name().parse::<ModelKind>(), Ok(kind));
        }
        assert!("arima".parse::<ModelKind>().is_err());
    }

    #[test]
    fn empty_model_forecasts_zero_and_ignores_non_finite_values() {
        for kind in ModelKind::ALL {
            let mut model = SeriesModel::new(&ModelConfig::new(kind));
            assert_eq!(model.forecast(3), 0.0);
            assert_eq!(model.sigma(3), 0.0);
            model.update(f64::NAN);
            model.update(f64::INFINITY);
            assert!(model.is_empty());
            model.update(2.0);
            assert_eq!(model.len(), 1);
            assert_eq!(model.forecast(1), 2.0, "{kind}");
        }
    }

    #[test]
    fn constant_series_every_model_forecasts_the_constant_with_zero_sigma() {
        for kind in ModelKind::ALL {
            let mut model = SeriesModel::new(&ModelConfig::new(kind));
            for _ in 0..700 {
                model.update(0.37);
            }
            for h in [1, 6, 12, 300] {
                assert!((model.forecast(h) - 0.37).abs() < 1e-9, "{kind} h={h}");
                assert!((model.mean_over(h) - 0.37).abs() < 1e-9, "{kind} h={h}");
                assert!(model.sigma(h) < 1e-9, "{kind} h={h}");
            }
        }
    }

    #[test]
    fn forecasts_stay_within_the_widened_range_and_at_zero() {
        // A steep fall that Holt would extrapolate far below zero.
        let mut model = SeriesModel::new(&ModelConfig {
            damped: false,
            ..ModelConfig::new(ModelKind::Holt)
        });
        for step in 0..100 {
            model.update(10.0 - 0.1 * step as f64);
        }
        assert!(model.forecast(1000) >= 0.0);
        let mut negative = SeriesModel::new(&ModelConfig {
            damped: false,
            ..ModelConfig::new(ModelKind::Holt)
        });
        for step in 0..100 {
            negative.update(-(step as f64));
        }
        let low = -99.0 - 0.5 * 99.0;
        assert!((negative.forecast(10_000) - low).abs() < 1e-9);
    }

    #[test]
    fn one_minute_interval_sizes_only_seasonal_windows_and_only_at_creation() {
        let minute = |kind| ModelConfig {
            interval_ms: Some(60_000.0),
            ..ModelConfig::new(kind)
        };
        for kind in [ModelKind::HoltWinters, ModelKind::Auto] {
            assert_eq!(SeriesModel::new(&minute(kind)).history.ring.len(), 4320);
        }
        for kind in [
            ModelKind::Ewma,
            ModelKind::Holt,
            ModelKind::Ar,
            ModelKind::Median,
        ] {
            assert_eq!(SeriesModel::new(&minute(kind)).history.ring.len(), 1008);
        }
        // Told later: the window stays, and a day (1,440 steps) is not sought in it.
        let mut model = SeriesModel::new(&ModelConfig::new(ModelKind::HoltWinters));
        model.set_interval_ms(60_000.0);
        model.set_interval_ms(f64::NAN);
        assert_eq!(model.history.ring.len(), 1008);
        let Core::HoltWinters(hw) = &model.core else {
            unreachable!()
        };
        assert_eq!(hw.candidates(), [0, 0, 0, 240, 120, 60]);
    }

    #[test]
    fn series_and_timed_models_are_serde_and_clone_keeps_the_state() {
        fn serde<T: Serialize + for<'de> Deserialize<'de>>() {}
        serde::<SeriesModel>();
        serde::<TimedModel>();
        let mut model = SeriesModel::new(&ModelConfig::new(ModelKind::Auto));
        let mut noise = testing::Noise::new(3);
        for _ in 0..400 {
            model.update(5.0 + noise.next());
        }
        let copy = model.clone();
        assert_eq!(copy.forecast(6), model.forecast(6));
        assert_eq!(copy.sigma(6), model.sigma(6));
    }
}

#[cfg(test)]
mod mean_and_sigma_tests {
    use super::*;

    #[test]
    fn mean_and_sigma_together_are_mean_over_and_sigma_to_the_bit() {
        // `auto` shares its members' weights between the two where they read one bucket; every
        // model, every horizon bucket (and past them), young and mature, must give the same
        // bits as the two asked apart.
        for kind in ModelKind::ALL {
            let mut model = SeriesModel::new(&ModelConfig::new(kind));
            let mut noise = testing::Noise::new(41);
            assert_eq!(
                model.mean_and_sigma(5),
                (model.mean_over(5), model.sigma(5))
            );
            for k in 0..1_500 {
                model.update(0.4 + 0.1 * (k as f64 / 50.0).sin() + 0.05 * noise.next());
                if k % 97 == 0 || k < 40 {
                    for h in [
                        0, 1, 2, 3, 5, 6, 7, 12, 13, 24, 47, 48, 49, 60, 1_008, 100_000,
                    ] {
                        let together = model.mean_and_sigma(h);
                        let apart = (model.mean_over(h), model.sigma(h));
                        assert_eq!(
                            (together.0.to_bits(), together.1.to_bits()),
                            (apart.0.to_bits(), apart.1.to_bits()),
                            "{kind:?} after {k} samples, h = {h}"
                        );
                    }
                }
            }
        }
    }
}
