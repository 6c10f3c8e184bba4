//! The service's [`BatchSource`]: records come from HTTP handler threads (or any other
//! producer, through a [`ServiceHandle`]) over a channel, and leave as epochs in event time.
//!
//! How epochs close in a live service:
//!
//! - Every accepted sample and event waits in one reorder buffer (the same [`Reorder`] as
//!   `augur run`, with the same lateness). When a request moves the newest time seen forward,
//!   every record at or before `newest - lateness` (the watermark) is released, grouped into one
//!   epoch per distinct time, in time order; within an epoch, arrivals first, then samples, then
//!   events, each in the order received (as `run` orders one file of each).
//! - `POST /v1/flush` releases everything buffered (as the end of a file does for `run`) and
//!   answers once every released epoch has completed, so what the client sent is visible.
//! - Once an epoch is released, time cannot go back: a record at or before the last released
//!   time, or more than the lateness behind the newest seen, is refused.
//! - A workflow arrives at the time its `arrival` parameter or an arrival event gives (the
//!   earliest, as `run` takes it), else with the next epoch released.
//!
//! With `--checkpoint`, the source's state (admitted workflows, buffer, released epochs,
//! lifecycle, counters) is part of every checkpoint; an epoch's lifecycle changes are applied
//! when it is fed, not when it is released, so a checkpoint's lifecycle is what the dataflow saw.
//!
//! A request is validated whole against names, times and the catalog before anything of it is
//! applied; what only the task lifecycle can refuse (a start before arrival, a second
//! completion) is refused when its epoch is built, exactly as `run` does, and counted.

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use augur_dataflows::types::{InputBatch, Sample, TaskKey, Time};

use crate::engine::BatchSource;
use crate::feed::MAX_UTILISATION;
use crate::input::events::{EventKind, TaskEvent};
use crate::input::metrics::MetricRecord;
use crate::input::reorder::Reorder;
use crate::input::time::format_seconds;
use crate::input::wfformat::Workflow;
use crate::input::{RejectKind, Rejection};
use crate::lifecycle::{Change, Lifecycle, TaskLifecycle};

use super::body_rejections::BodyRejections;
use super::checkpoint::WorkflowRecord;
use super::parse::{EVENTS_BODY, METRICS_BODY};
use super::state::{Shared, KINDS};

/// How far ahead of this host's clock a record's time may be (see `Source::too_late`).
pub const MAX_AHEAD_OF_CLOCK_MS: Time = 24 * 3600 * 1000;

/// Why a request was refused: the status to answer with and the problems found.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    /// 409 for a name already taken, 422 for records that cannot be applied, 503 when the
    /// service is stopping.
    pub status: u16,
    /// What was wrong, record by record: for a body of records, the first
    /// [`LISTED_REJECTIONS`](super::body_rejections::LISTED_REJECTIONS) in line order.
    pub rejections: Vec<Rejection>,
    /// Every problem found, listed or not.
    pub problems: u64,
}

impl Refusal {
    fn unprocessable(rejections: Vec<Rejection>) -> Refusal {
        Refusal::listing(422, rejections)
    }

    /// A refusal listing every one of `rejections`.
    pub fn listing(status: u16, rejections: Vec<Rejection>) -> Refusal {
        Refusal {
            status,
            problems: rejections.len() as u64,
            rejections,
        }
    }

    fn of_body(rejections: BodyRejections) -> Refusal {
        Refusal {
            status: 422,
            problems: rejections.problems(),
            rejections: rejections.into_listed(),
        }
    }

    fn stopping() -> Refusal {
        Refusal::listing(
            503,
            vec![Rejection::whole_file(
                "service",
                RejectKind::Io,
                "the service is stopping",
            )],
        )
    }
}

/// What an accepted request did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Accepted {
    /// Records accepted (tasks, for a workflow).
    pub accepted: usize,
    /// Records waiting in the reorder buffer afterwards.
    pub buffered: usize,
    /// Epochs released by this request.
    pub released_epochs: usize,
}

