//! `augur anomalies`: scores every sample of whole series with augur's streaming anomaly scorer
//! and writes the scores in the Numenta Anomaly Benchmark's results layout, so that NAB's own
//! tools, or [`crate::nab_score`], can judge them beside the published detectors.
//!
//! One file per series: `DIR/augur/<category>/augur_<file>.csv` with
//! `timestamp,value,anomaly_score,label`, where the category is the series file's folder (NAB's
//! `realAWSCloudwatch`, ...), `timestamp` is the input's text, `value` the input's number
//! (printed as the shortest text that reads back to it), and `label` is 1 inside a labelled
//! window. Series from one file (Alibaba machines, long-format devices) get the series' part
//! of the name appended: `augur_<file stem>_<machine>.csv`.
//!
//! Beside them, `DIR/report.html` draws each series with its windows, alarms and scores
//! (`report.rs`).

mod report;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use augur_dataflows::anomaly::{AnomalyParams, AnomalyScorer, THRESHOLD};
use augur_dataflows::types::Time;

use crate::cli::AnomaliesArgs;
use crate::file_names::{bounded, file_safe};
use crate::nab_score::{nab_key, score_file, FileScore, Labels, LabelsError};
use crate::series::{load_series_counted, Series, SeriesError, SeriesFormat};

/// The detector's name in NAB's layout (folder and file prefix).
pub const DETECTOR: &str = "augur";

