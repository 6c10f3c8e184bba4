//! Metric logs: per-device utilisation over time, in four formats.
//!
//! - `long`: our own format, CSV with a `time,device,resource,value` header (any column order)
//!   or JSONL objects with those keys; values are already fractions of capacity.
//! - `nab`: a Numenta Anomaly Benchmark series, `timestamp,value`, one resource of one device
//!   (named on the command line, since the file does not say).
//! - `bitbrains`: a GWA-T-12 Bitbrains VM trace (`;`-separated, one file per VM).
//! - `alibaba`: Alibaba cluster-trace-v2018 `machine_usage` rows.
//!
//! Every output value is a fraction of capacity; above 1 is over-commit and is kept. Throughput
//! (disk, network) becomes a fraction of the device's bandwidth when the platform gives it, else
//! of the series' own maximum, which is why such files are read twice: once for the maximum,
//! once to stream. A row with some bad fields keeps the good ones.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use augur_dataflows::types::{Resource, Time};
use serde_json::{Map, Value};

use super::fields::{split_fields, Fields};
use super::lines::{
    file_lines, file_lines_at, text_lines, LinePosition, LineSource, DEFAULT_MAX_LINE_BYTES,
};
use super::rejection::{InputStats, RejectKind, Rejection};
use super::reorder::Reorder;
use super::time::{parse_seconds, parse_time_field};

/// NAB gives no sampling period for its first row; CloudWatch's default period is 5 minutes.
const NAB_DEFAULT_PERIOD_S: f64 = 300.0;

/// Bitbrains reports throughput in KB/s with KB = 1024 bytes.
const BYTES_PER_KB: f64 = 1024.0;

/// One utilisation reading.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRecord {
    /// When it was taken.
    pub time: Time,
    /// The device's name.
    pub device: String,
    /// What it measures.
    pub resource: Resource,
    /// Fraction of capacity: finite, non-negative, above 1 meaning over-commit.
    pub value: f64,
}

/// What one line yielded: records, rejections, or (a row with dropped fields) both.
#[derive(Debug, Clone, PartialEq)]
pub struct LineOutcome {
    /// Its 1-based line number.
    pub line: u64,
    /// The readings it held.
    pub records: Vec<MetricRecord>,
    /// What was wrong with it: one `DroppedField` per dropped field when `records` is not empty,
    /// otherwise the one rejection of the whole line (a refused record is one line of
    /// `rejected.jsonl`, however many of its fields were bad).
    pub rejections: Vec<Rejection>,
}

/// The layout of a metric file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricFormat {
    /// `time,device,resource,value` as CSV or JSONL.
    Long,
    /// Numenta Anomaly Benchmark `timestamp,value`.
    Nab,
    /// GWA-T-12 Bitbrains VM trace.
    Bitbrains,
    /// Alibaba cluster-trace-v2018 `machine_usage`.
    Alibaba,
}

impl MetricFormat {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            MetricFormat::Long => "long",
            MetricFormat::Nab => "nab",
            MetricFormat::Bitbrains => "bitbrains",
            MetricFormat::Alibaba => "alibaba",
        }
    }
}

impl FromStr for MetricFormat {
    type Err = String;

    fn from_str(name: &str) -> Result<MetricFormat, String> {
        match name {
            "long" => Ok(MetricFormat::Long),
            "nab" => Ok(MetricFormat::Nab),
            "bitbrains" => Ok(MetricFormat::Bitbrains),
            "alibaba" => Ok(MetricFormat::Alibaba),
            other => Err(format!(
                "unknown metric format {other:?} (expected long, nab, bitbrains or alibaba)"
            )),
        }
    }
}

/// How to read metric files.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricOptions {
    /// Longer lines are refused (memory stays bounded).
    pub max_line_bytes: usize,
    /// For NAB files: the device and resource the series measures (`--map FILE=DEVICE:RESOURCE`).
    pub nab_target: Option<(String, Resource)>,
    /// Disk and network bandwidth in bytes/s per device name; a missing entry or `None`
    /// normalises throughput by the series maximum instead.
    pub bandwidth: HashMap<String, (Option<f64>, Option<f64>)>,
    /// For Alibaba files, which are grouped by machine rather than sorted by time: read only the
    /// rows of this machine, so each machine becomes its own time-ordered stream. With `true`,
    /// this reader also takes the lines that name no machine, so that across the readers of one
    /// file every line is counted exactly once.
    pub only_machine: Option<(String, bool)>,
    /// The lateness the reader's rows are then refused by (`run`'s feed, per file): the first
    /// pass that finds a throughput series' maximum leaves such rows out, so that a refused
    /// row does not set the scale of the accepted ones. `None`: every row counts.
    pub lateness_ms: Option<i64>,
}

impl Default for MetricOptions {
    fn default() -> MetricOptions {
        MetricOptions {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            nab_target: None,
            bandwidth: HashMap::new(),
            only_machine: None,
            lateness_ms: None,
        }
    }
}

/// Where a [`MetricReader`] stands: in the file, in its header and NAB periods, and its counts.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricPosition {
    /// In the file.
    pub lines: LinePosition,
    seen_first_line: bool,
    long_columns: Option<LongColumns>,
    previous_time: Option<Time>,
    stats: InputStats,
    unusable: Option<String>,
}

/// Streams the readings of one metric file, one [`LineOutcome`] per non-blank, non-header line.
pub struct MetricReader {
    path: String,
    max_line_bytes: usize,
    /// `None` once reading has ended early (a fatal header problem).
    lines: Option<LineSource>,
    parser: LineParser,
    scale: Scale,
    stats: InputStats,
    /// A problem found before the first line (only `from_text` has no other way to report it).
    pending: Option<Rejection>,
    only_machine: Option<(String, bool)>,
    /// Set once the header proved unusable: why.
    unusable: Option<String>,
}

impl MetricReader {
    /// Opens a metric file. Fails for an unreadable file or a NAB file without a target.
    pub fn open(
        path: &Path,
        format: MetricFormat,
        options: &MetricOptions,
    ) -> Result<MetricReader, Rejection> {
        let name = path.display().to_string();
        let layout = Layout::for_file(format, path, options)
            .map_err(|reason| Rejection::whole_file(&name, RejectKind::Schema, reason))?;
        let source = Source::File(path.to_path_buf());
        MetricReader::build(name, layout, source, options)
    }

    /// Opens a metric file where a checkpoint's [`Self::position`] left it (with the same
    /// format and options it was opened with).
    pub fn open_at(
        path: &Path,
        format: MetricFormat,
        options: &MetricOptions,
        position: &MetricPosition,
    ) -> Result<MetricReader, Rejection> {
        let mut reader = MetricReader::open(path, format, options)?;
        reader.lines = Some(file_lines_at(path, options.max_line_bytes, position.lines)?);
        reader.parser.seen_first_line = position.seen_first_line;
        reader.parser.long_columns = position.long_columns;
        reader.parser.previous_time = position.previous_time;
        reader.stats = position.stats;
        reader.unusable = position.unusable.clone();
        Ok(reader)
    }

    /// How many bytes of its file it has read (0 before the first line).
    pub fn offset(&self) -> u64 {
        self.lines
            .as_ref()
            .map_or(0, |lines| lines.position().offset)
    }

    /// Where reading stands, for a checkpoint.
    pub fn position(&self) -> MetricPosition {
        MetricPosition {
            lines: self
                .lines
                .as_ref()
                .map_or(LinePosition::default(), |lines| lines.position()),
            seen_first_line: self.parser.seen_first_line,
            long_columns: self.parser.long_columns,
            previous_time: self.parser.previous_time,
            stats: self.stats,
            unusable: self.unusable.clone(),
        }
    }

    /// Reads metrics from text (for tests and fuzzing); `path` names it in rejections and, for
    /// Bitbrains, names the device. A problem that `open` would return comes out as the only
    /// outcome instead.
    pub fn from_text(
        text: &str,
        path: &str,
        format: MetricFormat,
        options: &MetricOptions,
    ) -> MetricReader {
        let source = Source::Text(text.to_string());
        let built = Layout::for_text(format, path, text, options)
            .map_err(|reason| Rejection::whole_file(path, RejectKind::Schema, reason))
            .and_then(|layout| MetricReader::build(path.to_string(), layout, source, options));
        built.unwrap_or_else(|rejection| MetricReader {
            path: path.to_string(),
            max_line_bytes: options.max_line_bytes,
            lines: None,
            parser: LineParser::new(Layout::Alibaba),
            scale: Scale::default(),
            stats: InputStats::default(),
            pending: Some(rejection),
            only_machine: None,
            unusable: None,
        })
    }

    fn build(
        path: String,
        layout: Layout,
        source: Source,
        options: &MetricOptions,
    ) -> Result<MetricReader, Rejection> {
        let max_line_bytes = options.max_line_bytes;
        let mut scale = Scale {
            bandwidth: layout.relevant_bandwidth(&options.bandwidth),
            maxima: HashMap::new(),
        };
        if layout.needs_maxima(&scale) {
            let lines = source.lines(max_line_bytes)?;
            scale.maxima = series_maxima(lines, layout.clone(), options.lateness_ms);
        }
        Ok(MetricReader {
            path,
            max_line_bytes,
            lines: Some(source.lines(max_line_bytes)?),
            parser: LineParser::new(layout),
            scale,
            stats: InputStats::default(),
            pending: None,
            only_machine: options.only_machine.clone(),
            unusable: None,
        })
    }

