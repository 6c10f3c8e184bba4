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
//! ```text
//! cargo bench --bench models                 # 2 000 000 updates per model (a few seconds)
//! cargo bench --bench models -- --smoke      # 20 000 updates per model
//! cargo bench --bench models -- --model auto # one model (ewma, holt, hw, ar, median, auto, auto-1min)
//! ```
//!
//! The report goes to stdout as pretty JSON.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

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

fn main() -> ExitCode {
    let mut updates = 2_000_000;
    let mut only: Option<String> = None;
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--smoke" => updates = 20_000,
            "--model" => only = arguments.next(),
            // cargo passes `--bench` to every bench target.
            "--bench" => {}
            other => {
                eprintln!("models: unknown argument {other:?} (expected --smoke, --model NAME)");
                return ExitCode::from(2);
            }
        }
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
    match serde_json::to_string_pretty(&reports) {
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
