//! `augur anomalies`' page, `DIR/report.html`: the score table, then each series drawn with its
//! labelled windows shaded, its alarms ticked and its anomaly score beneath, so that a reader
//! sees at a glance which alarms fell in a window, which came early or late, and what the
//! scorer made of the quiet stretches. One self-contained file (inline SVG, nothing fetched).

use std::fmt::Write as _;

use augur_dataflows::anomaly::THRESHOLD;
use augur_dataflows::types::Time;

use crate::nab_score::FileScore;
use crate::plot::{escape, short_number, value_range, Chart};
use crate::series::Series;

use super::SeriesReport;

/// Series drawn at most: a page of thousands of charts (a Bitbrains or Alibaba folder) is too
/// heavy for a browser, and the table still lists every series.
pub const MAX_CHARTS: usize = 200;
/// Plot width in pixels: one M4 column per pixel bounds each line at about 4 × this many points.
const WIDTH: f64 = 900.0;
const VALUE_HEIGHT: f64 = 110.0;
const SCORE_HEIGHT: f64 = 36.0;
const WINDOW_FILL: &str = "#fbd9a5";
const PROBATION_FILL: &str = "#eeeeee";
const ALARM: &str = "crimson";

/// The page, built as series are scored so that their samples need not all be kept.
#[derive(Default)]
pub struct Page {
    figures: String,
    drawn: usize,
}

impl Page {
    /// Draws one series (while fewer than [`MAX_CHARTS`] are drawn): its values over the
    /// labelled `windows` and NAB's probation (when scored), the alarms, and the scores.
    pub fn add(
        &mut self,
        report: &SeriesReport,
        series: &Series,
        scores: &[f64],
        windows: &[(Time, Time)],
    ) {
        if self.drawn >= MAX_CHARTS {
            return;
        }
        self.drawn += 1;
        let (Some(&first), Some(&last)) = (series.times.first(), series.times.last()) else {
            let _ = write!(
                self.figures,
                "<h3>{}</h3><p>no samples</p>",
                escape(&report.name)
            );
            return;
        };
        let x = (first as f64, last as f64);
        let mut values = Chart::new(
            WIDTH,
            VALUE_HEIGHT,
            x,
            value_range(series.values.iter().copied()),
        );
        let probation = report.score.as_ref().map_or(0, |s| s.probation_rows);
        if let Some(&end) = probation
            .checked_sub(1)
            .and_then(|last| series.times.get(last))
        {
            values.band(
                first as f64,
                end as f64,
                PROBATION_FILL,
                "NAB's probation: not scored",
            );
        }
        for (index, &(start, end)) in windows.iter().enumerate() {
            values.band(
                start as f64,
                end as f64,
                WINDOW_FILL,
                &format!("labelled window {}", index + 1),
            );
        }
        let times = series.times.iter().map(|&t| t as f64);
        values.marks(
            times
                .clone()
                .zip(scores)
                .filter(|(_, &s)| s >= THRESHOLD)
                .map(|(t, _)| t),
            ALARM,
        );
        values.line(times.clone().zip(series.values.iter().copied()), "black");
        let mut score_chart = Chart::new(WIDTH, SCORE_HEIGHT, x, (0.0, 1.0));
        score_chart.rule(THRESHOLD, "grey");
        score_chart.line(times.zip(scores.iter().copied()), "steelblue");
        let stamp = |i: usize| series.stamps.get(i).map_or("", String::as_str);
        let _ = write!(
            self.figures,
            r#"<h3 id="s{n}">{name}</h3><p>{rows} samples, {alarms} alarms{score}</p><figure>{values}<br>{scores}<figcaption>{from} to {to}</figcaption></figure>"#,
            n = self.drawn,
            name = escape(&report.name),
            rows = report.rows,
            alarms = report.alarms,
            score = report.score.as_ref().map_or(String::new(), score_text),
            values = values.finish(),
            scores = score_chart.finish(),
            from = escape(stamp(0)),
            to = escape(stamp(series.stamps.len().saturating_sub(1))),
        );
    }