    /// The machine whose rows alone this reader takes (an Alibaba file read as one stream
    /// per machine).
    pub fn machine(&self) -> Option<&str> {
        self.only_machine
            .as_ref()
            .map(|(machine, _)| machine.as_str())
    }

    /// Counts so far (header and blank lines are not records).
    pub fn stats(&self) -> InputStats {
        self.stats
    }

    /// The file being read.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn refuse(&mut self, rejection: Rejection) -> LineOutcome {
        self.stats.count_rejected();
        LineOutcome {
            line: rejection.line.unwrap_or(0),
            records: Vec::new(),
            rejections: vec![rejection],
        }
    }

    /// Normalises a row's readings. Fields that are each finite can still combine into an
    /// infinite fraction (a sum of two huge throughputs, a tiny capacity); those are dropped.
    fn records(&self, row: Row) -> (Vec<MetricRecord>, Vec<Issue>) {
        let Row {
            time,
            device,
            readings,
            mut issues,
        } = row;
        let mut records = Vec::with_capacity(readings.len());
        let last = readings.len().saturating_sub(1);
        let mut device = Some(device);
        for (index, (resource, reading)) in readings.into_iter().enumerate() {
            let name = device.as_deref().unwrap_or_default();
            if let Some(issue) = absurd_rate(resource, reading) {
                issues.push(issue);
                continue;
            }
            let value = self.scale.fraction(name, resource, reading);
            if value.is_finite() {
                // The last reading takes the name itself: one allocation fewer per row.
                let device = if index == last {
                    device.take().unwrap_or_default()
                } else {
                    name.to_string()
                };
                records.push(MetricRecord {
                    time,
                    device,
                    resource,
                    value,
                });
            } else {
                issues.push(Issue::new(
                    RejectKind::NonFinite,
                    format!("{}: the fraction of capacity overflows", resource.name()),
                ));
            }
        }
        (records, issues)
    }

    /// Turns a parsed row into records and rejections, and counts it.
    fn outcome(&mut self, line: u64, row: Result<Row, Vec<Issue>>) -> LineOutcome {
        let (records, issues) = match row {
            Ok(row) => self.records(row),
            Err(issues) => (Vec::new(), issues),
        };
        let mut rejections: Vec<Rejection> = if records.is_empty() {
            refusal(issues)
                .map(|issue| Rejection::at_line(&self.path, line, issue.kind, issue.reason))
                .into_iter()
                .collect()
        } else {
            issues
                .into_iter()
                .map(|issue| {
                    let reason = format!("dropped {} ({})", issue.reason, issue.kind);
                    Rejection::at_line(&self.path, line, RejectKind::DroppedField, reason)
                })
                .collect()
        };
        if records.is_empty() {
            if rejections.is_empty() {
                rejections.push(Rejection::at_line(
                    &self.path,
                    line,
                    RejectKind::Schema,
                    "row holds no readings",
                ));
            }
            self.stats.count_rejected();
        } else {
            self.stats.count_accepted();
            self.stats.dropped_fields += rejections.len() as u64;
        }
        LineOutcome {
            line,
            records,
            rejections,
        }
    }
}

impl Iterator for MetricReader {
    type Item = LineOutcome;

    fn next(&mut self) -> Option<LineOutcome> {
        if let Some(rejection) = self.pending.take() {
            return Some(self.refuse(rejection));
        }
        loop {
            let (line, text) = self.lines.as_mut()?.next()?;
            let text = match text {
                Ok(text) => text,
                Err(error) => {
                    if self
                        .only_machine
                        .as_ref()
                        .is_some_and(|(_, orphans)| !orphans)
                    {
                        continue;
                    }
                    let rejection = error.to_rejection(&self.path, line, self.max_line_bytes);
                    if self.parser.awaits_required_header() {
                        // The header itself could not be read: every row after it would be
                        // taken for the header, or read against none.
                        self.parser.seen_first_line = true;
                        self.unusable = Some(format!("line {line}: {}", rejection.reason));
                    }
                    return Some(self.refuse(rejection));
                }
            };
            if let Some((machine, orphans)) = &self.only_machine {
                let named = first_field(&text, ',');
                let mine = if named.is_empty() {
                    *orphans
                } else {
                    named == machine.as_str()
                };
                if !mine {
                    continue;
                }
            }
            if let Some(reason) = &self.unusable {
                if text.trim().is_empty() {
                    continue;
                }
                let rejection = Rejection::at_line(
                    &self.path,
                    line,
                    RejectKind::Schema,
                    format!("not read: the file has no usable header ({reason})"),
                );
                return Some(self.refuse(rejection));
            }
            match self.parser.parse(&text) {
                Parsed::Skip => continue,
                Parsed::Fatal(reason) => {
                    // Every later line is still read and refused, so that no record of the
                    // file vanishes from the accounting.
                    self.unusable = Some(format!("line {line}: {reason}"));
                    let rejection =
                        Rejection::at_line(&self.path, line, RejectKind::Schema, reason);
                    return Some(self.refuse(rejection));
                }
                Parsed::Row(row) => return Some(self.outcome(line, row)),
            }
        }
    }
}

/// Where the lines come from; read twice when series maxima are needed.
enum Source {
    File(PathBuf),
    Text(String),
}

impl Source {
    fn lines(&self, max_line_bytes: usize) -> Result<LineSource, Rejection> {
        match self {
            Source::File(path) => file_lines(path, max_line_bytes),
            Source::Text(text) => Ok(text_lines(text, max_line_bytes)),
        }
    }
}

/// The format, resolved against the file: what fills in what the rows leave out.
#[derive(Debug, Clone)]
enum Layout {
    LongCsv,
    LongJsonl,
    Nab { device: String, resource: Resource },
    Bitbrains { device: String },
    Alibaba,
}

impl Layout {
    fn for_file(
        format: MetricFormat,
        path: &Path,
        options: &MetricOptions,
    ) -> Result<Layout, String> {
        // By the name where it says so (in any case), else by the content: a file named
        // `.ndjson`, `.log` or `.JSONL` was read as CSV, each line refused for its quotes.
        let extension = path
            .extension()
            .and_then(|extension| extension.to_str())
            .map(str::to_ascii_lowercase);
        let named = matches!(extension.as_deref(), Some("jsonl" | "json" | "ndjson"));
        let jsonl = named || (format == MetricFormat::Long && starts_like_json(path));
        Layout::resolve(format, path, jsonl, options)
    }

    fn for_text(
        format: MetricFormat,
        path: &str,
        text: &str,
        options: &MetricOptions,
    ) -> Result<Layout, String> {
        let jsonl = text.trim_start().starts_with('{');
        Layout::resolve(format, Path::new(path), jsonl, options)
    }

    fn resolve(
        format: MetricFormat,
        path: &Path,
        jsonl: bool,
        options: &MetricOptions,
    ) -> Result<Layout, String> {
        Ok(match format {
            MetricFormat::Long if jsonl => Layout::LongJsonl,
            MetricFormat::Long => Layout::LongCsv,
            MetricFormat::Nab => {
                let (device, resource) = options.nab_target.clone().ok_or_else(|| {
                    format!(
                        "a NAB file does not say which device and resource it measures: \
                         pass --map {}=DEVICE:RESOURCE",
                        path.display()
                    )
                })?;
                Layout::Nab { device, resource }
            }
            MetricFormat::Bitbrains => Layout::Bitbrains {
                // Bitbrains names each file after its VM.
                device: path.file_stem().map_or_else(
                    || path.display().to_string(),
                    |stem| stem.to_string_lossy().into_owned(),
                ),
            },
            MetricFormat::Alibaba => Layout::Alibaba,
        })
    }

    /// The bandwidths this file's throughputs are measured against: only formats that report
    /// throughput need any, and they name a single device (so a large platform is not copied).
    fn relevant_bandwidth(
        &self,
        bandwidth: &HashMap<String, (Option<f64>, Option<f64>)>,
    ) -> HashMap<String, (Option<f64>, Option<f64>)> {
        match self {
            Layout::Nab { device, .. } | Layout::Bitbrains { device } => bandwidth
                .get_key_value(device)
                .map(|(device, bandwidth)| (device.clone(), *bandwidth))
                .into_iter()
                .collect(),
            Layout::LongCsv | Layout::LongJsonl | Layout::Alibaba => HashMap::new(),
        }
    }

    /// Whether some throughput in this file has no bandwidth to be measured against.
    fn needs_maxima(&self, scale: &Scale) -> bool {
        let throughput = [Resource::Disk, Resource::Network];
        match self {
            Layout::Nab { device, resource } => {
                throughput.contains(resource) && scale.bandwidth_of(device, *resource).is_none()
            }
            Layout::Bitbrains { device } => throughput
                .iter()
                .any(|&resource| scale.bandwidth_of(device, resource).is_none()),
            _ => false,
        }
    }
}

/// A reading before normalisation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reading {
    /// Already a fraction of capacity.
    Fraction(f64),
    /// Throughput in bytes per second, to be divided by a bandwidth.
    Rate(f64),
}

/// The largest throughput reading taken, bytes per second (a petabyte a second, what the
/// largest `disk_mbps` a platform may give allows): a series without a bandwidth is scaled by
/// its own maximum, and one absurd reading (1e300 KB/s) as that maximum made every other one
/// of the series a fraction of about nothing.
pub const MAX_RATE_BYTES_PER_S: f64 = 1e15;

