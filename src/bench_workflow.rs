//! `augur bench workflow`: the finish-time map of WfFormat workflows on a platform, placed in
//! one batch by the incremental engine itself (no dataflow around it), flat or hierarchical:
//! how long the initial map takes, and what it is worth: the predicted makespan and the bytes
//! its edges move between devices, zones and the hierarchy's groups (zones where the platform
//! names several, else capability classes). The cost of coarsening in map quality is
//! read off by running the same inputs with `--hierarchy off` and `--hierarchy on`.
//!
//! ```sh
//! cargo run --release -- bench workflow --platform P --workflow W.json --hierarchy off
//! cargo run --release -- bench workflow --platform P --workflow W.json --hierarchy on
//! ```
//!
//! Peak RSS is the whole process's (the parsed workflow included); run one mode per process.

use std::path::PathBuf;
use std::time::Instant;

use augur_dataflows::finish_time::FinishTimePlacer;
use augur_dataflows::placement::{EpochChanges, Hierarchy, PlacementConfig, Policy};
use augur_dataflows::types::{TaskKey, TaskState};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::input::platform::read_platform;
use crate::input::wfformat::read_workflow;
use crate::memory::peak_resident_mib;

/// Flags of `augur bench workflow`.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkflowArgs {
    /// Platform TOML (devices, with their zones).
    #[arg(long)]
    pub platform: PathBuf,
    /// WfFormat workflow files, placed together in one batch.
    #[arg(long = "workflow", required = true, num_args = 1..)]
    pub workflows: Vec<PathBuf>,
    /// Hierarchical placement of the batch, as `[placement] hierarchy`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "on", "off"])]
    pub hierarchy: String,
    /// The finish-time policy: predictive (learned durations, none yet here) or heft.
    #[arg(long, default_value = "predictive", value_parser = ["predictive", "heft"])]
    pub policy: String,
}

/// What one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct WorkflowReport {
    /// The hierarchy mode, and whether it applied to this batch.
    pub hierarchy: String,
    /// Whether the batch was coarsened (the mode applies and the platform has two groups).
    pub hierarchical: bool,
    /// Devices, and the zones they fall into.
    pub devices: usize,
    /// See `devices`.
    pub zones: usize,
    /// Tasks placed, and the edges among them.
    pub tasks: usize,
    /// See `tasks`.
    pub edges: usize,
    /// Reading and admitting the workflows, seconds.
    pub read_s: f64,
    /// The initial map (one epoch of every task and edge), seconds.
    pub initial_map_s: f64,
    /// Tasks placed per second of the initial map.
    pub tasks_per_s: f64,
    /// The latest predicted finish over the map, seconds from the start.
    pub predicted_makespan_s: f64,
    /// Bytes on all edges.
    pub bytes_total: u64,
    /// Bytes on edges whose two tasks the map puts on different devices.
    pub bytes_between_devices: u64,
    /// Bytes on edges whose two tasks the map puts in different zones.
    pub bytes_between_zones: u64,
    /// Tasks per zone, by zone id.
    pub tasks_per_zone: Vec<usize>,
    /// What the hierarchy groups devices by: `zone` where the platform names two or more,
    /// else `capability class` (then the zone figures above say nothing of its groups).
    pub grouped_by: &'static str,
    /// The hierarchy's device groups.
    pub groups: usize,
    /// Bytes on edges whose two tasks the map puts in different groups.
    pub bytes_between_groups: u64,
    /// Tasks per group, by group number (first appearance in the platform).
    pub tasks_per_group: Vec<usize>,
    /// After the map: one learned duration per task kind, one epoch each (`predictive` only).
    pub duration_changes: Vec<DurationChange>,
    /// Peak resident set size of the process, MiB.
    pub peak_rss_mib: Option<f64>,
}

