//! Records to the `long` metric format: JSONL `{"time":…,"device":…,"resource":…,"value":…}`
//! or CSV under a `time,device,resource,value` header, times in seconds as `run` reads them.
//! Each batch is written in whole lines and flushed, so a stop between batches never leaves a
//! partial line behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::args::is_stdout;
use super::CollectError;
use crate::input::metrics::MetricRecord;
use crate::input::time::{format_seconds, json_seconds};

/// The layout of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header.
    Csv,
}

impl OutputFormat {
    /// CSV for a `.csv` file, JSONL otherwise.
    pub fn for_path(path: &Path) -> OutputFormat {
        match path.extension().and_then(|extension| extension.to_str()) {
            Some(extension) if extension.eq_ignore_ascii_case("csv") => OutputFormat::Csv,
            _ => OutputFormat::Jsonl,
        }
    }

    /// Whether a device name fits a line of the long CSV: anything but a line break (the
    /// reader takes a line at a time; commas and quotes are quoted, as it reads them).
    pub fn csv_safe(name: &str) -> bool {
        !name.contains(['\n', '\r'])
    }

    /// One record as one line, without its line break; `None` for a device name CSV cannot
    /// hold.
    pub fn line(self, record: &MetricRecord) -> Option<String> {
        match self {
            OutputFormat::Jsonl => Some(format!(
                "{{\"time\":{},\"device\":{},\"resource\":\"{}\",\"value\":{}}}",
                json_seconds(record.time),
                serde_json::Value::from(record.device.as_str()),
                record.resource.name(),
                serde_json::Value::from(record.value),
            )),
            OutputFormat::Csv if OutputFormat::csv_safe(&record.device) => Some(format!(
                "{},{},{},{}",
                format_seconds(record.time),
                csv_field(&record.device),
                record.resource.name(),
                record.value
            )),
            OutputFormat::Csv => None,
        }
    }
}

/// A name as one CSV field: quoted (RFC 4180, a quote doubled) where it holds a comma or a
/// quote, which the reader would split on or refuse; as it is otherwise. (Spaces around a name
/// are trimmed by every reader, quoted or not, as names are everywhere.)
fn csv_field(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.contains([',', '"']) {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(format!("\"{}\"", name.replace('"', "\"\"")))
    }
}

/// Writes records to a file or stdout.
pub struct RecordWriter {
    path: String,
    format: OutputFormat,
    out: BufWriter<Box<dyn Write + Send>>,
    written: u64,
    refused: u64,
}

impl RecordWriter {
    /// Creates (truncates) `path`, `-` meaning stdout, and writes the CSV header.
    pub fn create(path: &Path, format: OutputFormat) -> Result<RecordWriter, CollectError> {
        let name = path.display().to_string();
        let out: Box<dyn Write + Send> = if is_stdout(path) {
            Box::new(std::io::stdout())
        } else {
            Box::new(File::create(path).map_err(|source| CollectError::Output {
                path: name.clone(),
                source,
            })?)
        };
        let mut writer = RecordWriter {
            path: name,
            format,
            out: BufWriter::new(out),
            written: 0,
            refused: 0,
        };
        if format == OutputFormat::Csv {
            writer.put("time,device,resource,value\n")?;
            writer.flush()?;
        }
        Ok(writer)
    }

    /// Writes a batch and flushes it.
    pub fn write(&mut self, records: &[MetricRecord]) -> Result<(), CollectError> {
        for record in records {
            match self.format.line(record) {
                Some(mut line) => {
                    line.push('\n');
                    self.put(&line)?;
                    self.written += 1;
                }
                None => self.refused += 1,
            }
        }
        self.flush()
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Records whose device name the format could not hold.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    fn put(&mut self, text: &str) -> Result<(), CollectError> {
        self.out
            .write_all(text.as_bytes())
            .map_err(|source| self.error(source))
    }

    fn flush(&mut self) -> Result<(), CollectError> {
        self.out.flush().map_err(|source| self.error(source))
    }

    fn error(&self, source: std::io::Error) -> CollectError {
        CollectError::Output {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use augur_dataflows::types::Resource;

    /// Whatever a name holds but a line break, `run` reads back the name the CSV was given.
    #[test]
    fn csv_names_read_back_as_written() {
        use crate::input::{MetricFormat, MetricOptions, MetricReader};
        let names = ["rack 1, \"node\" 3", "plain", "\"", "a,b", "x \"y\""];
        let mut text = String::from("time,device,resource,value\n");
        for (second, name) in names.iter().enumerate() {
            let record = MetricRecord {
                time: 1_700_000_000_000 + 1_000 * second as i64,
                device: (*name).to_string(),
                resource: Resource::Cpu,
                value: 0.5,
            };
            text.push_str(&OutputFormat::Csv.line(&record).expect("a line"));
            text.push('\n');
        }
        let read: Vec<String> = MetricReader::from_text(
            &text,
            "c.csv",
            MetricFormat::Long,
            &MetricOptions::default(),
        )
        .flat_map(|outcome| outcome.records)
        .map(|record| record.device)
        .collect();
        assert_eq!(read, names);
    }

    #[test]
    fn lines_in_both_formats() {
        let record = MetricRecord {
            time: 1_700_000_000_250,
            device: "host \"a\"".into(),
            resource: Resource::Network,
            value: 0.125,
        };
        assert_eq!(
            OutputFormat::Jsonl.line(&record).expect("jsonl"),
            r#"{"time":1700000000.25,"device":"host \"a\"","resource":"network","value":0.125}"#
        );
        // Quoted as the long CSV reader reads it back.
        let quoted = OutputFormat::Csv.line(&record).expect("csv");
        assert_eq!(quoted, r#"1700000000.25,"host ""a""",network,0.125"#);
        let broken = MetricRecord {
            device: "a\nb".into(),
            ..record.clone()
        };
        assert_eq!(OutputFormat::Csv.line(&broken), None);
        let plain = MetricRecord {
            device: "edge-a".into(),
            time: 1_700_000_000_000,
            ..record
        };
        assert_eq!(
            OutputFormat::Csv.line(&plain).expect("csv"),
            "1700000000,edge-a,network,0.125"
        );
        assert_eq!(
            OutputFormat::for_path(Path::new("x.CSV")),
            OutputFormat::Csv
        );
        assert_eq!(OutputFormat::for_path(Path::new("-")), OutputFormat::Jsonl);
    }
}
