//! Per-sample cost of augur's forecasting models (`augur_dataflows::models`).
//!
//! Feeds each model (ewma, holt, hw, ar, median, auto, and auto told that it samples once a
//! minute, `auto-1min`) a long synthetic 5-minute utilisation series (a
//! daily season, AR(1) noise and a level shift every few days) and measures:
//! - the update cost in ns per sample, refits included (they come every 288 samples and are
//!   part of what a series costs), as p50/p90/p99/max over batches of 1000 updates
//!   (an hdrhistogram of batch means) and as the overall mean;
//! - the update alone, with refits only at 16, 32, …, 2^20 samples;
//! - the cost of one placement query, `mean_over(12)` plus `sigma(12)`, the same way.
//!
//! Target: at most 1 us per update for every model.
//!
//! With `--series`, it measures instead what the forecast operator pays per sample for a whole
//! series (`SeriesState`: the timed model, the anomaly scorer and the published forecast, at
//! 10-s samples) over 1, 20, 200 and 2,000 series, the samples taken round-robin (as an epoch
//! of a metric log brings them) and then, the same samples of the same series, one series at a
//! time: the same work, once with a working set that outgrows the caches. This is why
//! `augur bench ingest` costs more per sample at 1,000 devices than at 100.
//!
//! ```text
//! cargo bench --bench models                 # 2 000 000 updates per model (a few seconds)
//! cargo bench --bench models -- --smoke      # 20 000 updates per model
//! cargo bench --bench models -- --model auto # one model (ewma, holt, hw, ar, median, auto, auto-1min)
//! cargo bench --bench models -- --series     # per-sample cost against the number of series
//! ```
//!
//! The report goes to stdout as pretty JSON.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use augur_dataflows::contention_forecast::{ForecastConfig, SeriesState};
use augur_dataflows::models::{ModelConfig, ModelKind, SeriesModel};
use hdrhistogram::Histogram;
use serde::Serialize;

const BATCH: usize = 1000;

#[derive(Serialize)]
struct ModelReport {
    model: &'static str,
    updates: usize,
    update_ns_mean: f64,
    update_ns_p50: u64,
    update_ns_p90: u64,
    update_ns_p99: u64,
    update_ns_max: u64,
    query_ns_mean: f64,
    query_ns_p99: u64,
    /// The same stream with refits only at 16, 32, …, 2^20 samples: the O(1) / O(p) update alone.
    update_ns_mean_between_refits: f64,
    target_met: bool,
}

/// A deterministic series: level 40 (shifted by +-15 every ~3.5 days), a daily season of
/// amplitude 10, AR(1) noise.
fn series(n: usize) -> Vec<f64> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut noise = 0.0;
    (0..n)
        .map(|t| {
            noise = 0.7 * noise + 4.0 * uniform();
            let shift = if (t / 1008) % 2 == 1 { 15.0 } else { 0.0 };
            let phase = 2.0 * std::f64::consts::PI * (t % 288) as f64 / 288.0;
            (40.0 + shift + 10.0 * phase.sin() + noise).max(0.0)
        })
        .collect()
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

fn between_refits(config: &ModelConfig, values: &[f64]) -> f64 {
    let mut model = SeriesModel::new(&ModelConfig {
        refit_every: usize::MAX,
        ..*config
    });
    let started = Instant::now();
    for &value in values {
        model.update(black_box(value));
    }
    started.elapsed().as_nanos() as f64 / values.len().max(1) as f64
}

