//! The finish-time rule ([`crate::finish_time`]) written with plain scans over the whole map:
//! every sum is recomputed from the placed tasks, every candidate found by scanning devices.

use std::collections::{BTreeMap, HashMap};

use crate::finish_time::{cost, duration_on, is_active, mean_bandwidth};
use crate::finish_time::{REORDER_WINDOW, SCAN_CLASS_UP_TO};
use crate::hierarchy;
use crate::placement::{same_capability, state_is_sane, Hierarchy, PlacementConfig, Score};
use crate::types::{
    fraction_from_ppm, Alternative, DeviceId, DeviceSpec, Edge, Ppm, TaskKey, TaskSpec, TaskState,
};

#[derive(Clone, Copy, Debug)]
struct Placed {
    state: TaskState,
    spec: TaskSpec,
    variant: u32,
    device: DeviceId,
    seq: u64,
    duration_ms: u64,
    finish: f64,
    /// The available time of its device it was last predicted behind (queued tasks).
    queue_at: f64,
    /// The task its queue runs it ahead of, if any.
    ahead_of: Option<TaskKey>,
}

/// The sequential finish-time map.
#[derive(Debug)]
pub(crate) struct FinishTimeOracle {
    devices: Vec<DeviceSpec>,
    /// Capability class of each device, numbered by first appearance.
    class_of: Vec<usize>,
    classes: usize,
    /// Group of each device: zones when there are two or more, else capability classes.
    group_of: Vec<u32>,
    config: PlacementConfig,
    learn: bool,
    contention: Vec<f64>,
    /// Each device's available time: the predicted drain of its queue, 0 while it has none.
    available: Vec<f64>,
    /// Devices whose queue must be re-predicted before this epoch's placements.
    stale: Vec<bool>,
    edges: BTreeMap<Edge, isize>,
    alternatives: BTreeMap<Alternative, isize>,
    map: BTreeMap<TaskKey, Placed>,
    done: BTreeMap<TaskKey, (DeviceId, f64)>,
    learned: HashMap<(u32, u32), u64>,
    /// Upward rank of every mapped task, recomputed from scratch after each epoch's placement.
    ranks: BTreeMap<TaskKey, f64>,
    next_seq: u64,
    now: f64,
}

#[derive(Clone, Copy)]
struct Evaluation {
    device: DeviceId,
    score: f64,
    finish: f64,
    room: bool,
}

impl FinishTimeOracle {
    pub(crate) fn new(devices: &[DeviceSpec], config: PlacementConfig, learn: bool) -> Self {
        let mut representatives: Vec<DeviceSpec> = Vec::new();
        let class_of = devices
            .iter()
            .map(|spec| {
                match representatives
                    .iter()
                    .position(|r| same_capability(r, spec))
                {
                    Some(class) => class,
                    None => {
                        representatives.push(*spec);
                        representatives.len() - 1
                    }
                }
            })
            .collect::<Vec<usize>>();
        let zoned = devices
            .first()
            .is_some_and(|first| devices.iter().any(|d| d.zone != first.zone));
        let mut labels: Vec<usize> = Vec::new();
        let group_of = (0..devices.len())
            .map(|d| {
                let label = if zoned {
                    devices[d].zone as usize
                } else {
                    class_of[d]
                };
                match labels.iter().position(|l| *l == label) {
                    Some(g) => g as u32,
                    None => {
                        labels.push(label);
                        labels.len() as u32 - 1
                    }
                }
            })
            .collect();
        FinishTimeOracle {
            devices: devices.to_vec(),
            class_of,
            classes: representatives.len(),
            group_of,
            config,
            learn,
            contention: vec![0.0; devices.len()],
            available: vec![0.0; devices.len()],
            stale: vec![false; devices.len()],
            edges: BTreeMap::new(),
            alternatives: BTreeMap::new(),
            map: BTreeMap::new(),
            done: BTreeMap::new(),
            learned: HashMap::new(),
            ranks: BTreeMap::new(),
            next_seq: 0,
            now: 0.0,
        }
    }

    pub(crate) fn map(&self) -> BTreeMap<TaskKey, DeviceId> {
        self.map.iter().map(|(k, p)| (*k, p.device)).collect()
    }

    /// The upward rank of every mapped task, recomputed from scratch.
    #[cfg(test)]
    pub(crate) fn ranks(&self) -> &BTreeMap<TaskKey, f64> {
        &self.ranks
    }

    pub(crate) fn variants(&self) -> BTreeMap<TaskKey, u32> {
        self.map
            .iter()
            .filter(|(_, p)| p.variant != 0)
            .map(|(k, p)| (*k, p.variant))
            .collect()
    }

    pub(crate) fn prewarm(&self) -> Vec<(u32, u32)> {
        (0..self.classes)
            .filter_map(|class| {
                let members: Vec<usize> = (0..self.devices.len())
                    .filter(|d| self.class_of[*d] == class)
                    .collect();
                let capacity: f64 = members
                    .iter()
                    .map(|d| f64::from(self.devices[*d].cores_milli))
                    .sum();
                let demand: f64 = members
                    .iter()
                    .map(|d| {
                        self.utilisation(*d as DeviceId) * f64::from(self.devices[*d].cores_milli)
                    })
                    .sum();
                let amount = cost::prewarm_amount(
                    demand,
                    capacity,
                    self.config.capacity_target,
                    self.devices[members[0]].cores_milli,
                );
                (amount > 0).then_some((class as u32, amount))
            })
            .collect()
    }

