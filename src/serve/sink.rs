//! The service's [`MapSink`]: applies each epoch's changes to the shared view the GET handlers
//! read, and sends the map's, the re-sculpting's and the scale-out advice's changes to the event
//! streams.

use std::sync::Arc;
use std::time::Duration;

use augur_dataflows::contention_forecast::SeriesForecast;
use augur_dataflows::types::{DeviceId, Resource, TaskKey, Time};
use serde::Serialize;

use crate::engine::VariantUpdate;
use crate::engine::{apply_changes, ForecastUpdate, MapSink, MapUpdate, PrewarmUpdate};
use crate::input::time::json_seconds;
use crate::output::resculpt_lines;
use crate::scaleout::{Scaleout, ScaleoutLine};

use super::state::{Shared, Topic};

/// The live [`MapSink`].
pub struct LiveSink {
    shared: Arc<Shared>,
}

/// What a checkpoint keeps of the sink: the view as of the checkpoint's epoch.
#[derive(serde::Serialize, serde::Deserialize)]
struct SinkState {
    map: Vec<(TaskKey, DeviceId)>,
    forecasts: Vec<((DeviceId, Resource), SeriesForecast)>,
    scaleout: Scaleout,
    reached: Option<Time>,
    /// Also the last event id of the streams, which go on from it.
    epochs: u64,
    placed: u64,
    moved: u64,
}

/// Why the live sink failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveSinkError {
    /// Its state could not be encoded for a checkpoint.
    #[error("cannot encode the service's map for a checkpoint: {0}")]
    Encode(String),
}

impl LiveSink {
    /// A sink publishing to `shared`.
    pub fn new(shared: Arc<Shared>) -> LiveSink {
        LiveSink { shared }
    }

    /// A sink restored from its part of a checkpoint ([`MapSink::snapshot`]), setting the
    /// shared view back to it.
    pub fn restore(shared: Arc<Shared>, bytes: &[u8]) -> Result<LiveSink, String> {
        let state: SinkState = crate::checkpoint::decode(bytes)?;
        {
            let mut view = shared.view_mut();
            view.map = state.map.into_iter().collect();
            view.forecasts = state.forecasts.into_iter().collect();
            view.scaleout = state.scaleout;
            view.reached = state.reached;
            view.epochs = state.epochs;
            view.placed = state.placed;
            view.moved = state.moved;
        }
        Ok(LiveSink { shared })
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
    type Error = LiveSinkError;

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, LiveSinkError> {
        let view = self.shared.view();
        #[derive(serde::Serialize)]
        struct Borrowed<'a> {
            map: Vec<(TaskKey, DeviceId)>,
            forecasts: Vec<((DeviceId, Resource), SeriesForecast)>,
            scaleout: &'a Scaleout,
            reached: Option<Time>,
            epochs: u64,
            placed: u64,
            moved: u64,
        }
        crate::checkpoint::encode(&Borrowed {
            map: view.map.iter().map(|(k, v)| (*k, *v)).collect(),
            forecasts: view.forecasts.iter().map(|(k, v)| (*k, *v)).collect(),
            scaleout: &view.scaleout,
            reached: view.reached,
            epochs: view.epochs,
            placed: view.placed,
            moved: view.moved,
        })
        .map(Some)
        .map_err(LiveSinkError::Encode)
    }

    fn forecasts(&mut self, _time: Time, changes: &[ForecastUpdate]) -> Result<(), LiveSinkError> {
        let mut view = self.shared.view_mut();
        apply_changes(&mut view.forecasts, changes);
        view.scaleout.on_forecasts(changes);
        Ok(())
    }

    fn prewarm(&mut self, _time: Time, changes: &[PrewarmUpdate]) -> Result<(), LiveSinkError> {
        self.shared.view_mut().scaleout.on_prewarm(changes);
        Ok(())
    }

    /// Each re-sculpting decision goes to `GET /v1/changes` as a `resculpt` event (a line of
    /// `run`'s `resculpt.jsonl`), with the id of the epoch's `map` event, which follows.
    fn variants(&mut self, time: Time, changes: &[VariantUpdate]) -> Result<(), LiveSinkError> {
        let shared = Arc::clone(&self.shared);
        let catalog = shared.catalog();
        let epoch = shared.view().epochs + 1;
        for line in resculpt_lines(&catalog, time, changes).unwrap_or_default() {
            if let Ok(data) = std::str::from_utf8(&line) {
                shared.publish(Topic::Map, &sse("resculpt", epoch, data));
            }
        }
        Ok(())
    }

    fn epoch(
        &mut self,
        time: Time,
        changes: &[MapUpdate],
        latency: Duration,
    ) -> Result<(), LiveSinkError> {
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
