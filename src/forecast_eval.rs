//! `augur forecast`: rolling-origin evaluation of augur's forecasting models on whole series,
//! by the protocol of `../shared/peers/forecast_eval.py` (statsforecast), so the figures compare
//! directly.
//!
//! Per series, the last `--test-size` points are the test region. There is an origin at every
//! point of it from which all horizons still fall inside it; at each origin the model has seen
//! exactly the points before it, and its k-step forecast is scored against the k-th point from
//! the origin, pooled over origins for each k in `--horizons`. MAE; sMAPE in percent
//! (200 |y - f| / (|y| + |f|), 0/0 counted as 0); MASE = MAE / the in-sample MAE of the one-step
//! naive forecast on the points before the test region (null when that is 0). `seconds` is the
//! wall time of one model on one series: the catch-up below, then every update and forecast
//! of the test region, refits included.
//!
//! The points before the test region are taken by [`SeriesModel::catch_up`], which skips the
//! refits that later ones overwrite: every single model forecasts exactly as if updated at each
//! point, and so do `auto`'s members, while its blend relearns their errors over the last 500
//! points (on the bundled traces `auto`'s MAE moved by at most 1e-4 relative, and no mean MASE
//! in the fourth decimal). `--full-replay` updates at every point instead.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use augur_dataflows::models::{ModelConfig, ModelKind, SeriesModel};
use serde::Serialize;

use crate::cli::ForecastArgs;
use crate::series::{load_series_counted, SeriesError, SeriesFormat};

/// Why `augur forecast` stopped.
#[derive(Debug, thiserror::Error)]
pub enum ForecastEvalError {
    /// A flag's value is unusable.
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
    /// Every series was too short to score, so there is nothing to report.
    #[error(
        "no series could be scored: each of the {skipped} is empty or too short for --test-size \
         {test_size} and --horizons (each needs more than test-size + 2 points; the reasons are \
         above)"
    )]
    NothingScored {
        /// How many series were skipped.
        skipped: usize,
        /// The test region asked for.
        test_size: usize,
    },
    /// The report could not be written.
    #[error("writing the report: {0}")]
    Output(#[from] std::io::Error),
}

/// The flags of `augur forecast`, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalConfig {
    /// Series files.
    pub files: Vec<PathBuf>,
    /// Their format.
    pub format: SeriesFormat,
    /// Value column, if not the format's default.
    pub column: Option<String>,
    /// Steps ahead to score, ascending, distinct, each at least 1.
    pub horizons: Vec<usize>,
    /// Points at the end of each series that form the test region (at least the longest
    /// horizon).
    pub test_size: usize,
    /// Models to evaluate, each with its configuration.
    pub models: Vec<ModelConfig>,
    /// One JSON line per series, model and horizon instead of a table.
    pub json: bool,
    /// Update at every point before the test region instead of catching up.
    pub full_replay: bool,
}

