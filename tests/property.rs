//! Property test: on random platforms, random DAG shapes and random update streams, the
//! incremental dataflow and the sequential oracle agree on every output after every epoch, at
//! 1, 2 and 3 workers.
//!
//! `oracle_vs_dataflow` replays one fixed kind of stream; here every case draws its own world:
//! a platform (one to six devices, some identical, bandwidth known or not), knobs (policy,
//! anomaly handling, hysteresis, capacity target, weights, risk, dynamic granularity), and a
//! stream of layered or sparse DAGs with varied fan-in, fan-out and edge sizes that arrive,
//! start (mostly when ready), complete, or are withdrawn whole, while devices report samples,
//! some of which turn anomalous for a while.
//!
//! A failure names the seed, the case and the first epoch that differs;
//! `AUGUR_PROPERTY_SEED=<seed>` replays one case, `AUGUR_PROPERTY_CASES=<n>` runs more.

use std::collections::{BTreeMap, BTreeSet};

use augur::engine::{run_engine, Workers};
use augur_dataflows::contention_forecast::AnomalyPolicy;
use augur_dataflows::oracle::Oracle;
use augur_dataflows::placement::{Hierarchy, PlacementConfig, Policy, Weights};
use augur_dataflows::types::{
    Completion, DeviceSpec, InputBatch, Resource, Sample, TaskKey, TaskSpec, Time,
};
use augur_dataflows::EngineConfig;

use crate::common::{RecordingSink, Rng, VecSource};

/// Cases the default run draws (each runs at 1, 2 and 3 workers).
const CASES: u64 = 60;

/// A drawn world: the engine's configuration and the epochs it is fed.
struct Case {
    config: EngineConfig,
    stream: Vec<(Time, InputBatch)>,
    /// A one-line description for failure messages.
    summary: String,
}

fn random_devices(rng: &mut Rng) -> Vec<DeviceSpec> {
    let count = 1 + rng.below(6) as usize;
    let mut devices: Vec<DeviceSpec> = Vec::with_capacity(count);
    for _ in 0..count {
        // Now and then a copy of an earlier device, so that capability classes hold several.
        if !devices.is_empty() && rng.below(3) == 0 {
            let twin = devices[rng.below(devices.len() as u64) as usize];
            devices.push(twin);
            continue;
        }
        let cores = 1 + rng.below(16) as u32;
        devices.push(DeviceSpec {
            cores_milli: cores * 1000 - if rng.below(4) == 0 { 500 } else { 0 },
            memory_bytes: if rng.below(5) == 0 {
                u64::MAX
            } else {
                (1 + rng.below(64)) << 30
            },
            speed: 0.5 + rng.below(6) as f64 * 0.5,
            network_bytes_per_s: if rng.below(4) == 0 {
                0.0
            } else {
                1e7 * (1 + rng.below(1000)) as f64
            },
            cost_per_hour: rng.below(100) as f64 * 0.01,
            power_watts: rng.below(400) as f64,
            // Two zones, so that hierarchical cases have groups to choose between.
            zone: (devices.len() % 2) as u32,
        });
    }
    devices
}

fn random_config(rng: &mut Rng, devices: Vec<DeviceSpec>) -> EngineConfig {
    let mut config = EngineConfig {
        devices,
        ..EngineConfig::default()
    };
    config.placement = PlacementConfig {
        policy: Policy::ALL[rng.below(Policy::ALL.len() as u64) as usize],
        hysteresis: [0.0, 0.05, 0.3][rng.below(3) as usize],
        capacity_target: [0.6, 0.8, 1.0, 1.2][rng.below(4) as usize],
        weights: if rng.below(2) == 0 {
            Weights::default()
        } else {
            Weights {
                latency: rng.unit() * 2.0,
                cost: rng.unit() * 50.0,
                energy: rng.unit() * 0.05,
                locality: rng.unit() * 4.0,
            }
        },
        resculpt_margin: [0.0, 0.25, 1.0][rng.below(3) as usize],
        reorder_contention: [0.0, 0.3, 0.5, 10.0][rng.below(4) as usize],
        hierarchy: [Hierarchy::Off, Hierarchy::On, Hierarchy::Auto(8)][rng.below(3) as usize],
    };
    config.forecast.anomaly = match rng.below(3) {
        0 => AnomalyPolicy::Ignore,
        1 => AnomalyPolicy::Penalise(rng.unit()),
        _ => AnomalyPolicy::Exclude,
    };
    config.forecast.risk = [0.0, 0.0, 1.0][rng.below(3) as usize];
    config.forecast.horizon_ms = [60_000, 600_000, 3_600_000][rng.below(3) as usize];
    if rng.below(3) == 0 {
        config.forecast.coarse_quantum_ppm = Some(50_000);
    }
    config
}

