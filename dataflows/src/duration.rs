//! Task-duration prediction: how long a task will run on a device, learned online from
//! completions.
//!
//! A prediction is `work / speed × (1 + contention)`: `work` is the task's duration on a device of
//! speed 1 with no contention, `speed` the device's relative speed and `contention` its predicted
//! slowdown (0 = idle, 1 = twice as slow). Completions are normalised the same way before they
//! are learned, so what is learned on a fast idle device transfers to a slow busy one.
//!
//! `work` comes from, in order:
//! 0. for a task with its own estimate, once its kind has completed with estimates: the estimate
//!    times the kind's *correction ratio*, the median of the recent ratios of normalised actual
//!    duration to estimate, on the device's class once there are
//!    [`DurationConfig::min_class_completions`] of them, else on any class. A per-kind figure
//!    would give every task of the kind the same duration where the estimates say they differ
//!    (1000genome's `individuals` tasks do, by a lot); the ratio keeps those differences and
//!    still learns an estimate's systematic error (estimates twice too long, a class slower than
//!    its speed says). The plain median, not the 1/y-weighted one below: the ratio scales
//!    whole tasks, and a figure biased low would let a scheduler pile work on one device;
//! 1. the recent completions of the same task kind on the same device class, once there are
//!    [`DurationConfig::min_class_completions`] of them (classes can differ in ways `speed` does
//!    not capture: memory, disks, accelerators);
//! 2. else the recent completions of the kind on any class, once there is one;
//! 3. else, for a kind never seen to complete, a cold-start figure: the better of the task's own
//!    estimate (the workflow's prior) and what the *first* completions of other kinds say (see
//!    below). Which is better is learned online: each time a kind completes for the first time,
//!    both are scored against it (relative error, summed), and the lower sum wins; the estimate
//!    wins ties, so it is used until evidence says it is uninformative (a workflow-wide mean,
//!    say, which overestimates most tasks of a heavy-tailed workflow);
//! 4. else [`DurationConfig::default_s`].
//!
//! The estimator over recent completions is the *1/y-weighted median* of the last
//! [`DurationConfig::window`] normalised durations: the value that minimises the mean absolute
//! *percentage* error over the window, which is how duration error is judged, and one that
//! ignores outliers (Montage's mDiffFit runs in 9 ms but occasionally 16 s). Two refinements:
//!
//! - **Sizes, where they tell.** Some kinds' durations follow their data (mDiffFit's output size
//!   separates its 9 ms runs from its seconds-long ones); most do not (epigenomics' `fast2bfq`
//!   runs 0.1–8 s on inputs of one size). So, per key and online, the log-log correlation of
//!   duration with input and with output size over the window is checked; when the stronger one
//!   reaches [`DurationConfig::size_correlation`], the weighted median is taken over the
//!   [`DurationConfig::size_neighbours`] completions nearest in that size instead.
//! - **Few completions do not cover every size.** Until a kind has
//!   [`DurationConfig::settled_completions`] completions, a task whose input or output is more
//!   than [`DurationConfig::size_gap`] times off every completed one gets the lower of the
//!   kind's figure and the cold-start figure: the first mDiffFit may well be a slow one.
//!
//! **Cold start.** The figure for a kind never seen is the 1/y-weighted median of the first
//! completions of the other kinds, but never above [`DurationConfig::default_s`] (Dask's 0.5 s
//! for a task type it has not seen). First completions, not all completions: the many tasks of
//! one long kind must not decide what a new kind is. The cap, because relative error punishes
//! over-prediction without bound and under-prediction by at most 100%: workflows start with
//! their long kinds (Montage's mProject runs 800 s, its mDiffFit 9 ms), and predicting the
//! past's durations for the kinds that follow is the costliest mistake there is.
//!
//! The window bounds both memory and the cost of a prediction (O(window log window), a
//! constant) and lets the estimate follow drift.
//!
//! Durations that are zero, negative, NaN or infinite are ignored: they carry no usable
//! information about a multiplicative scale, and one of them must not poison a kind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Knobs of [`DurationModel`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DurationConfig {
    /// Recent completions kept per key (at least 1; at most [`MAX_WINDOW`]).
    pub window: usize,
    /// Completions of a (kind, class) pair before it is preferred over the kind as a whole:
    /// one completion on a class is noisier than many on all classes.
    pub min_class_completions: u32,
    /// Seconds predicted when nothing at all is known (Dask's choice for unseen tasks is 0.5 s),
    /// and the most a kind never seen to complete is predicted to take.
    pub default_s: f64,
    /// Completions of a key before its figure is trusted for tasks of sizes it has not seen,
    /// and before the correlation of its durations with sizes is believed.
    pub settled_completions: u32,
    /// |Pearson correlation| of log duration with log size (input or output) over the window
    /// from which predictions follow that size.
    pub size_correlation: f64,
    /// Completions nearest in size that a size-following prediction rests on (at least 1).
    pub size_neighbours: usize,
    /// How many times larger or smaller than every completed one a size must be for an
    /// unsettled kind not to cover it.
    pub size_gap: f64,
}