    /// The whole page: the table of every series in `reports` (with the overall NAB score
    /// when there is one), then the charts drawn.
    pub fn html(&self, reports: &[SeriesReport], overall: Option<&FileScore>) -> String {
        let mut page = String::from(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>augur anomalies</title><style>body{font-family:sans-serif;margin:20px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}figure{margin:4px 0 16px 0}h3{margin:16px 0 2px 0;font-size:1em}p{margin:2px 0}.key span{display:inline-block;width:14px;height:10px;margin:0 4px 0 12px}</style></head><body><h1>augur anomalies</h1>",
        );
        let _ = write!(
            page,
            "<p>threshold {THRESHOLD} (augur's fixed calibration). NAB standard profile, \
             normalised: a detector that never fires scores 0, a perfect one 100.</p>\
             <table><tr><th>series</th><th>rows</th><th>alarms</th><th>windows</th>\
             <th>detected</th><th>FP</th><th>FP/day</th><th>NAB</th></tr>"
        );
        for (index, report) in reports.iter().enumerate() {
            let name = if index < self.drawn {
                format!("<a href=\"#s{}\">{}</a>", index + 1, escape(&report.name))
            } else {
                escape(&report.name)
            };
            row(
                &mut page,
                &name,
                Some(report.rows),
                Some(report.alarms),
                report.score.as_ref(),
            );
        }
        if let Some(overall) = overall {
            row(&mut page, "overall", None, None, Some(overall));
        }
        page.push_str("</table>");
        let _ = write!(
            page,
            "<p class=\"key\">Each series: values (black) with<span style=\"background:{WINDOW_FILL}\"></span>\
             labelled windows,<span style=\"background:{PROBATION_FILL}\"></span>NAB's probation and\
             <span style=\"background:{ALARM};height:3px\"></span>alarms ticked along the top; beneath, the \
             anomaly score (blue) from 0 to 1 against the threshold (dashed).</p>"
        );
        if reports.len() > self.drawn {
            let _ = write!(
                page,
                "<p>Charts for the first {} of {} series; the table lists all.</p>",
                self.drawn,
                reports.len()
            );
        }
        page.push_str(&self.figures);
        page.push_str("</body></html>\n");
        page
    }
}

fn score_text(score: &FileScore) -> String {
    format!(
        "; {} of {} windows detected, {} false positives, NAB {}",
        score.detected,
        score.windows,
        score.false_positives,
        score
            .normalised()
            .map_or("-".to_string(), |n| format!("{n:.1}"))
    )
}

fn row(
    page: &mut String,
    name: &str,
    rows: Option<usize>,
    alarms: Option<usize>,
    score: Option<&FileScore>,
) {
    let count = |n: Option<usize>| n.map_or("-".to_string(), |n| n.to_string());
    let _ = write!(
        page,
        "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        count(rows),
        count(alarms),
        count(score.map(|s| s.windows)),
        count(score.map(|s| s.detected)),
        count(score.map(|s| s.false_positives)),
        score
            .and_then(FileScore::fp_per_day)
            .map_or("-".to_string(), short_number),
        score
            .and_then(FileScore::normalised)
            .map_or("-".to_string(), |n| format!("{n:.1}")),
    );
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{Page, MAX_CHARTS};
    use crate::anomalies::SeriesReport;
    use crate::series::Series;

    fn series(n: usize) -> (Series, Vec<f64>) {
        let series = Series {
            name: "a<b>.csv".to_string(),
            stamps: (0..n).map(|i| format!("t{i}")).collect(),
            times: (0..n as i64).map(|i| i * 60_000).collect(),
            values: (0..n).map(|i| (i % 13) as f64).collect(),
        };
        let scores = (0..n).map(|i| if i == n / 2 { 0.9 } else { 0.1 }).collect();
        (series, scores)
    }

    fn report(rows: usize) -> SeriesReport {
        SeriesReport {
            name: "cat/a<b>.csv".to_string(),
            output: PathBuf::from("x"),
            rows,
            alarms: 1,
            score: None,
        }
    }

    #[test]
    fn a_series_is_drawn_with_its_windows_alarms_and_scores() {
        let (s, scores) = series(50_000);
        let mut page = Page::default();
        page.add(&report(50_000), &s, &scores, &[(60_000, 120_000)]);
        let html = page.html(&[report(50_000)], None);
        assert_eq!(html.matches("<svg").count(), 2, "values and scores");
        assert!(html.contains("labelled window 1"));
        assert!(html.contains("stroke=\"crimson\""), "the alarm is ticked");
        assert!(html.contains("cat/a&lt;b&gt;.csv") && !html.contains("a<b>"));
        assert!(html.contains("t0 to t49999"));
        // 50,000 samples on 900 pixels: at most four points a column per line.
        let points: usize = html
            .split("points=\"")
            .skip(1)
            .map(|p| p.split('"').next().unwrap_or("").split(' ').count())
            .sum();
        assert!(points <= 2 * 4 * 901, "{points} points drawn");
    }

    #[test]
    fn charts_stop_at_the_cap_and_the_table_lists_every_series() {
        let (s, scores) = series(10);
        let reports: Vec<SeriesReport> = (0..MAX_CHARTS + 3).map(|_| report(10)).collect();
        let mut page = Page::default();
        for r in &reports {
            page.add(r, &s, &scores, &[]);
        }
        let html = page.html(&reports, None);
        assert_eq!(html.matches("<figure>").count(), MAX_CHARTS);
        assert_eq!(html.matches("<tr><td>").count(), MAX_CHARTS + 3);
        assert!(html.contains(&format!(
            "Charts for the first {MAX_CHARTS} of {} series",
            MAX_CHARTS + 3
        )));
    }

    #[test]
    fn an_empty_series_is_named_not_drawn() {
        let (s, _) = series(0);
        let mut page = Page::default();
        page.add(&report(0), &s, &[], &[]);
        let html = page.html(&[report(0)], None);
        assert!(html.contains("no samples") && !html.contains("<svg"));
    }
}
