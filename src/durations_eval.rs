//! `augur durations`: how well the task-duration model predicts the real runtimes of WfInstances
//! workflows, replayed as a stream of completions.
//!
//! In WfInstances `runtimeInSeconds` is the measured runtime, so a task's own runtime must never
//! be its prior. Each workflow is replayed on its own, from an empty model. Tasks complete in a
//! topological order (file order among the ready tasks); each task is predicted from the
//! model's state before its own completion, and then its runtime is learned. All on one device
//! of speed 1 without contention: the files record no per-task start times, so contention
//! cannot be reconstructed.
//!
//! The model sees what a scheduler would know of a task before it runs: its kind, its input and
//! output sizes, and the completions of the tasks before it. It gets no per-task estimate:
//! WfInstances has none but the measurement itself. The *prior* column is a baseline only: one
//! workflow-level figure for every task, the median runtime of the workflow's tasks (what a user
//! who knows how long a typical task of the workflow takes would say; it is built from the very
//! runtimes being predicted, so the model is not given it).
//!
//! A prediction is *scored* when its category had at least `--after` completions before it;
//! earlier ones are *early* and reported apart. Tasks whose recorded runtime is not positive
//! (Nextflow rounds sub-second runs to 0) cannot be scored by a relative error; they are counted
//! as *unscorable*. Every task is one of scored, early or unscorable. Errors are MAPE in percent,
//! pooled over tasks, against the same predictions made by the prior alone and by Dask's 500 ms
//! constant for unseen tasks. MAPE rewards predicting near zero (under-prediction costs at most
//! 100%, over-prediction without bound), so the median absolute percentage error and the mean
//! absolute error in seconds of the model and of Dask are reported beside it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Write;
use std::path::Path;

use augur_dataflows::duration::{DeviceFeatures, DurationConfig, DurationModel, TaskFeatures};
use serde::Serialize;

use crate::cli::DurationsArgs;
use crate::input::wfformat::{read_workflow, Workflow};

/// Dask's duration for a task type it has not yet seen finish.
pub const DASK_DEFAULT_S: f64 = 0.5;

/// Why `augur durations` stopped.
#[derive(Debug, thiserror::Error)]
pub enum DurationsError {
    /// A flag's value is unusable (a file given twice to `--workflow`).
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// A workflow file could not be used.
    #[error("{path}: {reason}")]
    Workflow {
        /// The file.
        path: String,
        /// Why (its first problem, and how many there were).
        reason: String,
    },
    /// The report could not be written.
    #[error("writing the report: {0}")]
    Output(#[from] std::io::Error),
}

/// Summed absolute percentage errors of the model, the prior and Dask over some predictions,
/// and what the other measures need.
#[derive(Clone, Debug, Default, PartialEq)]
struct Errors {
    count: u64,
    model: f64,
    prior: f64,
    dask: f64,
    /// Every absolute percentage error of the model and of Dask, for their medians.
    model_apes: Vec<f64>,
    dask_apes: Vec<f64>,
    /// Summed absolute errors in seconds of the model and of Dask.
    model_abs_s: f64,
    dask_abs_s: f64,
}

impl Errors {
    fn add(&mut self, actual: f64, model: f64, prior: f64) {
        let ape = |predicted: f64| 100.0 * (predicted - actual).abs() / actual;
        self.count += 1;
        self.model += ape(model);
        self.prior += ape(prior);
        self.dask += ape(DASK_DEFAULT_S);
        self.model_apes.push(ape(model));
        self.dask_apes.push(ape(DASK_DEFAULT_S));
        self.model_abs_s += (model - actual).abs();
        self.dask_abs_s += (DASK_DEFAULT_S - actual).abs();
    }

    fn merge(&mut self, other: &Errors) {
        self.count += other.count;
        self.model += other.model;
        self.prior += other.prior;
        self.dask += other.dask;
        self.model_apes.extend_from_slice(&other.model_apes);
        self.dask_apes.extend_from_slice(&other.dask_apes);
        self.model_abs_s += other.model_abs_s;
        self.dask_abs_s += other.dask_abs_s;
    }

    /// Median APE of (model, Dask) and MAE in seconds of (model, Dask); `None` without
    /// predictions.
    fn others(&self) -> [Option<f64>; 4] {
        if self.count == 0 {
            return [None; 4];
        }
        let n = self.count as f64;
        [
            median(&self.model_apes),
            median(&self.dask_apes),
            Some(self.model_abs_s / n),
            Some(self.dask_abs_s / n),
        ]
    }

