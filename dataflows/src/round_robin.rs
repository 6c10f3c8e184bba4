//! The `static` policy: round robin over the devices that can host each task, blind to load,
//! durations and forecasts. A baseline, so its bookkeeping is the simplest that stays total.

use crate::placement::{state_is_sane, EpochChanges, MapChange, TaskMap};
use crate::types::{DeviceId, DeviceSpec, TaskKey};

/// The round-robin map.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RoundRobin {
    devices: Vec<DeviceSpec>,
    next: usize,
    tasks: TaskMap<DeviceId>,
}

impl RoundRobin {
    /// An empty map over these devices.
    pub fn new(devices: &[DeviceSpec]) -> RoundRobin {
        RoundRobin {
            devices: devices.to_vec(),
            next: 0,
            tasks: TaskMap::default(),
        }
    }

    /// Every mapped task with its device (and variant 0), in no particular order.
    pub fn placements(&self) -> Vec<(TaskKey, DeviceId, u32)> {
        self.tasks
            .iter()
            .map(|(task, device)| (*task, *device, 0))
            .collect()
    }

    /// Where the map has a task.
    pub fn device_of(&self, task: &TaskKey) -> Option<DeviceId> {
        self.tasks.get(task).copied()
    }

    /// Applies one epoch: removed tasks leave, started tasks go where they started, new tasks
    /// take the next device in turn that can host them (by task key within the epoch).
    pub fn apply(&mut self, mut changes: EpochChanges) -> Vec<MapChange> {
        let mut result = Vec::new();
        changes.removed.sort_unstable();
        changes.removed.dedup();
        for task in changes.removed {
            if let Some(from) = self.tasks.remove(&task) {
                result.push(MapChange {
                    task,
                    from: Some(from),
                    to: None,
                    from_variant: 0,
                    to_variant: 0,
                });
            }
        }
        changes.upserted.sort_unstable();
        for (task, state) in changes.upserted {
            if !state_is_sane(&state, self.devices.len()) {
                continue;
            }
            let from = self.tasks.get(&task).copied();
            let to = match (state.pinned, from) {
                (Some(device), _) => Some(device),
                (None, Some(device)) => Some(device),
                (None, None) => self.take_turn(&state.spec),
            };
            if let Some(device) = to {
                self.tasks.insert(task, device);
            }
            if from != to {
                result.push(MapChange {
                    task,
                    from,
                    to,
                    from_variant: 0,
                    to_variant: 0,
                });
            }
        }
        result.sort_unstable();
        result
    }

    fn take_turn(&mut self, spec: &crate::types::TaskSpec) -> Option<DeviceId> {
        let count = self.devices.len();
        for step in 0..count {
            let device = (self.next + step) % count;
            if self.devices[device].can_host(spec) {
                self.next = (device + 1) % count;
                return Some(device as DeviceId);
            }
        }
        None
    }
}