/// The largest window [`DurationModel`] accepts; larger configured windows are clamped to it.
pub const MAX_WINDOW: usize = 256;

impl Default for DurationConfig {
    fn default() -> Self {
        DurationConfig {
            // On the WfInstances replay a long window scores best (16: 45.8% MAPE, 64: 34.7%,
            // 256: 31.7%): noisy kinds need many values for a stable weighted median.
            window: 256,
            min_class_completions: 3,
            default_s: 0.5,
            settled_completions: 5,
            // 0.5 to 0.8 and 8 to 16 neighbours scored within 0.1 points.
            size_correlation: 0.7,
            size_neighbours: 8,
            size_gap: 2.0,
        }
    }
}

/// What a task is known to be before it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TaskFeatures {
    /// Its kind (dense id of the category name).
    pub category: u32,
    /// The workflow's estimate of its duration at speed 1 without contention, in seconds;
    /// `None`, or a value that is not finite and positive, when there is none.
    pub estimate_s: Option<f64>,
    /// Total size of its inputs.
    pub input_bytes: u64,
    /// Total size of its outputs.
    pub output_bytes: u64,
    /// Cores it uses.
    pub cores: f64,
}

impl TaskFeatures {
    fn sizes(&self) -> Sizes {
        Sizes {
            input: log_size(self.input_bytes),
            output: log_size(self.output_bytes),
        }
    }
}

/// The device a task runs on, as the duration model sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceFeatures {
    /// Its class (dense id): devices of one class behave alike beyond their speed.
    pub class: u32,
    /// Relative speed, 1 = reference; not finite or not positive is taken as 1.
    pub speed: f64,
    /// Predicted contention slowdown, 0 = none; durations stretch by `1 + contention`. Not finite
    /// or negative is taken as 0.
    pub contention: f64,
}

impl Default for DeviceFeatures {
    fn default() -> Self {
        DeviceFeatures {
            class: 0,
            speed: 1.0,
            contention: 0.0,
        }
    }
}

impl DeviceFeatures {
    /// Seconds on this device per second of work at speed 1 without contention.
    fn stretch(&self) -> f64 {
        let speed = if self.speed.is_finite() && self.speed > 0.0 {
            self.speed
        } else {
            1.0
        };
        let contention = if self.contention.is_finite() && self.contention > 0.0 {
            self.contention
        } else {
            0.0
        };
        (1.0 + contention) / speed
    }
}

/// Where a prediction came from, most specific first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DurationSource {
    /// The task's own estimate times its kind's learned ratio of actual to estimated duration.
    Ratio,
    /// Completions of the kind on the device's class.
    CategoryClass,
    /// Completions of the kind on any class.
    Category,
    /// The task's own estimate.
    Estimate,
    /// First completions of other kinds, at most [`DurationConfig::default_s`].
    OtherKinds,
    /// [`DurationConfig::default_s`].
    Default,
}

/// A predicted duration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DurationPrediction {
    /// Seconds on the given device under its contention.
    pub seconds: f64,
    /// What it rests on.
    pub source: DurationSource,
}

/// `ln(1 + bytes)`: sizes compared by ratio, with 0 bytes at 0.
fn log_size(bytes: u64) -> f64 {
    (bytes as f64).ln_1p()
}

/// A task's sizes, `ln(1 + bytes)` each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Sizes {
    input: f64,
    output: f64,
}

