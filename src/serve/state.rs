//! What the engine thread publishes and the HTTP threads read: the catalog, the current view of
//! the map and forecasts, counters, and the subscribers of the event streams.
//!
//! Locks are always taken in the order catalog, view, counters, subscribers, and never held
//! across a channel wait, so no handler can deadlock the engine.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use augur_dataflows::contention_forecast::{AnomalyPolicy, SeriesForecast};
use augur_dataflows::types::{DeviceId, Resource, TaskKey, Time};

use crate::catalog::Catalog;
use crate::input::Rejection;
use crate::scaleout::Scaleout;

use super::checkpoint::CheckpointMark;

/// Upper bounds of the update-latency histogram's buckets, seconds (`+Inf` is implied).
pub const LATENCY_BUCKETS_S: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Recent rejections kept for `GET /v1/rejections`.
pub const RECENT_REJECTIONS: usize = 1000;

/// Events a slow stream subscriber may fall behind before it is cut off (so the engine never
/// waits for a client). Memory is taken as events queue, not up front: a bounded channel of
/// this size held 1.6 MB per stream, and streams whose clients had left kept theirs until the
/// next event of their topic.
pub const SUBSCRIBER_BACKLOG: usize = 65_536;

/// Event streams open at once; more are refused (503). Streams are long-lived and hold no
/// connection slot of the server's, so they have their own bound.
pub const MAX_STREAMS: usize = 256;

/// The kinds of records the service counts.
pub const KINDS: [&str; 3] = ["workflow", "metric", "event"];

/// The service's fixed settings, for answers and the extender.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The forecast horizon, seconds.
    pub horizon_s: f64,
    /// The placement's capacity target.
    pub capacity_target: f64,
    /// Risk weight of the forecasts.
    pub risk: f64,
    /// How anomalous devices are treated.
    pub anomaly: AnomalyPolicy,
    /// Out-of-order tolerance, milliseconds.
    pub lateness_ms: i64,
    /// The placement policy's name.
    pub policy: String,
    /// Longest accepted line in a body.
    pub max_line_bytes: usize,
}

/// The engine's results as of the last completed epoch.
pub struct View {
    /// Task → device.
    pub map: BTreeMap<TaskKey, DeviceId>,
    /// The latest forecast of every series.
    pub forecasts: BTreeMap<(DeviceId, Resource), SeriesForecast>,
    /// Pool loads and scale-out advice.
    pub scaleout: Scaleout,
    /// The event time of the last completed epoch.
    pub reached: Option<Time>,
    /// Epochs completed.
    pub epochs: u64,
    /// First placements.
    pub placed: u64,
    /// Moves between devices.
    pub moved: u64,
    /// Records waiting in the reorder buffer (set by the source).
    pub buffered: usize,
    /// Epochs released but not yet completed (set by the source).
    pub queued_epochs: usize,
    /// Tasks arrived and not completed (set by the source).
    pub live_tasks: usize,
    /// Tasks admitted whose arrival is still to come (set by the source).
    pub pending_tasks: usize,
    /// The latest checkpoint kept (or resumed from), if checkpointing.
    pub checkpoint: Option<CheckpointMark>,
    /// The newest record time the source held when last snapshotted (set by the source, for
    /// the checkpoint being written).
    pub snapshot_newest: Option<Time>,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Counters {
    /// Records accepted, by kind.
    pub accepted: BTreeMap<&'static str, u64>,
    /// Records rejected, by kind.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Records accepted when their request was, then refused when applied (an event whose
    /// transition turned out impossible once the events before it in time were applied), by
    /// kind: counted apart, so that `accepted` never goes down (a Prometheus counter that
    /// drops reads as a restart) and a 200 is never taken back in the counts.
    pub refused_when_applied: BTreeMap<&'static str, u64>,
    /// Requests answered, by status.
    pub requests: BTreeMap<u16, u64>,
    /// Update latency: count per bucket of [`LATENCY_BUCKETS_S`] (not cumulative), then `+Inf`.
    pub latency_buckets: [u64; LATENCY_BUCKETS_S.len() + 1],
    /// Sum of update latencies, seconds.
    pub latency_sum_s: f64,
    /// Updates timed.
    pub latency_count: u64,
    /// The latest rejections, oldest first.
    pub recent_rejections: VecDeque<Rejection>,
}

impl Counters {
    /// Counts one epoch's latency.
    pub fn observe_latency(&mut self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let bucket = LATENCY_BUCKETS_S
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS_S.len());
        self.latency_buckets[bucket] += 1;
        self.latency_sum_s += seconds;
        self.latency_count += 1;
    }

