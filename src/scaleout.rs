//! Scale-out advice for serverless pools: per device pool (a capability class, the same groups
//! the warm-up advice uses), how many instances to run over the next forecast horizon.
//!
//! The rule, per pool of `current` identical devices of `c` cores each:
//!
//! - each device's predicted demand, in cores, is what the finish-time placer counts for its
//!   warm-up advice, `(contention + max(mapped cores / c, mapped memory / memory)) × c`, where
//!   `contention` is the device's riskiest series' mean forecast over the horizon and the mapped
//!   tasks are those the partition map puts there now, each weighted by the share of the horizon
//!   its declared run time fills (`min(1, run time / horizon)`: a one-second task does not hold
//!   its cores for a ten-minute horizon);
//! - `needed = ceil(pool demand / (capacity target × c))`: enough devices for the demand to sit
//!   at the capacity target;
//! - `instances = max(busy, needed, current + prewarm)`, the last term only while `prewarm > 0`
//!   (without it a pool could never scale in): never below the devices with mapped
//!   work (`busy`: scaling those in would evict tasks), and never below what the placer's own
//!   warm-up advice asks for (`prewarm`, which also counts anomaly penalties and risk).
//!
//! So a pool scales out when predicted demand exceeds the target, in when it falls below it,
//! and to zero when it has neither demand nor mapped work. This module is pure: callers feed it
//! the engine's changes and write or serve what it says.

use std::collections::BTreeMap;

use augur_dataflows::contention_forecast::SeriesForecast;
use augur_dataflows::finish_time::cost;
use augur_dataflows::types::{
    fraction_from_ppm, DeviceId, DeviceSpec, Resource, TaskKey, TaskSpec,
};
use serde::{Deserialize, Serialize};

use crate::engine::{apply_changes, ForecastUpdate, MapUpdate, PrewarmUpdate};

/// The tasks the map puts on one device, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceLoad {
    /// Tasks mapped there.
    pub tasks: u64,
    /// Their cores, thousandths.
    pub cores_milli: u64,
    /// Their memory, bytes.
    pub memory_bytes: u64,
    /// Cores (thousandths) weighted by the share of the horizon each task runs.
    pub horizon_cores_milli: f64,
    /// Memory weighted likewise.
    pub horizon_memory_bytes: f64,
}

/// What the rule says of one pool.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoolAdvice {
    /// The pool's id (its capability class).
    #[serde(skip)]
    pub class: u32,
    /// Its devices, by id.
    #[serde(skip)]
    pub devices: Vec<DeviceId>,
    /// Devices in the pool now.
    pub current: u32,
    /// Devices with mapped work.
    pub busy: u32,
    /// Predicted demand over the horizon, cores.
    pub demand_cores: f64,
    /// Devices the demand needs at the capacity target.
    pub needed: u32,
    /// Devices the placer's warm-up advice adds.
    pub prewarm: u32,
    /// The recommended instance count.
    pub instances: u32,
}

impl PoolAdvice {
    /// Why the advice is what it is, for a person.
    pub fn reason(&self, horizon_s: f64, target: f64) -> String {
        let direction = match self.instances.cmp(&self.current) {
            std::cmp::Ordering::Greater => "scale out",
            std::cmp::Ordering::Less => "scale in",
            std::cmp::Ordering::Equal => "hold",
        };
        format!(
            "{direction}: predicted demand over the next {horizon_s} s is {:.2} cores, which needs \
             {} device(s) at {:.0}% of capacity; {} busy, warm-up advice +{}",
            self.demand_cores,
            self.needed,
            target * 100.0,
            self.busy,
            self.prewarm
        )
    }
}