/// The problem with a throughput reading no device makes, if it is one.
fn absurd_rate(resource: Resource, reading: Reading) -> Option<Issue> {
    match reading {
        Reading::Rate(rate) if rate.is_finite() && rate > MAX_RATE_BYTES_PER_S => Some(Issue::new(
            RejectKind::OutOfRange,
            format!(
                "{}: {} bytes/s is over {} (a petabyte a second)",
                resource.name(),
                super::short_number(rate),
                super::short_number(MAX_RATE_BYTES_PER_S)
            ),
        )),
        _ => None,
    }
}

/// Turns readings into fractions of capacity.
#[derive(Debug, Default)]
struct Scale {
    bandwidth: HashMap<String, (Option<f64>, Option<f64>)>,
    /// Largest rate per (device, resource) in the file.
    maxima: HashMap<(String, Resource), f64>,
}

impl Scale {
    fn bandwidth_of(&self, device: &str, resource: Resource) -> Option<f64> {
        let (disk, network) = self.bandwidth.get(device)?;
        let bandwidth = match resource {
            Resource::Disk => *disk,
            Resource::Network => *network,
            Resource::Cpu | Resource::Memory => None,
        }?;
        (bandwidth.is_finite() && bandwidth > 0.0).then_some(bandwidth)
    }

    fn fraction(&self, device: &str, resource: Resource, reading: Reading) -> f64 {
        match reading {
            Reading::Fraction(fraction) => fraction,
            // Left non-finite so that the caller drops it, whatever the capacity.
            Reading::Rate(rate) if !rate.is_finite() => rate,
            Reading::Rate(rate) => {
                let capacity = self.bandwidth_of(device, resource).or_else(|| {
                    self.maxima
                        .get(&(device.to_string(), resource))
                        .copied()
                        .filter(|maximum| *maximum > 0.0)
                });
                capacity.map_or(0.0, |capacity| rate / capacity)
            }
        }
    }
}

