//! The run's outputs: the stream of partition-map changes, the final map and the summary.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use augur_dataflows::types::{DeviceId, Reorder, Resculpt, TaskKey, Time};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::engine::{
    apply_changes, DurationUpdate, ForecastUpdate, MapSink, MapUpdate, PrewarmUpdate, VariantUpdate,
};
use crate::input::time::json_seconds;
use crate::input::InputStats;
use crate::memory::{resident_mib, MemoryReading};
use augur_dataflows::contention_forecast::SeriesForecast;
use augur_dataflows::types::{fraction_from_ppm, Resource};

/// Writes `partition.jsonl` as the map changes, and keeps the current map for `final_map.json`.
pub struct MapWriter {
    catalog: Arc<Catalog>,
    out: Box<dyn Write + Send>,
    current: BTreeMap<TaskKey, DeviceId>,
    forecasts: BTreeMap<(DeviceId, Resource), SeriesForecast>,
    durations: BTreeMap<(u32, u32), u64>,
    /// First placements of tasks.
    pub placed: u64,
    /// Tasks moved from one device to another.
    pub moved: u64,
    /// Epochs seen.
    pub epochs: u64,
    /// Latency of every epoch, feeding to completion, in microseconds.
    pub latency_us: hdrhistogram::Histogram<u64>,
    progress: Option<Progress>,
    prewarm: Option<PrewarmWriter>,
    /// Warm-up actions written.
    pub prewarm_actions: u64,
    resculpt: Option<Box<dyn Write + Send>>,
    /// Re-sculpting decisions written.
    pub resculpted: u64,
    /// Read the resident set size every this many epochs (0: never).
    memory_every: u64,
    /// The readings, in epoch order.
    pub memory: Vec<MemoryReading>,
    scaleout: Option<ScaleoutWriter>,
    /// What `run --report` draws, when asked for.
    history: Option<crate::run_report::RunHistory>,
}

/// Where scale-out advice goes (`scaleout.jsonl`), and the state it is computed from.
struct ScaleoutWriter {
    out: Box<dyn Write + Send>,
    advice: crate::scaleout::Scaleout,
    horizon_s: f64,
    target: f64,
}

/// What a checkpoint keeps of a [`MapWriter`]: the map, the latest forecasts and estimates,
/// the counters and the latency histogram's recorded values.
#[derive(serde::Serialize, serde::Deserialize)]
struct WriterState {
    current: Vec<(TaskKey, DeviceId)>,
    forecasts: Vec<((DeviceId, Resource), SeriesForecast)>,
    durations: Vec<((u32, u32), u64)>,
    placed: u64,
    moved: u64,
    epochs: u64,
    prewarm_actions: u64,
    resculpted: u64,
    latency_us: Vec<(u64, u64)>,
    /// The scale-out tracker, so a resumed run advises exactly as an uninterrupted one.
    scaleout: Option<crate::scaleout::Scaleout>,
}

/// One line of `resculpt.jsonl` for a task switched to one of its alternatives (or back).
#[derive(Serialize)]
struct ResculptLine<'a> {
    time: serde_json::Value,
    workflow: &'a str,
    task: &'a str,
    action: &'static str,
    variant: String,
    reason: &'static str,
}

/// One line of `resculpt.jsonl` for a queued task the map runs ahead of a task placed before it.
#[derive(Serialize)]
struct ReorderLine<'a> {
    time: serde_json::Value,
    workflow: &'a str,
    task: &'a str,
    action: &'static str,
    device: &'a str,
    ahead_of: &'a str,
    contention: f64,
    /// When the inputs of `ahead_of` are predicted ready, and the task's predicted finish ahead
    /// of it and behind it (event time, seconds).
    ahead_of_ready: serde_json::Value,
    finish: serde_json::Value,
    finish_behind: serde_json::Value,
    reason: String,
}

/// Where warm-up advice goes, and what its reasons say.
struct PrewarmWriter {
    out: Box<dyn Write + Send>,
    horizon_s: f64,
    target: f64,
}

