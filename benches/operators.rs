//! Criterion benchmarks of augur's dataflow operators, on one worker, fed directly (no files,
//! no parsing): what one epoch costs inside the graph.
//!
//! - `series_forecasts/epoch_of_200_samples/{ewma,auto}`: 100 devices report cpu and memory
//!   (200 samples) at a new event time; the forecasters, anomaly scorers and device contention
//!   update, on an otherwise empty map.
//! - `partition_map/one_cpu_sample`: the whole graph over 200 devices and 20,000 DAG tasks;
//!   one device's cpu moves (alternating between two values) per epoch.
//! - `finish_time_placer/one_contention_change`: the placer alone (no dataflow, no forecasts)
//!   at the same size, one device's contention changing per call.
//!
//! ```text
//! cargo bench --bench operators            # criterion's defaults
//! cargo bench --bench operators -- --quick # a short run
//! ```

use std::hint::black_box;

use augur_dataflows::contention_forecast::ForecastConfig;
use augur_dataflows::finish_time::FinishTimePlacer;
use augur_dataflows::models::{ModelConfig, ModelKind};
use augur_dataflows::placement::{EpochChanges, PlacementConfig};
use augur_dataflows::types::{
    DeviceSpec, Edge, Resource, Sample, TaskKey, TaskSpec, TaskState, Time,
};
use augur_dataflows::{augur, EngineConfig, EngineInputs};
use criterion::Criterion;
use differential_dataflow::input::{Input, InputSession};
use timely::dataflow::operators::Input as _;
use timely::dataflow::{InputHandleVec, ProbeHandle};
use timely::worker::Worker;

/// One epoch of event time.
const STEP_MS: Time = 10_000;

fn devices(count: usize) -> Vec<DeviceSpec> {
    (0..count)
        .map(|index| DeviceSpec {
            cores_milli: [8_000, 16_000, 32_000, 64_000][index % 4],
            memory_bytes: 64 << 30,
            speed: [0.8, 1.0, 1.5, 2.0][index % 4],
            network_bytes_per_s: 1.25e9,
            ..DeviceSpec::default()
        })
        .collect()
}

/// Tasks `0..count` in workflows of 1,000; every other task reads an earlier one's output.
fn dag(count: usize) -> (Vec<(TaskKey, TaskSpec)>, Vec<Edge>) {
    let mut tasks = Vec::with_capacity(count);
    let mut edges = Vec::new();
    for index in 0..count {
        let key = TaskKey {
            workflow: (index / 1_000) as u32,
            task: (index % 1_000) as u32,
        };
        let spec = TaskSpec {
            cores_milli: 500 + (index as u32 * 37) % 3_500,
            memory_bytes: ((index as u64 * 7) % 8) << 30,
            duration_ms: 1_000 * (1 + (index as u64 * 13) % 600),
            kind: (index % 20) as u32,
        };
        tasks.push((key, spec));
        if key.task > 0 && index % 2 == 0 {
            let parent = TaskKey {
                workflow: key.workflow,
                task: key.task / 2,
            };
            edges.push(((key, parent), (index as u64 * 7_919) % (1 << 30)));
        }
    }
    (tasks, edges)
}

/// The graph on one worker, with the inputs the benchmarks drive.
struct Graph {
    samples: InputHandleVec<Time, Sample>,
    tasks: InputSession<Time, (TaskKey, TaskSpec), isize>,
    edges: InputSession<Time, Edge, isize>,
    probe: ProbeHandle<Time>,
    time: Time,
}

impl Graph {
    fn new(worker: &mut Worker, config: EngineConfig) -> Graph {
        let mut samples = InputHandleVec::new();
        let mut completions = InputHandleVec::new();
        let mut checkpoint_requests = InputHandleVec::new();
        let mut restore = InputHandleVec::new();
        let probe = ProbeHandle::new();
        let (tasks, edges) = worker.dataflow::<Time, _, _>(|scope| {
            let (tasks_in, tasks) = scope.new_collection();
            let (started_in, started) = scope.new_collection();
            let (edges_in, edges) = scope.new_collection();
            let (alternatives_in, alternatives) = scope.new_collection();
            // Inputs that stay empty are closed here, so they never hold the frontier back.
            let started_in: InputSession<Time, (TaskKey, u32), isize> = started_in;
            let alternatives_in: InputSession<Time, (TaskKey, (u32, TaskSpec)), isize> =
                alternatives_in;
            started_in.close();
            alternatives_in.close();
            let outputs = augur(
                EngineInputs {
                    samples: scope.input_from(&mut samples),
                    completions: scope.input_from(&mut completions),
                    tasks,
                    started,
                    edges,
                    alternatives,
                    checkpoints: scope.input_from(&mut checkpoint_requests),
                    restore: scope.input_from(&mut restore),
                },
                &config,
            );
            outputs.partition.probe_with(&probe);
            outputs.forecasts.probe_with(&probe);
            (tasks_in, edges_in)
        });
        // Inputs the benchmarks never use are closed, so they never hold the frontier back.
        drop(completions);
        drop(checkpoint_requests);
        drop(restore);
        Graph {
            samples,
            tasks,
            edges,
            probe,
            time: 0,
        }
    }

