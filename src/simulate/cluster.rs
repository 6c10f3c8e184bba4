//! The discrete-event cluster: tasks run on the device they were dispatched to, slowed by the
//! background load and by co-located tasks, and read their parents' outputs over the links.
//!
//! # The model
//! - A task needs `work` seconds on a device of speed 1, alone. On device `d` it progresses at
//!   `speed_d / slowdown`, with `slowdown = 1 + bg_d(t) + CO_LOCATION × (cores of the other
//!   tasks running on d) / cores_d`; `bg_d(t)` is the background utilisation (a fraction) and
//!   is piecewise constant, so progress is exact between events.
//! - A task is *ready* when its last parent completes. Its data is on `d` at the latest, over
//!   its parents, of the parent's end plus `bytes / bandwidth(parent's device, d)` (zero on the
//!   same device unless `--ccr` rescaled that link too, as SAGA does). No link contention.
//! - A device runs tasks while their cores fit in its cores; an exclusive device (SAGA's model)
//!   runs one at a time.
//! - Dispatch follows the dataflow's current partition map: a ready task whose data is on its
//!   mapped device starts there as soon as its cores fit, higher upward rank first. The `heft`
//!   policy instead follows the static plan ([`super::heft`]): each processor runs its tasks
//!   in planned order, each as soon as its data is there and the one before it finished.
//!
//! Events (the workflow's arrival, completions, data arrivals, background samples) are
//! processed in time order; starts happen at the time of the event that allowed them.

use augur_dataflows::types::{InputBatch, Resource, Sample, TaskKey};

use crate::catalog::Catalog;

use super::background::Background;
use super::dag::Dag;
use super::heft::Plan;
use super::platform::SimPlatform;

/// How much a co-located task slows the others, per share of the device's cores it takes.
pub const CO_LOCATION: f64 = 0.25;

/// Two times closer than this are one event (seconds).
const EPS: f64 = 1e-9;
/// The background is fed to the engine one sample a second at most per device: every sample
/// is an epoch, so a trace at 1-ms steps cost 3.6M epochs per device for the hour of warm-up
/// (a minute per policy) and told the forecasts nothing a second's sample does not. The
/// simulated contention still follows every sample of the trace.
pub const MIN_FEED_STEP_S: f64 = 1.0;

/// What happened to one task.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskRecord {
    /// When its last parent completed (its arrival, for an entry task).
    pub ready: f64,
    /// When it started.
    pub start: f64,
    /// When it completed.
    pub end: f64,
    /// Where it ran.
    pub device: usize,
    /// Cores it held.
    pub cores: f64,
    /// Its run time on that device alone, without background.
    pub uncontended: f64,
}

/// The state of the simulated cluster.
pub struct Cluster {
    /// The workflow.
    pub dag: Dag,
    /// The hardware.
    pub platform: SimPlatform,
    /// The background load.
    pub background: Background,
    /// When the workflow arrives (seconds from the start of the simulation).
    pub arrival: f64,
    /// The simulation clock.
    pub now: f64,
    /// The static plan, for the `heft` policy.
    plan: Option<Plan>,
    plan_next: Vec<usize>,
    processor_busy: Vec<Option<u32>>,
    rank: Vec<f64>,
    arrived: bool,
    parents_left: Vec<usize>,
    ready_at: Vec<Option<f64>>,
    start: Vec<Option<f64>>,
    /// Tasks ready and not started ([`Cluster::any_waiting`] asks at every batch of a run
    /// that feeds epochs in groups: a count, not a scan of the workflow).
    waiting_count: usize,
    end: Vec<Option<f64>>,
    device_of: Vec<Option<usize>>,
    cores_of: Vec<f64>,
    remaining: Vec<f64>,
    running: Vec<Vec<u32>>,
    used_cores: Vec<f64>,
    next_sample: Vec<Option<f64>>,
    done: usize,
    /// How many times each task was started (a correct run starts each exactly once).
    pub starts: Vec<u32>,
    /// The dataflow's partition map: the device of each task it places.
    pub map: Vec<Option<usize>>,
    /// Times a placed task's device changed in the map.
    pub map_moves: u64,
    /// Forecasts the dataflow published: `(time, device, predicted cpu utilisation)`.
    pub forecasts: Vec<(f64, usize, f64)>,
    /// Epochs since the last start or completion with nothing running or in flight.
    pub idle_epochs: u64,
}