/// One line of `prewarm.jsonl`.
#[derive(Serialize)]
struct PrewarmLine<'a> {
    time: serde_json::Value,
    group: &'a str,
    action: &'static str,
    amount: u32,
    reason: String,
}

struct Progress {
    every: Duration,
    last: Instant,
}

impl MapWriter {
    /// A writer of map changes to `out`; with `progress`, a line on stderr every few seconds.
    pub fn new(catalog: Arc<Catalog>, out: Box<dyn Write + Send>, progress: bool) -> MapWriter {
        MapWriter {
            catalog,
            out,
            current: BTreeMap::new(),
            forecasts: BTreeMap::new(),
            durations: BTreeMap::new(),
            placed: 0,
            moved: 0,
            epochs: 0,
            latency_us: new_histogram(),
            progress: progress.then(|| Progress {
                every: Duration::from_secs(2),
                last: Instant::now(),
            }),
            prewarm: None,
            prewarm_actions: 0,
            resculpt: None,
            resculpted: 0,
            memory_every: 0,
            memory: Vec::new(),
            scaleout: None,
            history: None,
        }
    }

    /// Also keeps a bounded history of the forecasts and the map for `report.html`.
    pub fn with_history(mut self) -> MapWriter {
        self.history = Some(crate::run_report::RunHistory::default());
        self
    }

    /// The history kept (see [`MapWriter::with_history`]), if any.
    pub fn history(&self) -> Option<&crate::run_report::RunHistory> {
        self.history.as_ref()
    }

    /// Also writes scale-out advice to `out` (`scaleout.jsonl`): one line each time a device
    /// pool's recommended instance count changes (see [`crate::scaleout`] for the rule).
    pub fn with_scaleout(
        mut self,
        out: Box<dyn Write + Send>,
        horizon_ms: Time,
        target: f64,
    ) -> Self {
        let advice = crate::scaleout::Scaleout::new(
            self.catalog.device_specs(),
            self.catalog.classes.clone(),
            target,
            horizon_ms,
        );
        self.scaleout = Some(ScaleoutWriter {
            out,
            advice,
            horizon_s: horizon_ms as f64 / 1000.0,
            target,
        });
        self
    }

    /// Also reads the resident set size every `every` epochs (for soak runs; 0 never does).
    pub fn with_memory_readings(mut self, every: u64) -> MapWriter {
        self.memory_every = every;
        self
    }

    /// Also writes re-sculpting decisions to `out` (`resculpt.jsonl`): one line each time a
    /// task is switched to one of its alternatives, or back to its declared variant.
    pub fn with_resculpt(mut self, out: Box<dyn Write + Send>) -> Self {
        self.resculpt = Some(out);
        self
    }

    /// Also writes warm-up advice to `out` (`prewarm.jsonl`), one line each time a group's
    /// advised amount rises above zero or changes; `horizon_s` and `target` go into the reasons.
    pub fn with_prewarm(mut self, out: Box<dyn Write + Send>, horizon_s: f64, target: f64) -> Self {
        self.prewarm = Some(PrewarmWriter {
            out,
            horizon_s,
            target,
        });
        self
    }

    /// The map now: workflow name → task id → device name, keys sorted.
    pub fn final_map(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut map: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (task, device) in &self.current {
            let (workflow, id) = self.catalog.task_names(*task);
            map.entry(workflow.to_string()).or_default().insert(
                id.to_string(),
                self.catalog.device_name(*device).to_string(),
            );
        }
        map
    }

    /// The latest sample and the predicted utilisation of every series that has reported:
    /// device name → resource → forecast.
    pub fn forecasts(&self) -> BTreeMap<String, BTreeMap<String, ForecastView>> {
        let mut view: BTreeMap<String, BTreeMap<String, ForecastView>> = BTreeMap::new();
        for ((device, resource), forecast) in &self.forecasts {
            view.entry(self.catalog.device_name(*device).to_string())
                .or_default()
                .insert(
                    resource.name().to_string(),
                    ForecastView {
                        latest: fraction_from_ppm(forecast.latest),
                        predicted: fraction_from_ppm(forecast.predicted),
                        sigma: fraction_from_ppm(forecast.sigma),
                        anomaly: fraction_from_ppm(forecast.anomaly),
                    },
                );
        }
        view
    }