/// Whether a regular file's first non-blank character (past a byte-order mark) is `{`: a
/// JSONL log, whatever its name. Anything that cannot be read says no (the reader then says
/// why it cannot read it).
fn starts_like_json(path: &Path) -> bool {
    use std::io::Read;
    if !std::fs::metadata(path).is_ok_and(|metadata| metadata.is_file()) {
        return false;
    }
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = Vec::with_capacity(4096);
    if file.take(4096).read_to_end(&mut head).is_err() {
        return false;
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
    text.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{')
}

/// The first pass: the largest rate of each series, computed by the very parser the second
/// pass uses, so both see the same rates; with a lateness, over the rows it admits (as the
/// feed's reorder buffer will: a row too far behind the newest one is refused, and its rate,
/// however large, is no part of the series).
fn series_maxima(
    lines: LineSource,
    layout: Layout,
    lateness_ms: Option<i64>,
) -> HashMap<(String, Resource), f64> {
    let mut parser = LineParser::new(layout);
    let mut maxima: HashMap<(String, Resource), f64> = HashMap::new();
    let mut admitted = lateness_ms.map(Reorder::<()>::new);
    for (seq, (_, text)) in lines.enumerate() {
        let Ok(text) = text else { continue };
        let Parsed::Row(Ok(row)) = parser.parse(&text) else {
            continue;
        };
        if let Some(order) = &mut admitted {
            if order.push(row.time, seq as u64, ()).is_err() {
                continue;
            }
            while order.pop_ready().is_some() {}
        }
        for (resource, reading) in row.readings {
            // An overflowing rate is dropped in the second pass; it must not flatten the rest.
            if let Reading::Rate(rate) = reading {
                if !rate.is_finite() || absurd_rate(resource, reading).is_some() {
                    continue;
                }
                let maximum = maxima.entry((row.device.clone(), resource)).or_insert(0.0);
                *maximum = maximum.max(rate);
            }
        }
    }
    maxima
}

/// A problem with one field (or, when nothing of the row survives, with the row).
#[derive(Debug, Clone, PartialEq)]
struct Issue {
    kind: RejectKind,
    reason: String,
}

impl Issue {
    fn new(kind: RejectKind, reason: impl Into<String>) -> Issue {
        Issue {
            kind,
            reason: reason.into(),
        }
    }
}

/// The one rejection of a row refused for all its `issues`: the first one's kind, and every
/// reason (with its kind where that differs), so that a refused record is one line of
/// `rejected.jsonl` and `rejected` in summary.json counts those lines.
fn refusal(issues: Vec<Issue>) -> Option<Issue> {
    let mut issues = issues.into_iter();
    let mut first = issues.next()?;
    for issue in issues {
        first.reason.push_str("; ");
        first.reason.push_str(&issue.reason);
        if issue.kind != first.kind {
            first.reason.push_str(&format!(" ({})", issue.kind));
        }
    }
    Some(first)
}

/// The readings of one row, before normalisation.
#[derive(Debug)]
struct Row {
    time: Time,
    device: String,
    readings: Vec<(Resource, Reading)>,
    /// Fields that were dropped.
    issues: Vec<Issue>,
}

enum Parsed {
    /// A blank line or the header.
    Skip,
    /// The file cannot be read in this format; stop.
    Fatal(String),
    Row(Result<Row, Vec<Issue>>),
}

/// Parses lines of one file; stateful for the header and for NAB's sampling periods.
struct LineParser {
    layout: Layout,
    seen_first_line: bool,
    long_columns: Option<LongColumns>,
    /// Time of the previous row with a valid time (NAB).
    previous_time: Option<Time>,
}

impl LineParser {
    fn new(layout: Layout) -> LineParser {
        LineParser {
            layout,
            seen_first_line: false,
            long_columns: None,
            previous_time: None,
        }
    }

    /// Whether the next non-blank line must be the header (the long CSV format's names its
    /// columns; the others' headers are optional).
    fn awaits_required_header(&self) -> bool {
        !self.seen_first_line && matches!(self.layout, Layout::LongCsv)
    }

    fn parse(&mut self, text: &str) -> Parsed {
        if text.trim().is_empty() {
            return Parsed::Skip;
        }
        if !self.seen_first_line {
            self.seen_first_line = true;
            if let Some(parsed) = self.header(text) {
                return parsed;
            }
        }
        Parsed::Row(match &self.layout {
            Layout::LongCsv => match &self.long_columns {
                Some(columns) => long_csv_row(columns, text),
                None => Err(vec![Issue::new(RejectKind::Schema, "no header")]),
            },
            Layout::LongJsonl => long_jsonl_row(text),
            Layout::Nab { device, resource } => {
                let (device, resource) = (device.clone(), *resource);
                self.nab_row(device, resource, text)
            }
            Layout::Bitbrains { device } => bitbrains_row(device, text),
            Layout::Alibaba => alibaba_row(text),
        })
    }

    /// Handles the first non-blank line: `Some` when it is a header (or a fatally bad one),
    /// `None` when it is data.
    fn header(&mut self, text: &str) -> Option<Parsed> {
        // Lines end at LF (a CRLF's CR dropped): a CR left inside the first line is a file whose
        // lines end in CR alone, read as one line, which would be refused for a header it does
        // not lack. Checked here only, off the per-row path.
        if !matches!(self.layout, Layout::LongJsonl | Layout::Alibaba) && text.contains('\r') {
            return Some(Parsed::Fatal(
                "the first line holds a carriage return: lines that end in CR alone are not \
                 read as lines (end them in LF or CRLF)"
                    .to_string(),
            ));
        }
        match &self.layout {
            Layout::LongCsv => Some(match LongColumns::from_header(text) {
                Ok(columns) => {
                    self.long_columns = Some(columns);
                    Parsed::Skip
                }
                Err(reason) => Parsed::Fatal(reason),
            }),
            Layout::Nab { .. } if parse_time_field(&first_field(text, ',')).is_ok() => None,
            Layout::Nab { .. } => {
                let columns: Vec<String> = match split_csv(text) {
                    Ok(fields) => fields.map(|f| f.to_ascii_lowercase()).collect(),
                    Err(reason) => return Some(Parsed::Fatal(format!("header: {reason}"))),
                };
                Some(if columns == ["timestamp", "value"] {
                    Parsed::Skip
                } else {
                    Parsed::Fatal(format!(
                        "expected the NAB header timestamp,value, found {text:?}"
                    ))
                })
            }
            Layout::Bitbrains { .. } if parse_seconds(&first_field(text, ';')).is_ok() => None,
            Layout::Bitbrains { .. } => Some(
                if first_field(text, ';')
                    .to_ascii_lowercase()
                    .starts_with("timestamp")
                {
                    Parsed::Skip
                } else {
                    Parsed::Fatal(format!("expected the Bitbrains header (Timestamp [ms]; CPU cores; ...), found {text:?}"))
                },
            ),
            Layout::LongJsonl | Layout::Alibaba => None,
        }
    }

    fn nab_row(
        &mut self,
        device: String,
        resource: Resource,
        text: &str,
    ) -> Result<Row, Vec<Issue>> {
        let fields: Vec<Cow<str>> = split_csv(text)
            .map_err(|reason| vec![Issue::new(RejectKind::Parse, reason)])?
            .collect();
        let [time, value] = fields.as_slice() else {
            return Err(vec![Issue::new(
                RejectKind::Schema,
                format!(
                    "expected 2 columns (timestamp,value), found {}",
                    fields.len()
                ),
            )]);
        };
        let time =
            parse_time_field(time).map_err(|reason| vec![Issue::new(RejectKind::Parse, reason)])?;
        let period_s = match self.previous_time.replace(time) {
            Some(previous) if time > previous => time.saturating_sub(previous) as f64 / 1000.0,
            // First row, or a repeated/backward stamp: there is no period to divide by.
            _ => NAB_DEFAULT_PERIOD_S,
        };
        let value = amount("value", value).map_err(|issue| vec![issue])?;
        let reading = match resource {
            Resource::Cpu | Resource::Memory => Reading::Fraction(value / 100.0),
            // NAB throughput is bytes per sampling period.
            Resource::Disk | Resource::Network => Reading::Rate(value / period_s),
        };
        Ok(Row {
            time,
            device,
            readings: vec![(resource, reading)],
            issues: Vec::new(),
        })
    }
}

/// Positions of the long format's columns, found by name, and how many the header names.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct LongColumns {
    time: usize,
    device: usize,
    resource: usize,
    value: usize,
    width: usize,
}

impl LongColumns {
    fn from_header(text: &str) -> Result<LongColumns, String> {
        let names: Vec<String> = split_csv(text)
            .map_err(|reason| format!("header: {reason}"))?
            .map(|f| f.to_ascii_lowercase())
            .collect();
        let find = |wanted: &str| {
            let mut found = (0..names.len()).filter(|&index| names[index] == wanted);
            match (found.next(), found.next()) {
                (Some(first), None) => Ok(first),
                // Either copy would be a guess, and a wrong guess reads every row wrongly.
                (Some(first), Some(second)) => Err(format!(
                    "header names column {wanted:?} twice (columns {} and {})",
                    first + 1,
                    second + 1
                )),
                (None, _) => Err(format!(
                    "header lacks column {wanted:?} (expected time,device,resource,value in any order)"
                )),
            }
        };
        Ok(LongColumns {
            time: find("time")?,
            device: find("device")?,
            resource: find("resource")?,
            value: find("value")?,
            width: names.len(),
        })
    }
}

fn long_csv_row(columns: &LongColumns, text: &str) -> Result<Row, Vec<Issue>> {
    // Most lines have no quote at all: their fields are split in place as plain `&str`, which
    // kept the bare parse of `augur bench ingest`'s log 15-20% faster than going through
    // `Fields` and its `Cow`s.
    if !text.contains('"') {
        return long_csv_fields(columns, text.split(',').map(str::trim));
    }
    let fields = split_csv(text).map_err(|reason| vec![Issue::new(RejectKind::Parse, reason)])?;
    long_csv_fields(columns, fields)
}

fn long_csv_fields<F: AsRef<str>>(
    columns: &LongColumns,
    fields: impl Iterator<Item = F>,
) -> Result<Row, Vec<Issue>> {
    // The four wanted fields are picked as the line is split, without collecting every field.
    let (mut time, mut device, mut resource, mut value) = (None, None, None, None);
    let mut count = 0;
    for (index, field) in fields.enumerate() {
        count += 1;
        // The header names each column once ([`LongColumns::from_header`]), so at most one
        // of these takes the field.
        let slot = if index == columns.time {
            &mut time
        } else if index == columns.device {
            &mut device
        } else if index == columns.resource {
            &mut resource
        } else if index == columns.value {
            &mut value
        } else {
            continue;
        };
        *slot = Some(field);
    }
    // A row wider or narrower than its header is malformed: a field gone missing or one too
    // many (an unquoted comma) shifts what the row means, whichever columns it still has.
    let (Some(time), Some(device), Some(resource), Some(value)) = (time, device, resource, value)
    else {
        return Err(vec![Issue::new(
            RejectKind::Schema,
            format!(
                "too few columns ({count}) for the header's {}",
                columns.width
            ),
        )]);
    };
    if count != columns.width {
        return Err(vec![Issue::new(
            RejectKind::Schema,
            format!("{count} columns where the header has {}", columns.width),
        )]);
    }
    let time = parse_time_field(time.as_ref())
        .map_err(|reason| vec![Issue::new(RejectKind::Parse, reason)])?;
    let value = amount("value", value.as_ref()).map_err(|issue| vec![issue])?;
    long_row(time, device.as_ref(), resource.as_ref(), value)
}

fn long_jsonl_row(text: &str) -> Result<Row, Vec<Issue>> {
    let one = |kind: RejectKind, reason: String| vec![Issue::new(kind, reason)];
    let value: Value = super::json::parse_record(text).map_err(|error| {
        if error.is_data() {
            // Well-formed, but an object names a key twice.
            one(RejectKind::Schema, error.to_string())
        } else {
            one(RejectKind::Parse, format!("invalid JSON: {error}"))
        }
    })?;
    let object = value.as_object().ok_or_else(|| {
        one(
            RejectKind::Schema,
            "a record must be a JSON object".to_string(),
        )
    })?;
    let time = match object.get("time") {
        Some(Value::Number(number)) => parse_seconds(&number.to_string()),
        Some(Value::String(text)) => parse_time_field(text),
        Some(other) => {
            return Err(one(
                RejectKind::Schema,
                format!("time {other} is neither a number nor a string"),
            ))
        }
        None => return Err(one(RejectKind::Schema, "no time".to_string())),
    }
    .map_err(|reason| one(RejectKind::Parse, reason))?;
    let text_field = |key: &str| match object.get(key) {
        Some(Value::String(text)) => Ok(text.as_str()),
        Some(other) => Err(one(
            RejectKind::Schema,
            format!("{key} {other} is not a string"),
        )),
        None => Err(one(RejectKind::Schema, format!("no {key}"))),
    };
    let device = text_field("device")?;
    let resource = text_field("resource")?;
    let value = json_amount(object, "value").map_err(|issue| vec![issue])?;
    long_row(time, device, resource, value)
}

fn json_amount(object: &Map<String, Value>, key: &str) -> Result<f64, Issue> {
    match object.get(key) {
        Some(Value::Number(number)) => {
            let value = number.as_f64().ok_or_else(|| {
                Issue::new(
                    RejectKind::Parse,
                    format!("{key} {number} is not representable"),
                )
            })?;
            checked(key, value)
        }
        Some(other) if super::json::huge_number(other).is_some() => Err(Issue::new(
            RejectKind::NonFinite,
            format!(
                "{key} {} is beyond a 64-bit float's range",
                other.as_str().unwrap_or("")
            ),
        )),
        Some(other) => Err(Issue::new(
            RejectKind::Schema,
            format!("{key} {other} is not a number"),
        )),
        None => Err(Issue::new(RejectKind::Schema, format!("no {key}"))),
    }
}

fn long_row(time: Time, device: &str, resource: &str, value: f64) -> Result<Row, Vec<Issue>> {
    let device = device.trim();
    if device.is_empty() {
        return Err(vec![Issue::new(RejectKind::Schema, "device is empty")]);
    }
    let resource = Resource::from_name(resource.trim()).ok_or_else(|| {
        vec![Issue::new(
            RejectKind::Schema,
            format!("unknown resource {resource:?} (expected cpu, memory, disk or network)"),
        )]
    })?;
    Ok(Row {
        time,
        device: device.to_string(),
        readings: vec![(resource, Reading::Fraction(value))],
        issues: Vec::new(),
    })
}

/// Bitbrains columns, by position (the header's names carry units and vary in spacing).
mod bitbrains_column {
    pub const TIME: usize = 0;
    pub const CPU_PERCENT: usize = 4;
    pub const MEMORY_PROVISIONED_KB: usize = 5;
    pub const MEMORY_USED_KB: usize = 6;
    pub const DISK_READ_KBPS: usize = 7;
    pub const DISK_WRITE_KBPS: usize = 8;
    pub const NETWORK_RECEIVED_KBPS: usize = 9;
    pub const NETWORK_TRANSMITTED_KBPS: usize = 10;
    pub const COUNT: usize = 11;
}

fn bitbrains_row(device: &str, text: &str) -> Result<Row, Vec<Issue>> {
    use bitbrains_column as column;
    // The files separate with ";\t"; splitting on ';' and trimming also takes ";" or "; ".
    let fields: Vec<&str> = text.split(';').map(str::trim).collect();
    if fields.len() != column::COUNT {
        return Err(vec![Issue::new(
            RejectKind::Schema,
            format!("expected {} columns, found {}", column::COUNT, fields.len()),
        )]);
    }
    let field = |index: usize| fields.get(index).copied().unwrap_or("");
    // Despite its "[ms]" label the column holds Unix seconds.
    let time = parse_seconds(field(column::TIME))
        .map_err(|reason| vec![Issue::new(RejectKind::Parse, reason)])?;
    let mut row = Row {
        time,
        device: device.to_string(),
        readings: Vec::new(),
        issues: Vec::new(),
    };
    if let Some(cpu) = row.take("CPU usage [%]", field(column::CPU_PERCENT)) {
        row.readings
            .push((Resource::Cpu, Reading::Fraction(cpu / 100.0)));
    }
    let provisioned = row.take(
        "Memory capacity provisioned [KB]",
        field(column::MEMORY_PROVISIONED_KB),
    );
    let used = row.take("Memory usage [KB]", field(column::MEMORY_USED_KB));
    match (provisioned, used) {
        (Some(provisioned), Some(used)) if provisioned > 0.0 => {
            row.readings
                .push((Resource::Memory, Reading::Fraction(used / provisioned)));
        }
        (Some(_), Some(_)) => row.issues.push(Issue::new(
            RejectKind::Schema,
            "memory: Memory capacity provisioned [KB] is 0",
        )),
        _ => {}
    }
    let read = row.take("Disk read throughput [KB/s]", field(column::DISK_READ_KBPS));
    let written = row.take(
        "Disk write throughput [KB/s]",
        field(column::DISK_WRITE_KBPS),
    );
    if let (Some(read), Some(written)) = (read, written) {
        row.readings.push((
            Resource::Disk,
            Reading::Rate((read + written) * BYTES_PER_KB),
        ));
    }
    let received = row.take(
        "Network received throughput [KB/s]",
        field(column::NETWORK_RECEIVED_KBPS),
    );
    let sent = row.take(
        "Network transmitted throughput [KB/s]",
        field(column::NETWORK_TRANSMITTED_KBPS),
    );
    if let (Some(received), Some(sent)) = (received, sent) {
        row.readings.push((
            Resource::Network,
            Reading::Rate((received + sent) * BYTES_PER_KB),
        ));
    }
    Ok(row)
}

/// Alibaba v2018 `machine_usage` columns, by position (the files have no header).
mod alibaba_column {
    pub const MACHINE: usize = 0;
    pub const TIME: usize = 1;
    pub const CPU: usize = 2;
    pub const MEMORY: usize = 3;
    pub const NET_IN: usize = 6;
    pub const NET_OUT: usize = 7;
    pub const DISK: usize = 8;
    pub const COUNT: usize = 9;
}

fn alibaba_row(text: &str) -> Result<Row, Vec<Issue>> {
    use alibaba_column as column;
    let fields: Vec<Cow<str>> = split_csv(text)
        .map_err(|reason| vec![Issue::new(RejectKind::Parse, reason)])?
        .collect();
    if fields.len() != column::COUNT {
        return Err(vec![Issue::new(
            RejectKind::Schema,
            format!("expected {} columns, found {}", column::COUNT, fields.len()),
        )]);
    }
    let field = |index: usize| fields.get(index).map_or("", |f| f.as_ref());
    let device = field(column::MACHINE);
    if device.is_empty() {
        return Err(vec![Issue::new(RejectKind::Schema, "machine_id is empty")]);
    }
    let time = parse_seconds(field(column::TIME))
        .map_err(|reason| vec![Issue::new(RejectKind::Parse, reason)])?;
    let mut row = Row {
        time,
        device: device.to_string(),
        readings: Vec::new(),
        issues: Vec::new(),
    };
    if let Some(cpu) = row.take_percent("cpu_util_percent", field(column::CPU)) {
        row.readings
            .push((Resource::Cpu, Reading::Fraction(cpu / 100.0)));
    }
    if let Some(memory) = row.take_percent("mem_util_percent", field(column::MEMORY)) {
        row.readings
            .push((Resource::Memory, Reading::Fraction(memory / 100.0)));
    }
    if let Some(disk) = row.take_percent("disk_io_percent", field(column::DISK)) {
        row.readings
            .push((Resource::Disk, Reading::Fraction(disk / 100.0)));
    }
    let net_in = row.take_percent("net_in", field(column::NET_IN));
    let net_out = row.take_percent("net_out", field(column::NET_OUT));
    if let (Some(net_in), Some(net_out)) = (net_in, net_out) {
        // The link is saturated by whichever direction is busier.
        row.readings.push((
            Resource::Network,
            Reading::Fraction(net_in.max(net_out) / 100.0),
        ));
    }
    Ok(row)
}

impl Row {
    /// A finite, non-negative field, or `None` with the problem noted.
    fn take(&mut self, column: &str, text: &str) -> Option<f64> {
        amount(column, text)
            .map_err(|issue| self.issues.push(issue))
            .ok()
    }

    /// An Alibaba percentage; outside [0, 100] (-1 and 101 in practice) marks a bad reading.
    fn take_percent(&mut self, column: &str, text: &str) -> Option<f64> {
        let value = self.take(column, text)?;
        if value > 100.0 {
            self.issues.push(Issue::new(
                RejectKind::Schema,
                format!(
                    "{column}: {} is outside [0, 100] (a bad reading)",
                    super::short_number(value)
                ),
            ));
            return None;
        }
        Some(value)
    }
}

/// Parses a finite, non-negative number.
fn amount(column: &str, text: &str) -> Result<f64, Issue> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Issue::new(RejectKind::Parse, format!("{column}: empty")));
    }
    let value: f64 = text.parse().map_err(|_| {
        Issue::new(
            RejectKind::Parse,
            format!("{column}: {text:?} is not a number"),
        )
    })?;
    // A number past f64's range (1e400) parses as infinity: the message quotes what was written.
    if value.is_infinite() && !text.to_ascii_lowercase().contains("inf") {
        return Err(Issue::new(
            RejectKind::NonFinite,
            format!(
                "{column}: {} is too large to represent",
                text.chars().take(40).collect::<String>()
            ),
        ));
    }
    checked(column, value)
}

