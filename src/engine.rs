//! The driver of augur's dataflow: starts timely workers, wires the inputs and the probe, feeds
//! epochs from a [`BatchSource`] and hands every change of the partition map to a [`MapSink`].
//!
//! Only the worker with global index 0 (always in process 0) reads inputs and writes outputs;
//! every other worker closes its inputs at once and computes its share of the forecasts and task
//! states. Epochs are event times, so the result does not depend on the number of workers or
//! processes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use augur_dataflows::checkpoint::StatePart;
use augur_dataflows::contention_forecast::SeriesForecast;
use augur_dataflows::types::{
    Alternative, Completion, DeviceId, Edge, InputBatch, Resculpt, Resource, Sample, TaskKey,
    TaskSpec, Time,
};
use augur_dataflows::{augur, EngineConfig, EngineInputs};
use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::operators::{Exchange, Input as _, Inspect, Probe};
use timely::dataflow::{InputHandleVec, ProbeHandle, StreamVec};

use crate::cluster::{self, LostPeer};
pub use crate::epoch_group::{EpochGroup, EpochReport};

/// One change of the partition map: `diff` is +1 when the task is placed on the device and -1
/// when it leaves it.
pub type MapUpdate = ((TaskKey, DeviceId), isize);

/// One change of a series' forecast: +1 for the new value, -1 for the one it replaces.
pub type ForecastUpdate = (((DeviceId, Resource), SeriesForecast), isize);

/// One change of a duration estimate, `((task kind, device class), ms)`.
pub type DurationUpdate = (((u32, u32), u64), isize);

/// One change of the warm-up advice, `(capability class, devices to add)`.
pub type PrewarmUpdate = ((u32, u32), isize);

/// One change of the re-sculpted tasks: a task run as one of its alternatives, or a queued task
/// run ahead of its placement order.
pub type VariantUpdate = (Resculpt, isize);

/// Applies one epoch's consolidated changes of a keyed collection (one value per key) to its
/// current contents: a retraction removes the value it names, an insertion sets the new one.
pub fn apply_changes<K: Ord + Copy, V: PartialEq + Copy>(
    current: &mut BTreeMap<K, V>,
    changes: &[((K, V), isize)],
) {
    // Consolidated changes come sorted by key: then each key's changes are settled with one
    // lookup (its last insertion wins, else a retraction of its current value removes it),
    // where the two passes below look a changed key up three times.
    if changes
        .windows(2)
        .all(|pair| (pair[0].0).0 <= (pair[1].0).0)
    {
        let mut index = 0;
        while index < changes.len() {
            let key = (changes[index].0).0;
            let end = index
                + changes[index..]
                    .iter()
                    .take_while(|((k, _), _)| *k == key)
                    .count();
            let group = &changes[index..end];
            index = end;
            match group.iter().rev().find(|(_, diff)| *diff > 0) {
                Some(&((_, value), _)) => {
                    current.insert(key, value);
                }
                None => {
                    if let std::collections::btree_map::Entry::Occupied(entry) = current.entry(key)
                    {
                        let held = *entry.get();
                        if group
                            .iter()
                            .any(|&((_, value), diff)| diff < 0 && value == held)
                        {
                            entry.remove();
                        }
                    }
                }
            }
        }
        return;
    }
    for &((key, value), diff) in changes {
        if diff < 0 && current.get(&key) == Some(&value) {
            current.remove(&key);
        }
    }
    for &((key, value), diff) in changes {
        if diff > 0 {
            current.insert(key, value);
        }
    }
}

/// Collects a collection's updates, with their times, for the driver to drain once the probe
/// has passed them, and makes the probe wait for them.
fn capture<'scope, D: Clone + 'static>(
    collection: VecCollection<'scope, Time, D>,
    probe: &ProbeHandle<Time>,
) -> Rc<RefCell<Vec<(D, Time, isize)>>> {
    let captured = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&captured);
    collection
        .inspect_batch(move |_time, updates| {
            sink.borrow_mut().extend_from_slice(updates);
        })
        .probe_with(probe);
    captured
}

/// The epochs fed since the probe was last waited on, in time order: each epoch's time, when
/// it was fed, and whether it asked for a checkpoint.
struct InFlight {
    epochs: Vec<(Time, Instant, bool)>,
}

/// Updates a capture keeps room for across groups, whatever the last group held: groups end
/// wherever the source ran dry, so their sizes vary, and room for only the last one's cost a
/// regrowth (a copy of everything captured so far) at most groups; past this, room for the
/// last group only, so that one huge epoch does not pin its size for the rest of the run.
const KEEP_ROOM: usize = 1 << 16;

