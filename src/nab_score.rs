//! Numenta Anomaly Benchmark (NAB) scoring, so that augur's detector is judged by the same rule
//! as the published ones.
//!
//! This follows NAB's `nab/sweeper.py` (read, not copied) at one fixed threshold:
//! - the first `min(floor(0.15 n), 750)` rows of a file are probationary and not scored at all:
//!   neither their detections nor the parts of windows they cover;
//! - a row is a detection when its score is at least the threshold;
//! - a detection in a window earns `A_TP · σ(pos) / σ(-1)` with `σ(x) = 2/(1 + e^{5x}) − 1`
//!   and `pos = −(right − i + 1) / width` in rows, so the window's first row earns `A_TP`;
//!   only the window's best (earliest) detection counts; a window without one costs `A_FN`;
//! - a detection outside every window costs `A_FP · σ((i − right) / (width − 1))`, measured from
//!   the preceding window (a mild cost just after a window, the full cost far from one), or the
//!   full `A_FP` when no window precedes it;
//! - the normalised score is `100 · (raw − null) / (perfect − null)` where `null` is a detector
//!   that never fires (every scored window missed) and `perfect` is `A_TP` per labelled window.
//!
//! NAB itself then optimises each detector's threshold over the whole corpus; augur does not
//! (its threshold is a fixed calibration), so [`score_file`] takes the threshold as given.

use std::collections::BTreeMap;
use std::path::Path;

use augur_dataflows::types::Time;

use crate::input::time::parse_time_field;

/// The weights of one NAB application profile (NAB's `config/profiles.json`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostProfile {
    /// Reward of a window detected at its first row.
    pub tp_weight: f64,
    /// Cost of a false positive far from any window (applied as a negative).
    pub fp_weight: f64,
    /// Cost of a missed window (applied as a negative).
    pub fn_weight: f64,
}

/// NAB's standard profile: A_TP = 1, A_FP = −0.11, A_FN = −1 (A_TN = 0).
pub const STANDARD: CostProfile = CostProfile {
    tp_weight: 1.0,
    fp_weight: 0.11,
    fn_weight: 1.0,
};

/// NAB caps the probation at 15% of 5000 rows.
const PROBATION_CAP_ROWS: usize = 750;
const MS_PER_DAY: f64 = 86_400_000.0;

/// How one detector did on one file (or, summed with [`FileScore::add`], on several).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileScore {
    /// Rows in the file.
    pub rows: usize,
    /// Leading rows not scored.
    pub probation_rows: usize,
    /// Windows that cover at least one row of the file (what `perfect` counts, as NAB does).
    pub labelled_windows: usize,
    /// Windows with at least one row after the probation (what can be detected or missed).
    pub windows: usize,
    /// Scored windows with at least one detection after the probation.
    pub detected: usize,
    /// Detections outside every window, after the probation.
    pub false_positives: usize,
    /// Days spanned by the scored rows, the denominator of [`FileScore::fp_per_day`].
    pub scored_days: f64,
    /// NAB's raw score.
    pub raw: f64,
    /// The raw score of a detector that never fires.
    pub null: f64,
    /// The raw score of a detector that fires at the first row of every window.
    pub perfect: f64,
}

impl FileScore {
    /// `100 · (raw − null) / (perfect − null)`; `None` when there is nothing to detect, where
    /// NAB's normalisation is undefined.
    pub fn normalised(&self) -> Option<f64> {
        let span = self.perfect - self.null;
        (span > 0.0).then(|| 100.0 * (self.raw - self.null) / span)
    }

    /// Share of scored windows with a detection; `None` without windows.
    pub fn recall(&self) -> Option<f64> {
        (self.windows > 0).then(|| self.detected as f64 / self.windows as f64)
    }

    /// False positives per day of scored data; `None` when the scored rows span no time.
    pub fn fp_per_day(&self) -> Option<f64> {
        (self.scored_days > 0.0).then(|| self.false_positives as f64 / self.scored_days)
    }

