//! Upward ranks (HEFT's `rank_u`), kept for every mapped task and maintained incrementally.
//!
//! `rank(t) = mean(t) + max over mapped children c of (transfer(t → c) + rank(c))`, and just
//! `mean(t)` without mapped children, where `mean(t)` is `t`'s declared duration averaged over
//! the capability classes (the duration model's per-kind estimate when the policy learns) and
//! `transfer` moves the edge's bytes at the platform's mean bandwidth. A rank is the length of
//! the most expensive chain from the task to an exit: the larger, the more critical the task.
//!
//! Ranks use the *declared* requirements, not the variant the map runs: they then depend only
//! on the live DAG and the duration model, never on the map's own decisions, so a move never
//! changes a rank and the fixed point below is unique.
//!
//! # Maintenance
//! A rank can change only when its task's own estimate changes (a new per-kind duration, a new
//! declared spec) or its set of mapped children or their ranks change (edges, arrivals,
//! completions). Those tasks are *seeds*; each is recomputed from its children, and only when
//! its value changed are its parents queued in turn, so propagation stops where a rank did not
//! change. Every task whose equation may have been broken is queued, so when the queue empties
//! every rank equals the fixed point, which [`crate::oracle`] recomputes from scratch.
//!
//! # Use
//! New tasks (and, for a huge batch, its clusters) are placed in decreasing rank order.
//! Rebalancing does not use them: shedding the least critical task and pulling the most
//! critical one were built and measured, and made closed-loop makespans worse than moving the
//! most recently placed task (BENCHMARKS.md, "Rank-ordered rebalancing, measured and reverted").

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{cost, FinishTimePlacer};
use crate::placement::{Score, TaskMap};
use crate::types::{TaskKey, TaskSpec, TaskState};

/// Ranks recomputed (whether or not they changed) by every finish-time map in this process, for
/// `augur bench`'s count per change. A counter only: nothing reads it to decide anything.
static RANK_UPDATES: AtomicU64 = AtomicU64::new(0);

/// How many ranks every finish-time map in this process has recomputed so far.
pub fn rank_updates_total() -> u64 {
    RANK_UPDATES.load(Ordering::Relaxed)
}

/// Upward rank of each new task (its new children's ranks computed here, its mapped children's
/// taken from `mapped_rank`), its depth (the longest chain of new ancestors above it) and its
/// level (the same, counting from `base_level`, one more than its mapped parents' deepest). A
/// cycle (which the driver never sends) leaves its tasks at their own mean duration.
pub(crate) fn upward_ranks<'a, F, C, R, B>(
    tasks: &[(TaskKey, TaskState)],
    children_of: C,
    mapped_rank: R,
    base_level: B,
    mean_duration: F,
    mean_bandwidth: f64,
) -> Vec<(f64, u32, u32)>
where
    F: Fn(&TaskSpec) -> f64,
    C: Fn(&TaskKey) -> &'a [(TaskKey, u64)],
    R: Fn(&TaskKey) -> Option<f64>,
    B: Fn(&TaskKey) -> u32,
{
    let index: TaskMap<usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, (task, _))| (*task, i))
        .collect();
    // Edges within the set, as (child index, bytes) per parent index; the best chain through a
    // mapped child, per task.
    let mut children: Vec<Vec<(usize, u64)>> = vec![Vec::new(); tasks.len()];
    let mut outside = vec![0.0f64; tasks.len()];
    let mut parent_count = vec![0u32; tasks.len()];
    for (parent, (task, _)) in tasks.iter().enumerate() {
        for &(child, bytes) in children_of(task) {
            match index.get(&child) {
                Some(&c) => {
                    children[parent].push((c, bytes));
                    parent_count[c] += 1;
                }
                None => {
                    if let Some(rank) = mapped_rank(&child) {
                        let chain = cost::mean_transfer_ms(bytes, mean_bandwidth) + rank;
                        outside[parent] = outside[parent].max(chain);
                    }
                }
            }
        }
    }
    let mut ranks: Vec<f64> = tasks.iter().map(|(_, s)| mean_duration(&s.spec)).collect();
    let mut depth = vec![0u32; tasks.len()];
    let mut level: Vec<u32> = tasks.iter().map(|(task, _)| base_level(task)).collect();
    // Kahn's order from the roots down gives depths; its reverse gives ranks.
    let mut order = Vec::with_capacity(tasks.len());
    let mut waiting = parent_count.clone();
    let mut stack: Vec<usize> = (0..tasks.len()).filter(|&i| waiting[i] == 0).collect();
    while let Some(node) = stack.pop() {
        order.push(node);
        for &(child, _) in &children[node] {
            depth[child] = depth[child].max(depth[node] + 1);
            level[child] = level[child].max(level[node].saturating_add(1));
            waiting[child] -= 1;
            if waiting[child] == 0 {
                stack.push(child);
            }
        }
    }
    for &node in order.iter().rev() {
        let below = children[node]
            .iter()
            .filter(|(child, _)| waiting[*child] == 0)
            .map(|&(child, bytes)| cost::mean_transfer_ms(bytes, mean_bandwidth) + ranks[child])
            .fold(outside[node], f64::max);
        ranks[node] += below;
    }
    ranks
        .into_iter()
        .zip(depth)
        .zip(level)
        .map(|((rank, depth), level)| (rank, depth, level))
        .collect()
}

