//! The static HEFT schedule the simulator's `heft` policy follows, computed once per workflow
//! exactly as SAGA's `HeftScheduler` computes it, so the two makespans can be compared:
//!
//! - `rank_u(t) = mean over processors of work(t)/speed + max over children c of
//!   (rank_u(c) + mean over SAGA's link set of bytes(t, c)/bandwidth)`, the link set being every
//!   unordered pair of processors *and* each processor with itself (infinite bandwidth, so zero,
//!   unless `--ccr` rescaled it), as SAGA averages;
//! - tasks in decreasing `rank_u`, ties to the earlier in topological order;
//! - each goes to the processor where it finishes first (the first such in processor order),
//!   its start the earliest insertion-based slot after its data arrives (SAGA's
//!   `get_earliest_start_time` with its exact gap rules), one task at a time per processor.
//!
//! A processor is one slot of a device: an exclusive device (SAGA's model) has one; a device of a
//! TOML platform has one per whole core.

use super::background::Background;
use super::dag::Dag;
use super::platform::SimPlatform;

/// A static schedule.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The device of each processor.
    pub processors: Vec<usize>,
    /// The processor of each task.
    pub processor: Vec<usize>,
    /// Planned start of each task (seconds from arrival).
    pub start: Vec<f64>,
    /// Planned end of each task.
    pub end: Vec<f64>,
    /// Each processor's tasks in planned order.
    pub order: Vec<Vec<u32>>,
}

impl Plan {
    /// The planned makespan.
    pub fn makespan(&self) -> f64 {
        self.end.iter().copied().fold(0.0, f64::max)
    }
}

/// Processors of a platform: one per exclusive device, else one per whole core (at least one).
pub fn processors(platform: &SimPlatform) -> Vec<usize> {
    platform
        .platform
        .devices
        .iter()
        .enumerate()
        .flat_map(|(index, device)| {
            let slots = if platform.exclusive {
                1
            } else {
                (device.cores.floor() as usize).max(1)
            };
            std::iter::repeat_n(index, slots)
        })
        .collect()
}

/// Upward ranks, SAGA's way (see the module documentation).
pub fn upward_ranks(dag: &Dag, platform: &SimPlatform, processors: &[usize]) -> Vec<f64> {
    let speeds: Vec<f64> = processors
        .iter()
        .map(|&d| platform.platform.devices[d].speed)
        .collect();
    let inv_speed = speeds.iter().map(|s| 1.0 / s).sum::<f64>() / speeds.len().max(1) as f64;
    let mut inv_bandwidth = 0.0;
    let mut links = 0usize;
    for (i, &a) in processors.iter().enumerate() {
        for &b in &processors[i..] {
            let bandwidth = platform.bandwidth[a][b];
            inv_bandwidth += if bandwidth.is_infinite() {
                0.0
            } else {
                1.0 / bandwidth
            };
            links += 1;
        }
    }
    let inv_bandwidth = inv_bandwidth / links.max(1) as f64;
    let mut rank = vec![0.0; dag.len()];
    for &task in dag.topo.iter().rev() {
        let t = task as usize;
        let below = dag.children[t]
            .iter()
            .map(|&(c, bytes)| rank[c as usize] + bytes as f64 * inv_bandwidth)
            .fold(0.0, f64::max);
        rank[t] = dag.work_s[t] * inv_speed + below;
    }
    rank
}

/// The HEFT schedule of a DAG on a platform.
pub fn plan(dag: &Dag, platform: &SimPlatform) -> Plan {
    plan_with(dag, platform, |t, device, _| {
        dag.work_s[t] / platform.platform.devices[device].speed
    })
}

/// A diagnostic upper bound, not SAGA's rule: HEFT told the future, each task's run time on a
/// device the exact time it takes from its slot's start under that device's actual background
/// (`arrival` places plan time 0 on the background's clock). On exclusive devices that is
/// exactly what the simulator will do, so the plan is what the run achieves: how much a perfect
/// contention forecast could give a static plan.
pub fn plan_clairvoyant(
    dag: &Dag,
    platform: &SimPlatform,
    background: &Background,
    arrival: f64,
) -> Plan {
    plan_with(dag, platform, |t, device, start| {
        let alone = dag.work_s[t] / platform.platform.devices[device].speed;
        finish_under(background, device, arrival + start, alone) - arrival - start
    })
}