    /// Adds another file's counts and scores, as NAB totals a corpus before normalising.
    pub fn add(&mut self, other: &FileScore) {
        self.rows += other.rows;
        self.probation_rows += other.probation_rows;
        self.labelled_windows += other.labelled_windows;
        self.windows += other.windows;
        self.detected += other.detected;
        self.false_positives += other.false_positives;
        self.scored_days += other.scored_days;
        self.raw += other.raw;
        self.null += other.null;
        self.perfect += other.perfect;
    }
}

/// The number of leading rows NAB does not score in a file of `rows` rows: 15% of them, at most
/// 750.
pub fn probation_rows(rows: usize) -> usize {
    // floor(0.15 · n), in integers so that huge n cannot round.
    (rows.saturating_mul(3) / 20).min(PROBATION_CAP_ROWS)
}

/// NAB's scaled sigmoid: 1 − ε at the left edge of a window (−1), 0 at its right edge (0),
/// −1 + ε one window-width after it, and −1 from three widths on.
pub fn scaled_sigmoid(position: f64) -> f64 {
    if position > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * position).exp()) - 1.0
    }
}

/// Scores one file under the standard profile: `rows` are `(time, anomaly score)` in time
/// order, `windows` the labelled `(start, end)` times (inclusive).
pub fn score_file(rows: &[(Time, f64)], windows: &[(Time, Time)], threshold: f64) -> FileScore {
    score_file_with(rows, windows, threshold, &STANDARD)
}

/// [`score_file`] under any profile.
pub fn score_file_with(
    rows: &[(Time, f64)],
    windows: &[(Time, Time)],
    threshold: f64,
    profile: &CostProfile,
) -> FileScore {
    let n = rows.len();
    let probation = probation_rows(n);
    let ranges = window_rows(rows, windows);
    let max_tp = scaled_sigmoid(-1.0);

    let mut windows_scored = 0;
    let mut detected = 0;
    let mut window_part = 0.0;
    let mut fp_part = 0.0;
    let mut false_positives = 0;

    // Rows between windows, then each window: NAB walks rows in order and, outside a window,
    // weighs a false positive by its distance from the preceding window's right edge.
    let mut previous: Option<(usize, usize)> = None; // (right index, width)
    let mut next_row = 0;
    let mut score_gap = |from: usize, to: usize, previous: Option<(usize, usize)>| {
        for (i, &(_, score)) in rows.iter().enumerate().take(to).skip(from.max(probation)) {
            if !is_detection(score, threshold) {
                continue;
            }
            false_positives += 1;
            let unweighted = match previous {
                None => -1.0,
                Some((right, width)) => {
                    // NAB divides by width − 1; a one-row window would divide by zero there.
                    let denominator = width.saturating_sub(1).max(1) as f64;
                    scaled_sigmoid(i.abs_diff(right) as f64 / denominator)
                }
            };
            fp_part += unweighted * profile.fp_weight;
        }
    };
    for &(left, right) in &ranges {
        score_gap(next_row, left, previous);
        let width = right - left + 1;
        if right >= probation {
            windows_scored += 1;
            let first = (left.max(probation)..=right)
                .find(|&i| rows.get(i).is_some_and(|r| is_detection(r.1, threshold)));
            match first {
                Some(i) => {
                    detected += 1;
                    let position = -((right - i + 1) as f64) / width as f64;
                    window_part += scaled_sigmoid(position) * profile.tp_weight / max_tp;
                }
                None => window_part -= profile.fn_weight,
            }
        }
        previous = Some((right, width));
        next_row = right + 1;
    }
    score_gap(next_row, n, previous);

    let scored_days = match (rows.get(probation), rows.last()) {
        (Some(first), Some(last)) => (last.0.saturating_sub(first.0)) as f64 / MS_PER_DAY,
        _ => 0.0,
    };
    FileScore {
        rows: n,
        probation_rows: probation.min(n),
        labelled_windows: ranges.len(),
        windows: windows_scored,
        detected,
        false_positives,
        scored_days,
        raw: window_part + fp_part,
        null: -profile.fn_weight * windows_scored as f64,
        perfect: profile.tp_weight * ranges.len() as f64,
    }
}

