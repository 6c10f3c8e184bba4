//! `augur pareto`: what the objective weights trade, for one workflow on one platform.
//!
//! For each weighting of latency, cost, energy and locality, the finish-time rule places the
//! whole workflow at once (every task arriving at time 0, no background load, the workflow's
//! own estimates: the `heft` inputs under the `predictive` rule's weights), and the plan it
//! predicts is costed: makespan (the latest predicted finish), cost (each task's share of its
//! device's price over its run), energy (its share of the device's power over its run) and the
//! bytes moved between devices. Plans that no other plan beats on all three of makespan, cost
//! and energy are marked Pareto-optimal. This is the planner's own prediction; `augur simulate`
//! measures plans under load.

use std::io::Write;
use std::path::PathBuf;

use augur_dataflows::finish_time::{cost, FinishTimePlacer};
use augur_dataflows::placement::{EpochChanges, PlacementConfig, Policy, Weights};
use augur_dataflows::types::{DeviceSpec, TaskKey, TaskState};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::input::platform::{read_platform, replay_on_own_machines};
use crate::input::short_number;
use crate::input::wfformat::read_workflow;

/// Flags of `augur pareto`.
#[derive(Debug, Clone, clap::Args)]
pub struct ParetoArgs {
    /// WfFormat workflow file.
    #[arg(long, value_name = "FILE")]
    pub workflow: PathBuf,
    /// Platform TOML [default: the workflow's machines].
    #[arg(long, value_name = "FILE")]
    pub platform: Option<PathBuf>,
    /// Relative weights of cost to sweep, comma-separated, each from 0 to 1e12: 1 weighs the
    /// plan's cost as much as its tasks' summed finish times in the latency-only plan.
    #[arg(long, value_delimiter = ',', default_value = "0,0.5,1,2,8,32")]
    pub cost: Vec<f64>,
    /// Relative weights of energy to sweep, comma-separated, each from 0 to 1e12 (as for
    /// cost).
    #[arg(long, value_delimiter = ',', default_value = "0,1,8")]
    pub energy: Vec<f64>,
    /// Locality weight (per gigabyte moved, absolute, up to 1e9), for every plan.
    #[arg(long, default_value_t = 0.0)]
    pub locality: f64,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Why `augur pareto` stopped.
#[derive(Debug, thiserror::Error)]
pub enum ParetoError {
    /// An input could not be used.
    #[error("{0}")]
    Input(String),
    /// A weight is negative or not a number.
    #[error("{flag}: weights must be finite and non-negative, not {weight}")]
    Weight {
        /// The flag that gave it.
        flag: &'static str,
        /// The weight.
        weight: f64,
    },
    /// A relative weight above [`MAX_RELATIVE_WEIGHT`].
    #[error(
        "{flag} {}: relative weights above {} change no plan (the \
         objective already outweighs latency a trillion times over) and can overflow a plan's \
         scores, so that every paid device ties",
        short_number(*weight),
        short_number(MAX_RELATIVE_WEIGHT)
    )]
    WeightTooLarge {
        /// `--cost` or `--energy`.
        flag: &'static str,
        /// The weight given.
        weight: f64,
    },
    /// A locality weight above [`MAX_LOCALITY_WEIGHT`].
    #[error(
        "--locality {}: above {} (the most `run`'s \
         placement.weights.locality takes) a plan's scores can overflow, and a plan then moves \
         more data, not less",
        short_number(*_0),
        short_number(MAX_LOCALITY_WEIGHT)
    )]
    LocalityTooLarge(f64),
    /// A relative weight is so large that the absolute weight it comes to is not finite.
    #[error(
        "{flag} {}: the absolute weight it comes to (× {rate:.3e}, the latency-only \
         plan's exchange rate) overflows; give a relative weight below {limit:.1e}",
        short_number(*relative),
        limit = f64::MAX / rate
    )]
    WeightOverflow {
        /// The flag that gave it: `--cost` or `--energy`.
        flag: &'static str,
        /// The relative weight given.
        relative: f64,
        /// The exchange rate it was multiplied by.
        rate: f64,
    },
    /// The report could not be written.
    #[error("writing the report: {0}")]
    Output(#[from] std::io::Error),
}