    /// What the duration model predicts, in seconds at speed 1 without contention, for a task of
    /// each kind on each device class that completions have taught it: kind → class (its
    /// devices, comma-separated) → seconds; and, under `ratio to estimate: ` and the class, the
    /// kind's learned ratio of actual to estimated duration there.
    pub fn durations(&self) -> BTreeMap<String, BTreeMap<String, f64>> {
        use augur_dataflows::task_durations::RATIO_CLASS;
        let mut view: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        for ((kind, class), value) in &self.durations {
            let kind = self
                .catalog
                .kinds
                .get(*kind as usize)
                .cloned()
                .unwrap_or_else(|| kind.to_string());
            let (name, value) = if class & RATIO_CLASS == 0 {
                (self.catalog.class_name(*class), *value as f64 / 1000.0)
            } else {
                let class = self.catalog.class_name(class & !RATIO_CLASS);
                (format!("ratio to estimate: {class}"), *value as f64 / 1e6)
            };
            view.entry(kind).or_default().insert(name, value);
        }
        view
    }

    /// Takes back the state of a checkpoint's [`MapSink::snapshot`] (the writer's files having
    /// been cut back to the lengths the checkpoint recorded).
    pub fn restore(&mut self, time: Time, bytes: &[u8]) -> Result<(), String> {
        let state: WriterState = crate::checkpoint::decode(bytes)?;
        self.current = state.current.into_iter().collect();
        self.forecasts = state.forecasts.into_iter().collect();
        self.durations = state.durations.into_iter().collect();
        self.placed = state.placed;
        self.moved = state.moved;
        self.epochs = state.epochs;
        self.prewarm_actions = state.prewarm_actions;
        self.resculpted = state.resculpted;
        if let (Some(writer), Some(advice)) = (&mut self.scaleout, state.scaleout) {
            writer.advice = advice;
        }
        if let Some(history) = &mut self.history {
            let forecasts: Vec<ForecastUpdate> =
                self.forecasts.iter().map(|(k, v)| ((*k, *v), 1)).collect();
            history.resume(time, self.current.values().copied(), &forecasts);
        }
        self.latency_us = new_histogram();
        for (value, count) in state.latency_us {
            // Out-of-range values cannot come from a histogram of these bounds; skip, not fail.
            let _ = self.latency_us.record_n(value, count);
        }
        Ok(())
    }

    /// Tasks in the map now.
    pub fn len(&self) -> usize {
        self.current.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }

    /// Flushes the change log.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if let Some(scaleout) = &mut self.scaleout {
            scaleout.out.flush()?;
        }
        self.out.flush()
    }
}

/// A histogram of microseconds from 1 µs to an hour, 3 significant digits.
pub fn new_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .expect("constant histogram bounds are valid")
}

/// One series in `forecasts.json`, as fractions of capacity.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ForecastView {
    /// The latest sample.
    pub latest: f64,
    /// Mean predicted utilisation over the forecast horizon.
    pub predicted: f64,
    /// Sigma of the forecast error at the horizon.
    pub sigma: f64,
    /// Anomaly score of the latest sample, 0 to 1 (0.5 and above is anomalous).
    pub anomaly: f64,
}

#[derive(Serialize)]
struct ChangeLine<'a> {
    time: serde_json::Value,
    workflow: &'a str,
    task: &'a str,
    device: &'a str,
    diff: isize,
}

