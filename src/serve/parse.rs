//! The service's request bodies into records: pure functions over bytes, with the same readers
//! `augur run` uses for files (so a record means the same over HTTP as in a log), and all or
//! nothing: one bad record refuses the whole body.

use augur_dataflows::types::Time;

use crate::input::events::{EventReader, TaskEvent};
use crate::input::metrics::{MetricFormat, MetricOptions, MetricReader, MetricRecord};
use crate::input::time::parse_time_field;
use crate::input::wfformat::{parse_workflow, Workflow};
use crate::input::{RejectKind, Rejection};

use super::body_rejections::BodyRejections;

/// What a body is called in rejections.
pub const METRICS_BODY: &str = "POST /v1/metrics";
/// What an event body is called in rejections.
pub const EVENTS_BODY: &str = "POST /v1/events";

/// Longest workflow name accepted (names appear in URLs).
pub const MAX_NAME_CHARS: usize = 200;

fn utf8<'a>(body: &'a [u8], what: &str) -> Result<&'a str, Vec<Rejection>> {
    std::str::from_utf8(body).map_err(|error| {
        vec![Rejection::whole_file(
            what,
            RejectKind::Parse,
            format!("the body is not UTF-8: {error}"),
        )]
    })
}

/// A body of lines as text, each line that is not UTF-8 refused by its number, as `run`'s line
/// reader refuses it in a file, and left blank in the text so that the reader still numbers,
/// and judges, every other line (the body is refused as a whole if anything is).
fn utf8_lines<'a>(body: &'a [u8], what: &str) -> (std::borrow::Cow<'a, str>, BodyRejections) {
    let mut rejections = BodyRejections::new();
    if let Ok(text) = std::str::from_utf8(body) {
        return (std::borrow::Cow::Borrowed(text), rejections);
    }
    let lines: Vec<&str> = body
        .split(|&byte| byte == b'\n')
        .enumerate()
        .map(|(index, line)| {
            std::str::from_utf8(line).unwrap_or_else(|_| {
                rejections.push(Rejection::at_line(
                    what,
                    index as u64 + 1,
                    RejectKind::Parse,
                    "line is not valid UTF-8",
                ));
                ""
            })
        })
        .collect();
    (std::borrow::Cow::Owned(lines.join("\n")), rejections)
}

/// What a body held: its records, each with its line, and what was wrong with the rest. A body
/// is applied all or nothing, but a refusal lists the bad records (the first
/// [`LISTED_REJECTIONS`](super::body_rejections::LISTED_REJECTIONS) in line order, and counts
/// them all): those the parser refused and those the engine refuses among the parsed ones (an
/// unknown device, a late time).
#[derive(Debug)]
pub struct Parsed<T> {
    /// The records read, with their 1-based lines in the body.
    pub records: Vec<(u64, T)>,
    /// Why the others were refused.
    pub rejections: BodyRejections,
}

impl<T> Parsed<T> {
    /// The records, or the problems the parser found.
    pub fn into_result(self) -> Result<Vec<(u64, T)>, BodyRejections> {
        if self.rejections.is_empty() {
            Ok(self.records)
        } else {
            Err(self.rejections)
        }
    }

    fn refused(rejections: BodyRejections) -> Parsed<T> {
        Parsed {
            records: Vec::new(),
            rejections,
        }
    }
}

/// Metric samples in the `long` format (`time,device,resource,value` CSV with a header, or
/// JSONL objects with those keys).
pub fn parse_metrics(body: &[u8], options: &MetricOptions) -> Parsed<MetricRecord> {
    let (text, unreadable) = utf8_lines(body, METRICS_BODY);
    let mut reader = MetricReader::from_text(&text, METRICS_BODY, MetricFormat::Long, options);
    let mut parsed = Parsed::refused(unreadable);
    for outcome in reader.by_ref() {
        // A dropped field is a partly bad record: over HTTP the client can fix and resend it,
        // so it refuses the body rather than being half-applied.
        parsed.rejections.extend(outcome.rejections);
        let line = outcome.line;
        parsed
            .records
            .extend(outcome.records.into_iter().map(|record| (line, record)));
    }
    parsed
}

/// Task events in the JSONL event format, with their line numbers.
pub fn parse_events(body: &[u8], max_line_bytes: usize) -> Parsed<TaskEvent> {
    let (text, unreadable) = utf8_lines(body, EVENTS_BODY);
    let mut parsed = Parsed::refused(unreadable);
    for outcome in EventReader::from_text(&text, EVENTS_BODY, max_line_bytes) {
        parsed.rejections.extend(outcome.dropped);
        match outcome.event {
            Ok(event) => parsed.records.push((outcome.line, event)),
            Err(rejection) => parsed.rejections.push(rejection),
        }
    }
    parsed
}