/// Validates the flags.
pub fn eval_config(args: &ForecastArgs) -> Result<EvalConfig, ForecastEvalError> {
    let flag = |flag, reason: String| ForecastEvalError::Flag { flag, reason };
    let format = args
        .input
        .format
        .parse::<SeriesFormat>()
        .map_err(|reason| flag("--format", reason))?;
    let mut horizons: Vec<usize> = args.horizons.iter().map(|&h| h as usize).collect();
    horizons.sort_unstable();
    horizons.dedup();
    if horizons.is_empty() || horizons[0] == 0 {
        return Err(flag("--horizons", "horizons must be at least 1".into()));
    }
    let longest = horizons[horizons.len() - 1];
    if args.test_size < longest {
        return Err(flag(
            "--test-size",
            format!(
                "{} points cannot hold a {longest}-step horizon",
                args.test_size
            ),
        ));
    }
    if args.season.is_some_and(|m| m < 2) {
        return Err(flag("--season", "a season is at least 2 steps".into()));
    }
    crate::series::check_distinct(&args.input.series).map_err(|reason| flag("--series", reason))?;
    let kinds: Vec<ModelKind> = if args.model == "all" {
        ModelKind::ALL.to_vec()
    } else {
        vec![args
            .model
            .parse::<ModelKind>()
            .map_err(|reason| flag("--model", reason))?]
    };
    let models = kinds
        .into_iter()
        .map(|kind| {
            let defaults = ModelConfig::new(kind);
            ModelConfig {
                season: args.season,
                // A fixed season is fitted over two cycles at least: the window holds three,
                // as it does for the seasons detected (a week, 1,008 steps, held none past
                // 504, and such a --season was ignored without a word).
                window: match args.season {
                    // Only the seasonal models: the window also bounds the band forecasts are
                    // held to, so the others' scores would move with a flag that is not theirs.
                    Some(season) if matches!(kind, ModelKind::HoltWinters | ModelKind::Auto) => {
                        defaults.window.max(3 * season)
                    }
                    _ => defaults.window,
                },
                ..defaults
            }
        })
        .collect();
    Ok(EvalConfig {
        files: args.input.series.clone(),
        format,
        column: args.input.column.clone(),
        horizons,
        test_size: args.test_size,
        models,
        json: args.json,
        full_replay: args.full_replay,
    })
}

/// One model's score on one series at one horizon: a JSON line of `--json`, field for field.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Score {
    /// The series.
    pub series: String,
    /// The model (`ewma`, `holt`, `hw`, `ar`, `auto`).
    pub model: String,
    /// Steps ahead.
    pub horizon: usize,
    /// Points scored (origins).
    pub n: usize,
    /// Mean absolute error, in the series' unit.
    pub mae: f64,
    /// Symmetric mean absolute percentage error, 0 to 200.
    pub smape: f64,
    /// MAE over the in-sample naive MAE; `None` when that scale is 0.
    pub mase: Option<f64>,
    /// Wall time of this model on this series (all horizons together).
    pub seconds: f64,
    /// The season the model's Holt-Winters fitted at the end, in steps (see
    /// [`SeriesModel::season_in_use`]).
    pub season_in_use: Option<usize>,
}

/// The forecast origins of a series of `n` points: the indices of the first point after each
/// origin, so that all horizons up to `longest` fall within the last `test_size` points.
pub fn origins(n: usize, test_size: usize, longest: usize) -> std::ops::Range<usize> {
    let first = n.saturating_sub(test_size);
    let end = (n + 1).saturating_sub(longest.max(1)).max(first);
    first..end
}

/// The MASE scale: the mean absolute one-step change over `train`; `None` if that is not
/// positive and finite (a constant or one-point training part).
pub fn naive_scale(train: &[f64]) -> Option<f64> {
    if train.len() < 2 {
        return None;
    }
    let total: f64 = train.windows(2).map(|w| (w[1] - w[0]).abs()).sum();
    let scale = total / (train.len() - 1) as f64;
    (scale > 0.0 && scale.is_finite()).then_some(scale)
}

/// One term of sMAPE, in percent: 200 |y - f| / (|y| + |f|), 0 when both are 0.
pub fn smape_term(actual: f64, forecast: f64) -> f64 {
    let denominator = actual.abs() + forecast.abs();
    if denominator > 0.0 {
        200.0 * (actual - forecast).abs() / denominator
    } else {
        0.0
    }
}

/// Why a series was not scored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped(pub String);

