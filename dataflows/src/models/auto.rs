//! `auto`: EWMA, damped Holt, Holt-Winters, AR and a recent median run side by side on the same samples, blended
//! per horizon by their recent out-of-sample errors.
//!
//! Each member's forecasts at a few horizon buckets are kept until their target arrives, so each
//! member has an exponentially weighted absolute and squared error per bucket, measured exactly
//! as the forecasts are later used. A forecast `h` steps ahead weights the members by their errors
//! at the bucket nearest below `h`, falling off exponentially with the excess over the best
//! member's error: the best member dominates, and close members average, which usually beats
//! either.

use serde::{Deserialize, Serialize};

use super::ar::Ar;
use super::catch_up::{later_refits, SETTLE};
use super::ewma::Ewma;
use super::holt::Holt;
use super::holt_winters::HoltWinters;
use super::median::Median;
use super::{EwMean, History, Member, ModelConfig, ModelKind};

/// Horizons at which members' errors are tracked.
const BUCKETS: [usize; 5] = [1, 3, 6, 12, 24];
/// Where each bucket's ring starts among a member's pending forecasts.
const OFFSETS: [usize; 5] = [0, 1, 4, 10, 22];
/// Pending forecasts per member: one ring of `b` slots per bucket `b`.
const SLOTS: usize = 1 + 3 + 6 + 12 + 24;
const MEMBERS: usize = 5;
const _: () = assert!(OFFSETS[4] + BUCKETS[4] == SLOTS);
const KINDS: [ModelKind; MEMBERS] = [
    ModelKind::Ewma,
    ModelKind::Holt,
    ModelKind::HoltWinters,
    ModelKind::Ar,
    ModelKind::Median,
];
/// Memory of the error means: about 50 steps (4 hours of 5-minute data), long enough to rank
/// members, short enough to follow a change of regime. (0.98 against 0.99 and 0.995 on the NAB,
/// Bitbrains and Alibaba traces: within 2% of each other, 0.98 slightly ahead.)
const ERROR_DECAY: f64 = 0.98;
/// Weights go as exp(-SHARPNESS (error / smallest error - 1)): members within a few percent of
/// the best share the forecast, one 15% worse gets 5% of the weight. Inverse-MSE weights are too
/// diffuse here, because the members' errors are strongly correlated (5 to 40 did about as well
/// on the real traces; 20 was slightly ahead).
const SHARPNESS: f64 = 20.0;
/// An error counts towards the weights' means at most this many times the best member's mean
/// error, so one sample moves a member's mean by at most (1 - ERROR_DECAY) x 25 = half the best
/// member's mean. On a series that idles between rare spikes, every member misses the spike
/// alike, and without a ceiling those few huge errors would wipe out all that the long quiet
/// stretch said about the members (scaled to nothing by the decay) and hand the weights to
/// whichever followed the spike's first sample best, just before it drops back. A ceiling is
/// Huber's robust loss, scaled by the current best error rather than fixed: a regime of larger
/// errors still gets through, the ceiling growing up to 1.48x per step. (Bitbrains mean MASE
/// 2.41 to 1.66 at h = 1, NAB and Alibaba within 0.01 either way; any value from 10 to 1,000
/// did within 0.01 of that, 2 to 6 cost NAB 0.04 to 0.12.)
const CEILING: f64 = 25.0;

/// Where in the refit cycle each member refits once the series is mature, in quarters of the
/// cycle: Holt (the costliest fit) half a cycle away from the others (Holt-Winters, AR and EWMA
/// together cost about as much). All at once, a stretch of 1,000 samples paid for four cycles'
/// refits or three, so its mean cost jumped by a fifth; split, it pays for at most one half
/// more. (Moving EWMA or AR away from the cycle's start changed the NAB scores by up to +0.02
/// mean MASE, moving Holt by -0.004 to 0: refit timing is a small perturbation either way.)
const REFIT_PHASES: [usize; MEMBERS] = [0, 2, 0, 0, 0];

/// Settles during which every bucket is tracked, whatever the owner's focus
/// ([`Auto::focus`]): a young series' blend has every horizon's whole history. At least a
/// catch-up's settle ([`SETTLE`]).
const YOUNG_SETTLES: u64 = 512;
const _: () = assert!(YOUNG_SETTLES >= SETTLE as u64);

