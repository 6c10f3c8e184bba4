//! Readers for every input format augur accepts: workflow instances (WfFormat), the platform
//! (TOML), metric logs (long CSV/JSONL, NAB, Bitbrains, Alibaba) and task events (JSONL).
//!
//! Every reader turns bad input into [`Rejection`]s instead of failing: it never panics, bounds
//! the memory a single line can take, and counts what it read in [`InputStats`], so the driver can
//! report exactly what was refused and why. Streams (metrics, events) are read line by line;
//! whole documents (workflows, platforms) are accepted or refused whole.

pub mod events;
pub(crate) mod fields;
pub mod json;
pub mod lines;
pub mod metrics;
pub mod platform;
pub mod regular;
pub mod rejection;
pub mod reorder;
pub mod time;
pub mod wfformat;

pub use events::{EventKind, EventOutcome, EventReader, TaskEvent};
pub use lines::{BoundedLines, LineError, DEFAULT_MAX_LINE_BYTES};
pub use metrics::{LineOutcome, MetricFormat, MetricOptions, MetricReader, MetricRecord};
pub use platform::{
    parse_platform, platform_from_machines, read_platform, reference_clock, replay_on_own_machines,
    scale_to_recorded_clocks, ClockScaling, Device, Platform,
};
pub use rejection::{InputStats, RejectKind, Rejection};
pub use reorder::Reorder;
pub use wfformat::{
    parse_workflow, read_workflow, Machine, WfEdge, WfTask, Workflow, WorkflowRead,
};

/// A number as a message should show it: in full, but in scientific notation once that is
/// shorter (1e308 is not written as 309 digits).
pub fn short_number(value: f64) -> String {
    // -0 reads as a sign error to a person who typed 0 or -0.
    let value = if value == 0.0 { 0.0 } else { value };
    let plain = format!("{value}");
    let scientific = format!("{value:e}");
    if scientific.len() < plain.len() {
        scientific
    } else {
        plain
    }
}

/// The first `limit` characters of a piece of input text, with `…` where more was cut: a
/// message quoting input stays small whatever the input (a 50 MB header line was quoted whole).
pub fn clip(text: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(limit) {
        None => text.into(),
        Some((end, _)) => format!("{}…", &text[..end]).into(),
    }
}

#[cfg(test)]
mod tests {
    //! Every reader must survive arbitrary input: these feed them deterministic mutations of
    //! valid samples (a poor man's fuzzer, without a dependency) and check the counts add up.

    use super::*;
    use augur_dataflows::types::Resource;

    const SAMPLES: [(&str, &str); 6] = [
        ("long", "time,device,resource,value\n1.5,a,cpu,0.5\n2014-02-14 00:00:00,b,disk,1.2\n"),
        ("jsonl", "{\"time\":1,\"device\":\"a\",\"resource\":\"cpu\",\"value\":0.5}\n"),
        ("nab", "timestamp,value\n2014-02-14 00:00:00,12.5\n2014-02-14 00:05:00,300\n"),
        ("bitbrains", "Timestamp [ms];\tCPU\n1372629804;\t2;\t5851.9;\t87.7;\t1.5;\t8218624.0;\t1034592.8;\t160.8;\t21.7;\t0.26;\t0.5\n"),
        ("alibaba", "m_1932,386640,41,92,,,43.04,33.08,5\nm_1932,386670,43,92,,,43.04,33.08,-1\n"),
        ("events", "{\"time\":\"1.5\",\"kind\":\"start\",\"workflow\":\"w\",\"task\":\"t\",\"device\":\"d\",\"usage\":{\"cpu\":0.5}}\n"),
    ];

    /// Replaces, inserts or deletes bytes at pseudo-random places.
    fn mutate(sample: &str, seed: u64) -> String {
        const TOKENS: [&str; 14] = [
            "",
            ",",
            ";",
            "\n",
            "\r\n",
            "-",
            "NaN",
            "inf",
            "1e999",
            "\u{ff}",
            "{",
            "\"",
            "99999999999999999999",
            ".",
        ];
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut text: Vec<char> = sample.chars().collect();
        for _ in 0..(1 + next() % 4) {
            let at = (next() % (text.len() as u64 + 1)) as usize;
            let token = TOKENS[(next() % TOKENS.len() as u64) as usize];
            let remove = (next() % 3) as usize;
            let end = (at + remove).min(text.len());
            text.splice(at..end, token.chars());
        }
        text.into_iter().collect()
    }

    fn assert_counts_add_up(stats: InputStats) {
        assert_eq!(stats.read, stats.accepted + stats.rejected);
    }

    #[test]
    fn readers_survive_mutated_input() {
        let formats = [
            ("long", MetricFormat::Long),
            ("jsonl", MetricFormat::Long),
            ("nab", MetricFormat::Nab),
            ("bitbrains", MetricFormat::Bitbrains),
            ("alibaba", MetricFormat::Alibaba),
        ];
        let options = MetricOptions {
            nab_target: Some(("d".to_string(), Resource::Disk)),
            max_line_bytes: 200,
            ..MetricOptions::default()
        };
        for seed in 0..400 {
            for (name, sample) in SAMPLES {
                let text = mutate(sample, seed);
                if let Some((_, format)) = formats.iter().find(|(format, _)| *format == name) {
                    let mut reader = MetricReader::from_text(&text, "f.csv", *format, &options);
                    let outcomes: Vec<LineOutcome> = reader.by_ref().collect();
                    assert_counts_add_up(reader.stats());
                    for outcome in outcomes {
                        assert!(!outcome.records.is_empty() || !outcome.rejections.is_empty());
                        assert!(outcome
                            .records
                            .iter()
                            .all(|record| record.value.is_finite() && record.value >= 0.0));
                    }
                } else {
                    let mut reader = EventReader::from_text(&text, "e.jsonl", 200);
                    reader.by_ref().for_each(drop);
                    assert_counts_add_up(reader.stats());
                }
                let _ = parse_platform(&text, "p.toml");
                let _ = time::parse_time_field(&text);
            }
        }
    }

    #[test]
    fn workflow_reader_survives_mutated_input() {
        let sample = r#"{"schemaVersion":"1.5","workflow":{"specification":{"tasks":[
            {"id":"a","name":"a","parents":[],"children":["b"],"inputFiles":["f"],"outputFiles":["g"]},
            {"id":"b","name":"b","parents":["a"],"children":[],"inputFiles":["g"],"outputFiles":[]}],
            "files":[{"id":"f","sizeInBytes":1},{"id":"g","sizeInBytes":2}]},
            "execution":{"tasks":[{"id":"a","runtimeInSeconds":1.5,"coreCount":2}]}}}"#;
        for seed in 0..2000 {
            let text = mutate(sample, seed);
            let read = parse_workflow(&text, "w.json");
            assert_counts_add_up(read.stats);
            assert_eq!(read.workflow.is_some(), read.rejections.is_empty());
        }
    }
}
