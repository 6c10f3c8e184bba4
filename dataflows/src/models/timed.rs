//! Event time onto steps: the wrapper the dataflow runs per series.
//!
//! Real traces are sampled irregularly (Alibaba's machines report every 10 to 60 s, with gaps of
//! hours), but the models work in steps. The sampling interval is estimated from the gaps that
//! look like sampling; a few missing steps are filled by linear interpolation (the models stay
//! aligned with the clock and nothing is extrapolated); longer gaps advance the models' clocks
//! without samples, dropping their trends and keeping the season's phase on time.
//!
//! Dynamic granularity in time: a series sampled far finer than its forecasts need (1-ms samples
//! for a 10-minute horizon are 600,000 steps ahead, over one second of history) is modelled on
//! the means of fixed buckets of event time instead ([`TimedModel::for_series`]'s `min_step_ms`),
//! so the window spans the horizon and the models extrapolate only as far as they have seen.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{round_half_away, EwMean, ModelConfig, SeriesModel};
use crate::types::Time;

/// Horizons a series' owner may focus it on ([`TimedModel::focus_on`]).
pub const MAX_FOCUS: usize = 4;

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
    /// What the model was built from (its interval left to the estimate), to build it afresh
    /// when the sampling rate changes at once ([`TimedModel::restart_model`]).
    config: ModelConfig,
    last_time: Option<Time>,
    last_value: f64,
    /// The time of the newest sample that was a step (or went into a bucket): the next step is
    /// counted from it. Later than `last_time` only never; earlier where stray samples came
    /// after it (see [`TimedModel::is_stray`]).
    step_time: Option<Time>,
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
    /// The coarsest step the series needs: samples finer than a quarter of it are modelled as
    /// bucket means of this length (0: never).
    min_step_ms: f64,
    /// Whether samples are bucketed into steps of `min_step_ms`.
    coarse: bool,
    /// Samples of the open bucket while coarse.
    bucket: Option<Bucket>,
    /// The last bucket the model took (its index and mean): where the next one's gap counts from.
    fed: Option<(i64, f64)>,
    /// Gaps off the rate in a row (over twice the interval, or once the estimate is settled
    /// under a quarter of it) and whether they are the longer: a sampling rate that changed
    /// at once (a collector reconfigured from 15 s to 5 min) is learnt once most of
    /// [`RELEARN_AFTER`] of them in a row agree (see [`typical_gap`]), where a lone long gap
    /// is only a gap and a lone short one a stray sample.
    off_gaps: u64,
    off_slower: bool,
    /// The run's latest gaps, [`RELEARN_AFTER`] at most, in a ring (`off_gaps` counts them):
    /// a run is a new rate when most of its latest gaps agree (see [`typical_gap`]).
    #[serde(default)]
    off_recent: [f64; RUN_GAPS],
    /// Short gaps (under a quarter of the slower run's mean) since the run's last gap, up to
    /// [`RETRIES_BETWEEN`]: a sample followed by its retries at every step (one 2 s later, or
    /// two 1 and 2 s later, every minute, from a young estimate of 1 or 2 s) is a slower rate,
    /// not a run broken at every other gap.
    off_retries: u8,
    /// Whether the run of slower gaps held retries at all.
    off_retried: bool,
    /// How far ahead, in milliseconds, its owner reads forecasts (at most `MAX_FOCUS`, 4); empty:
    /// at any horizon. `auto` then tracks the errors of the horizons these are in steps only
    /// ([`SeriesModel::focus`]).
    #[serde(default)]
    focus_ms: Vec<Time>,
    /// The model the last change of rate put aside, taken back if the rate returns to its step
    /// (a collector that alternates between two rates would otherwise start a fresh model at
    /// every alternation, and never have one older than a phase).
    shelved: Option<Box<Shelved>>,
}

/// A model put aside when its step changed with the rate: the step it was built for, and its
/// last step (time and value), from which its clock goes on if it is taken back.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Shelved {
    model: SeriesModel,
    step_ms: f64,
    time: Time,
    value: f64,
    /// The series' samples since it was put aside (the last [`KEPT_SAMPLES`]): taken back, it
    /// steps through them at its own step, so that it comes back at the series' current level
    /// (across the other rate's turn as a gap, it came back at its old level and lagged a
    /// jump that happened meanwhile by minutes).
    since: VecDeque<(Time, f64)>,
}

/// Samples kept for a model put aside to step through when it is taken back: enough for its
/// level and trend, 1 KiB a series at most.
const KEPT_SAMPLES: usize = 64;

/// In a replay, a sample at least this fraction of a step after the last replayed step is a
/// step; a closer one is passed over, so that faster samples replayed into a slower model make
/// one step per step of it (at 0.5 or 0.75, 10-s samples made a 5-minute model's steps short
/// and its forecasts worse; 0.9 and 1 did alike, 0.9 leaves room for jitter).
const REPLAY_STEP: f64 = 0.9;

/// Steps within this factor of each other are one rate: a model put aside at one is taken back
/// at the other. Two rates the relearning tells apart differ by more than twice.
const SAME_RATE: f64 = 1.5;

/// Gaps in a row that take back a model put aside at their step.
const RECALL_AFTER: u64 = 4;

/// The samples of one bucket of event time, not yet a step of the model.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Bucket {
    index: i64,
    sum: f64,
    count: u64,
}

/// The coarsest step bucketing makes: it is for samples far finer than the horizon needs (a
/// 1-ms or 10-s series forecast 10 minutes ahead), where a step per sample buys nothing. Past
/// it, a long horizon (days) would make buckets so long that the model lags the series by most
/// of one.
pub const MAX_MIN_STEP_MS: f64 = 60_000.0;

/// Coarse steps begin where samples come at least this many to a step of `min_step_ms` (so a
/// bucket's count varies by a small fraction of it with jitter), and end where they come fewer
/// than half as often.
const COARSEN_FROM: f64 = 4.0;
const REFINE_FROM: f64 = 2.0;

/// Gaps off the rate in a row, most of them agreeing ([`AGREEING`]), that make the new
/// interval: a sampling rate that changed at once. An estimate that only took gaps up to twice
/// itself never learnt a rate that dropped (it followed gradual slowing only), and every sample
/// was then a gap of many steps, dropping the models' trends at each; one that took any gap
/// under a quarter of itself as the new rate was thrown by one stray sample (a retry 2 s after
/// a 60-s sample made the step 2 s, and every sample after it a gap). 16 is more than an
/// outage's stragglers and, at a 5-minute rate, an hour and twenty minutes of it.
const RELEARN_AFTER: u64 = 16;

/// Gaps of a run off the rate kept to judge it: the most that make a new rate.
const RUN_GAPS: usize = RELEARN_AFTER as usize;

/// A run's gaps agree with their median when within this factor of it, and the run is a new
/// rate when at least [`AGREEING`] of them do. Regular sampling at a new rate agrees to a few
/// percent; samples spaced as a Poisson process (mean gap 10 s) fall within a factor of three
/// of their median nine times in ten, where within a factor of two only six: an estimate
/// thrown far below their typical gap (a young one takes any gap under a quarter of itself)
/// then never found its way back, since every later gap was longer and no sixteen in a row
/// agreed. Outages alternating with other gaps (a minute, then two hours) agree half the
/// time at most, and stay outages.
const AGREE_WITHIN: f64 = 3.0;
const AGREEING: f64 = 0.75;

/// Retry-like gaps a slower run of gaps may have between each two of its gaps (see
/// `TimedModel::off_retries`).
const RETRIES_BETWEEN: u8 = 3;

/// Relative change of the interval estimate that is passed on to the model (its seasons in
/// steps): jitter in the estimate is far below it.
const RETELL: f64 = 0.01;

impl TimedModel {
    /// A model that estimates the sampling interval from the samples.
    pub fn new(config: &ModelConfig) -> TimedModel {
        TimedModel::around(SeriesModel::new(config), config)
    }

    fn around(model: SeriesModel, config: &ModelConfig) -> TimedModel {
        TimedModel {
            model,
            config: ModelConfig {
                interval_ms: None,
                ..*config
            },
            last_time: None,
            last_value: 0.0,
            step_time: None,
            interval_ms: 0.0,
            gaps: EwMean::default(),
            fixed_interval: false,
            max_fill: DEFAULT_MAX_FILL,
            told_interval_ms: 0.0,
            min_step_ms: 0.0,
            coarse: false,
            bucket: None,
            fed: None,
            off_gaps: 0,
            off_slower: false,
            off_recent: [0.0; RUN_GAPS],
            off_retries: 0,
            off_retried: false,
            focus_ms: Vec::new(),
            shelved: None,
        }
    }