/// When work of `alone` seconds (on an idle device) started at `from` ends under the device's
/// background, progressing at `1 / (1 + bg(t))` as the simulator's exclusive devices do.
pub fn finish_under(background: &Background, device: usize, from: f64, alone: f64) -> f64 {
    let mut t = from;
    let mut left = alone;
    // Background traces hold their value between points; step from change to change.
    for _ in 0..1_000_000 {
        let rate = 1.0 / (1.0 + background.value(device, t + 1e-6));
        let next = background
            .next_change(device, t + 1e-6)
            .unwrap_or(f64::INFINITY)
            .max(t);
        if left <= (next - t) * rate {
            return t + left / rate;
        }
        left -= (next - t) * rate;
        t = next;
    }
    t + left
}

/// HEFT with run times from `exec(task, device, start)`.
fn plan_with(dag: &Dag, platform: &SimPlatform, exec: impl Fn(usize, usize, f64) -> f64) -> Plan {
    let processors = processors(platform);
    let rank = upward_ranks(dag, platform, &processors);
    let mut position = vec![0usize; dag.len()];
    for (i, &t) in dag.topo.iter().enumerate() {
        position[t as usize] = i;
    }
    let mut order: Vec<u32> = dag.topo.clone();
    order.sort_by(|&a, &b| {
        rank[b as usize]
            .total_cmp(&rank[a as usize])
            .then(position[a as usize].cmp(&position[b as usize]))
    });
    let n = dag.len();
    let mut result = Plan {
        processors: processors.clone(),
        processor: vec![0; n],
        start: vec![0.0; n],
        end: vec![0.0; n],
        order: vec![Vec::new(); processors.len()],
    };
    // Each processor's scheduled tasks, sorted by (start, end): SAGA's `mapping[node]`.
    let mut mapping: Vec<Vec<(f64, f64, u32)>> = vec![Vec::new(); processors.len()];
    for &task in &order {
        let t = task as usize;
        let mut best: Option<(f64, f64, usize)> = None;
        for (p, &device) in processors.iter().enumerate() {
            let mut ready: f64 = 0.0;
            for &(parent, bytes) in &dag.parents[t] {
                let q = parent as usize;
                let from = processors[result.processor[q]];
                // SAGA: bytes / speed of the link between the two nodes; a node's link with
                // itself is infinite (free) unless `--ccr` rescaled it.
                let comm = platform.transfer_s(bytes, from, device);
                ready = ready.max(result.end[q] + comm);
            }
            let run = |start: f64| exec(t, device, start);
            let start = earliest_start(&mapping[p], ready, run);
            let finish = start + run(start);
            if best.is_none_or(|(f, _, _)| finish < f) {
                best = Some((finish, start, p));
            }
        }
        let Some((finish, start, p)) = best else {
            break;
        };
        // As SAGA: the start is the finish less the run time (bit-identical to its plans).
        let start = finish - exec(t, processors[p], start);
        result.processor[t] = p;
        result.start[t] = start;
        result.end[t] = finish;
        let slot = &mut mapping[p];
        let index = slot.partition_point(|&(s, e, _)| (s, e) < (start, finish));
        slot.insert(index, (start, finish, task));
    }
    // Run order: by planned (start, end), then topological position. SAGA's list puts a
    // zero-length task before an equal zero-length parent; executing that order would wait
    // forever, and this one keeps every parent ahead of its children.
    for (p, slot) in mapping.iter().enumerate() {
        let mut tasks: Vec<u32> = slot.iter().map(|&(_, _, t)| t).collect();
        tasks.sort_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            (result.start[a], result.end[a], position[a])
                .partial_cmp(&(result.start[b], result.end[b], position[b]))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        result.order[p] = tasks;
    }
    result
}

