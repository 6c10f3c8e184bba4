//! What one simulated run produced: the figures of its JSON line, and the detail the report
//! draws (the schedule, predicted against actual utilisation).

use augur_dataflows::placement::Policy;
use std::path::Path;

use serde::Serialize;

use super::cluster::{Cluster, TaskRecord};
use super::heft::Plan;
use super::SimError;

/// Devices whose utilisation the report draws.
pub const REPORT_DEVICES: usize = 4;

/// One line of `augur simulate --json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// The workflow's file stem.
    pub workflow: String,
    /// The policy.
    pub policy: String,
    /// From the workflow's arrival to its last completion, seconds.
    pub makespan_s: f64,
    /// Mean over tasks of the time from ready (last parent done) to start, seconds.
    pub mean_task_wait_s: f64,
    /// 95th percentile over tasks of actual run time over run time alone on that device.
    pub p95_task_slowdown: f64,
    /// Bytes of parents' outputs moved between different devices.
    pub bytes_moved: u64,
    /// What the devices' time cost (each task pays its share of its device's price per hour
    /// while it runs), in the platform's currency.
    pub cost: f64,
    /// Energy drawn, the same way from `power_watts`, joules.
    pub energy_j: f64,
    /// Mean absolute error of the dataflow's CPU forecasts (mean over the horizon) against the
    /// background that followed, as a fraction of capacity; null for policies that do not
    /// forecast.
    pub forecast_mae: Option<f64>,
}

/// A device's utilisation over the run, for the report.
#[derive(Clone, Debug, PartialEq)]
pub struct UtilisationView {
    /// The device.
    pub device: String,
    /// `(seconds from arrival, actual background, latest forecast if any)`.
    pub points: Vec<(f64, f64, Option<f64>)>,
}

/// One run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The JSON line.
    pub summary: Summary,
    /// Every task, times from the workflow's arrival.
    pub records: Vec<TaskRecord>,
    /// Device names, by id.
    pub devices: Vec<String>,
    /// How many times each task started.
    pub starts: Vec<u32>,
    /// Each task's parents.
    pub parents: Vec<Vec<u32>>,
    /// Each device's cores.
    pub device_cores: Vec<f64>,
    /// The static plan's makespan (`heft` only).
    pub planned_makespan: Option<f64>,
    /// Changes of a placed task's device in the map.
    pub map_moves: u64,
    /// Utilisation of a few devices.
    pub utilisation: Vec<UtilisationView>,
}