impl Cluster {
    /// A cluster about to receive `dag` at `arrival`; `plan` makes dispatch follow it.
    pub fn new(
        dag: Dag,
        platform: SimPlatform,
        background: Background,
        arrival: f64,
        rank: Vec<f64>,
        plan: Option<Plan>,
    ) -> Cluster {
        let n = dag.len();
        let devices = platform.len();
        let processors = plan.as_ref().map_or(0, |p| p.processors.len());
        let next_sample = (0..devices)
            .map(|d| {
                if background.is_empty() {
                    None
                } else {
                    Some(0.0)
                }
                .filter(|_| background.trace_name(d).is_some())
            })
            .collect();
        Cluster {
            parents_left: dag.parents.iter().map(Vec::len).collect(),
            dag,
            platform,
            background,
            arrival,
            now: 0.0,
            plan,
            plan_next: vec![0; processors],
            processor_busy: vec![None; processors],
            rank,
            arrived: false,
            ready_at: vec![None; n],
            start: vec![None; n],
            waiting_count: 0,
            end: vec![None; n],
            device_of: vec![None; n],
            cores_of: vec![0.0; n],
            remaining: vec![0.0; n],
            running: vec![Vec::new(); devices],
            used_cores: vec![0.0; devices],
            next_sample,
            done: 0,
            starts: vec![0; n],
            map: vec![None; n],
            map_moves: 0,
            forecasts: Vec::new(),
            idle_epochs: 0,
        }
    }

    /// Whether every task has completed.
    pub fn finished(&self) -> bool {
        self.arrived && self.done == self.dag.len()
    }

    /// Whether the workflow has arrived.
    pub fn arrived(&self) -> bool {
        self.arrived
    }

    /// Whether anything is running.
    pub fn busy(&self) -> bool {
        self.running.iter().any(|r| !r.is_empty())
    }

    /// Tasks completed so far.
    pub fn done(&self) -> usize {
        self.done
    }

    fn device_cores(&self, device: usize) -> f64 {
        self.platform.platform.devices[device].cores
    }

    fn speed(&self, device: usize) -> f64 {
        self.platform.platform.devices[device].speed
    }

    /// The slowdown a task holding `cores` sees on `device` now.
    fn slowdown(&self, device: usize, cores: f64) -> f64 {
        let others = (self.used_cores[device] - cores).max(0.0);
        1.0 + self.background.value(device, self.now + 1e-6)
            + CO_LOCATION * others / self.device_cores(device).max(1e-9)
    }

    fn rate(&self, task: usize, device: usize) -> f64 {
        self.speed(device) / self.slowdown(device, self.cores_of[task])
    }

    /// When a ready task's inputs are all on `device`.
    fn data_ready(&self, task: usize, device: usize) -> f64 {
        let mut at = self.ready_at[task].unwrap_or(self.now);
        for &(parent, bytes) in &self.dag.parents[task] {
            let p = parent as usize;
            if let (Some(end), Some(from)) = (self.end[p], self.device_of[p]) {
                at = at.max(end + self.platform.transfer_s(bytes, from, device));
            }
        }
        at
    }

    /// Where a ready, unstarted task would run: its planned device, or its mapped one.
    fn target(&self, task: usize) -> Option<usize> {
        match &self.plan {
            Some(plan) => plan.processors.get(plan.processor[task]).copied(),
            None => self.map[task],
        }
    }

    fn waiting(&self, task: usize) -> bool {
        self.ready_at[task].is_some() && self.start[task].is_none()
    }

    /// Whether any task is ready and not started: the only tasks the map is read for.
    pub fn any_waiting(&self) -> bool {
        debug_assert_eq!(
            self.waiting_count,
            (0..self.dag.len()).filter(|&t| self.waiting(t)).count()
        );
        self.waiting_count > 0
    }

    /// The task's parents are done (or it has none) as of now.
    fn mark_ready(&mut self, task: usize) {
        if self.ready_at[task].is_none() && self.start[task].is_none() {
            self.waiting_count += 1;
        }
        self.ready_at[task] = Some(self.now);
    }