/// One weighting and the plan it gives.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// The weights.
    pub weights: WeightsView,
    /// Latest predicted finish, seconds.
    pub makespan_s: f64,
    /// Cost of the plan in the platform's currency.
    pub cost: f64,
    /// Energy of the plan, joules.
    pub energy_j: f64,
    /// Bytes moved between devices.
    pub bytes_moved: u64,
    /// Devices used.
    pub devices_used: usize,
    /// Whether no other plan is at least as good on makespan, cost and energy and better on one.
    pub pareto: bool,
}

/// The weights, as printed: the relative weights swept and the absolute ones they came to.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct WeightsView {
    /// Relative weight of cost.
    pub relative_cost: f64,
    /// Relative weight of energy.
    pub relative_energy: f64,
    /// Per second.
    pub latency: f64,
    /// Per unit of currency.
    pub cost: f64,
    /// Per kilojoule.
    pub energy: f64,
    /// Per gigabyte.
    pub locality: f64,
}

/// The largest relative weight of cost or energy: beyond it latency no longer counts, and a
/// weight near `f64::MAX` made the scores it multiplies infinite.
pub const MAX_RELATIVE_WEIGHT: f64 = 1e12;

/// The largest `--locality`, as `run`'s config takes for its locality weight: from about
/// 1e304 the scores overflowed and the plan moved more bytes than with no weight at all.
pub const MAX_LOCALITY_WEIGHT: f64 = 1e9;

/// Runs the sweep and writes the report.
pub fn run(args: &ParetoArgs, out: &mut dyn Write) -> Result<Vec<Plan>, ParetoError> {
    let given = [
        ("--cost", args.cost.as_slice()),
        ("--energy", args.energy.as_slice()),
        ("--locality", std::slice::from_ref(&args.locality)),
    ];
    for (flag, weights) in given {
        if let Some(&weight) = weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
            return Err(ParetoError::Weight { flag, weight });
        }
    }
    for (flag, weights) in [("--cost", &args.cost), ("--energy", &args.energy)] {
        if let Some(&weight) = weights.iter().find(|&&w| w > MAX_RELATIVE_WEIGHT) {
            return Err(ParetoError::WeightTooLarge { flag, weight });
        }
    }
    if args.locality > MAX_LOCALITY_WEIGHT {
        return Err(ParetoError::LocalityTooLarge(args.locality));
    }
    let read = read_workflow(&args.workflow);
    let Some(mut workflow) = read.workflow else {
        let reason = read
            .rejections
            .first()
            .map_or("unreadable".to_string(), |r| r.reason.clone());
        return Err(ParetoError::Input(format!(
            "{}: {reason}",
            args.workflow.display()
        )));
    };
    let platform = match &args.platform {
        Some(path) => read_platform(path)
            .map_err(|r| ParetoError::Input(format!("{}: {}", path.display(), r.reason)))?,
        None => {
            let (platform, restated) = replay_on_own_machines(std::slice::from_mut(&mut workflow));
            workflow.notes.extend(restated.into_iter().flatten());
            platform
        }
    };
    for note in &workflow.notes {
        crate::say!("augur pareto: note: {}: {note}", args.workflow.display());
    }
    if platform.devices.is_empty() {
        return Err(ParetoError::Input(
            "no devices: give --platform or a workflow with machines".to_string(),
        ));
    }
    let mut catalog = Catalog::new(platform);
    let id = catalog.admit(workflow).map_err(|rejections| {
        ParetoError::Input(format!(
            "{}: {}",
            args.workflow.display(),
            rejections
                .first()
                .map_or("refused".to_string(), |r| r.reason.clone())
        ))
    })?;
    let devices = catalog.device_specs();
    let entry = &catalog.workflows[id as usize];
    let tasks: Vec<(TaskKey, TaskState)> = entry
        .specs
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let key = TaskKey {
                workflow: id,
                task: index as u32,
            };
            let ready = entry.parents[index].is_empty();
            (
                key,
                TaskState {
                    spec: *spec,
                    pinned: None,
                    ready,
                },
            )
        })
        .collect();
    let edges: Vec<_> = (0..tasks.len())
        .flat_map(|index| {
            let key = tasks[index].0;
            catalog
                .parents(key)
                .map(move |(parent, bytes)| (((key, parent), bytes), 1isize))
        })
        .collect();

    // The latency-only plan sets the exchange rates: a relative weight of 1 makes the plan's
    // total cost (or energy) weigh as much as its tasks' summed finish times.
    let (_, reference) = plan(&devices, &tasks, &edges, Weights::default());
    let rate = |total: f64| {
        if total > 0.0 {
            reference.latency_s / total
        } else {
            0.0
        }
    };
    let (cost_rate, energy_rate) = (rate(reference.cost), rate(reference.energy_j / 1000.0));
    // A finite relative weight can still overflow once multiplied by the rate; an infinite
    // weight would make every plan's score infinite (and print as null in JSON).
    let absolute = |flag, relative: f64, rate: f64| {
        // Zero stays zero even under an infinite rate (0 × inf is NaN).
        let weight = if relative == 0.0 {
            0.0
        } else {
            relative * rate
        };
        if weight.is_finite() {
            Ok(weight)
        } else {
            Err(ParetoError::WeightOverflow {
                flag,
                relative,
                rate,
            })
        }
    };
    let mut plans = Vec::new();
    for &relative_cost in &args.cost {
        for &relative_energy in &args.energy {
            let weights = Weights {
                latency: 1.0,
                cost: absolute("--cost", relative_cost, cost_rate)?,
                energy: absolute("--energy", relative_energy, energy_rate)?,
                locality: args.locality,
            };
            let (mut costed, _) = plan(&devices, &tasks, &edges, weights);
            costed.weights.relative_cost = relative_cost;
            costed.weights.relative_energy = relative_energy;
            plans.push(costed);
        }
    }
    mark_pareto(&mut plans);

    if args.json {
        for plan in &plans {
            serde_json::to_writer(&mut *out, plan).map_err(std::io::Error::other)?;
            writeln!(out)?;
        }
    } else {
        writeln!(
            out,
            "{} ({} tasks) on {} devices, predicted plans by weighting (* = Pareto-optimal)",
            args.workflow.display(),
            tasks.len(),
            devices.len()
        )?;
        writeln!(
            out,
            "  cost w  energy w   makespan s        cost    energy kJ   GB moved  devices  (relative weights)"
        )?;
        for plan in &plans {
            writeln!(
                out,
                "{} {:>6} {:>9} {:>12} {:>11} {:>12} {:>10} {:>8}",
                if plan.pareto { "*" } else { " " },
                compact_weight(plan.weights.relative_cost),
                compact_weight(plan.weights.relative_energy),
                compact(plan.makespan_s, 1),
                significant(plan.cost),
                significant(plan.energy_j / 1000.0),
                compact(plan.bytes_moved as f64 / 1e9, 2),
                plan.devices_used
            )?;
        }
    }
    Ok(plans)
}