fn checked(column: &str, value: f64) -> Result<f64, Issue> {
    if !value.is_finite() {
        Err(Issue::new(
            RejectKind::NonFinite,
            format!("{column}: {} is not finite", super::short_number(value)),
        ))
    } else if value < 0.0 {
        Err(Issue::new(
            RejectKind::Negative,
            format!("{column}: {} is negative", super::short_number(value)),
        ))
    } else {
        Ok(value)
    }
}

/// The first field of a line, as every reader splits it (RFC 4180 quoting); empty where the
/// line's quoting is malformed (the row's own parse then says how). `run` names an Alibaba
/// file's machines by it, and [`MetricOptions::only_machine`] picks rows by it: the two must
/// agree, or a line would be counted by no reader or by two.
pub fn first_field(text: &str, separator: char) -> Cow<'_, str> {
    split_fields(text, separator)
        .ok()
        .and_then(|mut fields| fields.next())
        .unwrap_or_default()
}

/// Splits a CSV line into its fields ([`split_fields`]: quoted fields may hold commas).
fn split_csv(text: &str) -> Result<Fields<'_>, String> {
    split_fields(text, ',')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(
        text: &str,
        path: &str,
        format: MetricFormat,
        options: &MetricOptions,
    ) -> (Vec<LineOutcome>, InputStats) {
        let mut reader = MetricReader::from_text(text, path, format, options);
        let outcomes: Vec<LineOutcome> = reader.by_ref().collect();
        let stats = reader.stats();
        assert_eq!(stats.read, stats.accepted + stats.rejected);
        assert_eq!(stats.read, outcomes.len() as u64);
        (outcomes, stats)
    }

    fn values(outcomes: &[LineOutcome], resource: Resource) -> Vec<f64> {
        outcomes
            .iter()
            .flat_map(|outcome| &outcome.records)
            .filter(|record| record.resource == resource)
            .map(|record| record.value)
            .collect()
    }

    fn kinds(outcome: &LineOutcome) -> Vec<RejectKind> {
        outcome
            .rejections
            .iter()
            .map(|rejection| rejection.kind)
            .collect()
    }

    fn assert_close(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-9, "{actual:?} vs {expected:?}");
        }
    }

    fn nab_options(device: &str, resource: Resource) -> MetricOptions {
        MetricOptions {
            nab_target: Some((device.to_string(), resource)),
            ..MetricOptions::default()
        }
    }

    #[test]
    fn readers_can_move_to_another_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<MetricReader>();
        assert_send::<crate::input::EventReader>();
    }

    #[test]
    fn only_machine_splits_a_grouped_file_and_counts_every_line_once() {
        let text =
            "m_2,20,10,10,,,1,1,1\nm_1,10,10,10,,,1,1,1\n,5,1,1,,,1,1,1\nm_1,30,10,10,,,1,1,1\n";
        let read = |machine: &str, orphans: bool| {
            let options = MetricOptions {
                only_machine: Some((machine.to_string(), orphans)),
                ..MetricOptions::default()
            };
            let outcomes: Vec<LineOutcome> =
                MetricReader::from_text(text, "usage.csv", MetricFormat::Alibaba, &options)
                    .collect();
            outcomes.iter().map(|o| o.line).collect::<Vec<u64>>()
        };
        assert_eq!(read("m_1", false), vec![2, 4]);
        assert_eq!(read("m_2", true), vec![1, 3]);
    }

    #[test]
    fn format_names() {
        for format in [
            MetricFormat::Long,
            MetricFormat::Nab,
            MetricFormat::Bitbrains,
            MetricFormat::Alibaba,
        ] {
            assert_eq!(format.name().parse::<MetricFormat>(), Ok(format));
        }
        assert!("csv".parse::<MetricFormat>().is_err());
    }

    #[test]
    fn long_csv_by_column_name_with_every_rejection() {
        let text = "value,device,time,resource\n\
                    0.5,edge-1,10,cpu\n\
                    \n\
                    1.3,edge-1,2014-02-14 00:00:00,mem\n\
                    NaN,edge-1,11,cpu\n\
                    -0.1,edge-1,12,cpu\n\
                    0.2,edge-1,later,cpu\n\
                    0.2,edge-1,13,gpu\n\
                    0.2,edge-1\n\
                    0.2,,13,cpu\n\
                    0.25,\"edge-2\",14,network\n";
        let (outcomes, stats) = read(text, "m.csv", MetricFormat::Long, &MetricOptions::default());
        assert_eq!(
            stats,
            InputStats {
                read: 9,
                accepted: 3,
                rejected: 6,
                dropped_fields: 0
            }
        );
        assert_eq!(outcomes[0].line, 2);
        assert_eq!(
            outcomes[0].records,
            vec![MetricRecord {
                time: 10_000,
                device: "edge-1".into(),
                resource: Resource::Cpu,
                value: 0.5
            }]
        );
        assert_eq!(outcomes[1].records[0].value, 1.3, "over-commit is kept");
        assert_eq!(outcomes[1].records[0].resource, Resource::Memory);
        assert_eq!(outcomes[1].records[0].time, 1_392_336_000_000);
        let rejected: Vec<Vec<RejectKind>> = outcomes[2..8].iter().map(kinds).collect();
        assert_eq!(
            rejected,
            vec![
                vec![RejectKind::NonFinite],
                vec![RejectKind::Negative],
                vec![RejectKind::Parse],
                vec![RejectKind::Schema],
                vec![RejectKind::Schema],
                vec![RejectKind::Schema],
            ]
        );
        assert_eq!(outcomes[2].rejections[0].line, Some(5));
        assert_eq!(outcomes[8].records[0].device, "edge-2");
    }

    #[test]
    fn quoted_csv_fields_hold_commas_and_quotes_and_bad_quoting_is_refused() {
        // As pandas' and spreadsheets' exports quote them (RFC 4180).
        let text = "\"time\",\"device\",\"resource\",\"value\"\n\
                    10,\"rack 1, node 3\",cpu,0.5\n\
                    11,\"the \"\"big\"\" one\",cpu,\"0.25\"\n\
                    12,\"rack 1, node 3,cpu,0.5\n\
                    13,\"rack 1\"x,cpu,0.5\n";
        let (outcomes, stats) = read(text, "m.csv", MetricFormat::Long, &MetricOptions::default());
        assert_eq!((stats.accepted, stats.rejected), (2, 2));
        assert_eq!(outcomes[0].records[0].device, "rack 1, node 3");
        assert_eq!(outcomes[1].records[0].device, "the \"big\" one");
        assert_eq!(outcomes[1].records[0].value, 0.25);
        assert_eq!(kinds(&outcomes[2]), vec![RejectKind::Parse]);
        assert_eq!(
            outcomes[2].rejections[0].reason,
            "field 2 opens a double quote that is never closed"
        );
        assert_eq!(outcomes[3].rejections[0].line, Some(5));
        assert!(outcomes[3].rejections[0]
            .reason
            .contains("text after its closing double quote"));

        // A NAB file written with every field quoted reads as the plain one.
        let nab = "\"timestamp\",\"value\"\n\"2014-02-14 14:30:00\",\"12.5\"\n";
        let options = nab_options("n1", Resource::Cpu);
        let (outcomes, stats) = read(nab, "x.csv", MetricFormat::Nab, &options);
        assert_eq!((stats.accepted, stats.rejected), (1, 0));
        assert_eq!(outcomes[0].records[0].time, 1_392_388_200_000);
        assert_eq!(outcomes[0].records[0].value, 0.125);

        // A header whose quoting is broken makes the file unusable, with the reason.
        let (outcomes, _) = read(
            "time,\"device,resource,value\n1,a,cpu,0.5\n",
            "m.csv",
            MetricFormat::Long,
            &MetricOptions::default(),
        );
        assert!(outcomes[0].rejections[0]
            .reason
            .contains("header: field 2 opens a double quote"));
    }

    #[test]
    fn long_csv_without_the_needed_header_refuses_every_line_it_cannot_read() {
        let (outcomes, stats) = read(
            "t,d,r,v\n1,a,cpu,0.5\n\n2,a,cpu,0.5\n",
            "m.csv",
            MetricFormat::Long,
            &MetricOptions::default(),
        );
        assert_eq!(outcomes.len(), 3);
        assert_eq!(kinds(&outcomes[0]), vec![RejectKind::Schema]);
        assert!(outcomes[0].rejections[0].reason.contains("\"time\""));
        assert!(outcomes[1].rejections[0]
            .reason
            .contains("no usable header"));
        assert_eq!(outcomes[2].rejections[0].line, Some(4));
        assert_eq!((stats.read, stats.rejected), (3, 3));
    }

    /// A JSONL record naming a key twice is refused, not read as its last copy.
    #[test]
    fn a_jsonl_record_with_a_key_given_twice_is_refused() {
        let (outcomes, stats) = read(
            "{\"time\":1,\"device\":\"a\",\"resource\":\"cpu\",\"value\":0.5,\"value\":0.9}\n\
             {\"time\":2,\"device\":\"a\",\"resource\":\"cpu\",\"value\":0.5}\n",
            "m.jsonl",
            MetricFormat::Long,
            &MetricOptions::default(),
        );
        assert_eq!((stats.accepted, stats.rejected), (1, 1));
        assert_eq!(kinds(&outcomes[0]), vec![RejectKind::Schema]);
        assert!(
            outcomes[0].rejections[0]
                .reason
                .contains("key \"value\" is given twice"),
            "{}",
            outcomes[0].rejections[0].reason
        );
    }

    /// A number past a 64-bit float in a key nobody reads costs nothing; as the value, it is
    /// refused as such, not as a line of invalid JSON.
    #[test]
    fn a_jsonl_number_past_a_float_costs_its_field_only() {
        let (outcomes, stats) = read(
            "{\"time\":1,\"device\":\"a\",\"resource\":\"cpu\",\"value\":0.5,\"note\":1e400}\n\
             {\"time\":2,\"device\":\"a\",\"resource\":\"cpu\",\"value\":-1e400}\n",
            "m.jsonl",
            MetricFormat::Long,
            &MetricOptions::default(),
        );
        assert_eq!((stats.accepted, stats.rejected), (1, 1));
        assert!(outcomes[0].rejections.is_empty());
        assert_eq!(kinds(&outcomes[1]), vec![RejectKind::NonFinite]);
        assert!(
            outcomes[1].rejections[0]
                .reason
                .contains("value -1e400 is beyond a 64-bit float's range"),
            "{}",
            outcomes[1].rejections[0].reason
        );
    }

    /// A file whose lines end in CR alone is one line: the reason names the line endings, not
    /// a missing column.
    #[test]
    fn lines_ending_in_cr_alone_are_named_as_such() {
        for format in [MetricFormat::Long, MetricFormat::Nab] {
            let (text, options) = match format {
                MetricFormat::Long => (
                    "time,device,resource,value\r1,a,cpu,0.5\r2,a,cpu,0.5\r",
                    MetricOptions::default(),
                ),
                _ => (
                    "timestamp,value\r2014-02-14 14:30:00,1\r",
                    nab_options("d", Resource::Cpu),
                ),
            };
            let (outcomes, stats) = read(text, "m.csv", format, &options);
            assert_eq!(stats.accepted, 0);
            assert!(
                outcomes[0].rejections[0]
                    .reason
                    .contains("lines that end in CR alone"),
                "{:?}",
                outcomes[0].rejections
            );
        }
        // CRLF is read as usual.
        let (_, stats) = read(
            "time,device,resource,value\r\n1,a,cpu,0.5\r\n",
            "m.csv",
            MetricFormat::Long,
            &MetricOptions::default(),
        );
        assert_eq!(stats.accepted, 1);
    }

    #[test]
    fn csv_rows_wider_or_narrower_than_their_layout_are_refused() {
        // An unquoted comma or a lost field shifts the row, even where the wanted columns
        // are still there to be read.
        let (outcomes, stats) = read(
            "time,device,resource,value,unit\n1,a,cpu,0.5,frac\n2,a,cpu,0.5\n3,a,cpu,0.5,frac,x\n",
            "m.csv",
            MetricFormat::Long,
            &MetricOptions::default(),
        );
        assert_eq!(stats.accepted, 1);
        let reasons: Vec<&str> = outcomes[1..]
            .iter()
            .map(|outcome| outcome.rejections[0].reason.as_str())
            .collect();
        assert_eq!(
            reasons,
            [
                "4 columns where the header has 5",
                "6 columns where the header has 5"
            ]
        );
        let (outcomes, stats) = read(
            "m_1,1,1,1,,,1,1,1,extra\nm_1,2,1,1,,,1,1,1\n",
            "a.csv",
            MetricFormat::Alibaba,
            &MetricOptions::default(),
        );
        assert_eq!((stats.accepted, stats.rejected), (1, 1));
        assert_eq!(
            outcomes[0].rejections[0].reason,
            "expected 9 columns, found 10"
        );
    }

    #[test]
    fn long_csv_whose_header_cannot_be_read_reads_no_row_as_one() {
        // An oversized header used to be refused, and the first row then taken for the header
        // ("header lacks column time").
        let text = format!(
            "time,device,resource,value,{}\n1,a,cpu,0.5,x\n2,a,cpu,0.5,x\n",
            "n".repeat(100)
        );
        let options = MetricOptions {
            max_line_bytes: 64,
            ..MetricOptions::default()
        };
        let (outcomes, stats) = read(&text, "m.csv", MetricFormat::Long, &options);
        assert_eq!((stats.read, stats.rejected), (3, 3));
        assert_eq!(kinds(&outcomes[0]), vec![RejectKind::OversizedLine]);
        for outcome in &outcomes[1..] {
            let reason = &outcome.rejections[0].reason;
            assert!(
                reason.starts_with("not read: the file has no usable header (line 1: line of"),
                "{reason}"
            );
        }
    }

    #[test]
    fn long_csv_header_naming_a_column_twice_is_refused() {
        let (outcomes, stats) = read(
            "time,device,value,resource,Value\n1,a,0.5,cpu,0.9\n",
            "m.csv",
            MetricFormat::Long,
            &MetricOptions::default(),
        );
        assert_eq!(kinds(&outcomes[0]), vec![RejectKind::Schema]);
        assert!(
            outcomes[0].rejections[0]
                .reason
                .contains("\"value\" twice (columns 3 and 5)"),
            "{:?}",
            outcomes[0].rejections
        );
        assert!(outcomes.iter().all(|outcome| outcome.records.is_empty()));
        assert_eq!((stats.read, stats.rejected), (2, 2));
    }

    /// A JSONL file is read as such whatever its name says, and a name that says so is heard
    /// in any case.
    #[test]
    fn a_jsonl_file_is_known_by_its_content() {
        let dir = crate::testing::Scratch::new("metrics-jsonl-named");
        let line = "{\"time\": 1, \"device\": \"a\", \"resource\": \"cpu\", \"value\": 0.5}\n";
        for name in ["m.ndjson", "m.JSONL", "m.log", "m.csv"] {
            let path = dir.join(name);
            std::fs::write(&path, format!("\u{feff}\n{line}{line}")).expect("write");
            let options = MetricOptions::default();
            let mut reader = MetricReader::open(&path, MetricFormat::Long, &options).expect(name);
            reader.by_ref().for_each(drop);
            let stats = reader.stats();
            assert_eq!((stats.accepted, stats.rejected), (2, 0), "{name}");
        }
    }

    #[test]
    fn long_jsonl_is_sniffed() {
        let text = "{\"time\": 1.5, \"device\": \"a\", \"resource\": \"disk\", \"value\": 0.75}\n\
                    {\"time\": \"2014-02-14T00:00:00\", \"device\": \"a\", \"resource\": \"cpu\", \"value\": 2}\n\
                    {\"time\": 1, \"device\": \"a\", \"resource\": \"cpu\", \"value\": -1}\n\
                    {\"time\": 1, \"device\": \"a\", \"resource\": \"cpu\", \"value\": \"high\"}\n\
                    {\"time\": 1, \"device\": \"a\", \"resource\": \"cpu\"\n";
        let (outcomes, stats) = read(text, "m.txt", MetricFormat::Long, &MetricOptions::default());
        assert_eq!((stats.accepted, stats.rejected), (2, 3));
        assert_eq!(outcomes[0].records[0].time, 1_500);
        assert_eq!(outcomes[0].records[0].resource, Resource::Disk);
        assert_eq!(outcomes[1].records[0].value, 2.0);
        assert_eq!(kinds(&outcomes[2]), vec![RejectKind::Negative]);
        assert_eq!(kinds(&outcomes[3]), vec![RejectKind::Schema]);
        assert_eq!(kinds(&outcomes[4]), vec![RejectKind::Parse]);
    }

    #[test]
    fn nab_cpu_is_percent() {
        let text = "timestamp,value\n2014-02-14 00:00:00,50\n2014-02-14 00:05:00,150.5\n2014-02-14 00:10:00,inf\n";
        let (outcomes, stats) = read(
            text,
            "ec2.csv",
            MetricFormat::Nab,
            &nab_options("i-1", Resource::Cpu),
        );
        assert_eq!((stats.read, stats.accepted, stats.rejected), (3, 2, 1));
        assert_close(&values(&outcomes, Resource::Cpu), &[0.5, 1.505]);
        assert_eq!(outcomes[0].records[0].device, "i-1");
        assert_eq!(outcomes[0].records[0].time, 1_392_336_000_000);
        assert_eq!(kinds(&outcomes[2]), vec![RejectKind::NonFinite]);
    }

    #[test]
    fn nab_without_target_is_refused() {
        let (outcomes, stats) = read(
            "timestamp,value\n",
            "x.csv",
            MetricFormat::Nab,
            &MetricOptions::default(),
        );
        assert_eq!(outcomes.len(), 1);
        assert_eq!(kinds(&outcomes[0]), vec![RejectKind::Schema]);
        assert!(outcomes[0].rejections[0]
            .reason
            .contains("--map x.csv=DEVICE:RESOURCE"));
        assert_eq!(stats.rejected, 1);
        let opened = MetricReader::open(
            Path::new("x.csv"),
            MetricFormat::Nab,
            &MetricOptions::default(),
        );
        assert!(matches!(
            opened,
            Err(Rejection {
                kind: RejectKind::Schema,
                ..
            })
        ));
    }

    #[test]
    fn nab_bad_header_and_headerless_files() {
        let (outcomes, _) = read(
            "when,what\n",
            "x.csv",
            MetricFormat::Nab,
            &nab_options("d", Resource::Cpu),
        );
        assert_eq!(kinds(&outcomes[0]), vec![RejectKind::Schema]);
        let (outcomes, stats) = read(
            "2014-02-14 00:00:00,1\n",
            "x.csv",
            MetricFormat::Nab,
            &nab_options("d", Resource::Cpu),
        );
        assert_eq!(stats.accepted, 1);
        assert_close(&values(&outcomes, Resource::Cpu), &[0.01]);
    }

    #[test]
    fn nab_throughput_is_bytes_per_period() {
        let text = "timestamp,value\n\
                    2014-04-02 14:25:00,300\n\
                    2014-04-02 14:30:00,600\n\
                    2014-04-02 14:40:00,600\n\
                    2014-04-02 14:40:00,300\n";
        // Rates 1, 2, 1 and (repeated stamp: default period) 1 byte/s.
        let (outcomes, _) = read(
            text,
            "disk.csv",
            MetricFormat::Nab,
            &nab_options("d", Resource::Disk),
        );
        assert_close(&values(&outcomes, Resource::Disk), &[0.5, 1.0, 0.5, 0.5]);
        let mut options = nab_options("d", Resource::Disk);
        options.bandwidth.insert("d".to_string(), (Some(4.0), None));
        let (outcomes, _) = read(text, "disk.csv", MetricFormat::Nab, &options);
        assert_close(&values(&outcomes, Resource::Disk), &[0.25, 0.5, 0.25, 0.25]);
        let zeros = "timestamp,value\n2014-04-02 14:25:00,0\n";
        let (outcomes, _) = read(
            zeros,
            "disk.csv",
            MetricFormat::Nab,
            &nab_options("d", Resource::Network),
        );
        assert_close(&values(&outcomes, Resource::Network), &[0.0]);
    }

    const BITBRAINS_HEADER: &str = "Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\t\
        CPU usage [%];\tMemory capacity provisioned [KB];\tMemory usage [KB];\tDisk read throughput [KB/s];\t\
        Disk write throughput [KB/s];\tNetwork received throughput [KB/s];\tNetwork transmitted throughput [KB/s]";

    #[test]
    fn bitbrains_rows() {
        let text = format!(
            "{BITBRAINS_HEADER}\n\
             1372629804;\t2;\t5851.9989;\t87.78;\t150.0;\t1000.0;\t250.0;\t1.0;\t1.0;\t2.0;\t2.0\n\
             1372630104;\t2;\t5851.9989;\t87.78;\t10.0;\t0.0;\t250.0;\t3.0;\t1.0;\t1.0;\t0.0\n\
             1372630404;\t2;\t5851.9989;\t87.78;\t-3;\tx;\t250.0;\tNaN;\t1.0;\t1.0;\t0.0\n\
             1372630704;\t2;\t5851.9989\n\
             soon;\t2;\t5851.9989;\t87.78;\t10.0;\t0.0;\t250.0;\t3.0;\t1.0;\t1.0;\t0.0\n"
        );
        let (outcomes, stats) = read(
            &text,
            "rnd/2013-7/7.csv",
            MetricFormat::Bitbrains,
            &MetricOptions::default(),
        );
        assert_eq!(
            stats,
            InputStats {
                read: 5,
                accepted: 3,
                rejected: 2,
                dropped_fields: 4
            }
        );
        assert_eq!(outcomes[0].records[0].device, "7");
        assert_eq!(outcomes[0].records[0].time, 1_372_629_804_000);
        assert_close(&values(&outcomes, Resource::Cpu), &[1.5, 0.1]);
        assert_close(&values(&outcomes, Resource::Memory), &[0.25]);
        // Disk rates 2048, 4096 bytes/s, network 4096, 1024, 1024: fractions of each maximum.
        assert_close(&values(&outcomes, Resource::Disk), &[0.5, 1.0]);
        assert_close(&values(&outcomes, Resource::Network), &[1.0, 0.25, 0.25]);
        assert_eq!(kinds(&outcomes[1]), vec![RejectKind::DroppedField]);
        assert!(outcomes[1].rejections[0].reason.contains("provisioned"));
        assert_eq!(kinds(&outcomes[2]), vec![RejectKind::DroppedField; 3]);
        assert_eq!(kinds(&outcomes[3]), vec![RejectKind::Schema]);
        assert_eq!(kinds(&outcomes[4]), vec![RejectKind::Parse]);
    }

    #[test]
    fn bitbrains_overflowing_sums_are_dropped() {
        let text =
            format!("{BITBRAINS_HEADER}\n1; 2; 5851; 87; 10; 1e-300; 1e300; 1e308; 1e308; 1; 1\n");
        let (outcomes, stats) = read(
            &text,
            "7.csv",
            MetricFormat::Bitbrains,
            &MetricOptions::default(),
        );
        assert_eq!(stats.dropped_fields, 2);
        assert_eq!(kinds(&outcomes[0]), vec![RejectKind::DroppedField; 2]);
        assert!(outcomes[0]
            .records
            .iter()
            .all(|record| record.value.is_finite()));
        assert_close(&values(&outcomes, Resource::Network), &[1.0]);
        let second = "2; 2; 5851; 87; 10; 1; 1; 512; 512; 1; 1";
        let (outcomes, _) = read(
            &format!("{text}{second}\n"),
            "7.csv",
            MetricFormat::Bitbrains,
            &MetricOptions::default(),
        );
        assert_close(&values(&outcomes, Resource::Disk), &[1.0]);
    }

    /// A finite but absurd throughput is dropped, not made the series' maximum: as that, every
    /// other reading of the series read as a fraction of about nothing.
    #[test]
    fn an_absurd_throughput_is_dropped_and_does_not_scale_the_series() {
        let text = format!(
            "{BITBRAINS_HEADER}\n\
             1; 2; 5851; 87; 10; 1000; 250; 1e300; 0; 1; 1\n\
             2; 2; 5851; 87; 10; 1000; 250; 512; 512; 1; 1\n\
             3; 2; 5851; 87; 10; 1000; 250; 256; 256; 1; 1\n"
        );
        let (outcomes, stats) = read(
            &text,
            "7.csv",
            MetricFormat::Bitbrains,
            &MetricOptions::default(),
        );
        assert_eq!((stats.accepted, stats.dropped_fields), (3, 1));
        assert_eq!(kinds(&outcomes[0]), vec![RejectKind::DroppedField]);
        assert!(
            outcomes[0].rejections[0].reason.contains("petabyte"),
            "{}",
            outcomes[0].rejections[0].reason
        );
        assert_close(&values(&outcomes, Resource::Disk), &[1.0, 0.5]);
    }

    #[test]
    fn bitbrains_with_known_bandwidth() {
        let text = format!(
            "{BITBRAINS_HEADER}\n1372629804; 2; 5851; 87; 10; 1000; 250; 1.0; 1.0; 2.0; 2.0\n"
        );
        let mut options = MetricOptions::default();
        options
            .bandwidth
            .insert("7".to_string(), (Some(4096.0), Some(8192.0)));
        let (outcomes, _) = read(&text, "7.csv", MetricFormat::Bitbrains, &options);
        assert_close(&values(&outcomes, Resource::Disk), &[0.5]);
        assert_close(&values(&outcomes, Resource::Network), &[0.5]);
    }

    #[test]
    fn alibaba_rows_drop_bad_readings() {
        let text = "m_1,100,41,92,,,43.04,33.08,5\n\
                    m_1,160,41,92,,,43.04,60,-1\n\
                    m_1,220,101,92,,,,,5\n\
                    m_2,0,-1,101,,,x,nan,101\n\
                    m_2,bad,1,1,,,1,1,1\n\
                    m_2,5,1\n";
        let (outcomes, stats) = read(
            text,
            "machine_usage.csv",
            MetricFormat::Alibaba,
            &MetricOptions::default(),
        );
        assert_eq!(
            stats,
            InputStats {
                read: 6,
                accepted: 3,
                rejected: 3,
                dropped_fields: 4
            }
        );
        assert_eq!(outcomes[0].records.len(), 4);
        assert_eq!(outcomes[0].records[0].device, "m_1");
        assert_eq!(outcomes[0].records[0].time, 100_000);
        assert_close(&values(&outcomes[..1], Resource::Network), &[0.4304]);
        assert_close(&values(&outcomes[1..2], Resource::Network), &[0.6]);
        assert_eq!(kinds(&outcomes[1]), vec![RejectKind::DroppedField]);
        assert!(outcomes[1].rejections[0].reason.contains("disk_io_percent"));
        assert_eq!(outcomes[2].records.len(), 2);
        assert_eq!(kinds(&outcomes[2]), vec![RejectKind::DroppedField; 3]);
        // A row refused for five bad fields is one refusal, which names them all.
        assert_eq!(kinds(&outcomes[3]), vec![RejectKind::Negative]);
        let reason = &outcomes[3].rejections[0].reason;
        for part in ["(schema)", "(parse)", "(non_finite)", "; "] {
            assert!(reason.contains(part), "{reason}");
        }
        assert_eq!(kinds(&outcomes[4]), vec![RejectKind::Parse]);
        assert_eq!(kinds(&outcomes[5]), vec![RejectKind::Schema]);
    }

    #[test]
    fn oversized_and_non_utf8_lines() {
        let long = format!("m_1,1,{},1,,,1,1,1\n", "1".repeat(200));
        let text = format!("{long}m_1,2,1,1,,,1,1,1\n");
        let options = MetricOptions {
            max_line_bytes: 64,
            ..MetricOptions::default()
        };
        let (outcomes, stats) = read(&text, "a.csv", MetricFormat::Alibaba, &options);
        assert_eq!(kinds(&outcomes[0]), vec![RejectKind::OversizedLine]);
        assert_eq!((stats.accepted, stats.rejected), (1, 1));
    }

    #[test]
    fn missing_file_is_io() {
        let opened = MetricReader::open(
            Path::new("/nonexistent/augur/m.csv"),
            MetricFormat::Alibaba,
            &MetricOptions::default(),
        );
        assert!(matches!(
            opened,
            Err(Rejection {
                kind: RejectKind::Io,
                ..
            })
        ));
    }

    fn shared_file(relative: &str) -> Option<PathBuf> {
        let path = crate::testing::shared_data()?.join(relative);
        path.is_file().then_some(path)
    }

    fn read_file(
        path: &Path,
        format: MetricFormat,
        options: &MetricOptions,
    ) -> (Vec<MetricRecord>, InputStats) {
        let mut reader = MetricReader::open(path, format, options).expect("opens");
        let records: Vec<MetricRecord> = reader
            .by_ref()
            .flat_map(|outcome| outcome.records)
            .collect();
        let stats = reader.stats();
        assert_eq!(stats.read, stats.accepted + stats.rejected);
        (records, stats)
    }

    #[test]
    fn shared_nab_files() {
        if let Some(path) = shared_file("nab/data/realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv")
        {
            let (records, stats) = read_file(
                &path,
                MetricFormat::Nab,
                &nab_options("i-24ae8d", Resource::Cpu),
            );
            assert_eq!((stats.read, stats.accepted), (4032, 4032));
            assert!(records
                .iter()
                .all(|record| (0.0..=1.0).contains(&record.value)));
            assert!(records.windows(2).all(|pair| pair[0].time < pair[1].time));
        }
        if let Some(path) =
            shared_file("nab/data/realAWSCloudwatch/ec2_disk_write_bytes_c0d644.csv")
        {
            let (records, stats) = read_file(
                &path,
                MetricFormat::Nab,
                &nab_options("i-c0d644", Resource::Disk),
            );
            assert_eq!((stats.read, stats.accepted), (4032, 4032));
            let maximum = records
                .iter()
                .map(|record| record.value)
                .fold(0.0, f64::max);
            assert!(
                (maximum - 1.0).abs() < 1e-12,
                "normalised by the series maximum: {maximum}"
            );
        }
    }

    #[test]
    fn shared_bitbrains_file() {
        let Some(path) = shared_file("bitbrains_rnd/rnd/2013-7/1.csv") else {
            return;
        };
        let (records, stats) = read_file(&path, MetricFormat::Bitbrains, &MetricOptions::default());
        assert_eq!(stats.read, 8260);
        assert_eq!(stats.accepted, stats.read, "{stats:?}");
        assert!(records
            .iter()
            .all(|record| record.device == "1" && record.value >= 0.0));
        for resource in Resource::ALL {
            let series: Vec<f64> = records
                .iter()
                .filter(|record| record.resource == resource)
                .map(|record| record.value)
                .collect();
            assert!(!series.is_empty(), "{resource:?}");
            let mean = series.iter().sum::<f64>() / series.len() as f64;
            assert!(mean > 0.0 && mean < 2.0, "{resource:?} mean {mean}");
        }
        assert_eq!(
            records.first().map(|record| record.time),
            Some(1_372_629_804_000)
        );
    }

    #[test]
    fn shared_alibaba_sample() {
        let Some(path) = shared_file("alibaba_v2018/machine_usage_sample.csv") else {
            return;
        };
        let (records, stats) = read_file(&path, MetricFormat::Alibaba, &MetricOptions::default());
        // PROVENANCE: 51362 rows; disk_io_percent holds 7 readings of 101 and 4 of -1.
        assert_eq!(
            stats,
            InputStats {
                read: 51_362,
                accepted: 51_362,
                rejected: 0,
                dropped_fields: 11
            }
        );
        assert_eq!(records.len(), 51_362 * 4 - 11);
        let devices: std::collections::BTreeSet<&str> = records
            .iter()
            .map(|record| record.device.as_str())
            .collect();
        assert_eq!(devices.len(), 8);
        assert!(records
            .iter()
            .all(|record| (0.0..=1.0).contains(&record.value)));
        assert!(records
            .iter()
            .all(|record| (0..=700_000_000).contains(&record.time)));
    }
}