type Reply = SyncSender<Result<Accepted, Refusal>>;

/// What producers send the source.
pub enum Command {
    /// Admit a workflow; its tasks arrive at `arrival`, or with the next epoch.
    Workflow {
        /// The parsed workflow.
        workflow: Workflow,
        /// Its arrival time.
        arrival: Option<Time>,
        /// Where the answer goes.
        reply: Reply,
    },
    /// Buffer metric samples.
    Samples {
        /// The parsed samples, with their lines in the body.
        records: Vec<(u64, MetricRecord)>,
        /// The body's records the parser refused (the whole body is then refused).
        refused: BodyRejections,
        /// Where the answer goes.
        reply: Reply,
    },
    /// Buffer task events (with their line numbers in the body).
    Events {
        /// The parsed events.
        events: Vec<(u64, TaskEvent)>,
        /// The body's records the parser refused (the whole body is then refused).
        refused: BodyRejections,
        /// Where the answer goes.
        reply: Reply,
    },
    /// Release everything buffered; answered once it has all been applied.
    Flush {
        /// Signalled when done.
        reply: SyncSender<()>,
    },
    /// Release everything buffered, then end.
    Shutdown,
}

/// A producer's handle on a running service: the HTTP handlers use it, and so can an
/// in-process collector (`augur collect` pushing samples it scraped).
#[derive(Clone)]
pub struct ServiceHandle {
    commands: Sender<Command>,
    /// How long to wait for the engine to answer.
    pub timeout: Duration,
}

impl ServiceHandle {
    /// A handle sending on `commands`.
    pub fn new(commands: Sender<Command>, timeout: Duration) -> ServiceHandle {
        ServiceHandle { commands, timeout }
    }

    fn ask(&self, make: impl FnOnce(Reply) -> Command) -> Result<Accepted, Refusal> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.commands
            .send(make(reply))
            .map_err(|_| Refusal::stopping())?;
        match answer.recv_timeout(self.timeout) {
            Ok(result) => result,
            Err(_) => Err(Refusal::stopping()),
        }
    }

    /// Admits a workflow.
    pub fn push_workflow(
        &self,
        workflow: Workflow,
        arrival: Option<Time>,
    ) -> Result<Accepted, Refusal> {
        self.ask(|reply| Command::Workflow {
            workflow,
            arrival,
            reply,
        })
    }

    /// Buffers metric samples (all or none: none where `refused`, the body's records its
    /// parser refused, is not empty; the refusal then lists those and any bad sample).
    pub fn push_samples(
        &self,
        records: Vec<(u64, MetricRecord)>,
        refused: BodyRejections,
    ) -> Result<Accepted, Refusal> {
        self.ask(|reply| Command::Samples {
            records,
            refused,
            reply,
        })
    }

    /// Buffers task events (all or none, as [`Self::push_samples`]).
    pub fn push_events(
        &self,
        events: Vec<(u64, TaskEvent)>,
        refused: BodyRejections,
    ) -> Result<Accepted, Refusal> {
        self.ask(|reply| Command::Events {
            events,
            refused,
            reply,
        })
    }

    /// Releases everything buffered and waits until it has been applied; `false` when the
    /// service stopped or the wait timed out.
    pub fn flush(&self) -> bool {
        let (reply, done) = std::sync::mpsc::sync_channel(1);
        if self.commands.send(Command::Flush { reply }).is_err() {
            return false;
        }
        done.recv_timeout(self.timeout).is_ok()
    }

    /// Asks the source to drain and end (see [`LiveSource::keeping_buffer_at_stop`] for what
    /// it does with the reorder buffer).
    pub fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
enum Item {
    Sample(Sample),
    Event(u64, TaskEvent),
}