/// Takes what a capture holds, leaving it room for as many updates as it had room for (up to
/// [`KEEP_ROOM`]), or as it holds.
fn take_captured<D>(captured: &RefCell<Vec<D>>) -> Vec<D> {
    let mut captured = captured.borrow_mut();
    let room = captured.len().max(captured.capacity().min(KEEP_ROOM));
    std::mem::replace(&mut *captured, Vec::with_capacity(room))
}

/// Collects a stream's records (without their times) for the driver to drain after each epoch,
/// and makes the probe wait for them.
fn capture_stream<'scope, D: Clone + 'static>(
    stream: StreamVec<'scope, Time, D>,
    probe: &ProbeHandle<Time>,
) -> Rc<RefCell<Vec<D>>> {
    let captured = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&captured);
    stream
        .inspect(move |record| sink.borrow_mut().push(record.clone()))
        .probe_with(probe);
    captured
}

/// Gathers one checkpoint from the dataflow's parts, the source and the sink, and stores it.
fn take_checkpoint<Src: BatchSource, Snk: MapSink>(
    time: Time,
    epochs: u64,
    mut dataflow: Vec<StatePart>,
    source: &mut Src,
    sink: &mut Snk,
    store: &mut dyn CheckpointStore,
) -> Result<(), EngineError<Src::Error, Snk::Error>> {
    dataflow.sort_by_key(StatePart::sort_key);
    let state = source
        .snapshot()
        .map_err(EngineError::Source)?
        .ok_or_else(|| EngineError::Checkpoint("this input cannot be checkpointed".into()))?;
    let read = source.read_extents();
    let sink = sink
        .snapshot()
        .map_err(EngineError::Sink)?
        .ok_or_else(|| EngineError::Checkpoint("this output cannot be checkpointed".into()))?;
    let snapshot = EngineSnapshot {
        time,
        epochs,
        dataflow,
        read,
        source: state,
        sink,
    };
    store.save(&snapshot).map_err(EngineError::Checkpoint)
}

/// The dataflow's inputs as the driver feeds them: every epoch advances all of them to its
/// time, sends, then seals the time by advancing all to the next one and flushing.
struct Feeders {
    samples: InputHandleVec<Time, Sample>,
    completions: InputHandleVec<Time, Completion>,
    tasks: InputSession<Time, (TaskKey, TaskSpec), isize>,
    started: InputSession<Time, (TaskKey, DeviceId), isize>,
    edges: InputSession<Time, Edge, isize>,
    alternatives: InputSession<Time, Alternative, isize>,
    requests: InputHandleVec<Time, ()>,
    restore: InputHandleVec<Time, StatePart>,
}

impl Feeders {
    fn advance_to(&mut self, time: Time) {
        self.samples.advance_to(time);
        self.completions.advance_to(time);
        self.tasks.advance_to(time);
        self.started.advance_to(time);
        self.edges.advance_to(time);
        self.alternatives.advance_to(time);
        self.requests.advance_to(time);
        self.restore.advance_to(time);
    }

    /// Sends a batch at the current time.
    fn send(&mut self, mut batch: InputBatch) {
        // The epoch's samples go as the one container they already are.
        self.samples.send_batch(&mut batch.samples);
        self.completions.send_batch(&mut batch.completions);
        for (record, diff) in batch.tasks {
            self.tasks.update(record, diff);
        }
        for (record, diff) in batch.started {
            self.started.update(record, diff);
        }
        for (record, diff) in batch.edges {
            self.edges.update(record, diff);
        }
        for (record, diff) in batch.alternatives {
            self.alternatives.update(record, diff);
        }
    }

    /// Closes `time` on every input; returns the time the probe must pass.
    fn seal(&mut self, time: Time) -> Time {
        let next = time.saturating_add(1);
        self.advance_to(next);
        self.samples.flush();
        self.completions.flush();
        self.tasks.flush();
        self.started.flush();
        self.edges.flush();
        self.alternatives.flush();
        self.requests.flush();
        self.restore.flush();
        next
    }
}

/// Where epochs come from (called on worker 0 only).
pub trait BatchSource {
    /// The error a source can end with.
    type Error: Send + 'static;
    /// The next epoch, in strictly increasing time order; `None` at the end of input.
    fn next_batch(&mut self) -> Result<Option<(Time, InputBatch)>, Self::Error>;