/// A table figure with `decimals` decimals, or in exponent form where that would be wider than
/// its column (a 1e308 would otherwise print 309 digits and break the layout).
fn compact(value: f64, decimals: usize) -> String {
    if value.abs() < 1e9 {
        format!("{value:.decimals$}")
    } else {
        exponent_form(value)
    }
}

/// A total to five significant digits (a fixed three decimals printed plans that differ in
/// cost, 0.0018409 against 0.0018406, alike, one marked optimal and one not), in exponent form
/// where that would be wider than its column.
fn significant(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return compact(value, 0);
    }
    if value.abs() >= 1e9 {
        return exponent_form(value);
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (4 - magnitude).clamp(0, 9) as usize;
    format!("{value:.decimals$}")
}

/// A weight as given (`0.5`, `32`), or in exponent form where it is very large or small.
fn compact_weight(value: f64) -> String {
    if value == 0.0 {
        // `-0` as given reads as a sign error.
        return "0".to_string();
    }
    if (1e-3..1e6).contains(&value.abs()) {
        format!("{value}")
    } else {
        exponent_form(value)
    }
}

/// `1.5e300`: four significant digits at most, without trailing zeros.
fn exponent_form(value: f64) -> String {
    let text = format!("{value:.3e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) if mantissa.contains('.') => {
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            format!("{mantissa}e{exponent}")
        }
        _ => text,
    }
}

/// What a plan's totals are, for the exchange rates.
struct Totals {
    latency_s: f64,
    cost: f64,
    energy_j: f64,
}