/// Why `augur anomalies` stopped.
#[derive(Debug, thiserror::Error)]
pub enum AnomaliesError {
    /// A flag's value is unusable (an unknown `--format`, a file given twice to `--series`).
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// A series file could not be read.
    #[error(transparent)]
    Series(#[from] SeriesError),
    /// The labels file could not be read.
    #[error("--labels: {0}")]
    Labels(#[from] LabelsError),
    /// A results file could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The page could not be written.
    #[error("{path}: {source}")]
    Report {
        /// The page.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The summary could not be written (a closed pipe shows up here, for `main` to ignore).
    #[error("writing the summary: {0}")]
    Summary(#[source] std::io::Error),
}

/// What one series gave.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesReport {
    /// NAB's name for it: `category/file`, with `:machine` for a series within a file.
    pub name: String,
    /// The results file written.
    pub output: PathBuf,
    /// Samples scored.
    pub rows: usize,
    /// Samples at or above the threshold.
    pub alarms: usize,
    /// NAB's scoring against the labels; `None` without `--labels` or without windows for it.
    pub score: Option<FileScore>,
}

/// What a run gave: every series, and the NAB totals over the labelled ones.
#[derive(Clone, Debug, PartialEq)]
pub struct AnomalyReport {
    /// Per series, in input order.
    pub series: Vec<SeriesReport>,
    /// NAB's totals over the series that have labels; `None` when none has.
    pub overall: Option<FileScore>,
    /// The decision threshold used (augur's fixed calibration, not optimised per corpus).
    pub threshold: f64,
    /// With `--labels`, the NAB keys (`<folder>/<file>`) of input files the labels have no
    /// entry for: their label column is all 0 and they are not scored, which is right for an
    /// unlabelled file but a silent mistake for a labelled one copied out of NAB's layout.
    pub unlabelled: Vec<String>,
    /// Per file that had rows no series kept, a note saying how many (see
    /// [`crate::series::RowCount`]); per series with label windows that cover none of its
    /// rows, how many.
    pub dropped: Vec<String>,
    /// The page drawing the series, `DIR/report.html`.
    pub page: PathBuf,
}

/// Runs `augur anomalies`: scores the series, writes the results files, and prints a summary to
/// `out`.
pub fn run(args: &AnomaliesArgs, out: &mut dyn Write) -> Result<AnomalyReport, AnomaliesError> {
    let flag = |flag, reason: String| AnomaliesError::Flag { flag, reason };
    let format: SeriesFormat = args
        .input
        .format
        .parse()
        .map_err(|reason| flag("--format", reason))?;
    let labels = match &args.labels {
        Some(path) => Some(Labels::load(path)?),
        None => None,
    };
    crate::series::check_distinct(&args.input.series).map_err(|reason| flag("--series", reason))?;
    if let Some(reason) = crate::cli::not_an_output_folder(&args.out) {
        return Err(flag("--out", reason));
    }
    let params = AnomalyParams::default();
    let mut written: std::collections::HashSet<std::path::PathBuf> = Default::default();
    let mut report = AnomalyReport {
        series: Vec::new(),
        overall: None,
        threshold: THRESHOLD,
        unlabelled: Vec::new(),
        dropped: Vec::new(),
        page: args.out.join("report.html"),
    };
    let mut page = report::Page::default();
    // Every file is read once before anything is written: one that cannot be read (the
    // second of two, say) left the first's results without a report.html or summary beside
    // them. Read again below, one at a time, so that memory holds one file's series at once.
    for path in &args.input.series {
        load_series_counted(path, format, args.input.column.as_deref())?;
    }
    // Files of one name in folders of one name share NAB's key (and so its label windows):
    // the report names those by their paths, or two lines of it would read alike.
    let keys: Vec<String> = args.input.series.iter().map(|p| nab_key(p)).collect();
    for (path, key) in args.input.series.iter().zip(&keys) {
        let (all, count) = load_series_counted(path, format, args.input.column.as_deref())?;
        let windows = labels.as_ref().and_then(|l| l.for_file(path));
        if labels.is_some() && windows.is_none() {
            report.unlabelled.push(key.clone());
        }
        let key = if keys.iter().filter(|other| *other == key).count() > 1 {
            path.display().to_string()
        } else {
            key.clone()
        };
        let category = category(path);
        let folder = args.out.join(DETECTOR).join(&category);
        std::fs::create_dir_all(&folder).map_err(|source| AnomaliesError::Write {
            path: folder.clone(),
            source,
        })?;
        report
            .dropped
            .extend(count.note(&path.display().to_string()));
        let several = all.len() > 1 || format == SeriesFormat::Alibaba;
        for series in &all {
            let scores = score_series(series, params);
            // Two series can share a name (same file name in two folders of one name, or long
            // series whose names differ only in characters a file name cannot hold): never let
            // one overwrite the other.
            let mut output = folder.join(output_name(path, series, several));
            let mut copy = 1;
            while written.contains(&output) {
                copy += 1;
                let name = output_name(path, series, several);
                let stem = name.strip_suffix(".csv").unwrap_or(&name);
                output = folder.join(format!("{stem}_{copy}.csv"));
            }
            written.insert(output.clone());
            write_results(&output, series, &scores, windows.unwrap_or(&[]))?;
            let score = windows.map(|w| {
                let rows: Vec<(Time, f64)> = series
                    .times
                    .iter()
                    .copied()
                    .zip(scores.iter().copied())
                    .collect();
                score_file(&rows, w, THRESHOLD)
            });
            if let Some(score) = &score {
                report
                    .overall
                    .get_or_insert_with(FileScore::default)
                    .add(score);
                // A window that covers no row is not scored, as in NAB; it must not go
                // unnoticed (a label file for another copy of the data, a window given twice).
                let given = windows.map_or(0, <[_]>::len);
                if given > score.labelled_windows {
                    report.dropped.push(format!(
                        "{}: {} of its {given} label windows cover no row of the series \
                         (outside its times, or within an earlier window) and are not scored",
                        series.name,
                        given - score.labelled_windows
                    ));
                }
            }
            let suffix = series
                .name
                .split_once(':')
                .map_or(String::new(), |(_, rest)| format!(":{rest}"));
            let series_report = SeriesReport {
                name: format!("{key}{suffix}"),
                output,
                rows: scores.len(),
                alarms: scores.iter().filter(|&&s| s >= THRESHOLD).count(),
                score,
            };
            page.add(&series_report, series, &scores, windows.unwrap_or(&[]));
            report.series.push(series_report);
        }
    }
    std::fs::write(
        &report.page,
        page.html(&report.series, report.overall.as_ref()),
    )
    .map_err(|source| AnomaliesError::Report {
        path: report.page.clone(),
        source,
    })?;
    write_summary(&report, &args.out, out).map_err(AnomaliesError::Summary)?;
    Ok(report)
}

/// The anomaly score of every sample of a series, in order.
pub fn score_series(series: &Series, params: AnomalyParams) -> Vec<f64> {
    let mut scorer = AnomalyScorer::new(params);
    series
        .times
        .iter()
        .zip(&series.values)
        .map(|(&time, &value)| scorer.update(time, value))
        .collect()
}

/// NAB's category: the folder the series file sits in.
fn category(path: &Path) -> String {
    crate::nab_score::folder_name(path).map_or_else(|| "series".to_string(), |n| file_safe(&n))
}

/// `augur_<file>` for a file's only series (NAB's own naming), `augur_<stem>_<part>.csv` for
/// one of several.
fn output_name(path: &Path, series: &Series, several: bool) -> String {
    let file = path.file_name().map_or_else(
        || "series".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (stem, extension) = match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.eq_ignore_ascii_case("csv") => {
            (stem.to_string(), format!(".{ext}"))
        }
        _ => (file.clone(), ".csv".to_string()),
    };
    let part = series
        .name
        .split_once(':')
        .map(|(_, rest)| rest.replace(':', "_"))
        .filter(|_| several);
    let stem = match part {
        Some(part) => format!("{DETECTOR}_{}_{}", file_safe(&stem), file_safe(&part)),
        None => format!("{DETECTOR}_{}", file_safe(&stem)),
    };
    format!("{}{extension}", bounded(&stem))
}

fn write_results(
    path: &Path,
    series: &Series,
    scores: &[f64],
    windows: &[(Time, Time)],
) -> Result<(), AnomaliesError> {
    let wrap = |source| AnomaliesError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = BufWriter::new(File::create(path).map_err(wrap)?);
    writeln!(file, "timestamp,value,anomaly_score,label").map_err(wrap)?;
    for ((stamp, (&time, &value)), &score) in series
        .stamps
        .iter()
        .zip(series.times.iter().zip(&series.values))
        .zip(scores)
    {
        let label = u8::from(windows.iter().any(|&(s, e)| (s..=e).contains(&time)));
        writeln!(file, "{},{value},{score},{label}", csv_field(stamp)).map_err(wrap)?;
    }
    file.flush().map_err(wrap)
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn write_summary(report: &AnomalyReport, dir: &Path, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "augur anomalies: {} series, threshold {} (augur's fixed calibration; NAB would optimise \
         it per detector over the corpus)",
        report.series.len(),
        report.threshold
    )?;
    let width = report
        .series
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0)
        .max("overall".len());
    writeln!(
        out,
        "{:<width$} {:>7} {:>6} {:>7} {:>8} {:>4} {:>6} {:>7}",
        "series", "rows", "alarms", "windows", "detected", "FP", "FP/day", "NAB"
    )?;
    for s in &report.series {
        write_row(
            out,
            &s.name,
            Some(s.rows),
            Some(s.alarms),
            s.score.as_ref(),
            width,
        )?;
    }
    if let Some(overall) = &report.overall {
        write_row(out, "overall", None, None, Some(overall), width)?;
        writeln!(
            out,
            "NAB standard profile (A_TP 1, A_FP -0.11, A_FN -1), normalised so that a detector \
             that never fires scores 0 and a perfect one 100; overall window recall {}",
            fixed(overall.recall().map(|r| 100.0 * r), 1, "%")
        )?;
    }
    for note in &report.dropped {
        writeln!(out, "note: {note}")?;
    }
    if !report.unlabelled.is_empty() {
        writeln!(
            out,
            "note: --labels has no windows for {} of the files, looked up by NAB's key \
             <folder>/<file> (their label column is 0 and they are not scored): {}",
            report.unlabelled.len(),
            report.unlabelled.join(", ")
        )?;
    }
    writeln!(out, "results: {}", dir.join(DETECTOR).display())?;
    writeln!(out, "report: {}", report.page.display())
}

fn write_row(
    out: &mut dyn Write,
    name: &str,
    rows: Option<usize>,
    alarms: Option<usize>,
    score: Option<&FileScore>,
    width: usize,
) -> std::io::Result<()> {
    let count = |n: Option<usize>| n.map_or("-".to_string(), |n| n.to_string());
    writeln!(
        out,
        "{:<width$} {:>7} {:>6} {:>7} {:>8} {:>4} {:>6} {:>7}",
        name,
        count(rows),
        count(alarms),
        count(score.map(|s| s.windows)),
        count(score.map(|s| s.detected)),
        count(score.map(|s| s.false_positives)),
        fixed(score.and_then(FileScore::fp_per_day), 2, ""),
        fixed(score.and_then(FileScore::normalised), 1, ""),
    )
}

fn fixed(value: Option<f64>, decimals: usize, unit: &str) -> String {
    value.map_or("-".to_string(), |v| format!("{v:.decimals$}{unit}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, n: usize) -> Series {
        Series {
            name: name.to_string(),
            stamps: (0..n).map(|i| format!("t{i}")).collect(),
            times: (0..n as Time).map(|i| i * 300_000).collect(),
            values: (0..n).map(|i| if i == 500 { 50.0 } else { 1.0 }).collect(),
        }
    }

    #[test]
    fn output_names_follow_nab_and_stay_file_safe() {
        let nab = Path::new("data/realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv");
        assert_eq!(
            output_name(nab, &series("ec2_cpu_utilization_24ae8d.csv", 1), false),
            "augur_ec2_cpu_utilization_24ae8d.csv"
        );
        let alibaba = Path::new("trace/machine_usage.csv");
        assert_eq!(
            output_name(alibaba, &series("machine_usage.csv:m_1/x", 1), true),
            "augur_machine_usage_m_1_x.csv"
        );
        assert_eq!(category(nab), "realAWSCloudwatch");
        // A device name past what a file system takes.
        let long = output_name(
            Path::new("m.csv"),
            &series(&format!("m.csv:{}:cpu", "d".repeat(240)), 1),
            true,
        );
        assert!(long.len() < 255 && long.ends_with(".csv"), "{long}");
        // A file named without its folder is in the folder it is in, as with its whole path
        // (the working directory's, here); one in the root folder, which has no name, in
        // `series`.
        let here = std::env::current_dir().expect("a working directory");
        assert_eq!(category(Path::new("a.csv")), category(&here.join("a.csv")));
        assert_eq!(
            category(Path::new("./a.csv")),
            category(&here.join("a.csv"))
        );
        assert_eq!(
            crate::nab_score::nab_key(Path::new("a.csv")),
            crate::nab_score::nab_key(&here.join("a.csv"))
        );
        assert_ne!(category(Path::new("a.csv")), "series");
        assert_eq!(category(Path::new("/a.csv")), "series");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }

    #[test]
    fn results_file_has_nab_layout_and_labels() {
        let dir = crate::testing::Scratch::new("anomalies");
        let path = dir.join("augur_a.csv");
        let s = series("a.csv", 1000);
        let scores = score_series(&s, AnomalyParams::default());
        assert!(scores[500] >= THRESHOLD);
        write_results(&path, &s, &scores, &[(3 * 300_000, 4 * 300_000)]).expect("writes");
        let text = std::fs::read_to_string(&path).expect("reads");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "timestamp,value,anomaly_score,label");
        assert_eq!(lines.len(), 1001);
        assert_eq!(lines[1], "t0,1,0,0");
        assert!(lines[4].ends_with(",1") && lines[5].ends_with(",1") && lines[6].ends_with(",0"));
    }

    #[test]
    fn empty_series_scores_nothing() {
        assert!(score_series(&series("e.csv", 0), AnomalyParams::default()).is_empty());
    }

    #[test]
    fn files_the_labels_do_not_name_are_listed() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: AnomaliesArgs,
        }
        let dir = crate::testing::Scratch::new("unlabelled");
        let data = dir.join("realKnownCause");
        std::fs::create_dir_all(&data).expect("temp dir");
        let rows: String = (0..300)
            .map(|i| format!("2014-02-14 {:02}:{:02}:00,{}\n", i / 60, i % 60, i % 7))
            .collect();
        for name in ["named.csv", "copied.csv"] {
            std::fs::write(data.join(name), format!("timestamp,value\n{rows}")).expect("write");
        }
        let labels = dir.join("windows.json");
        std::fs::write(
            &labels,
            r#"{"realKnownCause/named.csv": [["2014-02-14 01:00:00.000000", "2014-02-14 02:00:00.000000"]]}"#,
        )
        .expect("write");
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let argv = [
            "anomalies".to_string(),
            "--series".into(),
            path(&data.join("named.csv")),
            path(&data.join("copied.csv")),
            "--labels".into(),
            path(&labels),
            "--out".into(),
            path(&dir.join("out")),
        ];
        let mut out = Vec::new();
        let report = run(&Wrapper::parse_from(&argv).args, &mut out).expect("runs");
        assert_eq!(report.unlabelled, vec!["realKnownCause/copied.csv"]);
        assert!(report.series[0].score.is_some() && report.series[1].score.is_none());
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.contains("note: --labels has no windows for 1 of the files"),
            "{text}"
        );
        assert!(text.contains("realKnownCause/copied.csv"), "{text}");
        // The page draws both series, the labelled one with its window.
        let html = std::fs::read_to_string(dir.join("out").join("report.html")).expect("page");
        assert!(text.contains("report: ") && html.contains("realKnownCause/copied.csv"));
        assert_eq!(html.matches("<figure>").count(), 2);
        assert_eq!(html.matches("labelled window 1").count(), 1, "{html}");

