//! The incremental dataflow against the sequential oracle, on seeded streams of metric updates,
//! task arrivals, starts and completions, at several worker counts: the partition map, every
//! series' forecast and every duration estimate are compared after every epoch.

use std::collections::BTreeMap;

use augur::engine::{run_engine, Workers};
use augur_dataflows::oracle::Oracle;
use augur_dataflows::types::{
    Completion, DeviceSpec, InputBatch, Resource, Sample, TaskKey, TaskSpec, Time,
};
use augur_dataflows::EngineConfig;

use crate::common::{RecordingSink, Rng, VecSource};

fn devices() -> Vec<DeviceSpec> {
    let spec = |cores: u32, memory_gib: u64, speed: f64| DeviceSpec {
        cores_milli: cores * 1000,
        memory_bytes: memory_gib << 30,
        speed,
    };
    vec![
        spec(4, 16, 1.0),
        spec(4, 16, 1.0),
        spec(8, 64, 1.5),
        spec(8, 64, 1.5),
        spec(2, 4, 1.0),
    ]
}

struct Live {
    spec: TaskSpec,
    started: Option<u32>,
    parents: Vec<TaskKey>,
}

/// A seeded stream of epochs exercising every kind of change, inserts and retractions alike.
fn seeded_stream(seed: u64, epochs: usize) -> Vec<(Time, InputBatch)> {
    let mut rng = Rng::new(seed);
    let devices = devices();
    let mut live: BTreeMap<TaskKey, Live> = BTreeMap::new();
    let mut next_workflow = 0;
    let mut time: Time = 1_000;
    let mut stream = Vec::new();
    for _ in 0..epochs {
        time += 1 + rng.below(120_000) as Time;
        let mut batch = InputBatch::default();
        if rng.below(3) == 0 {
            let workflow = next_workflow;
            next_workflow += 1;
            let size = 1 + rng.below(6) as u32;
            for task in 0..size {
                let key = TaskKey { workflow, task };
                let spec = TaskSpec {
                    cores_milli: 500 * (1 + rng.below(8) as u32),
                    memory_bytes: rng.below(8) << 30,
                    duration_ms: 1_000 * (1 + rng.below(600)),
                };
                let parents: Vec<TaskKey> = (0..task)
                    .filter(|_| rng.below(5) < 2)
                    .map(|parent| TaskKey {
                        workflow,
                        task: parent,
                    })
                    .collect();
                batch.tasks.push(((key, spec), 1));
                for parent in &parents {
                    batch.edges.push(((key, *parent), 1));
                }
                live.insert(
                    key,
                    Live {
                        spec,
                        started: None,
                        parents,
                    },
                );
            }
        }
        for _ in 0..rng.below(3) {
            let waiting: Vec<TaskKey> = live
                .iter()
                .filter(|(_, l)| l.started.is_none())
                .map(|(k, _)| *k)
                .collect();
            if waiting.is_empty() {
                break;
            }
            let task = waiting[rng.below(waiting.len() as u64) as usize];
            let device = rng.below(devices.len() as u64) as u32;
            batch.started.push(((task, device), 1));
            if let Some(entry) = live.get_mut(&task) {
                entry.started = Some(device);
            }
        }
        for _ in 0..rng.below(3) {
            let running: Vec<TaskKey> = live
                .iter()
                .filter(|(_, l)| l.started.is_some())
                .map(|(k, _)| *k)
                .collect();
            if running.is_empty() {
                break;
            }
            let task = running[rng.below(running.len() as u64) as usize];
            if let Some(done) = live.remove(&task) {
                batch.tasks.push(((task, done.spec), -1));
                if let Some(device) = done.started {
                    batch.started.push(((task, device), -1));
                    // Now and then a duration the model must ignore.
                    let seconds = match rng.below(10) {
                        0 => 0.0,
                        1 => f64::NAN,
                        _ => 1.0 + rng.unit() * done.spec.duration_ms as f64 / 1000.0,
                    };
                    batch.completions.push(Completion {
                        category: task.task % 3,
                        class: device % 3,
                        speed: devices[device as usize].speed,
                        estimate_s: if rng.below(2) == 0 {
                            done.spec.duration_ms as f64 / 1000.0
                        } else {
                            0.0
                        },
                        input_bytes: rng.below(1 << 20),
                        cores: done.spec.cores_milli as f64 / 1000.0,
                        seconds,
                    });
                }
                for parent in done.parents {
                    batch.edges.push(((task, parent), -1));
                }
            }
        }
        for _ in 0..rng.below(4) {
            batch.samples.push(Sample {
                device: rng.below(devices.len() as u64) as u32,
                resource: Resource::ALL[rng.below(4) as usize],
                value: rng.unit() * 1.3,
            });
        }
        stream.push((time, batch));
    }
    stream
}

