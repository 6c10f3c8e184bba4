//! Task-duration prediction: how long a task will run on a device, learned online from
//! completions.
//!
//! A prediction is `work / speed × (1 + contention)`: `work` is the task's duration on a device of
//! speed 1 with no contention, `speed` the device's relative speed and `contention` its predicted
//! slowdown (0 = idle, 1 = twice as slow). Completions are normalised the same way before they
//! are learned, so what is learned on a fast idle device transfers to a slow busy one.
//!
//! `work` comes from, in order:
//! 1. the recent completions of the same task category on the same device class, once there are
//!    [`DurationConfig::min_class_completions`] of them (classes can differ in ways `speed` does
//!    not capture: memory, disks, accelerators);
//! 2. else the recent completions of the category on any class, once there is one;
//! 3. else, for a category never seen to complete, the better of two cold-start figures: the
//!    task's own estimate (the workflow's prior) and the recent completions of any task. Which
//!    is better is learned online: each time a category completes for the first time, both are
//!    scored against it (relative error, summed), and the lower sum wins; the estimate wins ties,
//!    so it is used until evidence says it is uninformative (a workflow-wide mean, say, which
//!    overestimates most tasks of a heavy-tailed workflow);
//! 4. else [`DurationConfig::default_s`].
//!
//! The estimator over recent completions is the *1/y-weighted median* of the last
//! [`DurationConfig::window`] normalised durations. Task durations of one kind are heavy-tailed
//! (Montage's mDiffFit runs in 9 ms but occasionally 16 s), so means and geometric means are
//! dragged by outliers, while a median is not. Weighting each value by 1/y makes the estimate
//! the one that minimises the mean absolute *percentage* error over the window, which is how
//! duration error is judged (a 2 s miss on a 1 s task matters more than on a 100 s task). On the
//! WfInstances replay (`augur durations`) it beat the plain recent median, the mean, the
//! geometric mean, trimmed means, log-space quantile tracking and input-size scaling; see
//! BENCHMARKS.md. The window bounds both memory and the cost of a completion (O(window), a
//! constant), and lets the estimate follow drift.
//!
//! Durations that are zero, negative, NaN or infinite are ignored: they carry no usable
//! information about a multiplicative scale, and one of them must not poison a category.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Knobs of [`DurationModel`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DurationConfig {
    /// Recent completions kept per key (at least 1; at most [`MAX_WINDOW`]).
    pub window: usize,
    /// Completions of a (category, class) pair before it is preferred over the category as a
    /// whole: one completion on a class is noisier than many on all classes.
    pub min_class_completions: u32,
    /// Seconds predicted when nothing at all is known (Dask's choice for unseen tasks is 0.5 s).
    pub default_s: f64,
}

/// The largest window [`DurationModel`] accepts; larger configured windows are clamped to it.
pub const MAX_WINDOW: usize = 256;

impl Default for DurationConfig {
    fn default() -> Self {
        DurationConfig {
            // 16 follows drift yet outvotes a few outliers; 9 to 25 scored within 0.5 points.
            window: 16,
            min_class_completions: 3,
            default_s: 0.5,
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
    /// Completions of the category on the device's class.
    CategoryClass,
    /// Completions of the category on any class.
    Category,
    /// The task's own estimate.
    Estimate,
    /// Completions of any task.
    Global,
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

/// The recent normalised durations of one key, oldest overwritten first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Recent {
    /// Completions ever learned under this key.
    count: u32,
    /// Ring of the last `window` values.
    values: Vec<f64>,
    /// Where the next value goes once the ring is full.
    next: usize,
}

impl Recent {
    fn push(&mut self, value: f64, window: usize) {
        self.count = self.count.saturating_add(1);
        if self.values.len() < window {
            self.values.push(value);
        } else {
            self.values[self.next] = value;
            self.next = (self.next + 1) % window;
        }
    }

    /// The 1/y-weighted median: the value minimising the summed relative error to the window.
    fn estimate(&self) -> Option<f64> {
        let mut sorted = self.values.clone();
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
}

/// The online duration model: recent completions per (category, class), per category and
/// overall. Deterministic (ordered maps, no randomness), and its whole state serialises.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DurationModel {
    config: DurationConfig,
    per_class: BTreeMap<(u32, u32), Recent>,
    per_category: BTreeMap<u32, Recent>,
    global: Recent,
    /// Summed relative errors of the estimate and of the global figure on the first completion
    /// of each category where both existed: which cold-start figure to trust.
    cold_estimate_error: f64,
    cold_global_error: f64,
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
        let (work, source) = self.work(task, device.class);
        DurationPrediction {
            seconds: work * device.stretch(),
            source,
        }
    }

    /// Completions of the category learned so far, on any class.
    pub fn completions(&self, category: u32) -> u32 {
        self.per_category.get(&category).map_or(0, |r| r.count)
    }

    fn work(&self, task: &TaskFeatures, class: u32) -> (f64, DurationSource) {
        if let Some(recent) = self.per_class.get(&(task.category, class)) {
            if recent.count >= self.config.min_class_completions.max(1) {
                if let Some(work) = recent.estimate() {
                    return (work, DurationSource::CategoryClass);
                }
            }
        }
        if let Some(work) = self
            .per_category
            .get(&task.category)
            .and_then(Recent::estimate)
        {
            return (work, DurationSource::Category);
        }
        let estimate = usable(task.estimate_s);
        match (estimate, self.global.estimate()) {
            (Some(estimate), Some(global)) => {
                return if self.cold_global_error < self.cold_estimate_error {
                    (global, DurationSource::Global)
                } else {
                    (estimate, DurationSource::Estimate)
                };
            }
            (Some(estimate), None) => return (estimate, DurationSource::Estimate),
            (None, Some(global)) => return (global, DurationSource::Global),
            (None, None) => {}
        }
        let default = self.config.default_s;
        // A broken default must not leak NaN into placement; Dask's 0.5 s is as good as any.
        let default = if default.is_finite() && default > 0.0 {
            default
        } else {
            0.5
        };
        (default, DurationSource::Default)
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
        if self.completions(task.category) == 0 {
            if let (Some(estimate), Some(global)) =
                (usable(task.estimate_s), self.global.estimate())
            {
                // Both finite and positive, so the sums stay finite unless work is subnormal;
                // an infinite sum only ever loses the comparison, which is the right outcome.
                self.cold_estimate_error += (estimate - work).abs() / work;
                self.cold_global_error += (global - work).abs() / work;
            }
        }
        let window = self.window();
        self.per_class
            .entry((task.category, device.class))
            .or_default()
            .push(work, window);
        self.per_category
            .entry(task.category)
            .or_default()
            .push(work, window);
        self.global.push(work, window);
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
        // Another category still has only its prior.
        assert_eq!(model.predict(&task(2, Some(100.0)), &d).seconds, 100.0);
        // One without a prior gets the global figure, not the 0.5 s default.
        assert_eq!(
            model.predict(&task(3, None), &d).source,
            DurationSource::Global
        );
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
        // Every category runs about 1 s; the estimate says 100 s for all of them.
        for category in 0..4 {
            assert_eq!(
                model.predict(&task(category, Some(100.0)), &d).seconds,
                if category < 2 { 100.0 } else { 1.0 }
            );
            model.observe(&task(category, Some(100.0)), &d, 1.0);
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
