//! The lifecycle of every task a source has let in: waiting, running on a device, completed.
//! `augur run`'s feed and `augur serve`'s live source both validate task events against it and
//! turn them into the dataflow's inputs the same way, so a service fed over HTTP and a run over
//! files see the same map.

use std::collections::HashMap;

use augur_dataflows::types::{DeviceId, InputBatch, TaskKey, Time};

use crate::catalog::Catalog;
use crate::input::{EventKind, RejectKind, TaskEvent};

/// Where a live task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Lifecycle {
    /// Arrived, not started.
    Waiting,
    /// Started on this device at this time.
    Running(DeviceId, Time),
}

/// What a valid event does to a task.
#[derive(Clone, Copy, Debug)]
pub enum Change {
    /// It arrives.
    Arrive,
    /// Started on this device at this time.
    Start(DeviceId, Time),
    /// Completed at `time`, with the device and duration the event gives.
    Complete {
        /// The device the event names.
        device: Option<DeviceId>,
        /// The duration the event gives.
        duration_s: Option<f64>,
        /// When it completed.
        time: Time,
    },
}

/// The live tasks and, per workflow, which tasks have completed.
#[derive(Debug, Default)]
pub struct TaskLifecycle {
    live: HashMap<TaskKey, Lifecycle>,
    /// Per workflow, which tasks have completed (a bit each).
    completed: HashMap<u32, Vec<bool>>,
}

/// A [`TaskLifecycle`] as a checkpoint keeps it: live tasks and completions, sorted.
pub type LifecycleParts = (Vec<(TaskKey, Lifecycle)>, Vec<(u32, Vec<bool>)>);

impl TaskLifecycle {
    /// Taken back from [`Self::parts`].
    pub fn from_parts((live, completed): LifecycleParts) -> TaskLifecycle {
        TaskLifecycle {
            live: live.into_iter().collect(),
            completed: completed.into_iter().collect(),
        }
    }

    /// The state in key order, for a checkpoint.
    pub fn parts(&self) -> LifecycleParts {
        let mut live: Vec<(TaskKey, Lifecycle)> = self.live.iter().map(|(k, v)| (*k, *v)).collect();
        live.sort_unstable_by_key(|(key, _)| *key);
        let mut completed: Vec<(u32, Vec<bool>)> = self
            .completed
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        completed.sort_unstable_by_key(|(key, _)| *key);
        (live, completed)
    }

    /// Tasks arrived and not completed.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// The dataflow's input collections that the live tasks make up (tasks, edges,
    /// alternatives, started), each with +1, in key order: what a resumed dataflow is seeded with.
    pub fn live_collections(&self, catalog: &Catalog) -> InputBatch {
        let mut batch = InputBatch::default();
        let (live, _) = self.parts();
        for (key, lifecycle) in live {
            let Some(spec) = catalog.spec(key) else {
                continue;
            };
            batch.tasks.push(((key, spec), 1));
            for (parent, bytes) in catalog.parents(key) {
                batch.edges.push((((key, parent), bytes), 1));
            }
            for alternative in catalog.alternatives(key) {
                batch.alternatives.push(((key, alternative), 1));
            }
            if let Lifecycle::Running(device, _) = lifecycle {
                batch.started.push(((key, device), 1));
            }
        }
        batch
    }

    /// Why an event names something the catalog does not hold (a workflow, a device, a
    /// task), if it does: what can be told from the event alone, before its time comes, so
    /// that a reader can refuse it in line order (and `--strict` stop at the first such line).
    pub fn check_names(catalog: &Catalog, event: &TaskEvent) -> Result<(), (RejectKind, String)> {
        Self::resolve(catalog, event).map(|_| ())
    }

    /// The device and task an event names, or why one of its names is unknown.
    fn resolve(
        catalog: &Catalog,
        event: &TaskEvent,
    ) -> Result<(Option<DeviceId>, Option<TaskKey>), (RejectKind, String)> {
        if catalog.workflow_id(&event.workflow).is_none() {
            return Err((
                RejectKind::UnknownWorkflow,
                format!("no admitted workflow is named '{}'", event.workflow),
            ));
        }
        let device = match &event.device {
            Some(name) => Some(catalog.device_id(name).ok_or_else(|| {
                (
                    RejectKind::UnknownDevice,
                    format!("device '{name}' is not in the platform"),
                )
            })?),
            None => None,
        };
        let key = match &event.task {
            Some(task) => Some(catalog.task_key(&event.workflow, task).ok_or_else(|| {
                (
                    RejectKind::UnknownTask,
                    format!("workflow '{}' has no task '{task}'", event.workflow),
                )
            })?),
            None => None,
        };
        Ok((device, key))
    }