/// One epoch released from the buffer, not yet fed. The lifecycle is applied to it only when
/// it is fed, so at a checkpoint the lifecycle is exactly what the dataflow has seen.
#[derive(serde::Serialize, serde::Deserialize)]
struct Released {
    time: Time,
    /// Tasks arriving, in key order.
    arriving: Vec<TaskKey>,
    samples: Vec<Sample>,
    /// Events with their line in the request, in the order received.
    events: Vec<(u64, TaskEvent)>,
}

/// What a checkpoint keeps of the source (see [`super::checkpoint`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct SourceState {
    workflows: Vec<WorkflowRecord>,
    buffer: Reorder<Item>,
    seq: u64,
    released: Option<Time>,
    pending: Vec<(TaskKey, Option<Time>)>,
    ready: VecDeque<Released>,
    live: Vec<(TaskKey, Lifecycle)>,
    completed: Vec<(u32, Vec<bool>)>,
    accepted: Vec<(String, u64)>,
    rejected: Vec<(String, u64)>,
    refused_when_applied: Vec<(String, u64)>,
}

/// The live [`BatchSource`]; see the module documentation.
pub struct LiveSource {
    shared: Arc<Shared>,
    commands: Receiver<Command>,
    lateness_ms: i64,
    buffer: Reorder<Item>,
    seq: u64,
    released: Option<Time>,
    /// Admitted tasks not yet arrived, with their arrival time (`None`: the next epoch).
    pending: BTreeMap<TaskKey, Option<Time>>,
    ready: VecDeque<Released>,
    flush_waiters: Vec<SyncSender<()>>,
    lifecycle: TaskLifecycle,
    stopping: bool,
    /// Whether a stop leaves the reorder buffer as it is (for the stop's checkpoint to hold)
    /// rather than releasing it: see [`LiveSource::keeping_buffer_at_stop`].
    keep_buffer_at_stop: bool,
    /// Whether a request came in since the last snapshot (the buffer, the catalog or the
    /// counts may have changed without an epoch).
    unsaved: bool,
}

impl LiveSource {
    /// A source reading `commands`, publishing its counts to `shared`.
    pub fn new(shared: Arc<Shared>, commands: Receiver<Command>) -> LiveSource {
        let lateness_ms = shared.settings.lateness_ms;
        LiveSource {
            shared,
            commands,
            lateness_ms,
            buffer: Reorder::new(lateness_ms),
            seq: 0,
            released: None,
            pending: BTreeMap::new(),
            ready: VecDeque::new(),
            flush_waiters: Vec::new(),
            lifecycle: TaskLifecycle::default(),
            stopping: false,
            keep_buffer_at_stop: false,
            unsaved: false,
        }
    }

    /// A source whose stop keeps what is still in its reorder buffer, for a checkpointing
    /// service: the stop's checkpoint holds those records and the resumed service releases
    /// them as if it had never stopped. Released at the stop, a producer stopped in the middle
    /// of one timestamp's records could not send the rest of it after the resume (a time at
    /// or before the last released one is refused), and records still within the lateness
    /// would be applied before later-sent ones they should have waited for.
    pub fn keeping_buffer_at_stop(mut self) -> LiveSource {
        self.keep_buffer_at_stop = true;
        self
    }

    /// A fresh source of a checkpointing service: its stop checkpoints even if it was sent
    /// nothing, so that a supervisor that always restarts it with `--resume` finds one (an
    /// idle service stopped cleanly left none, and the resume was refused).
    pub fn unsaved(mut self) -> LiveSource {
        self.unsaved = true;
        self
    }

    /// Stops taking commands: releases what is buffered, unless the stop's checkpoint is to
    /// keep it.
    fn begin_stop(&mut self) {
        if !self.stopping && !self.keep_buffer_at_stop {
            self.release(true);
        }
        self.stopping = true;
    }

