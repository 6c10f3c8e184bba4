//! The names behind the dataflow's dense ids: devices, workflows and their tasks.
//!
//! Every process builds the same catalog from the same files in the same order, so ids agree
//! across processes without any exchange.

use std::collections::HashMap;

use augur_dataflows::placement::capability_classes;
use augur_dataflows::types::{Completion, DeviceId, DeviceSpec, TaskKey, TaskSpec};

use crate::input::platform::Platform;
use crate::input::wfformat::Workflow;
use crate::input::{RejectKind, Rejection};

/// A workflow admitted to the run.
#[derive(Debug)]
pub struct CatalogWorkflow {
    /// The workflow as parsed.
    pub workflow: Workflow,
    /// Task ids to indices.
    pub task_index: HashMap<String, u32>,
    /// Requirements of each task, by index.
    pub specs: Vec<TaskSpec>,
    /// The kind of each task (an index into [`Catalog::kinds`]), for the duration model.
    pub kinds: Vec<u32>,
    /// Each task's parents with the bytes it reads from each, by index.
    pub parents: Vec<Vec<(u32, u64)>>,
    /// Each task's equivalent alternatives (variant 1, 2, ...), with their names, by index.
    pub alternatives: Vec<Vec<(String, TaskSpec)>>,
}

/// Devices and admitted workflows, with their dense ids.
#[derive(Debug)]
pub struct Catalog {
    /// The platform; device `i` has id `i`.
    pub platform: Platform,
    /// Admitted workflows; workflow `i` has id `i`.
    pub workflows: Vec<CatalogWorkflow>,
    workflow_index: HashMap<String, u32>,
    /// Task kinds (WfFormat categories) across all workflows, by id.
    pub kinds: Vec<String>,
    kind_index: HashMap<String, u32>,
    /// The capability class of each device.
    pub classes: Vec<u32>,
    /// Device names to ids: every metric sample and event names its device, so this lookup is
    /// on the ingest path and must not scan the platform.
    device_index: HashMap<String, DeviceId>,
}

impl Catalog {
    /// A catalog over a platform, with no workflows yet.
    pub fn new(platform: Platform) -> Catalog {
        let mut catalog = Catalog {
            platform,
            workflows: Vec::new(),
            workflow_index: HashMap::new(),
            kinds: Vec::new(),
            kind_index: HashMap::new(),
            classes: Vec::new(),
            device_index: HashMap::new(),
        };
        // The first of two devices with one name wins, as `Platform::index_of` finds it.
        for (index, device) in catalog.platform.devices.iter().enumerate().rev() {
            catalog
                .device_index
                .insert(device.id.clone(), index as DeviceId);
        }
        catalog.classes = capability_classes(&catalog.device_specs());
        catalog
    }

    fn kind_id(&mut self, kind: &str) -> u32 {
        if let Some(id) = self.kind_index.get(kind) {
            return *id;
        }
        let id = self.kinds.len() as u32;
        self.kinds.push(kind.to_string());
        self.kind_index.insert(kind.to_string(), id);
        id
    }

    /// Names of the devices of a capability class, comma-separated.
    pub fn class_name(&self, class: u32) -> String {
        self.classes
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == class)
            .map(|(device, _)| self.device_name(device as DeviceId))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The capability of every device, as the dataflow sees it. Zones are numbered by first
    /// appearance in the platform (a platform that names none puts every device in zone 0,
    /// "default"), so every process numbers them alike.
    pub fn device_specs(&self) -> Vec<DeviceSpec> {
        let mut zones: Vec<&str> = Vec::new();
        self.platform
            .devices
            .iter()
            .map(|device| DeviceSpec {
                zone: match zones.iter().position(|z| *z == device.zone) {
                    Some(zone) => zone as u32,
                    None => {
                        zones.push(&device.zone);
                        zones.len() as u32 - 1
                    }
                },
                cores_milli: milli(device.cores),
                memory_bytes: device.memory_bytes.unwrap_or(u64::MAX),
                speed: device.speed,
                network_bytes_per_s: device.network_bytes_per_s.unwrap_or(0.0),
                cost_per_hour: device.cost_per_hour,
                power_watts: device.power_watts,
            })
            .collect()
    }