    /// MAPE of (model, prior, Dask); `None` without predictions.
    fn mapes(&self) -> (Option<f64>, Option<f64>, Option<f64>) {
        if self.count == 0 {
            return (None, None, None);
        }
        let n = self.count as f64;
        (
            Some(self.model / n),
            Some(self.prior / n),
            Some(self.dask / n),
        )
    }
}

/// Errors of one workflow and category, or of a whole workflow, or of everything.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DurationRow {
    /// The workflow (file stem), or `ALL`.
    pub workflow: String,
    /// The task category, or `ALL` for a whole workflow.
    pub category: String,
    /// Predictions made after at least `--after` completions of the category.
    pub scored: u64,
    /// The model's MAPE (percent) over them; `null` when none.
    pub mape: Option<f64>,
    /// MAPE of the prior alone (the workflow's median runtime) over the same tasks.
    pub prior_mape: Option<f64>,
    /// MAPE of Dask's 500 ms constant over the same tasks.
    pub dask_mape: Option<f64>,
    /// Predictions made before `--after` completions of the category.
    pub early: u64,
    /// The model's MAPE over the early predictions.
    pub early_mape: Option<f64>,
    /// The prior's MAPE over them.
    pub early_prior_mape: Option<f64>,
    /// Dask's MAPE over them.
    pub early_dask_mape: Option<f64>,
    /// Tasks whose recorded runtime is not positive, so no relative error exists.
    pub unscorable: u64,
    /// The model's median absolute percentage error over the scored predictions.
    pub median_ape: Option<f64>,
    /// Dask's, over the same.
    pub dask_median_ape: Option<f64>,
    /// The model's mean absolute error over the scored predictions, seconds.
    pub mae_s: Option<f64>,
    /// Dask's, over the same.
    pub dask_mae_s: Option<f64>,
    /// The model's median absolute percentage error over the early predictions.
    pub early_median_ape: Option<f64>,
    /// Dask's, over the same.
    pub early_dask_median_ape: Option<f64>,
    /// The model's mean absolute error over the early predictions, seconds.
    pub early_mae_s: Option<f64>,
    /// Dask's, over the same.
    pub early_dask_mae_s: Option<f64>,
}

/// Everything `augur durations` measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DurationReport {
    /// Completions of a category after which predictions are scored.
    pub after: usize,
    /// One row per workflow and category, workflows in argument order, categories by name.
    pub categories: Vec<DurationRow>,
    /// One row per workflow (`category` = `ALL`), in argument order.
    pub workflows: Vec<DurationRow>,
    /// Every task of every workflow.
    pub overall: DurationRow,
}

#[derive(Clone, Debug, Default)]
struct Tally {
    scored: Errors,
    early: Errors,
    unscorable: u64,
}

impl Tally {
    fn merge(&mut self, other: &Tally) {
        self.scored.merge(&other.scored);
        self.early.merge(&other.early);
        self.unscorable += other.unscorable;
    }

    fn row(&self, workflow: &str, category: &str) -> DurationRow {
        let (mape, prior_mape, dask_mape) = self.scored.mapes();
        let (early_mape, early_prior_mape, early_dask_mape) = self.early.mapes();
        let [median_ape, dask_median_ape, mae_s, dask_mae_s] = self.scored.others();
        let [early_median_ape, early_dask_median_ape, early_mae_s, early_dask_mae_s] =
            self.early.others();
        DurationRow {
            workflow: workflow.to_string(),
            category: category.to_string(),
            scored: self.scored.count,
            mape,
            prior_mape,
            dask_mape,
            early: self.early.count,
            early_mape,
            early_prior_mape,
            early_dask_mape,
            unscorable: self.unscorable,
            median_ape,
            dask_median_ape,
            mae_s,
            dask_mae_s,
            early_median_ape,
            early_dask_median_ape,
            early_mae_s,
            early_dask_mae_s,
        }
    }
}

/// Replays the workflows and writes the report: a table, or JSON lines with `--json`.
pub fn run(args: &DurationsArgs, out: &mut dyn Write) -> Result<DurationReport, DurationsError> {
    crate::series::check_distinct(&args.workflows).map_err(|reason| DurationsError::Flag {
        flag: "--workflow",
        reason,
    })?;
    let mut workflows = Vec::with_capacity(args.workflows.len());
    for path in &args.workflows {
        workflows.push(load(path)?);
    }
    let report = evaluate(&workflows, args.after, DurationConfig::default());
    if args.json {
        write_json(&report, out)?;
    } else {
        write_table(&report, out)?;
    }
    Ok(report)
}