    /// The source's own state after the last batch it gave (input positions, buffers), for a
    /// checkpoint; `None`, the default, for a source that cannot be checkpointed.
    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, Self::Error> {
        Ok(None)
    }

    /// How far the source had read each of its files when it took its last snapshot: the
    /// file's name and its streams' furthest offset, one entry per stream (a file read as
    /// several streams is named once for each). A checkpoint store that holds a resume to
    /// the logs it was taken over hashes up to there. Empty, the default, for a source
    /// that reads no files.
    fn read_extents(&self) -> Vec<(String, u64)> {
        Vec::new()
    }

    /// For a source restored from a checkpoint: the contents of the plain input collections
    /// (tasks, started tasks, edges, alternatives) as they stood then, as insertions. The
    /// engine seeds the resumed dataflow with them.
    fn live_collections(&self) -> InputBatch {
        InputBatch::default()
    }

    /// Whether the source took input since its last snapshot that no epoch has carried yet
    /// (records it buffers, workflows it admitted): a run's last checkpoint is then taken even
    /// if no epoch was fed since the one before, so that a clean stop keeps them. `false`, the
    /// default, for a source whose state moves only with the epochs it gives.
    fn holds_unsaved_input(&self) -> bool {
        false
    }

    /// How many epochs the engine may feed before it waits for the first of them to complete
    /// and reports them to the sink (at least 1, the default). More than one lets the dataflow
    /// take several epochs per activation and pays the progress round trip once per group
    /// instead of once per epoch; the outputs per epoch are the same. Only a source whose next
    /// batch never waits for this run's own outputs (no feedback from the sink) and never
    /// blocks on the outside world should ask for more.
    fn pipeline_depth(&self) -> usize {
        1
    }

    /// Whether the next batch may be asked for before the sink has the outputs of the batches
    /// fed so far (within [`Self::pipeline_depth`]); `false` ends the group there, so that the
    /// next batch is made with every output in hand. A source fed back by its sink (the
    /// simulator) runs ahead only while no output could change what it does next.
    fn can_run_ahead(&self) -> bool {
        true
    }

    /// Whether the next batch (or the end of input) is in hand, so that asking for it now
    /// does not wait. The engine stops collecting a group at a batch not yet ready and runs the
    /// epochs it holds, instead of idling until the group is full: the dataflow then works
    /// while a source on a thread of its own makes the next batches. `true`, the default, for
    /// a source that makes its batches when asked.
    fn batch_ready(&mut self) -> bool {
        true
    }
}

/// Where the partition map's changes go (called on worker 0 only).
pub trait MapSink {
    /// The error a sink can fail with.
    type Error: Send + 'static;
    /// The net changes of the map at `time`, sorted; called once per epoch, even when empty,
    /// with how long the epoch took from feeding to completion.
    fn epoch(
        &mut self,
        time: Time,
        changes: &[MapUpdate],
        latency: Duration,
    ) -> Result<(), Self::Error>;

    /// The net changes of the series forecasts at `time`, sorted; called before [`Self::epoch`]
    /// for the same time, only when some forecast changed.
    fn forecasts(&mut self, _time: Time, _changes: &[ForecastUpdate]) -> Result<(), Self::Error> {
        Ok(())
    }

    /// The net changes of the duration estimates at `time`, sorted; called before
    /// [`Self::epoch`] for the same time, only when some estimate changed.
    fn durations(&mut self, _time: Time, _changes: &[DurationUpdate]) -> Result<(), Self::Error> {
        Ok(())
    }

    /// The net changes of the warm-up advice at `time`, sorted; called before [`Self::epoch`]
    /// for the same time, only when the advice changed.
    fn prewarm(&mut self, _time: Time, _changes: &[PrewarmUpdate]) -> Result<(), Self::Error> {
        Ok(())
    }

    /// The net changes of which tasks run as one of their alternatives, or ahead of their
    /// placement order, at `time`, sorted;
    /// called before [`Self::epoch`] for the same time, only when something changed.
    fn variants(&mut self, _time: Time, _changes: &[VariantUpdate]) -> Result<(), Self::Error> {
        Ok(())
    }

    /// The changes of a group of epochs, as the engine captured them: by default handed out per
    /// epoch, consolidated, to the calls above in their order (see [`EpochReport::replay`]).
    /// A sink that hands its work to another thread takes the group whole, so the engine's
    /// worker does not pay for the split.
    fn group(&mut self, group: EpochGroup) -> Result<(), Self::Error>
    where
        Self: Sized,
    {
        for report in group.split() {
            report.replay(self)?;
        }
        Ok(())
    }