fn measure(model_name: &'static str, config: &ModelConfig, values: &[f64]) -> ModelReport {
    let mut model = SeriesModel::new(config);
    let mut updates = histogram();
    let mut queries = histogram();
    let (mut update_total, mut query_total, mut query_count) = (0.0, 0.0, 0usize);
    for batch in values.chunks(BATCH) {
        let started = Instant::now();
        for &value in batch {
            model.update(black_box(value));
        }
        let ns = started.elapsed().as_nanos() as f64;
        update_total += ns;
        updates.saturating_record((ns / batch.len() as f64).round().max(1.0) as u64);
        // Placement asks once per series per epoch, far less often than samples arrive.
        let started = Instant::now();
        for _ in 0..16 {
            black_box(model.mean_over(black_box(12)) + 2.0 * model.sigma(black_box(12)));
        }
        let ns = started.elapsed().as_nanos() as f64 / 16.0;
        query_total += ns;
        query_count += 1;
        queries.saturating_record(ns.round().max(1.0) as u64);
    }
    let update_ns_mean = update_total / values.len().max(1) as f64;
    ModelReport {
        model: model_name,
        updates: values.len(),
        update_ns_mean,
        update_ns_p50: updates.value_at_quantile(0.5),
        update_ns_p90: updates.value_at_quantile(0.9),
        update_ns_p99: updates.value_at_quantile(0.99),
        update_ns_max: updates.max(),
        query_ns_mean: query_total / query_count.max(1) as f64,
        query_ns_p99: queries.value_at_quantile(0.99),
        update_ns_mean_between_refits: between_refits(config, values),
        target_met: update_ns_mean <= 1000.0,
    }
}

#[derive(Serialize)]
struct SeriesCountReport {
    model: &'static str,
    series: usize,
    /// Timed samples of each series (after [`WARM_UP`] untimed ones).
    samples_per_series: usize,
    /// `SeriesState::update` and `SeriesState::forecast` per sample, the series' samples taken
    /// round-robin (as an epoch of a metric log brings them).
    round_robin_ns: f64,
    /// The same samples of the same series, each series' in a row: the same work, its state
    /// staying in cache.
    one_at_a_time_ns: f64,
    /// `round_robin_ns / one_at_a_time_ns`: what the working set's size costs.
    cache_cost: f64,
}

/// Series counts of `--series`: one, then working sets of about a tenth of an L2 cache, a few
/// L2s, and past a common L3.
const SERIES_COUNTS: [usize; 4] = [1, 20, 200, 2_000];

/// Samples each series takes, untimed, before `--series` measures it: two windows, past the
/// young series' extra refits and scoring, so every count measures mature series.
const WARM_UP: usize = 2_016;

/// Rounds of `--series`, both orders once a round: the report takes each one's median, so one
/// busy moment of a shared machine does not decide a ratio.
const SERIES_ROUNDS: usize = 3;

/// `count` series of one model, each with [`WARM_UP`] samples taken and `steps` to come, 10 s
/// apart; every series reads its own stretch of one long signal, so no two are alike.
struct Fleet {
    config: ForecastConfig,
    warmed: Vec<SeriesState>,
    values: Vec<f64>,
    steps: usize,
}

impl Fleet {
    fn new(model: &ModelConfig, count: usize, samples_per_series: usize) -> Fleet {
        let config = ForecastConfig {
            model: *model,
            ..ForecastConfig::default()
        };
        let steps = WARM_UP + samples_per_series;
        let mut fleet = Fleet {
            warmed: (0..count).map(|_| SeriesState::new(&config)).collect(),
            values: series(steps * count),
            config,
            steps,
        };
        let mut states = std::mem::take(&mut fleet.warmed);
        for step in 0..WARM_UP {
            for (index, state) in states.iter_mut().enumerate() {
                fleet.take(state, index, step);
            }
        }
        fleet.warmed = states;
        fleet
    }

    /// Series `index` takes its sample of `step`, then publishes its forecast.
    fn take(&self, state: &mut SeriesState, index: usize, step: usize) {
        let time = 1_704_067_200_000 + step as i64 * 10_000;
        let value = self.values[index * self.steps + step] / 100.0;
        state.update(black_box(time), black_box(value));
        black_box(state.forecast(&self.config));
    }