    /// Admits a parsed workflow, unless a task fits on no device or the name is taken: then
    /// the workflow is refused whole, with one rejection per reason.
    pub fn admit(&mut self, workflow: Workflow) -> Result<u32, Vec<Rejection>> {
        if self.workflow_index.contains_key(&workflow.name) {
            return Err(vec![Rejection::whole_file(
                workflow.path.clone(),
                RejectKind::DuplicateId,
                format!(
                    "another workflow is already named '{}' (names are unique: a file's stem in run, ?name= in serve)",
                    workflow.name
                ),
            )]);
        }
        let devices = self.device_specs();
        let mut specs: Vec<TaskSpec> = workflow.tasks.iter().map(task_spec).collect();
        let infeasible: Vec<Rejection> = workflow
            .tasks
            .iter()
            .zip(&specs)
            .filter(|(_, spec)| !devices.iter().any(|device| device.can_host(spec)))
            .map(|(task, spec)| {
                Rejection::whole_file(
                    workflow.path.clone(),
                    RejectKind::Infeasible,
                    format!(
                        "task '{}' needs {} cores and {} of memory, more than any device has",
                        task.id,
                        // As given: the spec's thousandths are clamped to what a u32 holds.
                        crate::cli::short_number(task.cores),
                        memory_text(spec.memory_bytes)
                    ),
                )
            })
            .collect();
        if !infeasible.is_empty() {
            return Err(infeasible);
        }
        let kinds = workflow
            .tasks
            .iter()
            .map(|task| self.kind_id(task.category.as_deref().unwrap_or(&task.name)))
            .collect::<Vec<u32>>();
        for (spec, kind) in specs.iter_mut().zip(&kinds) {
            spec.kind = *kind;
        }
        let mut parents = vec![Vec::new(); workflow.tasks.len()];
        for edge in &workflow.edges {
            if let Some(list) = parents.get_mut(edge.child) {
                list.push((edge.parent as u32, edge.bytes));
            }
        }
        let alternatives: Vec<Vec<(String, TaskSpec)>> = workflow
            .tasks
            .iter()
            .zip(&specs)
            .map(|(task, spec)| {
                task.alternatives
                    .iter()
                    .map(|alternative| {
                        let alternative_spec = TaskSpec {
                            cores_milli: milli(alternative.cores),
                            memory_bytes: alternative.memory_bytes.unwrap_or(0),
                            duration_ms: (alternative.runtime_s * 1000.0)
                                .round()
                                .clamp(0.0, u64::MAX as f64)
                                as u64,
                            kind: spec.kind,
                        };
                        (alternative.name.clone(), alternative_spec)
                    })
                    .collect()
            })
            .collect();
        let id = self.workflows.len() as u32;
        let task_index = workflow
            .tasks
            .iter()
            .enumerate()
            .map(|(index, task)| (task.id.clone(), index as u32))
            .collect();
        self.workflow_index.insert(workflow.name.clone(), id);
        self.workflows.push(CatalogWorkflow {
            workflow,
            task_index,
            specs,
            kinds,
            parents,
            alternatives,
        });
        Ok(id)
    }

    /// The id of a workflow by name.
    pub fn workflow_id(&self, name: &str) -> Option<u32> {
        self.workflow_index.get(name).copied()
    }

    /// The key of a task by workflow name and task id.
    pub fn task_key(&self, workflow: &str, task: &str) -> Option<TaskKey> {
        let id = self.workflow_id(workflow)?;
        let task = *self.workflows.get(id as usize)?.task_index.get(task)?;
        Some(TaskKey { workflow: id, task })
    }

    /// The id of a device by name.
    pub fn device_id(&self, name: &str) -> Option<DeviceId> {
        self.device_index.get(name).copied()
    }

    /// Names of a task: (workflow name, task id).
    pub fn task_names(&self, key: TaskKey) -> (&str, &str) {
        match self.workflows.get(key.workflow as usize) {
            Some(entry) => (
                entry.workflow.name.as_str(),
                entry
                    .workflow
                    .tasks
                    .get(key.task as usize)
                    .map_or("?", |task| task.id.as_str()),
            ),
            None => ("?", "?"),
        }
    }

    /// Name of a device.
    pub fn device_name(&self, device: DeviceId) -> &str {
        self.platform
            .devices
            .get(device as usize)
            .map_or("?", |device| device.id.as_str())
    }

    /// Requirements of a task.
    pub fn spec(&self, key: TaskKey) -> Option<TaskSpec> {
        self.workflows
            .get(key.workflow as usize)?
            .specs
            .get(key.task as usize)
            .copied()
    }

    /// What the duration model learns from a completed task: its kind, the device's class and
    /// speed, its estimate and inputs, and how long it ran.
    pub fn completion(&self, key: TaskKey, device: DeviceId, seconds: f64) -> Option<Completion> {
        let entry = self.workflows.get(key.workflow as usize)?;
        let task = entry.workflow.tasks.get(key.task as usize)?;
        let spec = entry.specs.get(key.task as usize)?;
        let speed = self.platform.devices.get(device as usize)?.speed;
        Some(Completion {
            category: *entry.kinds.get(key.task as usize)?,
            class: *self.classes.get(device as usize)?,
            speed,
            estimate_s: task.runtime_s,
            input_bytes: task.input_bytes,
            cores: f64::from(spec.cores_milli) / 1000.0,
            seconds,
        })
    }

    /// The name of a variant of a task: `declared` for 0, else the alternative's name.
    pub fn variant_name(&self, key: TaskKey, variant: u32) -> String {
        if variant == 0 {
            return "declared".to_string();
        }
        self.workflows
            .get(key.workflow as usize)
            .and_then(|entry| entry.alternatives.get(key.task as usize))
            .and_then(|list| list.get(variant as usize - 1))
            .map_or_else(
                || format!("alternative {variant}"),
                |(name, _)| name.clone(),
            )
    }

