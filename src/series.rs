//! Whole utilisation series in their raw units, for offline evaluation (`augur forecast`,
//! `augur anomalies`).
//!
//! Unlike the streaming metric readers, this keeps each value in the unit of its column and
//! each timestamp's text, so results compare directly with the peer tools (statsforecast through
//! `../shared/peers/forecast_eval.py`, NAB's scorer) that read the same files the same way: rows
//! sorted by time (stable), unparseable, NaN and infinite values and those beyond ±1e300
//! dropped ([`MAX_SERIES_MAGNITUDE`]), Alibaba's -1 and 101 (anything
//! outside [0, 100]) dropped, one series per Alibaba machine, named `file:machine`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use augur_dataflows::types::Time;

use crate::input::time::{parse_seconds, parse_time_field};

/// One series.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The file name, or `file:machine` for Alibaba, or `file:device:resource` for long files.
    pub name: String,
    /// Each point's timestamp as the file writes it.
    pub stamps: Vec<String>,
    /// Each point's time (milliseconds).
    pub times: Vec<Time>,
    /// Each point's value, in the column's own unit.
    pub values: Vec<f64>,
}

/// File formats that hold series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeriesFormat {
    /// NAB: `timestamp,value` with a header.
    Nab,
    /// Bitbrains GWA-T-12: `;`-separated, a header, one VM per file.
    Bitbrains,
    /// Alibaba 2018 machine_usage: no header, one series per machine.
    Alibaba,
    /// augur's long format: `time,device,resource,value`, one series per (device, resource).
    Long,
}

impl std::str::FromStr for SeriesFormat {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "nab" => Ok(SeriesFormat::Nab),
            "bitbrains" => Ok(SeriesFormat::Bitbrains),
            "alibaba" => Ok(SeriesFormat::Alibaba),
            "long" => Ok(SeriesFormat::Long),
            other => Err(format!(
                "unknown series format '{other}' (nab, bitbrains, alibaba or long)"
            )),
        }
    }
}

/// Why a file yielded no series.
#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file's layout is not the format's.
    #[error("{path}: {reason}")]
    Layout {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// One row: its time, its timestamp text, its value.
type Point = (Time, String, f64);

const ALIBABA_COLUMNS: [&str; 9] = [
    "machine_id",
    "time_stamp",
    "cpu_util_percent",
    "mem_util_percent",
    "mem_gps",
    "mkpi",
    "net_in",
    "net_out",
    "disk_io_percent",
];

/// At most this many characters of a file's text go into a message.
const QUOTED_CHARS: usize = 120;

/// Reads every series of a file. `column` picks the value column (by header name; for Alibaba
/// by the trace's column names; for long files, a resource name).
pub fn load_series(
    path: &Path,
    format: SeriesFormat,
    column: Option<&str>,
) -> Result<Vec<Series>, SeriesError> {
    load_series_counted(path, format, column).map(|(series, _)| series)
}

/// A file's data rows, and how many of them no series kept: rows whose time or value did not
/// parse, NaN and infinite values, Alibaba's values outside 0..=100 (the peer tools drop the
/// same rows, so the figures compare). A long file read for one resource counts only that
/// resource's rows (and rows whose resource cannot be read): the others are left out on purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowCount {
    /// Data rows (non-blank lines, the header aside; for a long file read for one resource,
    /// its rows).
    pub rows: usize,
    /// Of them, rows no series kept.
    pub dropped: usize,
}

impl RowCount {
    /// `FILE: D of N rows dropped (...)`, or `None` when none was.
    pub fn note(&self, file: &str) -> Option<String> {
        (self.dropped > 0).then(|| {
            format!(
                "{file}: {} of {} rows dropped (a time or value that does not parse, NaN or \
                 infinite values, values beyond ±1e300, a row wider or narrower than its \
                 header; for Alibaba, values outside 0..=100), as the peer tools drop them",
                self.dropped, self.rows
            )
        })
    }
}