/// SAGA's `Schedule.get_earliest_start_time(append_only=False)`, rule for rule.
/// `exec(start)` is the run time from `start` (a constant for SAGA's rule).
fn earliest_start(slot: &[(f64, f64, u32)], ready: f64, exec: impl Fn(f64) -> f64) -> f64 {
    match slot.first() {
        None => return ready,
        Some(&(first_start, _, _)) if ready + exec(ready) <= first_start => return ready,
        _ => {}
    }
    for pair in slot.windows(2) {
        let (left, right) = (pair[0], pair[1]);
        if ready >= left.1 && ready + exec(ready) <= right.0 {
            return ready;
        } else if ready < left.1 && left.1 + exec(left.1) <= right.0 {
            return left.1;
        }
    }
    let last_end = slot.last().map_or(0.0, |&(_, e, _)| e);
    ready.max(last_end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::background::Trace;
    use crate::simulate::platform::parse_network;

    #[test]
    fn finish_under_steps_through_the_background() {
        // Idle for 10 s, fully busy (half speed) for 10 s, idle again; the trace wraps at 30 s.
        let trace = Trace::new("t".into(), &[(0.0, 0.0), (10.0, 1.0), (20.0, 0.0)]).expect("valid");
        let bg = Background::from_traces(vec![trace], 1, 0);
        assert_eq!(finish_under(&bg, 0, 0.0, 15.0), 20.0);
        assert_eq!(finish_under(&bg, 0, 5.0, 10.0), 20.0);
        assert_eq!(finish_under(&bg, 0, 12.0, 4.0), 20.0);
        assert_eq!(finish_under(&bg, 0, 20.0, 5.0), 25.0);
        // No background: the time alone.
        assert_eq!(finish_under(&Background::none(1), 0, 3.0, 7.0), 10.0);
    }

    #[test]
    fn networks_are_held_to_the_platform_files_bounds() {
        for node in [
            r#"{"name": "n0", "speed": 1e-310}"#,
            r#"{"name": "n0", "speed": 2e6}"#,
            r#"{"name": "n0", "speed": 1.0, "cost_per_hour": 1e308}"#,
            r#"{"name": "n0", "speed": 1.0, "power_watts": 1e308}"#,
        ] {
            let text = format!(r#"{{"nodes": [{node}]}}"#);
            assert!(parse_network(&text).is_err(), "{text}");
        }
        let slow = r#"{"nodes": [{"name": "n0", "speed": 1}], "bandwidth": 1e-310}"#;
        assert!(parse_network(slow).is_err());
        let ok = r#"{"nodes": [{"name": "n0", "speed": 1e-6, "cost_per_hour": 1e6, "power_watts": 1e9}]}"#;
        assert!(parse_network(ok).is_ok());
    }

    #[test]
    fn the_clairvoyant_plan_avoids_the_loaded_node() {
        // Two equal nodes; the first is fully busy. SAGA's rule takes the first on a tie and
        // plans 4 s; told the background, the plan takes the idle node, and on the busy one
        // the task would have taken 8 s.
        let platform = parse_network(
            r#"{"nodes": [{"name": "n0", "speed": 1.0}, {"name": "n1", "speed": 1.0}]}"#,
        )
        .expect("valid");
        let dag = Dag {
            work_s: vec![4.0],
            cores: vec![1.0],
            parents: vec![Vec::new()],
            children: vec![Vec::new()],
            topo: vec![0],
        };
        let busy = Trace::new("busy".into(), &[(0.0, 1.0)]).expect("valid");
        let idle = Trace::new("idle".into(), &[(0.0, 0.0)]).expect("valid");
        let bg = Background::from_traces(vec![busy, idle], 2, 0);
        let blind = plan(&dag, &platform);
        assert_eq!((blind.processor[0], blind.end[0]), (0, 4.0));
        let told = plan_clairvoyant(&dag, &platform, &bg, 100.0);
        assert_eq!((told.processor[0], told.end[0]), (1, 4.0));
        let loaded = Background::from_traces(
            vec![Trace::new("busy".into(), &[(0.0, 1.0)]).expect("valid")],
            2,
            0,
        );
        let both_busy = plan_clairvoyant(&dag, &platform, &loaded, 100.0);
        assert_eq!((both_busy.processor[0], both_busy.end[0]), (0, 8.0));
    }
}
