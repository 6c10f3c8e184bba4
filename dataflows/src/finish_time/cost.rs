//! The arithmetic of the rule, shared by the engine and the oracle so both compute the very same
//! floating-point values.

use crate::placement::Weights;
use crate::types::{DeviceSpec, TaskSpec};

/// The work the map queues on a device: Σ duration × cores and Σ duration × memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Work {
    /// Milliseconds × thousandths of a core.
    pub cores: u128,
    /// Milliseconds × bytes.
    pub memory: u128,
}

impl Work {
    /// The work of one task of this duration.
    pub fn of(task: &TaskSpec, duration_ms: u64) -> Work {
        Work {
            cores: u128::from(duration_ms) * u128::from(task.cores_milli),
            memory: u128::from(duration_ms) * u128::from(task.memory_bytes),
        }
    }

    /// This work with another added.
    pub fn plus(self, other: Work) -> Work {
        Work {
            cores: self.cores.saturating_add(other.cores),
            memory: self.memory.saturating_add(other.memory),
        }
    }

    /// This work with another taken away.
    pub fn minus(self, other: Work) -> Work {
        Work {
            cores: self.cores.saturating_sub(other.cores),
            memory: self.memory.saturating_sub(other.memory),
        }
    }
}

/// The larger of a task's shares of a device's cores and memory.
pub fn share(device: &DeviceSpec, task: &TaskSpec) -> f64 {
    let cores = f64::from(task.cores_milli) / f64::from(device.cores_milli.max(1));
    let memory = task.memory_bytes as f64 / device.memory_bytes.max(1) as f64;
    cores.max(memory)
}

/// Milliseconds to drain the queued work at full use of the device, slowed by contention.
pub fn backlog_ms(device: &DeviceSpec, contention: f64, work: Work) -> f64 {
    let cores = work.cores as f64 / f64::from(device.cores_milli.max(1));
    let memory = work.memory as f64 / device.memory_bytes.max(1) as f64;
    (1.0 + contention) * cores.max(memory)
}

/// Contention plus the share of cores or memory the active mapped tasks take.
pub fn utilisation(device: &DeviceSpec, contention: f64, cores_milli: u64, memory: u64) -> f64 {
    let cores = cores_milli as f64 / f64::from(device.cores_milli.max(1));
    let memory = memory as f64 / device.memory_bytes.max(1) as f64;
    contention + cores.max(memory)
}

/// Milliseconds to move `bytes` between two devices (zero when either bandwidth is unknown).
pub fn transfer_ms(bytes: u64, from: &DeviceSpec, to: &DeviceSpec) -> f64 {
    let bandwidth = match (from.network_bytes_per_s > 0.0, to.network_bytes_per_s > 0.0) {
        (true, true) => from.network_bytes_per_s.min(to.network_bytes_per_s),
        _ => return 0.0,
    };
    bytes as f64 / bandwidth * 1000.0
}

/// Milliseconds to move `bytes` at a mean bandwidth (zero when none is known), for ranks.
pub fn mean_transfer_ms(bytes: u64, mean_bandwidth: f64) -> f64 {
    if mean_bandwidth > 0.0 {
        bytes as f64 / mean_bandwidth * 1000.0
    } else {
        0.0
    }
}

/// Run time under contention.
pub fn run_ms(duration_ms: u64, contention: f64) -> f64 {
    duration_ms as f64 * (1.0 + contention)
}

/// Predicted finish (absolute milliseconds) of a task queued on a device available from
/// `available` (the predicted drain of the queue ahead of it, never before now): not before its
/// data is ready plus the run, nor before the queue ahead drains plus the task's own share of
/// the device. With a whole device (`share` 1) this is HEFT's append-only earliest finish,
/// `max(ready, available) + run`.
pub fn finish_ms(ready: f64, available: f64, run: f64, share: f64) -> f64 {
    (ready + run).max(available + run * share)
}

/// The device's available time once a task with this finish is queued behind `available`: its
/// share of the device for its run, and for the same share of any idle gap before its data is
/// ready (a whole-device task makes the device available at its finish, as in HEFT; a small
/// share leaves the rest of the device to the tasks queued after it).
pub fn advance(available: f64, finish: f64, run: f64, share: f64) -> f64 {
    available + share * run.max(finish - available)
}

/// Where a device's queue starts: its running tasks' remaining predicted time, each at its
/// share, after now (a task past its predicted finish holds nothing).
pub fn running_until(now: f64, running: impl IntoIterator<Item = (f64, f64)>) -> f64 {
    running.into_iter().fold(now, |at, (finish, share)| {
        at + share * (finish - now).max(0.0)
    })
}

/// The weighted score of finishing at `finish` on `device`.
pub fn score(
    weights: &Weights,
    device: &DeviceSpec,
    now: f64,
    finish: f64,
    run: f64,
    share: f64,
    remote_bytes: u64,
) -> f64 {
    let busy_s = run / 1000.0 * share;
    weights.latency * (finish - now) / 1000.0
        + weights.cost * device.cost_per_hour * busy_s / 3600.0
        + weights.energy * device.power_watts * busy_s / 1000.0
        + weights.locality * remote_bytes as f64 / 1e9
}

/// Whether moving beats staying by more than the hysteresis.
pub fn worth_moving(stay: f64, elsewhere: f64, hysteresis: f64) -> bool {
    stay > elsewhere * (1.0 + hysteresis)
}

/// Devices a class of `cores_milli` cores each would need to add to bring `demand` (in
/// thousandths of a core) under `target` × `capacity`; zero if it is already under.
pub fn prewarm_amount(demand: f64, capacity: f64, target: f64, cores_milli: u32) -> u32 {
    let excess = demand - target * capacity;
    if excess <= 0.0 || target <= 0.0 {
        return 0;
    }
    (excess / (target * f64::from(cores_milli.max(1))))
        .ceil()
        .min(f64::from(u32::MAX)) as u32
}