/// One learned completion: its normalised duration and its sizes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Sample {
    work: f64,
    sizes: Sizes,
}

/// Which size a key's durations follow.
#[derive(Clone, Copy, Debug, PartialEq)]
enum SizeAxis {
    Input,
    Output,
}

impl SizeAxis {
    fn of(self, sizes: &Sizes) -> f64 {
        match self {
            SizeAxis::Input => sizes.input,
            SizeAxis::Output => sizes.output,
        }
    }
}

/// The recent completions of one key, oldest overwritten first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Recent {
    /// Completions ever learned under this key.
    count: u32,
    /// Ring of the last `window` samples.
    samples: Vec<Sample>,
    /// Where the next sample goes once the ring is full.
    next: usize,
}

impl Recent {
    fn push(&mut self, sample: Sample, window: usize) {
        self.count = self.count.saturating_add(1);
        if self.samples.len() < window {
            self.samples.push(sample);
        } else {
            self.samples[self.next] = sample;
            self.next = (self.next + 1) % window;
        }
    }

    /// The figure for a task of these sizes (`None`: sizes unknown).
    fn estimate(&self, sizes: Option<&Sizes>, config: &DurationConfig) -> Option<f64> {
        let (Some(sizes), Some(axis)) = (sizes, self.size_axis(config)) else {
            return weighted_median(self.samples.iter().map(|s| s.work));
        };
        let target = axis.of(sizes);
        let distance = |s: &Sample| (axis.of(&s.sizes) - target).abs();
        let mut distances: Vec<f64> = self.samples.iter().map(distance).collect();
        distances.sort_by(f64::total_cmp);
        // Every sample as near as the k-th nearest: sizes repeat (1,674 of Montage's 2,106
        // mDiffFit outputs are 50 bytes), and any choice among ties would be arbitrary.
        let k = config.size_neighbours.clamp(1, distances.len().max(1));
        let cutoff = distances.get(k - 1).copied()?;
        weighted_median(
            self.samples
                .iter()
                .filter(|s| distance(s) <= cutoff)
                .map(|s| s.work),
        )
    }

    /// The size the durations follow, if one correlates strongly enough in the window.
    fn size_axis(&self, config: &DurationConfig) -> Option<SizeAxis> {
        if self.samples.len() < (config.settled_completions.max(3) as usize) {
            return None;
        }
        let log_work: Vec<f64> = self.samples.iter().map(|s| s.work.ln()).collect();
        let r = |axis: SizeAxis| {
            let sizes: Vec<f64> = self.samples.iter().map(|s| axis.of(&s.sizes)).collect();
            correlation(&sizes, &log_work).abs()
        };
        let (input, output) = (r(SizeAxis::Input), r(SizeAxis::Output));
        let (axis, strength) = if output >= input {
            (SizeAxis::Output, output)
        } else {
            (SizeAxis::Input, input)
        };
        (strength >= config.size_correlation).then_some(axis)
    }

    /// Whether some completion had both sizes within `gap` times the task's.
    fn covers(&self, sizes: &Sizes, gap: f64) -> bool {
        let gap = if gap.is_finite() && gap >= 1.0 {
            gap.ln()
        } else {
            0.0
        };
        self.samples.iter().any(|s| {
            (s.sizes.input - sizes.input).abs() <= gap
                && (s.sizes.output - sizes.output).abs() <= gap
        })
    }
}

/// The median (the lower of the two middle values for an even count); `None` when there are
/// none.
fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut sorted: Vec<f64> = values.collect();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len().checked_sub(1)? / 2;
    sorted.get(middle).copied()
}

/// The 1/y-weighted median: the value minimising the summed relative error to the values
/// (all positive); `None` when there are none.
fn weighted_median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut sorted: Vec<f64> = values.collect();
    sorted.sort_by(f64::total_cmp);
    let total: f64 = sorted.iter().map(|v| 1.0 / v).sum();
    let mut acc = 0.0;
    for &value in &sorted {
        acc += 1.0 / value;
        if acc >= total / 2.0 {
            return Some(value);
        }
    }
    // Only when rounding left `acc` short of half: the largest value is then the answer.
    sorted.last().copied()
}

