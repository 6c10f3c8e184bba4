//! Why an input record was refused, and how many records each input yielded.
//!
//! Bad input is data, not a failure: every reader hands back a [`Rejection`] for each record it
//! refuses and keeps going, so the driver can report them beside the good records (and a
//! malformed line deep in a week-long log never stops a run).

use std::fmt;

use serde::Serialize;

/// One refused record (or a refused whole file, when `line` is `None`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    /// The input file, as the user named it.
    pub file: String,
    /// 1-based line of the record; `None` when the whole file (or a record without a line, such
    /// as a task of a JSON workflow) is refused.
    pub line: Option<u64>,
    /// The class of problem, for counting and filtering.
    pub kind: RejectKind,
    /// What exactly was wrong, for a person to fix it.
    pub reason: String,
}

impl Rejection {
    /// A rejection of the record on `line` of `file`.
    pub fn at_line(
        file: impl Into<String>,
        line: u64,
        kind: RejectKind,
        reason: impl Into<String>,
    ) -> Rejection {
        Rejection {
            file: file.into(),
            line: Some(line),
            kind,
            reason: bounded(reason.into()),
        }
    }

    /// A rejection that belongs to no single line.
    pub fn whole_file(
        file: impl Into<String>,
        kind: RejectKind,
        reason: impl Into<String>,
    ) -> Rejection {
        Rejection {
            file: file.into(),
            line: None,
            kind,
            reason: bounded(reason.into()),
        }
    }
}

/// The longest reason kept whole, in bytes. Reasons quote the offending value, and a value can
/// be a megabyte (a task name, a line of garbage): `rejected.jsonl` would then grow as fast as
/// the input it refuses.
pub const MAX_REASON_BYTES: usize = 1024;

/// `reason`, cut at [`MAX_REASON_BYTES`] (on a character boundary) with a note of the length.
fn bounded(mut reason: String) -> String {
    if reason.len() <= MAX_REASON_BYTES {
        return reason;
    }
    let total = reason.len();
    let mut cut = MAX_REASON_BYTES;
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    reason.truncate(cut);
    reason.push_str(&format!("… ({total} bytes in all)"));
    reason
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}: {}", self.file, line, self.kind, self.reason),
            None => write!(f, "{}: {}: {}", self.file, self.kind, self.reason),
        }
    }
}

/// `open` functions return a `Rejection` as their error, so it must compose with `?` and `Box<dyn Error>`.
impl std::error::Error for Rejection {}

/// The longest duration a task's runtime or a completion may give, in seconds (about 31.7
/// years): past it a number is a unit mistake or garbage, and taken at its word it would stall
/// a simulation or swamp the duration model.
pub const MAX_DURATION_S: f64 = 1e9;

/// `seconds` if no task could take longer ([`MAX_DURATION_S`]); else the rejection, its
/// reason naming `what` (`task a: runtimeInSeconds`, `duration`), formatted only then.
pub fn within_max_duration(
    what: impl fmt::Display,
    seconds: f64,
) -> Result<f64, (RejectKind, String)> {
    if seconds > MAX_DURATION_S {
        Err((
            RejectKind::OutOfRange,
            format!(
                "{what} {} is over {} s (30 years)",
                super::short_number(seconds),
                super::short_number(MAX_DURATION_S)
            ),
        ))
    } else {
        Ok(seconds)
    }
}

/// The largest file a workflow may declare, in bytes (a petabyte): past it a size is a unit
/// mistake or garbage, and `1e30` was taken as `u64::MAX`, so that a simulation reported
/// 18446744073709551615 bytes moved.
pub const MAX_FILE_BYTES: f64 = 1e15;

/// The class of a [`Rejection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// The file could not be opened or read.
    Io,
    /// The text is not in the expected syntax (JSON, number, timestamp, UTF-8).
    Parse,
    /// The syntax is fine but a field is missing, of the wrong type, or unsupported.
    Schema,
    /// A workflow's dependencies form a cycle.
    Cycle,
    /// A dependency names a task that does not exist.
    DanglingParent,
    /// Two records claim the same identifier.
    DuplicateId,
    /// A record names a device the platform does not have.
    UnknownDevice,
    /// A record names a workflow that was never loaded.
    UnknownWorkflow,
    /// A record names a task its workflow does not have.
    UnknownTask,
    /// A number is NaN or infinite.
    NonFinite,
    /// A quantity that cannot be negative is.
    Negative,
    /// A quantity is beyond any value it can take (a task running for more than 30 years).
    OutOfRange,
    /// A record arrived later than the lateness bound allows.
    OutOfOrder,
    /// A line is longer than the configured maximum.
    OversizedLine,
    /// An event does not follow from the task's previous state (e.g. complete before start).
    BadTransition,
    /// A task fits on no device at all.
    Infeasible,
    /// One field of an otherwise accepted record was dropped.
    DroppedField,
}