/// Scores one model on one series at each horizon of `horizons` (ascending).
pub fn evaluate(
    name: &str,
    values: &[f64],
    config: &ModelConfig,
    horizons: &[usize],
    test_size: usize,
    full_replay: bool,
) -> Result<Vec<Score>, Skipped> {
    let n = values.len();
    if n == 0 {
        // "only 0 points" read as though something had been counted short.
        return Err(Skipped(
            "no points (the file holds no row that parsed)".to_string(),
        ));
    }
    // The peer's rule: fewer points than this leaves no training part worth the name.
    if n <= test_size.saturating_add(2) {
        return Err(Skipped(format!(
            "only {n} {}, need more than test-size + 2 = {}",
            if n == 1 { "point" } else { "points" },
            test_size.saturating_add(2)
        )));
    }
    let longest = horizons.iter().copied().max().unwrap_or(1);
    let scale = naive_scale(&values[..n - test_size]);
    let range = origins(n, test_size, longest);
    let started = Instant::now();
    let mut model = SeriesModel::new(config);
    let mut absolute = vec![0.0; horizons.len()];
    let mut smape = vec![0.0; horizons.len()];
    let before = &values[..range.start];
    if full_replay {
        before.iter().for_each(|&value| model.update(value));
    } else {
        model.catch_up(before);
    }
    for t in range.clone() {
        for (k, &h) in horizons.iter().enumerate() {
            let forecast = model.forecast(h);
            let actual = values[t + h - 1];
            absolute[k] += (actual - forecast).abs();
            smape[k] += smape_term(actual, forecast);
        }
        model.update(values[t]);
    }
    let seconds = started.elapsed().as_secs_f64();
    let season_in_use = model.season_in_use();
    let count = range.len();
    Ok(horizons
        .iter()
        .enumerate()
        .map(|(k, &horizon)| {
            let mae = absolute[k] / count.max(1) as f64;
            Score {
                series: name.to_string(),
                model: config.kind.name().to_string(),
                horizon,
                n: count,
                mae,
                smape: smape[k] / count.max(1) as f64,
                mase: scale.map(|s| mae / s).filter(|m| m.is_finite()),
                seconds,
                season_in_use,
            }
        })
        .collect())
}

/// Runs `augur forecast`: scores every series of every file with every model, and writes JSON
/// lines or a table and a per-model summary to `out`. A series too short to score is skipped
/// and named, with the reason, on `notes` (stderr), as are rows a file's series dropped, so that
/// `out` holds only results: every JSON line keeps the one shape outside tools parse, and a
/// run that scored nothing prints no empty table.
pub fn run(
    args: &ForecastArgs,
    out: &mut dyn Write,
    notes: &mut dyn Write,
) -> Result<(), ForecastEvalError> {
    let config = eval_config(args)?;
    let mut scores = Vec::new();
    let mut skipped = 0usize;
    for file in &config.files {
        let (all, count) = load_series_counted(file, config.format, config.column.as_deref())?;
        if let Some(note) = count.note(&file.display().to_string()) {
            // A note that cannot be written (stderr closed) must not turn the run's own
            // outcome into another: it is lost, as `say!` loses its lines.
            let _ = writeln!(notes, "augur forecast: note: {note}");
        }
        // Series are named by their file's name; two files of one name in two folders are
        // told apart by their paths as given (both were `x.csv` in the table and the JSON).
        let shared_name = config
            .files
            .iter()
            .filter(|other| other.file_name() == file.file_name())
            .count()
            > 1;
        for mut series in all {
            if let (true, Some(base)) = (shared_name, file.file_name()) {
                if let Some(rest) = series.name.strip_prefix(&*base.to_string_lossy()) {
                    series.name = format!("{}{rest}", file.display());
                }
            }
            for model in &config.models {
                match evaluate(
                    &series.name,
                    &series.values,
                    model,
                    &config.horizons,
                    config.test_size,
                    config.full_replay,
                ) {
                    Ok(rows) => {
                        // A fixed season is fitted over two cycles of history at a refit: a
                        // model that ended without it ran without it, which its scores would
                        // not show.
                        let seasonal =
                            matches!(model.kind, ModelKind::HoltWinters | ModelKind::Auto);
                        if let (true, Some(season)) = (seasonal, model.season) {
                            if rows
                                .first()
                                .is_some_and(|row| row.season_in_use != Some(season))
                            {
                                let _ = writeln!(
                                    notes,
                                    "augur forecast: note: {} {}: {} points held too few \
                                     seasons of --season {season} at its refits (it fits one \
                                     over two): it ran without the season",
                                    series.name,
                                    model.kind.name(),
                                    series.values.len()
                                );
                            }
                        }
                        if config.json {
                            for row in &rows {
                                writeln!(out, "{}", json_line(row))?;
                            }
                        }
                        scores.extend(rows);
                    }
                    Err(Skipped(reason)) => {
                        skipped += 1;
                        let _ =
                            writeln!(notes, "augur forecast: skipped {}: {reason}", series.name);
                        // Every model would skip it for the same reason.
                        break;
                    }
                }
            }
        }
    }
    if !config.json && !scores.is_empty() {
        write_table(out, &scores)?;
        if skipped > 0 {
            writeln!(out, "({skipped} series skipped, named on stderr)")?;
        }
    }
    // A run that scored nothing is a failure, not an empty success a script could mistake
    // for a result.
    if scores.is_empty() && skipped > 0 {
        return Err(ForecastEvalError::NothingScored {
            skipped,
            test_size: config.test_size,
        });
    }
    Ok(())
}