    /// The sink's own state after the last epoch it was given (counters, current map; its
    /// outputs flushed), for a checkpoint; `None`, the default, for a sink that cannot be
    /// checkpointed.
    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, Self::Error> {
        Ok(None)
    }
}

/// A checkpoint of a run, as the engine takes it at the end of the epoch at `time`: the
/// stateful operators' state and the source's and the sink's own (opaque to the engine).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct EngineSnapshot {
    /// The last epoch applied.
    pub time: Time,
    /// Epochs fed up to and including it.
    pub epochs: u64,
    /// The operators' state, in [`StatePart::sort_key`] order.
    pub dataflow: Vec<StatePart>,
    /// [`BatchSource::read_extents`] as the source's snapshot stood. Not stored: it is what
    /// the store hashes the logs up to, and a resumed source reads its positions from `source`.
    #[serde(skip)]
    pub read: Vec<(String, u64)>,
    /// [`BatchSource::snapshot`].
    pub source: Vec<u8>,
    /// [`MapSink::snapshot`].
    pub sink: Vec<u8>,
}

/// Where checkpoints go (worker 0 only).
pub trait CheckpointStore: Send {
    /// Keeps a checkpoint; called once its epoch's changes have reached the sink.
    fn save(&mut self, snapshot: &EngineSnapshot) -> Result<(), String>;
}

/// Checkpointing of one run: how often, where to, and what to resume from.
pub struct Checkpointing {
    /// A checkpoint after every this many epochs (counted from the start of the input, so a
    /// resumed run checkpoints at the same epochs as an uninterrupted one); 0 for none.
    pub every: u64,
    /// Also a checkpoint when the source ends, unless its last epoch took one: a service
    /// stopped cleanly resumes from where it stopped rather than from its last periodic
    /// checkpoint. It is taken by one more epoch that carries nothing but the request.
    pub at_end: bool,
    /// Where they go.
    pub store: Box<dyn CheckpointStore>,
    /// A checkpoint to resume from. The caller restores its source and sink from the
    /// snapshot's own parts in `make_io`; the engine restores the dataflow.
    pub resume: Option<EngineSnapshot>,
}

/// How the workers are laid out.
// Made once per run: boxing the cluster's agreement to shrink the other variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Workers {
    /// Threads in this process.
    Threads(usize),
    /// One process of a cluster (timely's own cluster mode).
    Cluster {
        /// Worker threads in each process.
        threads: usize,
        /// This process's index.
        process: usize,
        /// `host:port` of every process, in process order.
        addresses: Vec<String>,
        /// How long to wait for every peer to be connected before giving up.
        connect_timeout: Duration,
        /// How long a peer may send nothing during the run before it is given up as lost
        /// (stopped, hung or cut off); `None`: wait on it for ever.
        peer_timeout: Option<Duration>,
        /// A hash of what every process must agree on to compute the same map (the settings
        /// and inputs every process reads), compared when they connect along with the worker
        /// counts: processes that differ refuse to start rather than make another map (each
        /// part with what it covers, for the message).
        agreement: cluster::Agreement,
    },
}

impl Workers {
    /// The same workers, a cluster's processes agreeing on `agreement` (see
    /// `Workers::Cluster::agreement`).
    pub fn agreeing_on(self, agreement: cluster::Agreement) -> Workers {
        match self {
            Workers::Cluster {
                threads,
                process,
                addresses,
                connect_timeout,
                peer_timeout,
                ..
            } => Workers::Cluster {
                threads,
                process,
                addresses,
                connect_timeout,
                peer_timeout,
                agreement,
            },
            threads => threads,
        }
    }
}

/// What went wrong while running the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError<S, K> {
    /// timely could not start (a cluster peer was unreachable, an address was taken, ...).
    #[error("could not start the workers: {0}")]
    Start(String),
    /// The processes of a cluster were started with different worker counts, settings or
    /// inputs (a usage error: each would compute another map, or timely would fail).
    #[error("{0}")]
    Disagree(String),
    /// A worker thread died.
    #[error("a worker failed: {0}")]
    Worker(String),
    /// A peer process went away (killed, crashed, unreachable) during the run.
    #[error("lost peer {0}; this process stops too")]
    PeerLost(String),
    /// A peer process stopped on an error of its own (its output says which); the run's
    /// results are not whole.
    #[error("peer {0} stopped on an error (its own output says which); this run is not whole")]
    PeerFailed(String),
    /// The source failed.
    #[error(transparent)]
    Source(S),
    /// The sink failed.
    #[error(transparent)]
    Sink(K),
    /// A checkpoint could not be taken or kept.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}

