//! A plain sequential implementation of everything the dataflow computes, for tests.
//!
//! It keeps whole collections in ordered maps and recomputes task states, device contention and
//! the placement rule with linear scans, epoch by epoch. It shares only the pure arithmetic
//! ([`crate::placement::cost`], [`crate::contention_forecast::SeriesState`] and
//! [`crate::contention_forecast::contention_of`])
//! with the incremental code, so a disagreement points at the incremental bookkeeping.

mod finish_time;

use std::collections::{BTreeMap, BTreeSet};

use self::finish_time::FinishTimeOracle;

use crate::contention_forecast::{contention_of, ForecastConfig, SeriesForecast, SeriesState};
use crate::duration::DurationConfig;
use crate::placement::{cost, same_capability, state_is_sane, PlacementConfig, Policy, Score};
use crate::task_durations::DurationLearner;
use crate::types::{
    fraction_from_ppm, DeviceId, DeviceSpec, Edge, InputBatch, Ppm, Resource, TaskKey, TaskSpec,
    TaskState,
};

#[derive(Clone, Copy, Debug)]
struct OraclePlaced {
    state: TaskState,
    device: DeviceId,
    seq: u64,
}

/// The sequential reference for the whole augur dataflow.
#[derive(Debug)]
pub struct Oracle {
    devices: Vec<DeviceSpec>,
    forecast: ForecastConfig,
    placement: PlacementConfig,
    tasks: BTreeMap<(TaskKey, TaskSpec), isize>,
    started: BTreeMap<(TaskKey, DeviceId), isize>,
    edges: BTreeMap<Edge, isize>,
    series: BTreeMap<(DeviceId, Resource), SeriesState>,
    contention: Vec<Ppm>,
    states: BTreeMap<TaskKey, TaskState>,
    map: BTreeMap<TaskKey, OraclePlaced>,
    next_seq: u64,
    durations: DurationLearner,
    /// The finish-time rule's own state (`predictive`, `heft`).
    finish_time: Option<FinishTimeOracle>,
    /// The next device in turn (`static`).
    turn: usize,
}

impl Oracle {
    /// An oracle over these devices, with the same configuration the dataflow gets.
    pub fn new(
        devices: &[DeviceSpec],
        forecast: ForecastConfig,
        placement: PlacementConfig,
        durations: DurationConfig,
    ) -> Oracle {
        Oracle {
            devices: devices.to_vec(),
            forecast,
            placement,
            tasks: BTreeMap::new(),
            started: BTreeMap::new(),
            edges: BTreeMap::new(),
            series: BTreeMap::new(),
            contention: vec![0; devices.len()],
            states: BTreeMap::new(),
            map: BTreeMap::new(),
            next_seq: 0,
            durations: DurationLearner::new(durations),
            finish_time: match placement.policy {
                Policy::Predictive => Some(FinishTimeOracle::new(devices, placement, true)),
                Policy::Heft => Some(FinishTimeOracle::new(devices, placement, false)),
                _ => None,
            },
            turn: 0,
        }
    }

    /// The current map, task to device.
    pub fn map(&self) -> BTreeMap<TaskKey, DeviceId> {
        match &self.finish_time {
            Some(oracle) => oracle.map(),
            None => self.map.iter().map(|(k, p)| (*k, p.device)).collect(),
        }
    }

    /// Tasks the map runs as one of their alternatives, with the variant.
    pub fn variants(&self) -> BTreeMap<TaskKey, u32> {
        self.finish_time
            .as_ref()
            .map_or_else(BTreeMap::new, |oracle| oracle.variants())
    }

    /// Tasks the map runs ahead of their placement order: `(device, the task ahead of which)`.
    pub fn reorders(&self) -> BTreeMap<TaskKey, (DeviceId, TaskKey)> {
        self.finish_time
            .as_ref()
            .map_or_else(BTreeMap::new, |oracle| oracle.reorders())
    }

    /// The current warm-up advice, `(class, devices to add)`.
    pub fn prewarm(&self) -> Vec<(u32, u32)> {
        self.finish_time
            .as_ref()
            .map_or_else(Vec::new, |oracle| oracle.prewarm())
    }

    /// The current forecast of every series seen.
    pub fn forecasts(&self) -> BTreeMap<(DeviceId, Resource), SeriesForecast> {
        self.series
            .iter()
            .map(|(k, series)| (*k, series.forecast(&self.forecast)))
            .collect()
    }

    /// The duration estimates published so far, `(kind, class)` to milliseconds.
    pub fn durations(&self) -> BTreeMap<(u32, u32), u64> {
        self.durations.published().clone()
    }

