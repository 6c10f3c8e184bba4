//! Turns input files into epochs: merges metric logs, task events and workflow arrivals in
//! event-time order, validates every record against the catalog and the task lifecycle, and
//! accounts for every record read (accepted, or rejected with file, line and reason).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::sync::Arc;

use augur_dataflows::types::{DeviceId, InputBatch, Sample, TaskKey, Time};

use crate::catalog::Catalog;
use crate::engine::BatchSource;
use crate::input::events::{EventPosition, EventReader, TaskEvent};
use crate::input::metrics::{LineOutcome, MetricPosition, MetricReader};
use crate::input::reorder::Reorder;
use crate::input::{InputStats, RejectKind, Rejection};
use crate::lifecycle::{Change, Lifecycle, TaskLifecycle};

/// Utilisation above this many times capacity is taken as this much: over-commit is kept, but
/// one absurd reading (1e308) must not blind the forecasts for thousands of samples.
pub const MAX_UTILISATION: f64 = 10.0;

/// Why the feed stopped early.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// `--strict` and a record was rejected.
    #[error("rejected input (--strict): {0}")]
    Strict(Rejection),
    /// The rejection log could not be written.
    #[error("cannot write the rejection log: {0}")]
    RejectLog(std::io::Error),
    /// The feed's state could not be encoded for a checkpoint.
    #[error("cannot encode the input positions: {0}")]
    Checkpoint(String),
}

/// Where rejections go: one JSON object per line.
pub struct RejectLog {
    out: Box<dyn Write + Send>,
    /// Rejections written so far.
    pub count: u64,
    strict: bool,
}

impl RejectLog {
    /// A log writing to `out`; with `strict`, the first rejection stops the run.
    pub fn new(out: Box<dyn Write + Send>, strict: bool) -> RejectLog {
        RejectLog {
            out,
            count: 0,
            strict,
        }
    }

    /// Records one rejection.
    pub fn record(&mut self, rejection: Rejection) -> Result<(), FeedError> {
        self.count += 1;
        let line = serde_json::to_string(&rejection)
            .map_err(|e| FeedError::RejectLog(std::io::Error::other(e)))?;
        writeln!(self.out, "{line}").map_err(FeedError::RejectLog)?;
        if self.strict && rejection.kind != RejectKind::DroppedField {
            let _ = self.out.flush();
            return Err(FeedError::Strict(rejection));
        }
        Ok(())
    }

    /// Flushes the log.
    pub fn flush(&mut self) -> Result<(), FeedError> {
        self.out.flush().map_err(FeedError::RejectLog)
    }
}

/// A record parked in a reorder buffer, with the line it came from.
#[derive(serde::Serialize, serde::Deserialize)]
struct Parked<T> {
    line: u64,
    item: T,
}

/// One input file's records in event-time order.
#[derive(serde::Serialize, serde::Deserialize)]
struct Ordered<T> {
    path: String,
    reorder: Reorder<Parked<T>>,
    head: Option<(Time, Parked<T>)>,
    seq: u64,
    /// Not kept in checkpoints: a log that had ended when one was taken may have grown since
    /// (a log being appended to), and a resumed run reads on from where it stopped; where it
    /// has not grown, its end is found again at once. Kept, a checkpoint taken within the
    /// lateness of a log's end (the feed reads that far ahead) stopped the resumed run there.
    #[serde(skip)]
    exhausted: bool,
    /// What the lateness is measured within, as a refusal says it: the file, or one
    /// machine's rows of an Alibaba file (each its own stream). Set from the reader, so not
    /// kept in checkpoints.
    #[serde(skip)]
    within: String,
    stats: InputStats,
    /// The time of the last epoch the feed handed over: no record before it can still be
    /// applied at its own time. In a run that reads its logs through, a record the reorder
    /// buffer admits is never behind it; after a resume, a log that had ended (its buffer
    /// flushed past the lateness) and grew since can hold such rows, which are refused here
    /// rather than applied at a later time than their own.
    floor: Option<Time>,
    /// The epoch at `floor` itself was handed over before this stream was read: a stream new
    /// to a resumed run (a machine an Alibaba log gained) has none of its records in it, so
    /// its records at that time are behind too. Cleared at the next epoch.
    #[serde(skip)]
    floor_closed: bool,
}