/// Counts from a finished run (worker 0's view).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Epochs fed.
    pub epochs: u64,
}

/// What a run hands back on worker 0's process: counts, and the source and sink to finish.
pub type EngineResult<Src, Snk> = Result<
    Option<(EngineStats, Src, Snk)>,
    EngineError<<Src as BatchSource>::Error, <Snk as MapSink>::Error>,
>;

/// Runs the engine to the end of the source. `make_io` is called once, on worker 0, to open the
/// source and the sink there; both come back when the run ends, so the caller can finish them.
pub fn run_engine<Src, Snk, F>(
    workers: Workers,
    config: EngineConfig,
    make_io: F,
) -> EngineResult<Src, Snk>
where
    Src: BatchSource + Send + 'static,
    Snk: MapSink + Send + 'static,
    F: Fn() -> (Src, Snk) + Send + Sync + 'static,
{
    run_engine_checkpointed(workers, config, None, make_io)
}

/// The workers' communication, set up: for a cluster, its processes connected and found to
/// agree. A caller that connects before it opens its outputs ([`connect_workers`], then
/// [`run_engine_connected`]) leaves them alone when the processes disagree or a peer never
/// comes.
///
/// Dropped without being run (the caller failed between connecting and running: an input
/// refused under `--strict`, an output folder it cannot make), it starts the workers with
/// nothing to do and lets them end (see its `Drop`).
pub struct Connected {
    /// Taken by [`run_engine_connected`]; still here only when it was never run.
    communication: Option<cluster::Communication>,
    lost: LostPeer,
    peer_timeout: Option<Duration>,
}

impl Drop for Connected {
    fn drop(&mut self) {
        // timely's network threads wait to hand their queues to this process's workers and
        // panic when the workers are never built, and joining them then panicked on the
        // caller's thread (exit 101, the caller's own error never printed). Built and ended
        // at once, the workers let those threads end as at any other end of a run, and the
        // peers see this process's connections close.
        if let Some(communication) = self.communication.take() {
            // Never run means the caller failed: the peers must not take the end for success.
            cluster::note_failure();
            let quietly = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if let Ok(guards) = cluster::execute(communication, |_| ()) {
                    drop(guards.join());
                }
            }));
            drop(quietly);
        }
    }
}

/// Sets up `workers`' communication (see [`Connected`]).
pub fn connect_workers<S, K>(workers: Workers) -> Result<Connected, EngineError<S, K>> {
    // A cluster is connected by augur rather than by timely, so that a missing peer ends in an
    // error after `connect_timeout` instead of an endless retry loop, and a lost one is named.
    let lost = LostPeer::default();
    let peer_timeout = match &workers {
        Workers::Cluster { peer_timeout, .. } => *peer_timeout,
        Workers::Threads(_) => None,
    };
    let communication = cluster::communication(workers, &lost).map_err(|error| match error {
        cluster::CommunicationError::Connect(error @ cluster::ConnectError::Differs { .. }) => {
            EngineError::Disagree(error.to_string())
        }
        other => EngineError::Start(other.to_string()),
    })?;
    Ok(Connected {
        communication: Some(communication),
        lost,
        peer_timeout,
    })
}

/// [`run_engine`], taking checkpoints and resuming from one as `checkpointing` says.
pub fn run_engine_checkpointed<Src, Snk, F>(
    workers: Workers,
    config: EngineConfig,
    checkpointing: Option<Checkpointing>,
    make_io: F,
) -> EngineResult<Src, Snk>
where
    Src: BatchSource + Send + 'static,
    Snk: MapSink + Send + 'static,
    F: Fn() -> (Src, Snk) + Send + Sync + 'static,
{
    let connected = connect_workers(workers)?;
    run_engine_connected(connected, config, checkpointing, make_io)
}