    /// A source restored from its part of a checkpoint ([`BatchSource::snapshot`]): the
    /// workflows are admitted again, in their order, into `shared`'s catalog (which must hold
    /// none yet), and the counters are set back.
    pub fn restore(
        shared: Arc<Shared>,
        commands: Receiver<Command>,
        bytes: &[u8],
    ) -> Result<LiveSource, String> {
        let state: SourceState = crate::checkpoint::decode(bytes)?;
        let mut source = LiveSource::new(shared, commands);
        {
            let mut catalog = source.shared.catalog_mut();
            for (index, record) in state.workflows.into_iter().enumerate() {
                let id = catalog
                    .admit(Workflow::from(record))
                    .map_err(|rejections| {
                        let reasons: Vec<String> =
                            rejections.iter().map(|r| r.to_string()).collect();
                        format!("a saved workflow is refused now: {}", reasons.join("; "))
                    })?;
                if id as usize != index {
                    return Err(format!("workflow {index} came back as id {id}"));
                }
            }
        }
        source.buffer = state.buffer;
        source.seq = state.seq;
        source.released = state.released;
        source.pending = state.pending.into_iter().collect();
        source.ready = state.ready;
        source.lifecycle = TaskLifecycle::from_parts((state.live, state.completed));
        {
            let mut counters = source.shared.counters();
            let kind = |name: &str| KINDS.iter().copied().find(|kind| *kind == name);
            for (name, count) in state.accepted {
                if let Some(kind) = kind(&name) {
                    counters.accepted.insert(kind, count);
                }
            }
            for (name, count) in state.rejected {
                if let Some(kind) = kind(&name) {
                    counters.rejected.insert(kind, count);
                }
            }
            for (name, count) in state.refused_when_applied {
                if let Some(kind) = kind(&name) {
                    counters.refused_when_applied.insert(kind, count);
                }
            }
        }
        source.shared.view_mut().snapshot_newest = source.newest();
        source.publish_counts();
        Ok(source)
    }

    /// The newest record time the source holds (applied, released or buffered).
    fn newest(&self) -> Option<Time> {
        match (self.buffer.max_seen(), self.released) {
            (Some(seen), Some(released)) => Some(seen.max(released)),
            (seen, released) => seen.or(released),
        }
    }

    /// Counts are published before a request is answered, so a client that reads
    /// `/v1/status` after its POST returns sees what that POST buffered.
    fn handle(&mut self, command: Command) {
        if matches!(
            command,
            Command::Workflow { .. } | Command::Samples { .. } | Command::Events { .. }
        ) {
            self.unsaved = true;
        }
        match command {
            Command::Workflow {
                workflow,
                arrival,
                reply,
            } => {
                let result = self.admit(workflow, arrival);
                self.publish_counts();
                let _ = reply.send(result);
            }
            Command::Samples {
                records,
                refused,
                reply,
            } => {
                let result = self.samples(records, refused);
                self.publish_counts();
                let _ = reply.send(result);
            }
            Command::Events {
                events,
                refused,
                reply,
            } => {
                let result = self.events(events, refused);
                self.publish_counts();
                let _ = reply.send(result);
            }
            Command::Flush { reply } => {
                self.release(true);
                self.flush_waiters.push(reply);
            }
            Command::Shutdown => self.begin_stop(),
        }
        // A stop without a checkpoint applies what it holds before the streams close; what is
        // accepted while it drains (a request whose head came before the stop) goes the same
        // way, where it sat in a buffer released no more, answered 200 and never applied.
        if self.stopping && !self.keep_buffer_at_stop {
            self.release(true);
        }
        self.publish_counts();
    }

