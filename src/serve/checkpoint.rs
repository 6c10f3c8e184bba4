//! Checkpoints of `augur serve`: what its source and sink add to the engine's snapshot, the
//! fingerprint a checkpoint must match to be resumed, and the store that also tells
//! `GET /v1/status` which checkpoint is the latest.
//!
//! A service has no input files to read on from: everything it was sent lives in the
//! checkpoint. The source's part holds every admitted workflow (in admission order, so their
//! ids come back the same), the reorder buffer (records acknowledged but not yet applied),
//! epochs released but not yet fed, the task lifecycle, arrivals to come and the record
//! counters; the sink's part holds the map, the forecasts, the scale-out tracker and the epoch
//! count (the event streams' ids). Records accepted after the latest checkpoint are lost by a
//! crash: producers replay what they sent after it (`checkpoint` in `GET /v1/status`).

use std::path::Path;
use std::sync::Arc;

use augur_dataflows::types::Time;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{text_hash, CheckpointDir, Fingerprint};
use crate::engine::{CheckpointStore, EngineSnapshot};
use crate::input::wfformat::{Machine, WfAlternative, WfEdge, WfTask, Workflow};

use super::state::Shared;
use super::ServeConfig;

/// The fingerprint a serve checkpoint must match: the platform file's contents and every
/// setting that changes what the engine computes (not the worker count, nor the address).
pub fn serve_fingerprint(config: &ServeConfig) -> Fingerprint {
    let text = |text: String| text_hash(&text);
    Fingerprint::of_command("serve")
        .with(
            "the platform file (--platform)",
            crate::checkpoint::fingerprint_of("", &[config.platform.as_path()]),
        )
        .with(
            "the allowed lateness (--lateness, lateness_s in --config)",
            text(config.lateness_ms.to_string()),
        )
        .with(
            "the line limit (max_line_bytes in --config)",
            text(config.max_line_bytes.to_string()),
        )
        .with(
            "the forecast settings ([forecast] in --config)",
            text(format!("{:?}", config.engine.forecast)),
        )
        .with(
            "the placement settings (--policy, [placement] in --config)",
            text(format!("{:?}", config.engine.placement)),
        )
}

/// The latest checkpoint, as `GET /v1/status` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointMark {
    /// The event time of the last epoch it applied.
    pub time: Time,
    /// Epochs applied up to it.
    pub epochs: u64,
    /// The newest record time it holds (applied or still buffered): a producer sending in
    /// time order replays what it sent after this.
    pub newest: Option<Time>,
}

/// The engine's checkpoint folder, publishing each checkpoint kept to the shared view.
pub struct ServeStore {
    inner: CheckpointDir,
    shared: Arc<Shared>,
}

impl ServeStore {
    /// A store writing into `dir`.
    pub fn new(dir: &Path, fingerprint: &Fingerprint, shared: Arc<Shared>) -> ServeStore {
        ServeStore {
            // A service streams no output files: the checkpoint is all there is.
            inner: CheckpointDir::new(dir, dir, &[], fingerprint, false),
            shared,
        }
    }
}

impl CheckpointStore for ServeStore {
    fn save(&mut self, snapshot: &EngineSnapshot) -> Result<(), String> {
        // The source noted its newest time when it was snapshotted for this checkpoint.
        let newest = self.shared.view().snapshot_newest;
        let mark = CheckpointMark {
            time: snapshot.time,
            epochs: snapshot.epochs,
            newest,
        };
        // Published only once the file is in place: a producer that reads `checkpoint.newest`
        // replays from it after a crash, so it must never name a checkpoint that a kill
        // between the two steps would lose.
        self.inner.save(snapshot)?;
        self.shared.view_mut().checkpoint = Some(mark);
        Ok(())
    }
}

/// [`Workflow`] as a checkpoint stores it (the parsed workflow, not its document: admitting
/// it again gives the same catalog entry).
#[derive(Serialize, Deserialize)]
pub struct WorkflowRecord {
    name: String,
    path: String,
    tasks: Vec<TaskRecord>,
    edges: Vec<(usize, usize, u64)>,
    machines: Vec<MachineRecord>,
    notes: Vec<String>,
}