/// [`load_series`], with the count of the rows it kept and dropped.
pub fn load_series_counted(
    path: &Path,
    format: SeriesFormat,
    column: Option<&str>,
) -> Result<(Vec<Series>, RowCount), SeriesError> {
    let display = path.display().to_string();
    let bytes = crate::input::regular::read_regular(path).map_err(|source| SeriesError::Io {
        path: display.clone(),
        source,
    })?;
    // A line with bytes that are not UTF-8 becomes unreadable and is dropped like any other bad
    // row, rather than costing the whole file.
    let text = String::from_utf8_lossy(&bytes);
    let base = path
        .file_name()
        .map_or(display.clone(), |n| n.to_string_lossy().into_owned());
    let (series, long_rows) =
        parse_series_rows(&text, &base, format, column).map_err(|reason| SeriesError::Layout {
            path: display.clone(),
            reason,
        })?;
    let has_rows = text.lines().any(|line| !line.trim().is_empty());
    if series.is_empty() && has_rows {
        return Err(SeriesError::Layout {
            path: display,
            reason: format!("no row could be read as {format:?} (is --format right?)"),
        });
    }
    let header = match format {
        SeriesFormat::Nab | SeriesFormat::Bitbrains => true,
        SeriesFormat::Long => !is_jsonl(&text),
        SeriesFormat::Alibaba => false,
    };
    let rows = long_rows.unwrap_or_else(|| {
        text.lines()
            .skip(usize::from(header))
            .filter(|line| !line.trim().is_empty())
            .count()
    });
    let kept: usize = series.iter().map(|s| s.values.len()).sum();
    let count = RowCount {
        rows,
        dropped: rows.saturating_sub(kept),
    };
    Ok((series, count))
}

/// Refuses a file given twice: its series would be counted twice.
pub fn check_distinct(paths: &[std::path::PathBuf]) -> Result<(), String> {
    let mut seen = crate::same_file::FileIndex::new();
    for path in paths {
        if seen.same_as(path).is_some() {
            return Err(format!("{} is given twice", path.display()));
        }
        seen.insert(path, ());
    }
    Ok(())
}

/// [`load_series`] on text already read; `base` names the series.
pub fn parse_series(
    text: &str,
    base: &str,
    format: SeriesFormat,
    column: Option<&str>,
) -> Result<Vec<Series>, String> {
    parse_series_rows(text, base, format, column).map(|(series, _)| series)
}