impl<T> Ordered<T> {
    fn new(path: String, lateness_ms: i64) -> Self {
        Ordered {
            path,
            reorder: Reorder::new(lateness_ms),
            head: None,
            seq: 0,
            exhausted: false,
            within: "in this file".into(),
            stats: InputStats::default(),
            floor: None,
            floor_closed: false,
        }
    }

    /// Names the stream by its file as this run spells it: a resume may name a log otherwise
    /// (`./m.csv` for `m.csv`), and its counts and read extents go by the name given now.
    fn named(mut self, path: &str) -> Self {
        path.clone_into(&mut self.path);
        self
    }

    /// Says that the stream is one machine's rows of its file, if it is.
    fn within(mut self, machine: Option<&str>) -> Self {
        self.within = match machine {
            Some(machine) => format!("for machine '{machine}' in this file"),
            None => "in this file".into(),
        };
        self
    }

    /// Parks a record, or says how far behind the stream it is.
    fn park(&mut self, time: Time, line: u64, item: T) -> Result<(), Rejection> {
        // Only where the lateness would take it: one behind the lateness is refused as such.
        let behind = self.floor.filter(|floor| {
            (time < *floor || (self.floor_closed && time == *floor)) && self.reorder.admits(time)
        });
        if let Some(floor) = behind {
            return Err(Rejection::at_line(
                self.path.clone(),
                line,
                RejectKind::OutOfOrder,
                format!(
                    "time {} is {} {}, which the run had passed when it was checkpointed \
                     (rows appended to a log after its end was read)",
                    crate::input::time::format_seconds(time),
                    if time == floor { "at" } else { "behind" },
                    crate::input::time::format_seconds(floor)
                ),
            ));
        }
        self.seq += 1;
        self.reorder
            .push(time, self.seq, Parked { line, item })
            .map_err(|max_seen| {
                Rejection::at_line(
                    self.path.clone(),
                    line,
                    RejectKind::OutOfOrder,
                    format!(
                        "time {} is more than the allowed lateness behind {} already seen {}",
                        crate::input::time::format_seconds(time),
                        crate::input::time::format_seconds(max_seen),
                        self.within
                    ),
                )
            })
    }

    /// Reads from `reader` until a record is ready (returning its time) or the input ends;
    /// `admit` parks what one input line yields and says how it counts.
    fn peek<I>(
        &mut self,
        reader: &mut impl Iterator<Item = I>,
        log: &mut RejectLog,
        mut admit: impl FnMut(&mut Self, I) -> Admitted,
    ) -> Result<Option<Time>, FeedError> {
        loop {
            if self.take_ready() {
                return Ok(self.head.as_ref().map(|(time, _)| *time));
            }
            if self.exhausted {
                return Ok(None);
            }
            let Some(line) = reader.next() else {
                self.exhausted = true;
                continue;
            };
            let admitted = admit(self, line);
            self.stats.read += 1;
            if admitted.accepted {
                self.stats.accepted += 1;
                self.stats.dropped_fields += admitted.dropped_fields;
            } else {
                self.stats.rejected += 1;
            }
            for rejection in admitted.rejections {
                log.record(rejection)?;
            }
        }
    }

    fn take_ready(&mut self) -> bool {
        if self.head.is_none() {
            self.head = if self.exhausted {
                self.reorder.pop_any()
            } else {
                self.reorder.pop_ready()
            };
        }
        self.head.is_some()
    }
}

/// How one input line counts, and what was wrong with it.
struct Admitted {
    accepted: bool,
    dropped_fields: u64,
    rejections: Vec<Rejection>,
}

impl Admitted {
    fn accepted(dropped_fields: u64, rejections: Vec<Rejection>) -> Admitted {
        Admitted {
            accepted: true,
            dropped_fields,
            rejections,
        }
    }