        // Windows that cover no row (after the series, or given twice) are named, not lost.
        std::fs::write(
            &labels,
            r#"{"realKnownCause/named.csv": [["2014-02-14 01:00:00.000000", "2014-02-14 02:00:00.000000"],
                                             ["2014-02-14 01:00:00.000000", "2014-02-14 02:00:00.000000"],
                                             ["2020-01-01 00:00:00.000000", "2020-01-02 00:00:00.000000"]]}"#,
        )
        .expect("write");
        let mut out = Vec::new();
        let report = run(&Wrapper::parse_from(&argv).args, &mut out).expect("runs");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            report.series[0].score.as_ref().map(|s| s.labelled_windows),
            Some(1)
        );
        assert!(
            text.contains("2 of its 3 label windows cover no row of the series"),
            "{text}"
        );

        // A file that cannot be read, after one that can: refused before anything is written
        // (the first's results stood without a page or summary beside them).
        let fresh = dir.join("fresh");
        let mut argv = argv.clone();
        argv[2] = path(&data.join("named.csv"));
        argv[3] = path(&data.join("missing.csv"));
        argv[7] = path(&fresh);
        assert!(run(&Wrapper::parse_from(&argv).args, &mut Vec::new()).is_err());
        assert!(!fresh.exists(), "{}", fresh.display());

        // Two files of one name in folders of one name: one NAB key, two report names.
        let other = dir.join("copy").join("realKnownCause");
        std::fs::create_dir_all(&other).expect("temp dir");
        std::fs::copy(data.join("named.csv"), other.join("named.csv")).expect("copy");
        let mut argv = argv.clone();
        argv[3] = path(&other.join("named.csv"));
        argv[7] = path(&dir.join("twins"));
        let report = run(&Wrapper::parse_from(&argv).args, &mut Vec::new()).expect("runs");
        let names: Vec<&str> = report.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec![argv[2].as_str(), argv[3].as_str()]);
        // Both take the key's windows, as NAB would.
        assert!(report.series.iter().all(|s| s.score.is_some()));
    }
}