    /// Counts rejections of one kind and keeps them for `GET /v1/rejections`.
    pub fn reject(&mut self, kind: &'static str, records: u64, rejections: &[Rejection]) {
        *self.rejected.entry(kind).or_default() += records;
        for rejection in rejections {
            self.keep_recent(rejection.clone());
        }
    }

    /// Keeps a rejection for `GET /v1/rejections`, the oldest going once there are enough.
    fn keep_recent(&mut self, rejection: Rejection) {
        if self.recent_rejections.len() == RECENT_REJECTIONS {
            self.recent_rejections.pop_front();
        }
        self.recent_rejections.push_back(rejection);
    }

    /// Counts accepted records of one kind.
    pub fn accept(&mut self, kind: &'static str, records: u64) {
        *self.accepted.entry(kind).or_default() += records;
    }

    /// Counts an accepted record refused when it was applied, and keeps its rejection for
    /// `GET /v1/rejections`.
    pub fn refuse_when_applied(&mut self, kind: &'static str, rejection: Rejection) {
        *self.refused_when_applied.entry(kind).or_default() += 1;
        self.keep_recent(rejection);
    }
}

/// Which stream a subscriber follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// Partition-map changes.
    Map,
    /// Scale-out advice changes.
    Scaleout,
}

struct Subscriber {
    topic: Topic,
    events: Sender<Arc<str>>,
    /// Events sent and not yet taken by the stream's writer.
    pending: Arc<AtomicUsize>,
    /// Cleared when the writer is gone (its client left): the subscriber is then dropped at
    /// the next subscription or count, without waiting for an event of its topic.
    alive: Arc<AtomicBool>,
}

/// An event stream still being written to its client (held by the thread writing it). A
/// stopping service waits for these, so that the events its drain published reach the clients
/// before the process exits.
struct OpenStream {
    open: Arc<AtomicUsize>,
    alive: Arc<AtomicBool>,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::SeqCst);
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a stream's writer holds: its events, until the service stops or it falls
/// [`SUBSCRIBER_BACKLOG`] events behind, and its place among the open streams.
pub struct Subscription {
    events: Receiver<Arc<str>>,
    pending: Arc<AtomicUsize>,
    _open: OpenStream,
}

impl Subscription {
    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Arc<str>, RecvTimeoutError> {
        let event = self.events.recv_timeout(timeout)?;
        self.pending.fetch_sub(1, Ordering::SeqCst);
        Ok(event)
    }
}

/// How long a stopping service waits for its streams to write out what they were sent.
const STREAM_DRAIN: Duration = Duration::from_secs(10);

/// Everything shared between the engine thread and the HTTP threads.
pub struct Shared {
    catalog: RwLock<Catalog>,
    view: RwLock<View>,
    counters: Mutex<Counters>,
    subscribers: Mutex<Vec<Subscriber>>,
    open_streams: Arc<AtomicUsize>,
    /// Fixed settings.
    pub settings: Settings,
}

impl Shared {
    /// Shared state over a catalog (holding the platform) and settings.
    pub fn new(catalog: Catalog, settings: Settings) -> Shared {
        let scaleout = Scaleout::new(
            catalog.device_specs(),
            catalog.classes.clone(),
            settings.capacity_target,
            (settings.horizon_s * 1000.0).round() as i64,
        );
        Shared {
            catalog: RwLock::new(catalog),
            view: RwLock::new(View {
                map: BTreeMap::new(),
                forecasts: BTreeMap::new(),
                scaleout,
                reached: None,
                epochs: 0,
                placed: 0,
                moved: 0,
                buffered: 0,
                queued_epochs: 0,
                live_tasks: 0,
                pending_tasks: 0,
                checkpoint: None,
                snapshot_newest: None,
            }),
            counters: Mutex::new(Counters::default()),
            subscribers: Mutex::new(Vec::new()),
            open_streams: Arc::new(AtomicUsize::new(0)),
            settings,
        }
    }