impl MapSink for MapWriter {
    type Error = std::io::Error;

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, std::io::Error> {
        // Everything written so far must be on disk before a checkpoint records the lengths.
        self.out.flush()?;
        if let Some(prewarm) = &mut self.prewarm {
            prewarm.out.flush()?;
        }
        if let Some(resculpt) = &mut self.resculpt {
            resculpt.flush()?;
        }
        if let Some(scaleout) = &mut self.scaleout {
            scaleout.out.flush()?;
        }
        let state = WriterState {
            current: self.current.iter().map(|(k, v)| (*k, *v)).collect(),
            forecasts: self.forecasts.iter().map(|(k, v)| (*k, *v)).collect(),
            durations: self.durations.iter().map(|(k, v)| (*k, *v)).collect(),
            placed: self.placed,
            moved: self.moved,
            epochs: self.epochs,
            prewarm_actions: self.prewarm_actions,
            resculpted: self.resculpted,
            latency_us: self
                .latency_us
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
            scaleout: self.scaleout.as_ref().map(|writer| writer.advice.clone()),
        };
        crate::checkpoint::encode(&state)
            .map(Some)
            .map_err(std::io::Error::other)
    }

    fn prewarm(&mut self, time: Time, changes: &[PrewarmUpdate]) -> Result<(), std::io::Error> {
        if let Some(scaleout) = &mut self.scaleout {
            scaleout.advice.on_prewarm(changes);
        }
        let Some(writer) = &mut self.prewarm else {
            return Ok(());
        };
        for &((class, amount), diff) in changes {
            if diff <= 0 {
                continue;
            }
            let group = self.catalog.class_name(class);
            let devices = group.split(',').count();
            let line = PrewarmLine {
                time: json_seconds(time),
                group: &group,
                action: "prewarm",
                amount,
                reason: format!(
                    "predicted demand within {} s exceeds {:.0}% of the {} device(s) of this \
                     group: {} more needed",
                    writer.horizon_s,
                    writer.target * 100.0,
                    devices,
                    amount
                ),
            };
            serde_json::to_writer(&mut writer.out, &line)?;
            writer.out.write_all(b"\n")?;
            self.prewarm_actions += 1;
        }
        Ok(())
    }

    fn variants(&mut self, time: Time, changes: &[VariantUpdate]) -> Result<(), std::io::Error> {
        let Some(out) = &mut self.resculpt else {
            return Ok(());
        };
        for line in resculpt_lines(&self.catalog, time, changes)? {
            out.write_all(&line)?;
            out.write_all(b"\n")?;
            self.resculpted += 1;
        }
        Ok(())
    }

    fn durations(&mut self, _time: Time, changes: &[DurationUpdate]) -> Result<(), std::io::Error> {
        apply_changes(&mut self.durations, changes);
        Ok(())
    }

    fn forecasts(&mut self, time: Time, changes: &[ForecastUpdate]) -> Result<(), std::io::Error> {
        if let Some(scaleout) = &mut self.scaleout {
            scaleout.advice.on_forecasts(changes);
        }
        if let Some(history) = &mut self.history {
            history.forecasts(time, changes);
        }
        apply_changes(&mut self.forecasts, changes);
        Ok(())
    }