    /// A task's alternatives as the graph carries them, `(variant, requirements)`.
    pub fn alternatives(&self, key: TaskKey) -> Vec<(u32, TaskSpec)> {
        self.workflows
            .get(key.workflow as usize)
            .and_then(|entry| entry.alternatives.get(key.task as usize))
            .map_or_else(Vec::new, |list| {
                list.iter()
                    .enumerate()
                    .map(|(index, (_, spec))| (index as u32 + 1, *spec))
                    .collect()
            })
    }

    /// Parents of a task, as keys, with the bytes the task reads from each.
    pub fn parents(&self, key: TaskKey) -> impl Iterator<Item = (TaskKey, u64)> + '_ {
        self.workflows
            .get(key.workflow as usize)
            .and_then(|entry| entry.parents.get(key.task as usize))
            .into_iter()
            .flat_map(move |parents| {
                parents.iter().map(move |&(parent, bytes)| {
                    (
                        TaskKey {
                            workflow: key.workflow,
                            task: parent,
                        },
                        bytes,
                    )
                })
            })
    }
}

/// What the partitioning needs of a WfFormat task.
fn task_spec(task: &crate::input::wfformat::WfTask) -> TaskSpec {
    TaskSpec {
        cores_milli: milli(task.cores),
        memory_bytes: task.memory_bytes.unwrap_or(0),
        duration_ms: (task.runtime_s * 1000.0)
            .round()
            .clamp(0.0, u64::MAX as f64) as u64,
        kind: 0,
    }
}

/// A task's memory for a message. The reader saturates a `memoryInBytes` of 2^64 or more at
/// `u64::MAX`, which is not the value the user gave: say it is too large instead of printing it.
fn memory_text(bytes: u64) -> String {
    if bytes == u64::MAX {
        "2^64 bytes or more (too large to count)".to_string()
    } else {
        format!("{bytes} bytes")
    }
}

/// Cores in thousandths, at least one thousandth so a task always weighs something.
fn milli(cores: f64) -> u32 {
    (cores * 1000.0).round().clamp(1.0, u32::MAX as f64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::platform::parse_platform;

    fn device(id: &str, zone: Option<&str>) -> String {
        let zone = zone.map_or(String::new(), |z| format!("zone = \"{z}\"\n"));
        format!("[[device]]\nid = \"{id}\"\ncores = 4\n{zone}\n")
    }

    #[test]
    fn zones_are_numbered_by_first_appearance_and_default_to_one() {
        let text = [
            device("a", Some("edge")),
            device("b", Some("cloud")),
            device("c", Some("edge")),
            device("d", None),
        ]
        .concat();
        let platform = parse_platform(&text, "p.toml").expect("valid platform");
        let zones: Vec<u32> = Catalog::new(platform)
            .device_specs()
            .iter()
            .map(|d| d.zone)
            .collect();
        assert_eq!(zones, vec![0, 1, 0, 2]);
        let plain = parse_platform(&[device("a", None), device("b", None)].concat(), "p.toml")
            .expect("valid platform");
        let zones: Vec<u32> = Catalog::new(plain)
            .device_specs()
            .iter()
            .map(|d| d.zone)
            .collect();
        assert_eq!(zones, vec![0, 0]);
    }

    #[test]
    fn an_infeasible_task_is_reported_with_its_needs_as_given_not_saturated() {
        let text = format!("{}memory_gib = 8\n", device("a", None));
        let platform = parse_platform(&text, "p.toml").expect("valid platform");
        let mut catalog = Catalog::new(platform);
        let text = |cores: &str, memory: &str| {
            format!(
                r#"{{"name": "t", "schemaVersion": "1.5", "workflow": {{
                    "specification": {{"tasks": [{{"name": "a", "id": "a", "parents": [],
                        "children": [], "inputFiles": [], "outputFiles": []}}], "files": []}},
                    "execution": {{"makespanInSeconds": 1, "executedAt": "20200101T000000+0000",
                        "tasks": [{{"id": "a", "runtimeInSeconds": 1, "coreCount": {cores},
                                    "memoryInBytes": {memory}}}], "machines": []}}}}}}"#
            )
        };
        for (cores, memory, expected) in [
            (
                "1",
                "1e30",
                "needs 1 cores and 2^64 bytes or more (too large to count) of memory",
            ),
            ("1e30", "0", "needs 1e30 cores and 0 bytes of memory"),
            ("64", "1000", "needs 64 cores and 1000 bytes of memory"),
        ] {
            let read = crate::input::wfformat::parse_workflow(&text(cores, memory), "t.json");
            let workflow = read.workflow.expect("a readable workflow");
            let rejections = catalog.admit(workflow).expect_err("infeasible");
            assert!(rejections[0].reason.contains(expected), "{rejections:?}");
            assert!(!rejections[0].reason.contains("18446744073709551615"));
        }
    }
}