    /// Applies one epoch at `time`.
    pub fn step(&mut self, time: crate::types::Time, epoch: InputBatch) {
        let published = self.durations.published().clone();
        self.durations.learn(epoch.completions.clone());
        let mut duration_changes: Vec<((u32, u32), Option<u64>)> = Vec::new();
        for (key, value) in self.durations.published() {
            if published.get(key) != Some(value) {
                duration_changes.push((*key, Some(*value)));
            }
        }
        for key in published.keys() {
            if !self.durations.published().contains_key(key) {
                duration_changes.push((*key, None));
            }
        }
        duration_changes.sort_unstable();
        let edge_changes = epoch.edges.clone();
        let alternative_changes = epoch.alternatives.clone();
        accumulate(&mut self.tasks, epoch.tasks);
        accumulate(&mut self.started, epoch.started);
        accumulate(&mut self.edges, epoch.edges);

        let mut samples = epoch.samples;
        samples.sort_by(|a, b| {
            (a.device, a.resource)
                .cmp(&(b.device, b.resource))
                .then(a.value.total_cmp(&b.value))
        });
        for sample in samples {
            self.series
                .entry((sample.device, sample.resource))
                .or_insert_with(|| SeriesState::new(&self.forecast))
                .update(time, sample.value);
        }

        let mut contention_changes = Vec::new();
        for device in 0..self.devices.len() {
            let forecasts: Vec<SeriesForecast> = Resource::ALL
                .iter()
                .filter_map(|r| self.series.get(&(device as DeviceId, *r)))
                .map(|series| series.forecast(&self.forecast))
                .collect();
            let value = match self.placement.policy {
                Policy::Predictive | Policy::Seed => {
                    contention_of(&forecasts, self.forecast.risk, self.forecast.anomaly)
                }
                // Observed: the busiest resource's latest sample.
                Policy::Reactive => forecasts.iter().map(|f| f.latest).max().unwrap_or(0),
                Policy::Heft | Policy::Static => 0,
            };
            if value != self.contention[device] {
                self.contention[device] = value;
                contention_changes.push((device as DeviceId, value));
            }
        }

        let states = self.task_states();
        let mut removed = Vec::new();
        let mut upserted = Vec::new();
        for (task, state) in &states {
            if self.states.get(task) != Some(state) {
                upserted.push((*task, *state));
            }
        }
        for task in self.states.keys() {
            if !states.contains_key(task) {
                removed.push(*task);
            }
        }
        self.states = states;

        let nothing = contention_changes.is_empty() && removed.is_empty() && upserted.is_empty();
        match (&mut self.finish_time, self.placement.policy) {
            (Some(oracle), _) => {
                let mut edges = edge_changes;
                accumulate_in_place(&mut edges);
                let mut alternatives = alternative_changes;
                accumulate_in_place(&mut alternatives);
                if nothing
                    && edges.is_empty()
                    && duration_changes.is_empty()
                    && alternatives.is_empty()
                {
                    return;
                }
                oracle.apply(
                    time,
                    &contention_changes,
                    &duration_changes,
                    &edges,
                    &alternatives,
                    &removed,
                    &upserted,
                );
            }
            (None, Policy::Static) => self.round_robin(removed, upserted),
            (None, _) if !nothing => self.place(contention_changes, removed, upserted),
            (None, _) => {}
        }
    }

    /// The `static` policy: the next device in turn that can host the task.
    fn round_robin(&mut self, removed: Vec<TaskKey>, upserted: Vec<(TaskKey, TaskState)>) {
        for task in removed {
            self.map.remove(&task);
        }
        let mut upserted = upserted;
        upserted.sort_unstable();
        for (task, state) in upserted {
            if !state_is_sane(&state, self.devices.len()) {
                continue;
            }
            let device = match (state.pinned, self.map.get(&task)) {
                (Some(device), _) => Some(device),
                (None, Some(placed)) => Some(placed.device),
                (None, None) => {
                    let count = self.devices.len();
                    let found = (0..count)
                        .map(|step| (self.turn + step) % count)
                        .find(|d| self.devices[*d].can_host(&state.spec));
                    if let Some(d) = found {
                        self.turn = (d + 1) % count;
                    }
                    found.map(|d| d as DeviceId)
                }
            };
            if let Some(device) = device {
                self.map.insert(
                    task,
                    OraclePlaced {
                        state,
                        device,
                        seq: 0,
                    },
                );
            }
        }
    }

    fn task_states(&self) -> BTreeMap<TaskKey, TaskState> {
        let live: BTreeSet<TaskKey> = self.tasks.keys().map(|(k, _)| *k).collect();
        let mut states = BTreeMap::new();
        for (task, spec) in self.tasks.keys() {
            let pinned = self
                .started
                .keys()
                .find(|(k, _)| k == task)
                .map(|(_, device)| *device);
            let blocked = self
                .edges
                .keys()
                .any(|((child, parent), _)| child == task && live.contains(parent));
            states.insert(
                *task,
                TaskState {
                    spec: *spec,
                    pinned,
                    ready: !blocked,
                },
            );
        }
        states
    }