    fn epoch(
        &mut self,
        time: Time,
        changes: &[MapUpdate],
        latency: Duration,
    ) -> Result<(), std::io::Error> {
        self.epochs += 1;
        let _ = self.latency_us.record((latency.as_micros() as u64).max(1));
        let moved_before = self.moved;
        let mut left: BTreeMap<TaskKey, DeviceId> = BTreeMap::new();
        for &((task, device), diff) in changes {
            let (workflow, id) = self.catalog.task_names(task);
            let line = ChangeLine {
                time: json_seconds(time),
                workflow,
                task: id,
                device: self.catalog.device_name(device),
                diff,
            };
            serde_json::to_writer(&mut self.out, &line)?;
            self.out.write_all(b"\n")?;
            if diff < 0 {
                left.insert(task, device);
            }
        }
        for &((task, device), diff) in changes {
            if diff < 0 {
                if self.current.get(&task) == Some(&device) {
                    self.current.remove(&task);
                }
            } else if diff > 0 {
                if left.contains_key(&task) {
                    self.moved += 1;
                } else {
                    self.placed += 1;
                }
                self.current.insert(task, device);
            }
        }
        if let Some(history) = &mut self.history {
            history.epoch(time, changes, self.moved - moved_before);
        }
        if self.memory_every > 0 && self.epochs.is_multiple_of(self.memory_every) {
            self.memory.push(MemoryReading {
                epochs: self.epochs,
                time: json_seconds(time),
                rss_mib: resident_mib(),
            });
        }
        if let Some(scaleout) = &mut self.scaleout {
            let catalog = &self.catalog;
            scaleout.advice.on_map(changes, |task| catalog.spec(task));
            for pool in scaleout.advice.changes() {
                let line = crate::scaleout::ScaleoutLine {
                    time: json_seconds(time),
                    pool: catalog.class_name(pool.class),
                    instances: pool.instances,
                    current: pool.current,
                    reason: pool.reason(scaleout.horizon_s, scaleout.target),
                    warm_up: pool.instances.saturating_sub(pool.current),
                };
                serde_json::to_writer(&mut scaleout.out, &line)?;
                scaleout.out.write_all(b"\n")?;
            }
        }
        if let Some(progress) = &mut self.progress {
            if progress.last.elapsed() >= progress.every {
                progress.last = Instant::now();
                crate::say!(
                    "augur: {} epochs, event time {} s, {} tasks mapped, {} placed, {} moved",
                    self.epochs,
                    crate::input::time::format_seconds(time),
                    self.current.len(),
                    self.placed,
                    self.moved
                );
            }
        }
        Ok(())
    }
}

/// Counts of one input in `summary.json`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InputSummary {
    /// Records read.
    pub read: u64,
    /// Records accepted.
    pub accepted: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Bad fields dropped from rows that were otherwise accepted.
    pub dropped_fields: u64,
}

impl From<InputStats> for InputSummary {
    fn from(stats: InputStats) -> Self {
        InputSummary {
            read: stats.read,
            accepted: stats.accepted,
            rejected: stats.rejected,
            dropped_fields: stats.dropped_fields,
        }
    }
}

/// Percentiles of epoch latency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Median, microseconds.
    pub p50_us: u64,
    /// 99th percentile, microseconds.
    pub p99_us: u64,
    /// Maximum, microseconds.
    pub max_us: u64,
}

impl LatencySummary {
    /// Percentiles of a histogram of microseconds.
    pub fn of(histogram: &hdrhistogram::Histogram<u64>) -> LatencySummary {
        LatencySummary {
            p50_us: histogram.value_at_quantile(0.5),
            p99_us: histogram.value_at_quantile(0.99),
            max_us: histogram.max(),
        }
    }
}

/// `summary.json`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Per input path, what was read, accepted and rejected.
    pub inputs: BTreeMap<String, InputSummary>,
    /// Epochs (distinct event times) processed.
    pub epochs: u64,
    /// First placements of tasks.
    pub tasks_placed: u64,
    /// Tasks moved between devices.
    pub tasks_moved: u64,
    /// Wall-clock seconds of the run.
    pub wall_s: f64,
    /// Rejection lines written to `rejected.jsonl`.
    pub rejected_lines: u64,
    /// Tasks in the final map.
    pub tasks_in_final_map: u64,
    /// Devices in the platform.
    pub devices: u64,
    /// Worker threads per process.
    pub workers: u64,
    /// Processes.
    pub processes: u64,
    /// Epoch latency, feeding to completion.
    pub epoch_latency: LatencySummary,
    /// The placement policy.
    pub policy: String,
    /// Warm-up actions written to `prewarm.jsonl`.
    pub prewarm_actions: u64,
    /// Re-sculpting decisions written to `resculpt.jsonl`.
    pub resculpted: u64,
    /// Largest resident set size of this process over the run, MiB (where Linux reports it).
    pub peak_rss_mib: Option<f64>,
    /// Resident set size along the run, when readings were asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub memory: Vec<MemoryReading>,
    /// What was read in a way worth knowing though nothing was refused, each line naming its
    /// input (tasks without a runtime, runtimes restated at the reference clock).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Summary {
    /// The inputs that had records but none accepted: most often a wrong `--format` or a
    /// `--map` naming no device, which a run should point out rather than finish quietly.
    pub fn inputs_with_nothing_accepted(&self) -> impl Iterator<Item = (&str, &InputSummary)> {
        self.inputs
            .iter()
            .filter(|(_, counts)| counts.read > 0 && counts.accepted == 0)
            .map(|(path, counts)| (path.as_str(), counts))
    }
}