/// Whether a workflow name is usable in URLs and files: 1 to 200 of `A-Z a-z 0-9 . _ -`, not
/// starting with a dot.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A WfFormat workflow named `name` (the name a file stem gives it under `augur run`).
pub fn parse_workflow_body(body: &[u8], name: &str) -> Result<Workflow, Vec<Rejection>> {
    let file = format!("{name}.json");
    if !valid_name(name) {
        return Err(vec![Rejection::whole_file(
            file,
            RejectKind::Schema,
            format!(
                "a workflow name is 1 to {MAX_NAME_CHARS} of A-Z a-z 0-9 . _ - (not starting with \
                 a dot)"
            ),
        )]);
    }
    let text = utf8(body, &file)?;
    let read = parse_workflow(text, &file);
    match read.workflow {
        Some(workflow) if read.rejections.is_empty() => Ok(workflow),
        _ => Err(read.rejections),
    }
}

/// An event time given in a query (`arrival=`): seconds or a UTC datetime, as in the logs.
pub fn parse_time_param(text: &str) -> Result<Time, String> {
    parse_time_field(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_are_not_utf8_are_refused_by_number() {
        let body =
            b"time,device,resource,value\n0,a,cpu,0.5\n1,\xff,cpu,0.5\n2,a,cpu,\xfe\n3,a,cpu,NaN\n";
        let mut parsed = parse_metrics(body, &MetricOptions::default());
        let lines: Vec<Option<u64>> = parsed.rejections.listed().iter().map(|r| r.line).collect();
        // The other bad record is listed too, in line order.
        assert_eq!(lines, vec![Some(3), Some(4), Some(5)]);
        assert_eq!(
            parsed.records.len(),
            1,
            "line 2 read (the body is refused whole later)"
        );
        let parsed = parse_events(b"{}\n\xc3\n", 1 << 20);
        let listed = parsed.rejections.into_listed();
        assert!(listed
            .iter()
            .any(|r| r.line == Some(2) && r.reason.contains("UTF-8")));
        assert!(listed.windows(2).all(|w| w[0].line <= w[1].line));
    }

    #[test]
    fn metrics_all_or_nothing() {
        let options = MetricOptions::default();
        let lines = |parsed: Parsed<MetricRecord>| {
            parsed
                .into_result()
                .map(|records| records.iter().map(|(line, _)| *line).collect::<Vec<_>>())
                .map_err(BodyRejections::into_listed)
        };
        // Lines count from the body's first, header and blank lines included.
        let good = b"time,device,resource,value\n1,a,cpu,0.5\n\n2,b,memory,0.25\n";
        assert_eq!(lines(parse_metrics(good, &options)), Ok(vec![2, 4]));
        let bad = b"time,device,resource,value\n1,a,cpu,0.5\nx,b,memory,0.25\n";
        let parsed = parse_metrics(bad, &options);
        assert_eq!(
            parsed.records.len(),
            1,
            "the good records stay, to be checked too"
        );
        let rejections = parsed.into_result().expect_err("bad time").into_listed();
        assert_eq!(rejections.len(), 1);
        assert_eq!(rejections[0].line, Some(3));
        assert!(parse_metrics(b"\xff\xfe", &options).into_result().is_err());
        let jsonl = b"\n{\"time\":1,\"device\":\"a\",\"resource\":\"cpu\",\"value\":0.5}";
        assert_eq!(lines(parse_metrics(jsonl, &options)), Ok(vec![2]));
    }

    #[test]
    fn events_all_or_nothing() {
        let good = br#"{"time":1,"kind":"arrival","workflow":"w"}"#;
        assert_eq!(
            parse_events(good, 1 << 16)
                .into_result()
                .map(|e| e.len())
                .map_err(BodyRejections::into_listed),
            Ok(1)
        );
        let bad = b"{\"time\":1,\"kind\":\"arrival\",\"workflow\":\"w\"}\n{\"time\":1,\"kind\":\"explode\"}\n";
        assert!(parse_events(bad, 1 << 16).into_result().is_err());
    }

    #[test]
    fn names() {
        assert!(valid_name("montage-01.v2_x"));
        for bad in ["", ".hidden", "a/b", "a b", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(parse_workflow_body(b"{}", "../x").is_err());
        assert!(parse_workflow_body(b"not json", "w").is_err());
    }

    #[test]
    fn parsers_survive_arbitrary_bytes() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let sample = b"time,device,resource,value\n1,a,cpu,0.5\n{\"time\":1,\"kind\":\"start\"}\n";
        for _ in 0..3000 {
            let mut bytes = sample.to_vec();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state % bytes.len() as u64) as usize;
                bytes[at] = (state >> 40) as u8;
            }
            let _ = parse_metrics(&bytes, &MetricOptions::default());
            let _ = parse_events(&bytes, 64);
            let _ = parse_workflow_body(&bytes, "w");
        }
    }
}