    fn place(
        &mut self,
        contention_changes: Vec<(DeviceId, Ppm)>,
        mut removed: Vec<TaskKey>,
        mut upserted: Vec<(TaskKey, TaskState)>,
    ) {
        removed.sort_unstable();
        for task in removed {
            self.map.remove(&task);
        }
        upserted.sort_unstable();
        let mut to_place = Vec::new();
        for (task, state) in upserted {
            if !state_is_sane(&state, self.devices.len()) {
                continue;
            }
            match self.map.get(&task).copied() {
                Some(placed) => {
                    let device = state.pinned.unwrap_or(placed.device);
                    self.map.insert(
                        task,
                        OraclePlaced {
                            state,
                            device,
                            seq: placed.seq,
                        },
                    );
                }
                None => match state.pinned {
                    Some(device) => {
                        let seq = self.take_seq();
                        self.map.insert(task, OraclePlaced { state, device, seq });
                    }
                    None => to_place.push((task, state)),
                },
            }
        }
        let _ = contention_changes; // already folded into self.contention
        to_place.sort_unstable_by_key(|(task, state)| (!state.ready, *task));
        for (task, state) in to_place {
            if let Some(device) = self.best_candidate(&state.spec, None) {
                let seq = self.take_seq();
                self.map.insert(task, OraclePlaced { state, device, seq });
            }
        }
        self.rebalance();
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn load(&self, device: DeviceId) -> cost::Load {
        self.map
            .values()
            .filter(|p| p.device == device)
            .fold(cost::Load::default(), |load, p| {
                load.plus(cost::Load::of(&p.state.spec))
            })
    }

    fn key(&self, device: DeviceId) -> f64 {
        let spec = &self.devices[device as usize];
        cost::key(
            spec,
            fraction_from_ppm(self.contention[device as usize]),
            self.load(device),
        )
    }

    fn best_candidate(&self, spec: &TaskSpec, except: Option<DeviceId>) -> Option<DeviceId> {
        let mut best: Option<(Score, DeviceId)> = None;
        for (device, device_spec) in self.devices.iter().enumerate() {
            let device = device as DeviceId;
            if Some(device) == except || !device_spec.can_host(spec) {
                continue;
            }
            // Only the least-key device of each capability class is a candidate.
            let class_best = (0..self.devices.len() as DeviceId)
                .filter(|d| Some(*d) != except)
                .filter(|d| same_capability(&self.devices[*d as usize], device_spec))
                .min_by_key(|d| (Score(self.key(*d)), *d));
            if class_best != Some(device) {
                continue;
            }
            let add = cost::add(
                device_spec,
                fraction_from_ppm(self.contention[device as usize]),
                self.load(device),
                spec,
            );
            let candidate = (Score(add), device);
            if best.is_none_or(|current| candidate < current) {
                best = Some(candidate);
            }
        }
        best.map(|(_, device)| device)
    }

    fn rebalance(&mut self) {
        let movable = self
            .map
            .values()
            .filter(|p| p.state.pinned.is_none())
            .count();
        let budget = 4 * movable + 16;
        for _ in 0..budget {
            let worst = self
                .map
                .values()
                .filter(|p| p.state.pinned.is_none())
                .map(|p| p.device)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .max_by_key(|d| (Score(self.key(*d)), *d));
            let Some(worst) = worst else { return };
            let Some((task, placed)) = self
                .map
                .iter()
                .filter(|(_, p)| p.device == worst && p.state.pinned.is_none())
                .max_by_key(|(_, p)| p.seq)
                .map(|(k, p)| (*k, *p))
            else {
                return;
            };
            let stay = self.key(worst);
            let Some(target) = self.best_candidate(&placed.state.spec, Some(worst)) else {
                return;
            };
            let elsewhere = cost::add(
                &self.devices[target as usize],
                fraction_from_ppm(self.contention[target as usize]),
                self.load(target),
                &placed.state.spec,
            );
            if !cost::worth_moving(stay, elsewhere, self.placement.hysteresis) {
                return;
            }
            let seq = self.take_seq();
            self.map.insert(
                task,
                OraclePlaced {
                    state: placed.state,
                    device: target,
                    seq,
                },
            );
        }
    }
}

/// Sums the diffs of equal records and drops those that cancel, in record order.
fn accumulate_in_place<K: Ord + Copy>(updates: &mut Vec<(K, isize)>) {
    let mut sums: BTreeMap<K, isize> = BTreeMap::new();
    accumulate(&mut sums, std::mem::take(updates));
    updates.extend(sums);
}

fn accumulate<K: Ord>(collection: &mut BTreeMap<K, isize>, updates: Vec<(K, isize)>) {
    for (record, diff) in updates {
        let count = collection.entry(record).or_insert(0);
        *count += diff;
    }
    collection.retain(|_, count| *count != 0);
}
