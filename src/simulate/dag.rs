//! A workflow as the simulator runs it: each task's work (seconds at speed 1), cores, parents
//! and children with the bytes on each edge, and one topological order.

use crate::input::wfformat::Workflow;

/// The DAG of one workflow.
#[derive(Clone, Debug, Default)]
pub struct Dag {
    /// Seconds each task takes on a device of speed 1, alone.
    pub work_s: Vec<f64>,
    /// Cores each task occupies while it runs.
    pub cores: Vec<f64>,
    /// Each task's parents with the bytes it reads from each.
    pub parents: Vec<Vec<(u32, u64)>>,
    /// Each task's children with the bytes each reads from it.
    pub children: Vec<Vec<(u32, u64)>>,
    /// Every task once, parents before children (Kahn's order, lowest index first).
    pub topo: Vec<u32>,
}

impl Dag {
    /// The DAG of a parsed (so acyclic) workflow.
    pub fn of(workflow: &Workflow) -> Dag {
        let n = workflow.tasks.len();
        let mut parents = vec![Vec::new(); n];
        let mut children = vec![Vec::new(); n];
        for edge in &workflow.edges {
            if edge.parent < n && edge.child < n {
                parents[edge.child].push((edge.parent as u32, edge.bytes));
                children[edge.parent].push((edge.child as u32, edge.bytes));
            }
        }
        let work_s = workflow
            .tasks
            .iter()
            .map(|t| {
                if t.runtime_s.is_finite() {
                    t.runtime_s.max(0.0)
                } else {
                    0.0
                }
            })
            .collect();
        let cores = workflow
            .tasks
            .iter()
            .map(|t| if t.cores > 0.0 { t.cores } else { 1.0 })
            .collect();
        let topo = topological(&parents, &children);
        Dag {
            work_s,
            cores,
            parents,
            children,
            topo,
        }
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.work_s.len()
    }

    /// Whether there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.work_s.is_empty()
    }

    /// The work along the longest chain of tasks, seconds at speed 1: no schedule finishes
    /// sooner on devices of speed 1, transfers aside.
    pub fn critical_work_s(&self) -> f64 {
        let mut finish = vec![0.0_f64; self.len()];
        for &task in &self.topo {
            let task = task as usize;
            let ready = self.parents[task]
                .iter()
                .map(|&(parent, _)| finish[parent as usize])
                .fold(0.0, f64::max);
            finish[task] = ready + self.work_s[task];
        }
        finish.into_iter().fold(0.0, f64::max)
    }
}

fn topological(parents: &[Vec<(u32, u64)>], children: &[Vec<(u32, u64)>]) -> Vec<u32> {
    let mut pending: Vec<usize> = parents.iter().map(Vec::len).collect();
    let mut ready: std::collections::BTreeSet<u32> = pending
        .iter()
        .enumerate()
        .filter(|(_, p)| **p == 0)
        .map(|(i, _)| i as u32)
        .collect();
    let mut order = Vec::with_capacity(parents.len());
    while let Some(task) = ready.pop_first() {
        order.push(task);
        for &(child, _) in &children[task as usize] {
            let left = &mut pending[child as usize];
            *left = left.saturating_sub(1);
            if *left == 0 {
                ready.insert(child);
            }
        }
    }
    order
}