    /// Why `time` can no longer be accepted, if it cannot; `newest` is the newest time seen
    /// so far in the request being checked. Also refused: a time more than a day ahead of this
    /// host's clock. The service's time never goes back, so one such record (a clock set
    /// wrong, milliseconds sent as seconds) would have every later record refused as late,
    /// and a checkpoint would keep it so across restarts.
    fn too_late(&self, time: Time, newest: Option<Time>) -> Option<String> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        if time > now_ms.saturating_add(MAX_AHEAD_OF_CLOCK_MS) {
            return Some(format!(
                "time {} is more than a day ahead of this host's clock ({}); the service's time \
                 never goes back, so taking it would refuse every later record",
                format_seconds(time),
                format_seconds(now_ms)
            ));
        }
        if let Some(released) = self.released {
            if time <= released {
                return Some(format!(
                    "time {} is not after {}, the last event time already applied",
                    format_seconds(time),
                    format_seconds(released)
                ));
            }
        }
        if let Some(newest) = newest {
            if time < newest.saturating_sub(self.lateness_ms) {
                return Some(format!(
                    "time {} is more than the allowed lateness behind {} already seen",
                    format_seconds(time),
                    format_seconds(newest)
                ));
            }
        }
        None
    }

    fn admit(&mut self, workflow: Workflow, arrival: Option<Time>) -> Result<Accepted, Refusal> {
        let file = workflow.path.clone();
        if let Some(time) = arrival {
            if let Some(reason) = self.too_late(time, None) {
                let rejections = vec![Rejection::whole_file(
                    file,
                    RejectKind::OutOfOrder,
                    format!("arrival {reason}"),
                )];
                self.shared.counters().reject("workflow", 1, &rejections);
                return Err(Refusal::unprocessable(rejections));
            }
        }
        let admitted = self.shared.catalog_mut().admit(workflow);
        let id = match admitted {
            Ok(id) => id,
            Err(rejections) => {
                let status = if rejections.iter().any(|r| r.kind == RejectKind::DuplicateId) {
                    409
                } else {
                    422
                };
                self.shared.counters().reject("workflow", 1, &rejections);
                return Err(Refusal::listing(status, rejections));
            }
        };
        let tasks = self
            .shared
            .catalog()
            .workflows
            .get(id as usize)
            .map_or(0, |entry| entry.specs.len());
        for task in 0..tasks as u32 {
            self.pending.insert(TaskKey { workflow: id, task }, arrival);
        }
        self.shared.counters().accept("workflow", 1);
        let released_epochs = self.release(false);
        Ok(Accepted {
            accepted: tasks,
            buffered: self.buffer.len(),
            released_epochs,
        })
    }

    fn samples(
        &mut self,
        records: Vec<(u64, MetricRecord)>,
        mut rejections: BodyRejections,
    ) -> Result<Accepted, Refusal> {
        let mut samples = Vec::with_capacity(records.len());
        let mut newest = self.buffer.max_seen();
        {
            let catalog = self.shared.catalog();
            for &(line, ref record) in &records {
                let Some(device) = catalog.device_id(&record.device) else {
                    rejections.push(Rejection::at_line(
                        METRICS_BODY,
                        line,
                        RejectKind::UnknownDevice,
                        format!("device '{}' is not in the platform", record.device),
                    ));
                    continue;
                };
                if let Some(reason) = self.too_late(record.time, newest) {
                    rejections.push(Rejection::at_line(
                        METRICS_BODY,
                        line,
                        RejectKind::OutOfOrder,
                        reason,
                    ));
                    continue;
                }
                newest = Some(newest.map_or(record.time, |n| n.max(record.time)));
                samples.push((
                    record.time,
                    Sample {
                        device,
                        resource: record.resource,
                        value: record.value.min(MAX_UTILISATION),
                    },
                ));
            }
        }
        if !rejections.is_empty() {
            // In the body's order, whoever found them.
            let records = rejections.records();
            self.shared
                .counters()
                .reject("metric", records, rejections.listed());
            return Err(Refusal::of_body(rejections));
        }
        let accepted = samples.len();
        for (time, sample) in samples {
            self.park(time, Item::Sample(sample));
        }
        self.shared.counters().accept("metric", accepted as u64);
        let released_epochs = self.release(false);
        Ok(Accepted {
            accepted,
            buffered: self.buffer.len(),
            released_epochs,
        })
    }

    fn events(
        &mut self,
        events: Vec<(u64, TaskEvent)>,
        mut rejections: BodyRejections,
    ) -> Result<Accepted, Refusal> {
        let mut newest = self.buffer.max_seen();
        {
            let catalog = self.shared.catalog();
            for (line, event) in &events {
                let refuse = |kind, reason| Rejection::at_line(EVENTS_BODY, *line, kind, reason);
                if let Err((kind, reason)) = TaskLifecycle::check_names(&catalog, event) {
                    rejections.push(refuse(kind, reason));
                    continue;
                }
                if let Some(reason) = self.too_late(event.time, newest) {
                    rejections.push(refuse(RejectKind::OutOfOrder, reason));
                    continue;
                }
                newest = Some(newest.map_or(event.time, |n| n.max(event.time)));
            }
        }
        if !rejections.is_empty() {
            let records = rejections.records();
            self.shared
                .counters()
                .reject("event", records, rejections.listed());
            return Err(Refusal::of_body(rejections));
        }
        let accepted = events.len();
        for (line, event) in events {
            if event.kind == EventKind::Arrival {
                self.schedule_arrival(&event);
            }
            self.park(event.time, Item::Event(line, event));
        }
        self.shared.counters().accept("event", accepted as u64);
        let released_epochs = self.release(false);
        Ok(Accepted {
            accepted,
            buffered: self.buffer.len(),
            released_epochs,
        })
    }

    /// An arrival event brings pending tasks' arrival to its time (or earlier, if they already
    /// have an earlier one), as `run`'s first pass over the event logs does.
    fn schedule_arrival(&mut self, event: &TaskEvent) {
        let catalog = self.shared.catalog();
        let Some(workflow) = catalog.workflow_id(&event.workflow) else {
            return;
        };
        let keys: Vec<TaskKey> = match &event.task {
            Some(task) => catalog
                .task_key(&event.workflow, task)
                .into_iter()
                .collect(),
            None => self
                .pending
                .range(
                    TaskKey { workflow, task: 0 }..=TaskKey {
                        workflow,
                        task: u32::MAX,
                    },
                )
                .map(|(key, _)| *key)
                .collect(),
        };
        drop(catalog);
        for key in keys {
            if let Some(at) = self.pending.get_mut(&key) {
                *at = Some(at.map_or(event.time, |t| t.min(event.time)));
            }
        }
    }

    fn park(&mut self, time: Time, item: Item) {
        self.seq += 1;
        // Checked beforehand against the same bound, so this cannot refuse.
        let _ = self.buffer.push(time, self.seq, item);
    }

    /// Moves what is ready (everything, with `all`) from the buffer into epochs; returns how
    /// many epochs it made.
    fn release(&mut self, all: bool) -> usize {
        let watermark = if all {
            None
        } else {
            match self.buffer.max_seen() {
                Some(newest) => Some(newest.saturating_sub(self.lateness_ms)),
                None => return 0,
            }
        };
        let mut items: Vec<(Time, Item)> = Vec::new();
        loop {
            let next = if all {
                self.buffer.pop_any()
            } else {
                self.buffer.pop_ready()
            };
            match next {
                Some(item) => items.push(item),
                None => break,
            }
        }
        // Arrivals with a time due by now, by time; those without one join the first epoch.
        let mut arrivals: BTreeMap<Time, Vec<TaskKey>> = BTreeMap::new();
        let mut due = Vec::new();
        for (key, at) in &self.pending {
            if let Some(time) = at {
                if watermark.is_none_or(|w| *time <= w) {
                    arrivals.entry(*time).or_default().push(*key);
                    due.push(*key);
                }
            }
        }
        let mut next_epoch: Vec<TaskKey> = Vec::new();
        if all || !items.is_empty() || !arrivals.is_empty() {
            for (key, at) in &self.pending {
                if at.is_none() {
                    next_epoch.push(*key);
                    due.push(*key);
                }
            }
        }
        for key in due {
            self.pending.remove(&key);
        }
        let mut times: Vec<Time> = items.iter().map(|(time, _)| *time).collect();
        times.extend(arrivals.keys().copied());
        times.sort_unstable();
        times.dedup();
        if times.is_empty() && !next_epoch.is_empty() {
            times.push(match self.released {
                Some(released) => released.saturating_add(1),
                None => self.buffer.max_seen().unwrap_or(0),
            });
        }
        let mut items = items.into_iter().peekable();
        let mut made = 0;
        for time in times {
            let mut arriving = arrivals.remove(&time).unwrap_or_default();
            if made == 0 {
                arriving.append(&mut next_epoch);
                arriving.sort_unstable();
            }
            let mut samples = Vec::new();
            let mut events = Vec::new();
            while items.peek().is_some_and(|(t, _)| *t == time) {
                match items.next() {
                    Some((_, Item::Sample(sample))) => samples.push(sample),
                    Some((_, Item::Event(line, event))) => events.push((line, event)),
                    None => break,
                }
            }
            self.ready.push_back(Released {
                time,
                arriving,
                samples,
                events,
            });
            self.released = Some(time);
            made += 1;
        }
        made
    }

    /// Applies a released epoch to the task lifecycle and turns it into the engine's batch.
    fn build(&mut self, released: Released) -> (Time, InputBatch) {
        let mut batch = InputBatch::default();
        {
            let catalog = self.shared.catalog();
            for key in released.arriving {
                self.lifecycle
                    .apply(&catalog, key, Change::Arrive, &mut batch);
            }
        }
        batch.samples = released.samples;
        for (line, event) in released.events {
            self.apply_event(line, &event, &mut batch);
        }
        (released.time, batch)
    }

    fn publish_counts(&self) {
        let mut view = self.shared.view_mut();
        view.buffered = self.buffer.len();
        view.queued_epochs = self.ready.len();
        view.live_tasks = self.lifecycle.live_count();
        view.pending_tasks = self.pending.len();
    }

    fn apply_event(&mut self, line: u64, event: &TaskEvent, batch: &mut InputBatch) {
        let catalog = self.shared.catalog();
        match self.lifecycle.validate(&catalog, event) {
            Ok(Some((key, change))) => self.lifecycle.apply(&catalog, key, change, batch),
            Ok(None) => {}
            Err((kind, reason)) => {
                let rejection = Rejection::at_line(EVENTS_BODY, line, kind, reason);
                self.shared
                    .counters()
                    .refuse_when_applied("event", rejection);
            }
        }
    }
}

