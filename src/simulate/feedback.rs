//! The closed loop: a [`BatchSource`] and a [`MapSink`] over one shared [`Cluster`], so the
//! simulator feeds the very dataflow `augur run` uses and dispatches by the map it returns.
//!
//! Each call for the next epoch first starts whatever the current map lets start now (those
//! starts are the epoch); when nothing can, it advances the clock to the next event (the
//! workflow's arrival, completions, data arrivals, background samples) and sends what happened.
//! The sink applies each epoch's map changes and keeps the forecasts, for the report.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use augur_dataflows::types::{InputBatch, Resource, TaskKey, Time};

use crate::catalog::Catalog;
use crate::engine::{BatchSource, ForecastUpdate, MapSink, MapUpdate};

use super::cluster::Cluster;
use super::SimError;

/// Epochs in a row with nothing running, nothing started and nothing completed after which the
/// simulation gives up (the map never sends a ready task anywhere it can run).
pub const STALL_EPOCHS: u64 = 10_000;

/// Milliseconds of event time for seconds of simulation time.
pub fn event_time(seconds: f64) -> Time {
    (seconds * 1000.0)
        .round()
        .clamp(i64::MIN as f64, i64::MAX as f64) as Time
}

fn lock(cluster: &Mutex<Cluster>) -> Result<MutexGuard<'_, Cluster>, SimError> {
    cluster
        .lock()
        .map_err(|_| SimError::Internal("the simulation state was poisoned".to_string()))
}

/// Emits the simulation's events, in event-time order.
pub struct SimSource {
    cluster: Arc<Mutex<Cluster>>,
    catalog: Arc<Catalog>,
    progress: Option<Progress>,
    lockstep: bool,
}

/// Progress lines on stderr, at most one every two seconds.
pub struct Progress {
    label: String,
    last: Instant,
}

impl Progress {
    /// Progress lines labelled `label`.
    pub fn new(label: String) -> Progress {
        Progress {
            label,
            last: Instant::now(),
        }
    }
}

impl SimSource {
    /// A source over the shared cluster.
    pub fn new(
        cluster: Arc<Mutex<Cluster>>,
        catalog: Arc<Catalog>,
        progress: Option<Progress>,
    ) -> SimSource {
        SimSource {
            cluster,
            catalog,
            progress,
            lockstep: false,
        }
    }

    /// With `lockstep`, one epoch at a time (see [`crate::simulate::SimConfig::lockstep`]).
    pub fn in_lockstep(mut self, lockstep: bool) -> SimSource {
        self.lockstep = lockstep;
        self
    }
}

impl BatchSource for SimSource {
    type Error = SimError;

    fn next_batch(&mut self) -> Result<Option<(Time, InputBatch)>, SimError> {
        let mut cluster = lock(&self.cluster)?;
        if cluster.finished() {
            return Ok(None);
        }
        if let Some(progress) = &mut self.progress {
            if progress.last.elapsed().as_secs_f64() >= 2.0 {
                progress.last = Instant::now();
                if cluster.arrived() {
                    crate::say!(
                        "augur simulate: {}: {}/{} tasks done, t = {:.0} s",
                        progress.label,
                        cluster.done(),
                        cluster.dag.len(),
                        cluster.now - cluster.arrival
                    );
                } else {
                    crate::say!(
                        "augur simulate: {}: warming the forecasts up, {:.0}/{:.0} s of background",
                        progress.label,
                        cluster.now,
                        cluster.arrival
                    );
                }
            }
        }
        let mut batch = InputBatch::default();
        let started = cluster.dispatch();
        if !started.is_empty() {
            for (task, device) in started {
                let key = TaskKey { workflow: 0, task };
                batch.started.push(((key, device as u32), 1));
            }
            return Ok(Some((event_time(cluster.now), batch)));
        }
        if cluster.idle_epochs > STALL_EPOCHS {
            return Err(SimError::Stalled {
                time_s: cluster.now - cluster.arrival,
                done: cluster.done(),
                tasks: cluster.dag.len(),
            });
        }
        let Some(next) = cluster.next_event() else {
            return Err(SimError::Stalled {
                time_s: cluster.now - cluster.arrival,
                done: cluster.done(),
                tasks: cluster.dag.len(),
            });
        };
        cluster.advance(next, &self.catalog, &mut batch);
        Ok(Some((event_time(cluster.now), batch)))
    }

    /// Epochs are fed in groups while the map cannot matter (see [`Self::can_run_ahead`]):
    /// a long run over a fine background is mostly epochs of samples alone, and waiting on
    /// each paid timely's progress round trip every time (a chain of three 1e7-s tasks over
    /// 5-minute traces: 100,000 samples a device, 7.5 s a policy).
    fn pipeline_depth(&self) -> usize {
        if self.lockstep {
            1
        } else {
            64
        }
    }

    /// The map is read only for tasks that are ready and not started (where to start them,
    /// when their data arrive there): while there are none, the next batch is the same
    /// whatever the map of the epochs in flight, and the source may run ahead. A batch that
    /// makes a task ready (the arrival, a completion) is the group's last.
    fn can_run_ahead(&self) -> bool {
        lock(&self.cluster).is_ok_and(|cluster| !cluster.any_waiting())
    }
}

/// Receives the map's changes into the shared cluster.
pub struct SimSink {
    cluster: Arc<Mutex<Cluster>>,
}

impl SimSink {
    /// A sink into the shared cluster.
    pub fn new(cluster: Arc<Mutex<Cluster>>) -> SimSink {
        SimSink { cluster }
    }
}

impl MapSink for SimSink {
    type Error = SimError;

    fn epoch(
        &mut self,
        _time: Time,
        changes: &[MapUpdate],
        _latency: std::time::Duration,
    ) -> Result<(), SimError> {
        let mut cluster = lock(&self.cluster)?;
        let mut left = Vec::new();
        for &((key, device), diff) in changes {
            let task = key.task as usize;
            if diff < 0 && cluster.map.get(task) == Some(&Some(device as usize)) {
                cluster.map[task] = None;
                left.push(task);
            }
        }
        for &((key, device), diff) in changes {
            let task = key.task as usize;
            if diff > 0 && task < cluster.map.len() {
                if left.contains(&task) {
                    cluster.map_moves += 1;
                }
                cluster.map[task] = Some(device as usize);
            }
        }
        Ok(())
    }

    fn forecasts(&mut self, time: Time, changes: &[ForecastUpdate]) -> Result<(), SimError> {
        let mut cluster = lock(&self.cluster)?;
        for &(((device, resource), forecast), diff) in changes {
            if diff > 0 && resource == Resource::Cpu {
                let predicted = augur_dataflows::types::fraction_from_ppm(forecast.predicted);
                cluster
                    .forecasts
                    .push((time as f64 / 1000.0, device as usize, predicted));
            }
        }
        Ok(())
    }
}