/// The state the rule needs, kept current from the engine's changes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scaleout {
    devices: Vec<DeviceSpec>,
    classes: Vec<u32>,
    target: f64,
    horizon_ms: i64,
    loads: Vec<DeviceLoad>,
    placed: BTreeMap<TaskKey, (DeviceId, TaskSpec)>,
    forecasts: SeriesTable,
    prewarm: BTreeMap<u32, u32>,
    last: BTreeMap<u32, u32>,
    /// Whether `last` is the advice of the state as it is (the advice depends on nothing
    /// else): then `changes` has nothing to find. Not kept in checkpoints: a restored tracker
    /// looks once.
    #[serde(skip)]
    settled: bool,
    /// The devices of each pool, by class (from `classes`, which never changes): worked out
    /// once, not at every epoch's advice.
    #[serde(skip)]
    pools: std::sync::OnceLock<Vec<(u32, Vec<DeviceId>)>>,
}

impl Scaleout {
    /// A tracker over the platform's devices and their capability classes; `target` is the
    /// placement's capacity target and `horizon_ms` the forecast horizon.
    pub fn new(
        devices: Vec<DeviceSpec>,
        classes: Vec<u32>,
        target: f64,
        horizon_ms: i64,
    ) -> Scaleout {
        let loads = vec![DeviceLoad::default(); devices.len()];
        let mut pools: BTreeMap<u32, u32> = BTreeMap::new();
        for class in &classes {
            *pools.entry(*class).or_default() += 1;
        }
        Scaleout {
            devices,
            classes,
            target,
            horizon_ms,
            loads,
            placed: BTreeMap::new(),
            forecasts: SeriesTable::default(),
            prewarm: BTreeMap::new(),
            // The pools as they are: the first advice that differs from the platform is a change.
            last: pools,
            settled: false,
            pools: std::sync::OnceLock::new(),
        }
    }

    /// Applies the forecasts' changes.
    pub fn on_forecasts(&mut self, changes: &[ForecastUpdate]) {
        self.settled &= changes.is_empty();
        self.forecasts.apply(changes);
    }

    /// Applies the warm-up advice's changes.
    pub fn on_prewarm(&mut self, changes: &[PrewarmUpdate]) {
        self.settled &= changes.is_empty();
        apply_changes(&mut self.prewarm, changes);
    }

    /// Applies the map's changes; `spec` gives a task's requirements.
    pub fn on_map(&mut self, changes: &[MapUpdate], spec: impl Fn(TaskKey) -> Option<TaskSpec>) {
        self.settled &= changes.is_empty();
        for &((task, _device), diff) in changes {
            if diff < 0 {
                if let Some((device, spec)) = self.placed.remove(&task) {
                    if let Some(load) = self.loads.get_mut(device as usize) {
                        load.tasks = load.tasks.saturating_sub(1);
                        load.cores_milli = load.cores_milli.saturating_sub(spec.cores_milli.into());
                        load.memory_bytes = load.memory_bytes.saturating_sub(spec.memory_bytes);
                        let share = share_of(self.horizon_ms, spec);
                        load.horizon_cores_milli = (load.horizon_cores_milli
                            - share * f64::from(spec.cores_milli))
                        .max(0.0);
                        load.horizon_memory_bytes =
                            (load.horizon_memory_bytes - share * spec.memory_bytes as f64).max(0.0);
                    }
                }
            }
        }
        for &((task, device), diff) in changes {
            if diff > 0 {
                let Some(spec) = spec(task) else { continue };
                let share = share_of(self.horizon_ms, spec);
                if let Some(load) = self.loads.get_mut(device as usize) {
                    load.horizon_cores_milli += share * f64::from(spec.cores_milli);
                    load.horizon_memory_bytes += share * spec.memory_bytes as f64;
                    load.tasks += 1;
                    load.cores_milli += u64::from(spec.cores_milli);
                    load.memory_bytes = load.memory_bytes.saturating_add(spec.memory_bytes);
                    self.placed.insert(task, (device, spec));
                }
            }
        }
    }

    /// The tasks mapped to a device.
    pub fn load(&self, device: DeviceId) -> DeviceLoad {
        self.loads.get(device as usize).copied().unwrap_or_default()
    }

    /// A device's predicted contention: its riskiest series' mean forecast plus `risk` sigmas,
    /// as a fraction of capacity (0 when no series has reported).
    pub fn contention(&self, device: DeviceId, risk: f64) -> f64 {
        self.forecasts
            .of(device)
            .map(|forecast| fraction_from_ppm(forecast.at_risk(risk)))
            .fold(0.0, f64::max)
    }