/// How often an idle source wakes to see whether it was asked to stop.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// Why the live source failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveSourceError {
    /// Its state could not be encoded for a checkpoint.
    #[error("cannot encode the service's inputs for a checkpoint: {0}")]
    Encode(String),
}

impl BatchSource for LiveSource {
    type Error = LiveSourceError;

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, LiveSourceError> {
        let workflows = self
            .shared
            .catalog()
            .workflows
            .iter()
            .map(|entry| WorkflowRecord::from(&entry.workflow))
            .collect();
        let (live, completed) = self.lifecycle.parts();
        let (accepted, rejected, refused_when_applied) = {
            let counters = self.shared.counters();
            let owned = |map: &BTreeMap<&'static str, u64>| {
                map.iter()
                    .map(|(kind, count)| (kind.to_string(), *count))
                    .collect::<Vec<_>>()
            };
            (
                owned(&counters.accepted),
                owned(&counters.rejected),
                owned(&counters.refused_when_applied),
            )
        };
        // Borrowed where it is large, so the buffer is not copied to be encoded.
        #[derive(serde::Serialize)]
        struct Borrowed<'a> {
            workflows: Vec<WorkflowRecord>,
            buffer: &'a Reorder<Item>,
            seq: u64,
            released: Option<Time>,
            pending: Vec<(TaskKey, Option<Time>)>,
            ready: &'a VecDeque<Released>,
            live: Vec<(TaskKey, Lifecycle)>,
            completed: Vec<(u32, Vec<bool>)>,
            accepted: Vec<(String, u64)>,
            rejected: Vec<(String, u64)>,
            refused_when_applied: Vec<(String, u64)>,
        }
        let bytes = crate::checkpoint::encode(&Borrowed {
            workflows,
            buffer: &self.buffer,
            seq: self.seq,
            released: self.released,
            pending: self.pending.iter().map(|(k, v)| (*k, *v)).collect(),
            ready: &self.ready,
            live,
            completed,
            accepted,
            rejected,
            refused_when_applied,
        })
        .map_err(LiveSourceError::Encode)?;
        self.shared.view_mut().snapshot_newest = self.newest();
        self.unsaved = false;
        Ok(Some(bytes))
    }

    fn holds_unsaved_input(&self) -> bool {
        self.unsaved
    }

    fn live_collections(&self) -> InputBatch {
        self.lifecycle.live_collections(&self.shared.catalog())
    }

    fn next_batch(&mut self) -> Result<Option<(Time, InputBatch)>, LiveSourceError> {
        loop {
            // Take what producers sent meanwhile without waiting, so requests are answered
            // between epochs rather than after a long flush.
            loop {
                match self.commands.try_recv() {
                    Ok(command) => self.handle(command),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.begin_stop();
                        break;
                    }
                }
            }
            if let Some(released) = self.ready.pop_front() {
                let epoch = self.build(released);
                self.publish_counts();
                return Ok(Some(epoch));
            }
            // Nothing is queued: every epoch released so far has completed.
            for waiter in self.flush_waiters.drain(..) {
                let _ = waiter.send(());
            }
            if self.stopping {
                return Ok(None);
            }
            match self.commands.recv_timeout(IDLE_POLL) {
                Ok(command) => self.handle(command),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.begin_stop(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::input::parse_platform;
    use crate::serve::state::Settings;
    use augur_dataflows::contention_forecast::AnomalyPolicy;
    use augur_dataflows::types::Resource;

    fn service() -> (LiveSource, std::sync::mpsc::Sender<Command>) {
        let platform =
            parse_platform("[[device]]\nid = 'd'\ncores = 4\n", "p.toml").expect("a platform");
        let settings = Settings {
            horizon_s: 600.0,
            capacity_target: 1.0,
            risk: 1.0,
            anomaly: AnomalyPolicy::Ignore,
            lateness_ms: 60_000,
            policy: "predictive".to_string(),
            max_line_bytes: 1 << 20,
        };
        let shared = Arc::new(Shared::new(Catalog::new(platform), settings));
        let (sender, receiver) = std::sync::mpsc::channel();
        (LiveSource::new(shared, receiver), sender)
    }

    fn sample(source: &mut LiveSource, time: Time) -> Result<Accepted, Refusal> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        source.handle(Command::Samples {
            records: vec![(
                1,
                MetricRecord {
                    time,
                    device: "d".to_string(),
                    resource: Resource::Cpu,
                    value: 0.5,
                },
            )],
            refused: BodyRejections::new(),
            reply,
        });
        answer.recv().expect("an answer")
    }

    /// A sample accepted while a stop without a checkpoint drains is applied before the end,
    /// as those buffered before the stop are (it was answered 200 and then lost).
    #[test]
    fn a_sample_accepted_while_stopping_is_applied_before_the_end() {
        let (mut source, _sender) = service();
        sample(&mut source, 1_000_000).expect("accepted");
        source.handle(Command::Shutdown);
        sample(&mut source, 1_010_000).expect("accepted while draining");
        let mut times = Vec::new();
        while let Some((time, batch)) = source.next_batch().expect("no failure") {
            if !batch.samples.is_empty() {
                times.push(time);
            }
        }
        assert_eq!(times, vec![1_000_000, 1_010_000]);
    }
}