impl RejectKind {
    /// Every kind, in declaration order (for reports that list zero counts too).
    pub const ALL: [RejectKind; 17] = [
        RejectKind::Io,
        RejectKind::Parse,
        RejectKind::Schema,
        RejectKind::Cycle,
        RejectKind::DanglingParent,
        RejectKind::DuplicateId,
        RejectKind::UnknownDevice,
        RejectKind::UnknownWorkflow,
        RejectKind::UnknownTask,
        RejectKind::NonFinite,
        RejectKind::Negative,
        RejectKind::OutOfRange,
        RejectKind::OutOfOrder,
        RejectKind::OversizedLine,
        RejectKind::BadTransition,
        RejectKind::Infeasible,
        RejectKind::DroppedField,
    ];

    /// The snake_case name, identical to the serialised form.
    pub fn name(&self) -> &'static str {
        match self {
            RejectKind::Io => "io",
            RejectKind::Parse => "parse",
            RejectKind::Schema => "schema",
            RejectKind::Cycle => "cycle",
            RejectKind::DanglingParent => "dangling_parent",
            RejectKind::DuplicateId => "duplicate_id",
            RejectKind::UnknownDevice => "unknown_device",
            RejectKind::UnknownWorkflow => "unknown_workflow",
            RejectKind::UnknownTask => "unknown_task",
            RejectKind::NonFinite => "non_finite",
            RejectKind::Negative => "negative",
            RejectKind::OutOfRange => "out_of_range",
            RejectKind::OutOfOrder => "out_of_order",
            RejectKind::OversizedLine => "oversized_line",
            RejectKind::BadTransition => "bad_transition",
            RejectKind::Infeasible => "infeasible",
            RejectKind::DroppedField => "dropped_field",
        }
    }
}

impl fmt::Display for RejectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Record counts of one input. Invariant kept by every reader: `read == accepted + rejected`;
/// `dropped_fields` counts fields dropped from records that were still accepted (an event's
/// when it is applied), so a metric or event file has `rejected + dropped_fields` lines in
/// `rejected.jsonl`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct InputStats {
    /// Records seen.
    pub read: u64,
    /// Records that yielded something.
    pub accepted: u64,
    /// Records refused whole.
    pub rejected: u64,
    /// Fields dropped from accepted records.
    pub dropped_fields: u64,
}

impl InputStats {
    /// Counts one record that yielded something.
    pub fn count_accepted(&mut self) {
        self.read += 1;
        self.accepted += 1;
    }

    /// Counts one record refused whole.
    pub fn count_rejected(&mut self) {
        self.read += 1;
        self.rejected += 1;
    }

    /// Adds another input's counts to these (for totals over many files).
    pub fn add(&mut self, other: &InputStats) {
        self.read += other.read;
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        self.dropped_fields += other.dropped_fields;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        let name = "é".repeat(400_000);
        let rejection = Rejection::at_line("w.json", 1, RejectKind::Schema, format!("task {name}"));
        assert!(rejection.reason.len() < MAX_REASON_BYTES + 40);
        assert!(
            rejection.reason.ends_with("(800005 bytes in all)"),
            "{}",
            &rejection.reason[1000..]
        );
        let short = Rejection::whole_file("w.json", RejectKind::Schema, "short");
        assert_eq!(short.reason, "short");
    }

    #[test]
    fn serialises_with_snake_case_kind_and_null_line() {
        let rejection = Rejection::whole_file("a.json", RejectKind::DanglingParent, "task x");
        let json = serde_json::to_string(&rejection).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"file":"a.json","line":null,"kind":"dangling_parent","reason":"task x"}"#
        );
        let rejection = Rejection::at_line("m.csv", 7, RejectKind::NonFinite, "value NaN");
        let json = serde_json::to_string(&rejection).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"file":"m.csv","line":7,"kind":"non_finite","reason":"value NaN"}"#
        );
    }

    #[test]
    fn names_match_serde_names() {
        for kind in RejectKind::ALL {
            let json = serde_json::to_string(&kind).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
    }

    #[test]
    fn displays_with_and_without_line() {
        let at = Rejection::at_line("m.csv", 3, RejectKind::Parse, "bad time");
        assert_eq!(at.to_string(), "m.csv:3: parse: bad time");
        let whole = Rejection::whole_file("p.toml", RejectKind::Schema, "no devices");
        assert_eq!(whole.to_string(), "p.toml: schema: no devices");
    }

    #[test]
    fn stats_add_up() {
        let mut stats = InputStats::default();
        stats.count_accepted();
        stats.count_rejected();
        let mut total = InputStats::default();
        total.add(&stats);
        total.add(&stats);
        assert_eq!(total.read, 4);
        assert_eq!(total.read, total.accepted + total.rejected);
    }
}