/// [`parse_series`], and for a long file the rows it read for the wanted resource (the rows of
/// other resources are left out on purpose; a row whose resource cannot be read counts).
fn parse_series_rows(
    text: &str,
    base: &str,
    format: SeriesFormat,
    column: Option<&str>,
) -> Result<(Vec<Series>, Option<usize>), String> {
    // Editors on some systems start a UTF-8 file with a byte-order mark; `run` skips it too.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        SeriesFormat::Nab => {
            let mut lines = text.lines();
            let first = lines.next().unwrap_or("");
            let header = split(first, ',');
            // NAB's header names its columns; another CSV (a long log, a file with no header)
            // read as if it were NAB's would merge its series into one, silently.
            let refuse = |missing: &str| {
                format!(
                    "expected NAB's header timestamp,value{}, found {:?}: no column '{missing}' (is --format right?)",
                    column.map_or(String::new(), |c| format!(" (or a column '{c}')")),
                    crate::input::clip(first, QUOTED_CHARS),
                )
            };
            // An empty file has no header to check: its series is empty, as before.
            if text.trim().is_empty() {
                return Ok((vec![series(base.to_string(), Vec::new())], None));
            }
            let time_col = position(&header, "timestamp")?.ok_or_else(|| refuse("timestamp"))?;
            let value_col = match column {
                Some(name) => position(&header, name)?.ok_or_else(|| refuse(name))?,
                None => position(&header, "value")?.ok_or_else(|| refuse("value"))?,
            };
            let width = header.len();
            let rows = lines.filter_map(|line| {
                let fields = split(line, ',');
                // A row wider or narrower than its header is refused, as `run` refuses it
                // (pandas, behind the peer tools, fails on a wider one): its fields cannot be
                // told apart.
                if fields.len() != width {
                    return None;
                }
                let stamp = fields.get(time_col)?.to_string();
                let time = parse_time_field(&stamp).ok()?;
                let value = number(fields.get(value_col)?)?;
                Some((time, stamp, value))
            });
            Ok((vec![series(base.to_string(), rows.collect())], None))
        }
        SeriesFormat::Bitbrains => {
            let mut lines = text.lines();
            let header = split(lines.next().unwrap_or(""), ';');
            let name = column.unwrap_or("CPU usage [%]");
            let value_col = position(&header, name)?
                .ok_or_else(|| format!("no column '{name}' in the header"))?;
            let width = header.len();
            let rows = lines.filter_map(|line| {
                let fields = split(line, ';');
                if fields.len() != width {
                    return None;
                }
                let stamp = fields.first()?.to_string();
                let time = parse_seconds(&stamp).ok()?;
                let value = number(fields.get(value_col)?)?;
                Some((time, stamp, value))
            });
            Ok((vec![series(base.to_string(), rows.collect())], None))
        }
        SeriesFormat::Alibaba => {
            let name = column.unwrap_or("cpu_util_percent");
            let value_col = ALIBABA_COLUMNS
                .iter()
                .position(|c| *c == name)
                .ok_or_else(|| format!("no Alibaba column '{name}'"))?;
            let mut machines: BTreeMap<String, Vec<Point>> = BTreeMap::new();
            for line in text.lines() {
                let fields = split(line, ',');
                let (Some(machine), Some(stamp)) = (fields.first(), fields.get(1)) else {
                    continue;
                };
                let Ok(time) = parse_seconds(stamp) else {
                    continue;
                };
                let Some(value) = fields.get(value_col).and_then(|v| number(v)) else {
                    continue;
                };
                if !(0.0..=100.0).contains(&value) || machine.is_empty() {
                    continue;
                }
                machines.entry(machine.to_string()).or_default().push((
                    time,
                    stamp.to_string(),
                    value,
                ));
            }
            Ok((
                machines
                    .into_iter()
                    .map(|(machine, rows)| series(format!("{base}:{machine}"), rows))
                    .collect(),
                None,
            ))
        }
        SeriesFormat::Long => {
            let rows = if is_jsonl(text) {
                long_jsonl_rows(text)
            } else {
                long_csv_rows(text)?
            };
            let mut groups: BTreeMap<(String, String), Vec<Point>> = BTreeMap::new();
            let mut considered = 0;
            // The resources skipped for `--column`, to name them if none is the one wanted.
            let mut others = std::collections::BTreeSet::new();
            for row in rows {
                if let (Some(wanted), Some(resource)) = (column, &row.resource) {
                    if wanted != resource {
                        if others.len() < 16 {
                            others.insert(resource.clone());
                        }
                        continue;
                    }
                }
                considered += 1;
                let (Some(stamp), Some(device), Some(resource), Some(value)) =
                    (row.stamp, row.device, row.resource, row.value)
                else {
                    continue;
                };
                let Ok(time) = parse_time_field(&stamp) else {
                    continue;
                };
                groups
                    .entry((device, resource))
                    .or_default()
                    .push((time, stamp, value));
            }
            let series = groups
                .into_iter()
                .map(|((device, resource), rows)| {
                    series(format!("{base}:{device}:{resource}"), rows)
                })
                .collect::<Vec<_>>();
            if let (Some(wanted), 0) = (column, considered) {
                if !others.is_empty() {
                    let found: Vec<&str> = others.iter().map(String::as_str).collect();
                    return Err(format!(
                        "no row has the resource '{wanted}' (in a long file --column names a \
                         resource; this one has {})",
                        crate::input::clip(&found.join(", "), 4 * QUOTED_CHARS)
                    ));
                }
            }
            Ok((series, Some(considered)))
        }
    }
}

