//! Task events (JSONL): workflows arriving, tasks starting and completing.
//!
//! One JSON object per line:
//! `{"time": 12.5, "kind": "start", "workflow": "montage", "task": "mProject_ID0000001",
//! "device": "edge-1", "duration": 3.0, "usage": {"cpu": 0.9}}`.
//! Only the shape of each event is checked here; whether the workflow, task and device exist,
//! and whether the event follows from the task's state, is the driver's business, since only it
//! holds the catalog.

use std::collections::BTreeMap;
use std::path::Path;

use augur_dataflows::types::{Resource, Time};
use serde::Serialize;
use serde_json::{Map, Value};

use super::lines::{file_lines, file_lines_at, text_lines, LinePosition, LineSource};
use super::rejection::{within_max_duration, InputStats, RejectKind, Rejection};
use super::short_number;
use super::time::{parse_seconds, parse_time_field};

/// What happened.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A workflow (or one task of it) was submitted.
    Arrival,
    /// A task started on a device.
    Start,
    /// A task finished.
    Complete,
}

impl EventKind {
    /// The name used in the input format.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Arrival => "arrival",
            EventKind::Start => "start",
            EventKind::Complete => "complete",
        }
    }

    /// Parses the name used in the input format.
    pub fn from_name(name: &str) -> Option<EventKind> {
        match name {
            "arrival" => Some(EventKind::Arrival),
            "start" => Some(EventKind::Start),
            "complete" => Some(EventKind::Complete),
            _ => None,
        }
    }
}

/// One well-formed event.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TaskEvent {
    /// When it happened.
    pub time: Time,
    /// What happened.
    pub kind: EventKind,
    /// The workflow's name (its file stem).
    pub workflow: String,
    /// The task's id; `None` only for the arrival of a whole workflow.
    pub task: Option<String>,
    /// The device; always present for `start`.
    pub device: Option<String>,
    /// Measured duration in seconds (finite, non-negative), when the event carries one.
    pub duration_s: Option<f64>,
    /// Measured utilisation per resource, keyed by canonical resource name (`cpu`, `memory`,
    /// `disk`, `network`); finite and non-negative, above 1 meaning over-commit.
    pub usage: BTreeMap<String, f64>,
}

/// The outcome of one non-blank line.
#[derive(Debug, Clone, PartialEq)]
pub struct EventOutcome {
    /// Its 1-based line number.
    pub line: u64,
    /// The event, or why the line was refused.
    pub event: Result<TaskEvent, Rejection>,
    /// Optional fields (duration, usage entries) dropped from an accepted event, one
    /// `DroppedField` rejection each: a bad measurement must not cost the start or completion
    /// it came with.
    pub dropped: Vec<Rejection>,
}

/// Where an [`EventReader`] stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EventPosition {
    /// In the file.
    pub lines: LinePosition,
    /// The reader's counts.
    pub stats: InputStats,
}

/// Streams the events of one file, line by line.
pub struct EventReader {
    path: String,
    max_line_bytes: usize,
    lines: LineSource,
    stats: InputStats,
}

impl EventReader {
    /// Opens an event file.
    pub fn open(path: &Path, max_line_bytes: usize) -> Result<EventReader, Rejection> {
        let lines = file_lines(path, max_line_bytes)?;
        Ok(EventReader::with_lines(
            path.display().to_string(),
            max_line_bytes,
            lines,
        ))
    }

    /// Reads events from text (for tests and fuzzing); `path` names it in rejections.
    pub fn from_text(text: &str, path: &str, max_line_bytes: usize) -> EventReader {
        EventReader::with_lines(
            path.to_string(),
            max_line_bytes,
            text_lines(text, max_line_bytes),
        )
    }

    fn with_lines(path: String, max_line_bytes: usize, lines: LineSource) -> EventReader {
        EventReader {
            path,
            max_line_bytes,
            lines,
            stats: InputStats::default(),
        }
    }

    /// How many bytes of its file it has read.
    pub fn offset(&self) -> u64 {
        self.lines.position().offset
    }

    /// Where reading stands and the counts so far, for a checkpoint.
    pub fn position(&self) -> EventPosition {
        EventPosition {
            lines: self.lines.position(),
            stats: self.stats,
        }
    }