impl Outcome {
    /// The outcome of a finished simulation.
    pub fn of(
        workflow: &str,
        policy: Policy,
        cluster: &Cluster,
        horizon_s: f64,
        plan: Option<&Plan>,
    ) -> Result<Outcome, SimError> {
        let arrival = cluster.arrival;
        let records: Vec<TaskRecord> = cluster
            .records()
            .into_iter()
            .map(|r| {
                r.map(|r| TaskRecord {
                    ready: r.ready - arrival,
                    start: r.start - arrival,
                    end: r.end - arrival,
                    ..r
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                SimError::Internal(format!(
                    "{workflow} {}: the run ended with tasks not completed",
                    policy.name()
                ))
            })?;
        let devices: Vec<String> = cluster
            .platform
            .platform
            .devices
            .iter()
            .map(|d| d.id.clone())
            .collect();
        let makespan_s = records.iter().map(|r| r.end).fold(0.0, f64::max);
        let n = records.len().max(1) as f64;
        let mean_task_wait_s = records.iter().map(|r| r.start - r.ready).sum::<f64>() / n;
        let mut slowdowns: Vec<f64> = records
            .iter()
            .filter(|r| r.uncontended > 0.0)
            .map(|r| (r.end - r.start) / r.uncontended)
            .collect();
        slowdowns.sort_by(f64::total_cmp);
        let p95_task_slowdown = percentile(&slowdowns, 0.95).unwrap_or(1.0);
        let mut bytes_moved = 0u64;
        for (child, parents) in cluster.dag.parents.iter().enumerate() {
            for &(parent, bytes) in parents {
                if records[parent as usize].device != records[child].device {
                    bytes_moved = bytes_moved.saturating_add(bytes);
                }
            }
        }
        let (mut cost, mut energy_j) = (0.0, 0.0);
        for r in &records {
            let device = &cluster.platform.platform.devices[r.device];
            let share = r.cores / device.cores.max(1e-9);
            let seconds = r.end - r.start;
            cost += device.cost_per_hour * share * seconds / 3600.0;
            energy_j += device.power_watts * share * seconds;
        }
        let forecast_mae = policy
            .uses_forecasts()
            .then(|| forecast_mae(cluster, arrival, arrival + makespan_s, horizon_s))
            .flatten();
        let utilisation = utilisation(cluster, &devices, arrival, makespan_s);
        Ok(Outcome {
            summary: Summary {
                workflow: workflow.to_string(),
                policy: policy.name().to_string(),
                makespan_s,
                mean_task_wait_s,
                p95_task_slowdown,
                bytes_moved,
                cost,
                energy_j,
                forecast_mae,
            },
            records,
            device_cores: cluster
                .platform
                .platform
                .devices
                .iter()
                .map(|d| d.cores)
                .collect(),
            devices,
            starts: cluster.starts.clone(),
            parents: cluster
                .dag
                .parents
                .iter()
                .map(|p| p.iter().map(|&(q, _)| q).collect())
                .collect(),
            planned_makespan: plan.map(Plan::makespan),
            map_moves: cluster.map_moves,
            utilisation,
        })
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Mean |forecast − mean background over the following horizon| over the forecasts published
/// while the workflow ran.
fn forecast_mae(cluster: &Cluster, from: f64, to: f64, horizon_s: f64) -> Option<f64> {
    let errors: Vec<f64> = cluster
        .forecasts
        .iter()
        .filter(|(t, _, _)| *t >= from && *t <= to)
        .map(|&(t, device, predicted)| {
            (predicted - cluster.background.mean(device, t, t + horizon_s)).abs()
        })
        .collect();
    (!errors.is_empty()).then(|| errors.iter().sum::<f64>() / errors.len() as f64)
}

fn utilisation(
    cluster: &Cluster,
    devices: &[String],
    arrival: f64,
    makespan_s: f64,
) -> Vec<UtilisationView> {
    if cluster.background.is_empty() {
        return Vec::new();
    }
    let steps = 120;
    let step = (makespan_s / steps as f64).max(1e-3);
    devices
        .iter()
        .enumerate()
        .take(REPORT_DEVICES)
        .map(|(device, name)| {
            let forecasts: Vec<(f64, f64)> = cluster
                .forecasts
                .iter()
                .filter(|(_, d, _)| *d == device)
                .map(|&(t, _, p)| (t, p))
                .collect();
            let points = (0..=steps)
                .map(|i| {
                    let t = arrival + i as f64 * step;
                    let latest = forecasts.partition_point(|(ft, _)| *ft <= t);
                    let predicted = latest.checked_sub(1).map(|j| forecasts[j].1);
                    (t - arrival, cluster.background.value(device, t), predicted)
                })
                .collect();
            UtilisationView {
                device: name.clone(),
                points,
            }
        })
        .collect()
}

/// Most background values a task trace writes per device (a day of seconds).
const TRACE_POINTS: usize = 86_400;

/// Writes one run's per-task trace to `DIR/WORKFLOW-POLICY.json` (opt-in diagnostics, see
/// `--trace-tasks`): every task's times and device, each device's speed and trace, its background
/// each second of the run (every `background_step_s` seconds in runs over a day), and the
/// forecasts published during it, so a run can be taken apart offline (where tasks waited, what
/// the forecasts said against what came).
pub fn write_task_trace(dir: &Path, outcome: &Outcome, cluster: &Cluster) -> Result<(), SimError> {
    let arrival = cluster.arrival;
    let makespan = outcome.summary.makespan_s;
    let tasks: Vec<serde_json::Value> = outcome
        .records
        .iter()
        .enumerate()
        .map(|(t, r)| {
            serde_json::json!({
                "task": t, "ready": r.ready, "start": r.start, "end": r.end, "device": r.device,
                "uncontended": r.uncontended, "work": cluster.dag.work_s[t],
                "parents": cluster.dag.parents[t].iter().map(|&(p, b)| (p, b)).collect::<Vec<_>>(),
            })
        })
        .collect();
    // The background every second, or every few seconds where a long run would otherwise
    // write (and hold) more than TRACE_POINTS values per device.
    let step_s = (makespan / TRACE_POINTS as f64).ceil().max(1.0);
    let points = (makespan / step_s).ceil() as usize + 1;
    let devices: Vec<serde_json::Value> = cluster
        .platform
        .platform
        .devices
        .iter()
        .enumerate()
        .map(|(d, device)| {
            let background: Vec<f64> = (0..points)
                .map(|s| {
                    cluster
                        .background
                        .value(d, arrival + s as f64 * step_s + 1e-6)
                })
                .collect();
            serde_json::json!({
                "id": device.id, "speed": device.speed,
                "trace": cluster.background.trace_name(d), "background": background,
            })
        })
        .collect();
    let forecasts: Vec<(f64, usize, f64)> = cluster
        .forecasts
        .iter()
        .filter(|(t, _, _)| *t >= arrival - 600.0 && *t <= arrival + makespan)
        .map(|&(t, d, p)| (t - arrival, d, p))
        .collect();
    let value = serde_json::json!({
        "summary": outcome.summary, "planned_makespan": outcome.planned_makespan,
        "tasks": tasks, "devices": devices, "background_step_s": step_s, "forecasts": forecasts,
    });
    // One path component of a length any file system takes, whatever the workflow's name.
    let stem = format!("{}-{}", outcome.summary.workflow, outcome.summary.policy);
    let path = dir.join(format!(
        "{}.json",
        crate::file_names::bounded(&crate::file_names::file_safe(&stem))
    ));
    let text = serde_json::to_string(&value)
        .map_err(|e| SimError::Internal(format!("task trace: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|source| SimError::Output {
        path: dir.to_path_buf(),
        source,
    })?;
    std::fs::write(&path, text).map_err(|source| SimError::Output { path, source })
}