/// Whether a long file is JSONL rather than CSV (whose first line is its header).
fn is_jsonl(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// One non-blank row of a long file, each field `None` where it cannot be read (the value
/// also where it is not a finite number).
#[derive(Default)]
struct LongRow {
    stamp: Option<String>,
    device: Option<String>,
    resource: Option<String>,
    value: Option<f64>,
}

/// A device or resource name: an empty one names nothing, and the row is dropped (and
/// counted), as `run` refuses it, rather than read as a series of its own.
fn name(field: &str) -> Option<String> {
    let field = field.trim();
    (!field.is_empty()).then(|| field.to_string())
}

/// The rows of a long CSV (`time,device,resource,value` in any column order).
fn long_csv_rows(text: &str) -> Result<Vec<LongRow>, String> {
    let mut lines = text.lines();
    let header = split(lines.next().unwrap_or(""), ',');
    let (Some(t), Some(d), Some(r), Some(v)) = (
        position(&header, "time")?,
        position(&header, "device")?,
        position(&header, "resource")?,
        position(&header, "value")?,
    ) else {
        return Err("a long CSV needs the columns time,device,resource,value".into());
    };
    Ok(lines
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields = split(line, ',');
            let field = |index: usize| fields.get(index).map(|f| f.to_string());
            LongRow {
                stamp: field(t),
                device: fields.get(d).and_then(|f| name(f)),
                resource: fields.get(r).and_then(|f| name(f)),
                value: fields.get(v).and_then(|f| number(f)),
            }
        })
        .collect())
}

/// The rows of long JSONL (objects with `time`, a number or a string, `device`, `resource`
/// and a numeric `value`), as `run --metrics` and `augur collect` read and write them.
fn long_jsonl_rows(text: &str) -> Vec<LongRow> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            // A key given twice drops the row, as `run` refuses it.
            let Ok(record) = crate::input::json::parse_record(line) else {
                return LongRow::default();
            };
            let text = |key: &str| record.get(key)?.as_str().and_then(name);
            let stamp = match record.get("time") {
                Some(serde_json::Value::Number(number)) => Some(number.to_string()),
                Some(serde_json::Value::String(stamp)) => Some(stamp.clone()),
                _ => None,
            };
            LongRow {
                stamp,
                device: text("device"),
                resource: text("resource"),
                value: record
                    .get("value")
                    .and_then(|v| v.as_f64())
                    .and_then(in_range),
            }
        })
        .collect()
}

fn series(name: String, mut rows: Vec<Point>) -> Series {
    rows.sort_by_key(|(time, _, _)| *time);
    let mut out = Series {
        name,
        stamps: Vec::with_capacity(rows.len()),
        times: Vec::with_capacity(rows.len()),
        values: Vec::with_capacity(rows.len()),
    };
    for (time, stamp, value) in rows {
        out.times.push(time);
        out.stamps.push(stamp);
        out.values.push(value);
    }
    out
}

/// The fields of a line as `run` reads them; none for a line whose quoting is malformed,
/// which every caller then refuses as it refuses a row of the wrong width (`run` rejects it).
fn split(line: &str, separator: char) -> Vec<Cow<'_, str>> {
    crate::input::fields::split_fields(line, separator)
        .map(Iterator::collect)
        .unwrap_or_default()
}

/// Where the header names `name` (case aside), if it does. A name given twice is refused:
/// either choice would silently read the wrong column half the time.
fn position(header: &[Cow<str>], name: &str) -> Result<Option<usize>, String> {
    let mut found = header
        .iter()
        .enumerate()
        .filter(|(_, h)| h.eq_ignore_ascii_case(name))
        .map(|(index, _)| index);
    match (found.next(), found.next()) {
        (Some(first), Some(second)) => Err(format!(
            "the header names column '{name}' twice (columns {} and {})",
            first + 1,
            second + 1
        )),
        (first, _) => Ok(first),
    }
}

/// Values beyond this magnitude are dropped: the models take differences and sums of a few
/// values (a level plus a damped trend, a value less a season), which overflow to infinity
/// near f64's largest, and a model whose forecast is not finite answers with the last value:
/// on a series alternating between ±1e308 that naive answer scored a perfect 0 at every even
/// horizon. No measured series comes near it.
pub const MAX_SERIES_MAGNITUDE: f64 = 1e300;

/// A value the models can take: finite and within [`MAX_SERIES_MAGNITUDE`].
fn in_range(value: f64) -> Option<f64> {
    (value.abs() <= MAX_SERIES_MAGNITUDE).then_some(value)
}