/// One epoch that publishes a new duration estimate for one kind (on the first class): the
/// tasks whose rank it changes, and the ranks it recomputed to find them.
#[derive(Clone, Debug, Serialize)]
pub struct DurationChange {
    /// The kind (WfFormat category).
    pub kind: String,
    /// Tasks of that kind.
    pub tasks_of_kind: usize,
    /// Ranks recomputed by the epoch.
    pub rank_updates: u64,
    /// Tasks the epoch moved (none: a new estimate alone re-ranks, it does not move).
    pub moved: usize,
    /// The epoch, milliseconds.
    pub ms: f64,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowBenchError {
    /// The platform file was refused.
    #[error("platform: {0}")]
    Platform(String),
    /// A workflow was refused.
    #[error("workflow {path}: {reason}")]
    Workflow {
        /// The file.
        path: String,
        /// The first reason.
        reason: String,
    },
}

/// Runs the benchmark; `progress` gets a line per step.
pub fn run_workflow_bench(
    args: &WorkflowArgs,
    progress: &mut dyn FnMut(&str),
) -> Result<WorkflowReport, WorkflowBenchError> {
    let started = Instant::now();
    let platform = read_platform(&args.platform)
        .map_err(|rejection| WorkflowBenchError::Platform(rejection.to_string()))?;
    let mut catalog = Catalog::new(platform);
    for path in &args.workflows {
        let refused = |reason: String| WorkflowBenchError::Workflow {
            path: path.display().to_string(),
            reason,
        };
        let read = read_workflow(path);
        let workflow = read.workflow.ok_or_else(|| {
            refused(
                read.rejections
                    .first()
                    .map_or_else(|| "unreadable".into(), |r| r.to_string()),
            )
        })?;
        catalog.admit(workflow).map_err(|rejections| {
            let first = rejections.first().map(|r| r.to_string());
            refused(first.unwrap_or_else(|| "refused".into()))
        })?;
    }
    let devices = catalog.device_specs();
    let mut changes = EpochChanges::default();
    for (w, workflow) in catalog.workflows.iter().enumerate() {
        for (t, spec) in workflow.specs.iter().enumerate() {
            let key = TaskKey {
                workflow: w as u32,
                task: t as u32,
            };
            let parents = &workflow.parents[t];
            changes.upserted.push((
                key,
                TaskState {
                    spec: *spec,
                    pinned: None,
                    ready: parents.is_empty(),
                },
            ));
            for &(parent, bytes) in parents {
                let parent = TaskKey {
                    workflow: w as u32,
                    task: parent,
                };
                changes.edges.push((((key, parent), bytes), 1));
            }
        }
    }
    let tasks = changes.upserted.len();
    let edges: Vec<(TaskKey, TaskKey, u64)> = changes
        .edges
        .iter()
        .map(|(((child, parent), bytes), _)| (*child, *parent, *bytes))
        .collect();
    let read_s = started.elapsed().as_secs_f64();
    progress(&format!(
        "{tasks} tasks, {} edges on {} devices read in {read_s:.2} s",
        edges.len(),
        devices.len()
    ));

    let hierarchy = match args.hierarchy.as_str() {
        "on" => Hierarchy::On,
        "off" => Hierarchy::Off,
        _ => Hierarchy::Auto(Hierarchy::AUTO_MIN_TASKS),
    };
    let policy = if args.policy == "heft" {
        Policy::Heft
    } else {
        Policy::Predictive
    };
    let config = PlacementConfig {
        policy,
        hierarchy,
        ..PlacementConfig::default()
    };
    let mut placer = FinishTimePlacer::new(&devices, config, policy == Policy::Predictive);
    let map_started = Instant::now();
    placer.apply(changes);
    let initial_map_s = map_started.elapsed().as_secs_f64();
    progress(&format!("initial map in {initial_map_s:.2} s"));

    // Each kind's first declared duration, doubled, as if the model had learned it.
    let mut kind_tasks = vec![(0usize, 0u64); catalog.kinds.len()];
    for spec in catalog.workflows.iter().flat_map(|w| w.specs.iter()) {
        if let Some(entry) = kind_tasks.get_mut(spec.kind as usize) {
            entry.0 += 1;
            if entry.1 == 0 {
                entry.1 = spec.duration_ms.saturating_mul(2).max(1_000);
            }
        }
    }
    let mut duration_changes = Vec::new();
    for (kind, &(count, estimate)) in kind_tasks.iter().enumerate() {
        let before = placer.rank_updates();
        let started = Instant::now();
        let moved = placer
            .apply(EpochChanges {
                time: 1 + kind as i64,
                durations: vec![((kind as u32, 0), Some(estimate))],
                ..EpochChanges::default()
            })
            .len();
        duration_changes.push(DurationChange {
            kind: catalog.kinds[kind].clone(),
            tasks_of_kind: count,
            rank_updates: placer.rank_updates() - before,
            moved,
            ms: started.elapsed().as_secs_f64() * 1e3,
        });
    }

    let zones = devices
        .iter()
        .map(|d| d.zone as usize + 1)
        .max()
        .unwrap_or(0);
    let zones_named = {
        let mut named: Vec<_> = devices.iter().map(|d| d.zone).collect();
        named.sort_unstable();
        named.dedup();
        named.len()
    };
    let groups = augur_dataflows::hierarchy::device_groups(&devices);
    let group_count = groups.iter().map(|g| *g as usize + 1).max().unwrap_or(0);
    let mut tasks_per_zone = vec![0usize; zones];
    let mut tasks_per_group = vec![0usize; group_count];
    let mut makespan_ms = 0.0f64;
    for (task, device, _) in placer.placements() {
        tasks_per_zone[devices[device as usize].zone as usize] += 1;
        tasks_per_group[groups[device as usize] as usize] += 1;
        makespan_ms = makespan_ms.max(placer.finish_of(&task).unwrap_or(0.0));
    }
    let (mut total, mut between_devices, mut between_zones) = (0u64, 0u64, 0u64);
    let mut between_groups = 0u64;
    for (child, parent, bytes) in edges.iter().copied() {
        total = total.saturating_add(bytes);
        if let (Some(a), Some(b)) = (placer.device_of(&child), placer.device_of(&parent)) {
            if a != b {
                between_devices = between_devices.saturating_add(bytes);
            }
            if devices[a as usize].zone != devices[b as usize].zone {
                between_zones = between_zones.saturating_add(bytes);
            }
            if groups[a as usize] != groups[b as usize] {
                between_groups = between_groups.saturating_add(bytes);
            }
        }
    }
    Ok(WorkflowReport {
        hierarchy: args.hierarchy.clone(),
        hierarchical: group_count > 1 && hierarchy.applies(tasks),
        devices: devices.len(),
        zones,
        tasks: placer.len(),
        edges: edges.len(),
        read_s,
        initial_map_s,
        tasks_per_s: tasks as f64 / initial_map_s.max(1e-9),
        predicted_makespan_s: makespan_ms / 1000.0,
        bytes_total: total,
        bytes_between_devices: between_devices,
        bytes_between_zones: between_zones,
        tasks_per_zone,
        grouped_by: if zones_named > 1 {
            "zone"
        } else {
            "capability class"
        },
        groups: group_count,
        bytes_between_groups: between_groups,
        tasks_per_group,
        duration_changes,
        peak_rss_mib: peak_resident_mib(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("data/demo")
            .join(name)
    }

    fn bench(platform: PathBuf) -> WorkflowReport {
        let args = WorkflowArgs {
            platform,
            workflows: vec![demo("montage-chameleon-2mass-01d-001.json")],
            hierarchy: "on".into(),
            policy: "heft".into(),
        };
        run_workflow_bench(&args, &mut |_| {}).expect("the demo's workflow benchmarks")
    }

    /// The report names the groups the hierarchy used: the zones where the platform names
    /// several, else the capability classes (where it once reported one zone of everything).
    #[test]
    fn the_report_names_the_groups_the_hierarchy_used() {
        let zoned = bench(demo("platform.toml"));
        assert_eq!(
            (zoned.grouped_by, zoned.groups, zoned.zones),
            ("zone", 2, 2)
        );
        assert_eq!(zoned.tasks_per_group, zoned.tasks_per_zone);
        assert_eq!(zoned.bytes_between_groups, zoned.bytes_between_zones);

        let dir = crate::testing::Scratch::new("bench-workflow-classes");
        let text = std::fs::read_to_string(demo("platform.toml")).expect("the demo's platform");
        let unzoned: String = text
            .lines()
            .filter(|line| !line.starts_with("zone"))
            .map(|line| format!("{line}\n"))
            .collect();
        let platform = dir.join("platform.toml");
        std::fs::write(&platform, unzoned).expect("write the platform");
        let classes = bench(platform);
        assert_eq!(classes.zones, 1);
        assert_eq!(classes.grouped_by, "capability class");
        assert_eq!(
            classes.groups, 3,
            "two edge boxes alike, two cloud nodes apart"
        );
        assert_eq!(classes.tasks_per_group.iter().sum::<usize>(), classes.tasks);
        assert!(classes.bytes_between_groups <= classes.bytes_between_devices);
    }
}