fn is_detection(score: f64, threshold: f64) -> bool {
    // NaN never reaches the threshold, so a broken score cannot count as a detection.
    score >= threshold
}

/// Each window as an inclusive range of row indices, in time order, without overlaps (NAB
/// refuses overlapping windows; here a later window starts after the earlier one ends) and
/// without windows that cover no row. NAB requires window edges to be row timestamps; the
/// nearest rows inside the window stand in when they are not.
fn window_rows(rows: &[(Time, f64)], windows: &[(Time, Time)]) -> Vec<(usize, usize)> {
    let mut sorted: Vec<(Time, Time)> = windows.iter().copied().filter(|w| w.0 <= w.1).collect();
    sorted.sort_unstable();
    let mut ranges = Vec::with_capacity(sorted.len());
    let mut free_from = 0;
    for (start, end) in sorted {
        let left = rows.partition_point(|r| r.0 < start).max(free_from);
        let past = rows.partition_point(|r| r.0 <= end);
        if left < past {
            ranges.push((left, past - 1));
            free_from = past;
        }
    }
    ranges
}

/// Why a labels file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not NAB's `{"category/file.csv": [[start, end], ...]}`.
    #[error("{path}: {reason}")]
    Layout {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// NAB's label windows (`combined_windows.json`), keyed like NAB: `category/file.csv`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Labels {
    /// Windows per key, as `(start, end)` milliseconds, inclusive.
    pub windows: BTreeMap<String, Vec<(Time, Time)>>,
}

impl Labels {
    /// Reads a `combined_windows.json`.
    pub fn load(path: &Path) -> Result<Labels, LabelsError> {
        let display = path.display().to_string();
        let text =
            crate::input::regular::read_regular_string(path).map_err(|source| LabelsError::Io {
                path: display.clone(),
                source,
            })?;
        Labels::parse(&text).map_err(|reason| LabelsError::Layout {
            path: display,
            reason,
        })
    }

    /// [`Labels::load`] on text already read.
    pub fn parse(text: &str) -> Result<Labels, String> {
        let raw: BTreeMap<String, Vec<Vec<String>>> =
            serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut windows = BTreeMap::new();
        for (key, list) in raw {
            let mut parsed = Vec::with_capacity(list.len());
            for pair in list {
                let [start, end] = pair.as_slice() else {
                    return Err(format!("{key}: a window needs a start and an end"));
                };
                let (start_text, end_text) = (start, end);
                let start = parse_time_field(start).map_err(|e| format!("{key}: {e}"))?;
                let end = parse_time_field(end).map_err(|e| format!("{key}: {e}"))?;
                // A reversed window covers no row, so scoring would drop it and the labelled
                // anomaly with it; refuse it like a malformed one instead.
                if end < start {
                    return Err(format!(
                        "{key}: window [{start_text}, {end_text}]: window end is before its start"
                    ));
                }
                parsed.push((start, end));
            }
            windows.insert(key, parsed);
        }
        Ok(Labels { windows })
    }

    /// The windows of a data file, found by its last two path components
    /// (`realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv`); `None` for a file NAB does not label.
    pub fn for_file(&self, path: &Path) -> Option<&[(Time, Time)]> {
        self.windows.get(&nab_key(path)).map(Vec::as_slice)
    }
}

/// NAB's key of a data file: `<parent folder>/<file name>`, or the bare name without a parent.
pub fn nab_key(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match folder_name(path) {
        Some(category) => format!("{category}/{file}"),
        None => file,
    }
}

/// The name of the folder holding `path`, the path made absolute: a file typed as `x.csv`
/// from within `realAWSCloudwatch/` (or as `./x.csv`, `../c/x.csv`) is in that folder's
/// category, as it is typed with its whole path. Links are not followed (a category folder
/// that is a link keeps its own name, as NAB's tree names it); `None` for a folder with no
/// name (`/`).
pub fn folder_name(path: &Path) -> Option<String> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut parts: Vec<std::path::Component> = Vec::new();
    for part in absolute.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.pop(); // the file itself
    match parts.last() {
        Some(std::path::Component::Normal(name)) => Some(name.to_string_lossy().into_owned()),
        _ => None,
    }
}