fn check(seed: u64, epochs: usize, workers: usize) {
    let stream = seeded_stream(seed, epochs);
    let config = EngineConfig {
        devices: devices(),
        ..EngineConfig::default()
    };

    let mut oracle = Oracle::new(
        &config.devices,
        config.forecast,
        config.placement,
        config.durations,
    );
    let mut expected = Vec::new();
    let mut expected_forecasts = Vec::new();
    let mut expected_durations = Vec::new();
    for (time, batch) in &stream {
        oracle.step(*time, batch.clone());
        expected.push((*time, oracle.map()));
        expected_forecasts.push(oracle.forecasts());
        expected_durations.push(oracle.durations());
    }

    let sink = RecordingSink::default();
    let log = sink.after_epoch.clone();
    let forecast_log = sink.forecasts_after_epoch.clone();
    let duration_log = sink.durations_after_epoch.clone();
    let feed = std::sync::Mutex::new(Some(stream));
    let outcome = run_engine(Workers::Threads(workers), config, move || {
        let stream = feed
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .unwrap_or_default();
        (VecSource(stream.into_iter()), sink.clone())
    });
    assert!(outcome.is_ok(), "engine failed");
    let actual = log.lock().map(|l| l.clone()).unwrap_or_default();
    assert_eq!(actual.len(), expected.len(), "one map per epoch");
    for ((time, want), (got_time, got)) in expected.iter().zip(&actual) {
        assert_eq!(time, got_time);
        assert_eq!(
            want, got,
            "seed {seed}, {workers} workers: maps differ after epoch at {time}"
        );
    }
    let forecasts = forecast_log.lock().map(|l| l.clone()).unwrap_or_default();
    for ((time, got), want) in forecasts.iter().zip(&expected_forecasts) {
        assert_eq!(
            want, got,
            "seed {seed}, {workers} workers: forecasts differ after epoch at {time}"
        );
    }
    assert!(expected_forecasts.last().is_some_and(|f| f.len() >= 5));
    let durations = duration_log.lock().map(|l| l.clone()).unwrap_or_default();
    assert_eq!(durations.len(), expected_durations.len());
    for ((time, got), want) in durations.iter().zip(&expected_durations) {
        assert_eq!(
            want, got,
            "seed {seed}, {workers} workers: duration estimates differ after epoch at {time}"
        );
    }
    assert!(expected_durations.last().is_some_and(|d| d.len() >= 3));
    // The stream must have exercised the map, or the comparison proves little.
    assert!(
        expected.iter().any(|(_, map)| map.len() >= 5),
        "seed {seed} placed too little"
    );
}

#[test]
fn seeded_streams_match_oracle_1_worker() {
    for seed in 0..6 {
        check(seed, 120, 1);
    }
}

#[test]
fn seeded_streams_match_oracle_2_workers() {
    for seed in 10..14 {
        check(seed, 120, 2);
    }
}

#[test]
fn seeded_streams_match_oracle_3_workers() {
    for seed in 20..24 {
        check(seed, 120, 3);
    }
}
