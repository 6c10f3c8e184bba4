//! How coarse a series' steps may be: the published forecast (the mean over the next horizon)
//! from a step per sample against bucket means of `horizon / HORIZON_STEPS`, on Alibaba's
//! machine traces. Their samples are 10 to 70 s apart; time is divided by `--speed` (6 by
//! default) so that they stand for 2- to 12-s samples under the default 10-minute horizon,
//! which is the same thing to the models (they work in steps) and is where bucketing starts.
//!
//! cargo run --release -p augur-dataflows --example horizon_steps -- \
//!     ../shared/data/alibaba_v2018/machine_usage_sample.csv [speed]
//!
//! Per machine and in all: the mean absolute error of `auto`'s forecast of the CPU's mean over
//! the next horizon, at every sample past the first 500 with at least 4 samples in that
//! horizon, for both step choices and for the last value as the forecast.

use std::collections::BTreeMap;

use augur_dataflows::contention_forecast::HORIZON_STEPS;
use augur_dataflows::models::{ModelConfig, TimedModel};

const HORIZON_MS: i64 = 600_000;
const WARM_UP: usize = 500;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: horizon_steps MACHINE_USAGE.csv [SPEED]");
    let speed: f64 = args.next().map_or(6.0, |s| s.parse().expect("speed"));
    let text = std::fs::read_to_string(&path).expect("read the trace");
    let mut machines: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(time), Some(cpu)) = (fields.get(1), fields.get(2)) else {
            continue;
        };
        let (Ok(time), Ok(cpu)) = (time.parse::<f64>(), cpu.parse::<f64>()) else {
            continue;
        };
        machines
            .entry(fields[0].to_string())
            .or_default()
            .push(((time * 1000.0 / speed) as i64, cpu / 100.0));
    }
    let config = ModelConfig::default();
    let mut totals = [0.0f64; 3];
    let mut scored_all = 0usize;
    println!("machine,samples,scored,coarse,mae_step_per_sample,mae_buckets,mae_last_value");
    for (machine, mut samples) in machines {
        samples.sort_by_key(|s| s.0);
        let mut fine = TimedModel::for_series(&config, None, HORIZON_MS as f64 / 1008.0);
        let mut coarse = TimedModel::for_series(&config, None, HORIZON_MS as f64 / HORIZON_STEPS);
        fine.focus_on(&[HORIZON_MS]);
        coarse.focus_on(&[HORIZON_MS]);
        let mut errors = [0.0f64; 3];
        let mut scored = 0usize;
        let mut end = 0;
        for (k, &(time, value)) in samples.iter().enumerate() {
            fine.update(time, value);
            coarse.update(time, value);
            if k < WARM_UP {
                continue;
            }
            // The realised mean over (time, time + horizon].
            end = end.max(k + 1);
            while end < samples.len() && samples[end].0 <= time + HORIZON_MS {
                end += 1;
            }
            if end - (k + 1) < 4 {
                continue;
            }
            let ahead = &samples[k + 1..end];
            let actual = ahead.iter().map(|s| s.1).sum::<f64>() / ahead.len() as f64;
            let forecasts = [
                fine.mean_over(HORIZON_MS),
                coarse.mean_over(HORIZON_MS),
                value,
            ];
            for (error, forecast) in errors.iter_mut().zip(forecasts) {
                *error += (forecast - actual).abs();
            }
            scored += 1;
        }
        if scored == 0 {
            continue;
        }
        println!(
            "{machine},{},{scored},{},{:.5},{:.5},{:.5}",
            samples.len(),
            coarse.is_coarse(),
            errors[0] / scored as f64,
            errors[1] / scored as f64,
            errors[2] / scored as f64
        );
        for (total, error) in totals.iter_mut().zip(errors) {
            *total += error;
        }
        scored_all += scored;
    }
    let n = scored_all.max(1) as f64;
    println!(
        "ALL,,{scored_all},,{:.5},{:.5},{:.5}",
        totals[0] / n,
        totals[1] / n,
        totals[2] / n
    );
}