    /// Opens an event file where a checkpoint's [`Self::position`] left it.
    pub fn open_at(
        path: &Path,
        max_line_bytes: usize,
        position: EventPosition,
    ) -> Result<EventReader, Rejection> {
        let lines = file_lines_at(path, max_line_bytes, position.lines)?;
        let mut reader = EventReader::with_lines(path.display().to_string(), max_line_bytes, lines);
        reader.stats = position.stats;
        Ok(reader)
    }

    /// Counts so far (blank lines are not records).
    pub fn stats(&self) -> InputStats {
        self.stats
    }

    /// The file being read.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Iterator for EventReader {
    type Item = EventOutcome;

    fn next(&mut self) -> Option<EventOutcome> {
        loop {
            let (line, text) = self.lines.next()?;
            let parsed = match text {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => parse_event(&text)
                    .map_err(|(kind, reason)| Rejection::at_line(&self.path, line, kind, reason)),
                Err(error) => Err(error.to_rejection(&self.path, line, self.max_line_bytes)),
            };
            let (event, dropped) = match parsed {
                Ok((event, problems)) => {
                    self.stats.count_accepted();
                    self.stats.dropped_fields += problems.len() as u64;
                    let dropped = problems
                        .into_iter()
                        .map(|(field, (kind, reason))| {
                            Rejection::at_line(
                                &self.path,
                                line,
                                RejectKind::DroppedField,
                                format!("dropped {field}: {reason} ({kind})"),
                            )
                        })
                        .collect();
                    (Ok(event), dropped)
                }
                Err(rejection) => {
                    self.stats.count_rejected();
                    (Err(rejection), Vec::new())
                }
            };
            return Some(EventOutcome {
                line,
                event,
                dropped,
            });
        }
    }
}

type Problem = (RejectKind, String);

fn schema(reason: String) -> Problem {
    (RejectKind::Schema, reason)
}

/// A dropped optional field: its name and what was wrong with it.
type Dropped = (String, Problem);

/// Parses and checks one event line: the event with the optional fields that had to be dropped,
/// or why the whole line is refused (a required field is missing or bad).
fn parse_event(text: &str) -> Result<(TaskEvent, Vec<Dropped>), Problem> {
    let value: Value = super::json::parse_record(text).map_err(|error| {
        if error.is_data() {
            // Well-formed, but an object names a key twice.
            schema(error.to_string())
        } else {
            (RejectKind::Parse, format!("invalid JSON: {error}"))
        }
    })?;
    let object = value
        .as_object()
        .ok_or_else(|| schema("an event must be a JSON object".to_string()))?;
    let time = event_time(object)?;
    let kind = match object.get("kind") {
        Some(Value::String(name)) => EventKind::from_name(name).ok_or_else(|| {
            (
                RejectKind::Parse,
                format!("unknown kind {name:?} (expected arrival, start or complete)"),
            )
        })?,
        Some(other) => return Err(schema(format!("kind {other} is not a string"))),
        None => return Err(schema("no kind".to_string())),
    };
    let workflow =
        name_field(object, "workflow")?.ok_or_else(|| schema("no workflow".to_string()))?;
    let task = name_field(object, "task")?;
    let device = name_field(object, "device")?;
    match kind {
        EventKind::Start if task.is_none() || device.is_none() => {
            return Err(schema(
                "a start event needs both task and device".to_string(),
            ));
        }
        EventKind::Complete if task.is_none() => {
            return Err(schema("a complete event needs a task".to_string()));
        }
        _ => {}
    }
    let mut dropped = Vec::new();
    let duration_s = match object.get("duration") {
        None | Some(Value::Null) => None,
        Some(value) => match amount("duration", value)
            .and_then(|duration| within_max_duration("duration", duration))
            .and_then(nonzero_duration)
        {
            Ok(duration) => Some(duration),
            Err(problem) => {
                dropped.push(("duration".to_string(), problem));
                None
            }
        },
    };
    let usage = usage(object, &mut dropped);
    let event = TaskEvent {
        time,
        kind,
        workflow,
        task,
        device,
        duration_s,
        usage,
    };
    Ok((event, dropped))
}