    /// Cores a task takes on a device: all of an exclusive device, else its own (at most the
    /// device's).
    fn cores_needed(&self, task: usize, device: usize) -> f64 {
        let cores = self.device_cores(device);
        if self.platform.exclusive {
            cores
        } else {
            self.dag.cores[task].min(cores)
        }
    }

    /// Starts every task that can start now; returns `(task, device)` for each.
    pub fn dispatch(&mut self) -> Vec<(u32, usize)> {
        let mut started = Vec::new();
        if !self.arrived {
            return started;
        }
        if self.plan.is_some() {
            self.dispatch_plan(&mut started, false);
            // A plan whose per-processor orders wait on each other (SAGA's insertion can
            // overlap a task with the next one, as it does on chipseq) would stall forever:
            // with nothing running and no data in flight, a processor may run the first of its
            // later tasks that can start.
            if started.is_empty() && !self.busy() && !self.data_in_flight() {
                self.dispatch_plan(&mut started, true);
            }
        } else {
            self.dispatch_map(&mut started);
        }
        if !started.is_empty() {
            self.idle_epochs = 0;
        }
        started
    }

    fn dispatch_map(&mut self, started: &mut Vec<(u32, usize)>) {
        let mut candidates: Vec<(u32, usize)> = (0..self.dag.len())
            .filter(|&t| self.waiting(t))
            .filter_map(|t| {
                let device = self.map[t]?;
                (device < self.platform.len() && self.data_ready(t, device) <= self.now + EPS)
                    .then_some((t as u32, device))
            })
            .collect();
        candidates.sort_by(|a, b| {
            self.rank[b.0 as usize]
                .total_cmp(&self.rank[a.0 as usize])
                .then(a.0.cmp(&b.0))
        });
        for (task, device) in candidates {
            let need = self.cores_needed(task as usize, device);
            if self.used_cores[device] + need <= self.device_cores(device) + EPS {
                self.begin(task as usize, device, need);
                started.push((task, device));
            }
        }
    }

    fn data_in_flight(&self) -> bool {
        (0..self.dag.len()).any(|t| {
            self.waiting(t)
                && self
                    .target(t)
                    .is_some_and(|d| self.data_ready(t, d) > self.now + EPS)
        })
    }

    fn dispatch_plan(&mut self, started: &mut Vec<(u32, usize)>, relaxed: bool) {
        let Some(mut plan) = self.plan.take() else {
            return;
        };
        for p in 0..plan.processors.len() {
            if self.processor_busy[p].is_some() {
                continue;
            }
            let device = plan.processors[p];
            let from = self.plan_next[p];
            let last = if relaxed {
                plan.order[p].len()
            } else {
                from + 1
            };
            let pick = (from..last.min(plan.order[p].len())).find(|&i| {
                let t = plan.order[p][i] as usize;
                self.waiting(t) && self.data_ready(t, device) <= self.now + EPS
            });
            let Some(index) = pick else { continue };
            let task = plan.order[p][index];
            let t = task as usize;
            let need = self.cores_needed(t, device);
            if self.used_cores[device] + need > self.device_cores(device) + EPS {
                continue;
            }
            // The task runs next: it moves to the head of what is left of the order.
            plan.order[p][from..=index].rotate_right(1);
            self.begin(t, device, need);
            self.processor_busy[p] = Some(task);
            self.plan_next[p] += 1;
            started.push((task, device));
        }
        self.plan = Some(plan);
    }

    fn begin(&mut self, task: usize, device: usize, cores: f64) {
        if self.waiting(task) {
            self.waiting_count -= 1;
        }
        self.start[task] = Some(self.now);
        self.device_of[task] = Some(device);
        self.cores_of[task] = cores;
        self.remaining[task] = self.dag.work_s[task];
        self.running[device].push(task as u32);
        self.used_cores[device] += cores;
        self.starts[task] += 1;
    }