    /// Feeds one epoch and steps the worker until it is complete.
    fn epoch(&mut self, worker: &mut Worker, samples: impl IntoIterator<Item = Sample>) {
        self.time += STEP_MS;
        let time = self.time;
        self.samples.advance_to(time);
        self.tasks.advance_to(time);
        self.edges.advance_to(time);
        for sample in samples {
            self.samples.send(sample);
        }
        let next = time + 1;
        self.samples.advance_to(next);
        self.tasks.advance_to(next);
        self.edges.advance_to(next);
        self.samples.flush();
        self.tasks.flush();
        self.edges.flush();
        while self.probe.less_than(&next) {
            worker.step();
        }
    }
}

fn config(devices: Vec<DeviceSpec>, model: ModelKind) -> EngineConfig {
    EngineConfig {
        devices,
        forecast: ForecastConfig {
            model: ModelConfig {
                kind: model,
                ..ModelConfig::default()
            },
            ..ForecastConfig::default()
        },
        ..EngineConfig::default()
    }
}

/// Criterion from the command line; each timely worker gets its own (the worker's closure must
/// own what it uses).
fn criterion() -> Criterion {
    Criterion::default().configure_from_args()
}

fn series_forecasts() {
    for (name, model) in [("ewma", ModelKind::Ewma), ("auto", ModelKind::Auto)] {
        timely::execute_directly({
            move |worker| {
                let mut criterion = criterion();
                let mut graph = Graph::new(worker, config(devices(100), model));
                let mut step = 0u64;
                let id = format!("series_forecasts/epoch_of_200_samples/{name}");
                criterion.bench_function(&id, |bench| {
                    bench.iter(|| {
                        step += 1;
                        let samples = (0..100u32).flat_map(|device| {
                            let wave = ((step + u64::from(device)) % 17) as f64 / 20.0;
                            [
                                Sample {
                                    device,
                                    resource: Resource::Cpu,
                                    value: 0.1 + wave,
                                },
                                Sample {
                                    device,
                                    resource: Resource::Memory,
                                    value: 0.3 + wave / 2.0,
                                },
                            ]
                        });
                        graph.epoch(worker, samples);
                    })
                });
            }
        });
    }
}

fn partition_map() {
    timely::execute_directly({
        move |worker| {
            let mut criterion = criterion();
            let mut graph = Graph::new(worker, config(devices(200), ModelKind::Ewma));
            let (tasks, edges) = dag(20_000);
            for task in tasks {
                graph.tasks.insert(task);
            }
            for edge in edges {
                graph.edges.insert(edge);
            }
            let initial: Vec<Sample> = (0..200u32)
                .map(|device| Sample {
                    device,
                    resource: Resource::Cpu,
                    value: 0.1 + (device % 9) as f64 / 10.0,
                })
                .collect();
            graph.epoch(worker, initial);
            let mut step = 0u32;
            criterion.bench_function("partition_map/one_cpu_sample", |bench| {
                bench.iter(|| {
                    step += 1;
                    let sample = Sample {
                        device: (step * 7) % 200,
                        resource: Resource::Cpu,
                        value: if step.is_multiple_of(2) { 0.05 } else { 0.85 },
                    };
                    graph.epoch(worker, [sample]);
                })
            });
        }
    });
}

fn finish_time_placer() {
    let mut criterion = criterion();
    let specs = devices(200);
    let mut placer = FinishTimePlacer::new(&specs, PlacementConfig::default(), true);
    let (tasks, edges) = dag(20_000);
    placer.apply(EpochChanges {
        time: STEP_MS,
        contention: (0..200).map(|device| (device, 100_000)).collect(),
        upserted: tasks
            .into_iter()
            .map(|(key, spec)| {
                let state = TaskState {
                    spec,
                    pinned: None,
                    ready: true,
                };
                (key, state)
            })
            .collect(),
        edges: edges.into_iter().map(|edge| (edge, 1)).collect(),
        ..EpochChanges::default()
    });
    let mut step = 1u32;
    criterion.bench_function("finish_time_placer/one_contention_change", |bench| {
        bench.iter(|| {
            step += 1;
            let device = (step * 7) % 200;
            let ppm = if step.is_multiple_of(2) {
                50_000
            } else {
                850_000
            };
            black_box(placer.apply(EpochChanges {
                time: Time::from(step) * STEP_MS,
                contention: vec![(device, ppm)],
                ..EpochChanges::default()
            }))
        })
    });
}

fn main() {
    series_forecasts();
    partition_map();
    finish_time_placer();
}