/// Edges of a new workflow of `size` tasks as `(child, parent)` indices, parents first.
fn random_dag(rng: &mut Rng, size: u32) -> (Vec<(u32, u32)>, &'static str) {
    let mut edges = BTreeSet::new();
    if rng.below(2) == 0 {
        // Layered: each task of a layer reads from one or more tasks of earlier layers, mostly
        // the layer just above (fan-in), and a wide layer fans out of a narrow one.
        let mut layers: Vec<Vec<u32>> = Vec::new();
        let mut next = 0;
        while next < size {
            let width = (1 + rng.below(4) as u32).min(size - next);
            layers.push((next..next + width).collect());
            next += width;
        }
        for depth in 1..layers.len() {
            for &child in &layers[depth] {
                let fan_in = 1 + rng.below(3);
                for _ in 0..fan_in {
                    let from = if rng.below(4) == 0 {
                        rng.below(depth as u64) as usize
                    } else {
                        depth - 1
                    };
                    let layer = &layers[from];
                    edges.insert((child, layer[rng.below(layer.len() as u64) as usize]));
                }
            }
        }
        (edges.into_iter().collect(), "layered")
    } else {
        // Sparse: any earlier task is a parent with a small probability (often a forest).
        let density = 1 + rng.below(4);
        for child in 1..size {
            for parent in 0..child {
                if rng.below(10) < density {
                    edges.insert((child, parent));
                }
            }
        }
        (edges.into_iter().collect(), "sparse")
    }
}

struct Live {
    spec: TaskSpec,
    alternatives: Vec<(u32, TaskSpec)>,
    parents: Vec<(TaskKey, u64)>,
    started: Option<u32>,
}

/// Retracts a live task from every collection it is in.
fn retract(batch: &mut InputBatch, key: TaskKey, live: Live) {
    batch.tasks.push(((key, live.spec), -1));
    if let Some(device) = live.started {
        batch.started.push(((key, device), -1));
    }
    for (parent, bytes) in live.parents {
        batch.edges.push((((key, parent), bytes), -1));
    }
    for alternative in live.alternatives {
        batch.alternatives.push(((key, alternative), -1));
    }
}

/// The task's requirements, fitting on `host` so that no workflow is infeasible (the catalog
/// refuses those before they reach the graph).
fn random_spec(rng: &mut Rng, host: &DeviceSpec, kind: u32) -> TaskSpec {
    let memory_cap = host.memory_bytes.min(64 << 30);
    TaskSpec {
        cores_milli: 250 + rng.below(u64::from(host.cores_milli.saturating_sub(250)) + 1) as u32,
        memory_bytes: if rng.below(3) == 0 {
            0
        } else {
            rng.below(memory_cap / 2 + 1)
        },
        duration_ms: match rng.below(4) {
            0 => 0,
            1 => 1 + rng.below(1_000),
            _ => 1_000 * (1 + rng.below(3_600)),
        },
        kind,
    }
}