fn json_line(score: &Score) -> String {
    // Scores of finite series are finite; a non-finite one would not be JSON, so it is null.
    let clean = |x: f64| x.is_finite().then_some(x);
    #[derive(Serialize)]
    struct Line<'a> {
        series: &'a str,
        model: &'a str,
        horizon: usize,
        n: usize,
        mae: Option<f64>,
        smape: Option<f64>,
        mase: Option<f64>,
        seconds: f64,
    }
    serde_json::to_string(&Line {
        series: &score.series,
        model: &score.model,
        horizon: score.horizon,
        n: score.n,
        mae: clean(score.mae),
        smape: clean(score.smape),
        mase: score.mase,
        seconds: score.seconds,
    })
    .unwrap_or_default()
}

/// Mean and median of the finite MASEs, per model and horizon, over series.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The model.
    pub model: String,
    /// Steps ahead.
    pub horizon: usize,
    /// Series scored.
    pub series: usize,
    /// Of them, series with a MASE (a constant training part has no naive error to scale by).
    pub with_mase: usize,
    /// Mean MASE.
    pub mean_mase: Option<f64>,
    /// Median MASE (the mean is dominated by series with level shifts).
    pub median_mase: Option<f64>,
    /// Mean sMAPE over all scored series.
    pub mean_smape: Option<f64>,
    /// Wall time of the model over all series.
    pub seconds: f64,
}