    /// A record refused here after its reader had kept it: the fields the reader dropped from
    /// it are not logged, since `dropped_field` lines are only for accepted records and a
    /// refused record is one line of `rejected.jsonl`, its refusal.
    fn rejected(mut rejections: Vec<Rejection>) -> Admitted {
        rejections.retain(|rejection| rejection.kind != RejectKind::DroppedField);
        Admitted {
            accepted: false,
            dropped_fields: 0,
            rejections,
        }
    }
}

/// Parks the samples of one metric line whose devices the platform knows. The line is accepted
/// if any sample survives; bad fields the reader dropped are then counted, not fatal (and not
/// logged when the line is refused).
fn admit_metric_line(
    devices: &mut DeviceNames,
    ordered: &mut Ordered<Sample>,
    outcome: LineOutcome,
) -> Admitted {
    let mut rejections = outcome.rejections;
    let dropped = rejections
        .iter()
        .filter(|r| r.kind == RejectKind::DroppedField)
        .count() as u64;
    // The usual line: one reading of a known device, parked without gathering a batch.
    if let [record] = outcome.records.as_slice() {
        if let Some(device) = devices.get(&record.device) {
            let sample = Sample {
                device,
                resource: record.resource,
                value: record.value.min(MAX_UTILISATION),
            };
            if let Err(rejection) = ordered.park(record.time, outcome.line, sample) {
                rejections.push(rejection);
                return Admitted::rejected(rejections);
            }
            return Admitted::accepted(dropped, rejections);
        }
    }
    let mut samples = Vec::new();
    let mut time = None;
    for record in outcome.records {
        match devices.get(&record.device) {
            Some(device) => {
                time = Some(record.time);
                samples.push(Sample {
                    device,
                    resource: record.resource,
                    value: record.value.min(MAX_UTILISATION),
                });
            }
            None => {
                // One line is one record: name each unknown device once, not once per resource.
                let reason = format!("device '{}' is not in the platform", record.device);
                if !rejections.iter().any(|r| r.reason == reason) {
                    rejections.push(Rejection::at_line(
                        ordered.path.clone(),
                        outcome.line,
                        RejectKind::UnknownDevice,
                        reason,
                    ));
                }
            }
        }
    }
    let Some(time) = time else {
        return Admitted::rejected(rejections);
    };
    for sample in samples {
        // All samples of a line share its time: either all park or the first refuses.
        if let Err(rejection) = ordered.park(time, outcome.line, sample) {
            rejections.push(rejection);
            return Admitted::rejected(rejections);
        }
    }
    Admitted::accepted(dropped, rejections)
}

/// Device names to ids, for the metric path: every sample names its device, and the catalog's
/// map hashes with SipHash, which cost more than the rest of admitting a sample. Keys are only
/// the platform's names (a log's unknown names are looked up, never added), so a fast hash
/// without DoS resistance cannot be made to degrade: a probe compares with at most the
/// platform's names.
///
/// Logs list a timestamp's devices in the same order every time (a collector walks its hosts,
/// a device writes its resources in a row), so before hashing, the name is compared with the
/// device of the previous line and the one after it.
struct DeviceNames {
    index: HashMap<Box<str>, DeviceId, BuildHasherDefault<NameHasher>>,
    /// Per id, its name when the id is the one the name resolves to (the first device of a
    /// name), so a guess never returns a device the catalog would not.
    names: Vec<Option<Box<str>>>,
    /// The device of the previous lookup that found one.
    last: usize,
}

impl DeviceNames {
    /// Every device of the catalog; the first of two devices with one name wins, as in
    /// [`Catalog::device_id`].
    fn of(catalog: &Catalog) -> DeviceNames {
        let mut index: HashMap<Box<str>, DeviceId, BuildHasherDefault<NameHasher>> =
            HashMap::default();
        let mut names = Vec::new();
        for device in 0..catalog.classes.len() as DeviceId {
            let name = catalog.device_name(device);
            let first = !index.contains_key(name);
            if first {
                index.insert(name.into(), device);
            }
            names.push(first.then(|| name.into()));
        }
        DeviceNames {
            index,
            names,
            last: 0,
        }
    }