fn random_case(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let devices = random_devices(&mut rng);
    let config = random_config(&mut rng, devices.clone());
    // A device's class is the first device with the same capability, as the catalog numbers
    // them.
    let class: Vec<u32> = devices
        .iter()
        .map(|d| {
            devices
                .iter()
                .position(|o| {
                    (o.cores_milli, o.memory_bytes, o.speed)
                        == (d.cores_milli, d.memory_bytes, d.speed)
                })
                .unwrap_or(0) as u32
        })
        .collect();
    let epochs = 30 + rng.below(50) as usize;
    let kinds = 1 + rng.below(4) as u32;
    let mut shapes = Vec::new();
    let mut live: BTreeMap<TaskKey, Live> = BTreeMap::new();
    let mut completed: BTreeSet<TaskKey> = BTreeSet::new();
    // Devices in an anomalous spell, until when.
    let mut spell: BTreeMap<u32, Time> = BTreeMap::new();
    let mut last_sample: Vec<Time> = vec![Time::MIN / 2; devices.len()];
    let base: Vec<f64> = devices.iter().map(|_| rng.unit() * 0.6).collect();
    let mut next_workflow = 0;
    let mut time: Time = 1_000 + rng.below(1 << 40) as Time;
    let mut stream = Vec::with_capacity(epochs);
    for epoch in 0..epochs {
        time += match rng.below(4) {
            0 => 1,
            1 => 1 + rng.below(5_000) as Time,
            _ => 1 + rng.below(300_000) as Time,
        };
        let mut batch = InputBatch::default();

        if epoch == 0 || rng.below(4) == 0 {
            let workflow = next_workflow;
            next_workflow += 1;
            let size = 1 + rng.below(12) as u32;
            let (edges, shape) = random_dag(&mut rng, size);
            shapes.push(format!("{shape}:{size}"));
            let mut parents_of: BTreeMap<u32, Vec<(TaskKey, u64)>> = BTreeMap::new();
            for (child, parent) in edges {
                let bytes = match rng.below(4) {
                    0 => 0,
                    1 => rng.below(1 << 20),
                    2 => rng.below(1 << 32),
                    _ => rng.below(1 << 40),
                };
                parents_of.entry(child).or_default().push((
                    TaskKey {
                        workflow,
                        task: parent,
                    },
                    bytes,
                ));
            }
            for task in 0..size {
                let key = TaskKey { workflow, task };
                let host = &devices[rng.below(devices.len() as u64) as usize];
                let kind = rng.below(u64::from(kinds)) as u32;
                let spec = random_spec(&mut rng, host, kind);
                batch.tasks.push(((key, spec), 1));
                let mut alternatives = Vec::new();
                for variant in 1..=rng.below(3) as u32 {
                    if rng.below(2) == 0 {
                        let host = &devices[rng.below(devices.len() as u64) as usize];
                        let alternative = random_spec(&mut rng, host, spec.kind);
                        alternatives.push((variant, alternative));
                        batch.alternatives.push(((key, (variant, alternative)), 1));
                    }
                }
                let parents = parents_of.remove(&task).unwrap_or_default();
                for (parent, bytes) in &parents {
                    batch.edges.push((((key, *parent), *bytes), 1));
                }
                live.insert(
                    key,
                    Live {
                        spec,
                        alternatives,
                        parents,
                        started: None,
                    },
                );
            }
        }

        // Starts: mostly tasks whose parents are all done, now and then any waiting task.
        for _ in 0..rng.below(4) {
            let any = rng.below(6) == 0;
            let waiting: Vec<TaskKey> = live
                .iter()
                .filter(|(_, l)| l.started.is_none())
                .filter(|(_, l)| any || l.parents.iter().all(|(p, _)| completed.contains(p)))
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

        // Completions, some with a duration the model must ignore.
        for _ in 0..rng.below(4) {
            let running: Vec<TaskKey> = live
                .iter()
                .filter(|(_, l)| l.started.is_some())
                .map(|(k, _)| *k)
                .collect();
            if running.is_empty() {
                break;
            }
            let task = running[rng.below(running.len() as u64) as usize];
            let Some(done) = live.remove(&task) else {
                continue;
            };
            let device = done.started.unwrap_or(0);
            let seconds = match rng.below(12) {
                0 => 0.0,
                1 => f64::INFINITY,
                _ => 0.5 + rng.unit() * (done.spec.duration_ms as f64 / 1000.0 + 1.0),
            };
            batch.completions.push(Completion {
                category: done.spec.kind,
                class: class[device as usize],
                speed: devices[device as usize].speed,
                estimate_s: done.spec.duration_ms as f64 / 1000.0,
                input_bytes: done.parents.iter().map(|(_, b)| *b).sum(),
                cores: f64::from(done.spec.cores_milli) / 1000.0,
                seconds,
            });
            completed.insert(task);
            retract(&mut batch, task, done);
        }

        // Withdrawals: now and then a whole workflow is cancelled, started tasks included.
        if rng.below(12) == 0 {
            let workflows: BTreeSet<u32> = live.keys().map(|k| k.workflow).collect();
            if let Some(&workflow) = workflows
                .iter()
                .nth(rng.below(workflows.len().max(1) as u64) as usize)
            {
                let keys: Vec<TaskKey> = live
                    .keys()
                    .filter(|k| k.workflow == workflow)
                    .copied()
                    .collect();
                for key in keys {
                    if let Some(gone) = live.remove(&key) {
                        retract(&mut batch, key, gone);
                    }
                }
            }
        }

        // Samples: a regular signal per device, at least 10 s apart as real collectors send
        // them (a forecast's horizon is counted in sampling intervals), and now and then a
        // spell far above it.
        for device in 0..devices.len() as u32 {
            if rng.below(3) == 0 || last_sample[device as usize] + 10_000 > time {
                continue;
            }
            last_sample[device as usize] = time;
            if rng.below(25) == 0 {
                spell.insert(device, time + rng.below(1_800_000) as Time);
            }
            let anomalous = spell.get(&device).is_some_and(|&until| time <= until);
            for resource in Resource::ALL {
                if rng.below(2) == 0 {
                    continue;
                }
                let noise = (rng.unit() - 0.5) * 0.05;
                let value = if anomalous {
                    1.0 + rng.unit() * 2.0
                } else {
                    (base[device as usize] + noise).max(0.0)
                };
                batch.samples.push(Sample {
                    device,
                    resource,
                    value,
                });
            }
        }
        stream.push((time, batch));
    }
    let summary = format!(
        "{} devices, {:?}, {:?}, {epochs} epochs, workflows [{}]",
        devices.len(),
        config.placement.policy,
        config.forecast.anomaly,
        shapes.join(" ")
    );
    Case {
        config,
        stream,
        summary,
    }
}

/// Everything observable after one epoch.
#[derive(Debug, PartialEq)]
struct Outputs {
    map: BTreeMap<TaskKey, u32>,
    forecasts: String,
    durations: BTreeMap<(u32, u32), u64>,
    prewarm: Vec<(u32, u32)>,
    variants: BTreeMap<TaskKey, u32>,
    /// Tasks run ahead of their placement order: `(device, the task ahead of which)`.
    reorders: BTreeMap<TaskKey, (u32, TaskKey)>,
}

fn oracle_outputs(case: &Case) -> Vec<(Time, Outputs)> {
    let config = &case.config;
    let mut oracle = Oracle::new(
        &config.devices,
        config.forecast,
        config.placement,
        config.durations,
    );
    case.stream
        .iter()
        .map(|(time, batch)| {
            oracle.step(*time, batch.clone());
            let outputs = Outputs {
                map: oracle.map(),
                forecasts: format!("{:?}", oracle.forecasts()),
                durations: oracle.durations(),
                prewarm: oracle.prewarm(),
                variants: oracle.variants(),
                reorders: oracle.reorders(),
            };
            (*time, outputs)
        })
        .collect()
}

fn dataflow_outputs(case: &Case, workers: usize) -> Result<Vec<(Time, Outputs)>, String> {
    let sink = RecordingSink::default();
    let maps = sink.after_epoch.clone();
    let forecasts = sink.forecasts_after_epoch.clone();
    let durations = sink.durations_after_epoch.clone();
    let prewarm = sink.prewarm_after_epoch.clone();
    let variants = sink.variants_after_epoch.clone();
    let reorders = sink.reorders_after_epoch.clone();
    let feed = std::sync::Mutex::new(Some(case.stream.clone()));
    run_engine(Workers::Threads(workers), case.config.clone(), move || {
        let stream = feed
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .unwrap_or_default();
        (VecSource(stream.into_iter()), sink.clone())
    })
    .map_err(|error| format!("the engine failed: {error}"))?;
    let maps: Vec<_> = take(&maps);
    let forecasts: Vec<_> = take(&forecasts);
    let durations: Vec<_> = take(&durations);
    let prewarm: Vec<_> = take(&prewarm);
    let variants: Vec<_> = take(&variants);
    let reorders: Vec<_> = take(&reorders);
    let epochs = maps.len();
    if [
        forecasts.len(),
        durations.len(),
        prewarm.len(),
        variants.len(),
        reorders.len(),
    ] != [epochs; 5]
    {
        return Err("the sink saw a different number of epochs per output".to_string());
    }
    Ok(maps
        .into_iter()
        .zip(forecasts)
        .zip(durations)
        .zip(prewarm)
        .zip(variants)
        .zip(reorders)
        .map(|((((((time, map), (_, f)), (_, d)), p), v), r)| {
            let outputs = Outputs {
                map,
                forecasts: format!("{f:?}"),
                durations: d,
                prewarm: p,
                variants: v,
                reorders: r,
            };
            (time, outputs)
        })
        .collect())
}

fn take<T: Clone>(log: &std::sync::Mutex<Vec<T>>) -> Vec<T> {
    log.lock().map(|l| l.clone()).unwrap_or_default()
}

/// The first difference between the oracle and the dataflow, described.
fn first_difference(want: &[(Time, Outputs)], got: &[(Time, Outputs)]) -> Option<String> {
    if want.len() != got.len() {
        return Some(format!(
            "{} epochs from the dataflow, {} from the oracle",
            got.len(),
            want.len()
        ));
    }
    for (epoch, ((time, want), (got_time, got))) in want.iter().zip(got).enumerate() {
        if time != got_time {
            return Some(format!("epoch {epoch}: time {got_time}, expected {time}"));
        }
        let what = if want.map != got.map {
            format!("map: oracle {:?}\n dataflow {:?}", want.map, got.map)
        } else if want.forecasts != got.forecasts {
            format!(
                "forecasts: oracle {}\n dataflow {}",
                want.forecasts, got.forecasts
            )
        } else if want.durations != got.durations {
            format!(
                "durations: oracle {:?}\n dataflow {:?}",
                want.durations, got.durations
            )
        } else if want.prewarm != got.prewarm {
            format!(
                "prewarm: oracle {:?}\n dataflow {:?}",
                want.prewarm, got.prewarm
            )
        } else if want.variants != got.variants {
            format!(
                "variants: oracle {:?}\n dataflow {:?}",
                want.variants, got.variants
            )
        } else if want.reorders != got.reorders {
            format!(
                "reorders: oracle {:?}\n dataflow {:?}",
                want.reorders, got.reorders
            )
        } else {
            continue;
        };
        return Some(format!("epoch {epoch} (time {time}) differs in the {what}"));
    }
    None
}

/// Checks one case at 1, 2 and 3 workers; the error names the seed and the case.
fn check_case(seed: u64) -> Result<usize, String> {
    let case = random_case(seed);
    let want = oracle_outputs(&case);
    for workers in 1..=3 {
        let got = dataflow_outputs(&case, workers).map_err(|error| {
            format!("seed {seed} ({}), {workers} workers: {error}", case.summary)
        })?;
        if let Some(difference) = first_difference(&want, &got) {
            return Err(format!(
                "seed {seed} ({}), {workers} workers: {difference}\n\
                 replay with AUGUR_PROPERTY_SEED={seed} cargo test --test tests property",
                case.summary
            ));
        }
    }
    Ok(want.iter().map(|(_, o)| o.map.len()).max().unwrap_or(0))
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn random_dags_and_update_streams_match_oracle_at_1_2_and_3_workers() {
    let seeds: Vec<u64> = match env_u64("AUGUR_PROPERTY_SEED") {
        Some(seed) => vec![seed],
        None => {
            let cases = env_u64("AUGUR_PROPERTY_CASES").unwrap_or(CASES);
            (0..cases).map(|case| 0x5eed_0000 + case).collect()
        }
    };
    let mut failures = Vec::new();
    let mut busiest = 0;
    for seed in &seeds {
        match check_case(*seed) {
            Ok(placed) => busiest = busiest.max(placed),
            Err(failure) => failures.push(failure),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
    // The cases must have exercised the map, or agreement proves little.
    assert!(
        busiest >= 5,
        "no case placed more than {busiest} tasks at once"
    );
}

/// The generator itself: both shapes occur, DAGs have fan-in and fan-out, and the streams
/// carry every kind of change (otherwise the property above would test less than it claims).
#[test]
fn generated_cases_cover_every_kind_of_change() {
    let mut shapes = BTreeSet::new();
    let (mut fan_in, mut fan_out) = (false, false);
    let mut seen = [false; 7];
    for case in 0..CASES {
        let case = random_case(0x5eed_0000 + case);
        for shape in ["layered", "sparse"] {
            if case.summary.contains(shape) {
                shapes.insert(shape);
            }
        }
        for (_, batch) in &case.stream {
            let mut parents: BTreeMap<TaskKey, usize> = BTreeMap::new();
            let mut children: BTreeMap<TaskKey, usize> = BTreeMap::new();
            for (((child, parent), _), diff) in &batch.edges {
                if *diff > 0 {
                    *parents.entry(*child).or_default() += 1;
                    *children.entry(*parent).or_default() += 1;
                }
            }
            fan_in |= parents.values().any(|&n| n >= 2);
            fan_out |= children.values().any(|&n| n >= 2);
            seen[0] |= batch.tasks.iter().any(|(_, d)| *d > 0);
            seen[1] |= batch.tasks.iter().any(|(_, d)| *d < 0);
            seen[2] |= batch.started.iter().any(|(_, d)| *d > 0);
            seen[3] |= !batch.completions.is_empty();
            seen[4] |= batch.samples.iter().any(|s| s.value >= 1.0);
            seen[5] |= batch.alternatives.iter().any(|(_, d)| *d > 0);
            // A withdrawal: an unstarted task retracted without a completion.
            seen[6] |= batch.completions.is_empty() && batch.tasks.iter().any(|(_, d)| *d < 0);
        }
    }
    assert_eq!(shapes.len(), 2, "shapes drawn: {shapes:?}");
    assert!(fan_in && fan_out);
    assert_eq!(
        seen, [true; 7],
        "arrive, leave, start, complete, spike, alternative, withdraw"
    );
}
