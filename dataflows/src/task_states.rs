//! The state of every live task: its requirements, where it started (if it has), and whether all
//! of its parents have completed.
//!
//! The driver keeps three input collections current: live tasks (inserted on arrival, retracted on
//! completion), started tasks (inserted on start, retracted on completion) and live edges
//! `(child, parent)` (inserted with the child, retracted when the child completes). A task is
//! blocked while any of its parents is still live, so completion of a parent unblocks its children
//! through the retraction alone, and nothing here grows with the history of the stream.

use differential_dataflow::VecCollection;

use crate::types::{DeviceId, TaskKey, TaskSpec, TaskState, Time};

/// `(task, state)` for every live task.
pub fn task_states<'scope>(
    tasks: VecCollection<'scope, Time, (TaskKey, TaskSpec)>,
    started: VecCollection<'scope, Time, (TaskKey, DeviceId)>,
    edges: VecCollection<'scope, Time, (TaskKey, TaskKey)>,
) -> VecCollection<'scope, Time, (TaskKey, TaskState)> {
    let live = tasks.clone().map(|(task, _)| task);

    let blocked = edges
        .map(|(child, parent)| (parent, child))
        .semijoin(live.clone())
        .map(|(_parent, child)| child)
        .distinct();

    let pinned = tasks
        .clone()
        .join_map(started.clone(), |task, spec, device| {
            (*task, (*spec, Some(*device)))
        });
    let unpinned = tasks
        .antijoin(started.map(|(task, _)| task))
        .map(|(task, spec)| (task, (spec, None)));
    let placed = pinned.concat(unpinned);

    let waiting = placed
        .clone()
        .semijoin(blocked.clone())
        .map(|(task, (spec, pinned))| {
            let ready = false;
            (
                task,
                TaskState {
                    spec,
                    pinned,
                    ready,
                },
            )
        });
    let ready = placed.antijoin(blocked).map(|(task, (spec, pinned))| {
        let ready = true;
        (
            task,
            TaskState {
                spec,
                pinned,
                ready,
            },
        )
    });
    waiting.concat(ready)
}
