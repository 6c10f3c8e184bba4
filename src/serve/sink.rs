//! The service's [`MapSink`]: applies each epoch's changes to the shared view the GET handlers
//! read, and sends the map's and the scale-out advice's changes to the event streams.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use augur_dataflows::types::Time;
use serde::Serialize;

use crate::engine::{apply_changes, ForecastUpdate, MapSink, MapUpdate, PrewarmUpdate};
use crate::input::time::json_seconds;
use crate::scaleout::ScaleoutLine;

use super::state::{Shared, Topic};

/// The live [`MapSink`].
pub struct LiveSink {
    shared: Arc<Shared>,
}

impl LiveSink {
    /// A sink publishing to `shared`.
    pub fn new(shared: Arc<Shared>) -> LiveSink {
        LiveSink { shared }
    }
}

/// One change of the map, as a line of `partition.jsonl`.
#[derive(Serialize)]
struct ChangeLine<'a> {
    time: serde_json::Value,
    workflow: &'a str,
    task: &'a str,
    device: &'a str,
    diff: isize,
}

/// One epoch's map changes, as one event of `GET /v1/changes`.
#[derive(Serialize)]
struct MapEvent<'a> {
    time: serde_json::Value,
    epoch: u64,
    changes: Vec<ChangeLine<'a>>,
}

/// Formats one Server-Sent Event; `data` is one line of JSON.
pub fn sse(event: &str, id: u64, data: &str) -> String {
    format!("event: {event}\nid: {id}\ndata: {data}\n\n")
}

impl MapSink for LiveSink {
    type Error = Infallible;

    fn forecasts(&mut self, _time: Time, changes: &[ForecastUpdate]) -> Result<(), Infallible> {
        let mut view = self.shared.view_mut();
        apply_changes(&mut view.forecasts, changes);
        view.scaleout.on_forecasts(changes);
        Ok(())
    }

    fn prewarm(&mut self, _time: Time, changes: &[PrewarmUpdate]) -> Result<(), Infallible> {
        self.shared.view_mut().scaleout.on_prewarm(changes);
        Ok(())
    }

    fn epoch(
        &mut self,
        time: Time,
        changes: &[MapUpdate],
        latency: Duration,
    ) -> Result<(), Infallible> {
        let shared = Arc::clone(&self.shared);
        let catalog = shared.catalog();
        let mut view = shared.view_mut();
        view.epochs += 1;
        view.reached = Some(time);
        let epoch = view.epochs;
        let mut left = std::collections::BTreeSet::new();
        for &((task, device), diff) in changes {
            if diff < 0 {
                left.insert(task);
                if view.map.get(&task) == Some(&device) {
                    view.map.remove(&task);
                }
            }
        }
        for &((task, device), diff) in changes {
            if diff > 0 {
                if left.contains(&task) {
                    view.moved += 1;
                } else {
                    view.placed += 1;
                }
                view.map.insert(task, device);
            }
        }
        view.scaleout.on_map(changes, |task| catalog.spec(task));
        let advice = view.scaleout.changes();
        drop(view);
        self.shared.counters().observe_latency(latency);

        if !changes.is_empty() {
            let lines = changes
                .iter()
                .map(|&((task, device), diff)| {
                    let (workflow, id) = catalog.task_names(task);
                    ChangeLine {
                        time: json_seconds(time),
                        workflow,
                        task: id,
                        device: catalog.device_name(device),
                        diff,
                    }
                })
                .collect();
            let event = MapEvent {
                time: json_seconds(time),
                epoch,
                changes: lines,
            };
            if let Ok(data) = serde_json::to_string(&event) {
                shared.publish(Topic::Map, &sse("map", epoch, &data));
            }
        }
        let settings = &shared.settings;
        for pool in advice {
            let line = ScaleoutLine {
                time: json_seconds(time),
                pool: catalog.class_name(pool.class),
                instances: pool.instances,
                current: pool.current,
                reason: pool.reason(settings.horizon_s, settings.capacity_target),
                warm_up: pool.instances.saturating_sub(pool.current),
            };
            if let Ok(data) = serde_json::to_string(&line) {
                shared.publish(Topic::Scaleout, &sse("scaleout", epoch, &data));
            }
        }
        Ok(())
    }
}