    /// What an event does to a task, or why it cannot be accepted.
    pub fn validate(
        &self,
        catalog: &Catalog,
        event: &TaskEvent,
    ) -> Result<Option<(TaskKey, Change)>, (RejectKind, String)> {
        let (device, key) = Self::resolve(catalog, event)?;
        let (Some(task), Some(key)) = (&event.task, key) else {
            // A whole-workflow arrival: its time was taken before the run started.
            return Ok(None);
        };
        let state = self.live.get(&key).copied();
        let done = self.is_completed(key);
        match event.kind {
            EventKind::Arrival => Ok(None),
            EventKind::Start => match (state, device) {
                (Some(Lifecycle::Waiting), Some(device)) => {
                    Ok(Some((key, Change::Start(device, event.time))))
                }
                (_, None) => Err((
                    RejectKind::Parse,
                    "a start event needs a device".to_string(),
                )),
                (Some(Lifecycle::Running(on, _)), _) => Err((
                    RejectKind::BadTransition,
                    format!(
                        "task '{task}' already started on '{}'",
                        catalog.device_name(on)
                    ),
                )),
                (None, _) if done => Err((
                    RejectKind::BadTransition,
                    format!("task '{task}' already completed"),
                )),
                (None, _) => Err((
                    RejectKind::BadTransition,
                    format!("task '{task}' has not arrived yet"),
                )),
            },
            EventKind::Complete => match state {
                // A task runs where it started: a completion naming another device would teach
                // the duration model a device the task never ran on.
                Some(Lifecycle::Running(on, _)) if device.is_some_and(|d| d != on) => Err((
                    RejectKind::BadTransition,
                    format!(
                        "task '{task}' started on '{}', not on '{}'",
                        catalog.device_name(on),
                        event.device.as_deref().unwrap_or_default()
                    ),
                )),
                // A completion without a start is taken (sources often report completions
                // only), as having run on the device it names.
                Some(_) => Ok(Some((
                    key,
                    Change::Complete {
                        device,
                        duration_s: event.duration_s,
                        time: event.time,
                    },
                ))),
                None if done => Err((
                    RejectKind::BadTransition,
                    format!("task '{task}' already completed"),
                )),
                None => Err((
                    RejectKind::BadTransition,
                    format!("task '{task}' has not arrived yet"),
                )),
            },
        }
    }

    /// Whether the task has completed.
    pub fn is_completed(&self, key: TaskKey) -> bool {
        self.completed
            .get(&key.workflow)
            .and_then(|done| done.get(key.task as usize))
            .copied()
            .unwrap_or(false)
    }

    /// Applies a validated change, adding what the dataflow must see of it to `batch`.
    pub fn apply(
        &mut self,
        catalog: &Catalog,
        key: TaskKey,
        change: Change,
        batch: &mut InputBatch,
    ) {
        let Some(spec) = catalog.spec(key) else {
            return;
        };
        match change {
            Change::Arrive => {
                if self.live.contains_key(&key) || self.is_completed(key) {
                    return;
                }
                self.live.insert(key, Lifecycle::Waiting);
                batch.tasks.push(((key, spec), 1));
                for (parent, bytes) in catalog.parents(key) {
                    batch.edges.push((((key, parent), bytes), 1));
                }
                for alternative in catalog.alternatives(key) {
                    batch.alternatives.push(((key, alternative), 1));
                }
            }
            Change::Start(device, time) => {
                self.live.insert(key, Lifecycle::Running(device, time));
                batch.started.push(((key, device), 1));
            }
            Change::Complete {
                device,
                duration_s,
                time,
            } => {
                let mut ran = None;
                if let Some(Lifecycle::Running(on, start)) = self.live.remove(&key) {
                    batch.started.push(((key, on), -1));
                    let measured = (time > start).then(|| (time - start) as f64 / 1000.0);
                    ran = Some((on, measured));
                }
                // What the duration model learns: the event's own duration, else the time since
                // the start; on the device the event names, else the one it started on.
                let device = device.or(ran.map(|(on, _)| on));
                let seconds = duration_s.or(ran.and_then(|(_, measured)| measured));
                if let (Some(device), Some(seconds)) = (device, seconds) {
                    batch
                        .completions
                        .extend(catalog.completion(key, device, seconds));
                }
                let tasks = catalog
                    .workflows
                    .get(key.workflow as usize)
                    .map_or(0, |w| w.specs.len());
                let done = self
                    .completed
                    .entry(key.workflow)
                    .or_insert_with(|| vec![false; tasks]);
                if let Some(flag) = done.get_mut(key.task as usize) {
                    *flag = true;
                }
                batch.tasks.push(((key, spec), -1));
                for (parent, bytes) in catalog.parents(key) {
                    batch.edges.push((((key, parent), bytes), -1));
                }
                for alternative in catalog.alternatives(key) {
                    batch.alternatives.push(((key, alternative), -1));
                }
            }
        }
    }
}