/// A JSON number is seconds; a string is seconds or a UTC datetime.
fn event_time(object: &Map<String, Value>) -> Result<Time, Problem> {
    let parsed = match object.get("time") {
        Some(Value::Number(number)) => parse_seconds(&number.to_string()),
        Some(Value::String(text)) => parse_time_field(text),
        Some(other) => {
            return Err(schema(format!(
                "time {other} is neither a number nor a string"
            )))
        }
        None => return Err(schema("no time".to_string())),
    };
    parsed.map_err(|reason| (RejectKind::Parse, reason))
}

/// An optional non-empty string field.
fn name_field(object: &Map<String, Value>, key: &str) -> Result<Option<String>, Problem> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => {
            Err(schema(format!("{key} is empty")))
        }
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(schema(format!("{key} {other} is not a string"))),
    }
}

/// The shortest run time a completion may report: 1 µs, far below any task a workflow
/// schedules. A shorter one measures nothing, and once divided by a slow device's stretch it
/// can underflow to zero (5e-324 s did), which the duration model would drop without a word.
const MIN_DURATION_S: f64 = 1e-6;

/// A run time under [`MIN_DURATION_S`] (zero included) measures nothing: the duration model
/// learns only positive ones, and taken as the event's figure it would hide the time since
/// the start, which it learns from instead.
fn nonzero_duration(seconds: f64) -> Result<f64, Problem> {
    if seconds == 0.0 {
        return Err((
            RejectKind::OutOfRange,
            "duration 0 is no run time (the time since the start is learnt instead)".to_string(),
        ));
    }
    if seconds < MIN_DURATION_S {
        return Err((
            RejectKind::OutOfRange,
            format!(
                "duration {} s is under 1 µs, no run time (the time since the start is learnt \
                 instead)",
                short_number(seconds)
            ),
        ));
    }
    Ok(seconds)
}

/// A finite, non-negative number.
fn amount(what: &str, value: &Value) -> Result<f64, Problem> {
    if let Some(literal) = super::json::huge_number(value) {
        return Err((
            RejectKind::NonFinite,
            format!("{what} {literal} is beyond a 64-bit float's range"),
        ));
    }
    let number = value
        .as_f64()
        .ok_or_else(|| schema(format!("{what} {value} is not a number")))?;
    if !number.is_finite() {
        return Err((
            RejectKind::NonFinite,
            format!("{what} {} is not finite", super::short_number(number)),
        ));
    }
    if number < 0.0 {
        return Err((
            RejectKind::Negative,
            format!("{what} {} is negative", super::short_number(number)),
        ));
    }
    Ok(number)
}