    fn get(&mut self, name: &str) -> Option<DeviceId> {
        for guess in [self.last, self.last + 1] {
            if let Some(Some(known)) = self.names.get(guess) {
                if **known == *name {
                    self.last = guess;
                    return Some(guess as DeviceId);
                }
            }
        }
        let found = self.index.get(name).copied();
        if let Some(device) = found {
            self.last = device as usize;
        }
        found
    }
}

/// FxHash's mixing step (rustc's hasher) over 8-byte words: a few cycles for a short name.
#[derive(Default)]
struct NameHasher {
    hash: u64,
}

impl NameHasher {
    fn mix(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.hash
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte));
    }
}

/// The metric side: a reader and its ordered records.
struct MetricInput {
    reader: MetricReader,
    ordered: Ordered<Sample>,
}

/// The event side: a reader and its ordered events.
struct EventInput {
    reader: EventReader,
    ordered: Ordered<ParkedEvent>,
}

/// An event waiting in the reorder buffer, with the reasons of the optional fields its reader
/// dropped: they are logged (and counted) only if the event is applied, so that an event
/// refused when its time comes (an impossible transition) is one line of `rejected.jsonl`.
#[derive(serde::Serialize, serde::Deserialize)]
struct ParkedEvent {
    event: TaskEvent,
    dropped: Vec<String>,
}

/// What a checkpoint keeps of a feed: per input stream where its reader stands and what its
/// reorder buffer holds, the arrivals still to come, the lifecycle of every task, and how
/// many rejections were logged. Restored with readers reopened at those positions, the feed
/// reads on exactly where it stopped and accounts for every record once.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct FeedState {
    metrics: Vec<(MetricPosition, Ordered<Sample>)>,
    events: Vec<(EventPosition, Ordered<ParkedEvent>)>,
    arrivals: BTreeMap<Time, Vec<TaskKey>>,
    live: Vec<(TaskKey, Lifecycle)>,
    completed: Vec<(u32, Vec<bool>)>,
    rejections: u64,
}

impl FeedState {
    /// Decodes a [`Feed`]'s snapshot.
    pub fn decode(bytes: &[u8]) -> Result<FeedState, String> {
        crate::checkpoint::decode(bytes)
    }

    /// Where each metric stream's reader stands, with the file it reads (as named), in the
    /// order the feed was given them. A file that could not be opened has no stream.
    pub fn metric_positions(&self) -> Vec<(String, MetricPosition)> {
        self.metrics
            .iter()
            .map(|(position, ordered)| (ordered.path.clone(), position.clone()))
            .collect()
    }

    /// Where each event stream's reader stands, with its file, as for metrics.
    pub fn event_positions(&self) -> Vec<(String, EventPosition)> {
        self.events
            .iter()
            .map(|(position, ordered)| (ordered.path.clone(), *position))
            .collect()
    }
}