/// Places the workflow under one weighting and costs the predicted plan.
fn plan(
    devices: &[DeviceSpec],
    tasks: &[(TaskKey, TaskState)],
    edges: &[(augur_dataflows::types::Edge, isize)],
    weights: Weights,
) -> (Plan, Totals) {
    let config = PlacementConfig {
        policy: Policy::Heft,
        weights,
        ..PlacementConfig::default()
    };
    let mut placer = FinishTimePlacer::new(devices, config, false);
    placer.apply(EpochChanges {
        time: 0,
        upserted: tasks.to_vec(),
        edges: edges.to_vec(),
        ..EpochChanges::default()
    });
    let mut makespan_ms: f64 = 0.0;
    let mut latency_s = 0.0;
    let (mut total_cost, mut energy) = (0.0, 0.0);
    let mut used = vec![false; devices.len()];
    for (task, state) in tasks {
        let (Some(device), Some(finish)) = (placer.device_of(task), placer.finish_of(task)) else {
            continue;
        };
        let spec = &devices[device as usize];
        used[device as usize] = true;
        makespan_ms = makespan_ms.max(finish);
        latency_s += finish / 1000.0;
        let run_s = state.spec.duration_ms as f64 / spec.speed / 1000.0;
        let busy_s = run_s * cost::share(spec, &state.spec);
        total_cost += spec.cost_per_hour * busy_s / 3600.0;
        energy += spec.power_watts * busy_s;
    }
    let bytes_moved = edges
        .iter()
        .filter(|(((child, parent), _), _)| placer.device_of(child) != placer.device_of(parent))
        .map(|(((_, _), bytes), _)| *bytes)
        .sum();
    let totals = Totals {
        latency_s,
        cost: total_cost,
        energy_j: energy,
    };
    let plan = Plan {
        weights: WeightsView {
            relative_cost: 0.0,
            relative_energy: 0.0,
            latency: weights.latency,
            cost: weights.cost,
            energy: weights.energy,
            locality: weights.locality,
        },
        makespan_s: makespan_ms / 1000.0,
        cost: total_cost,
        energy_j: energy,
        bytes_moved,
        devices_used: used.iter().filter(|u| **u).count(),
        pareto: false,
    };
    (plan, totals)
}