    // A poisoned lock means a thread panicked while holding it; the data is still the last
    // consistent epoch's (writers finish their update before anything can fail), so keep going.

    /// The catalog, to read.
    pub fn catalog(&self) -> RwLockReadGuard<'_, Catalog> {
        self.catalog.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The catalog, to admit workflows (the engine thread only).
    pub fn catalog_mut(&self) -> RwLockWriteGuard<'_, Catalog> {
        self.catalog.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The view, to read.
    pub fn view(&self) -> RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The view, to update (the engine thread only).
    pub fn view_mut(&self) -> RwLockWriteGuard<'_, View> {
        self.view.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The counters.
    pub fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new subscriber of `topic`, held by the writer of its stream until it has written
    /// what it was sent; `None` while [`MAX_STREAMS`] are open.
    pub fn subscribe(&self, topic: Topic) -> Option<Subscription> {
        let mut subscribers = self.live_subscribers();
        if self.open_streams.load(Ordering::SeqCst) >= MAX_STREAMS {
            return None;
        }
        let (events, receiver) = std::sync::mpsc::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let alive = Arc::new(AtomicBool::new(true));
        self.open_streams.fetch_add(1, Ordering::SeqCst);
        subscribers.push(Subscriber {
            topic,
            events,
            pending: Arc::clone(&pending),
            alive: Arc::clone(&alive),
        });
        Some(Subscription {
            events: receiver,
            pending,
            _open: OpenStream {
                open: Arc::clone(&self.open_streams),
                alive,
            },
        })
    }

    /// Sends one Server-Sent Event to the subscribers of `topic`, dropping those that left or
    /// lag too far behind.
    pub fn publish(&self, topic: Topic, event: &str) {
        let event: Arc<str> = Arc::from(event);
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|subscriber| {
            if !subscriber.alive.load(Ordering::SeqCst) {
                return false;
            }
            if subscriber.topic != topic {
                return true;
            }
            // Counted before it is sent, so the writer never takes more than was counted.
            subscriber.pending.fetch_add(1, Ordering::SeqCst) < SUBSCRIBER_BACKLOG
                && subscriber.events.send(Arc::clone(&event)).is_ok()
        });
    }

    /// Ends every stream (at shutdown), and waits (at most `STREAM_DRAIN`) for their writers
    /// to write out the events already sent: the process exits next, and would cut them off.
    pub fn close_streams(&self) {
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let deadline = Instant::now() + STREAM_DRAIN;
        while self.open_streams.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Subscribers now, per topic (for `/v1/status`): those whose clients are still there.
    pub fn subscriber_count(&self) -> usize {
        self.live_subscribers().len()
    }

    /// The subscribers, those whose writers are gone dropped.
    fn live_subscribers(&self) -> MutexGuard<'_, Vec<Subscriber>> {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|subscriber| subscriber.alive.load(Ordering::SeqCst));
        subscribers
    }
}

/// The map as `final_map.json` writes it: workflow → task → device.
pub fn named_map(
    catalog: &Catalog,
    map: &BTreeMap<TaskKey, DeviceId>,
    only: Option<u32>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut named: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let range = match only {
        Some(workflow) => {
            TaskKey { workflow, task: 0 }..=TaskKey {
                workflow,
                task: u32::MAX,
            }
        }
        None => {
            TaskKey {
                workflow: 0,
                task: 0,
            }..=TaskKey {
                workflow: u32::MAX,
                task: u32::MAX,
            }
        }
    };
    for (task, device) in map.range(range) {
        let (workflow, id) = catalog.task_names(*task);
        named
            .entry(workflow.to_string())
            .or_default()
            .insert(id.to_string(), catalog.device_name(*device).to_string());
    }
    named
}

/// The devices with an anomalous series.
pub fn anomalous_devices(view: &View) -> BTreeSet<DeviceId> {
    view.forecasts
        .iter()
        .filter(|(_, forecast)| {
            augur_dataflows::types::fraction_from_ppm(forecast.anomaly)
                >= augur_dataflows::anomaly::THRESHOLD
        })
        .map(|((device, _), _)| *device)
        .collect()
}