fn load(path: &Path) -> Result<Workflow, DurationsError> {
    let read = read_workflow(path);
    match read.workflow {
        Some(workflow) => Ok(workflow),
        None => {
            let reason = match read.rejections.first() {
                Some(first) => format!(
                    "{} ({} problem{} in all)",
                    first.reason,
                    read.rejections.len(),
                    if read.rejections.len() == 1 { "" } else { "s" }
                ),
                None => "unusable workflow".to_string(),
            };
            Err(DurationsError::Workflow {
                path: path.display().to_string(),
                reason,
            })
        }
    }
}

/// The replay itself, without I/O: each workflow from an empty model with `config`.
pub fn evaluate(workflows: &[Workflow], after: usize, config: DurationConfig) -> DurationReport {
    let mut categories = Vec::new();
    let mut rows = Vec::new();
    let mut overall = Tally::default();
    for workflow in workflows {
        let per_category = replay(workflow, after, config);
        let mut total = Tally::default();
        for (category, tally) in &per_category {
            total.merge(tally);
            categories.push(tally.row(&workflow.name, category));
        }
        overall.merge(&total);
        rows.push(total.row(&workflow.name, "ALL"));
    }
    DurationReport {
        after,
        categories,
        workflows: rows,
        overall: overall.row("ALL", "ALL"),
    }
}

/// The median of some values (`None` when there are none).
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// One workflow's tallies per category name.
fn replay(workflow: &Workflow, after: usize, config: DurationConfig) -> BTreeMap<String, Tally> {
    // The prior baseline's figure, never shown to the model.
    let runtimes: Vec<f64> = workflow
        .tasks
        .iter()
        .map(|t| t.runtime_s)
        .filter(|r| r.is_finite() && *r > 0.0)
        .collect();
    // The user's figure for a typical task: the median runtime of the workflow's tasks, the
    // same for every task (a mean is dragged up by the few long tasks, and MAPE punishes
    // over-prediction of the many short ones without limit).
    let prior = median(&runtimes);
    let mut ids: BTreeMap<&str, u32> = BTreeMap::new();
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut model = DurationModel::new(config);
    let device = DeviceFeatures::default();
    for index in completion_order(workflow) {
        let task = &workflow.tasks[index];
        // A task without a category is its own kind: its name is all that tells it apart.
        let name = task.category.as_deref().unwrap_or(&task.name);
        let next = ids.len() as u32;
        let category = *ids.entry(name).or_insert(next);
        let features = TaskFeatures {
            category,
            estimate_s: None,
            input_bytes: task.input_bytes,
            output_bytes: task.output_bytes,
            cores: task.cores,
        };
        let tally = tallies.entry(name.to_string()).or_default();
        let actual = task.runtime_s;
        if !(actual.is_finite() && actual > 0.0) {
            tally.unscorable += 1;
            continue;
        }
        let predicted = model.predict(&features, &device).seconds;
        let prior_s = prior.unwrap_or(DASK_DEFAULT_S);
        if model.completions(category) as usize >= after {
            tally.scored.add(actual, predicted, prior_s);
        } else {
            tally.early.add(actual, predicted, prior_s);
        }
        model.observe(&features, &device, actual);
    }
    tallies
}

/// Task indices in a topological order, the earliest in the file first among the ready ones.
fn completion_order(workflow: &Workflow) -> Vec<usize> {
    let n = workflow.tasks.len();
    let mut waiting: Vec<usize> = workflow.tasks.iter().map(|t| t.parents.len()).collect();
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| waiting[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    let mut done = vec![false; n];
    while let Some(Reverse(index)) = ready.pop() {
        order.push(index);
        done[index] = true;
        for &child in &workflow.tasks[index].children {
            if let Some(count) = waiting.get_mut(child) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    ready.push(Reverse(child));
                }
            }
        }
    }
    // The reader refuses cycles, so nothing is left; should one slip through, its tasks still
    // complete (in file order) rather than vanish from the counts.
    order.extend((0..n).filter(|&i| !done[i]));
    order
}

fn one_decimal(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"))
}