    /// The model of one series of the dataflow: its step is `interval_ms` when that is known,
    /// else estimated, and samples finer than a quarter of `min_step_ms` are bucketed into
    /// steps of it (see the module's notes; 0 keeps every sample a step).
    pub fn for_series(
        config: &ModelConfig,
        interval_ms: Option<Time>,
        min_step_ms: f64,
    ) -> TimedModel {
        let min_step_ms = if min_step_ms.is_finite() && min_step_ms >= 1.0 {
            min_step_ms.min(MAX_MIN_STEP_MS)
        } else {
            0.0
        };
        let model = match interval_ms {
            Some(interval) if coarsens(interval.max(1) as f64, min_step_ms) => {
                // Known to be fine: the model is built for (and its window sized by) the
                // coarse step.
                let coarse = SeriesModel::new(&ModelConfig {
                    interval_ms: Some(min_step_ms),
                    ..*config
                });
                TimedModel {
                    interval_ms: interval.max(1) as f64,
                    fixed_interval: true,
                    told_interval_ms: min_step_ms,
                    coarse: true,
                    ..TimedModel::around(coarse, config)
                }
            }
            Some(interval) => TimedModel::with_interval(config, interval),
            None => TimedModel::new(config),
        };
        TimedModel {
            min_step_ms,
            ..model
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

    /// Takes one sample. Times should not decrease. A sample under a quarter of a settled (or
    /// given) interval after the last step, or at or before the previous one's time, is the
    /// latest value but no step (while coarse, it joins the open bucket); before the interval
    /// settles, each sample is a step. Non-finite values are ignored.
    pub fn update(&mut self, time: Time, value: f64) {
        self.update_steps(time, value);
    }

    /// [`Self::update`], saying which (time, value) became the model's steps: the sample, or
    /// while coarse the bucket it closed (its start and mean), or none while it joined the open
    /// bucket (or was held as the first); a held first sample or a bucket closed as the steps
    /// turn fine comes before the sample. What follows a series step by step (its anomaly
    /// scorer, whose false alarms are per step) sees the granularity the model does.
    pub fn update_steps(&mut self, time: Time, value: f64) -> NewSteps {
        let steps = self.take_sample(time, value);
        if value.is_finite() {
            if let Some(shelved) = &mut self.shelved {
                keep_sample(&mut shelved.since, time, value);
            }
        }
        if !self.focus_ms.is_empty() {
            // In steps of the current estimate (and of whichever model the sample left
            // running): it takes effect from the next sample.
            let mut horizons = [0; MAX_FOCUS];
            for (h, &ms) in horizons.iter_mut().zip(&self.focus_ms) {
                *h = self.steps(ms);
            }
            self.model.focus(&horizons[..self.focus_ms.len()]);
        }
        steps
    }

    /// Reads forecasts only `horizons_ms` ahead from now on (the first `MAX_FOCUS`, 4, of them):
    /// the forecasts there stay what they would be, and `auto` stops scoring the horizons no
    /// one reads once the series is mature (see [`SeriesModel::focus`]).
    pub fn focus_on(&mut self, horizons_ms: &[Time]) {
        self.focus_ms = horizons_ms.iter().copied().take(MAX_FOCUS).collect();
    }

    /// [`Self::update_steps`] but for keeping the sample for a model put aside.
    fn take_sample(&mut self, time: Time, value: f64) -> NewSteps {
        let mut steps = NewSteps::default();
        if !value.is_finite() {
            return steps;
        }
        let Some(last) = self.last_time else {
            if self.min_step_ms > 0.0 {
                // Held until the next sample says whether the series is fine enough to be
                // bucketed: its first value must not stand as a step among bucket means.
                self.take_into_bucket(time, value, &mut steps);
            } else {
                self.model.update(value);
                steps.push(time, value);
            }
            self.last_time = Some(time);
            self.step_time = Some(time);
            self.last_value = value;
            return steps;
        };
        let gap = time.saturating_sub(last);
        // Counted from the last step: stray samples since (retries) are no steps of the clock.
        let since = |step_time: Option<Time>| {
            step_time.map_or(gap, |step| time.saturating_sub(step).max(gap))
        };
        let mut since_step = since(self.step_time);
        if gap > 0 {
            // A short gap is measured from the sample before (a run of them is a faster rate),
            // any other from the last step, so that retries after a sample do not shorten the
            // gap to the next one and with it the interval.
            let short = (gap as f64) < 0.25 * self.interval_ms;
            let learnt_from = if short { gap } else { since_step };
            self.learn_interval(learnt_from as f64, &mut steps);
            if steps.rate_changed {
                // A model restarted or taken back counts from the last sample.
                since_step = since(self.step_time);
            }
        } else if self.interval_ms == 0.0 {
            if let Some(held) = &mut self.bucket {
                // More samples at the first instant: still nothing says whether to bucket, and
                // each one a step would put raw values among a fine series' bucket means.
                held.sum += value;
                held.count += 1;
                self.last_value = value;
                return steps;
            }
        }
        if self.coarse {
            self.take_into_bucket(time, value, &mut steps);
        } else if self.is_stray(since_step) {
            // A retry, or a duplicate, a fraction of a step after the last step: a step of its
            // own would run the model's clock ahead of the series' (two retries a minute made
            // three steps of every minute). It is the latest value, not a step; next to a
            // first sample still held (a known interval, no step yet), it joins that.
            if let Some(held) = &mut self.bucket {
                held.sum += value;
                held.count += 1;
            } else {
                self.last_time = Some(time.max(last));
            }
            self.last_value = value;
            return steps;
        } else {
            if let Some(first) = self.bucket.take() {
                // Not bucketed after all: the held first sample is the first step.
                let mean = first.sum / first.count as f64;
                self.model.update(mean);
                steps.push(last, mean);
            }
            let count = self.steps_in(since_step);
            self.step_after(self.last_value, count, value);
            steps.push(time, value);
        }
        self.last_time = Some(time.max(last));
        self.step_time = self.last_time;
        self.last_value = value;
        steps
    }

    /// Whether a sample `since_step` after the last step is a stray: under a quarter of an
    /// interval that is known or settled, and not (yet) a faster rate (a run of such gaps
    /// that agree is learnt as one, after which they are steps again).
    fn is_stray(&self, since_step: Time) -> bool {
        let settled = self.fixed_interval || self.gaps.weight >= RELEARN_AFTER as f64;
        settled && self.interval_ms > 0.0 && (since_step as f64) < 0.25 * self.interval_ms
    }

    fn learn_interval(&mut self, gap: f64, steps: &mut NewSteps) {
        if self.fixed_interval {
            return;
        }
        let interval = self.interval_ms;
        let settled = self.gaps.weight >= RELEARN_AFTER as f64;
        let slower = gap > 2.0 * interval;
        if interval > 0.0 && (slower || (settled && gap < 0.25 * interval)) {
            if !slower && self.count_retry(gap) {
                // A retry within a slower run (a settled 10-s series gone to 60-s samples, each
                // with a retry 2 s later) is part of that run, not a faster gap that ends it.
                return;
            }
            // Whether the run held retries: then the old rate is theirs (a young estimate of
            // 1 s, from retries after each sample), and its model is not worth keeping.
            let retried = self.off_retried;
            let Some(rate) = self.rate_change(gap, slower) else {
                return;
            };
            self.off_retried = false;
            // The rate changed: the gaps in a row are the new interval, as settled as they are
            // many, so that one stray gap after them is not taken for another change.
            let weight = RELEARN_AFTER as f64;
            self.gaps = EwMean {
                sum: rate * weight,
                weight,
            };
            let step = self.step_ms();
            let was_coarse = self.coarse;
            self.interval_ms = rate;
            steps.rate_changed = true;
            self.after_new_interval(steps);
            if self.step_ms() != step {
                // Only a model of a settled rate of samples is put aside: one of retries' (1 s
                // apart after each sample) would be taken back by a burst of four of them.
                let unkept = was_coarse || !settled || retried;
                (steps.shelved, steps.recalled) = self.restart_model(step, unkept);
            }
            return;
        }
        if interval == 0.0 || gap < 0.25 * interval {
            // The first gap, or a young estimate's first gaps were gaps, not the rate.
            self.gaps = EwMean::default();
        }
        // Up to three retry-like gaps between a slower run's gaps leave the run standing;
        // another on-rate gap ends it.
        if !self.count_retry(gap) {
            self.off_gaps = 0;
        }
        self.gaps.add(gap, INTERVAL_DECAY);
        self.interval_ms = self.gaps.get().unwrap_or(gap);
        self.after_new_interval(steps);
    }

    /// Counts `gap` as a retry within a run of slower gaps, if it is one: under a quarter of
    /// their mean, and no more than [`RETRIES_BETWEEN`] since the run's last gap.
    fn count_retry(&mut self, gap: f64) -> bool {
        let retry = self.off_gaps > 0
            && self.off_slower
            && self.off_retries < RETRIES_BETWEEN
            && gap < 0.25 * self.off_mean();
        if retry {
            self.off_retries += 1;
            self.off_retried = true;
        }
        retry
    }

    /// Counts a gap off the rate: `Some(the new interval)` once the run's latest
    /// [`RELEARN_AFTER`] gaps in a row, all longer or all shorter, mostly agree (see
    /// [`typical_gap`]), or its latest [`RECALL_AFTER`] do at the step of the model put aside.
    fn rate_change(&mut self, gap: f64, slower: bool) -> Option<f64> {
        if self.off_gaps == 0 || slower != self.off_slower {
            self.off_gaps = 0;
            self.off_slower = slower;
            self.off_retried = false;
        }
        self.off_retries = 0;
        self.off_recent[self.off_gaps as usize % RUN_GAPS] = gap;
        self.off_gaps += 1;
        let recalled = self.shelved.as_ref().and_then(|shelved| {
            let rate = self.typical_latest(RECALL_AFTER as usize)?;
            same_rate(shelved.step_ms, rate).then_some(rate)
        });
        let rate = recalled.or_else(|| self.typical_latest(RUN_GAPS))?;
        self.off_gaps = 0;
        Some(rate)
    }

    /// The mean of the run's latest gaps (at most [`RUN_GAPS`]); 0 with none.
    fn off_mean(&self) -> f64 {
        let held = (self.off_gaps as usize).min(RUN_GAPS);
        if held == 0 {
            return 0.0;
        }
        self.off_recent[..held].iter().sum::<f64>() / held as f64
    }

    /// [`typical_gap`] of the run's latest `count` gaps; `None` while it has fewer.
    fn typical_latest(&self, count: usize) -> Option<f64> {
        let end = self.off_gaps as usize;
        if end < count || count > RUN_GAPS {
            return None;
        }
        let mut latest = [0.0; RUN_GAPS];
        for (slot, k) in latest.iter_mut().zip(end - count..end) {
            *slot = self.off_recent[k % RUN_GAPS];
        }
        typical_gap(&mut latest[..count])
    }

    /// The model's step changed at once: its parameters were fitted to steps of another
    /// length (an EWMA's weight for 10-s steps lags 5-minute ones by a day's refit cycle) and
    /// its window holds them, so it starts afresh at the new step, as a series sampled so from
    /// the start would. (A rate learnt gradually keeps its model: its steps changed little.)
    ///
    /// The old model is put aside (one at most, the latest), and one put aside at this step
    /// before is taken back instead of a fresh one: it steps from its last step through the
    /// series' samples since (the last [`KEPT_SAMPLES`]) to its last sample
    /// ([`TimedModel::replay`]). Only models of a step per sample are kept and taken back (a
    /// bucketed model's clock is its buckets').
    ///
    /// Returns whether the old model was put aside and whether one was taken back; `unkept`
    /// leaves it out (a bucketed model, or one of a rate never settled).
    fn restart_model(&mut self, old_step_ms: f64, unkept: bool) -> (bool, bool) {
        let step = self.step_ms();
        let recalled = match self.shelved.take() {
            Some(shelved) if !self.coarse && same_rate(shelved.step_ms, step) => Some(*shelved),
            kept => {
                self.shelved = kept;
                None
            }
        };
        let is_recall = recalled.is_some();
        let (incoming, resume_from) = match recalled {
            Some(Shelved {
                model,
                time,
                value,
                since,
                ..
            }) => (model, Some((time, value, since))),
            None => (SeriesModel::new(&self.config), None),
        };
        let outgoing = std::mem::replace(&mut self.model, incoming);
        let mut shelves = false;
        if let (false, false, Some(last)) = (unkept, outgoing.is_empty(), self.last_time) {
            self.shelved = Some(Box::new(Shelved {
                model: outgoing,
                step_ms: old_step_ms,
                // Its last step (strays since were no steps of it).
                time: self.step_time.unwrap_or(last),
                value: self.last_value,
                since: VecDeque::new(),
            }));
            shelves = true;
        }
        self.model.set_interval_ms(step);
        self.told_interval_ms = step;
        self.fed = None;
        // The model's clock starts (or goes on) at the series' last sample, strays included.
        // One taken back steps through the samples since it was put aside, at its own step
        // (a fresh model's steps begin with the sample to come: replaying the run that made
        // the rate into it was measured no better).
        self.step_time = self.last_time;
        if let Some((time, value, since)) = resume_from {
            let since = Vec::from(since);
            if let Some(stepped) = self.replay((time, value), &since) {
                self.step_time = Some(stepped);
            }
        }
        (shelves, is_recall)
    }

    /// Steps a model taken back through `samples` (in time order, the series' since it was
    /// put aside) at its step, from its last step `from`: a sample at least [`REPLAY_STEP`] of
    /// a step after the last one replayed is a step, with the steps between interpolated or
    /// passed over as a gap; a closer one is passed over. Then it steps to the series' latest
    /// sample, if that is still a step away. Returns the time of its last step, if it took one.
    fn replay(&mut self, from: (Time, f64), samples: &[(Time, f64)]) -> Option<Time> {
        let step = self.step_ms();
        // Samples further apart than the fill would each be a gap, which drops the trend (and
        // a season's phase) every time: a model of 10-s steps taken back after a turn of
        // 5-minute samples steps once across the turn instead, as across one gap.
        let apart = match (samples.first(), samples.last()) {
            (Some(first), Some(last)) if samples.len() > 1 => {
                self.steps_in(last.0.saturating_sub(first.0)) / (samples.len() as u64 - 1)
            }
            _ => 0,
        };
        let samples = if apart > self.max_fill { &[] } else { samples };
        let mut last = from;
        let mut stepped = None;
        let latest = self.last_time.map(|time| (time, self.last_value));
        for &(time, value) in samples.iter().chain(latest.as_ref()) {
            let since = time.saturating_sub(last.0);
            if time <= last.0 || (since as f64) < REPLAY_STEP * step {
                continue;
            }
            let count = self.steps_in(since);
            self.step_after(last.1, count, value);
            last = (time, value);
            stepped = Some(time);
        }
        stepped
    }

    /// The interval estimate moved: the granularity is chosen again and the model told.
    fn after_new_interval(&mut self, steps: &mut NewSteps) {
        if self.min_step_ms > 0.0 {
            self.choose_granularity(steps);
        }
        if !self.coarse
            && (self.interval_ms - self.told_interval_ms).abs() > RETELL * self.interval_ms
        {
            self.model.set_interval_ms(self.interval_ms);
            self.told_interval_ms = self.interval_ms;
        }
    }

    /// Goes coarse when samples come at least [`COARSEN_FROM`] to a `min_step_ms`, and back to
    /// a step per sample when fewer than [`REFINE_FROM`] do (the open bucket becomes a step).
    fn choose_granularity(&mut self, steps: &mut NewSteps) {
        if !self.coarse && coarsens(self.interval_ms, self.min_step_ms) {
            self.coarse = true;
            steps.rate_changed = true;
            self.fed = None;
            self.model.set_interval_ms(self.min_step_ms);
            self.told_interval_ms = self.min_step_ms;
        } else if self.coarse
            && !self.fixed_interval
            && self.interval_ms * REFINE_FROM > self.min_step_ms
        {
            if let Some(bucket) = self.bucket.take() {
                self.feed(bucket, steps);
            }
            self.coarse = false;
            steps.rate_changed = true;
            self.fed = None;
            // Told afresh below.
            self.told_interval_ms = 0.0;
        }
    }

    /// A sample while coarse: into the open bucket, or closing it (the model takes its mean)
    /// and opening the next. A sample at or before the open bucket's time joins it.
    fn take_into_bucket(&mut self, time: Time, value: f64, steps: &mut NewSteps) {
        // `as` saturates: the buckets of the most extreme times are merely wide.
        let index = (time as f64 / self.min_step_ms).floor() as i64;
        match &mut self.bucket {
            Some(open) if index <= open.index => {
                open.sum += value;
                open.count += 1;
            }
            open => {
                if let Some(closed) = open.replace(Bucket {
                    index,
                    sum: value,
                    count: 1,
                }) {
                    self.feed(closed, steps);
                }
            }
        }
    }

    /// `value` as the model's step `count` steps after the one of `from`: the steps missing in
    /// between are interpolated (up to `max_fill`) or passed over as a gap.
    fn step_after(&mut self, from: f64, count: u64, value: f64) {
        if count > 1 && count - 1 <= self.max_fill {
            for k in 1..count {
                self.model
                    .update(from + (value - from) * k as f64 / count as f64);
            }
        } else if count > 1 {
            self.model.gap(count - 1);
        }
        self.model.update(value);
    }

    /// One closed bucket into the model as a step, after the steps of any empty buckets before
    /// it (interpolated up to `max_fill`, else a gap).
    fn feed(&mut self, bucket: Bucket, steps: &mut NewSteps) {
        let mean = bucket.sum / bucket.count as f64;
        match self.fed {
            Some((index, value)) => {
                let count = bucket.index.saturating_sub(index).max(1) as u64;
                self.step_after(value, count, mean);
            }
            None => self.model.update(mean),
        }
        self.fed = Some((bucket.index, mean));
        // The bucket's start (`as` saturates for the most extreme times).
        steps.push((bucket.index as f64 * self.min_step_ms) as Time, mean);
    }

    /// Whole steps in `ms` milliseconds, at least 1.
    fn steps_in(&self, ms: Time) -> u64 {
        let step_ms = self.step_ms();
        if step_ms <= 0.0 || ms <= 0 {
            return 1;
        }
        let steps = round_half_away(ms as f64 / step_ms);
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
        match self.first_level() {
            Some(level) => level,
            None => self.model.forecast(self.steps(ahead_ms)),
        }
    }

    /// The mean forecast over the next `horizon_ms` milliseconds.
    pub fn mean_over(&self, horizon_ms: Time) -> f64 {
        match self.first_level() {
            Some(level) => level,
            None => self.model.mean_over(self.steps(horizon_ms)),
        }
    }

    /// [`Self::mean_over`] and [`Self::sigma`] of one horizon, its steps worked out once (the
    /// forecast operator asks for both at every sample).
    pub fn mean_and_sigma(&self, horizon_ms: Time) -> (f64, f64) {
        if let Some(level) = self.first_level() {
            return (level, 0.0);
        }
        let steps = self.steps(horizon_ms);
        self.model.mean_and_sigma(steps)
    }

    /// Standard deviation of the forecast error `ahead_ms` milliseconds ahead.
    pub fn sigma(&self, ahead_ms: Time) -> f64 {
        if self.first_level().is_some() {
            return 0.0;
        }
        self.model.sigma(self.steps(ahead_ms))
    }

    /// Before the model's first step, the mean of the samples held for it (the first sample,
    /// or the first bucket): what a model of one value forecasts at every horizon, with no
    /// error seen yet.
    fn first_level(&self) -> Option<f64> {
        match &self.bucket {
            Some(open) if self.model.is_empty() => Some(open.sum / open.count as f64),
            _ => None,
        }
    }

    /// The estimated (or given) sampling interval in milliseconds, once known.
    pub fn interval_ms(&self) -> Option<f64> {
        (self.interval_ms > 0.0).then_some(self.interval_ms)
    }

    /// Whether samples are bucketed into coarse steps now: then a sample that makes no step
    /// leaves every forecast as it was (the step, and so each horizon in steps, is fixed).
    pub fn is_coarse(&self) -> bool {
        self.coarse
    }

    /// The model's step in milliseconds: the coarse step while samples are bucketed, else the
    /// sampling interval (0 while unknown).
    pub fn step_ms(&self) -> f64 {
        if self.coarse {
            self.min_step_ms
        } else {
            self.interval_ms
        }
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

/// The steps one sample made (see [`TimedModel::update_steps`]): at most two.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NewSteps {
    steps: [(Time, f64); 2],
    len: usize,
    rate_changed: bool,
    shelved: bool,
    recalled: bool,
}

impl NewSteps {
    fn push(&mut self, time: Time, value: f64) {
        if let Some(slot) = self.steps.get_mut(self.len) {
            *slot = (time, value);
            self.len += 1;
        }
    }

    /// Whether the steps changed kind at once before these: the sampling rate changed
    /// abruptly and was learnt anew, or the series went from a step per sample to bucket
    /// means or back. What follows the steps' statistics (the anomaly scorer's noise scale)
    /// learnt them for the old steps.
    pub fn rate_changed(&self) -> bool {
        self.rate_changed
    }

    /// With [`Self::rate_changed`]: whether the model of the old steps was put aside, to be
    /// taken back if the rate returns (what follows the steps may keep its own state for them
    /// alongside, as the series' anomaly scorer does).
    pub fn shelved(&self) -> bool {
        self.shelved
    }

    /// With [`Self::rate_changed`]: whether the model put aside last was taken back, the rate
    /// having returned to its step (in place of a fresh one).
    pub fn recalled(&self) -> bool {
        self.recalled
    }

    /// The steps' (time, value), oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (Time, f64)> + '_ {
        self.steps[..self.len].iter().copied()
    }
}

/// Keeps `(time, value)` among the last [`KEPT_SAMPLES`] of `kept` (a sample at the time of
/// the last one replaces it, as the latest value at that instant).
fn keep_sample(kept: &mut VecDeque<(Time, f64)>, time: Time, value: f64) {
    match kept.back_mut() {
        Some(last) if last.0 >= time => {
            if last.0 == time {
                last.1 = value;
            }
        }
        _ => {
            while kept.len() >= KEPT_SAMPLES {
                kept.pop_front();
            }
            kept.push_back((time, value));
        }
    }
}

/// Whether steps of `a` and `b` milliseconds are one rate ([`SAME_RATE`]).
fn same_rate(a: f64, b: f64) -> bool {
    a > 0.0 && b > 0.0 && a.max(b) <= SAME_RATE * a.min(b)
}

/// The rate a run of gaps off the rate makes, if it makes one: at least [`AGREEING`] of them
/// within [`AGREE_WITHIN`] of their median, and then the mean of those (a stray among them,
/// such as the outage the run began with, is left out of it). `None` for no gaps. Sorts them.
fn typical_gap(gaps: &mut [f64]) -> Option<f64> {
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_unstable_by(f64::total_cmp);
    let sorted = &*gaps;
    let median = sorted[(sorted.len() - 1) / 2];
    let (count, sum) = sorted
        .iter()
        .filter(|&&gap| gap * AGREE_WITHIN >= median && gap <= AGREE_WITHIN * median)
        .fold((0usize, 0.0), |(count, sum), gap| (count + 1, sum + gap));
    (count as f64 >= AGREEING * gaps.len() as f64).then(|| sum / count as f64)
}

/// Whether samples `interval_ms` apart are fine enough to be bucketed into `min_step_ms`.
fn coarsens(interval_ms: f64, min_step_ms: f64) -> bool {
    min_step_ms > 0.0 && interval_ms > 0.0 && interval_ms * COARSEN_FROM <= min_step_ms
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

    /// `count` samples `every_ms` apart from `start`, each `value(k)`.
    fn feed(
        model: &mut TimedModel,
        start: Time,
        every_ms: Time,
        count: i64,
        mut value: impl FnMut(i64) -> f64,
    ) {
        for k in 0..count {
            model.update(start + k * every_ms, value(k));
        }
    }

    #[test]
    fn samples_coarser_than_a_quarter_of_the_minimum_step_are_modelled_one_by_one() {
        // One-second samples against a 0.6-s minimum step: every sample stays a step, and the
        // forecasts are those of a model without the minimum, to the bit.
        let config = ModelConfig::new(ModelKind::Auto);
        let mut plain = TimedModel::new(&config);
        let mut series = TimedModel::for_series(&config, None, 600_000.0 / 1008.0);
        let mut noise = Noise::new(34);
        for k in 0..3_000 {
            let (time, value) = (
                k * 1_000 + (100.0 * noise.next()) as Time,
                0.5 + 0.1 * noise.next(),
            );
            plain.update(time, value);
            series.update(time, value);
        }
        assert_eq!(series.model().len(), 3_000);
        assert_eq!(series.step_ms(), plain.step_ms());
        for ahead in [1_000, 60_000, 600_000] {
            assert_eq!(series.mean_and_sigma(ahead), plain.mean_and_sigma(ahead));
        }
    }

    #[test]
    fn fine_samples_become_bucket_means() {
        // 1-ms samples, 100-ms buckets: the model takes each bucket's mean as one step, once
        // the next bucket opens.
        let config = ModelConfig::new(ModelKind::Ewma);
        let mut model = TimedModel::for_series(&config, None, 100.0);
        feed(&mut model, 0, 1, 1_000, |k| {
            (k / 100) as f64 + (k % 2) as f64
        });
        assert_eq!(model.step_ms(), 100.0);
        assert_eq!(model.interval_ms(), Some(1.0));
        // The first sample was held until the second said the series is fine: it is part of
        // bucket 0, not a step of its own. Buckets 0 to 8 closed, and bucket 9 is open.
        assert_eq!(model.model().len(), 9);
        // Bucket 8 held samples 800..=899: its mean is 8 + 0.5.
        assert_eq!(model.model().latest(), 8.5);
        // The next bucket's first sample closes bucket 9; the samples after it join it.
        // What became a step is said: the bucket a sample closes, nothing while one fills.
        let closed: Vec<_> = model.update_steps(1_000, 10.0).iter().collect();
        assert_eq!(closed, [(900, 9.5)]);
        assert_eq!(model.model().len(), 10);
        assert_eq!(model.update_steps(1_050, 7.0).iter().count(), 0);
        assert_eq!(model.model().len(), 10);
        // The newest sample is still what `latest` says.
        assert_eq!(model.latest(), 7.0);
        // Ten minutes ahead is 6,000 steps of 100 ms.
        assert_eq!(model.steps(600_000), 6_000);
    }

    #[test]
    fn a_horizon_of_fine_samples_is_forecast_from_the_history_it_spans() {
        // 1-ms samples of a noisy level, one second of them against a 10-minute horizon: as
        // steps, 600,000 ahead over 1,000 seen, and every model's sigma blew up past the
        // capacity. Coarse, the spread stays that of the level's noise.
        for kind in [
            ModelKind::Auto,
            ModelKind::Holt,
            ModelKind::Ar,
            ModelKind::HoltWinters,
        ] {
            let config = ModelConfig::new(kind);
            let mut noise = Noise::new(35);
            let mut model = TimedModel::for_series(&config, None, 600_000.0 / 1008.0);
            feed(&mut model, 0, 1, 30_000, |_| 0.5 + 0.05 * noise.next());
            let (mean, sigma) = model.mean_and_sigma(600_000);
            assert!((mean - 0.5).abs() < 0.05, "{kind:?}: mean {mean}");
            assert!(sigma < 0.5, "{kind:?}: sigma {sigma}");
            assert_eq!(model.steps(600_000), 1_008);
        }
    }

    #[test]
    fn a_known_fine_interval_is_coarse_from_the_first_sample() {
        let config = ModelConfig::new(ModelKind::Ewma);
        let mut model = TimedModel::for_series(&config, Some(10), 1_000.0);
        assert_eq!(model.step_ms(), 1_000.0);
        feed(&mut model, 5_000, 10, 250, |k| (k / 100) as f64);
        // Buckets 5 (samples 0..100) and 6 (100..200) closed; 7 is open.
        assert_eq!(model.model().len(), 2);
        assert_eq!(model.model().latest(), 1.0);
    }

    #[test]
    fn empty_buckets_are_filled_or_skipped_like_missing_samples() {
        let config = ModelConfig::new(ModelKind::Ewma);
        let mut model = TimedModel::for_series(&config, Some(1), 100.0);
        feed(&mut model, 0, 1, 100, |_| 0.0);
        // Bucket 0, then three empty buckets, then bucket 4 at 4.0, closed by bucket 5.
        feed(&mut model, 400, 1, 100, |_| 4.0);
        model.update(500, 5.0);
        assert_eq!(model.model().len(), 5);
        assert_eq!(model.model().latest(), 4.0);
        // A silence of a hundred buckets is a gap: the model is told, not fed 99 values.
        model.update(10_500, 6.0);
        model.update(10_600, 6.0);
        assert_eq!(model.model().len(), 7);
    }

    #[test]
    fn a_rate_that_drops_at_once_is_learnt_after_sixteen_long_gaps_in_a_row() {
        // 10-s samples, then the collector is reconfigured to 5 minutes: 30 steps a gap, past
        // the fill, so each sample was a gap (the trend dropped at every one) for ever.
        let config = ModelConfig::new(ModelKind::Holt);
        let mut model = TimedModel::new(&config);
        let mut noise = Noise::new(36);
        let mut time: Time = 0;
        for k in 0..500 {
            model.update(time, k as f64);
            time += 10_000;
        }
        let interval = |model: &TimedModel| model.interval_ms().expect("known");
        assert!((interval(&model) - 10_000.0).abs() < 1.0);
        for k in 0..RELEARN_AFTER - 1 {
            time += 300_000 + (20_000.0 * noise.next()) as Time;
            model.update(time, k as f64);
        }
        assert!(
            (interval(&model) - 10_000.0).abs() < 1.0,
            "fifteen are not yet a rate"
        );
        time += 300_000;
        model.update(time, 0.0);
        let learnt = interval(&model);
        assert!((learnt - 300_000.0).abs() < 10_000.0, "{learnt}");
        // From here a sample is one step, and the horizon is counted in 5-minute steps.
        let before = model.model().len();
        time += 300_000;
        model.update(time, 1.0);
        assert_eq!(model.model().len(), before + 1);
        assert_eq!(model.steps(3_600_000), 12);
    }

    #[test]
    fn a_rate_that_returns_takes_back_its_model_after_four_gaps_and_a_new_one_does_not() {
        // 10-s samples, a turn of 1-minute ones, and 10-s ones again: the 10-s model was put
        // aside when the minute was learnt, and four 10-s gaps in a row take it back (its
        // clock moved on across the turn), where a fresh model would start again at each turn
        // of a collector that alternates. A rate not seen before is learnt after sixteen, on
        // a fresh model.
        let config = ModelConfig::new(ModelKind::Holt);
        let mut model = TimedModel::new(&config);
        let mut time: Time = 0;
        let mut sample = |model: &mut TimedModel, gap: Time| {
            time += gap;
            model.update_steps(time, 0.2 + time as f64 / 1e9)
        };
        for _ in 0..500 {
            sample(&mut model, 10_000);
        }
        for _ in 0..RELEARN_AFTER {
            sample(&mut model, 60_000);
        }
        assert!((model.step_ms() - 60_000.0).abs() < 1.0);
        assert!(model.model().len() < 5, "a fresh model at the minute");
        for _ in 0..20 {
            sample(&mut model, 60_000);
        }
        for _ in 0..RECALL_AFTER - 1 {
            assert!(!sample(&mut model, 10_000).rate_changed());
        }
        let steps = sample(&mut model, 10_000);
        assert!(steps.rate_changed() && steps.recalled() && steps.shelved());
        assert!((model.step_ms() - 10_000.0).abs() < 100.0);
        // 500 samples; the turn's first 15 (6 steps each, interpolated, before the minute was
        // a rate); then, taken back, it steps through the 21 samples of the turn since it was
        // put aside (6 steps each, interpolated: it used to pass over the turn as one gap, and
        // came back at the level it left), the three 10-s samples before this one, and this one.
        assert_eq!(
            model.model().len(),
            500 + 15 * 6 + 21 * 6 + 3 + 1,
            "the 10-s model, taken back"
        );
        let now = model.last_time().expect("sampled");
        let truth = 0.2 + (now + 600_000) as f64 / 1e9;
        assert!((model.forecast(600_000) - truth).abs() < 0.01);
        // Five minutes is new: sixteen gaps, and a fresh model (the 1-minute one stays aside).
        for k in 1..=RELEARN_AFTER {
            let steps = sample(&mut model, 300_000);
            assert_eq!(steps.rate_changed(), k == RELEARN_AFTER);
            assert!(!steps.recalled());
        }
        assert!(model.model().len() < 5, "a fresh model at five minutes");
    }

    #[test]
    fn a_model_taken_back_comes_back_at_the_level_the_series_moved_to_meanwhile() {
        // A quiet load sampled every 10 s, then a turn of minutes during which it jumps from
        // 0.3 to 0.85, then 10-s samples again. The 10-s model taken back steps through the
        // turn's samples; across the turn as one gap, its level was 0.3 plus a step's worth
        // of the jump, and it lagged the load for minutes.
        for kind in [ModelKind::Ewma, ModelKind::Holt, ModelKind::Auto] {
            let mut model = TimedModel::new(&ModelConfig::new(kind));
            let mut noise = Noise::new(3);
            let mut time: Time = 0;
            let mut sample = |model: &mut TimedModel, gap: Time, level: f64| {
                time += gap;
                model.update_steps(time, level + 0.005 * noise.next())
            };
            for _ in 0..500 {
                sample(&mut model, 10_000, 0.3);
            }
            for k in 0..RELEARN_AFTER + 30 {
                let level = if k < RELEARN_AFTER + 10 { 0.3 } else { 0.85 };
                sample(&mut model, 60_000, level);
            }
            let mut recalled = false;
            for _ in 0..RECALL_AFTER {
                recalled |= sample(&mut model, 10_000, 0.85).recalled();
            }
            assert!(recalled, "{kind:?}: the 10-s model is taken back");
            let forecast = model.forecast(60_000);
            assert!(
                (forecast - 0.85).abs() < 0.05,
                "{kind:?}: forecast {forecast} right after it was taken back"
            );
        }
    }

    #[test]
    fn retries_after_every_sample_are_not_steps_of_the_clock() {
        // A 60-s collector that retries once, twice or three times a second or so after each
        // sample (from the first: the young estimate is 1 s). Each retry was a step, so the
        // model's clock ran two to four steps a minute and a 10-minute forecast reached 2.5
        // to 3.3 minutes (`auto`'s error 0.016 against 0.005 without retries). The slower run
        // is learnt through up to three retries between its gaps, and once the interval is
        // settled a sample under a quarter of it after the last step is the latest value,
        // not a step.
        for retries in [&[2_000][..], &[1_000, 2_000], &[1_000, 2_000, 3_000]] {
            let mut model = TimedModel::new(&ModelConfig::new(ModelKind::Holt));
            let mut time: Time = 0;
            for minute in 0..600 {
                time += 60_000;
                let value = 0.2 + 0.001 * minute as f64;
                model.update(time, value);
                for (k, retry) in retries.iter().enumerate() {
                    model.update(time + retry, value + 0.0001 * (k + 1) as f64);
                }
            }
            let interval = model.interval_ms().expect("known");
            assert!(
                (interval - 60_000.0).abs() < 500.0,
                "{retries:?}: {interval}"
            );
            assert_eq!(model.steps(600_000), 10, "{retries:?}");
            let steps = model.model().len();
            assert!(
                steps < 600 + 40,
                "{retries:?}: {steps} steps for 600 minutes"
            );
            // On the trend: 10 minutes on is 0.01 higher.
            let ahead = model.forecast(600_000) - (0.2 + 0.001 * 609.0);
            assert!(ahead.abs() < 0.002, "{retries:?}: {ahead}");
            assert!(
                model.latest() > 0.2 + 0.001 * 599.0,
                "the retry is the latest value"
            );
        }
        // A duplicate at the same instant as a settled series' sample is no step either.
        let mut model = TimedModel::new(&ModelConfig::new(ModelKind::Ewma));
        for minute in 1..=100 {
            model.update(minute * 60_000, 0.5);
        }
        let before = model.model().len();
        let steps = model.update_steps(100 * 60_000, 0.6);
        assert_eq!((model.model().len(), steps.iter().count()), (before, 0));
        assert_eq!(model.latest(), 0.6);
    }

    #[test]
    fn a_settled_series_that_slows_with_retries_learns_the_slower_rate() {
        // Settled at 10 s, then 60-s samples each with a retry 2 s later: each retry was a
        // faster gap that ended the run of slower ones, so the minute was never learnt.
        let mut model = TimedModel::new(&ModelConfig::new(ModelKind::Ewma));
        let mut time: Time = 0;
        for _ in 0..500 {
            time += 10_000;
            model.update(time, 0.5);
        }
        for _ in 0..40 {
            time += 60_000;
            model.update(time, 0.5);
            model.update(time + 2_000, 0.5);
        }
        let interval = model.interval_ms().expect("known");
        assert!((interval - 60_000.0).abs() < 1_000.0, "{interval}");
    }

    #[test]
    fn a_burst_of_retries_does_not_take_back_a_young_estimates_model() {
        // Retries from the first sample: the first estimate is 1 s, learnt from two gaps, and
        // its model is not put aside when the minute is learnt. Four retries in one minute
        // (four agreeing 1-s gaps) would otherwise take it back, and a 1-s clock with it.
        let mut model = TimedModel::new(&ModelConfig::new(ModelKind::Ewma));
        let mut time: Time = 0;
        for minute in 0..60 {
            time += 60_000;
            model.update(time, 0.5);
            let retries: &[Time] = if minute == 50 {
                &[1_000, 2_000, 3_000, 4_000]
            } else {
                &[1_000, 2_000]
            };
            for retry in retries {
                let steps = model.update_steps(time + retry, 0.5);
                assert!(!steps.recalled(), "minute {minute}");
            }
        }
        let interval = model.interval_ms().expect("known");
        assert!((interval - 60_000.0).abs() < 1_000.0, "{interval}");
    }

    #[test]
    fn after_a_rate_that_dropped_the_models_follow_a_trend_at_the_new_step() {
        // A day of 10-s samples, then 12 hours of 5-minute ones, of a load rising 0.5 a day. The
        // models' parameters were fitted to 10-s steps, and an EWMA's small weight then lagged
        // the 5-minute steps until its next refit, a day on (a tester: 0.911 where the truth is
        // 0.95). Restarted at the new step, each follows the trend again within hours.
        let day = 86_400_000.0;
        let truth = |time: Time| 0.2 + 0.5 * time as f64 / day;
        for kind in [
            ModelKind::Ewma,
            ModelKind::Holt,
            ModelKind::HoltWinters,
            ModelKind::Auto,
        ] {
            let mut model = TimedModel::new(&ModelConfig::new(kind));
            let mut noise = Noise::new(37);
            let mut time: Time = 0;
            while time < 86_400_000 {
                model.update(time, truth(time) + 0.005 * noise.next());
                time += 10_000;
            }
            while time < 86_400_000 + 43_200_000 {
                model.update(time, truth(time) + 0.005 * noise.next());
                time += 300_000;
            }
            let last = time - 300_000;
            let expected = truth(last + 300_000);
            let predicted = model.mean_over(600_000);
            assert!(
                (predicted - expected).abs() < 0.01,
                "{kind:?}: {predicted} against {expected}"
            );
        }
    }

    #[test]
    fn a_run_is_a_rate_when_most_of_its_gaps_agree_with_their_median() {
        // Jittered gaps at a new rate: their mean.
        let mut jittered: Vec<f64> = (0..16).map(|k| 60_000.0 + (k % 5) as f64 * 100.0).collect();
        let mean = jittered.iter().sum::<f64>() / 16.0;
        assert_eq!(typical_gap(&mut jittered), Some(mean));
        // An outage began the run: left out of the rate.
        let mut after_outage = vec![3_600_000.0];
        after_outage.extend([300_000.0; 15]);
        assert_eq!(typical_gap(&mut after_outage), Some(300_000.0));
        // A minute, then two hours, and so on: no rate.
        let mut alternating: Vec<f64> = (0..16)
            .map(|k| if k % 2 == 0 { 60_000.0 } else { 7_200_000.0 })
            .collect();
        assert_eq!(typical_gap(&mut alternating), None);
        // Three in four agree: a rate; fewer: none.
        let mut three_in_four = [10.0, 11.0, 12.0, 100.0];
        assert_eq!(typical_gap(&mut three_in_four), Some(11.0));
        let mut two_in_four = [10.0, 11.0, 100.0, 200.0];
        assert_eq!(typical_gap(&mut two_in_four), None);
        assert_eq!(typical_gap(&mut []), None);
    }

    #[test]
    fn outages_and_irregular_long_gaps_are_not_a_new_rate() {
        let config = ModelConfig::new(ModelKind::Ewma);
        let mut model = TimedModel::new(&config);
        let mut time: Time = 0;
        let tick = |model: &mut TimedModel, time: &mut Time, gap: Time| {
            *time += gap;
            model.update(*time, 1.0);
        };
        for _ in 0..100 {
            tick(&mut model, &mut time, 10_000);
        }
        // Outages between stretches of the usual rate, many more than sixteen of them.
        for _ in 0..40 {
            tick(&mut model, &mut time, 3_600_000);
            for _ in 0..5 {
                tick(&mut model, &mut time, 10_000);
            }
        }
        // Long gaps in a row that do not agree: minutes, then hours, then minutes.
        for k in 0..40 {
            let gap = if k % 2 == 0 { 60_000 } else { 7_200_000 };
            tick(&mut model, &mut time, gap);
        }
        let interval = model.interval_ms().expect("known");
        assert!((interval - 10_000.0).abs() < 1.0, "{interval}");
    }

    #[test]
    fn a_stray_sample_is_not_a_new_rate_and_a_faster_one_is_learnt_after_sixteen() {
        let config = ModelConfig::new(ModelKind::Ewma);
        let mut model = TimedModel::new(&config);
        let mut time: Time = 0;
        for _ in 0..200 {
            time += 60_000;
            model.update(time, 1.0);
        }
        // A retry 2 s after a sample: it was taken for the rate, and every 60-s sample after
        // it was then a gap of 30 steps.
        model.update(time + 2_000, 1.0);
        for _ in 0..10 {
            time += 60_000;
            model.update(time, 1.0);
        }
        let interval = model.interval_ms().expect("known");
        assert!((interval - 60_000.0).abs() < 1_000.0, "{interval}");
        let before = model.model().len();
        model.update(time + 60_000, 1.0);
        assert_eq!(model.model().len(), before + 1);
        // The collector goes to 10-s samples: learnt after sixteen of them.
        time += 60_000;
        for _ in 0..RELEARN_AFTER {
            time += 10_000;
            model.update(time, 1.0);
        }
        let interval = model.interval_ms().expect("known");
        assert!((interval - 10_000.0).abs() < 1.0, "{interval}");
    }

    #[test]
    fn samples_paired_with_retries_from_the_start_are_a_slower_rate() {
        // Every 60-s sample has a retry 2 s later, from the first sample on: the young estimate
        // is 2 s, and every 58-s gap was then 29 steps, a gap for the models at every sample.
        // The slower run of 58-s gaps, one retry between each, is the rate.
        let config = ModelConfig::new(ModelKind::Ewma);
        let mut model = TimedModel::new(&config);
        for k in 0..40 {
            model.update(k * 60_000, 1.0);
            model.update(k * 60_000 + 2_000, 1.0);
        }
        let interval = model.interval_ms().expect("known");
        assert!((58_000.0..60_000.0).contains(&interval), "{interval}");
        // And it stays so, going to the minute: the retries after it are strays, no steps,
        // and each gap is counted from the sample before them.
        for k in 40..200 {
            model.update(k * 60_000, 1.0);
            model.update(k * 60_000 + 2_000, 1.0);
        }
        let interval = model.interval_ms().expect("known");
        assert!((interval - 60_000.0).abs() < 200.0, "{interval}");
    }

    #[test]
    fn a_fine_series_that_slows_at_once_past_the_step_returns_to_a_step_per_sample() {
        let config = ModelConfig::new(ModelKind::Ewma);
        let mut model = TimedModel::for_series(&config, None, 100.0);
        feed(&mut model, 0, 10, 2_000, |k| k as f64);
        assert_eq!(model.step_ms(), 100.0);
        // 10 ms to 400 ms at once: after sixteen gaps, a step per sample of 400 ms.
        feed(&mut model, 20_000, 400, 40, |_| 1.0);
        let interval = model.interval_ms().expect("known");
        assert!((interval - 400.0).abs() < 1e-6, "{interval}");
        assert_eq!(model.step_ms(), interval);
    }

    #[test]
    fn sampling_that_slows_down_gradually_returns_to_a_step_per_sample() {
        let config = ModelConfig::new(ModelKind::Ewma);
        let mut model = TimedModel::for_series(&config, None, 100.0);
        let mut time = 0;
        for k in 0..2_000 {
            model.update(time, k as f64);
            time += 10;
        }
        assert_eq!(model.step_ms(), 100.0);
        // Gaps that grow by 1% every 50 samples (the estimate remembers ~1,000 gaps and takes
        // none over twice itself), then hold at 60 ms: past half the step, a step per sample.
        let mut gap = 10.0_f64;
        for k in 0..15_000 {
            model.update(time, 1.0);
            if k % 50 == 0 && gap < 60.0 {
                gap *= 1.01;
            }
            time += gap as Time;
        }
        assert_eq!(model.step_ms(), model.interval_ms().expect("known"));
        let before = model.model().len();
        model.update(time, 2.0);
        assert_eq!(model.model().len(), before + 1);
    }

    #[test]
    fn a_held_first_sample_forecasts_as_a_model_of_one_value() {
        // Until the second sample says whether to bucket, the first is held out of the model;
        // its forecasts must be those of a model that took it, or outputs would change.
        for kind in ModelKind::ALL {
            let config = ModelConfig::new(kind);
            let mut plain = TimedModel::new(&config);
            let mut held = TimedModel::for_series(&config, None, 595.0);
            plain.update(1_000, 0.37);
            held.update(1_000, 0.37);
            assert_eq!(held.model().len(), 0);
            for ahead in [0, 1, 1_000, 600_000] {
                assert_eq!(held.forecast(ahead), plain.forecast(ahead), "{kind:?}");
                assert_eq!(
                    held.mean_and_sigma(ahead),
                    plain.mean_and_sigma(ahead),
                    "{kind:?}"
                );
                assert_eq!(held.sigma(ahead), plain.sigma(ahead), "{kind:?}");
            }
            // One second later: not fine, so both models hold the two values as steps, and
            // the held one says both became steps now.
            plain.update(2_000, 0.5);
            let steps: Vec<_> = held.update_steps(2_000, 0.5).iter().collect();
            assert_eq!(steps, [(1_000, 0.37), (2_000, 0.5)]);
            assert_eq!(held.model().len(), 2);
            assert_eq!(held.mean_and_sigma(60_000), plain.mean_and_sigma(60_000));
        }
    }

    #[test]
    fn a_known_fine_series_forecasts_its_samples_before_its_first_bucket_closes() {
        let config = ModelConfig::new(ModelKind::Auto);
        let mut model = TimedModel::for_series(&config, Some(100), 595.0);
        for k in 0..3 {
            model.update(k * 100, 0.9);
        }
        assert_eq!(model.model().len(), 0);
        assert_eq!(model.mean_and_sigma(600_000), (0.9, 0.0));
    }

    #[test]
    fn the_first_sample_of_a_fine_series_is_not_a_step_among_bucket_means() {
        // A first value far off the level used to stay in the window as a step of its own,
        // and its range widened sigma's cap for a whole window.
        let config = ModelConfig::new(ModelKind::Holt);
        let mut noise = Noise::new(36);
        let mut model = TimedModel::for_series(&config, None, 600_000.0 / 1008.0);
        model.update(0, 0.95);
        feed(&mut model, 1, 1, 30_000, |_| 0.5 + 0.05 * noise.next());
        let (_, sigma) = model.mean_and_sigma(600_000);
        assert!(sigma < 0.05, "{sigma}");
    }

    #[test]
    fn long_horizons_bucket_only_samples_finer_than_a_quarter_minute() {
        // A day-long (or 30-year) horizon over window 1,008 would make buckets of 86 s (or
        // 11 days): the model would lag the series by most of one. The step is capped at a
        // minute, so minute samples stay steps of their own.
        let config = ModelConfig::new(ModelKind::Ewma);
        for horizon_ms in [86_400_000.0, 1e12] {
            let mut model = TimedModel::for_series(&config, None, horizon_ms / 1008.0);
            feed(&mut model, 0, 60_000, 100, |k| k as f64);
            assert_eq!(model.model().len(), 100);
            assert!((model.step_ms() - 60_000.0).abs() < 1e-6);
            let mut fine = TimedModel::for_series(&config, None, horizon_ms / 1008.0);
            feed(&mut fine, 0, 100, 100, |k| k as f64);
            assert_eq!(fine.step_ms(), MAX_MIN_STEP_MS);
        }
    }

    #[test]
    fn samples_at_the_first_instant_are_held_together() {
        // Twenty samples stamped with the series' first millisecond, then 1-ms samples: the
        // twenty were each a step among the bucket means, and widened sigma 70-fold.
        let config = ModelConfig::new(ModelKind::Ewma);
        let run = |duplicates: usize| {
            let mut noise = Noise::new(37);
            let mut model = TimedModel::for_series(&config, None, 600_000.0 / 1008.0);
            for _ in 0..duplicates {
                model.update(0, 0.5 + 0.05 * noise.next());
            }
            feed(&mut model, 1, 1, 60_000, |_| 0.5 + 0.05 * noise.next());
            model
        };
        let (held, plain) = (run(20), run(1));
        assert_eq!(held.model().len(), plain.model().len());
        let (_, sigma) = held.mean_and_sigma(600_000);
        assert!(sigma < 2.0 * plain.mean_and_sigma(600_000).1, "{sigma}");
        // Not fine after all: the instant's samples are one step, their mean.
        let mut coarse = TimedModel::for_series(&config, None, 595.0);
        coarse.update(0, 1.0);
        coarse.update(0, 3.0);
        let steps: Vec<_> = coarse.update_steps(1_000, 5.0).iter().collect();
        assert_eq!(steps, [(0, 2.0), (1_000, 5.0)]);
    }

    /// The forecast error of a series whose sampling rate changes, by scenario (run by hand:
    /// `cargo test -p augur-dataflows --release rate_change_forecast_error -- --ignored
    /// --nocapture`). The load is 0.5 + 0.2 sin(day) + 0.05 sin(hour), with level shifts of
    /// ±0.2 every 5 hours when `shifts`, plus noise of 0.01; the error is the RMSE of the
    /// 10-minute forecast against the load 10 minutes on, at every sample after the first day,
    /// and the same over the samples within 10 minutes after the model changed with the rate
    /// (taken back or fresh).
    fn rate_change_errors(
        kind: ModelKind,
        turns: &[(Time, (usize, usize))],
        shifts: bool,
    ) -> (f64, f64) {
        const DAY: f64 = 86_400_000.0;
        let load = |t: Time| {
            let t = t as f64;
            let shift = if shifts && (t / (5.0 * 3_600_000.0)) as i64 % 2 == 1 {
                0.2
            } else {
                0.0
            };
            0.5 + 0.2 * (2.0 * std::f64::consts::PI * t / DAY).sin()
                + 0.05 * (2.0 * std::f64::consts::PI * t / 3_600_000.0).sin()
                + shift
        };
        let mut model = TimedModel::new(&ModelConfig::new(kind));
        let mut noise = Noise::new(7);
        let mut lengths = Noise::new(11);
        let (mut time, mut sum, mut count): (Time, f64, u64) = (0, 0.0, 0);
        let (mut after, mut after_sum, mut after_count): (Time, f64, u64) = (Time::MIN, 0.0, 0);
        let mut turn = 0;
        while (time as f64) < 4.0 * DAY {
            let (step, (least, most)) = turns[turn % turns.len()];
            let n = least + ((lengths.next() + 1.0) / 2.0 * (most - least) as f64) as usize;
            for _ in 0..n {
                time += step;
                let steps = model.update_steps(time, load(time) + 0.01 * noise.next());
                if steps.rate_changed() {
                    after = time;
                }
                if time as f64 > DAY {
                    let error = model.forecast(600_000) - load(time + 600_000);
                    sum += error * error;
                    count += 1;
                    if time - after <= 600_000 {
                        after_sum += error * error;
                        after_count += 1;
                    }
                }
            }
            turn += 1;
        }
        (
            (sum / count as f64).sqrt(),
            (after_sum / after_count.max(1) as f64).sqrt(),
        )
    }

    /// A scenario of [`rate_change_errors`]: its name, its turns (each an interval and the
    /// least and most samples a turn at it takes, taken in rotation) and `shifts`.
    type RateScenario = (&'static str, Vec<(Time, (usize, usize))>, bool);

    #[test]
    #[ignore]
    fn rate_change_forecast_error() {
        let scenarios: [RateScenario; 8] = [
            (
                "10 s, then 60 s",
                vec![(10_000, (13_000, 13_000)), (60_000, (10_000, 10_000))],
                true,
            ),
            (
                "60 s, then 10 s",
                vec![(60_000, (2_200, 2_200)), (10_000, (40_000, 40_000))],
                true,
            ),
            (
                "10 s <-> 60 s",
                vec![(10_000, (16, 60)), (60_000, (16, 60))],
                false,
            ),
            (
                "10 s <-> 5 min",
                vec![(10_000, (16, 60)), (300_000, (16, 60))],
                false,
            ),
            (
                "10 s <-> 60 s, shifts",
                vec![(10_000, (16, 60)), (60_000, (16, 60))],
                true,
            ),
            (
                "10 s <-> 5 min, shifts",
                vec![(10_000, (16, 60)), (300_000, (16, 60))],
                true,
            ),
            (
                "10 s <-> 60 s, long turns, shifts",
                vec![(10_000, (200, 900)), (60_000, (100, 300))],
                true,
            ),
            ("steady 10 s, shifts", vec![(10_000, (100, 100))], true),
        ];
        for (name, turns, shifts) in &scenarios {
            let errors: Vec<String> = [
                ModelKind::Ewma,
                ModelKind::Holt,
                ModelKind::HoltWinters,
                ModelKind::Auto,
            ]
            .iter()
            .map(|&kind| {
                let (all, after) = rate_change_errors(kind, turns, *shifts);
                format!("{all:.4} ({after:.4})")
            })
            .collect();
            println!("{name}: ewma, holt, hw, auto {}", errors.join(" "));
        }
    }
}

/// Samples spaced as a Poisson process (mean gap 10 s): the interval settles near their typical
/// gap and stays there. Before runs of gaps were judged by their median ([`typical_gap`]), a
/// young estimate reset to any gap under a quarter of it and then never learnt a longer one
/// (no sixteen exponential gaps in a row agree within a factor of two of their mean): after
/// 50,000 samples, 16 of these 20 seeds ended between 1 and 264 ms, and every gap was an
/// outage to the model, its trend dropped at each.
#[cfg(test)]
mod poisson_sampling {
    use super::*;
    use crate::models::ModelKind;

    #[test]
    fn poisson_spaced_samples_keep_an_interval_near_their_typical_gap() {
        for seed in 0..20u64 {
            let step = |state: u64| {
                state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407)
            };
            let mut state = step(seed);
            let mut uniform = || {
                state = step(state);
                ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
            };
            let mut model = TimedModel::new(&ModelConfig::new(ModelKind::Ewma));
            let mut time: Time = 0;
            let mut changes = Vec::new();
            for k in 0..50_000 {
                time += (-10_000.0 * uniform().ln()).round() as Time;
                if model.update_steps(time, uniform()).rate_changed {
                    changes.push(k);
                }
            }
            // The median gap is 6.9 s, the geometric mean 5.6 s: anything of that order.
            let interval = model.interval_ms().unwrap_or(0.0);
            assert!(
                (2_000.0..=20_000.0).contains(&interval),
                "seed {seed}: interval {interval} ms for a mean gap of 10,000 ms"
            );
            // Once learnt, the rate is not relearnt at every odd run of gaps: each change
            // restarts the model (measured: 1 to 3 changes in all, the first within 50 samples).
            let later = changes.iter().filter(|&&k| k >= 1_000).count();
            assert!(later <= 3, "seed {seed}: rate changes at {changes:?}");
        }
    }
}
