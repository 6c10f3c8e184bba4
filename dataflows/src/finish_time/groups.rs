//! The engine's side of [`crate::hierarchy`]: coarsening a huge batch and mapping its clusters
//! onto device groups (the rule's steps 1 and 2), in time linear in the batch and its edges.

use std::cmp::Reverse;

use super::FinishTimePlacer;
use crate::hierarchy;
use crate::placement::{Score, TaskMap};
use crate::types::{TaskKey, TaskState};

impl FinishTimePlacer {
    /// The group each new task is restricted to ([`crate::hierarchy`]'s steps 1 and 2), by
    /// index into `to_place`; `None` for tasks of a cluster no group can host whole.
    pub(super) fn assign_groups(
        &self,
        to_place: &[(TaskKey, TaskState)],
        ranks: &[(f64, u32, u32)],
    ) -> Vec<Option<u32>> {
        let n = to_place.len();
        let group_count = self.group_cells.len();
        let index: TaskMap<usize> = to_place
            .iter()
            .enumerate()
            .map(|(i, (task, _))| (*task, i))
            .collect();
        let no_parents: &[(TaskKey, u64)] = &[];
        let parents_of = |i: usize| {
            self.parents
                .get(&to_place[i].0)
                .map_or(no_parents, |v| v.as_slice())
        };

        // 1. Coarsen: by (depth, key), join the heaviest new parent's cluster while it has room.
        let cap = hierarchy::cluster_cap(n, group_count);
        let mut visit: Vec<usize> = (0..n).collect();
        visit.sort_unstable_by_key(|&i| (ranks[i].1, to_place[i].0));
        let mut cluster = vec![0u32; n];
        let mut sizes: Vec<usize> = Vec::new();
        for &i in &visit {
            let anchor = parents_of(i)
                .iter()
                .filter_map(|(parent, bytes)| {
                    index.get(parent).map(|&p| (*bytes, Reverse(*parent), p))
                })
                .max()
                .map(|(_, _, p)| p);
            match anchor.map(|p| cluster[p] as usize) {
                Some(c) if sizes[c] < cap => {
                    cluster[i] = c as u32;
                    sizes[c] += 1;
                }
                _ => {
                    cluster[i] = sizes.len() as u32;
                    sizes.push(1);
                }
            }
        }
        let clusters = sizes.len();
        let mut members: Vec<Vec<usize>> = sizes.iter().map(|s| Vec::with_capacity(*s)).collect();
        for i in 0..n {
            members[cluster[i] as usize].push(i);
        }
        // Edges among the new tasks, child to parent, for the bytes crossing clusters.
        let mut children: Vec<Vec<(usize, u64)>> = vec![Vec::new(); n];
        for (child, _) in to_place.iter().enumerate() {
            for (parent, bytes) in parents_of(child) {
                if let Some(&p) = index.get(parent) {
                    children[p].push((child, *bytes));
                }
            }
        }

        // 2. Map clusters to groups, most critical first.
        let mut queued = vec![0.0f64; group_count];
        let mut capacity = vec![0.0f64; group_count];
        for device in &self.devices {
            let (q, c) =
                hierarchy::device_terms(&device.spec, device.contention, device.work.cores);
            queued[device.group as usize] += q;
            capacity[device.group as usize] += c;
        }
        let mut assigned = vec![0u128; group_count];
        let mut cluster_group: Vec<Option<u32>> = vec![None; clusters];
        let mut cluster_order: Vec<(Reverse<Score>, usize)> = (0..clusters)
            .map(|c| {
                let rank = members[c]
                    .iter()
                    .map(|&i| ranks[i].0)
                    .fold(f64::NEG_INFINITY, f64::max);
                (Reverse(Score(rank)), c)
            })
            .collect();
        cluster_order.sort_unstable();
        let mut cross = vec![0u128; group_count];
        for (_, c) in cluster_order {
            let mut work = 0u128;
            for g in cross.iter_mut() {
                *g = 0;
            }
            let mut known = 0u128;
            let mut eligible = vec![true; group_count];
            for &i in &members[c] {
                let spec = &to_place[i].1.spec;
                work = work.saturating_add(hierarchy::task_work(spec));
                for (g, ok) in eligible.iter_mut().enumerate() {
                    *ok = *ok
                        && self.group_cells[g]
                            .iter()
                            .any(|&cell| self.classes[self.cells[cell].class].spec.can_host(spec));
                }
                let mut note = |group: Option<u32>, bytes: u64| {
                    if let Some(group) = group {
                        known += u128::from(bytes);
                        cross[group as usize] += u128::from(bytes);
                    }
                };
                for (parent, bytes) in parents_of(i) {
                    let group = match index.get(parent) {
                        Some(&p) if cluster[p] as usize == c => continue,
                        Some(&p) => cluster_group[cluster[p] as usize],
                        None => self
                            .output_of(parent)
                            .map(|output| self.devices[output.device as usize].group),
                    };
                    note(group, *bytes);
                }
                for &(child, bytes) in &children[i] {
                    if cluster[child] as usize != c {
                        note(cluster_group[cluster[child] as usize], bytes);
                    }
                }
            }
            let mut best: Option<(Score, u32)> = None;
            for g in 0..group_count {
                if !eligible[g] {
                    continue;
                }
                // `cross[g]` holds the known bytes already in g: the rest cross groups.
                let score = hierarchy::group_score(
                    queued[g],
                    assigned[g],
                    work,
                    capacity[g],
                    known - cross[g],
                    self.mean_bandwidth,
                );
                let candidate = (Score(score), g as u32);
                if best.is_none_or(|current| candidate < current) {
                    best = Some(candidate);
                }
            }
            if let Some((_, g)) = best {
                assigned[g as usize] = assigned[g as usize].saturating_add(work);
                cluster_group[c] = Some(g);
            }
        }
        cluster.iter().map(|&c| cluster_group[c as usize]).collect()
    }
}