fn write_table(report: &DurationReport, out: &mut dyn Write) -> std::io::Result<()> {
    let after = report.after;
    writeln!(
        out,
        "Task-duration MAPE (%), WfInstances replay; scored = predictions after >= {after} completions of the task's category"
    )?;
    writeln!(
        out,
        "{:<44} {:>6} {:>8} {:>8} {:>9} | {:>6} {:>8} {:>8} {:>9} | {:>5}",
        "workflow",
        "scored",
        "model",
        "prior",
        "dask 0.5s",
        "early",
        "model",
        "prior",
        "dask 0.5s",
        "unsc."
    )?;
    for row in report
        .workflows
        .iter()
        .chain(std::iter::once(&report.overall))
    {
        writeln!(
            out,
            "{:<44} {:>6} {:>8} {:>8} {:>9} | {:>6} {:>8} {:>8} {:>9} | {:>5}",
            row.workflow,
            row.scored,
            one_decimal(row.mape),
            one_decimal(row.prior_mape),
            one_decimal(row.dask_mape),
            row.early,
            one_decimal(row.early_mape),
            one_decimal(row.early_prior_mape),
            one_decimal(row.early_dask_mape),
            row.unscorable
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Other measures of the same predictions: median APE (%) and MAE (seconds), model vs Dask 0.5 s"
    )?;
    writeln!(
        out,
        "{:<44} {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8}",
        "workflow", "medAPE", "dask", "MAE s", "dask", "medAPE", "dask", "MAE s", "dask"
    )?;
    for row in report
        .workflows
        .iter()
        .chain(std::iter::once(&report.overall))
    {
        writeln!(
            out,
            "{:<44} {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8}",
            row.workflow,
            one_decimal(row.median_ape),
            one_decimal(row.dask_median_ape),
            one_decimal(row.mae_s),
            one_decimal(row.dask_mae_s),
            one_decimal(row.early_median_ape),
            one_decimal(row.early_dask_median_ape),
            one_decimal(row.early_mae_s),
            one_decimal(row.early_dask_mae_s),
        )?;
    }
    Ok(())
}

fn write_json(report: &DurationReport, out: &mut dyn Write) -> std::io::Result<()> {
    for row in report
        .categories
        .iter()
        .chain(std::iter::once(&report.overall))
    {
        serde_json::to_writer(&mut *out, row)?;
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::wfformat::WfTask;

    fn task(id: usize, category: &str, runtime_s: f64, parents: Vec<usize>) -> WfTask {
        WfTask {
            id: format!("t{id}"),
            name: format!("{category}_ID{id:07}"),
            category: Some(category.to_string()),
            runtime_s,
            cores: 1.0,
            memory_bytes: None,
            avg_cpu_pct: None,
            read_bytes: None,
            written_bytes: None,
            input_bytes: 0,
            output_bytes: 0,
            parents,
            children: Vec::new(),
            alternatives: Vec::new(),
            machine: None,
        }
    }

    fn workflow(mut tasks: Vec<WfTask>) -> Workflow {
        for child in 0..tasks.len() {
            for parent in tasks[child].parents.clone() {
                tasks[parent].children.push(child);
            }
        }
        Workflow {
            name: "synthetic".into(),
            path: "synthetic.json".into(),
            tasks,
            edges: Vec::new(),
            machines: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The issue's check: a replay in which completions arrive shows the duration error falling.
    #[test]
    fn error_falls_as_completions_arrive() {
        // Two kinds far from the workflow mean, with some noise, interleaved.
        let mut tasks = Vec::new();
        for i in 0..40 {
            let noise = 1.0 + 0.05 * f64::from((i * 7 % 5) as u32) - 0.1;
            tasks.push(task(tasks.len(), "short", 2.0 * noise, Vec::new()));
            tasks.push(task(tasks.len(), "long", 200.0 * noise, Vec::new()));
        }
        let wf = workflow(tasks);
        let error_after = |after: usize| {
            let report = evaluate(std::slice::from_ref(&wf), after, DurationConfig::default());
            report.overall.mape.expect("scored")
        };
        let (at0, at1, at5) = (error_after(0), error_after(1), error_after(5));
        assert!(at0 > at1 && at1 > at5, "{at0} {at1} {at5}");
        assert!(at5 < 10.0, "{at5}");
        let report = evaluate(std::slice::from_ref(&wf), 5, DurationConfig::default());
        let all = &report.overall;
        // The first prediction of each kind rests on the cold start (at most 0.5 s, so 75% and
        // 100% off here) and the early ones are far worse than the learned ones.
        let (early, scored) = (all.early_mape.expect("present"), all.mape.expect("present"));
        assert!(early > 3.0 * scored, "{early} {scored}");
        assert!(all.mape.expect("present") < all.prior_mape.expect("present"));
        assert!(all.mape.expect("present") < all.dask_mape.expect("present"));
        assert_eq!(all.scored + all.early + all.unscorable, 80);
    }

    /// The replay is honest: no prediction depends on a runtime the model has not been taught,
    /// not even through the workflow-wide prior (a median over every task's runtime).
    #[test]
    fn model_never_sees_runtimes_it_has_not_been_taught() {
        let with_last = |last_s: f64| {
            let mut tasks = Vec::new();
            for i in 0..30 {
                let kind = ["a", "b", "c"][i % 3];
                tasks.push(task(i, kind, 1.0 + i as f64 / 10.0, Vec::new()));
            }
            // The last task depends on all others, so it completes last.
            tasks.push(task(30, "z", last_s, (0..30).collect()));
            evaluate(&[workflow(tasks)], 2, DurationConfig::default())
        };
        // A last runtime that moves the workflow's median (and so the prior) by a lot.
        let (small, huge) = (with_last(0.001), with_last(1e6));
        let model_fields = |row: &DurationRow| {
            (
                row.category.clone(),
                row.scored,
                row.mape,
                row.early,
                row.early_mape,
            )
        };
        for (a, b) in small.categories.iter().zip(&huge.categories) {
            if a.category != "z" {
                assert_eq!(model_fields(a), model_fields(b));
            }
        }
    }

    #[test]
    fn order_respects_parents_and_every_task_is_counted() {
        // Task 0 depends on task 2; task 1 has a zero runtime.
        let wf = workflow(vec![
            task(0, "a", 1.0, vec![2]),
            task(1, "a", 0.0, Vec::new()),
            task(2, "b", 3.0, Vec::new()),
        ]);
        assert_eq!(completion_order(&wf), vec![1, 2, 0]);
        let report = evaluate(std::slice::from_ref(&wf), 0, DurationConfig::default());
        assert_eq!(report.overall.unscorable, 1);
        assert_eq!(report.overall.scored + report.overall.early, 2);
        let mut out = Vec::new();
        write_json(&report, &mut out).expect("present");
        let text = String::from_utf8(out).expect("present");
        assert_eq!(text.lines().count(), 3);
        assert!(text
            .lines()
            .last()
            .expect("present")
            .starts_with(r#"{"workflow":"ALL""#));
    }

    #[test]
    fn missing_file_is_an_error() {
        let args = DurationsArgs {
            workflows: vec!["/nonexistent/augur/wf.json".into()],
            after: 5,
            json: false,
        };
        let error = run(&args, &mut Vec::new()).expect_err("a missing file is refused");
        assert!(matches!(error, DurationsError::Workflow { .. }));
    }

    /// The real WfInstances replay runs, and every task is scored, early or unscorable.
    #[test]
    fn wfinstances_replay_counts_every_task() {
        let Some(data) = crate::testing::shared_data() else {
            return;
        };
        let mut files = Vec::new();
        let mut dirs = vec![data.join("wfinstances")];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "json") {
                    files.push(path);
                }
            }
        }
        files.sort();
        assert!(!files.is_empty());
        let args = DurationsArgs {
            workflows: files.clone(),
            after: 5,
            json: true,
        };
        let mut out = Vec::new();
        let report = run(&args, &mut out).expect("replay");
        let mut tasks = 0u64;
        for (path, row) in files.iter().zip(&report.workflows) {
            let wf = load(path).expect("present");
            assert_eq!(
                row.scored + row.early + row.unscorable,
                wf.tasks.len() as u64,
                "{}",
                row.workflow
            );
            tasks += wf.tasks.len() as u64;
        }
        let all = &report.overall;
        assert_eq!(all.scored + all.early + all.unscorable, tasks);
        // The learned model beats both baselines on what it scores, by a wide margin.
        assert!(
            all.mape.expect("present") < 0.5 * all.prior_mape.expect("present"),
            "{all:?}"
        );
        assert!(
            all.mape.expect("present") < 0.5 * all.dask_mape.expect("present"),
            "{all:?}"
        );
        let text = String::from_utf8(out).expect("present");
        assert_eq!(text.lines().count(), report.categories.len() + 1);
    }
}