/// [`FeedState`] by reference, to encode without copying the buffers (same layout).
#[derive(serde::Serialize)]
struct FeedStateRef<'a> {
    metrics: Vec<(MetricPosition, &'a Ordered<Sample>)>,
    events: Vec<(EventPosition, &'a Ordered<ParkedEvent>)>,
    arrivals: &'a BTreeMap<Time, Vec<TaskKey>>,
    live: Vec<(TaskKey, Lifecycle)>,
    completed: Vec<(u32, Vec<bool>)>,
    rejections: u64,
}

/// Every input of a run, as a [`BatchSource`].
pub struct Feed {
    catalog: Arc<Catalog>,
    devices: DeviceNames,
    metrics: Vec<MetricInput>,
    events: Vec<EventInput>,
    arrivals: BTreeMap<Time, Vec<TaskKey>>,
    lifecycle: TaskLifecycle,
    log: RejectLog,
}

impl Feed {
    /// A feed over opened readers. `arrivals` gives each workflow's (or task's) arrival time.
    pub fn new(
        catalog: Arc<Catalog>,
        metrics: Vec<MetricReader>,
        events: Vec<EventReader>,
        arrivals: BTreeMap<Time, Vec<TaskKey>>,
        lateness_ms: i64,
        log: RejectLog,
    ) -> Feed {
        Feed {
            devices: DeviceNames::of(&catalog),
            catalog,
            metrics: metrics
                .into_iter()
                .map(|reader| MetricInput {
                    ordered: Ordered::new(reader.path().to_string(), lateness_ms)
                        .within(reader.machine()),
                    reader,
                })
                .collect(),
            events: events
                .into_iter()
                .map(|reader| EventInput {
                    ordered: Ordered::new(reader.path().to_string(), lateness_ms),
                    reader,
                })
                .collect(),
            arrivals,
            lifecycle: TaskLifecycle::default(),
            log,
        }
    }

    /// A feed resumed from `state` over readers reopened at its positions (in its order), and
    /// a log whose file was cut back to what the checkpoint had written.
    ///
    /// A metric reader marked new (`true`) is a stream the checkpointed run did not have: a
    /// machine that first appeared in an Alibaba log after the checkpoint. It starts at the
    /// time the run had reached, so its rows from before are refused as passed, each with its
    /// line, as rows appended behind that time to any log are.
    pub fn resume(
        catalog: Arc<Catalog>,
        metrics: Vec<(MetricReader, bool)>,
        events: Vec<EventReader>,
        state: FeedState,
        lateness_ms: i64,
        mut log: RejectLog,
    ) -> Result<Feed, String> {
        let resumed = metrics.iter().filter(|(_, new)| !new).count();
        if resumed != state.metrics.len() || events.len() != state.events.len() {
            return Err(format!(
                "the checkpoint read {} metric and {} event streams, these inputs open {} and {}",
                state.metrics.len(),
                state.events.len(),
                resumed,
                events.len()
            ));
        }
        log.count = state.rejections;
        let reached = (state.metrics.iter().map(|(_, ordered)| ordered.floor))
            .chain(state.events.iter().map(|(_, ordered)| ordered.floor))
            .max()
            .flatten();
        let mut saved = state.metrics.into_iter();
        let mut inputs = Vec::with_capacity(metrics.len());
        for (reader, new) in metrics {
            let ordered = if new {
                let mut ordered = Ordered::new(reader.path().to_string(), lateness_ms);
                ordered.floor = reached;
                ordered.floor_closed = true;
                ordered
            } else {
                match saved.next() {
                    Some((_, ordered)) => ordered,
                    None => return Err("fewer saved metric streams than counted".to_string()),
                }
            };
            inputs.push(MetricInput {
                ordered: ordered.named(reader.path()).within(reader.machine()),
                reader,
            });
        }
        Ok(Feed {
            devices: DeviceNames::of(&catalog),
            catalog,
            metrics: inputs,
            events: events
                .into_iter()
                .zip(state.events)
                .map(|(reader, (_, ordered))| EventInput {
                    ordered: ordered.named(reader.path()).within(None),
                    reader,
                })
                .collect(),
            arrivals: state.arrivals,
            lifecycle: TaskLifecycle::from_parts((state.live, state.completed)),
            log,
        })
    }

    /// Per input path, how many records were read, accepted and rejected (summed over the
    /// streams a file was split into).
    pub fn stats(&self) -> BTreeMap<String, InputStats> {
        let metrics = self.metrics.iter().map(|m| &m.ordered);
        let events = self.events.iter().map(|e| &e.ordered);
        let mut totals: BTreeMap<String, InputStats> = BTreeMap::new();
        for ordered in metrics {
            totals
                .entry(ordered.path.clone())
                .or_default()
                .add(&ordered.stats);
        }
        for ordered in events {
            totals
                .entry(ordered.path.clone())
                .or_default()
                .add(&ordered.stats);
        }
        totals
    }

    /// The rejection log, to flush and count at the end.
    pub fn log_mut(&mut self) -> &mut RejectLog {
        &mut self.log
    }

    /// Tasks arrived and not completed.
    pub fn live_tasks(&self) -> usize {
        self.lifecycle.live_count()
    }

    /// The earliest time any metric or event input holds (reading ahead as needed).
    pub fn earliest_input_time(&mut self) -> Result<Option<Time>, FeedError> {
        let mut earliest = None;
        for index in 0..self.metrics.len() {
            if let Some(time) = self.peek_metric(index)? {
                earliest = Some(earliest.map_or(time, |e: Time| e.min(time)));
            }
        }
        for index in 0..self.events.len() {
            if let Some(time) = self.peek_event(index)? {
                earliest = Some(earliest.map_or(time, |e: Time| e.min(time)));
            }
        }
        Ok(earliest)
    }

    /// Sets the arrival time of workflows that the events do not give one.
    pub fn set_default_arrivals(&mut self, time: Time, tasks: Vec<TaskKey>) {
        if !tasks.is_empty() {
            self.arrivals.entry(time).or_default().extend(tasks);
        }
    }

    fn peek_metric(&mut self, index: usize) -> Result<Option<Time>, FeedError> {
        let devices = &mut self.devices;
        let input = &mut self.metrics[index];
        input
            .ordered
            .peek(&mut input.reader, &mut self.log, |ordered, outcome| {
                admit_metric_line(devices, ordered, outcome)
            })
    }

    fn peek_event(&mut self, index: usize) -> Result<Option<Time>, FeedError> {
        let input = &mut self.events[index];
        let catalog = &self.catalog;
        input
            .ordered
            .peek(&mut input.reader, &mut self.log, |ordered, outcome| {
                // Names are checked as the line is read, so that its refusal comes in line
                // order (one found when its time came was logged after later lines' parse
                // errors, and `--strict` stopped at those); the lifecycle, which depends on
                // the events before it in time, is checked when the event is applied.
                let line = outcome.line;
                let dropped = outcome.dropped;
                let parked = outcome.event.and_then(|event| {
                    TaskLifecycle::check_names(catalog, &event).map_err(|(kind, reason)| {
                        Rejection::at_line(ordered.path.clone(), line, kind, reason)
                    })?;
                    let time = event.time;
                    let dropped = dropped.into_iter().map(|r| r.reason).collect();
                    ordered.park(time, line, ParkedEvent { event, dropped })
                });
                match parked {
                    // Its dropped fields are counted and logged when it is applied.
                    Ok(()) => Admitted::accepted(0, Vec::new()),
                    Err(rejection) => Admitted::rejected(vec![rejection]),
                }
            })
    }

    /// Applies one event to the lifecycle, adding its changes to the batch; logs the fields
    /// its reader dropped if it is applied, its refusal alone if not.
    fn apply_event(
        &mut self,
        index: usize,
        line: u64,
        parked: ParkedEvent,
        batch: &mut InputBatch,
    ) -> Result<(), FeedError> {
        let ParkedEvent { event, dropped } = parked;
        match self.lifecycle.validate(&self.catalog, &event) {
            Ok(change) => {
                if let Some((key, change)) = change {
                    self.lifecycle.apply(&self.catalog, key, change, batch);
                }
                let input = &mut self.events[index].ordered;
                input.stats.dropped_fields += dropped.len() as u64;
                let path = input.path.clone();
                for reason in dropped {
                    self.log.record(Rejection::at_line(
                        path.clone(),
                        line,
                        RejectKind::DroppedField,
                        reason,
                    ))?;
                }
                Ok(())
            }
            Err((kind, reason)) => {
                let input = &mut self.events[index].ordered;
                input.stats.accepted = input.stats.accepted.saturating_sub(1);
                input.stats.rejected += 1;
                let path = input.path.clone();
                self.log
                    .record(Rejection::at_line(path, line, kind, reason))
            }
        }
    }
}

/// Epochs the engine may feed from files before it waits for them (see
/// [`BatchSource::pipeline_depth`]): files never block and nothing feeds back from the
/// outputs, so only the latency of an epoch bounds it (a group of 64 epochs of 200 samples
/// takes a few milliseconds).
const PIPELINE_DEPTH: usize = 64;

impl BatchSource for Feed {
    type Error = FeedError;

    fn pipeline_depth(&self) -> usize {
        PIPELINE_DEPTH
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, FeedError> {
        // What the log holds must be on disk before a checkpoint says how long it is.
        self.log.flush()?;
        let (live, completed) = self.lifecycle.parts();
        let state = FeedStateRef {
            metrics: self
                .metrics
                .iter()
                .map(|m| (m.reader.position(), &m.ordered))
                .collect(),
            events: self
                .events
                .iter()
                .map(|e| (e.reader.position(), &e.ordered))
                .collect(),
            arrivals: &self.arrivals,
            live,
            completed,
            rejections: self.log.count,
        };
        crate::checkpoint::encode(&state)
            .map(Some)
            .map_err(FeedError::Checkpoint)
    }

    fn read_extents(&self) -> Vec<(String, u64)> {
        let metrics = self
            .metrics
            .iter()
            .map(|m| (m.ordered.path.clone(), m.reader.offset()));
        let events = self
            .events
            .iter()
            .map(|e| (e.ordered.path.clone(), e.reader.offset()));
        metrics.chain(events).collect()
    }

    fn live_collections(&self) -> InputBatch {
        self.lifecycle.live_collections(&self.catalog)
    }

    fn next_batch(&mut self) -> Result<Option<(Time, InputBatch)>, FeedError> {
        let mut next: Option<Time> = self.arrivals.keys().next().copied();
        for index in 0..self.metrics.len() {
            if let Some(time) = self.peek_metric(index)? {
                next = Some(next.map_or(time, |n| n.min(time)));
            }
        }
        for index in 0..self.events.len() {
            if let Some(time) = self.peek_event(index)? {
                next = Some(next.map_or(time, |n| n.min(time)));
            }
        }
        let Some(time) = next else {
            return Ok(None);
        };
        for ordered in self.metrics.iter_mut().map(|m| &mut m.ordered) {
            ordered.floor = Some(time);
            ordered.floor_closed = false;
        }
        for ordered in self.events.iter_mut().map(|e| &mut e.ordered) {
            ordered.floor = Some(time);
        }

        let mut batch = InputBatch::default();
        if let Some(tasks) = self.arrivals.remove(&time) {
            for key in tasks {
                self.lifecycle
                    .apply(&self.catalog, key, Change::Arrive, &mut batch);
            }
        }
        for index in 0..self.metrics.len() {
            while self.peek_metric(index)? == Some(time) {
                let ordered = &mut self.metrics[index].ordered;
                if let Some((_, parked)) = ordered.head.take() {
                    batch.samples.push(parked.item);
                }
                // The rest of the epoch that is already buffered and ready, without a peek
                // per record; `peek_metric` then reads on for any still in the file.
                while let Some(parked) = ordered.reorder.pop_ready_at(time) {
                    batch.samples.push(parked.item);
                }
            }
        }
        for index in 0..self.events.len() {
            while self.peek_event(index)? == Some(time) {
                if let Some((_, parked)) = self.events[index].ordered.head.take() {
                    self.apply_event(index, parked.line, parked.item, &mut batch)?;
                }
            }
        }
        Ok(Some((time, batch)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::platform::parse_platform;

    #[test]
    fn device_names_guess_and_hash_to_what_the_catalog_says() {
        let text: String = ["a", "bb", "c", "dd", "e"]
            .iter()
            .map(|id| format!("[[device]]\nid = \"{id}\"\ncores = 4\n\n"))
            .collect();
        let catalog = Catalog::new(parse_platform(&text, "p.toml").expect("valid platform"));
        let mut names = DeviceNames::of(&catalog);
        // In order twice (the guesses), backwards, repeats, unknowns, and a jump past the end.
        let lookups = [
            "a", "a", "bb", "c", "dd", "e", "a", "bb", "e", "dd", "c", "x", "c", "", "e", "e", "f",
            "bb", "a", "A", "dd ",
        ];
        for name in lookups {
            assert_eq!(names.get(name), catalog.device_id(name), "{name:?}");
        }
    }
}