/// Reads the `(time, anomaly_score)` rows of a file in NAB's results layout
/// (`timestamp,value,anomaly_score,...`, any column order): augur's own output, or a published
/// detector's. Rows whose time or score does not parse are skipped; rows are put in time order.
pub fn parse_results(text: &str) -> Result<Vec<(Time, f64)>, String> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect();
    let column = |name: &str| {
        let mut found = (0..header.len()).filter(|&index| header[index] == name);
        match (found.next(), found.next()) {
            (Some(index), None) => Ok(index),
            (Some(_), Some(_)) => Err(format!("the header names column '{name}' twice")),
            (None, _) => Err(format!("no column '{name}' in the header")),
        }
    };
    let (time_col, score_col) = (column("timestamp")?, column("anomaly_score")?);
    let mut rows: Vec<(Time, f64)> = lines
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let time = parse_time_field(fields.get(time_col)?).ok()?;
            let score = fields.get(score_col)?.parse::<f64>().ok()?;
            Some((time, score))
        })
        .collect();
    rows.sort_by_key(|r| r.0);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Time = 60_000;

    /// `n` rows one minute apart, every score zero.
    fn quiet(n: usize) -> Vec<(Time, f64)> {
        (0..n).map(|i| (i as Time * MIN, 0.0)).collect()
    }

    #[test]
    fn probation_is_fifteen_percent_capped_at_750() {
        assert_eq!(probation_rows(0), 0);
        assert_eq!(probation_rows(100), 15);
        assert_eq!(probation_rows(4032), 604);
        assert_eq!(probation_rows(18050), 750);
    }

    #[test]
    fn one_window_detection_at_start_and_one_false_positive_after_it() {
        // 100 rows: probation 15; window rows 40..=49 (width 10); detections at 40 and 70.
        let mut rows = quiet(100);
        rows[40].1 = 1.0;
        rows[70].1 = 1.0;
        let windows = [(40 * MIN, 49 * MIN)];
        let score = score_file(&rows, &windows, 0.5);
        // At the window's first row the reward is exactly A_TP.
        let tp = 1.0;
        // 21 rows past the right edge (49) of a 10-row window: sigma(21 / 9) = 2/(1+e^(105/9))-1.
        let fp = 0.11 * (2.0 / (1.0 + (5.0_f64 * 21.0 / 9.0).exp()) - 1.0);
        assert!((score.raw - (tp + fp)).abs() < 1e-12, "{score:?}");
        assert_eq!(
            (score.windows, score.detected, score.false_positives),
            (1, 1, 1)
        );
        assert_eq!(score.null, -1.0);
        assert_eq!(score.perfect, 1.0);
        let expected = 100.0 * (tp + fp + 1.0) / 2.0;
        assert!((score.normalised().unwrap_or(f64::NAN) - expected).abs() < 1e-9);
    }

    #[test]
    fn only_the_earliest_detection_in_a_window_counts() {
        let mut rows = quiet(100);
        let windows = [(40 * MIN, 49 * MIN)];
        rows[45].1 = 0.9;
        let late = score_file(&rows, &windows, 0.5);
        rows[47].1 = 0.9;
        let twice = score_file(&rows, &windows, 0.5);
        assert_eq!(late.raw, twice.raw);
        // Row 45 of 40..=49: position -(49 - 45 + 1)/10 = -0.5.
        let expected = scaled_sigmoid(-0.5) / scaled_sigmoid(-1.0);
        assert!((late.raw - expected).abs() < 1e-12);
    }

    #[test]
    fn probationary_rows_are_not_scored() {
        let mut rows = quiet(100);
        rows[3].1 = 1.0;
        let score = score_file(&rows, &[], 0.5);
        assert_eq!((score.false_positives, score.raw), (0, 0.0));
        rows[20].1 = 1.0;
        let score = score_file(&rows, &[], 0.5);
        assert_eq!((score.false_positives, score.raw), (1, -0.11));
        assert_eq!(score.normalised(), None);
    }

    #[test]
    fn never_firing_scores_zero_and_perfect_scores_hundred() {
        // Several files, as a corpus: totals are normalised once, as NAB does.
        let files: Vec<(usize, Vec<(Time, Time)>)> = vec![
            (
                4032,
                vec![(1000 * MIN, 1200 * MIN), (3000 * MIN, 3200 * MIN)],
            ),
            (500, vec![(300 * MIN, 350 * MIN)]),
            (18050, vec![(16551 * MIN, 18049 * MIN)]),
        ];
        let mut never = FileScore::default();
        let mut perfect = FileScore::default();
        for (n, windows) in &files {
            let rows = quiet(*n);
            never.add(&score_file(&rows, windows, 0.5));
            let mut hits = rows.clone();
            for (start, _) in windows {
                if let Some(row) = hits.iter_mut().find(|r| r.0 == *start) {
                    row.1 = 1.0;
                }
            }
            perfect.add(&score_file(&hits, windows, 0.5));
        }
        assert_eq!(never.normalised(), Some(0.0));
        let best = perfect.normalised().unwrap_or(f64::NAN);
        assert!((best - 100.0).abs() < 1e-9, "{best}");
        assert_eq!(perfect.recall(), Some(1.0));
    }

    #[test]
    fn windows_between_rows_and_degenerate_inputs_do_not_panic() {
        assert_eq!(score_file(&[], &[(0, 10)], 0.5).windows, 0);
        let rows = vec![(0, f64::NAN), (MIN, f64::INFINITY), (2 * MIN, -1.0)];
        let s = score_file(&rows, &[(MIN, MIN), (5, 4), (10 * MIN, 20 * MIN)], 0.5);
        assert_eq!(s.labelled_windows, 1);
        // Overlapping windows and a one-row window before a false positive.
        let mut rows = quiet(100);
        rows[60].1 = 1.0;
        let s = score_file(&rows, &[(30 * MIN, 30 * MIN), (20 * MIN, 35 * MIN)], 0.5);
        assert_eq!(s.false_positives, 1);
        assert!(s.raw.is_finite());
    }

    #[test]
    fn labels_parse_nab_windows_with_microseconds() {
        let text = r#"{"realAWSCloudwatch/a.csv": [["2014-02-26 13:45:00.000000", "2014-02-27 06:25:00.000000"]], "b/c.csv": []}"#;
        let labels = Labels::parse(text).expect("parses");
        let windows = labels
            .for_file(Path::new("/data/realAWSCloudwatch/a.csv"))
            .expect("found");
        assert_eq!(windows.len(), 1);
        assert_eq!(windows[0].1 - windows[0].0, (16 * 60 + 40) * MIN);
        assert!(labels.for_file(Path::new("x/a.csv")).is_none());
        assert!(Labels::parse(r#"{"a": [["2014-02-26 13:45:00"]]}"#).is_err());
    }

    #[test]
    fn labels_refuse_a_window_that_ends_before_it_starts() {
        let text = r#"{"a/x.csv": [["2014-02-20 00:00:00.000000", "2014-02-19 00:00:00.000000"]]}"#;
        let err = Labels::parse(text).expect_err("reversed window");
        assert!(err.contains("window end is before its start"), "{err}");
        assert!(
            err.contains("a/x.csv") && err.contains("2014-02-20 00:00:00.000000"),
            "{err}"
        );
        // A window of one instant is still a window.
        let one = r#"{"a/x.csv": [["2014-02-20 00:00:00", "2014-02-20 00:00:00"]]}"#;
        assert!(Labels::parse(one).is_ok());
    }

    #[test]
    fn results_files_are_read_by_header() {
        let text = "timestamp,value,anomaly_score,label\n2014-02-14 14:35:00,2,0.7,0\n2014-02-14 14:30:00,1,0.1,0\nbad,1,1,0\n";
        let rows = parse_results(text).expect("parses");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1, 0.1);
        assert!(parse_results("timestamp,value\n").is_err());
    }
}