/// [`run_engine_checkpointed`] over workers already connected.
pub fn run_engine_connected<Src, Snk, F>(
    connected: Connected,
    config: EngineConfig,
    checkpointing: Option<Checkpointing>,
    make_io: F,
) -> EngineResult<Src, Snk>
where
    Src: BatchSource + Send + 'static,
    Snk: MapSink + Send + 'static,
    F: Fn() -> (Src, Snk) + Send + Sync + 'static,
{
    // Only worker 0 takes it; the others never look.
    let checkpointing = std::sync::Mutex::new(checkpointing);
    let mut connected = connected;
    let Some(communication) = connected.communication.take() else {
        return Err(EngineError::Start(
            "the workers were run already".to_string(),
        ));
    };
    let (lost, peer_timeout) = (connected.lost.clone(), connected.peer_timeout);
    drop(connected);
    let run = move || -> EngineResult<Src, Snk> {
        let guards = cluster::execute(communication, move |worker| {
            let index = worker.index();
            let peers = worker.peers();
            let mut samples = InputHandleVec::new();
            let mut completions = InputHandleVec::new();
            let mut requests = InputHandleVec::new();
            let mut restore = InputHandleVec::new();
            let probe = ProbeHandle::new();
            let (
                tasks,
                started,
                edges,
                alternatives,
                changes,
                forecast_changes,
                duration_changes,
                prewarm_changes,
                variant_changes,
                state_parts,
            ) = worker.dataflow::<Time, _, _>(|scope| {
                let (tasks_in, tasks) = scope.new_collection();
                let (started_in, started) = scope.new_collection();
                let (edges_in, edges) = scope.new_collection();
                let (alternatives_in, alternatives) = scope.new_collection();
                let inputs = EngineInputs {
                    samples: scope.input_from(&mut samples),
                    completions: scope.input_from(&mut completions),
                    tasks,
                    started,
                    edges,
                    alternatives,
                    checkpoints: scope.input_from(&mut requests),
                    restore: scope.input_from(&mut restore),
                };
                let outputs = augur(inputs, &config);
                // Captured updates keep their times: the driver may feed several epochs before
                // it waits on the probe, and splits what it captured by epoch. The map and the
                // duration model live on worker 0; forecasts live on the worker that owns the device and are sent to
                // worker 0 to be reported.
                // With one worker they are there already: no exchange operator to copy them.
                let forecasts = if peers > 1 {
                    outputs.forecasts.inner.exchange(|_| 0).as_collection()
                } else {
                    outputs.forecasts
                };
                (
                    tasks_in,
                    started_in,
                    edges_in,
                    alternatives_in,
                    capture(outputs.partition, &probe),
                    capture(forecasts, &probe),
                    capture(outputs.durations, &probe),
                    capture(outputs.prewarm, &probe),
                    capture(outputs.variants, &probe),
                    capture_stream(outputs.state.exchange(|_| 0), &probe),
                )
            });

            let mut inputs = Feeders {
                samples,
                completions,
                tasks,
                started,
                edges,
                alternatives,
                requests,
                restore,
            };
            if index != 0 {
                return None;
            }
            let (mut source, mut sink) = make_io();
            let mut stats = EngineStats::default();
            let mut checkpointing = checkpointing.lock().ok().and_then(|mut c| c.take());
            let mut resumed_time = None;
            if let Some(snapshot) = checkpointing.as_mut().and_then(|c| c.resume.take()) {
                resumed_time = Some(snapshot.time);
                // The resumed dataflow is seeded at the checkpoint's time: the operators take
                // their state back and the plain collections are re-inserted; what that epoch
                // emits only rebuilds collections the sink already holds, so it is dropped.
                let time = snapshot.time;
                inputs.advance_to(time);
                for part in snapshot.dataflow {
                    inputs.restore.send(part);
                }
                inputs.send(source.live_collections());
                let next = inputs.seal(time);
                while probe.less_than(&next) {
                    worker.step();
                }
                changes.borrow_mut().clear();
                forecast_changes.borrow_mut().clear();
                duration_changes.borrow_mut().clear();
                prewarm_changes.borrow_mut().clear();
                variant_changes.borrow_mut().clear();
                state_parts.borrow_mut().clear();
                stats.epochs = snapshot.epochs;
            }
            let depth = source.pipeline_depth().max(1);
            let mut in_flight = InFlight {
                epochs: Vec::with_capacity(depth),
            };
            let mut exhausted = false;
            // Whether an epoch was fed since the last checkpoint (or the resumed one).
            let mut unsaved = false;
            // The time of the last epoch fed (or the resumed checkpoint's).
            let mut reached: Option<Time> = resumed_time;
            let outcome = loop {
                // Feed up to `depth` epochs; an epoch that takes a checkpoint ends the group,
                // since the source's snapshot must be taken before it reads any further.
                in_flight.epochs.clear();
                let mut failed = None;
                let mut next = *inputs.samples.time();
                while !exhausted && in_flight.epochs.len() < depth {
                    // Epochs in hand are run rather than held while the source catches up.
                    if !in_flight.epochs.is_empty() && !source.batch_ready() {
                        break;
                    }
                    let (time, batch) = match source.next_batch() {
                        Ok(Some(batch)) => batch,
                        Ok(None) => {
                            exhausted = true;
                            break;
                        }
                        Err(error) => {
                            failed = Some(EngineError::Source(error));
                            break;
                        }
                    };
                    let started_at = Instant::now();
                    // Sources promise increasing times; an earlier one is folded into the next
                    // open epoch rather than dropped, since the input cannot go back.
                    let time = time.max(*inputs.samples.time());
                    let fed = stats.epochs + in_flight.epochs.len() as u64 + 1;
                    let checkpoint_now = checkpointing
                        .as_ref()
                        .is_some_and(|c| c.every > 0 && fed.is_multiple_of(c.every));
                    inputs.advance_to(time);
                    if checkpoint_now {
                        inputs.requests.send(());
                    }
                    inputs.send(batch);
                    next = inputs.seal(time);
                    in_flight.epochs.push((time, started_at, checkpoint_now));
                    if checkpoint_now || !source.can_run_ahead() {
                        break;
                    }
                }
                let final_checkpoint = exhausted
                    && failed.is_none()
                    && (unsaved || source.holds_unsaved_input())
                    && checkpointing.as_ref().is_some_and(|c| c.at_end);
                // The final checkpoint's request needs an epoch of its own, with no input. It is
                // no epoch of the run: not counted, not shown to the sink, and the checkpoint
                // holds the last real epoch's time, so that a service stopped cleanly and
                // resumed reads as one never stopped (it read one epoch more, a millisecond on).
                let checkpoint_only = in_flight.epochs.is_empty() && final_checkpoint;
                if checkpoint_only {
                    let time = *inputs.samples.time();
                    inputs.advance_to(time);
                    inputs.requests.send(());
                    next = inputs.seal(time);
                    in_flight.epochs.push((time, Instant::now(), true));
                }
                if in_flight.epochs.is_empty() {
                    break failed.map_or(Ok(()), Err);
                }
                unsaved = !in_flight.epochs.last().is_some_and(|(_, _, c)| *c);
                // With peers, parked, not spinning, while they finish their share: a message
                // from them wakes this thread, and a spinning driver took the core from them,
                // the feed and the sink (2 workers on 2 cores: 18% less CPU, BENCHMARKS.md).
                // Alone, it has nothing to wait for but its own work.
                while probe.less_than(&next) {
                    if peers > 1 {
                        worker.step_or_park(None);
                    } else {
                        worker.step();
                    }
                }
                let done = Instant::now();
                let group = EpochGroup {
                    epochs: in_flight
                        .epochs
                        .iter()
                        .map(|(time, started_at, _)| {
                            (*time, done.saturating_duration_since(*started_at))
                        })
                        .collect(),
                    forecasts: take_captured(&forecast_changes),
                    durations: take_captured(&duration_changes),
                    prewarm: take_captured(&prewarm_changes),
                    variants: take_captured(&variant_changes),
                    map: take_captured(&changes),
                };
                // An epoch with no input changes nothing; should one have, it is shown as an
                // epoch after all.
                let shown = !checkpoint_only || !group.is_empty();
                if shown {
                    stats.epochs += group.epochs.len() as u64;
                    reached = in_flight
                        .epochs
                        .last()
                        .map(|(time, _, _)| *time)
                        .or(reached);
                    if let Err(error) = sink.group(group) {
                        break Err(EngineError::Sink(error));
                    }
                }
                let parts: Vec<StatePart> = state_parts.borrow_mut().drain(..).collect();
                let checkpoint_now = in_flight.epochs.last().is_some_and(|(_, _, c)| *c);
                if let (true, Some(checkpointing)) = (checkpoint_now, checkpointing.as_mut()) {
                    let last = in_flight.epochs.last().map_or(0, |(time, _, _)| *time);
                    let time = if checkpoint_only && !shown {
                        reached.unwrap_or(last)
                    } else {
                        last
                    };
                    let taken = take_checkpoint(
                        time,
                        stats.epochs,
                        parts,
                        &mut source,
                        &mut sink,
                        checkpointing.store.as_mut(),
                    );
                    if let Err(error) = taken {
                        break Err(error);
                    }
                }
                if let Some(error) = failed {
                    break Err(error);
                }
            };
            // Told to the peers as this process's connections close: a peer whose run ended
            // well would otherwise report success for a run this process failed.
            if outcome.is_err() {
                cluster::note_failure();
            }
            Some(outcome.map(|()| (stats, source, sink)))
        })
        .map_err(EngineError::Start)?;

        let mut result = None;
        for outcome in guards.join() {
            match outcome {
                Ok(Some(outcome)) => result = Some(outcome?),
                Ok(None) => {}
                // timely hands back the panic payload's Debug form, "Any { .. }", which says
                // nothing; the panic hook has already printed the message and where.
                Err(message) if message.starts_with("Any") => {
                    return Err(EngineError::Worker(
                        "a worker thread panicked (its message is above)".to_string(),
                    ))
                }
                Err(message) => return Err(EngineError::Worker(message)),
            }
        }
        Ok(result)
    };
    // timely's networking threads panic when a peer process goes away, and the panic reaches
    // this thread when their guards are joined; it becomes an error here, never a crash. The
    // run gets its own thread so that a worker left parked forever by a lost peer cannot hang
    // the process: once a peer is lost, the run has `LOST_PEER_GRACE` to end by itself.
    let (done, outcome) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("augur:engine".to_string())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                .unwrap_or_else(|panic| Err(EngineError::Worker(panic_message(&*panic))));
            // The receiver is gone only when the caller already gave up on a lost peer.
            let _ = done.send(result);
        });
    if let Err(error) = spawned {
        return Err(EngineError::Start(error.to_string()));
    }
    let mut lost_since: Option<Instant> = None;
    loop {
        match outcome.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(result)) => {
                return match lost.failed_peer() {
                    Some(peer) => Err(EngineError::PeerFailed(peer)),
                    None => Ok(result),
                }
            }
            Ok(Err(error)) => {
                // This process's own failure is the news, not the peer that ended after it.
                return Err(match (error, lost.get()) {
                    (EngineError::Source(e), _) => EngineError::Source(e),
                    (EngineError::Sink(e), _) => EngineError::Sink(e),
                    (error @ EngineError::Checkpoint(_), _) => error,
                    (_, Some(peer)) => EngineError::PeerLost(peer),
                    (error, None) => error,
                });
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(EngineError::Worker(
                    "the engine thread vanished".to_string(),
                ))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // A peer that stays silent is lost as one whose connection closed is, but at
                // once: its connection will not close to end the run by itself.
                if let Some(silent) = peer_timeout.and_then(|limit| lost.silent_for(limit)) {
                    return Err(EngineError::PeerLost(silent));
                }
                if let Some(peer) = lost.get() {
                    let since = *lost_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= LOST_PEER_GRACE {
                        return Err(EngineError::PeerLost(peer));
                    }
                }
            }
        }
    }
}