/// [`Machine`]: name, cores, speed in MHz, memory in bytes.
type MachineRecord = (String, Option<u32>, Option<f64>, Option<u64>);

#[derive(Serialize, Deserialize)]
struct TaskRecord {
    id: String,
    name: String,
    category: Option<String>,
    runtime_s: f64,
    cores: f64,
    memory_bytes: Option<u64>,
    avg_cpu_pct: Option<f64>,
    read_bytes: Option<u64>,
    written_bytes: Option<u64>,
    input_bytes: u64,
    output_bytes: u64,
    parents: Vec<usize>,
    children: Vec<usize>,
    alternatives: Vec<(String, f64, Option<u64>, f64)>,
    machine: Option<String>,
}

impl From<&Workflow> for WorkflowRecord {
    fn from(workflow: &Workflow) -> WorkflowRecord {
        WorkflowRecord {
            name: workflow.name.clone(),
            path: workflow.path.clone(),
            tasks: workflow
                .tasks
                .iter()
                .map(|task| TaskRecord {
                    id: task.id.clone(),
                    name: task.name.clone(),
                    category: task.category.clone(),
                    runtime_s: task.runtime_s,
                    cores: task.cores,
                    memory_bytes: task.memory_bytes,
                    avg_cpu_pct: task.avg_cpu_pct,
                    read_bytes: task.read_bytes,
                    written_bytes: task.written_bytes,
                    input_bytes: task.input_bytes,
                    output_bytes: task.output_bytes,
                    parents: task.parents.clone(),
                    children: task.children.clone(),
                    alternatives: task
                        .alternatives
                        .iter()
                        .map(|a| (a.name.clone(), a.cores, a.memory_bytes, a.runtime_s))
                        .collect(),
                    machine: task.machine.clone(),
                })
                .collect(),
            edges: workflow
                .edges
                .iter()
                .map(|edge| (edge.parent, edge.child, edge.bytes))
                .collect(),
            machines: workflow
                .machines
                .iter()
                .map(|m| (m.name.clone(), m.cores, m.speed_mhz, m.memory_bytes))
                .collect(),
            notes: workflow.notes.clone(),
        }
    }
}

impl From<WorkflowRecord> for Workflow {
    fn from(record: WorkflowRecord) -> Workflow {
        Workflow {
            name: record.name,
            path: record.path,
            tasks: record
                .tasks
                .into_iter()
                .map(|task| WfTask {
                    id: task.id,
                    name: task.name,
                    category: task.category,
                    runtime_s: task.runtime_s,
                    cores: task.cores,
                    memory_bytes: task.memory_bytes,
                    avg_cpu_pct: task.avg_cpu_pct,
                    read_bytes: task.read_bytes,
                    written_bytes: task.written_bytes,
                    input_bytes: task.input_bytes,
                    output_bytes: task.output_bytes,
                    parents: task.parents,
                    children: task.children,
                    alternatives: task
                        .alternatives
                        .into_iter()
                        .map(|(name, cores, memory_bytes, runtime_s)| WfAlternative {
                            name,
                            cores,
                            memory_bytes,
                            runtime_s,
                        })
                        .collect(),
                    machine: task.machine,
                })
                .collect(),
            edges: record
                .edges
                .into_iter()
                .map(|(parent, child, bytes)| WfEdge {
                    parent,
                    child,
                    bytes,
                })
                .collect(),
            machines: record
                .machines
                .into_iter()
                .map(|(name, cores, speed_mhz, memory_bytes)| Machine {
                    name,
                    cores,
                    speed_mhz,
                    memory_bytes,
                })
                .collect(),
            notes: record.notes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_comes_back_equal() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/demo/montage-chameleon-2mass-01d-001.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let read = crate::input::wfformat::parse_workflow(&text, "demo.json");
        let Some(workflow) = read.workflow else {
            panic!("the demo workflow parses");
        };
        let record = WorkflowRecord::from(&workflow);
        let bytes = crate::checkpoint::encode(&record).unwrap_or_default();
        let decoded: WorkflowRecord = crate::checkpoint::decode(&bytes).unwrap_or_else(|e| {
            panic!("decodes: {e}");
        });
        assert_eq!(Workflow::from(decoded), workflow);
    }
}