    /// A device's highest anomaly score, 0 to 1.
    pub fn anomaly(&self, device: DeviceId) -> f64 {
        self.forecasts
            .of(device)
            .map(|forecast| fraction_from_ppm(forecast.anomaly))
            .fold(0.0, f64::max)
    }

    /// The advice for every pool, by class.
    pub fn advice(&self) -> Vec<PoolAdvice> {
        let pools = self.pools.get_or_init(|| {
            let mut pools: BTreeMap<u32, Vec<DeviceId>> = BTreeMap::new();
            for (device, class) in self.classes.iter().enumerate() {
                pools.entry(*class).or_default().push(device as DeviceId);
            }
            pools.into_iter().collect()
        });
        pools
            .iter()
            .filter_map(|(class, devices)| {
                let (class, devices) = (*class, devices.clone());
                let spec = self.devices.get(*devices.first()? as usize)?;
                let mut demand_milli = 0.0;
                let mut busy = 0u32;
                for &device in &devices {
                    let load = self.load(device);
                    if load.tasks > 0 {
                        busy += 1;
                    }
                    let contention = self.contention(device, 0.0);
                    demand_milli += cost::utilisation(
                        spec,
                        contention,
                        load.horizon_cores_milli.round() as u64,
                        load.horizon_memory_bytes.round() as u64,
                    ) * f64::from(spec.cores_milli);
                }
                let per_device = self.target * f64::from(spec.cores_milli.max(1));
                let needed = if per_device > 0.0 {
                    // A hair of tolerance, so 4.0000000001 devices of float noise is 4.
                    ((demand_milli / per_device) - 1e-9)
                        .ceil()
                        .clamp(0.0, f64::from(u32::MAX)) as u32
                } else {
                    0
                };
                let current = devices.len() as u32;
                let prewarm = self.prewarm.get(&class).copied().unwrap_or(0);
                let instances = busy.max(needed).max(if prewarm > 0 {
                    current.saturating_add(prewarm)
                } else {
                    0
                });
                Some(PoolAdvice {
                    class,
                    devices,
                    current,
                    busy,
                    demand_cores: demand_milli / 1000.0,
                    needed,
                    prewarm,
                    instances,
                })
            })
            .collect()
    }

    /// The pools whose recommended instance count changed since the last call.
    pub fn changes(&mut self) -> Vec<PoolAdvice> {
        if self.settled {
            return Vec::new();
        }
        self.settled = true;
        let mut changed = Vec::new();
        for advice in self.advice() {
            if self.last.get(&advice.class) != Some(&advice.instances) {
                self.last.insert(advice.class, advice.instances);
                changed.push(advice);
            }
        }
        changed
    }
}

/// The share of the horizon a task's declared run time fills.
fn share_of(horizon_ms: i64, spec: TaskSpec) -> f64 {
    if horizon_ms <= 0 {
        1.0
    } else {
        (spec.duration_ms as f64 / horizon_ms as f64).min(1.0)
    }
}

/// The latest forecast of every series, one row of resources per device: the advice reads
/// every device's row at every epoch whose forecasts changed (each epoch of a changing log),
/// where a B-tree range per device and a B-tree update per change cost more than the rule.
/// Kept in checkpoints as the map it stands for, so their bytes are unchanged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    from = "BTreeMap<(DeviceId, Resource), SeriesForecast>",
    into = "BTreeMap<(DeviceId, Resource), SeriesForecast>"
)]
struct SeriesTable {
    rows: Vec<[Option<SeriesForecast>; Resource::ALL.len()]>,
}

impl SeriesTable {
    fn slot(resource: Resource) -> usize {
        match resource {
            Resource::Cpu => 0,
            Resource::Memory => 1,
            Resource::Disk => 2,
            Resource::Network => 3,
        }
    }