/// The `resculpt.jsonl` lines (JSON, without newlines) of one epoch's re-sculpting changes: a
/// task switched to an alternative or back (one that left one alternative for another is
/// reported once, by its new one), and each new decision to run a queued task ahead of its
/// placement order (the order a queue stops keeping is not news: the task started, finished or
/// moved, or the head it went ahead of is ready).
pub(crate) fn resculpt_lines(
    catalog: &Catalog,
    time: Time,
    changes: &[VariantUpdate],
) -> Result<Vec<Vec<u8>>, std::io::Error> {
    let inserted: std::collections::BTreeSet<TaskKey> = changes
        .iter()
        .filter_map(|(resculpt, diff)| match resculpt {
            Resculpt::Variant(task, _) if *diff > 0 => Some(*task),
            _ => None,
        })
        .collect();
    let mut lines = Vec::new();
    for &(resculpt, diff) in changes {
        let line = match resculpt {
            Resculpt::Variant(task, _) if diff < 0 && inserted.contains(&task) => continue,
            Resculpt::Variant(task, variant) => {
                variant_line(catalog, time, task, variant, diff > 0)?
            }
            Resculpt::Reorder(_) if diff < 0 => continue,
            Resculpt::Reorder(reorder) => reorder_line(catalog, time, &reorder)?,
        };
        lines.push(line);
    }
    Ok(lines)
}

/// The `resculpt.jsonl` line of a task switched to an alternative (`entered`) or back.
fn variant_line(
    catalog: &Catalog,
    time: Time,
    task: TaskKey,
    variant: u32,
    entered: bool,
) -> Result<Vec<u8>, std::io::Error> {
    let (workflow, id) = catalog.task_names(task);
    let (variant, reason) = if entered {
        (
            catalog.variant_name(task, variant),
            "under the current forecasts this alternative is predicted to finish well sooner (or \
             has room where the declared task has none)",
        )
    } else {
        (
            "declared".to_string(),
            "the alternative no longer beats the declared task by the re-sculpting margin",
        )
    };
    let line = ResculptLine {
        time: json_seconds(time),
        workflow,
        task: id,
        action: "alternative",
        variant,
        reason,
    };
    Ok(serde_json::to_vec(&line)?)
}

/// The `resculpt.jsonl` line of a queued task run ahead of its placement order.
fn reorder_line(
    catalog: &Catalog,
    time: Time,
    reorder: &Reorder,
) -> Result<Vec<u8>, std::io::Error> {
    let (workflow, id) = catalog.task_names(reorder.task);
    let (_, head) = catalog.task_names(reorder.ahead_of);
    let device = catalog.device_name(reorder.device);
    let contention = fraction_from_ppm(reorder.contention);
    let from_now = |at: i64| at.saturating_sub(time) as f64 / 1000.0;
    let reason = format!(
        "{device} is predicted at {:.0}% contention (severe congestion) and the inputs of {head}, \
         next in its queue, are not ready for {:.1} s: this task runs in that wait and is \
         predicted to finish in {:.1} s instead of {:.1} s behind it, with {head} finishing no \
         later",
        contention * 100.0,
        from_now(reorder.head_ready_ms),
        from_now(reorder.finish_ms),
        from_now(reorder.behind_ms),
    );
    let line = ReorderLine {
        time: json_seconds(time),
        workflow,
        task: id,
        action: "reorder",
        device,
        ahead_of: head,
        contention,
        ahead_of_ready: json_seconds(reorder.head_ready_ms),
        finish: json_seconds(reorder.finish_ms),
        finish_behind: json_seconds(reorder.behind_ms),
        reason,
    };
    Ok(serde_json::to_vec(&line)?)
}