/// One more than the deepest level among a task's mapped parents (0 without any): with the
/// batch's own edges, a topological numbering, so propagating deepest first settles each rank
/// once (any order gives the same ranks; this one only saves recomputations).
pub(crate) fn level_below(
    parents: Option<&Vec<(TaskKey, u64)>>,
    level_of: impl Fn(&TaskKey) -> Option<u32>,
) -> u32 {
    parents.map_or(0, |parents| {
        parents
            .iter()
            .filter_map(|(parent, _)| level_of(parent).map(|l| l.saturating_add(1)))
            .max()
            .unwrap_or(0)
    })
}

impl FinishTimePlacer {
    /// A mapped task's rank from its mapped children's current ranks.
    fn rank_from_children(&self, task: &TaskKey, spec: &TaskSpec) -> f64 {
        let below = self.children.get(task).map_or(0.0, |children| {
            children
                .iter()
                .filter_map(|(child, bytes)| {
                    self.tasks.get(child).map(|placed| {
                        cost::mean_transfer_ms(*bytes, self.mean_bandwidth) + placed.rank
                    })
                })
                .fold(0.0, f64::max)
        });
        self.mean_duration(spec) + below
    }

    /// Recomputes the seeds' ranks and, where one changed, its mapped parents', until nothing
    /// changes (see the module docs); returns how many ranks were recomputed.
    pub(super) fn propagate_ranks(&mut self, seeds: Vec<TaskKey>) -> u64 {
        // Deepest first: a task is recomputed after the children that changed below it.
        let mut queued: TaskMap<()> = TaskMap::default();
        let mut queue: BinaryHeap<(u32, TaskKey)> = BinaryHeap::with_capacity(seeds.len());
        for task in seeds {
            if let Some(placed) = self.tasks.get(&task) {
                if queued.insert(task, ()).is_none() {
                    queue.push((placed.level, task));
                }
            }
        }
        let mut updates = 0u64;
        while let Some((_, task)) = queue.pop() {
            queued.remove(&task);
            let Some(placed) = self.tasks.get(&task).copied() else {
                continue;
            };
            updates += 1;
            let rank = self.rank_from_children(&task, &placed.state.spec);
            if rank.to_bits() == placed.rank.to_bits() {
                continue;
            }
            self.set_rank(task, rank);
            if let Some(parents) = self.parents.get(&task) {
                for (parent, _) in parents {
                    if let Some(placed) = self.tasks.get(parent) {
                        if queued.insert(*parent, ()).is_none() {
                            queue.push((placed.level, *parent));
                        }
                    }
                }
            }
        }
        RANK_UPDATES.fetch_add(updates, Ordering::Relaxed);
        self.rank_updates += updates;
        updates
    }

    /// Files a mapped task under a new rank.
    fn set_rank(&mut self, task: TaskKey, rank: f64) {
        let Some(placed) = self.tasks.get_mut(&task) else {
            return;
        };
        placed.rank = rank;
    }

    /// The mapped task's rank, if mapped.
    pub fn rank_of(&self, task: &TaskKey) -> Option<f64> {
        self.tasks.get(task).map(|placed| placed.rank)
    }

    /// How many ranks this map has recomputed since it was made (see [`rank_updates_total`]).
    pub fn rank_updates(&self) -> u64 {
        self.rank_updates
    }
}

/// The order in which new tasks are placed: decreasing upward rank, then shallower, then by
/// key (indices into the batch).
pub(crate) fn placement_order(
    tasks: &[(TaskKey, TaskState)],
    ranks: &[(f64, u32, u32)],
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_unstable_by_key(|&i| (Reverse(Score(ranks[i].0)), ranks[i].1, tasks[i].0));
    order
}