/// Summarises `scores` per model (in first-seen order) and horizon.
pub fn summarise(scores: &[Score]) -> Vec<Summary> {
    let mut keys: Vec<(&str, usize)> = Vec::new();
    for score in scores {
        if !keys.contains(&(score.model.as_str(), score.horizon)) {
            keys.push((score.model.as_str(), score.horizon));
        }
    }
    keys.into_iter()
        .map(|(model, horizon)| {
            let rows: Vec<&Score> = scores
                .iter()
                .filter(|s| s.model == model && s.horizon == horizon)
                .collect();
            let mut mases: Vec<f64> = rows.iter().filter_map(|s| s.mase).collect();
            mases.sort_by(f64::total_cmp);
            let smapes: Vec<f64> = rows
                .iter()
                .map(|s| s.smape)
                .filter(|x| x.is_finite())
                .collect();
            Summary {
                model: model.to_string(),
                horizon,
                series: rows.len(),
                with_mase: mases.len(),
                mean_mase: mean(&mases),
                median_mase: median(&mases),
                mean_smape: mean(&smapes),
                seconds: rows.iter().map(|s| s.seconds).sum(),
            }
        })
        .collect()
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The median of sorted `values`.
fn median(values: &[f64]) -> Option<f64> {
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn write_table(out: &mut dyn Write, scores: &[Score]) -> std::io::Result<()> {
    let name_width = scores
        .iter()
        .map(|s| s.series.len())
        .max()
        .unwrap_or(6)
        .max(6);
    writeln!(
        out,
        "{:<name_width$}  {:<6} {:>4} {:>6} {:>12} {:>8} {:>7} {:>9}",
        "series", "model", "h", "n", "MAE", "sMAPE", "MASE", "seconds"
    )?;
    for s in scores {
        writeln!(
            out,
            "{:<name_width$}  {:<6} {:>4} {:>6} {:>12} {:>8.2} {:>7} {:>9.4}",
            s.series,
            s.model,
            s.horizon,
            s.n,
            // Raw units can be anything (bytes, 1e300 from a broken file): keep the column.
            if s.mae.abs() < 1e7 {
                format!("{:.5}", s.mae)
            } else {
                format!("{:.4e}", s.mae)
            },
            s.smape,
            optional(s.mase),
            s.seconds
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<6} {:>4} {:>7} {:>9} {:>10} {:>11} {:>11} {:>9}",
        "model", "h", "series", "with MASE", "mean MASE", "median MASE", "mean sMAPE", "seconds"
    )?;
    for s in summarise(scores) {
        writeln!(
            out,
            "{:<6} {:>4} {:>7} {:>9} {:>10} {:>11} {:>11} {:>9.3}",
            s.model,
            s.horizon,
            s.series,
            s.with_mase,
            optional(s.mean_mase),
            optional(s.median_mase),
            s.mean_smape.map_or("-".to_string(), |x| format!("{x:.2}")),
            s.seconds
        )?;
    }
    Ok(())
}

fn optional(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |x| format!("{x:.3}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_enormous_test_size_skips_rather_than_overflows() {
        let values: Vec<f64> = (0..50).map(f64::from).collect();
        let config = ModelConfig::new(ModelKind::Ewma);
        assert!(evaluate("s", &values, &config, &[1], usize::MAX, false).is_err());
        assert!(evaluate("s", &values, &config, &[1], usize::MAX - 1, false).is_err());
    }

    #[test]
    fn an_empty_series_is_named_empty_not_short() {
        let config = ModelConfig::new(ModelKind::Ewma);
        let Err(Skipped(reason)) = evaluate("s", &[], &config, &[1], 10, false) else {
            panic!("an empty series was scored");
        };
        assert!(reason.starts_with("no points"), "{reason}");
        let Err(Skipped(reason)) = evaluate("s", &[1.0], &config, &[1], 10, false) else {
            panic!("a one-point series was scored");
        };
        assert!(reason.starts_with("only 1 point,"), "{reason}");
    }

    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> ForecastArgs {
        try_args(extra).expect("valid flags")
    }

    /// `forecast --series x.csv` and `extra`, parsed as the command line would be.
    fn try_args(extra: &[&str]) -> Result<ForecastArgs, clap::Error> {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: ForecastArgs,
        }
        let mut argv = vec!["forecast", "--series", "x.csv"];
        argv.extend_from_slice(extra);
        Wrapper::try_parse_from(argv).map(|wrapper| wrapper.args)
    }

    #[test]
    fn origin_count_matches_the_peer() {
        // statsforecast: (test_size - H) / step + 1 windows.
        assert_eq!(origins(4032, 1008, 12), 3024..4021);
        assert_eq!(origins(4032, 1008, 12).len(), 997);
        assert_eq!(origins(10, 4, 1), 6..10);
        assert_eq!(origins(10, 4, 4), 6..7);
        assert!(origins(3, 10, 12).is_empty());
    }

    #[test]
    fn metrics_by_hand() {
        // Train 0, 2, 1, 1: naive changes 2, 1, 0, mean 1.
        assert_eq!(naive_scale(&[0.0, 2.0, 1.0, 1.0]), Some(1.0));
        assert_eq!(naive_scale(&[3.0, 3.0, 3.0]), None);
        assert_eq!(naive_scale(&[3.0]), None);
        assert_eq!(smape_term(0.0, 0.0), 0.0);
        assert_eq!(smape_term(1.0, 3.0), 100.0);
        assert_eq!(smape_term(0.0, 5.0), 200.0);
        assert_eq!(smape_term(-1.0, 1.0), 200.0);
    }

    #[test]
    fn ewma_on_a_hand_series() {
        // 8 points, test region the last 3, horizons 1 and 2: origins at 5 and 6. Before any
        // refit EWMA's alpha is 0.5.
        let values = [0.0, 2.0, 1.0, 1.0, 1.0, 3.0, 5.0, 4.0];
        let config = ModelConfig::new(ModelKind::Ewma);
        let scores = evaluate("s", &values, &config, &[1, 2], 3, false).expect("long enough");
        // Levels: after 0..=4: 0, 1, 1, 1, 1; after 5: 2.
        // Origin 5 (level 1): h1 -> 3, error 2; h2 -> 5, error 4.
        // Origin 6 (level 2): h1 -> 5, error 3; h2 -> 4, error 2.
        // Train 0, 2, 1, 1, 1: naive MAE 3 / 4.
        let h1 = &scores[0];
        assert_eq!((h1.horizon, h1.n), (1, 2));
        assert!((h1.mae - 2.5).abs() < 1e-12);
        assert!((h1.mase.expect("scale") - 2.5 / 0.75).abs() < 1e-12);
        let smape1 = (smape_term(3.0, 1.0) + smape_term(5.0, 2.0)) / 2.0;
        assert!((h1.smape - smape1).abs() < 1e-12);
        let h2 = &scores[1];
        assert!((h2.mae - 3.0).abs() < 1e-12);
    }

    #[test]
    fn catching_up_scores_as_updating_at_every_point() {
        // Long enough that the catch-up skips refits (a week of 5-minute steps and a half).
        let mut state = 7u64;
        let values: Vec<f64> = (0..3_000)
            .map(|t| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let noise = (state >> 11) as f64 / (1u64 << 53) as f64;
                40.0 + 15.0 * (t as f64 * std::f64::consts::TAU / 288.0).sin() + 5.0 * noise
            })
            .collect();
        for kind in ModelKind::ALL {
            let config = ModelConfig::new(kind);
            let caught = evaluate("s", &values, &config, &[1, 6, 12], 1_008, false).expect("long");
            let full = evaluate("s", &values, &config, &[1, 6, 12], 1_008, true).expect("long");
            for (a, b) in caught.iter().zip(&full) {
                if kind == ModelKind::Auto {
                    assert!((a.mae - b.mae).abs() <= 1e-6 * b.mae, "{kind}: {a:?} {b:?}");
                } else {
                    assert_eq!(a.mae.to_bits(), b.mae.to_bits(), "{kind}");
                    assert_eq!(a.smape.to_bits(), b.smape.to_bits(), "{kind}");
                }
            }
        }
    }

    #[test]
    fn short_and_constant_series() {
        let config = ModelConfig::new(ModelKind::Auto);
        assert!(evaluate("s", &[1.0; 5], &config, &[1], 3, false).is_err());
        assert!(evaluate("s", &[], &config, &[1], 3, false).is_err());
        let scores = evaluate("s", &[2.0; 50], &config, &[1, 6], 20, false).expect("long enough");
        assert!(scores.iter().all(|s| s.mae == 0.0 && s.mase.is_none()));
    }

    #[test]
    fn flags_are_validated() {
        assert!(eval_config(&args(&["--horizons", "0"])).is_err());
        assert!(eval_config(&args(&["--horizons", "12", "--test-size", "5"])).is_err());
        // A season of 1, or past 100,000, and a test region of 0 are refused as flags are.
        for bad in [
            ["--season", "1"],
            ["--season", "100001"],
            ["--test-size", "0"],
        ] {
            assert!(try_args(&bad).is_err(), "{bad:?}");
        }
        let config = eval_config(&args(&["--horizons", "6,1,6", "--model", "all"])).expect("ok");
        assert_eq!(config.horizons, vec![1, 6]);
        assert_eq!(config.models.len(), 6);
    }

    /// A fixed season longer than half the default week of history is fitted (the window
    /// grows to three cycles), and a series shorter than two of them says so.
    #[test]
    fn a_long_fixed_season_is_used_and_a_series_too_short_for_it_is_named() {
        let dir = crate::testing::Scratch::new("forecast-eval-season");
        let path = dir.join("seasonal.csv");
        let mut text = String::from("timestamp,value\n");
        let start = 1_392_386_400_i64; // 2014-02-14 14:00:00
        for i in 0..2_400_i64 {
            // A period of 600 steps: a square wave, which no short season or trend follows.
            let value = if (i % 600) < 300 { 10.0 } else { 0.0 };
            text.push_str(&format!("{},{value}\n", start + 300 * i));
        }
        std::fs::write(&path, text).expect("write");
        let file = path.to_string_lossy().into_owned();
        let mae = |season: Option<&str>| {
            let mut argv = vec![
                "--test-size",
                "300",
                "--model",
                "hw",
                "--json",
                "--horizons",
                "24",
            ];
            if let Some(season) = season {
                argv.extend(["--season", season]);
            }
            argv.extend(["--series", file.as_str()]);
            let (mut out, mut notes) = (Vec::new(), Vec::new());
            run(&args_with(&argv), &mut out, &mut notes).expect("runs");
            let line: serde_json::Value = serde_json::from_slice(
                &out[..out.iter().position(|&b| b == b'\n').expect("a line")],
            )
            .expect("json");
            (
                line["mae"].as_f64().expect("mae"),
                String::from_utf8(notes).expect("utf8"),
            )
        };
        let (seasonal, notes) = mae(Some("600"));
        let (plain, _) = mae(None);
        assert!(notes.is_empty(), "{notes}");
        assert!(
            seasonal < plain / 2.0,
            "season 600: {seasonal}, none: {plain}"
        );
        let (_, notes) = mae(Some("1500"));
        assert!(
            notes.contains("too few seasons of --season 1500"),
            "{notes}"
        );
    }

    #[test]
    fn files_of_one_name_in_two_folders_are_told_apart() {
        let dir = crate::testing::Scratch::new("forecast-eval-same-name");
        let mut files = Vec::new();
        for folder in ["a", "b"] {
            std::fs::create_dir_all(dir.join(folder)).expect("folder");
            let path = dir.join(folder).join("x.csv");
            let rows: String = (0..120)
                .map(|i| format!("2014-02-14 {:02}:{:02}:00,{}\n", i / 60, i % 60, i % 5))
                .collect();
            std::fs::write(&path, format!("timestamp,value\n{rows}")).expect("write");
            files.push(path.to_string_lossy().into_owned());
        }
        let mut argv = vec![
            "--test-size",
            "20",
            "--model",
            "ewma",
            "--json",
            "--horizons",
            "1",
        ];
        argv.push("--series");
        argv.extend(files.iter().map(String::as_str));
        let (mut out, mut notes) = (Vec::new(), Vec::new());
        run(&args_with(&argv), &mut out, &mut notes).expect("runs");
        let names: Vec<String> = String::from_utf8(out)
            .expect("utf8")
            .lines()
            .map(|line| {
                let line: serde_json::Value = serde_json::from_str(line).expect("json");
                line["series"].as_str().expect("a name").to_string()
            })
            .collect();
        assert_eq!(names, files);
    }

    #[test]
    fn json_lines_and_table_from_a_file() {
        let dir = crate::testing::Scratch::new("forecast-eval");
        let long = dir.join("long.csv");
        let mut text = String::from("timestamp,value\n");
        for i in 0..200 {
            text.push_str(&format!(
                "2014-02-14 {:02}:{:02}:00,{}\n",
                i / 60,
                i % 60,
                (i % 7) as f64
            ));
        }
        std::fs::write(&long, text).expect("write");
        let short = dir.join("short.csv");
        std::fs::write(&short, "timestamp,value\n2014-02-14 00:00:00,1\n").expect("write");
        let files = [
            long.to_string_lossy().into_owned(),
            short.to_string_lossy().into_owned(),
        ];
        let mut argv = vec!["--test-size", "50", "--model", "all", "--json", "--series"];
        argv.extend(files.iter().map(String::as_str));
        let (mut out, mut notes) = (Vec::new(), Vec::new());
        run(&args_with(&argv), &mut out, &mut notes).expect("runs");
        let text = String::from_utf8(out).expect("utf8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        // 6 models x 3 horizons, every line of the pinned shape; the skipped series is named on
        // the notes, not in the JSON.
        assert_eq!(lines.len(), 18);
        assert!(text.lines().next().expect("a line").starts_with(
            "{\"series\":\"long.csv\",\"model\":\"ewma\",\"horizon\":1,\"n\":39,\"mae\":"
        ));
        let keys = [
            "series", "model", "horizon", "n", "mae", "smape", "mase", "seconds",
        ];
        for line in &lines {
            let object = line.as_object().expect("an object");
            assert_eq!(object.len(), keys.len(), "{line}");
            assert!(keys.iter().all(|k| object.contains_key(*k)), "{line}");
        }
        let notes = String::from_utf8(notes).expect("utf8");
        assert!(
            notes.starts_with("augur forecast: skipped short.csv: "),
            "{notes}"
        );
        let mut table = Vec::new();
        let argv = ["--test-size", "50", "--series", files[0].as_str()];
        run(&args_with(&argv), &mut table, &mut Vec::new()).expect("runs");
        let table = String::from_utf8(table).expect("utf8");
        assert!(table.contains("median MASE") && table.contains("auto"));
        // The table names no skipped series (stderr does), and counts them under it.
        let (mut table, mut notes) = (Vec::new(), Vec::new());
        let argv = [
            "--test-size",
            "50",
            "--series",
            files[0].as_str(),
            files[1].as_str(),
        ];
        run(&args_with(&argv), &mut table, &mut notes).expect("runs");
        let (table, notes) = (
            String::from_utf8(table).expect("utf8"),
            String::from_utf8(notes).expect("utf8"),
        );
        assert!(
            !table.contains("short.csv") && table.contains("(1 series skipped, named on stderr)"),
            "{table}"
        );
        assert!(
            notes.starts_with("augur forecast: skipped short.csv: "),
            "{notes}"
        );
        // Nothing scored in table mode: an error and no empty table.
        let mut table = Vec::new();
        let argv = ["--test-size", "50", "--series", files[1].as_str()];
        assert!(run(&args_with(&argv), &mut table, &mut Vec::new()).is_err());
        assert!(table.is_empty(), "{}", String::from_utf8_lossy(&table));
        // Only the short series: nothing is scored, and that is an error, not an empty success.
        let argv = ["--test-size", "50", "--json", "--series", files[1].as_str()];
        let (mut out, mut notes) = (Vec::new(), Vec::new());
        let error = run(&args_with(&argv), &mut out, &mut notes).expect_err("nothing scored");
        assert!(
            matches!(
                error,
                ForecastEvalError::NothingScored {
                    skipped: 1,
                    test_size: 50
                }
            ),
            "{error}"
        );
        assert!(out.is_empty());
    }

    fn args_with(extra: &[&str]) -> ForecastArgs {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: ForecastArgs,
        }
        let mut argv = vec!["forecast"];
        argv.extend_from_slice(extra);
        Wrapper::parse_from(argv).args
    }
}