    /// One epoch, in the rule's order. It takes the epoch as plain slices rather than the
    /// engine's `EpochChanges`, so that the oracle shares no batching type with what it checks.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply(
        &mut self,
        time: i64,
        contention: &[(DeviceId, Ppm)],
        durations: &[((u32, u32), Option<u64>)],
        edges: &[(Edge, isize)],
        alternatives: &[(Alternative, isize)],
        removed: &[TaskKey],
        upserted: &[(TaskKey, TaskState)],
    ) {
        self.now = time as f64;
        if self.learn {
            for (key, value) in durations {
                match value {
                    Some(ms) => self.learned.insert(*key, *ms),
                    None => self.learned.remove(key),
                };
            }
        }
        let mut freed = Vec::new();
        for task in removed {
            if let Some(placed) = self.map.remove(task) {
                freed.push(placed.device);
                self.stale[placed.device as usize] = true;
                if self.edges.keys().any(|((_, parent), _)| parent == task) {
                    self.done.insert(*task, (placed.device, self.now));
                }
            }
        }
        for (edge, diff) in edges {
            *self.edges.entry(*edge).or_insert(0) += diff;
        }
        self.edges.retain(|_, count| *count != 0);
        for (alternative, diff) in alternatives {
            *self.alternatives.entry(*alternative).or_insert(0) += diff;
        }
        self.alternatives.retain(|_, count| *count > 0);
        let edges = &self.edges;
        self.done
            .retain(|task, _| edges.keys().any(|((_, parent), _)| parent == task));

        let mut to_place = Vec::new();
        for (task, state) in upserted {
            if !state_is_sane(state, self.devices.len()) {
                continue;
            }
            match self.map.remove(task) {
                Some(placed) => {
                    self.stale[placed.device as usize] = true;
                    let device = state.pinned.unwrap_or(placed.device);
                    let (variant, spec) = match self.variant_spec(*task, state, placed.variant) {
                        Some(spec) => (placed.variant, spec),
                        None => (0, state.spec),
                    };
                    let finish = match (state.pinned, placed.state.pinned) {
                        (Some(_), Some(_)) if device == placed.device => placed.finish,
                        (Some(_), _) => self.started_finish(&spec, device),
                        (None, _) => placed.finish,
                    };
                    self.stale[device as usize] = true;
                    self.insert(*task, *state, (variant, spec), device, placed.seq, finish);
                    if state.pinned.is_none() && device == placed.device {
                        if let Some(entry) = self.map.get_mut(task) {
                            entry.ahead_of = placed.ahead_of;
                        }
                    }
                }
                None => match state.pinned {
                    Some(device) => {
                        let seq = self.take_seq();
                        let finish = self.started_finish(&state.spec, device);
                        self.stale[device as usize] = true;
                        self.insert(*task, *state, (0, state.spec), device, seq, finish);
                    }
                    None => to_place.push((*task, *state)),
                },
            }
        }

        let mut rising = Vec::new();
        for &(device, ppm) in contention {
            let value = fraction_from_ppm(ppm);
            if value > self.contention[device as usize] {
                rising.push(device);
            } else if value < self.contention[device as usize] {
                freed.push(device);
            }
            self.contention[device as usize] = value;
            self.stale[device as usize] = true;
        }
        rising.sort_unstable();
        for device in 0..self.devices.len() {
            if self.stale[device] {
                self.repredict(device as DeviceId);
            }
        }

        // Ranks of the map as it stands, then of the new tasks over it.
        let map_ranks = self.rank_table(&self.mapped_specs(), &BTreeMap::new());
        let batch: BTreeMap<TaskKey, TaskSpec> = to_place
            .iter()
            .map(|(task, state)| (*task, state.spec))
            .collect();
        let batch_ranks = self.rank_table(&batch, &map_ranks);
        let ranks: Vec<(f64, u32)> = (0..to_place.len())
            .map(|i| (batch_ranks[&to_place[i].0], self.depth(i, &to_place)))
            .collect();
        let mut order: Vec<usize> = (0..to_place.len()).collect();
        order.sort_by_key(|&i| {
            (
                std::cmp::Reverse(Score(ranks[i].0)),
                ranks[i].1,
                to_place[i].0,
            )
        });
        let groups = if self.config.hierarchy != Hierarchy::Off
            && self.group_count() > 1
            && self.config.hierarchy.applies(to_place.len())
        {
            self.assign_groups(&to_place, &ranks)
        } else {
            vec![None; to_place.len()]
        };
        for i in order {
            let (task, state) = to_place[i];
            if let Some((best, choice)) = self.best_choice(task, &state, None, groups[i]) {
                let seq = self.take_seq();
                self.insert(task, state, choice, best.device, seq, best.finish);
            }
        }

        self.ranks = self.rank_table(&self.mapped_specs(), &BTreeMap::new());
        for device in rising {
            let budget = self.movable_on(device).len();
            for _ in 0..budget {
                if !self.try_move_latest(device) {
                    break;
                }
            }
        }
        freed.sort_unstable();
        freed.dedup();
        for device in freed {
            while self.try_pull(device) {}
        }
    }

    fn group_count(&self) -> usize {
        self.group_of
            .iter()
            .map(|g| *g as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// The hierarchy's coarsening and cluster-to-group mapping ([`crate::hierarchy`]), by plain
    /// scans over the batch and the map.
    fn assign_groups(
        &self,
        to_place: &[(TaskKey, TaskState)],
        ranks: &[(f64, u32)],
    ) -> Vec<Option<u32>> {
        let n = to_place.len();
        let groups = self.group_count();
        let position = |task: &TaskKey| to_place.iter().position(|(k, _)| k == task);
        let cap = hierarchy::cluster_cap(n, groups);
        let mut visit: Vec<usize> = (0..n).collect();
        visit.sort_by_key(|&i| (ranks[i].1, to_place[i].0));
        let mut cluster: Vec<Option<usize>> = vec![None; n];
        let mut clusters = 0;
        for i in visit {
            let mut anchor: Option<(u64, TaskKey, usize)> = None;
            for (parent, bytes) in self.parents(to_place[i].0) {
                if let Some(p) = position(&parent) {
                    let better =
                        anchor.is_none_or(|(b, k, _)| bytes > b || (bytes == b && parent < k));
                    if better {
                        anchor = Some((bytes, parent, p));
                    }
                }
            }
            let joined = anchor
                .and_then(|(_, _, p)| cluster[p])
                .filter(|c| cluster.iter().filter(|x| **x == Some(*c)).count() < cap);
            cluster[i] = Some(joined.unwrap_or_else(|| {
                clusters += 1;
                clusters - 1
            }));
        }
        let cluster: Vec<usize> = cluster.into_iter().map(|c| c.unwrap_or(0)).collect();
        let mut queued = vec![0.0f64; groups];
        let mut capacity = vec![0.0f64; groups];
        for d in 0..self.devices.len() {
            let (q, c) = hierarchy::device_terms(
                &self.devices[d],
                self.contention[d],
                self.work(d as DeviceId, None).cores,
            );
            queued[self.group_of[d] as usize] += q;
            capacity[self.group_of[d] as usize] += c;
        }
        let mut order: Vec<usize> = (0..clusters).collect();
        let rank_of = |c: usize| {
            (0..n)
                .filter(|i| cluster[*i] == c)
                .map(|i| ranks[i].0)
                .fold(f64::NEG_INFINITY, f64::max)
        };
        order.sort_by_key(|&c| (std::cmp::Reverse(Score(rank_of(c))), c));
        let mut assigned = vec![0u128; groups];
        let mut group_of_cluster: Vec<Option<u32>> = vec![None; clusters];
        for c in order {
            let members: Vec<usize> = (0..n).filter(|i| cluster[*i] == c).collect();
            let work = members.iter().fold(0u128, |w, &i| {
                w.saturating_add(hierarchy::task_work(&to_place[i].1.spec))
            });
            // Bytes on edges to tasks outside the cluster whose group is known, by that group.
            let mut crossing: Vec<(u32, u64)> = Vec::new();
            for &i in &members {
                let task = to_place[i].0;
                for (parent, bytes) in self.parents(task) {
                    let group = match position(&parent) {
                        Some(p) if cluster[p] == c => continue,
                        Some(p) => group_of_cluster[cluster[p]],
                        None => self
                            .output_of(&parent)
                            .map(|(device, _)| self.group_of[device as usize]),
                    };
                    crossing.extend(group.map(|g| (g, bytes)));
                }
                for (j, (other, _)) in to_place.iter().enumerate() {
                    if cluster[j] == c {
                        continue;
                    }
                    for (parent, bytes) in self.parents(*other) {
                        if parent == task {
                            crossing.extend(group_of_cluster[cluster[j]].map(|g| (g, bytes)));
                        }
                    }
                }
            }
            let mut best: Option<(Score, u32)> = None;
            for g in 0..groups as u32 {
                let hosts = members.iter().all(|&i| {
                    (0..self.devices.len()).any(|d| {
                        self.group_of[d] == g && self.devices[d].can_host(&to_place[i].1.spec)
                    })
                });
                if !hosts {
                    continue;
                }
                let elsewhere: u128 = crossing
                    .iter()
                    .filter(|(at, _)| *at != g)
                    .map(|(_, bytes)| u128::from(*bytes))
                    .sum();
                let score = hierarchy::group_score(
                    queued[g as usize],
                    assigned[g as usize],
                    work,
                    capacity[g as usize],
                    elsewhere,
                    mean_bandwidth(&self.devices),
                );
                if best.is_none_or(|b| (Score(score), g) < b) {
                    best = Some((Score(score), g));
                }
            }
            if let Some((_, g)) = best {
                assigned[g as usize] = assigned[g as usize].saturating_add(work);
                group_of_cluster[c] = Some(g);
            }
        }
        cluster.iter().map(|&c| group_of_cluster[c]).collect()
    }

    fn try_pull(&mut self, device: DeviceId) -> bool {
        let worst = (0..self.devices.len() as DeviceId)
            .filter(|d| *d != device && !self.movable_on(*d).is_empty())
            .max_by_key(|d| self.order(*d));
        worst.is_some_and(|worst| self.move_latest(worst, Some(device)))
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn insert(
        &mut self,
        task: TaskKey,
        state: TaskState,
        (variant, spec): (u32, TaskSpec),
        device: DeviceId,
        seq: u64,
        finish: f64,
    ) {
        let duration_ms = self.duration(&spec, device);
        let d = device as usize;
        let at = self.queue_start(device, self.available[d], None);
        let queue_at = if state.pinned.is_none() && !self.stale[d] {
            let run = cost::run_ms(duration_ms, self.contention[d]);
            let share = cost::share(&self.devices[d], &spec);
            self.available[d] = cost::advance(at, finish, run, share);
            at
        } else {
            self.stale[d] = true;
            self.now
        };
        self.map.insert(
            task,
            Placed {
                state,
                spec,
                variant,
                device,
                seq,
                duration_ms,
                finish,
                queue_at,
                ahead_of: None,
            },
        );
    }

    /// The device's queue re-predicted from now: running tasks by sequence hold it for their
    /// remaining time at their share, then the others in sequence order; when the device's
    /// contention is severe, in the first few places of the queue, a head whose inputs are not ready yet lets the first of the next
    /// few tasks (the first that is not a child of a task still ahead of it) go first if that finishes it
    /// sooner than right behind the head, and the head no later.
    fn repredict(&mut self, device: DeviceId) {
        let d = device as usize;
        let mut queue: Vec<(bool, u64, TaskKey)> = self
            .map
            .iter()
            .filter(|(_, p)| p.device == device)
            .map(|(k, p)| (p.state.pinned.is_none(), p.seq, *k))
            .collect();
        queue.sort_unstable();
        let running: Vec<(f64, f64)> = queue
            .iter()
            .filter(|(queued, _, _)| !queued)
            .map(|(_, _, k)| {
                let p = &self.map[k];
                (p.finish, cost::share(&self.devices[d], &p.spec))
            })
            .collect();
        let mut at = cost::running_until(self.now, running);
        let severe = self.contention[d] >= self.config.reorder_contention;
        let mut left: Vec<TaskKey> = queue
            .iter()
            .filter(|(queued, _, _)| *queued)
            .map(|(_, _, k)| *k)
            .collect();
        let waiting = left.len();
        while !left.is_empty() {
            let head = left[0];
            let (head_ready, head_run, head_share) = self.queued_figures(head, device);
            let head_finish = cost::finish_ms(head_ready, at, head_run, head_share);
            let mut chosen = 0;
            let mut finish = head_finish;
            let place = waiting - left.len();
            if severe && place < REORDER_WINDOW && head_ready > at {
                let after_head = cost::advance(at, head_finish, head_run, head_share);
                for j in 1..left.len().min(1 + REORDER_WINDOW) {
                    let task = left[j];
                    if self
                        .parents(task)
                        .iter()
                        .any(|(parent, _)| left[..j].contains(parent))
                    {
                        continue;
                    }
                    let (ready, run, share) = self.queued_figures(task, device);
                    let ahead = cost::finish_ms(ready, at, run, share);
                    let behind = cost::finish_ms(ready, after_head, run, share);
                    let freed = cost::advance(at, ahead, run, share);
                    if ahead < behind
                        && cost::finish_ms(head_ready, freed, head_run, head_share) <= head_finish
                    {
                        chosen = j;
                        finish = ahead;
                        break;
                    }
                }
            }
            let task = left.remove(chosen);
            let (_, run, share) = self.queued_figures(task, device);
            let entry = self.map.get_mut(&task).expect("queued task is mapped");
            entry.finish = finish;
            entry.queue_at = at;
            entry.ahead_of = (chosen > 0).then_some(head);
            at = cost::advance(at, finish, run, share);
        }
        self.available[d] = if queue.is_empty() { 0.0 } else { at };
        self.stale[d] = false;
    }

    /// A queued task's ready time, run and share on its device, as predicted now.
    fn queued_figures(&self, task: TaskKey, device: DeviceId) -> (f64, f64, f64) {
        let placed = &self.map[&task];
        let (ready, _) = self.ready_on(task, device);
        let run = cost::run_ms(placed.duration_ms, self.contention[device as usize]);
        (
            ready,
            run,
            cost::share(&self.devices[device as usize], &placed.spec),
        )
    }

    /// Every task its queue runs ahead of its placement order: `(device, the task it is ahead of)`.
    pub(crate) fn reorders(&self) -> BTreeMap<TaskKey, (DeviceId, TaskKey)> {
        self.map
            .iter()
            .filter_map(|(k, p)| p.ahead_of.map(|head| (*k, (p.device, head))))
            .collect()
    }

    fn learned(&self) -> Option<&HashMap<(u32, u32), u64>> {
        self.learn.then_some(&self.learned)
    }

    fn duration(&self, spec: &TaskSpec, device: DeviceId) -> u64 {
        let class = self.class_of[device as usize];
        duration_on(spec, &self.devices[device as usize], class, self.learned())
    }

    fn started_finish(&self, spec: &TaskSpec, device: DeviceId) -> f64 {
        self.now
            + cost::run_ms(
                self.duration(spec, device),
                self.contention[device as usize],
            )
    }

    fn work(&self, device: DeviceId, without: Option<TaskKey>) -> cost::Work {
        self.map
            .iter()
            .filter(|(k, p)| p.device == device && Some(**k) != without)
            .fold(cost::Work::default(), |w, (_, p)| {
                w.plus(cost::Work::of(&p.spec, p.duration_ms))
            })
    }

    fn utilisation(&self, device: DeviceId) -> f64 {
        let (cores, memory) = self
            .map
            .values()
            .filter(|p| p.device == device && is_active(&p.state))
            .fold((0u64, 0u64), |(c, m), p| {
                (
                    c + u64::from(p.spec.cores_milli),
                    m.saturating_add(p.spec.memory_bytes),
                )
            });
        cost::utilisation(
            &self.devices[device as usize],
            self.contention[device as usize],
            cores,
            memory,
        )
    }

    fn full(&self, device: DeviceId) -> bool {
        self.utilisation(device) >= self.config.capacity_target
    }

    fn backlog(&self, device: DeviceId) -> f64 {
        cost::backlog_ms(
            &self.devices[device as usize],
            self.contention[device as usize],
            self.work(device, None),
        )
    }

    fn order(&self, device: DeviceId) -> (bool, Score, DeviceId) {
        (self.full(device), Score(self.backlog(device)), device)
    }

    fn parents(&self, task: TaskKey) -> Vec<(TaskKey, u64)> {
        self.edges
            .keys()
            .filter(|((child, _), _)| *child == task)
            .map(|((_, parent), bytes)| (*parent, *bytes))
            .collect()
    }

    fn output_of(&self, task: &TaskKey) -> Option<(DeviceId, f64)> {
        match self.map.get(task) {
            Some(p) => Some((p.device, p.finish)),
            None => self.done.get(task).copied(),
        }
    }

    /// The earliest start behind `available`: not before now plus the queued (not running)
    /// tasks' work at full use, `without` one of them.
    fn queue_start(&self, device: DeviceId, available: f64, without: Option<TaskKey>) -> f64 {
        let queued = self
            .map
            .iter()
            .filter(|(k, p)| p.device == device && p.state.pinned.is_none() && Some(**k) != without)
            .fold(cost::Work::default(), |w, (_, p)| {
                w.plus(cost::Work::of(&p.spec, p.duration_ms))
            });
        let d = device as usize;
        available.max(self.now + cost::backlog_ms(&self.devices[d], self.contention[d], queued))
    }

    /// When the task's inputs are all on `device` (never before now) and the bytes moved.
    fn ready_on(&self, task: TaskKey, device: DeviceId) -> (f64, u64) {
        let device_spec = &self.devices[device as usize];
        let mut ready = self.now;
        let mut remote = 0u64;
        for (parent, bytes) in self.parents(task) {
            let Some((at_device, mut at)) = self.output_of(&parent) else {
                continue;
            };
            if at_device != device {
                remote = remote.saturating_add(bytes);
                at += cost::transfer_ms(bytes, &self.devices[at_device as usize], device_spec);
            }
            ready = ready.max(at);
        }
        (ready, remote)
    }

    /// The finish and score of the task on `device`, starting from `start`.
    fn evaluate(&self, task: TaskKey, spec: &TaskSpec, device: DeviceId, start: f64) -> Evaluation {
        let device_spec = &self.devices[device as usize];
        let (ready, remote) = self.ready_on(task, device);
        let contention = self.contention[device as usize];
        let run = cost::run_ms(self.duration(spec, device), contention);
        let share = cost::share(device_spec, spec);
        let finish = cost::finish_ms(ready, start, run, share);
        let score = cost::score(
            &self.config.weights,
            device_spec,
            self.now,
            finish,
            run,
            share,
            remote,
        );
        Evaluation {
            device,
            score,
            finish,
            room: !self.full(device),
        }
    }

    fn best_candidate(
        &self,
        task: TaskKey,
        spec: &TaskSpec,
        except: Option<DeviceId>,
        group: Option<u32>,
    ) -> Option<Evaluation> {
        let in_group = |d: DeviceId| group.is_none_or(|g| self.group_of[d as usize] == g);
        let mut candidates: Vec<DeviceId> = Vec::new();
        for class in 0..self.classes {
            let all: Vec<DeviceId> = (0..self.devices.len() as DeviceId)
                .filter(|d| self.class_of[*d as usize] == class && in_group(*d))
                .collect();
            let members: Vec<DeviceId> =
                all.iter().copied().filter(|d| Some(*d) != except).collect();
            if members.is_empty() || !self.devices[members[0] as usize].can_host(spec) {
                continue;
            }
            if all.len() <= SCAN_CLASS_UP_TO {
                candidates.extend(members);
                continue;
            }
            candidates.extend(
                members
                    .iter()
                    .min_by_key(|d| (self.full(**d), Score(self.available[**d as usize]), **d)),
            );
            candidates.extend(
                members
                    .iter()
                    .min_by_key(|d| (self.full(**d), Score(self.contention[**d as usize]), **d)),
            );
        }
        for (parent, _) in self.parents(task) {
            if let Some((device, _)) = self.output_of(&parent) {
                if Some(device) != except
                    && in_group(device)
                    && self.devices[device as usize].can_host(spec)
                {
                    candidates.push(device);
                }
            }
        }
        candidates
            .into_iter()
            .map(|d| {
                let start = self.queue_start(d, self.available[d as usize], None);
                self.evaluate(task, spec, d, start)
            })
            .min_by_key(|e| (!e.room, Score(e.score), e.device))
    }

    /// The declared variant's best candidate, unless an alternative's beats it by having room
    /// where it has none or by more than the margin (alternatives compared among themselves by
    /// room, score and variant).
    fn best_choice(
        &self,
        task: TaskKey,
        state: &TaskState,
        except: Option<DeviceId>,
        group: Option<u32>,
    ) -> Option<(Evaluation, (u32, TaskSpec))> {
        let declared = self.best_candidate(task, &state.spec, except, group);
        let alternative = self
            .alternatives
            .keys()
            .filter(|(t, _)| *t == task)
            .filter_map(|(_, (variant, spec))| {
                self.best_candidate(task, spec, except, group)
                    .map(|e| (e, (*variant, *spec)))
            })
            .min_by_key(|(e, (variant, _))| (!e.room, Score(e.score), *variant));
        match (declared, alternative) {
            (Some(d), Some(a)) => {
                let replace = match (d.room, a.0.room) {
                    (false, true) => true,
                    (true, false) => false,
                    _ => a.0.score * (1.0 + self.config.resculpt_margin) < d.score,
                };
                Some(if replace { a } else { (d, (0, state.spec)) })
            }
            (None, Some(a)) => Some(a),
            (Some(d), None) => Some((d, (0, state.spec))),
            (None, None) => None,
        }
    }

    fn variant_spec(&self, task: TaskKey, state: &TaskState, variant: u32) -> Option<TaskSpec> {
        if variant == 0 {
            return Some(state.spec);
        }
        self.alternatives
            .keys()
            .find(|(t, (v, _))| *t == task && *v == variant)
            .map(|(_, (_, spec))| *spec)
    }

    fn movable_on(&self, device: DeviceId) -> Vec<(u64, TaskKey)> {
        let mut tasks: Vec<(u64, TaskKey)> = self
            .map
            .iter()
            .filter(|(_, p)| p.device == device && p.state.pinned.is_none())
            .map(|(k, p)| (p.seq, *k))
            .collect();
        tasks.sort_unstable();
        tasks
    }

    fn try_move_latest(&mut self, device: DeviceId) -> bool {
        self.move_latest(device, None)
    }

    /// `from`'s latest movable task to its best candidate elsewhere (`only_to`, when given) if
    /// worth it and allowed.
    fn move_latest(&mut self, from: DeviceId, only_to: Option<DeviceId>) -> bool {
        // The most recently placed, shedding or pulled (rank-ordered rebalancing was measured
        // worse in the closed loop: see the engine's `move_latest`).
        let movable = self.movable_on(from);
        let chosen = movable.iter().max_by_key(|(seq, _)| *seq);
        let Some(&(_, task)) = chosen else {
            return false;
        };
        let placed = self.map[&task];
        // The last of its device's queue: staying, it is queued where it is.
        let start = self.queue_start(from, placed.queue_at, Some(task));
        let stay = self.evaluate(task, &placed.spec, from, start);
        let Some((target, choice)) = self.best_choice(task, &placed.state, Some(from), None) else {
            return false;
        };
        if only_to.is_some_and(|to| to != target.device)
            || !cost::worth_moving(stay.score, target.score, self.config.hysteresis)
            || !self.may_move(task, from, &target)
        {
            return false;
        }
        self.map.remove(&task);
        let others = self.map.values().any(|p| p.device == from);
        self.available[from as usize] = if others { placed.queue_at } else { 0.0 };
        if placed.ahead_of.is_some() {
            self.repredict(from);
        }
        let seq = self.take_seq();
        self.insert(
            task,
            placed.state,
            choice,
            target.device,
            seq,
            target.finish,
        );
        true
    }

    /// Onto a device without room only while the one left stays full without the task.
    fn may_move(&self, task: TaskKey, from: DeviceId, target: &Evaluation) -> bool {
        if target.room {
            return true;
        }
        let (cores, memory) = self
            .map
            .iter()
            .filter(|(k, p)| p.device == from && **k != task && is_active(&p.state))
            .fold((0u64, 0u64), |(c, m), (_, p)| {
                (
                    c + u64::from(p.spec.cores_milli),
                    m.saturating_add(p.spec.memory_bytes),
                )
            });
        cost::utilisation(
            &self.devices[from as usize],
            self.contention[from as usize],
            cores,
            memory,
        ) >= self.config.capacity_target
    }

    fn mean_duration(&self, spec: &TaskSpec) -> f64 {
        let mut total = 0.0;
        for class in 0..self.classes {
            let device = self.class_of.iter().position(|c| *c == class).unwrap_or(0);
            total += duration_on(spec, &self.devices[device], class, self.learned()) as f64;
        }
        total / self.classes.max(1) as f64
    }

    fn mapped_specs(&self) -> BTreeMap<TaskKey, TaskSpec> {
        self.map
            .iter()
            .map(|(task, placed)| (*task, placed.state.spec))
            .collect()
    }

    /// Upward ranks of the tasks of `specs` over the edges among them, a child outside them
    /// counting with its rank in `fixed` (if there): memoised plain recursion.
    fn rank_table(
        &self,
        specs: &BTreeMap<TaskKey, TaskSpec>,
        fixed: &BTreeMap<TaskKey, f64>,
    ) -> BTreeMap<TaskKey, f64> {
        let mut memo = BTreeMap::new();
        for task in specs.keys() {
            self.rank_memo(*task, specs, fixed, &mut memo);
        }
        memo
    }

    fn rank_memo(
        &self,
        task: TaskKey,
        specs: &BTreeMap<TaskKey, TaskSpec>,
        fixed: &BTreeMap<TaskKey, f64>,
        memo: &mut BTreeMap<TaskKey, f64>,
    ) -> f64 {
        if let Some(rank) = memo.get(&task) {
            return *rank;
        }
        let bandwidth = mean_bandwidth(&self.devices);
        let children: Vec<(TaskKey, u64)> = self
            .edges
            .keys()
            .filter(|((_, parent), _)| *parent == task)
            .map(|((child, _), bytes)| (*child, *bytes))
            .collect();
        let mut below = 0.0f64;
        for (child, bytes) in children {
            let rank = if specs.contains_key(&child) {
                Some(self.rank_memo(child, specs, fixed, memo))
            } else {
                fixed.get(&child).copied()
            };
            if let Some(rank) = rank {
                below = below.max(cost::mean_transfer_ms(bytes, bandwidth) + rank);
            }
        }
        let rank = self.mean_duration(&specs[&task]) + below;
        memo.insert(task, rank);
        rank
    }

    fn depth(&self, i: usize, tasks: &[(TaskKey, TaskState)]) -> u32 {
        self.parents(tasks[i].0)
            .into_iter()
            .filter_map(|(parent, _)| tasks.iter().position(|(k, _)| *k == parent))
            .map(|p| self.depth(p, tasks) + 1)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finish_time::FinishTimePlacer;

    /// The oracle's side of one epoch the engine takes whole.
    fn apply_epoch(oracle: &mut FinishTimeOracle, changes: &EpochChanges) {
        oracle.apply(
            changes.time,
            &changes.contention,
            &changes.durations,
            &changes.edges,
            &changes.alternatives,
            &changes.removed,
            &changes.upserted,
        );
    }
    use crate::placement::EpochChanges;

    /// The engine's map as (task, device), sorted, as the oracle's `map()` gives it.
    fn sorted_map(engine: &FinishTimePlacer) -> Vec<(TaskKey, DeviceId)> {
        let mut map: Vec<(TaskKey, DeviceId)> = engine
            .placements()
            .into_iter()
            .map(|(task, device, _)| (task, device))
            .collect();
        map.sort_unstable();
        map
    }

    /// A small LCG, so the test needs no dependency.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n.max(1)
        }
    }

    fn devices(zoned: bool) -> Vec<DeviceSpec> {
        (0..12u32)
            .map(|i| DeviceSpec {
                cores_milli: [4_000, 8_000, 16_000][i as usize % 3],
                memory_bytes: 64 << 30,
                speed: [1.0, 1.5, 2.0][i as usize % 3],
                network_bytes_per_s: 1e8,
                zone: if zoned { i / 6 } else { 0 },
                ..DeviceSpec::default()
            })
            .collect()
    }

    /// A batch large enough for clusters of several tasks (cap 3 or 4 here), then contention
    /// changes and a second batch: the incremental engine and the plain scans agree on every
    /// map, and coarsening did put tasks together along heavy edges.
    #[test]
    fn hierarchical_batches_match_the_engine() {
        let mut differs_from_flat = 0;
        let mut reordered = 0;
        for (seed, zoned) in [(1u64, true), (2, false), (3, true)] {
            let mut rng = Lcg(seed);
            let devices = devices(zoned);
            let config = PlacementConfig {
                hierarchy: Hierarchy::On,
                capacity_target: [1.0, 0.8][seed as usize % 2],
                ..PlacementConfig::default()
            };
            let mut engine = FinishTimePlacer::new(&devices, config, true);
            let flat_config = PlacementConfig {
                hierarchy: Hierarchy::Off,
                ..config
            };
            let mut flat = FinishTimePlacer::new(&devices, flat_config, true);
            let mut oracle = FinishTimeOracle::new(&devices, config, true);
            let mut next = 0u32;
            for epoch in 0..6i64 {
                let mut changes = EpochChanges {
                    time: 1_000 * (epoch + 1),
                    ..EpochChanges::default()
                };
                if epoch % 3 == 0 {
                    let size = 300 + rng.below(100) as u32;
                    for i in next..next + size {
                        let key = TaskKey {
                            workflow: 0,
                            task: i,
                        };
                        let spec = TaskSpec {
                            cores_milli: 500 * (1 + rng.below(6) as u32),
                            memory_bytes: rng.below(4) << 30,
                            duration_ms: 1_000 * (1 + rng.below(300)),
                            kind: i % 4,
                        };
                        let state = TaskState {
                            spec,
                            pinned: None,
                            ready: i == next,
                        };
                        changes.upserted.push((key, state));
                        for _ in 0..rng.below(3) {
                            if i > 0 {
                                let parent = TaskKey {
                                    workflow: 0,
                                    task: i - 1 - rng.below(u64::from(i.min(20))) as u32,
                                };
                                let edge = ((key, parent), rng.below(2 << 30));
                                if !changes.edges.iter().any(|(e, _)| e.0 == edge.0) {
                                    changes.edges.push((edge, 1));
                                }
                            }
                        }
                    }
                    next += size;
                } else {
                    for _ in 0..3 {
                        let device = rng.below(devices.len() as u64) as DeviceId;
                        changes.contention.push((device, rng.below(900_000) as i64));
                    }
                    changes.contention.sort_unstable();
                    changes.contention.dedup_by_key(|(d, _)| *d);
                }
                apply_epoch(&mut oracle, &changes);
                flat.apply(changes.clone());
                engine.apply(changes);
                let got = sorted_map(&engine);
                let want: Vec<(TaskKey, DeviceId)> = oracle.map().into_iter().collect();
                assert_eq!(got, want, "seed {seed}, epoch {epoch}");
                let reorders: BTreeMap<TaskKey, (DeviceId, TaskKey)> = engine
                    .reorders()
                    .into_iter()
                    .map(|r| (r.task, (r.device, r.ahead_of)))
                    .collect();
                assert_eq!(reorders, oracle.reorders(), "seed {seed}, epoch {epoch}");
                reordered += reorders.len();
                let flat_map = sorted_map(&flat);
                differs_from_flat += usize::from(flat_map != got);
            }
            assert_eq!(engine.len(), next as usize);
        }
        assert!(differs_from_flat > 0, "the hierarchy never changed a map");
        assert!(
            reordered > 0,
            "no queue ever ran a task ahead of its placement order"
        );
    }

    /// Ranks kept incrementally through arrivals, learned durations, completions, new children
    /// of mapped tasks and contention changes equal the oracle's from-scratch ranks, and so do
    /// the maps; a new duration for one kind recomputes only that kind's chain.
    #[test]
    fn incremental_ranks_equal_recomputed_ones() {
        let devices = devices(true);
        let config = PlacementConfig::default();
        let mut engine = FinishTimePlacer::new(&devices, config, true);
        let mut oracle = FinishTimeOracle::new(&devices, config, true);
        let key = |task: u32| TaskKey { workflow: 0, task };
        let state = |duration_s: u64, kind: u32, ready: bool| TaskState {
            spec: TaskSpec {
                cores_milli: 1_000,
                memory_bytes: 1 << 30,
                duration_ms: duration_s * 1_000,
                kind,
            },
            pinned: None,
            ready,
        };
        // A chain of 100 tasks of kind 0 (0..100) and one of 5 of kind 1 (100..105), each
        // task reading 100 MB from the one before.
        let mut first = EpochChanges {
            time: 1_000,
            ..EpochChanges::default()
        };
        for i in 0..105u32 {
            let kind = u32::from(i >= 100);
            let root = i == 0 || i == 100;
            first
                .upserted
                .push((key(i), state(10 + u64::from(i % 7), kind, root)));
            if !root {
                first.edges.push((((key(i), key(i - 1)), 100_000_000), 1));
            }
        }
        let epochs = vec![
            first,
            // A learned duration for kind 1 on class 0.
            EpochChanges {
                time: 2_000,
                durations: vec![((1, 0), Some(400_000))],
                ..EpochChanges::default()
            },
            // The head of each chain completes.
            EpochChanges {
                time: 3_000,
                removed: vec![key(0), key(100)],
                contention: vec![(0, 700_000), (3, 200_000)],
                ..EpochChanges::default()
            },
            // A long new child under the end of the short chain lifts every rank above it.
            EpochChanges {
                time: 4_000,
                upserted: vec![(key(200), state(900, 1, false))],
                edges: vec![(((key(200), key(104)), 1_000_000_000), 1)],
                contention: vec![(0, 0), (5, 900_000)],
                ..EpochChanges::default()
            },
        ];
        for (epoch, changes) in epochs.into_iter().enumerate() {
            let before = engine.rank_updates();
            apply_epoch(&mut oracle, &changes);
            engine.apply(changes);
            let updates = engine.rank_updates() - before;
            for (task, rank) in oracle.ranks() {
                assert_eq!(
                    engine.rank_of(task).map(f64::to_bits),
                    Some(rank.to_bits()),
                    "epoch {epoch}, {task:?}"
                );
            }
            let got = sorted_map(&engine);
            let want: Vec<(TaskKey, DeviceId)> = oracle.map().into_iter().collect();
            assert_eq!(got, want, "epoch {epoch}");
            if epoch == 1 {
                // The short chain's 5 tasks, each once (deepest first): never the long chain.
                assert_eq!(updates, 5, "rank updates");
            }
            if epoch == 3 {
                // The new task's parent when the edge came, then its four mapped ancestors
                // (the parent and up) once the task was placed: not the long chain.
                assert_eq!(updates, 5, "rank updates");
            }
        }
        assert!(engine.rank_of(&key(101)).is_some_and(|r| r > 900_000.0));
    }
}