fn all_tracked() -> [bool; BUCKETS.len()] {
    [true; BUCKETS.len()]
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Auto {
    ewma: Ewma,
    holt: Holt,
    hw: HoltWinters,
    ar: Ar,
    median: Median,
    /// `MEMBERS` x `SLOTS` forecasts awaiting their targets (NaN: none).
    pending: Vec<f64>,
    /// `MEMBERS` x buckets mean absolute errors, then mean squared errors.
    absolute: Vec<EwMean>,
    squared: Vec<EwMean>,
    /// Per bucket, the ring slot of the next sample: where the forecast made `b` samples ago
    /// for it waits, and where the forecast for `b` samples on goes. Cursors, not a step count
    /// modulo `b`, because integer division would be most of an update's cost.
    cursors: [usize; BUCKETS.len()],
    /// Settles so far.
    #[serde(default)]
    settled: u64,
    /// The buckets its owner reads (see [`Auto::focus`]); `None`: every one.
    #[serde(default)]
    focus: Option<[bool; BUCKETS.len()]>,
    /// Per bucket, whether its forecasts are recorded and scored: every one while the series is
    /// young ([`YOUNG_SETTLES`]) or has no focus, then those in focus. A bucket dropped keeps
    /// its error means; back in focus, its first forecasts are scored `b` samples on.
    #[serde(default = "all_tracked")]
    tracked: [bool; BUCKETS.len()],
}

/// Which members refit after `seen` samples with refits every `every`, and whether the cycle
/// starts there; `None` when none does. While the series is younger than `every`, all of them
/// at 16, 32, 64, …; then each at its own point of the cycle ([`REFIT_PHASES`]).
fn due_members(seen: u64, every: usize) -> Option<([bool; MEMBERS], bool)> {
    let every = every.max(1);
    let cycle = every as u64;
    let young = seen < cycle;
    if seen < 16 || (young && !seen.is_power_of_two()) {
        return None;
    }
    // One division per sample, not one per member: this runs at every update.
    let point = seen % cycle;
    let due: [bool; MEMBERS] =
        std::array::from_fn(|m| young || point == (REFIT_PHASES[m] * every / 4) as u64 % cycle);
    due.contains(&true).then_some((due, young || point == 0))
}

/// `exponent.exp()`, without the call where the result is exact anyway: 1 for the best member
/// (an exponent of zero), and 0 below -746, where e^x is under half the least subnormal and
/// rounds to zero. On a steady series every member is one or the other, and these were two of
/// the ten exponentials a sample's query pays for.
fn weight_of(exponent: f64) -> f64 {
    if exponent == 0.0 {
        1.0
    } else if exponent < -746.0 {
        0.0
    } else {
        exponent.exp()
    }
}

fn bucket_of(h: usize) -> usize {
    BUCKETS.iter().rposition(|&b| b <= h).unwrap_or(0)
}

impl Auto {
    pub(crate) fn new(config: &ModelConfig) -> Auto {
        Auto {
            ewma: Ewma::new(),
            holt: Holt::new(true),
            hw: HoltWinters::new(config.season, true),
            ar: Ar::new(config.ar_order),
            median: Median::new(),
            pending: vec![f64::NAN; MEMBERS * SLOTS],
            absolute: vec![EwMean::default(); MEMBERS * BUCKETS.len()],
            squared: vec![EwMean::default(); MEMBERS * BUCKETS.len()],
            cursors: [0; BUCKETS.len()],
            settled: 0,
            focus: None,
            tracked: all_tracked(),
        }
    }

    /// The season its Holt-Winters member fits now, if any.
    pub(crate) fn hw_period(&self) -> Option<usize> {
        self.hw.period()
    }

    fn member(&self, index: usize) -> &dyn Member {
        match index {
            0 => &self.ewma,
            1 => &self.holt,
            2 => &self.hw,
            3 => &self.ar,
            _ => &self.median,
        }
    }

    fn member_mut(&mut self, index: usize) -> &mut dyn Member {
        match index {
            0 => &mut self.ewma,
            1 => &mut self.holt,
            2 => &mut self.hw,
            3 => &mut self.ar,
            _ => &mut self.median,
        }
    }

    /// Refits the members that are due after `seen` samples (see [`due_members`]), each told
    /// how many of its refits come after this one up to `until` samples (none in an update;
    /// in a catch-up, [`Member::refit_ahead`] may skip what those overwrite). The forecasts'
    /// range is narrowed to the window at the cycle's start, as for the other models.
    pub(crate) fn refit_members(
        &mut self,
        seen: u64,
        every: usize,
        history: &mut History,
        until: u64,
    ) {
        let Some((due, start)) = due_members(seen, every) else {
            return;
        };
        if start {
            history.rebound();
        }
        let full = history.is_full();
        let values = history.contiguous();
        for m in (0..MEMBERS).filter(|&m| due[m]) {
            let later = later_refits(seen, until, every, REFIT_PHASES[m] * every / 4);
            self.member_mut(m).refit_ahead(values, later, full);
        }
    }

    /// Each member's refit offset in the cycle of `every` samples and how many refits in a row
    /// settle it ([`Member::refits_to_settle`]), for a catch-up's leap.
    pub(crate) fn refit_plan(
        &self,
        every: usize,
        window: usize,
    ) -> [(usize, Option<u64>); MEMBERS] {
        std::array::from_fn(|m| {
            (
                REFIT_PHASES[m] * every / 4,
                self.member(m).refits_to_settle(window),
            )
        })
    }

    /// A catch-up leapt from `from` samples to `to`: each member passes its refits in between.
    pub(crate) fn pass_refits(&mut self, from: u64, to: u64, every: usize) {
        for (m, phase) in REFIT_PHASES.iter().enumerate() {
            let count = later_refits(from, to, every, phase * every / 4);
            self.member_mut(m).pass_refits(count);
        }
    }

    /// The members take the next value, without the blend scoring their pending forecasts: a
    /// catch-up skips the blend until its last stretch ([`SeriesModel::catch_up`]).
    pub(crate) fn observe_members(&mut self, value: f64, history: &History) {
        self.ewma.observe(value, history);
        self.holt.observe(value, history);
        self.hw.observe(value, history);
        self.ar.observe(value, history);
        self.median.observe(value, history);
    }

    /// Drops the forecasts awaiting their targets: the samples they were made for will not be
    /// scored in order (a gap, or a catch-up that skips the blend).
    pub(crate) fn forget_pending(&mut self) {
        self.pending.fill(f64::NAN);
    }

    #[cfg(test)]
    pub(crate) fn holt_winters(&self) -> &HoltWinters {
        &self.hw
    }

    pub(crate) fn season(&self) -> Option<usize> {
        self.hw.period()
    }

    pub(crate) fn set_season_candidates(&mut self, candidates: [usize; 6]) {
        self.hw.set_candidates(candidates);
    }

    /// Member weights at bucket `bucket`, summing to 1; equal until every member has an error.
    fn bucket_weights(&self, bucket: usize) -> [f64; MEMBERS] {
        let mut errors = [0.0; MEMBERS];
        for (m, error) in errors.iter_mut().enumerate() {
            match self.absolute[m * BUCKETS.len() + bucket].get() {
                Some(e) if e.is_finite() => *error = e,
                _ => return [1.0 / MEMBERS as f64; MEMBERS],
            }
        }
        let largest = errors.iter().copied().fold(0.0, f64::max);
        let smallest = errors.iter().copied().fold(f64::INFINITY, f64::min);
        // A member with no error at all (a constant series) takes everything, without dividing
        // by zero.
        let floor = smallest.max(1e-12 * largest).max(f64::MIN_POSITIVE);
        let mut weights = errors.map(|e| weight_of(-SHARPNESS * (e.max(floor) / floor - 1.0)));
        let total: f64 = weights.iter().sum();
        for w in &mut weights {
            *w /= total;
        }
        weights
    }

    pub(crate) fn weights(&self, h: usize) -> Vec<(ModelKind, f64)> {
        KINDS
            .iter()
            .copied()
            .zip(self.bucket_weights(bucket_of(h)))
            .collect()
    }

    /// Each member's forecasts at every bucket, members in [`KINDS`] order.
    #[cfg(test)]
    pub(crate) fn members_forecasts(&self, history: &History) -> [[f64; BUCKETS.len()]; MEMBERS] {
        self.members_forecasts_at(&BUCKETS, history)
    }

    /// Each member's forecasts at `horizons` (at most [`BUCKETS`]' count), members in [`KINDS`]
    /// order, the first `horizons.len()` of each row. The members are called by their types,
    /// not through `dyn Member`: this runs at every sample, and static calls let the small ones
    /// inline.
    fn members_forecasts_at(
        &self,
        horizons: &[usize],
        history: &History,
    ) -> [[f64; BUCKETS.len()]; MEMBERS] {
        fn at<M: Member>(
            member: &M,
            horizons: &[usize],
            history: &History,
        ) -> [f64; BUCKETS.len()] {
            let mut forecasts = [0.0; BUCKETS.len()];
            member.forecasts_at(horizons, history, &mut forecasts[..horizons.len()]);
            forecasts
        }
        [
            at(&self.ewma, horizons, history),
            at(&self.holt, horizons, history),
            at(&self.hw, horizons, history),
            at(&self.ar, horizons, history),
            at(&self.median, horizons, history),
        ]
    }

    /// Tracks only the buckets that forecasts at `horizons` read (`mean_over` reads the bucket of
    /// half its horizon, the others that of their own), once the series is no longer young: a
    /// series published at one horizon pays for one bucket's forecasts and scores, not five.
    /// The forecasts at those horizons are what they are with every bucket tracked, to the bit
    /// (each bucket's errors are its own).
    ///
    /// The focus only grows: a bucket once read stays tracked. The horizon in steps follows the
    /// interval's estimate (and a model taken back after a change of rate, or one turning coarse,
    /// sees another step), so a horizon near a bucket's edge may cross it; dropped at each
    /// crossing, the bucket would lose its pending forecasts every time and its means could
    /// freeze while read. A bucket that enters the focus after the series' youth starts from
    /// the means it kept and is scored from `b` samples on: forecasts there are the unfocused
    /// model's to the bit only for the buckets in focus since the youth ended.
    pub(crate) fn focus(&mut self, horizons: &[usize]) {
        let focus = self.focus.get_or_insert([false; BUCKETS.len()]);
        // The one-step bucket always: a sigma past the band forecasts are held to is capped by
        // the one-step sigma (`SeriesModel::capped_sigma`), at any horizon.
        focus[0] = true;
        for &h in horizons {
            let h = h.max(1);
            focus[bucket_of(h)] = true;
            focus[bucket_of(h.div_ceil(2))] = true;
        }
    }

    /// Records each member's forecasts from the newest sample at the buckets tracked, to be
    /// scored when they come due; first drops the buckets out of focus.
    pub(crate) fn settle(&mut self, history: &History) {
        self.settled += 1;
        let young = self.settled <= YOUNG_SETTLES;
        let mut horizons = [0; BUCKETS.len()];
        let mut which = [0; BUCKETS.len()];
        let mut count = 0;
        for bucket in 0..BUCKETS.len() {
            let tracked = young || self.focus.is_none_or(|focus| focus[bucket]);
            if self.tracked[bucket] && !tracked {
                // Its recorded forecasts would be scored, and read by `recorded`, stale.
                for m in 0..MEMBERS {
                    let ring = m * SLOTS + OFFSETS[bucket];
                    self.pending[ring..ring + BUCKETS[bucket]].fill(f64::NAN);
                }
            }
            self.tracked[bucket] = tracked;
            if tracked {
                horizons[count] = BUCKETS[bucket];
                which[count] = bucket;
                count += 1;
            }
        }
        let all = self.members_forecasts_at(&horizons[..count], history);
        let band = history.band();
        for (m, forecasts) in all.iter().enumerate() {
            for (&f, &bucket) in forecasts.iter().zip(&which[..count]) {
                let slot = OFFSETS[bucket] + self.cursors[bucket];
                self.pending[m * SLOTS + slot] = band.clamp(f);
            }
        }
        for (cursor, &b) in self.cursors.iter_mut().zip(&BUCKETS) {
            *cursor += 1;
            if *cursor == b {
                *cursor = 0;
            }
        }
    }

    /// The members' forecasts `BUCKETS[bucket]` steps on from the newest sample, clamped, as
    /// [`Auto::settle`] recorded them when that sample came. Invariant: whatever changes a
    /// member's state after `settle` forgets them (a gap, a catch-up's quick stretch, a refit
    /// through the `Member` trait), and the window's range only changes within an update. Asking again would compute the
    /// same values to the bit (AR's `forecasts_at` takes the same forms or path as its
    /// `forecast`), and a rolling evaluation asks at every sample. `None` once forgotten.
    fn recorded(&self, bucket: usize) -> Option<[f64; MEMBERS]> {
        let cursor = self.cursors[bucket];
        let newest = OFFSETS[bucket] + if cursor == 0 { BUCKETS[bucket] } else { cursor } - 1;
        let recorded: [f64; MEMBERS] = std::array::from_fn(|m| self.pending[m * SLOTS + newest]);
        recorded.iter().all(|f| !f.is_nan()).then_some(recorded)
    }

    /// Per bucket, the largest absolute error that counts towards the weights: [`CEILING`]
    /// times the best member's mean error there. Unbounded until every member has an error, and
    /// while the best has none at all (a series constant so far), so that a first change counts
    /// in full and the means cannot stay stuck at zero.
    fn ceilings(&self) -> [f64; BUCKETS.len()] {
        let mut ceilings = [f64::INFINITY; BUCKETS.len()];
        for (bucket, ceiling) in ceilings.iter_mut().enumerate() {
            // An untracked bucket has nothing pending to score.
            if !self.tracked[bucket] {
                continue;
            }
            // The members are scored on the same samples, so their means share one weight: the
            // smallest mean is the smallest sum over it, one division instead of five.
            let weight = self.absolute[bucket].weight;
            let mut smallest = f64::INFINITY;
            for m in 0..MEMBERS {
                let mean = &self.absolute[m * BUCKETS.len() + bucket];
                if mean.weight != weight {
                    smallest = f64::INFINITY;
                    break;
                }
                smallest = smallest.min(mean.sum);
            }
            let smallest = smallest / weight;
            if smallest > 0.0 && smallest.is_finite() {
                *ceiling = CEILING * smallest;
            }
        }
        ceilings
    }

    /// From the squared errors at the bucket below `h`, grown like a random walk's beyond it.
    pub(crate) fn sigma(&self, h: usize) -> f64 {
        let bucket = bucket_of(h);
        self.sigma_with(h, bucket, &self.bucket_weights(bucket))
    }

    /// [`Member::mean_over`] and [`Auto::sigma`] of `h`, to the bit, with the weights worked
    /// out once where both read the same bucket (the mean's is that of `h` / 2: the same from
    /// 24 steps on, which a 10-minute horizon of 10-s samples is).
    pub(crate) fn mean_and_sigma(&self, h: usize, history: &History) -> (f64, f64) {
        let mean_bucket = bucket_of(h.div_ceil(2));
        let sigma_bucket = bucket_of(h);
        let mean_weights = self.bucket_weights(mean_bucket);
        let sigma_weights = if sigma_bucket == mean_bucket {
            mean_weights
        } else {
            self.bucket_weights(sigma_bucket)
        };
        (
            self.mean_with(h, history, &mean_weights),
            self.sigma_with(h, sigma_bucket, &sigma_weights),
        )
    }

    fn mean_with(&self, h: usize, history: &History, weights: &[f64; MEMBERS]) -> f64 {
        let means = [
            self.ewma.mean_over(h, history),
            self.holt.mean_over(h, history),
            self.hw.mean_over(h, history),
            self.ar.mean_over(h, history),
            self.median.mean_over(h, history),
        ];
        let band = history.band();
        (0..MEMBERS)
            .map(|m| weights[m] * band.clamp(means[m]))
            .sum()
    }

    fn sigma_with(&self, h: usize, bucket: usize, weights: &[f64; MEMBERS]) -> f64 {
        let mut variance = 0.0;
        for (m, w) in weights.iter().enumerate() {
            let Some(mse) = self.squared[m * BUCKETS.len() + bucket].get() else {
                return 0.0;
            };
            variance += w * mse;
        }
        (variance * h as f64 / BUCKETS[bucket] as f64).sqrt()
    }
}

impl Member for Auto {
    fn observe(&mut self, value: f64, history: &History) {
        let ceilings = self.ceilings();
        for m in 0..MEMBERS {
            for (bucket, (&offset, &cursor)) in OFFSETS.iter().zip(&self.cursors).enumerate() {
                if !self.tracked[bucket] {
                    continue;
                }
                let forecast = self.pending[m * SLOTS + offset + cursor];
                if forecast.is_finite() {
                    let error = value - forecast;
                    let k = m * BUCKETS.len() + bucket;
                    self.absolute[k].add(error.abs().min(ceilings[bucket]), ERROR_DECAY);
                    self.squared[k].add(error * error, ERROR_DECAY);
                }
            }
        }
        // Scoring reads only the pending forecasts, which no member's observe touches, so the
        // members may observe after all are scored; by their types, as in `members_forecasts`.
        self.observe_members(value, history);
    }

    fn refit(&mut self, values: &[f64]) {
        for m in 0..MEMBERS {
            self.member_mut(m).refit(values);
        }
        // The members changed after `settle` recorded their forecasts ([`Auto::recorded`]).
        self.forget_pending();
    }

    fn forecast(&self, h: usize, history: &History) -> f64 {
        let bucket = bucket_of(h);
        let weights = self.bucket_weights(bucket);
        if BUCKETS[bucket] == h {
            if let Some(recorded) = self.recorded(bucket) {
                return (0..MEMBERS).map(|m| weights[m] * recorded[m]).sum();
            }
        }
        (0..MEMBERS)
            .map(|m| weights[m] * history.clamp(self.member(m).forecast(h, history)))
            .sum()
    }

    fn mean_over(&self, h: usize, history: &History) -> f64 {
        // The mean over 1..=h is dominated by the middle of the run.
        self.mean_with(h, history, &self.bucket_weights(bucket_of(h.div_ceil(2))))
    }

    fn variance_factor(&self, h: usize) -> f64 {
        let weights = self.bucket_weights(bucket_of(h));
        (0..MEMBERS)
            .map(|m| weights[m] * self.member(m).variance_factor(h))
            .sum()
    }

    fn gap(&mut self, steps: u64) {
        for m in 0..MEMBERS {
            self.member_mut(m).gap(steps);
        }
        // Forecasts made before the gap would be scored against the wrong steps.
        self.forget_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{seasonal, Noise};
    use super::super::{Core, ModelConfig, ModelKind, SeriesModel};
    use super::{due_members, weight_of, BUCKETS, CEILING, MEMBERS};

    /// Mean absolute h-step error of each kind over the last `scored` steps of `series`.
    fn errors(series: &[f64], h: usize, scored: usize) -> Vec<(ModelKind, f64)> {
        ModelKind::ALL
            .iter()
            .map(|&kind| {
                let mut model = SeriesModel::new(&ModelConfig::new(kind));
                let mut total = 0.0;
                let start = series.len() - scored;
                for (t, &y) in series.iter().enumerate() {
                    if t >= start && t + h <= series.len() {
                        total += (series[t + h - 1] - model.forecast(h)).abs();
                    }
                    model.update(y);
                }
                (kind, total / (scored - h + 1) as f64)
            })
            .collect()
    }

    fn auto_error(scores: &[(ModelKind, f64)]) -> f64 {
        scores
            .iter()
            .find(|(k, _)| *k == ModelKind::Auto)
            .map_or(f64::INFINITY, |&(_, e)| e)
    }

    #[test]
    fn tracks_holt_winters_on_a_noisy_seasonal_series() {
        let mut noise = Noise::new(21);
        let series: Vec<f64> = (0..3000)
            .map(|t| seasonal(t, 48) + 2.0 * noise.next())
            .collect();
        for h in [1, 6, 12] {
            let scores = errors(&series, h, 1000);
            let best = scores
                .iter()
                .filter(|(k, _)| *k != ModelKind::Auto)
                .map(|&(_, e)| e)
                .fold(f64::INFINITY, f64::min);
            let auto = auto_error(&scores);
            assert!(auto <= 1.1 * best, "h={h}: {scores:?}");
        }
    }

    #[test]
    fn tracks_the_mean_reverting_member_on_an_ar_series() {
        // An AR(1) around 50: naive-like members overshoot at long horizons, AR does not.
        let mut noise = Noise::new(22);
        let mut y = 50.0;
        let series: Vec<f64> = (0..3000)
            .map(|_| {
                y = 50.0 + 0.8 * (y - 50.0) + 5.0 * noise.next();
                y
            })
            .collect();
        let scores = errors(&series, 12, 1000);
        let best = scores
            .iter()
            .filter(|(k, _)| *k != ModelKind::Auto)
            .map(|&(_, e)| e)
            .fold(f64::INFINITY, f64::min);
        assert!(auto_error(&scores) <= 1.05 * best, "{scores:?}");
    }

    #[test]
    fn weights_favour_the_exact_member_and_sum_to_one() {
        let mut model = SeriesModel::new(&ModelConfig::new(ModelKind::Auto));
        for t in 0..1500 {
            model.update(seasonal(t, 24));
        }
        let weights = model.weights(6);
        let total: f64 = weights.iter().map(|(_, w)| w).sum();
        assert!((total - 1.0).abs() < 1e-9);
        let best =
            weights.iter().copied().fold(
                (ModelKind::Ewma, -1.0),
                |a, b| if b.1 > a.1 { b } else { a },
            );
        assert!(
            matches!(best.0, ModelKind::HoltWinters | ModelKind::Ar),
            "{weights:?}"
        );
        assert!((model.forecast(6) - seasonal(1500 + 5, 24)).abs() < 0.5);
    }

    #[test]
    fn ceiling_is_a_multiple_of_the_best_error_and_absent_while_every_member_is_exact() {
        let mut model = SeriesModel::new(&ModelConfig::new(ModelKind::Auto));
        for _ in 0..100 {
            model.update(3.0);
        }
        let Core::Auto(auto) = &model.core else {
            unreachable!()
        };
        assert!(auto.ceilings().iter().all(|c| c.is_infinite()));
        let mut noise = Noise::new(24);
        for _ in 0..600 {
            model.update(3.0 + noise.next());
        }
        let Core::Auto(auto) = &model.core else {
            unreachable!()
        };
        let ceilings = auto.ceilings();
        for (bucket, ceiling) in ceilings.iter().enumerate() {
            let best = (0..MEMBERS)
                .map(|m| {
                    auto.absolute[m * BUCKETS.len() + bucket]
                        .get()
                        .expect("every member has an error")
                })
                .fold(f64::INFINITY, f64::min);
            assert!((ceiling - CEILING * best).abs() < 1e-12, "{ceilings:?}");
        }
    }

    #[test]
    fn a_short_spike_in_an_idle_series_does_not_hand_the_weights_to_its_followers() {
        // Bitbrains' VM 2: zeros with a lone blip long before, then two rising samples. Every
        // member misses the first; EWMA and Holt miss the second by less, having followed the
        // first, and without a ceiling they took the weights and forecast the spike to go on.
        let mut model = SeriesModel::new(&ModelConfig::new(ModelKind::Auto));
        for t in 0..3000 {
            model.update(if t == 1000 { 0.2 } else { 0.0 });
        }
        model.update(0.5);
        model.update(1.7);
        assert!(model.forecast(1) < 0.05, "{}", model.forecast(1));
        model.update(0.0);
        assert!(model.forecast(1) < 0.05, "{}", model.forecast(1));
    }

    #[test]
    fn weights_skip_only_exponentials_that_are_exact() {
        // Both edges, and past the lower one (where the call is skipped) as far as -inf.
        for x in [
            0.0,
            -0.0,
            -745.0,
            -745.2,
            -746.0,
            -746.000001,
            -800.0,
            -1e300,
            f64::NEG_INFINITY,
            -1e-300,
            -20.0,
        ] {
            assert_eq!(weight_of(x).to_bits(), x.exp().to_bits(), "exp({x})");
        }
        assert!(weight_of(f64::NAN).is_nan());
    }

    #[test]
    fn young_series_refit_every_member_at_powers_of_two_then_holt_half_a_cycle_apart() {
        let all = [true; MEMBERS];
        assert_eq!(due_members(8, 288), None);
        assert_eq!(due_members(16, 288), Some((all, true)));
        assert_eq!(due_members(256, 288), Some((all, true)));
        assert_eq!(due_members(257, 288), None);
        let rest = [true, false, true, true, true];
        let holt = [false, true, false, false, false];
        for cycle in [1, 2, 7] {
            assert_eq!(due_members(cycle * 288, 288), Some((rest, true)));
            assert_eq!(due_members(cycle * 288 + 144, 288), Some((holt, false)));
            assert_eq!(due_members(cycle * 288 + 1, 288), None);
        }
        // Refits at every sample: every member, every time.
        assert_eq!(due_members(100, 1), Some((all, true)));
    }

    /// Both models take `y`; their mean and sigma over 60 steps agree to the bit.
    fn update_both_and_compare_at_60(
        every: &mut SeriesModel,
        focused: &mut SeriesModel,
        y: f64,
        t: usize,
    ) {
        every.update(y);
        focused.update(y);
        let (mean, sigma) = every.mean_and_sigma(60);
        let (focused_mean, focused_sigma) = focused.mean_and_sigma(60);
        assert_eq!(mean.to_bits(), focused_mean.to_bits(), "t {t}");
        assert_eq!(sigma.to_bits(), focused_sigma.to_bits(), "t {t}");
    }

    /// Focused on a horizon, the model publishes there what it does unfocused, to the bit, and
    /// past its youth scores only the buckets that horizon (and the one-step sigma) reads.
    #[test]
    fn a_focused_model_forecasts_its_horizon_to_the_bit_and_tracks_only_its_buckets() {
        let mut noise = Noise::new(25);
        let mut every = SeriesModel::new(&ModelConfig::new(ModelKind::Auto));
        let mut focused = every.clone();
        focused.focus(&[60]);
        for t in 0..3000 {
            let spike = if t % 500 == 250 { 80.0 } else { 0.0 };
            update_both_and_compare_at_60(
                &mut every,
                &mut focused,
                seasonal(t, 48) + 3.0 * noise.next() + spike,
                t,
            );
            assert_eq!(
                every.sigma(1).to_bits(),
                focused.sigma(1).to_bits(),
                "t {t}"
            );
        }
        {
            let (Core::Auto(every), Core::Auto(focused)) = (&every.core, &focused.core) else {
                unreachable!()
            };
            assert_eq!(every.tracked, [true; BUCKETS.len()]);
            assert_eq!(focused.tracked, [true, false, false, false, true]);
        }
        // The horizon crosses a bucket's edge and comes back (an interval estimate drifting):
        // the focus grows, and the first horizon's buckets, never dropped, keep their bits.
        for t in 3000..3200 {
            focused.focus(&[if t % 7 < 3 { 20 } else { 60 }]);
            update_both_and_compare_at_60(
                &mut every,
                &mut focused,
                seasonal(t, 48) + 3.0 * noise.next(),
                t,
            );
        }
        let Core::Auto(focused) = &focused.core else {
            unreachable!()
        };
        assert_eq!(focused.tracked, [true, false, true, true, true]);
    }

    #[test]
    fn step_change_is_followed() {
        let mut model = SeriesModel::new(&ModelConfig::new(ModelKind::Auto));
        let mut noise = Noise::new(23);
        for _ in 0..500 {
            model.update(10.0 + 0.1 * noise.next());
        }
        for _ in 0..300 {
            model.update(30.0 + 0.1 * noise.next());
        }
        assert!(
            (model.forecast(6) - 30.0).abs() < 0.5,
            "{}",
            model.forecast(6)
        );
        assert!(
            model.sigma(6) > 0.0 && model.sigma(6) < 2.0,
            "{}",
            model.sigma(6)
        );
    }

    #[test]
    fn linear_trend_is_followed() {
        let mut model = SeriesModel::new(&ModelConfig::new(ModelKind::Auto));
        for t in 0..1000 {
            model.update(0.1 * t as f64);
        }
        assert!(
            (model.forecast(1) - 100.0).abs() < 0.2,
            "{}",
            model.forecast(1)
        );
    }
}