/// Pearson's correlation of two equally long series; 0 when either is constant.
fn correlation(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len().min(ys.len());
    if n < 2 {
        return 0.0;
    }
    let mean = |v: &[f64]| v[..n].iter().sum::<f64>() / n as f64;
    let (mx, my) = (mean(xs), mean(ys));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs[..n].iter().zip(&ys[..n]) {
        let (dx, dy) = (x - mx, y - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    let r = sxy / (sxx * syy).sqrt();
    if r.is_finite() {
        r
    } else {
        0.0
    }
}

/// The online duration model: recent completions per (kind, class) and per kind, their ratios
/// to the tasks' estimates likewise, and the first completion of each kind. Deterministic
/// (ordered maps, no randomness), and its whole state serialises.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DurationModel {
    config: DurationConfig,
    per_class: BTreeMap<(u32, u32), Recent>,
    per_category: BTreeMap<u32, Recent>,
    /// Normalised duration over estimate, of the completions that had an estimate (sizes
    /// unused), per (kind, class) and per kind.
    ratio_per_class: BTreeMap<(u32, u32), Recent>,
    ratio_per_category: BTreeMap<u32, Recent>,
    /// The first completion of each kind, most recent kinds last (sizes unused).
    firsts: Recent,
    /// Summed relative errors of the estimate and of the other kinds' figure on the first
    /// completion of each kind that had an estimate: which cold-start figure to trust.
    cold_estimate_error: f64,
    cold_other_error: f64,
}

impl DurationModel {
    /// An empty model.
    pub fn new(config: DurationConfig) -> Self {
        DurationModel {
            config,
            ..DurationModel::default()
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &DurationConfig {
        &self.config
    }

    fn window(&self) -> usize {
        self.config.window.clamp(1, MAX_WINDOW)
    }

    /// Predicts the task's duration on the device from what has completed so far.
    pub fn predict(&self, task: &TaskFeatures, device: &DeviceFeatures) -> DurationPrediction {
        let ratio = usable(task.estimate_s)
            .zip(self.ratio(task.category, device.class))
            .map(|(estimate, ratio)| (estimate * ratio, DurationSource::Ratio));
        let (work, source) =
            ratio.unwrap_or_else(|| self.work(task, Some(&task.sizes()), device.class));
        DurationPrediction {
            seconds: work * device.stretch(),
            source,
        }
    }

    /// Predicts the duration of a task of the kind whose sizes are unknown (and which has no
    /// estimate of its own): the figure a per-kind table publishes.
    pub fn predict_kind(&self, category: u32, device: &DeviceFeatures) -> DurationPrediction {
        let task = TaskFeatures {
            category,
            ..TaskFeatures::default()
        };
        let (work, source) = self.work(&task, None, device.class);
        DurationPrediction {
            seconds: work * device.stretch(),
            source,
        }
    }

    /// The kind's learned ratio of actual duration (at speed 1, no contention) to the task's
    /// estimate on a device of the class: on the class once it has
    /// [`DurationConfig::min_class_completions`] completions with estimates, else on any class;
    /// `None` while no task of the kind with an estimate has completed.
    pub fn ratio(&self, category: u32, class: u32) -> Option<f64> {
        let recent = match self.ratio_per_class.get(&(category, class)) {
            Some(recent) if recent.count >= self.config.min_class_completions.max(1) => recent,
            _ => self.ratio_per_category.get(&category)?,
        };
        median(recent.samples.iter().map(|s| s.work))
    }

    /// Completions of the kind learned so far, on any class.
    pub fn completions(&self, category: u32) -> u32 {
        self.per_category.get(&category).map_or(0, |r| r.count)
    }

    fn work(
        &self,
        task: &TaskFeatures,
        sizes: Option<&Sizes>,
        class: u32,
    ) -> (f64, DurationSource) {
        let learned = match self.per_class.get(&(task.category, class)) {
            Some(recent) if recent.count >= self.config.min_class_completions.max(1) => {
                Some((recent, DurationSource::CategoryClass))
            }
            _ => self
                .per_category
                .get(&task.category)
                .map(|recent| (recent, DurationSource::Category)),
        };
        if let Some((recent, source)) = learned {
            if let Some(work) = recent.estimate(sizes, &self.config) {
                let unsettled = recent.count < self.config.settled_completions;
                match sizes {
                    Some(sizes) if unsettled && !recent.covers(sizes, self.config.size_gap) => {
                        let cold = self.cold(task);
                        return if cold.0 < work { cold } else { (work, source) };
                    }
                    _ => return (work, source),
                }
            }
        }
        self.cold(task)
    }

    /// The figure for a kind never seen to complete.
    fn cold(&self, task: &TaskFeatures) -> (f64, DurationSource) {
        let other = self.other_kinds();
        match usable(task.estimate_s) {
            Some(estimate) if self.cold_estimate_error <= self.cold_other_error => {
                (estimate, DurationSource::Estimate)
            }
            _ => other,
        }
    }

    /// What the first completions of other kinds say, capped at the default.
    fn other_kinds(&self) -> (f64, DurationSource) {
        let default = self.config.default_s;
        // A broken default must not leak NaN into placement; Dask's 0.5 s is as good as any.
        let default = if default.is_finite() && default > 0.0 {
            default
        } else {
            0.5
        };
        match weighted_median(self.firsts.samples.iter().map(|s| s.work)) {
            Some(other) if other < default => (other, DurationSource::OtherKinds),
            _ => (default, DurationSource::Default),
        }
    }

    /// Learns a completion: the task ran `seconds` on the device. Returns whether it was
    /// learned (durations that are not finite and positive are ignored).
    pub fn observe(&mut self, task: &TaskFeatures, device: &DeviceFeatures, seconds: f64) -> bool {
        if !(seconds.is_finite() && seconds > 0.0) {
            return false;
        }
        let work = seconds / device.stretch();
        if !(work.is_finite() && work > 0.0) {
            return false;
        }
        let window = self.window();
        let sample = Sample {
            work,
            sizes: task.sizes(),
        };
        if self.completions(task.category) == 0 {
            if let Some(estimate) = usable(task.estimate_s) {
                // Both finite and positive, so the sums stay finite unless work is subnormal;
                // an infinite sum only ever loses the comparison, which is the right outcome.
                self.cold_estimate_error += (estimate - work).abs() / work;
                self.cold_other_error += (self.other_kinds().0 - work).abs() / work;
            }
            self.firsts.push(sample, window);
        }
        self.per_class
            .entry((task.category, device.class))
            .or_default()
            .push(sample, window);
        self.per_category
            .entry(task.category)
            .or_default()
            .push(sample, window);
        if let Some(estimate) = usable(task.estimate_s) {
            let ratio = work / estimate;
            // Both positive and finite, so only an overflow or underflow can spoil the ratio.
            if ratio.is_finite() && ratio > 0.0 {
                let sample = Sample {
                    work: ratio,
                    sizes: Sizes::default(),
                };
                self.ratio_per_class
                    .entry((task.category, device.class))
                    .or_default()
                    .push(sample, window);
                self.ratio_per_category
                    .entry(task.category)
                    .or_default()
                    .push(sample, window);
            }
        }
        true
    }
}

/// The estimate, when it is a finite positive number.
fn usable(estimate: Option<f64>) -> Option<f64> {
    estimate.filter(|e| e.is_finite() && *e > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(category: u32, estimate: Option<f64>) -> TaskFeatures {
        TaskFeatures {
            category,
            estimate_s: estimate,
            cores: 1.0,
            ..TaskFeatures::default()
        }
    }

    fn device(class: u32, speed: f64, contention: f64) -> DeviceFeatures {
        DeviceFeatures {
            class,
            speed,
            contention,
        }
    }

    #[test]
    fn prior_used_before_any_completion() {
        let model = DurationModel::new(DurationConfig::default());
        let p = model.predict(&task(0, Some(42.0)), &DeviceFeatures::default());
        assert_eq!(p.seconds, 42.0);
        assert_eq!(p.source, DurationSource::Estimate);
        let p = model.predict(&task(0, None), &DeviceFeatures::default());
        assert_eq!(p.seconds, 0.5);
        assert_eq!(p.source, DurationSource::Default);
    }

    #[test]
    fn learns_per_category_after_completions() {
        let mut model = DurationModel::new(DurationConfig::default());
        let d = DeviceFeatures::default();
        for seconds in [10.0, 11.0, 9.0, 10.0, 10.5] {
            assert!(model.observe(&task(1, Some(100.0)), &d, seconds));
        }
        let p = model.predict(&task(1, Some(100.0)), &d);
        assert!((p.seconds - 10.0).abs() <= 0.5, "{p:?}");
        assert_eq!(model.completions(1), 5);
        // Another category has only its prior, which was 10 times off on category 1, and
        // the first completions of other kinds (10 s), capped at the default.
        let p = model.predict(&task(2, Some(100.0)), &d);
        assert_eq!((p.seconds, p.source), (0.5, DurationSource::Default));
    }

    #[test]
    fn ratio_to_the_estimate_keeps_per_task_differences() {
        let mut model = DurationModel::new(DurationConfig::default());
        let d = DeviceFeatures::default();
        // The estimates are all twice too short, and the tasks of the kind differ tenfold.
        for estimate in [1.0, 10.0, 3.0, 30.0, 5.0] {
            assert!(model.observe(&task(0, Some(estimate)), &d, 2.0 * estimate));
        }
        assert_eq!(model.ratio(0, 0), Some(2.0));
        let p = model.predict(&task(0, Some(50.0)), &d);
        assert_eq!((p.seconds, p.source), (100.0, DurationSource::Ratio));
        let p = model.predict(&task(0, Some(0.5)), &device(0, 2.0, 1.0));
        assert_eq!((p.seconds, p.source), (1.0, DurationSource::Ratio));
        // Without an estimate of its own, a task gets the kind's figure (the 1/y-weighted median).
        let p = model.predict(&task(0, None), &d);
        assert_eq!((p.seconds, p.source), (2.0, DurationSource::CategoryClass));
        assert_eq!(model.predict_kind(0, &d).seconds, 2.0);
        // A kind never seen with an estimate has no ratio.
        model.observe(&task(1, None), &d, 4.0);
        assert_eq!(model.ratio(1, 0), None);
        let p = model.predict(&task(1, Some(50.0)), &d);
        assert_eq!((p.seconds, p.source), (4.0, DurationSource::Category));
    }

    #[test]
    fn ratio_is_normalised_robust_and_per_class_once_there_are_enough() {
        let mut model = DurationModel::new(DurationConfig::default());
        // 30 s on a speed-2 device under contention 0.5 is 40 s of work: ratio 2 to a 20 s
        // estimate. One wild completion does not move the median.
        let fast_busy = device(0, 2.0, 0.5);
        for seconds in [30.0, 30.0, 3000.0, 30.0] {
            model.observe(&task(0, Some(20.0)), &fast_busy, seconds);
        }
        assert_eq!(model.ratio(0, 0), Some(2.0));
        // Class 1 runs the kind 3 times its estimate: one completion there is not trusted alone.
        model.observe(&task(0, Some(10.0)), &device(1, 1.0, 0.0), 30.0);
        assert_eq!(model.ratio(0, 1), Some(2.0));
        for _ in 0..2 {
            model.observe(&task(0, Some(10.0)), &device(1, 1.0, 0.0), 30.0);
        }
        assert_eq!(model.ratio(0, 1), Some(3.0));
        assert_eq!(model.ratio(0, 0), Some(2.0));
        let p = model.predict(&task(0, Some(7.0)), &device(1, 1.0, 0.0));
        assert!((p.seconds - 21.0).abs() < 1e-9, "{p:?}");
    }

    #[test]
    fn outlier_does_not_drag_the_estimate() {
        let mut model = DurationModel::new(DurationConfig::default());
        let d = DeviceFeatures::default();
        for seconds in [0.009, 0.008, 16.0, 0.009, 0.009] {
            model.observe(&task(0, None), &d, seconds);
        }
        assert_eq!(model.predict(&task(0, None), &d).seconds, 0.009);
    }

    #[test]
    fn uninformative_estimate_gives_way_to_learned_cold_start() {
        let mut model = DurationModel::new(DurationConfig::default());
        let d = DeviceFeatures::default();
        // Every category runs 0.2 s; the estimate says 100 s for all of them.
        for category in 0..4 {
            assert_eq!(
                model.predict(&task(category, Some(100.0)), &d).seconds,
                if category < 1 { 100.0 } else { 0.2 }
            );
            model.observe(&task(category, Some(100.0)), &d, 0.2);
        }
        // An estimate that proved right keeps being used.
        let mut model = DurationModel::new(DurationConfig::default());
        for category in 0..4 {
            let seconds = f64::from(category + 1);
            assert_eq!(
                model.predict(&task(category, Some(seconds)), &d).seconds,
                seconds
            );
            model.observe(&task(category, Some(seconds)), &d, seconds);
        }
    }

    #[test]
    fn speed_and_contention_scale_predictions() {
        let mut model = DurationModel::new(DurationConfig::default());
        // 20 s on a speed-2 idle device is 40 s of work.
        model.observe(&task(0, None), &device(0, 2.0, 0.0), 20.0);
        let p = model.predict(&task(0, None), &device(0, 1.0, 0.0));
        assert!((p.seconds - 40.0).abs() < 1e-9);
        let p = model.predict(&task(0, None), &device(0, 4.0, 1.0));
        assert!((p.seconds - 20.0).abs() < 1e-9);
        // The prior is scaled the same way.
        let p = model.predict(&task(5, Some(10.0)), &device(0, 2.0, 0.5));
        assert!((p.seconds - 7.5).abs() < 1e-9);
        // Unusable device figures fall back to speed 1, no contention.
        let p = model.predict(&task(5, Some(10.0)), &device(0, f64::NAN, -3.0));
        assert_eq!(p.seconds, 10.0);
    }

    #[test]
    fn falls_back_from_class_to_category() {
        let mut model = DurationModel::new(DurationConfig::default());
        for _ in 0..5 {
            model.observe(&task(0, None), &device(0, 1.0, 0.0), 10.0);
        }
        // Class 1 has never run category 0: the category's figure is used.
        let p = model.predict(&task(0, None), &device(1, 1.0, 0.0));
        assert_eq!((p.seconds, p.source), (10.0, DurationSource::Category));
        // Class 1 turns out slower than its speed says; after enough completions it is trusted.
        for _ in 0..3 {
            model.observe(&task(0, None), &device(1, 1.0, 0.0), 30.0);
        }
        let p = model.predict(&task(0, None), &device(1, 1.0, 0.0));
        assert_eq!((p.seconds, p.source), (30.0, DurationSource::CategoryClass));
        let p = model.predict(&task(0, None), &device(0, 1.0, 0.0));
        assert_eq!((p.seconds, p.source), (10.0, DurationSource::CategoryClass));
    }

    fn sized(category: u32, input_bytes: u64, output_bytes: u64) -> TaskFeatures {
        TaskFeatures {
            category,
            input_bytes,
            output_bytes,
            cores: 1.0,
            ..TaskFeatures::default()
        }
    }

    #[test]
    fn new_kind_gets_first_completions_of_other_kinds_capped_at_default() {
        let mut model = DurationModel::new(DurationConfig::default());
        let d = DeviceFeatures::default();
        // A workflow that starts with a long kind: many completions of it.
        for _ in 0..20 {
            model.observe(&task(0, None), &d, 800.0);
        }
        // 800 s is the past, not what a new kind will take: the default caps it.
        let p = model.predict(&task(1, None), &d);
        assert_eq!((p.seconds, p.source), (0.5, DurationSource::Default));
        // Short kinds follow; their first completions, not their counts, make the figure.
        model.observe(&task(1, None), &d, 0.1);
        for _ in 0..50 {
            model.observe(&task(2, None), &d, 0.3);
        }
        let p = model.predict(&task(3, None), &d);
        assert_eq!((p.seconds, p.source), (0.1, DurationSource::OtherKinds));
    }

    #[test]
    fn kind_whose_duration_follows_output_size_is_predicted_by_size() {
        let mut model = DurationModel::new(DurationConfig::default());
        let d = DeviceFeatures::default();
        // Montage's mDiffFit: 9 ms with a 50-byte output, seconds with a 300-byte one.
        for i in 0..40u64 {
            let (output, seconds) = if i % 5 == 0 { (300, 4.0) } else { (50, 0.009) };
            model.observe(&sized(0, 1_000_000 + i, output), &d, seconds);
        }
        assert_eq!(model.predict(&sized(0, 1_000_000, 310), &d).seconds, 4.0);
        assert_eq!(model.predict(&sized(0, 1_000_000, 49), &d).seconds, 0.009);
        // A kind whose durations ignore its sizes gets its weighted median at any size.
        for i in 0..40u64 {
            let seconds = if i % 2 == 0 { 1.0 } else { 3.0 };
            model.observe(
                &sized(1, 1_000 * (1 + i % 7), 10 * (1 + i % 3)),
                &d,
                seconds,
            );
        }
        for (input, output) in [(1_000, 10), (7_000, 30), (1, 1)] {
            assert_eq!(model.predict(&sized(1, input, output), &d).seconds, 1.0);
        }
        // The published per-kind figure knows no sizes.
        assert_eq!(model.predict_kind(0, &d).seconds, 0.009);
    }

    #[test]
    fn unsettled_kind_does_not_cover_sizes_it_has_not_seen() {
        let mut model = DurationModel::new(DurationConfig::default());
        let d = DeviceFeatures::default();
        // The first mDiffFit was a slow one; the next has a 6 times smaller output.
        model.observe(&sized(0, 1_000, 300), &d, 8.0);
        let p = model.predict(&sized(0, 1_000, 50), &d);
        assert_eq!((p.seconds, p.source), (0.5, DurationSource::Default));
        // Within twice the sizes seen, the kind's own figure stands.
        let p = model.predict(&sized(0, 1_500, 200), &d);
        assert_eq!((p.seconds, p.source), (8.0, DurationSource::Category));
        // The lower of the two is taken: a kind shorter than the cold figure keeps its own.
        model.observe(&sized(1, 1_000, 300), &d, 0.1);
        assert_eq!(model.predict(&sized(1, 1, 1), &d).seconds, 0.1);
        // Once settled, the kind's figure is used at any size.
        for _ in 0..4 {
            model.observe(&sized(0, 1_000, 300), &d, 8.0);
        }
        let p = model.predict(&sized(0, 1_000, 50), &d);
        assert_eq!((p.seconds, p.source), (8.0, DurationSource::CategoryClass));
    }

    #[test]
    fn correlation_of_constant_or_short_series_is_zero() {
        assert_eq!(correlation(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), 0.0);
        assert_eq!(correlation(&[1.0], &[1.0]), 0.0);
        assert!((correlation(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert!((correlation(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn deterministic_and_serialisable() {
        let run = || {
            let mut model = DurationModel::new(DurationConfig::default());
            for i in 0..100u32 {
                let seconds = 1.0 + f64::from((i * 37) % 11);
                model.observe(&task(i % 3, None), &device(i % 2, 1.5, 0.2), seconds);
            }
            model
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b);
        let text = format!("{a:?}");
        assert_eq!(text, format!("{b:?}"));
        let p = |m: &DurationModel| m.predict(&task(1, None), &device(1, 1.0, 0.0)).seconds;
        assert_eq!(p(&a).to_bits(), p(&b).to_bits());
    }

    #[test]
    fn bad_durations_are_ignored() {
        let mut model = DurationModel::new(DurationConfig::default());
        let d = DeviceFeatures::default();
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(!model.observe(&task(0, Some(3.0)), &d, bad));
        }
        assert_eq!(model.completions(0), 0);
        assert_eq!(model.predict(&task(0, Some(3.0)), &d).seconds, 3.0);
        // Bad estimates fall through to the default.
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let p = model.predict(&task(0, Some(bad)), &d);
            assert_eq!(p.seconds, 0.5);
        }
        // Extreme but finite values neither panic nor yield NaN.
        model.observe(&task(0, None), &device(0, 1e-300, 1e300), f64::MAX);
        model.observe(&task(0, None), &device(0, 1e300, 0.0), f64::MIN_POSITIVE);
        let p = model.predict(&task(0, None), &device(0, 1e-300, 1e300));
        assert!(!p.seconds.is_nan());
        // A zero window is taken as 1.
        let mut tiny = DurationModel::new(DurationConfig {
            window: 0,
            ..DurationConfig::default()
        });
        tiny.observe(&task(0, None), &d, 2.0);
        tiny.observe(&task(0, None), &d, 4.0);
        assert_eq!(tiny.predict(&task(0, None), &d).seconds, 4.0);
    }
}