    /// Nanoseconds per timed sample, round-robin or one series at a time, from fresh copies
    /// of the warmed states; and the forecasts they end with.
    fn run(&self, round_robin: bool) -> (f64, Vec<SeriesState>) {
        let mut states = self.warmed.clone();
        let started = Instant::now();
        if round_robin {
            for step in WARM_UP..self.steps {
                for (index, state) in states.iter_mut().enumerate() {
                    self.take(state, index, step);
                }
            }
        } else {
            for (index, state) in states.iter_mut().enumerate() {
                for step in WARM_UP..self.steps {
                    self.take(state, index, step);
                }
            }
        }
        let taken = (self.steps - WARM_UP) * states.len();
        let ns = started.elapsed().as_nanos() as f64 / taken.max(1) as f64;
        (ns, states)
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn series_counts(only: Option<&str>, samples: usize, counts: &[usize]) -> Vec<SeriesCountReport> {
    let models = [("ewma", ModelKind::Ewma), ("auto", ModelKind::Auto)]
        .into_iter()
        .filter(|(name, _)| only.is_none_or(|only| only == *name));
    let mut reports = Vec::new();
    for (name, kind) in models {
        for &count in counts {
            let samples_per_series = (samples / count).max(1);
            let fleet = Fleet::new(&ModelConfig::new(kind), count, samples_per_series);
            let (mut round_robin, mut one_at_a_time) = (Vec::new(), Vec::new());
            for round in 0..SERIES_ROUNDS {
                // Each order goes first in turn, so neither always meets a cold machine.
                let (by_step, by_series) = if round % 2 == 0 {
                    let by_step = fleet.run(true);
                    (by_step, fleet.run(false))
                } else {
                    let by_series = fleet.run(false);
                    (fleet.run(true), by_series)
                };
                let ((ns, by_step), (other_ns, by_series)) = (by_step, by_series);
                round_robin.push(ns);
                one_at_a_time.push(other_ns);
                // The order is the only difference: each series sees its own samples in
                // order either way.
                let published = |states: &[SeriesState]| -> Vec<_> {
                    states.iter().map(|s| s.forecast(&fleet.config)).collect()
                };
                assert_eq!(published(&by_step), published(&by_series));
            }
            let (round_robin, one_at_a_time) = (median(round_robin), median(one_at_a_time));
            let cache_cost = round_robin / one_at_a_time;
            eprintln!(
                "{name:<5} {count:>6} series: {round_robin:>7.1} ns/sample round-robin, \
                 {one_at_a_time:>7.1} one series at a time ({cache_cost:.2}x)"
            );
            reports.push(SeriesCountReport {
                model: name,
                series: count,
                samples_per_series,
                round_robin_ns: round_robin,
                one_at_a_time_ns: one_at_a_time,
                cache_cost,
            });
        }
    }
    reports
}

fn main() -> ExitCode {
    let mut updates = 2_000_000;
    let mut only: Option<String> = None;
    let mut by_series = false;
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--smoke" => updates = 20_000,
            "--model" => only = arguments.next(),
            "--series" => by_series = true,
            // cargo passes `--bench` to every bench target.
            "--bench" => {}
            other => {
                eprintln!(
                    "models: unknown argument {other:?} (expected --smoke, --model NAME, --series)"
                );
                return ExitCode::from(2);
            }
        }
    }
    if by_series {
        // The smoke size keeps the smaller counts only: 2,000 series would each see a few
        // samples.
        let counts = if updates < 2_000_000 {
            &SERIES_COUNTS[..2]
        } else {
            &SERIES_COUNTS[..]
        };
        if only
            .as_deref()
            .is_some_and(|only| only != "ewma" && only != "auto")
        {
            eprintln!("models: --series measures ewma and auto only");
            return ExitCode::from(2);
        }
        return print_json(&series_counts(only.as_deref(), updates, counts));
    }
    let values = series(updates);
    // Every model at 5-minute steps, then `auto` built knowing it samples once a minute: it seeks
    // seasons up to a day (1,440 steps) in a window of 4,320.
    let minute = ModelConfig {
        interval_ms: Some(60_000.0),
        ..ModelConfig::new(ModelKind::Auto)
    };
    let configs = ModelKind::ALL
        .iter()
        .map(|&kind| (kind.name(), ModelConfig::new(kind)))
        .chain([("auto-1min", minute)])
        .filter(|(name, _)| only.as_deref().is_none_or(|only| only == *name));
    let reports: Vec<ModelReport> = configs
        .map(|(name, config)| {
            let report = measure(name, &config, &values);
            eprintln!(
                "{:<9} {:>8.1} ns/update (p50 {}, p99 {}; {:.1} between refits)",
                report.model,
                report.update_ns_mean,
                report.update_ns_p50,
                report.update_ns_p99,
                report.update_ns_mean_between_refits
            );
            report
        })
        .collect();
    print_json(&reports)
}

fn print_json<T: Serialize>(reports: &T) -> ExitCode {
    match serde_json::to_string_pretty(reports) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("models: could not encode the report: {error}");
            ExitCode::FAILURE
        }
    }
}
