//! `augur demo`: the bundled scenario in `data/demo` run end to end, with a readable summary.
//!
//! A real Pegasus Montage workflow (103 tasks) arrives on four heterogeneous devices whose CPU
//! series are real NAB AWS CloudWatch traces; an event log runs its first 60 tasks and ends with
//! two bad records, so the summary shows both placement and the accounting of rejected input.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{DemoArgs, RunArgs};
use crate::run::{RunConfig, RunOutcome};

const WORKFLOW: &str = "montage-chameleon-2mass-01d-001.json";
const SERIES: [(&str, &str); 4] = [
    ("ec2_cpu_utilization_24ae8d.csv", "edge-a"),
    ("ec2_cpu_utilization_53ea38.csv", "edge-b"),
    ("ec2_cpu_utilization_5f5533.csv", "cloud-c"),
    ("rds_cpu_utilization_cc0c53.csv", "cloud-d"),
];

/// The files of the scenario, relative to its folder.
fn scenario_files() -> impl Iterator<Item = PathBuf> {
    [WORKFLOW, "platform.toml", "events.jsonl"]
        .into_iter()
        .map(PathBuf::from)
        .chain(
            SERIES
                .iter()
                .map(|(file, _)| Path::new("metrics").join(file)),
        )
}

/// The demo's folder: `data/demo` under the working directory where it holds the whole
/// scenario (a clone run with `cargo run`), else under the source tree augur was built from.
/// A `data/demo` of some other project, or a partial copy, is passed over: the demo is ours.
pub fn demo_dir() -> Result<PathBuf, String> {
    let candidates = [
        PathBuf::from("data/demo"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/demo"),
    ];
    first_complete(&candidates).ok_or_else(|| {
        format!(
            "the bundled scenario is not here: neither {} nor {} holds all of its files \
                 (run augur demo from a clone of augur, or from the folder holding its data/)",
            candidates[0].display(),
            candidates[1].display()
        )
    })
}

/// The first of `candidates` that holds every file of the scenario.
fn first_complete(candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates
        .iter()
        .find(|dir| scenario_files().all(|file| dir.join(file).is_file()))
        .cloned()
}

/// The `run` flags the demo amounts to, over the scenario in `dir` ([`demo_dir`]).
pub fn demo_args(args: &DemoArgs, dir: &Path) -> RunArgs {
    let metrics: Vec<PathBuf> = SERIES
        .iter()
        .map(|(file, _)| dir.join("metrics").join(file))
        .collect();
    let maps = SERIES
        .iter()
        .zip(&metrics)
        .map(|((_, device), path)| format!("{}={device}:cpu", path.display()))
        .collect();
    RunArgs {
        workflows: vec![dir.join(WORKFLOW)],
        platform: Some(dir.join("platform.toml")),
        metrics,
        format: "nab".to_string(),
        maps,
        events: vec![dir.join("events.jsonl")],
        config: None,
        lateness: None,
        policy: args.policy.clone(),
        out: args.out.clone(),
        workers: args.workers,
        processes: 1,
        process: 0,
        hostfile: None,
        connect_timeout: 30.0,
        peer_timeout: 60.0,
        strict: false,
        quiet: true,
        memory_every: 0,
        report: true,
        checkpoint: None,
        checkpoint_every: None,
        resume: false,
    }
}

/// Prints what the demo did, for a person.
pub fn print_demo(
    out: &mut dyn Write,
    config: &RunConfig,
    outcome: &RunOutcome,
) -> std::io::Result<()> {
    let summary = &outcome.summary;
    writeln!(
        out,
        "augur demo: a Montage workflow on 4 devices under real CPU traces"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "inputs                                        read  accepted  rejected"
    )?;
    for (path, counts) in &summary.inputs {
        let name = PathBuf::from(path)
            .file_name()
            .map_or(path.clone(), |n| n.to_string_lossy().into_owned());
        writeln!(
            out,
            "  {name:<42} {:>5} {:>9} {:>9}",
            counts.read, counts.accepted, counts.rejected
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} (distinct event times) in {:.2} s on {}; epoch latency p50 {} µs, p99 {} µs",
        count(summary.epochs, "epoch"),
        summary.wall_s,
        count(summary.workers, "worker"),
        summary.epoch_latency.p50_us,
        summary.epoch_latency.p99_us
    )?;
    writeln!(
        out,
        "{} placed, {} as the inputs changed, {} still live at the end",
        count(summary.tasks_placed, "task"),
        count(summary.tasks_moved, "move"),
        count(summary.tasks_in_final_map, "task")
    )?;
    writeln!(
        out,
        "policy {}; {} in prewarm.jsonl",
        summary.policy,
        count(summary.prewarm_actions, "warm-up action")
    )?;
    writeln!(out)?;

    let mut per_device: BTreeMap<&str, usize> = BTreeMap::new();
    for tasks in outcome.final_map.values() {
        for device in tasks.values() {
            *per_device.entry(device.as_str()).or_default() += 1;
        }
    }
    writeln!(
        out,
        "final map           tasks  cores  speed  CPU now  predicted  CPU trace"
    )?;
    for device in &outcome.catalog.platform.devices {
        let trace = SERIES
            .iter()
            .find(|(_, d)| *d == device.id)
            .map_or("-", |(file, _)| *file);
        let cpu = outcome
            .forecasts
            .get(&device.id)
            .and_then(|resources| resources.get("cpu"));
        let percent =
            |value: Option<f64>| value.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
        writeln!(
            out,
            "  {:<16} {:>6} {:>6} {:>6} {:>8} {:>10}  {trace}",
            device.id,
            per_device.get(device.id.as_str()).copied().unwrap_or(0),
            device.cores,
            device.speed,
            percent(cpu.map(|f| f.latest)),
            percent(cpu.map(|f| f.predicted)),
        )?;
    }
    writeln!(out)?;
    if summary.rejected_lines > 0 {
        writeln!(
            out,
            "{} input records were rejected; each is in {} with file, line and reason",
            summary.rejected_lines,
            config.out.join("rejected.jsonl").display()
        )?;
    }
    writeln!(
        out,
        "outputs: {}/{{{}}}",
        config.out.display(),
        crate::run::OUTPUTS.join(", ")
    )?;
    if config.report {
        writeln!(
            out,
            "open {} in a browser: each device's CPU, its forecast and the tasks placed on it over time",
            config.out.join("report.html").display()
        )?;
    }
    Ok(())
}

/// `1 worker`, `2 workers`: a count and its noun, in the right number.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `data/demo` that lacks part of the scenario (another project's, a partial copy) is
    /// passed over for the bundled one, not run and failed on a flag the demo does not have.
    #[test]
    fn a_partial_scenario_folder_is_passed_over() {
        let scratch = crate::testing::Scratch::new("demo-partial");
        let partial = scratch.join("data/demo");
        std::fs::create_dir_all(&partial).expect("folder");
        std::fs::write(partial.join(WORKFLOW), "{}").expect("workflow");
        let bundled = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/demo");
        assert_eq!(
            first_complete(&[partial.clone(), bundled.clone()]),
            Some(bundled.clone())
        );
        assert_eq!(first_complete(std::slice::from_ref(&partial)), None);
        // A whole copy is taken, the working directory's first.
        for file in scenario_files() {
            let to = partial.join(&file);
            std::fs::create_dir_all(to.parent().expect("a folder")).expect("folder");
            std::fs::copy(bundled.join(&file), &to).expect("copy");
        }
        assert_eq!(first_complete(&[partial.clone(), bundled]), Some(partial));
    }
}