/// Marks the plans no other plan dominates on (makespan, cost, energy).
fn mark_pareto(plans: &mut [Plan]) {
    let points: Vec<[f64; 3]> = plans
        .iter()
        .map(|p| [p.makespan_s, p.cost, p.energy_j])
        .collect();
    for (i, plan) in plans.iter_mut().enumerate() {
        plan.pareto = !points.iter().enumerate().any(|(j, other)| {
            j != i
                && other.iter().zip(&points[i]).all(|(o, p)| o <= p)
                && other.iter().zip(&points[i]).any(|(o, p)| o < p)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_at(makespan_s: f64, cost: f64, energy_j: f64) -> Plan {
        Plan {
            weights: WeightsView {
                relative_cost: 0.0,
                relative_energy: 0.0,
                latency: 1.0,
                cost: 0.0,
                energy: 0.0,
                locality: 0.0,
            },
            makespan_s,
            cost,
            energy_j,
            bytes_moved: 0,
            devices_used: 1,
            pareto: false,
        }
    }

    #[test]
    fn dominated_plans_are_not_pareto_optimal_and_ties_are() {
        let mut plans = vec![
            plan_at(10.0, 5.0, 100.0),
            plan_at(12.0, 6.0, 100.0),
            plan_at(20.0, 1.0, 50.0),
            plan_at(10.0, 5.0, 100.0),
        ];
        mark_pareto(&mut plans);
        let marks: Vec<bool> = plans.iter().map(|p| p.pareto).collect();
        assert_eq!(marks, vec![true, false, true, true]);
    }

    fn demo_args(cost: Vec<f64>, energy: Vec<f64>, json: bool) -> ParetoArgs {
        let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/demo");
        ParetoArgs {
            workflow: data.join("montage-chameleon-2mass-01d-001.json"),
            platform: Some(data.join("platform.toml")),
            cost,
            energy,
            locality: 0.0,
            json,
        }
    }

    #[test]
    fn a_weight_whose_absolute_weight_overflows_is_refused() {
        // 1e308 made infinite absolute weights (null in JSON); 1e300 a finite one whose scores
        // overflowed, so that every paid device tied.
        for (cost, energy, flag) in [
            (1e308, 0.0, "--cost"),
            (0.0, 1e308, "--energy"),
            (1e300, 0.0, "--cost"),
            (0.0, 1.5e12, "--energy"),
        ] {
            let mut out = Vec::new();
            let error = run(&demo_args(vec![cost], vec![energy], true), &mut out)
                .expect_err("a weight past the largest");
            assert!(
                matches!(error, ParetoError::WeightTooLarge { flag: f, .. } if f == flag),
                "{error:?}"
            );
            assert!(error.to_string().contains("change no plan"), "{error}");
            assert!(out.is_empty(), "no plan is printed");
        }
    }

    #[test]
    fn a_negative_or_missing_weight_is_refused_naming_its_flag() {
        for (cost, energy, flag) in [(-1.0, 0.0, "--cost"), (0.0, f64::NAN, "--energy")] {
            let error = run(&demo_args(vec![cost], vec![energy], true), &mut Vec::new())
                .expect_err("refused");
            assert!(
                error.to_string().starts_with(&format!("{flag}: ")),
                "{error}"
            );
        }
        let mut args = demo_args(vec![0.0], vec![0.0], true);
        args.locality = -2.0;
        let error = run(&args, &mut Vec::new()).expect_err("refused");
        assert!(error.to_string().starts_with("--locality: "), "{error}");
        args.locality = 1e304;
        let error = run(&args, &mut Vec::new()).expect_err("refused");
        assert!(matches!(error, ParetoError::LocalityTooLarge(_)), "{error}");
    }

    #[test]
    fn the_table_prints_large_and_small_figures_compactly() {
        assert_eq!(compact(37.0, 1), "37.0");
        assert_eq!(compact(1e308, 1), "1e308");
        assert_eq!(compact(-1.5e12, 3), "-1.5e12");
        assert_eq!(compact_weight(0.0), "0");
        assert_eq!(compact_weight(0.5), "0.5");
        assert_eq!(compact_weight(32.0), "32");
        assert_eq!(compact_weight(1e300), "1e300");
        assert_eq!(compact_weight(1.23456e20), "1.235e20");
        assert_eq!(compact_weight(2e-7), "2e-7");
        assert_eq!(compact_weight(-0.0), "0");
        // Totals to five significant digits, so that plans that differ read apart.
        assert_eq!(significant(0.0018409), "0.0018409");
        assert_eq!(significant(0.0018406), "0.0018406");
        assert_eq!(significant(0.018406), "0.018406");
        assert_eq!(significant(2.86319), "2.8632");
        assert_eq!(significant(1234.56), "1234.6");
        assert_eq!(significant(0.0), "0");
        assert_eq!(significant(2e12), "2e12");
        // A huge but usable weight keeps the table's layout.
        let mut out = Vec::new();
        run(&demo_args(vec![0.0, 1e12], vec![0.0], false), &mut out).expect("plans");
        let text = String::from_utf8(out).expect("utf-8");
        let header = text.lines().nth(1).expect("a column header").len();
        assert!(
            text.lines().skip(2).all(|line| line.len() <= header),
            "{text}"
        );
        assert!(text.contains("1e12"), "{text}");
    }

    #[test]
    fn a_cost_weight_trades_makespan_for_cost_on_the_demo() {
        let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/demo");
        let args = ParetoArgs {
            workflow: data.join("montage-chameleon-2mass-01d-001.json"),
            platform: Some(data.join("platform.toml")),
            cost: vec![0.0, 64.0],
            energy: vec![0.0],
            locality: 0.0,
            json: true,
        };
        let mut out = Vec::new();
        let plans = run(&args, &mut out).expect("the demo workflow plans");
        assert_eq!(plans.len(), 2);
        assert_eq!(String::from_utf8_lossy(&out).lines().count(), 2);
        let (fast, cheap) = (&plans[0], &plans[1]);
        assert!(cheap.cost < fast.cost, "{fast:?} {cheap:?}");
        assert!(cheap.makespan_s >= fast.makespan_s, "{fast:?} {cheap:?}");
    }
}