/// The usage entries that are valid; each bad one is dropped with its reason.
fn usage(object: &Map<String, Value>, dropped: &mut Vec<Dropped>) -> BTreeMap<String, f64> {
    let mut usage = BTreeMap::new();
    let entries = match object.get("usage") {
        None | Some(Value::Null) => return usage,
        Some(Value::Object(entries)) => entries,
        Some(other) => {
            dropped.push((
                "usage".to_string(),
                schema(format!("usage {other} is not an object")),
            ));
            return usage;
        }
    };
    for (key, value) in entries {
        let field = format!("usage.{key}");
        let Some(resource) = Resource::from_name(key) else {
            let problem = schema(format!(
                "unknown resource {key:?} (expected cpu, memory, disk or network)"
            ));
            dropped.push((field, problem));
            continue;
        };
        match amount(&field, value) {
            Ok(fraction) => {
                usage.insert(resource.name().to_string(), fraction);
            }
            Err(problem) => dropped.push((field, problem)),
        }
    }
    usage
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::lines::DEFAULT_MAX_LINE_BYTES;

    fn read(text: &str) -> (Vec<EventOutcome>, InputStats) {
        let mut reader = EventReader::from_text(text, "events.jsonl", DEFAULT_MAX_LINE_BYTES);
        let outcomes: Vec<_> = reader.by_ref().collect();
        (outcomes, reader.stats())
    }

    fn one(line: &str) -> Result<TaskEvent, Rejection> {
        let (mut outcomes, _) = read(line);
        assert_eq!(outcomes.len(), 1, "{line}");
        outcomes.remove(0).event
    }

    fn kind_of(line: &str) -> RejectKind {
        match one(line) {
            Ok(event) => panic!("accepted {event:?}"),
            Err(rejection) => rejection.kind,
        }
    }

    #[test]
    fn reads_all_kinds_and_skips_blank_lines() {
        let text = r#"{"time": 0, "kind": "arrival", "workflow": "w"}

{"time": "1.5", "kind": "start", "workflow": "w", "task": "t", "device": "d"}
  {"time": "2014-02-14 00:00:01", "kind": "complete", "workflow": "w", "task": "t", "duration": 2.5, "usage": {"cpu": 1.3, "mem": 0.2}, "extra": true}
"#;
        let (outcomes, stats) = read(text);
        assert_eq!(
            stats,
            InputStats {
                read: 3,
                accepted: 3,
                rejected: 0,
                dropped_fields: 0
            }
        );
        let lines: Vec<u64> = outcomes.iter().map(|outcome| outcome.line).collect();
        assert_eq!(lines, vec![1, 3, 4]);
        let events: Vec<TaskEvent> = outcomes.into_iter().filter_map(|o| o.event.ok()).collect();
        assert_eq!(events[0].kind, EventKind::Arrival);
        assert_eq!(events[0].task, None);
        assert_eq!(events[1].time, 1_500);
        assert_eq!(events[1].device.as_deref(), Some("d"));
        assert_eq!(events[2].time, 1_392_336_001_000);
        assert_eq!(events[2].duration_s, Some(2.5));
        assert_eq!(
            events[2].usage.get("cpu"),
            Some(&1.3),
            "over-commit is kept"
        );
        assert_eq!(
            events[2].usage.get("memory"),
            Some(&0.2),
            "names are canonical"
        );
    }

    #[test]
    fn required_fields_per_kind() {
        assert_eq!(
            kind_of(r#"{"time":1,"kind":"start","workflow":"w","task":"t"}"#),
            RejectKind::Schema
        );
        assert_eq!(
            kind_of(r#"{"time":1,"kind":"start","workflow":"w","device":"d"}"#),
            RejectKind::Schema
        );
        assert_eq!(
            kind_of(r#"{"time":1,"kind":"complete","workflow":"w"}"#),
            RejectKind::Schema
        );
        assert!(one(r#"{"time":1,"kind":"complete","workflow":"w","task":"t"}"#).is_ok());
        assert_eq!(
            kind_of(r#"{"time":1,"kind":"arrival"}"#),
            RejectKind::Schema
        );
        assert_eq!(
            kind_of(r#"{"kind":"arrival","workflow":"w"}"#),
            RejectKind::Schema
        );
        assert_eq!(
            kind_of(r#"{"time":1,"kind":"arrival","workflow":""}"#),
            RejectKind::Schema
        );
        assert_eq!(
            kind_of(r#"{"time":1,"kind":"arrival","workflow":"w","task":7}"#),
            RejectKind::Schema
        );
    }

    #[test]
    fn each_rejection_kind() {
        assert_eq!(
            kind_of(r#"{"time":1,"kind":"finish","workflow":"w"}"#),
            RejectKind::Parse
        );
        assert_eq!(kind_of(r#"{"time":1,"kind":"#), RejectKind::Parse);
        assert_eq!(kind_of(r#"[1, 2]"#), RejectKind::Schema);
        // Which of two would be a guess: refused, as a CSV header naming a column twice is.
        assert_eq!(
            kind_of(r#"{"time":1,"kind":"arrival","workflow":"w","workflow":"v"}"#),
            RejectKind::Schema
        );
        assert_eq!(
            kind_of(r#"{"time":"soon","kind":"arrival","workflow":"w"}"#),
            RejectKind::Parse
        );
        assert_eq!(
            kind_of(r#"{"time":"NaN","kind":"arrival","workflow":"w"}"#),
            RejectKind::Parse
        );
    }

    #[test]
    fn bad_optional_fields_are_dropped_not_the_event() {
        let text = concat!(
            r#"{"time":1,"kind":"complete","workflow":"w","task":"t","duration":-1}"#,
            "\n",
            r#"{"time":1,"kind":"complete","workflow":"w","task":"t","duration":1e300}"#,
            "\n",
            r#"{"time":1,"kind":"start","workflow":"w","task":"t","device":"d","usage":{"cpu":-0.1,"gpu":0.1,"memory":0.5}}"#,
            "\n",
            r#"{"time":1,"kind":"complete","workflow":"w","task":"t","duration":"long","usage":[1]}"#,
            "\n",
            r#"{"time":1,"kind":"complete","workflow":"w","task":"t","duration":0}"#,
            "\n",
            r#"{"time":1,"kind":"complete","workflow":"w","task":"t","duration":5e-324}"#,
            "\n",
            r#"{"time":1,"kind":"complete","workflow":"w","task":"t","duration":1e-6}"#,
            "\n",
            // A number serde_json cannot hold costs its field, not the event.
            r#"{"time":1,"kind":"complete","workflow":"w","task":"t","duration":1e400,"usage":{"cpu":-1e999},"x":9e9999}"#,
            "\n",
        );
        let mut reader = EventReader::from_text(text, "e.jsonl", 1 << 20);
        let outcomes: Vec<EventOutcome> = reader.by_ref().collect();
        assert!(outcomes.iter().all(|o| o.event.is_ok()));
        let dropped: Vec<usize> = outcomes.iter().map(|o| o.dropped.len()).collect();
        assert_eq!(dropped, vec![1, 1, 2, 2, 1, 1, 0, 2]);
        assert!(
            outcomes[4].dropped[0]
                .reason
                .contains("duration 0 is no run time"),
            "{}",
            outcomes[4].dropped[0].reason
        );
        assert_eq!(
            outcomes[4].event.as_ref().expect("accepted").duration_s,
            None
        );
        assert!(outcomes[0].dropped[0].reason.contains("duration"));
        assert_eq!(outcomes[0].dropped[0].kind, RejectKind::DroppedField);
        assert!(
            outcomes[1].dropped[0].reason.contains("over 1e9 s"),
            "{}",
            outcomes[1].dropped[0].reason
        );
        let start = outcomes[2].event.as_ref().expect("accepted");
        assert_eq!(start.usage.get("memory"), Some(&0.5));
        assert_eq!(start.usage.len(), 1);
        // A subnormal run time is dropped where it is read (it underflowed to no work at all
        // once divided by a slow device's stretch), and 1 µs is still a run time.
        assert!(
            outcomes[5].dropped[0]
                .reason
                .contains("5e-324 s is under 1 µs"),
            "{}",
            outcomes[5].dropped[0].reason
        );
        assert_eq!(
            outcomes[5].event.as_ref().expect("accepted").duration_s,
            None
        );
        assert_eq!(
            outcomes[6].event.as_ref().expect("accepted").duration_s,
            Some(1e-6)
        );
        let huge: Vec<&str> = outcomes[7]
            .dropped
            .iter()
            .map(|d| d.reason.as_str())
            .collect();
        assert!(
            huge[0].contains("duration 1e400 is beyond a 64-bit float's range")
                && huge[1].contains("usage.cpu -1e999 is beyond a 64-bit float's range"),
            "{huge:?}"
        );
        assert_eq!(reader.stats().accepted, 8);
        assert_eq!(reader.stats().dropped_fields, 10);
    }

    #[test]
    fn oversized_and_invalid_lines_are_counted() {
        let long = format!(
            r#"{{"time":1,"kind":"arrival","workflow":"{}"}}"#,
            "w".repeat(100)
        );
        let text = format!("{long}\n{{\"time\":1,\"kind\":\"arrival\",\"workflow\":\"w\"}}\n");
        let mut reader = EventReader::from_text(&text, "e.jsonl", 64);
        let outcomes: Vec<_> = reader.by_ref().collect();
        assert_eq!(outcomes.len(), 2);
        assert!(matches!(
            &outcomes[0].event,
            Err(Rejection {
                kind: RejectKind::OversizedLine,
                line: Some(1),
                ..
            })
        ));
        assert!(outcomes[1].event.is_ok());
        let stats = reader.stats();
        assert_eq!((stats.read, stats.accepted, stats.rejected), (2, 1, 1));
        assert_eq!(reader.path(), "e.jsonl");
    }

    #[test]
    fn missing_file_is_io() {
        let opened = EventReader::open(Path::new("/nonexistent/augur/events.jsonl"), 1024);
        assert!(matches!(
            opened,
            Err(Rejection {
                kind: RejectKind::Io,
                ..
            })
        ));
    }
}