    /// The time of the next event, if anything can still happen.
    pub fn next_event(&self) -> Option<f64> {
        if !self.arrived {
            // The warm-up: each background sample at its own time, then the arrival (jumping
            // to the arrival fed the whole warm-up history in the epochs after it, so the
            // workflow was placed on the traces' first samples, an hour stale).
            let sample = self
                .next_sample
                .iter()
                .flatten()
                .fold(f64::INFINITY, |a, &b| a.min(b));
            return Some(self.arrival.min(sample).max(self.now));
        }
        let mut next = f64::INFINITY;
        for (device, tasks) in self.running.iter().enumerate() {
            for &task in tasks {
                let t = task as usize;
                next = next.min(self.now + self.remaining[t] / self.rate(t, device));
            }
        }
        for t in 0..self.dag.len() {
            if self.waiting(t) {
                if let Some(device) = self.target(t) {
                    let at = self.data_ready(t, device);
                    if at > self.now + EPS {
                        next = next.min(at);
                    }
                }
            }
        }
        for at in self.next_sample.iter().flatten() {
            next = next.min(*at);
        }
        next.is_finite().then_some(next.max(self.now))
    }

    /// Advances the clock to `to`, applying every event up to it, and records what the dataflow
    /// must learn in `batch`.
    pub fn advance(&mut self, to: f64, catalog: &Catalog, batch: &mut InputBatch) {
        let to = to.max(self.now);
        // Progress at the rates in force since the last event; those due by `to` complete.
        let mut completed = Vec::new();
        for device in 0..self.running.len() {
            for &task in &self.running[device] {
                let t = task as usize;
                let rate = self.rate(t, device);
                let finish = self.now + self.remaining[t] / rate;
                if finish <= to + EPS {
                    completed.push((t, device));
                } else {
                    self.remaining[t] = (self.remaining[t] - rate * (to - self.now)).max(0.0);
                }
            }
        }
        self.now = to;
        if !self.arrived && to + EPS >= self.arrival {
            self.arrive(catalog, batch);
        }
        completed.sort_unstable();
        for (task, device) in completed {
            self.complete(task, device, catalog, batch);
        }
        for device in 0..self.next_sample.len() {
            let Some(at) = self.next_sample[device] else {
                continue;
            };
            if at <= to + EPS {
                // The change that ends the segment a step on (less the 1e-6 that keeps a
                // trace stepping a second or more exactly as before).
                let next = self
                    .background
                    .next_change(device, at + MIN_FEED_STEP_S - 1e-6);
                let segment_end = self.background.next_change(device, at + 1e-6);
                // A sample standing for several of a finer trace's steps is their mean, as a
                // collector's average over its interval is: one step of them in every second
                // would alias a fast cycle into a wrong level.
                let value = match (segment_end, next) {
                    (Some(end), Some(next)) if next > end + EPS => {
                        self.background.mean(device, at, next)
                    }
                    _ => self.background.value(device, at + 1e-6),
                };
                batch.samples.push(Sample {
                    device: device as u32,
                    resource: Resource::Cpu,
                    value,
                });
                self.next_sample[device] = next;
            }
        }
        // Warm-up epochs carry only samples: they are not a stall.
        if self.arrived && batch.completions.is_empty() && batch.tasks.is_empty() && !self.busy() {
            self.idle_epochs += 1;
        } else {
            self.idle_epochs = 0;
        }
    }

    fn key(task: usize) -> TaskKey {
        TaskKey {
            workflow: 0,
            task: task as u32,
        }
    }

    fn arrive(&mut self, catalog: &Catalog, batch: &mut InputBatch) {
        self.arrived = true;
        for task in 0..self.dag.len() {
            let key = Cluster::key(task);
            if let Some(spec) = catalog.spec(key) {
                batch.tasks.push(((key, spec), 1));
            }
            for (parent, bytes) in catalog.parents(key) {
                batch.edges.push((((key, parent), bytes), 1));
            }
            if self.parents_left[task] == 0 {
                self.mark_ready(task);
            }
        }
    }