    fn get(&self, (device, resource): (DeviceId, Resource)) -> Option<SeriesForecast> {
        self.rows
            .get(device as usize)
            .and_then(|row| row[Self::slot(resource)])
    }

    fn set(&mut self, (device, resource): (DeviceId, Resource), value: Option<SeriesForecast>) {
        let device = device as usize;
        if device >= self.rows.len() {
            if value.is_none() {
                return;
            }
            self.rows.resize(device + 1, [None; Resource::ALL.len()]);
        }
        self.rows[device][Self::slot(resource)] = value;
    }

    /// A device's forecasts, in resource order.
    fn of(&self, device: DeviceId) -> impl Iterator<Item = SeriesForecast> + '_ {
        self.rows
            .get(device as usize)
            .into_iter()
            .flat_map(|row| row.iter().flatten().copied())
    }

    /// [`apply_changes`]' rule: every retraction of a key's current value, then every
    /// insertion (the last one of a key wins).
    fn apply(&mut self, changes: &[ForecastUpdate]) {
        for &((key, value), diff) in changes {
            if diff < 0 && self.get(key) == Some(value) {
                self.set(key, None);
            }
        }
        for &((key, value), diff) in changes {
            if diff > 0 {
                self.set(key, Some(value));
            }
        }
    }
}

impl From<BTreeMap<(DeviceId, Resource), SeriesForecast>> for SeriesTable {
    fn from(map: BTreeMap<(DeviceId, Resource), SeriesForecast>) -> Self {
        let mut table = SeriesTable::default();
        for (key, value) in map {
            table.set(key, Some(value));
        }
        table
    }
}

impl From<SeriesTable> for BTreeMap<(DeviceId, Resource), SeriesForecast> {
    fn from(table: SeriesTable) -> Self {
        let mut map = BTreeMap::new();
        for (device, row) in table.rows.iter().enumerate() {
            for resource in Resource::ALL {
                if let Some(value) = row[SeriesTable::slot(resource)] {
                    map.insert((device as DeviceId, resource), value);
                }
            }
        }
        map
    }
}

/// One line of `scaleout.jsonl` (and one event of the service's scale-out stream).
#[derive(Clone, Debug, Serialize)]
pub struct ScaleoutLine {
    /// Event time, seconds.
    pub time: serde_json::Value,
    /// The pool: its devices, comma-separated.
    pub pool: String,
    /// The recommended instance count.
    pub instances: u32,
    /// Devices in the pool now.
    pub current: u32,
    /// Why.
    pub reason: String,
    /// What to warm up now: the devices to start ahead of the demand (`instances - current`
    /// when positive).
    pub warm_up: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(cores: u32) -> DeviceSpec {
        DeviceSpec {
            cores_milli: cores * 1000,
            memory_bytes: 64 << 30,
            speed: 1.0,
            network_bytes_per_s: 0.0,
            cost_per_hour: 0.0,
            power_watts: 0.0,
            zone: 0,
        }
    }

    fn task(cores: u32) -> TaskSpec {
        TaskSpec {
            cores_milli: cores * 1000,
            memory_bytes: 0,
            duration_ms: 1000,
            kind: 0,
        }
    }

    fn key(task: u32) -> TaskKey {
        TaskKey { workflow: 0, task }
    }

    #[test]
    fn demand_over_target_scales_out_and_idle_pools_scale_to_zero() {
        // Two 4-core devices in one pool, one 8-core device in another; target 0.5.
        let mut scaleout = Scaleout::new(
            vec![device(4), device(4), device(8)],
            vec![0, 0, 1],
            0.5,
            1000,
        );
        // 6 cores of tasks on device 0: demand 6 cores needs ceil(6 / 2) = 3 devices.
        scaleout.on_map(&[((key(0), 0), 1), ((key(1), 0), 1)], |k| {
            Some(task(if k.task == 0 { 4 } else { 2 }))
        });
        let advice = scaleout.changes();
        assert_eq!(advice.len(), 2);
        assert_eq!(
            (advice[0].needed, advice[0].busy, advice[0].instances),
            (3, 1, 3)
        );
        assert_eq!((advice[1].current, advice[1].instances), (1, 0));
        assert!(advice[0].reason(300.0, 0.5).starts_with("scale out"));
        assert!(scaleout.changes().is_empty(), "nothing changed since");
        // The tasks leave: pool 0 scales to zero.
        scaleout.on_map(&[((key(0), 0), -1), ((key(1), 0), -1)], |_| Some(task(1)));
        let advice = scaleout.changes();
        assert_eq!(advice.len(), 1);
        assert_eq!(advice[0].instances, 0);
    }