/// How long a run may go on after a peer's connection ended before it is given up as lost.
/// A peer also closes its connection at a clean end, after which the run ends in moments.
const LOST_PEER_GRACE: Duration = Duration::from_secs(10);

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown failure".to_string());
    format!("{message} (did a peer process exit or become unreachable?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule as first written: every matching retraction, then every insertion.
    fn two_passes(current: &mut BTreeMap<u32, u32>, changes: &[((u32, u32), isize)]) {
        for &((key, value), diff) in changes {
            if diff < 0 && current.get(&key) == Some(&value) {
                current.remove(&key);
            }
        }
        for &((key, value), diff) in changes {
            if diff > 0 {
                current.insert(key, value);
            }
        }
    }

    #[test]
    fn sorted_changes_apply_as_the_two_pass_rule() {
        let start: BTreeMap<u32, u32> = [(1, 10), (2, 20), (3, 30), (4, 40)].into();
        let cases: [&[((u32, u32), isize)]; 4] = [
            // Replaced, retracted, retracted with a stale value, inserted anew.
            &[
                ((1, 10), -1),
                ((1, 11), 1),
                ((2, 20), -1),
                ((3, 31), -1),
                ((5, 50), 1),
            ],
            // Two insertions for one key: the last wins.
            &[((4, 40), -1), ((4, 41), 1), ((4, 42), 1)],
            // Unsorted: the general path.
            &[((3, 33), 1), ((1, 10), -1), ((3, 30), -1)],
            &[],
        ];
        for changes in cases {
            let (mut fast, mut reference) = (start.clone(), start.clone());
            apply_changes(&mut fast, changes);
            two_passes(&mut reference, changes);
            assert_eq!(fast, reference, "{changes:?}");
        }
    }
}