    fn complete(&mut self, task: usize, device: usize, catalog: &Catalog, batch: &mut InputBatch) {
        self.remaining[task] = 0.0;
        self.end[task] = Some(self.now);
        self.running[device].retain(|&t| t as usize != task);
        self.used_cores[device] = (self.used_cores[device] - self.cores_of[task]).max(0.0);
        if let Some(slot) = self
            .processor_busy
            .iter_mut()
            .find(|slot| **slot == Some(task as u32))
        {
            *slot = None;
        }
        self.done += 1;
        let key = Cluster::key(task);
        batch.started.push(((key, device as u32), -1));
        let seconds = self.now - self.start[task].unwrap_or(self.now);
        batch
            .completions
            .extend(catalog.completion(key, device as u32, seconds));
        if let Some(spec) = catalog.spec(key) {
            batch.tasks.push(((key, spec), -1));
        }
        for (parent, bytes) in catalog.parents(key) {
            batch.edges.push((((key, parent), bytes), -1));
        }
        for i in 0..self.dag.children[task].len() {
            let child = self.dag.children[task][i].0 as usize;
            self.parents_left[child] = self.parents_left[child].saturating_sub(1);
            if self.parents_left[child] == 0 {
                self.mark_ready(child);
            }
        }
    }

    /// What happened to every task (complete after a finished run).
    pub fn records(&self) -> Vec<Option<TaskRecord>> {
        (0..self.dag.len())
            .map(|t| {
                let (ready, start, end, device) = (
                    self.ready_at[t]?,
                    self.start[t]?,
                    self.end[t]?,
                    self.device_of[t]?,
                );
                Some(TaskRecord {
                    ready,
                    start,
                    end,
                    device,
                    cores: self.cores_of[t],
                    uncontended: self.dag.work_s[t] / self.speed(device),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::background::Trace;
    use crate::simulate::platform::parse_network;

    /// The values fed to the engine during the warm-up until `arrival`, over a background
    /// of ten seconds at `step_s` cycling through 0.0, 0.1, ..., 0.9 (wrapping).
    fn warm_up_feed(step_s: f64, arrival: f64) -> Vec<f64> {
        let platform =
            parse_network(r#"{"nodes": [{"name": "n0", "speed": 1.0}]}"#).expect("valid");
        let points: Vec<(f64, f64)> = (0..(10.0 / step_s) as usize)
            .map(|i| (i as f64 * step_s, (i % 10) as f64 / 10.0))
            .collect();
        let trace = Trace::new("fine".into(), &points).expect("valid");
        let background = Background::from_traces(vec![trace], 1, 0);
        let dag = Dag {
            work_s: vec![1.0],
            cores: vec![1.0],
            parents: vec![Vec::new()],
            children: vec![Vec::new()],
            topo: vec![0],
        };
        let catalog = Catalog::new(platform.platform.clone());
        let mut cluster = Cluster::new(dag, platform, background, arrival, vec![0.0], None);
        let mut values = Vec::new();
        while !cluster.arrived() {
            let next = cluster.next_event().expect("an event");
            let mut batch = InputBatch::default();
            cluster.advance(next, &catalog, &mut batch);
            values.extend(batch.samples.iter().map(|s| s.value));
        }
        values
    }

    #[test]
    fn a_fine_cycle_is_fed_as_its_mean_not_aliased() {
        // Every 10 ms: a second's sample is the cycle's mean, 0.45, where one step a second
        // would read 0.0 every time.
        let values = warm_up_feed(0.01, 30.0);
        assert!(values.len() > 20);
        // Each stands for a second: the cycle's mean, except where the window holds the
        // trace's wrap (its last value is held a whole second there, as the load is).
        assert!(values.iter().all(|v| (0.44..0.7).contains(v)), "{values:?}");
        let at_mean = values.iter().filter(|v| (*v - 0.45).abs() < 1e-6).count();
        assert!(at_mean * 10 >= values.len() * 8, "{values:?}");
    }

    #[test]
    fn a_fine_background_is_fed_a_sample_a_second_at_most() {
        // 60 s of warm-up: about a sample a second, not 6,000 at the trace's own steps.
        let fine = warm_up_feed(0.01, 60.0).len();
        assert!((55..=61).contains(&fine), "{fine}");
        // A trace stepping every 2 s is fed every step, as before.
        let coarse = warm_up_feed(2.0, 60.0).len();
        assert!((29..=31).contains(&coarse), "{coarse}");
    }
}
