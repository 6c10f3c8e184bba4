//! The state of every live task: its requirements, where it started (if it has), and whether all
//! of its parents have completed.
//!
//! The driver keeps three input collections current: live tasks (inserted on arrival, retracted on
//! completion), started tasks (inserted on start, retracted on completion) and live edges
//! `(child, parent)` (inserted with the child, retracted when the child completes). A task is
//! blocked while any of its parents is still live, so completion of a parent unblocks its children
//! through the retraction alone, and nothing here grows with the history of the stream.
//!
//! Everything known of a task is gathered under its key and folded by one `reduce`, so a change to
//! a task touches only that task, and the 100k-task bursts of the benchmark are arranged once
//! rather than once per join.

use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

use crate::types::{DeviceId, Edge, TaskKey, TaskSpec, TaskState, Time};

/// One thing known of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Fact {
    Spec(TaskSpec),
    Started(DeviceId),
    /// One per live parent.
    Blocked,
}

/// `(task, state)` for every live task.
pub fn task_states<'scope>(
    tasks: VecCollection<'scope, Time, (TaskKey, TaskSpec)>,
    started: VecCollection<'scope, Time, (TaskKey, DeviceId)>,
    edges: VecCollection<'scope, Time, Edge>,
) -> VecCollection<'scope, Time, (TaskKey, TaskState)> {
    let live = tasks.clone().map(|(task, _)| task);
    let blocked = edges
        .map(|((child, parent), _bytes)| (parent, child))
        .semijoin(live)
        .map(|(_parent, child)| (child, Fact::Blocked));

    tasks
        .map(|(task, spec)| (task, Fact::Spec(spec)))
        .concat(started.map(|(task, device)| (task, Fact::Started(device))))
        .concat(blocked)
        .reduce(|_task, facts, output| {
            let mut spec = None;
            let mut pinned = None;
            let mut ready = true;
            // Facts arrive sorted: the least spec and device win should a task ever carry two.
            for (fact, count) in facts {
                if *count <= 0 {
                    continue;
                }
                match **fact {
                    Fact::Spec(s) => {
                        spec.get_or_insert(s);
                    }
                    Fact::Started(device) => {
                        pinned.get_or_insert(device);
                    }
                    Fact::Blocked => ready = false,
                }
            }
            if let Some(spec) = spec {
                output.push((
                    TaskState {
                        spec,
                        pinned,
                        ready,
                    },
                    1,
                ));
            }
        })
}