fn number(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().and_then(in_range)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values the models' differences would overflow are dropped, not forecast (a series
    /// alternating between ±1e308 scored a perfect 0 from the naive fallback).
    #[test]
    fn values_beyond_1e300_are_dropped() {
        let text = "timestamp,value\n2014-02-14 14:30:00,1e300\n2014-02-14 14:35:00,1e308\n\
                    2014-02-14 14:40:00,-1e301\n2014-02-14 14:45:00,-1e300\n";
        let s = parse_series(text, "a.csv", SeriesFormat::Nab, None).expect("parses");
        assert_eq!(s[0].values, vec![1e300, -1e300]);
        let jsonl = "{\"time\":1,\"device\":\"d\",\"resource\":\"cpu\",\"value\":1e308}\n\
                     {\"time\":2,\"device\":\"d\",\"resource\":\"cpu\",\"value\":0.5}\n";
        let s = parse_series(jsonl, "a.jsonl", SeriesFormat::Long, None).expect("parses");
        assert_eq!(s[0].values, vec![0.5]);
    }

    #[test]
    fn nab_rows_sorted_and_bad_values_dropped() {
        let text = "timestamp,value\n2014-02-14 14:35:00,2\n2014-02-14 14:30:00,1\n2014-02-14 14:40:00,nan\n2014-02-14 14:45:00,x\n";
        let s = parse_series(text, "a.csv", SeriesFormat::Nab, None).expect("parses");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].values, vec![1.0, 2.0]);
        assert_eq!(s[0].stamps[0], "2014-02-14 14:30:00");
    }

    #[test]
    fn rows_wider_or_narrower_than_their_header_are_dropped() {
        // Which field is the value cannot be told; `run` refuses such rows too.
        let text = "timestamp,value\n2014-02-14 14:30:00,1\n2014-02-14 14:35:00,5,6\n2014-02-14 14:40:00\n2014-02-14 14:45:00,3\n";
        let s = parse_series(text, "a.csv", SeriesFormat::Nab, None).expect("parses");
        assert_eq!(s[0].values, vec![1.0, 3.0]);
        let text = "Timestamp [ms];CPU usage [%]\n100;1\n200;2;9\n300;3\n";
        let s = parse_series(text, "b.csv", SeriesFormat::Bitbrains, None).expect("parses");
        assert_eq!(s[0].values, vec![1.0, 3.0]);
    }

    #[test]
    fn quoted_commas_and_broken_quotes_read_as_run_reads_them() {
        // A comma inside quotes is part of the device's name; a row whose quoting is broken
        // is dropped as one of the wrong width is (`run` rejects both).
        let text = "time,device,resource,value\n\
                    10,\"rack 1, node 3\",cpu,1\n\
                    20,\"rack 1, node 3\",cpu,\"2\"\n\
                    30,\"rack 1, node 3,cpu,3\n";
        let s = parse_series(text, "m.csv", SeriesFormat::Long, None).expect("parses");
        assert_eq!(s.len(), 1);
        assert!(s[0].name.contains("rack 1, node 3"), "{}", s[0].name);
        assert_eq!(s[0].values, vec![1.0, 2.0]);
    }

    #[test]
    fn alibaba_one_series_per_machine_without_bad_readings() {
        let text = "m_2,10,5,1,,,1,1,1\nm_1,20,7,1,,,1,1,1\nm_1,10,-1,1,,,1,1,1\nm_1,30,101,1,,,1,1,1\nm_1,40,9,1,,,1,1,1\n";
        let s = parse_series(text, "u.csv", SeriesFormat::Alibaba, None).expect("parses");
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["u.csv:m_1", "u.csv:m_2"]);
        assert_eq!(s[0].values, vec![7.0, 9.0]);
        let memory = parse_series(
            text,
            "u.csv",
            SeriesFormat::Alibaba,
            Some("mem_util_percent"),
        )
        .expect("parses");
        assert_eq!(memory[0].values.len(), 4);
    }

    #[test]
    fn bitbrains_column_by_name() {
        let text = "Timestamp [ms];\tCPU cores;\tCPU usage [%]\n20;\t4;\t2.5\n10;\t4;\t1.5\n";
        let s = parse_series(text, "1.csv", SeriesFormat::Bitbrains, None).expect("parses");
        assert_eq!(s[0].values, vec![1.5, 2.5]);
        assert!(parse_series(text, "1.csv", SeriesFormat::Bitbrains, Some("GPU")).is_err());
    }

    #[test]
    fn a_bad_byte_costs_its_line_and_a_wrong_format_is_an_error() {
        let dir = crate::testing::Scratch::new("series");
        let path = dir.join("bytes.csv");
        let mut bytes = b"timestamp,value\n2014-02-14 14:30:00,1\n".to_vec();
        bytes.extend_from_slice(b"2014-02-14 14:35:00,\xff\xfe\n2014-02-14 14:40:00,3\n");
        std::fs::write(&path, bytes).expect("write");
        let series = load_series(&path, SeriesFormat::Nab, None).expect("readable");
        assert_eq!(series[0].values, vec![1.0, 3.0]);
        assert!(load_series(&path, SeriesFormat::Alibaba, None).is_err());
        assert!(check_distinct(&[path.clone(), dir.join("other.csv")]).is_ok());
        assert!(check_distinct(&[path.clone(), path]).is_err());
    }

    #[test]
    fn a_header_naming_a_column_twice_is_refused() {
        let long = "time,device,resource,value,time\n1,a,cpu,0.5,2\n";
        let error = parse_series(long, "m.csv", SeriesFormat::Long, None).expect_err("refused");
        assert!(error.contains("'time' twice (columns 1 and 5)"), "{error}");
        let bitbrains = "Timestamp [ms];CPU usage [%];cpu usage [%]\n10;1.5;2\n";
        let error =
            parse_series(bitbrains, "1.csv", SeriesFormat::Bitbrains, None).expect_err("refused");
        assert!(error.contains("twice (columns 2 and 3)"), "{error}");
        let nab = "timestamp,value,value\n2014-02-14 14:30:00,1,2\n";
        assert!(parse_series(nab, "a.csv", SeriesFormat::Nab, None).is_err());
    }

    #[test]
    fn a_message_quotes_a_huge_header_in_part() {
        let header = "t".repeat(1_000_000);
        let error = parse_series(&format!("{header}\n1,2\n"), "x", SeriesFormat::Nab, None)
            .expect_err("no NAB header");
        assert!(
            error.len() < 400 && error.contains("ttt…"),
            "{}",
            error.len()
        );
    }

    #[test]
    fn a_file_without_nabs_header_is_refused_not_read_as_one_series() {
        let long = "time,device,resource,value\n0,a,cpu,0.5\n0,b,cpu,0.7\n";
        let error = parse_series(long, "m.csv", SeriesFormat::Nab, None).expect_err("refused");
        assert!(
            error.contains("no column 'timestamp'") && error.contains("is --format right?"),
            "{error}"
        );
        let error = parse_series(
            "timestamp,b\n2014-02-14 14:30:00,1\n",
            "a.csv",
            SeriesFormat::Nab,
            None,
        )
        .expect_err("refused");
        assert!(error.contains("no column 'value'"), "{error}");
        let empty =
            parse_series("\n", "e.csv", SeriesFormat::Nab, None).expect("empty is no error");
        assert!(empty.iter().all(|s| s.values.is_empty()));
        let headerless = "2014-02-14 14:30:00,1\n2014-02-14 14:35:00,2\n";
        assert!(parse_series(headerless, "a.csv", SeriesFormat::Nab, None).is_err());
        // Another value column, named.
        let wide = "timestamp,value,other\n2014-02-14 14:30:00,1,7\n";
        let series = parse_series(wide, "a.csv", SeriesFormat::Nab, Some("other")).expect("reads");
        assert_eq!(series[0].values, vec![7.0]);
        let error = parse_series(wide, "a.csv", SeriesFormat::Nab, Some("x")).expect_err("refused");
        assert!(
            error.contains("(or a column 'x')") && error.contains("no column 'x'"),
            "{error}"
        );
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_header() {
        let nab = "\u{feff}timestamp,value\n2014-02-14 14:30:00,1.5\n";
        let series = parse_series(nab, "a.csv", SeriesFormat::Nab, None).expect("reads");
        assert_eq!(series[0].values, vec![1.5]);
        let long = "\u{feff}time,device,resource,value\n0,n1,cpu,0.5\n";
        assert_eq!(
            parse_series(long, "m.csv", SeriesFormat::Long, None)
                .expect("reads")
                .len(),
            1
        );
    }

    #[test]
    fn quoted_fields_read_as_run_reads_them() {
        let nab = "\"timestamp\",\"value\"\n\"2014-02-14 14:30:00\",\"1.5\"\n";
        let series = parse_series(nab, "a.csv", SeriesFormat::Nab, None).expect("reads");
        assert_eq!(series[0].values, vec![1.5]);
        let long = "time,device,resource,value\n0,n1,cpu,0.5\n60,\"n1\",cpu,0.7\n";
        let series = parse_series(long, "m.csv", SeriesFormat::Long, None).expect("reads");
        assert_eq!(series.len(), 1, "one device, quoted or not");
        assert_eq!(series[0].values, vec![0.5, 0.7]);
    }

    #[test]
    fn a_long_file_read_for_one_resource_counts_that_resources_rows() {
        let dir = crate::testing::Scratch::new("series-long");
        let path = dir.join("m.csv");
        let text =
            "time,device,resource,value\n1,a,cpu,0.5\n1,a,memory,x\n2,a,cpu,x\n3\n4,a,cpu,0.7\n";
        std::fs::write(&path, text).expect("write");
        let (series, count) =
            load_series_counted(&path, SeriesFormat::Long, Some("cpu")).expect("readable");
        assert_eq!(series[0].values, vec![0.5, 0.7]);
        // The memory row is left out on purpose; the bad cpu row and the short row are dropped.
        assert_eq!(
            count,
            RowCount {
                rows: 4,
                dropped: 2
            }
        );
        let (_, all) = load_series_counted(&path, SeriesFormat::Long, None).expect("readable");
        assert_eq!(
            all,
            RowCount {
                rows: 5,
                dropped: 3
            }
        );
    }

    #[test]
    fn long_series_per_device_and_resource() {
        let text = "time,device,resource,value\n1,a,cpu,0.5\n1,a,memory,0.2\n2,a,cpu,0.6\n";
        let s = parse_series(text, "m.csv", SeriesFormat::Long, None).expect("parses");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "m.csv:a:cpu");
        assert_eq!(s[0].values, vec![0.5, 0.6]);
    }

    #[test]
    fn long_column_naming_no_resource_says_which_there_are() {
        let text = "time,device,resource,value\n1,a,cpu,0.5\n1,a,memory,0.2\n";
        let error = parse_series(text, "m.csv", SeriesFormat::Long, Some("value"))
            .expect_err("no resource is called value");
        assert!(
            error.contains("no row has the resource 'value'") && error.contains("cpu, memory"),
            "{error}"
        );
        let memory = parse_series(text, "m.csv", SeriesFormat::Long, Some("memory")).expect("ok");
        assert_eq!(memory.len(), 1);
    }

    #[test]
    fn long_jsonl_reads_as_the_long_csv_does() {
        let csv = "time,device,resource,value\n1,a,cpu,0.5\n1,a,memory,0.2\n2,a,cpu,0.6\n";
        let jsonl = concat!(
            "{\"time\":1,\"device\":\"a\",\"resource\":\"cpu\",\"value\":0.5}\n",
            "{\"time\":\"1\",\"device\":\"a\",\"resource\":\"memory\",\"value\":0.2}\n",
            "not json\n",
            "{\"time\":3,\"device\":\"a\",\"resource\":\"cpu\",\"value\":null}\n",
            "{\"time\":2,\"device\":\"a\",\"resource\":\"cpu\",\"value\":0.6}\n",
        );
        let from_csv = parse_series(csv, "m", SeriesFormat::Long, None).expect("csv");
        let from_jsonl = parse_series(jsonl, "m", SeriesFormat::Long, None).expect("jsonl");
        assert_eq!(from_csv, from_jsonl);
        let cpu = parse_series(jsonl, "m", SeriesFormat::Long, Some("cpu")).expect("jsonl");
        assert_eq!(cpu.len(), 1);
        assert_eq!(cpu[0].values, vec![0.5, 0.6]);
    }
}