    #[test]
    fn short_tasks_weigh_their_share_of_the_horizon() {
        let mut scaleout = Scaleout::new(vec![device(4)], vec![0], 1.0, 10_000);
        // Eight 1-core tasks of 2.5 s each over a 10 s horizon: 2 cores of demand, not 8.
        let changes: Vec<MapUpdate> = (0..8).map(|t| ((key(t), 0), 1)).collect();
        scaleout.on_map(&changes, |_| {
            Some(TaskSpec {
                duration_ms: 2500,
                ..task(1)
            })
        });
        let advice = scaleout.advice();
        assert!((advice[0].demand_cores - 2.0).abs() < 1e-9, "{advice:?}");
        // Unweighted, 8 cores would need two 4-core devices; 2 cores fit one.
        assert_eq!(advice[0].instances, 1);
    }

    #[test]
    fn never_below_busy_nor_the_warm_up_advice() {
        let mut scaleout = Scaleout::new(
            vec![device(8), device(8), device(8)],
            vec![0, 0, 0],
            1.0,
            1000,
        );
        // Three tiny tasks on three devices: demand is small but all three are busy.
        scaleout.on_map(
            &[((key(0), 0), 1), ((key(1), 1), 1), ((key(2), 2), 1)],
            |_| {
                Some(TaskSpec {
                    cores_milli: 10,
                    ..task(0)
                })
            },
        );
        let advice = scaleout.advice();
        assert_eq!(
            (advice[0].needed, advice[0].busy, advice[0].instances),
            (1, 3, 3)
        );
        scaleout.on_prewarm(&[((0, 2), 1)]);
        assert_eq!(scaleout.advice()[0].instances, 5);
    }

    #[test]
    fn the_series_table_holds_what_the_map_would_and_checkpoints_as_it() {
        let forecast = |value: i64| SeriesForecast {
            latest: value,
            predicted: value,
            sigma: 0,
            anomaly: 0,
        };
        let mut state: u64 = 7;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        let mut map: BTreeMap<(DeviceId, Resource), SeriesForecast> = BTreeMap::new();
        let mut table = SeriesTable::default();
        for _ in 0..300 {
            let changes: Vec<ForecastUpdate> = (0..next() % 12)
                .map(|_| {
                    let key = (
                        (next() % 5) as DeviceId,
                        Resource::ALL[(next() % 4) as usize],
                    );
                    // Retractions of the current value, of a stale one, and insertions.
                    let diff = if next() % 2 == 0 { 1 } else { -1 };
                    let value = match map.get(&key) {
                        Some(held) if diff < 0 && next() % 3 > 0 => *held,
                        _ => forecast((next() % 4) as i64),
                    };
                    ((key, value), diff)
                })
                .collect();
            apply_changes(&mut map, &changes);
            table.apply(&changes);
            assert_eq!(BTreeMap::from(table.clone()), map);
            for device in 0..6 {
                let held: Vec<SeriesForecast> = map
                    .range((device, Resource::Cpu)..)
                    .take_while(|((d, _), _)| *d == device)
                    .map(|(_, f)| *f)
                    .collect();
                assert_eq!(table.of(device).collect::<Vec<_>>(), held);
            }
        }
        assert_eq!(
            crate::checkpoint::encode(&table).expect("encodes"),
            crate::checkpoint::encode(&map).expect("encodes")
        );
        let back: SeriesTable =
            crate::checkpoint::decode(&crate::checkpoint::encode(&map).expect("encodes"))
                .expect("decodes");
        assert_eq!(back, table);
    }
}
