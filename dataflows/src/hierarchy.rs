//! Hierarchical placement of huge batches: coarsen the new tasks into clusters, map each
//! cluster onto a device group, then place each task with the finish-time rule restricted to
//! its group's devices.
//!
//! # Why
//! The flat rule ([`crate::finish_time`]) evaluates, per task, two devices of every capability
//! class plus each parent's device. That is cheap, but it decides one task at a time: on a
//! platform of zones joined by slower links it scatters a workflow's heavy edges across zones,
//! and every decision searches the whole platform. Coarsening decides where each *cluster*
//! goes once, from aggregates (a group's capacity, its queued work, the bytes the cluster would
//! pull from other groups), and then each task searches only its group.
//!
//! # Groups
//! [`device_groups`]: the platform's zones when it names at least two; otherwise its
//! capability classes (each class a group), so a platform that says nothing about zones still
//! gets a two-level map when it mixes kinds of devices.
//!
//! # The rule (for one batch of `n` new unpinned tasks over `G ≥ 2` groups)
//! 1. *Coarsen*. Clusters hold at most `cap = ⌈n / (64 G)⌉` tasks (about 64 clusters per group:
//!    fine enough to balance, coarse enough that a chain of heavy edges stays together). Tasks
//!    are visited by (depth among the new tasks, key); a task's *anchor* is its new parent with
//!    the most bytes on the edge (ties: least key). A task joins its anchor's cluster while that
//!    holds fewer than `cap` tasks, and otherwise starts a cluster. Heavy transfers therefore
//!    stay inside a cluster, and so inside a group.
//! 2. *Map clusters to groups*, in order of decreasing cluster rank (the largest upward rank of
//!    its members), then by cluster number. A group is eligible when, for every member, some
//!    device of the group can host it; a cluster with no eligible group stays unrestricted
//!    (its tasks use the flat rule). Among eligible groups the cluster takes the one of least
//!    `(drain + transfer, group)`, where
//!    `drain = (queued + assigned + work) / capacity`: `queued` is the work already mapped on
//!    the group at speed 1 (`Σ work_d × speed_d`, in device order), `assigned` the work of the
//!    clusters given to the group earlier in this batch, `work` the cluster's own
//!    (`Σ duration × cores`, from the tasks' declared estimates), and `capacity` the group's
//!    cores at speed, slowed by contention (`Σ cores_d × speed_d / (1 + c_d)`, in device order);
//!    and `transfer` is the mean-bandwidth time of the bytes on edges between the cluster and
//!    tasks whose group is already known to be another (parents placed, completed or in an
//!    assigned cluster; children in an assigned cluster).
//! 3. *Refine*: every task is placed in the batch's usual order (decreasing upward rank) by the
//!    flat rule with candidates drawn only from its group: each (class, group) cell offers its
//!    least-backlog and least-contention devices, and parents' devices count only inside the
//!    group.
//!
//! Only the initial placement is hierarchical. Afterwards a task is an ordinary mapped task:
//! metric changes rebalance by the flat rule, so a change still touches only the tasks it
//! concerns, and a task crosses groups only when rebalancing finds it worth the hysteresis.
//! Every step is a function of the batch and the map (no hashing order, no threads), so the
//! map is the same with any number of workers; [`crate::oracle`] writes the same rule with
//! plain scans.

use crate::placement::same_capability;
use crate::types::{DeviceSpec, TaskSpec};

/// Clusters per group the coarsening aims at.
pub const CLUSTERS_PER_GROUP: usize = 64;

/// The group of each device: its zone when the platform names two or more, else its
/// capability class; numbered from 0 by first appearance.
pub fn device_groups(devices: &[DeviceSpec]) -> Vec<u32> {
    let zoned = devices
        .first()
        .is_some_and(|first| devices.iter().any(|d| d.zone != first.zone));
    let mut seen: Vec<DeviceSpec> = Vec::new();
    devices
        .iter()
        .map(|spec| {
            let position = if zoned {
                seen.iter().position(|s| s.zone == spec.zone)
            } else {
                seen.iter().position(|s| same_capability(s, spec))
            };
            match position {
                Some(group) => group as u32,
                None => {
                    seen.push(*spec);
                    seen.len() as u32 - 1
                }
            }
        })
        .collect()
}

/// The most tasks one cluster may hold, for a batch of `tasks` over `groups` groups.
pub fn cluster_cap(tasks: usize, groups: usize) -> usize {
    tasks.div_ceil(CLUSTERS_PER_GROUP * groups.max(1)).max(1)
}

/// The work a task brings to a group, at speed 1: its declared duration times its cores.
pub fn task_work(spec: &TaskSpec) -> u128 {
    u128::from(spec.duration_ms) * u128::from(spec.cores_milli)
}

/// One device's contribution to its group's queued work (at speed 1) and capacity.
pub fn device_terms(spec: &DeviceSpec, contention: f64, work_cores: u128) -> (f64, f64) {
    let queued = work_cores as f64 * spec.speed;
    let capacity = f64::from(spec.cores_milli) * spec.speed / (1.0 + contention);
    (queued, capacity)
}

/// The score of giving a cluster to a group: the time the group would need to drain its queue
/// with the cluster added, plus the transfer of the bytes crossing groups.
pub fn group_score(
    queued: f64,
    assigned: u128,
    work: u128,
    capacity: f64,
    cross_bytes: u128,
    mean_bandwidth: f64,
) -> f64 {
    let drain = (queued + assigned.saturating_add(work) as f64) / capacity;
    let drain = if drain.is_nan() { f64::INFINITY } else { drain };
    let transfer = if mean_bandwidth > 0.0 {
        cross_bytes as f64 / mean_bandwidth * 1000.0
    } else {
        0.0
    };
    drain + transfer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_make_groups_else_classes_do() {
        let small = DeviceSpec::default();
        let big = DeviceSpec {
            cores_milli: 8_000,
            ..DeviceSpec::default()
        };
        assert_eq!(device_groups(&[small, big, small]), vec![0, 1, 0]);
        let zoned = |zone| DeviceSpec { zone, ..small };
        assert_eq!(
            device_groups(&[zoned(3), zoned(1), zoned(3), big]),
            vec![0, 1, 0, 2]
        );
    }

    #[test]
    fn clusters_are_about_64_per_group() {
        assert_eq!(cluster_cap(100_000, 2), 782);
        assert_eq!(cluster_cap(10, 2), 1);
        assert_eq!(cluster_cap(0, 0), 1);
    }

    #[test]
    fn a_group_without_capacity_never_wins() {
        let empty = group_score(0.0, 0, 1, 0.0, 0, 0.0);
        let busy = group_score(1e12, 0, 1, 1.0, 0, 0.0);
        assert!(empty.is_infinite() && busy < empty);
    }
}
