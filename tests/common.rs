//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use augur::engine::{
    apply_changes, BatchSource, DurationUpdate, ForecastUpdate, MapSink, MapUpdate, PrewarmUpdate,
    VariantUpdate,
};
use augur_dataflows::contention_forecast::SeriesForecast;
use augur_dataflows::types::{DeviceId, InputBatch, Resculpt, Resource, TaskKey, Time};

/// A deterministic pseudo-random generator (splitmix64), so tests need no extra crates.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Feeds a fixed list of epochs.
pub struct VecSource(pub std::vec::IntoIter<(Time, InputBatch)>);

impl BatchSource for VecSource {
    type Error = Infallible;
    fn next_batch(&mut self) -> Result<Option<(Time, InputBatch)>, Infallible> {
        Ok(self.0.next())
    }
}

/// The map after the epoch at a time.
pub type MapAt = (Time, BTreeMap<TaskKey, DeviceId>);

/// Every duration estimate after the epoch at a time.
pub type DurationsAt = (Time, BTreeMap<(u32, u32), u64>);

/// Every series' forecast after the epoch at a time.
pub type ForecastsAt = (Time, BTreeMap<(DeviceId, Resource), SeriesForecast>);

/// Tasks run ahead of their placement order: `(device, the task ahead of which)`.
pub type Reorders = BTreeMap<TaskKey, (DeviceId, TaskKey)>;

/// Each epoch's `(prewarm class, count)` pairs.
pub type PrewarmsAt = Vec<(u32, u32)>;

/// Records the map after every epoch.
#[derive(Clone, Default)]
pub struct RecordingSink {
    pub current: BTreeMap<TaskKey, DeviceId>,
    pub after_epoch: Arc<Mutex<Vec<MapAt>>>,
    pub forecasts: BTreeMap<(DeviceId, Resource), SeriesForecast>,
    pub forecasts_after_epoch: Arc<Mutex<Vec<ForecastsAt>>>,
    pub durations: BTreeMap<(u32, u32), u64>,
    pub durations_after_epoch: Arc<Mutex<Vec<DurationsAt>>>,
    pub prewarm: BTreeMap<u32, u32>,
    pub prewarm_after_epoch: Arc<Mutex<Vec<PrewarmsAt>>>,
    pub variants: BTreeMap<TaskKey, u32>,
    pub variants_after_epoch: Arc<Mutex<Vec<BTreeMap<TaskKey, u32>>>>,
    pub reorders: Reorders,
    pub reorders_after_epoch: Arc<Mutex<Vec<Reorders>>>,
}

impl MapSink for RecordingSink {
    type Error = String;
    fn prewarm(&mut self, _time: Time, changes: &[PrewarmUpdate]) -> Result<(), String> {
        apply_changes(&mut self.prewarm, changes);
        Ok(())
    }

    fn variants(&mut self, _time: Time, changes: &[VariantUpdate]) -> Result<(), String> {
        let mut variants = Vec::new();
        let mut reorders = Vec::new();
        for &(resculpt, diff) in changes {
            match resculpt {
                Resculpt::Variant(task, variant) => variants.push(((task, variant), diff)),
                Resculpt::Reorder(r) => reorders.push(((r.task, (r.device, r.ahead_of)), diff)),
            }
        }
        apply_changes(&mut self.variants, &variants);
        apply_changes(&mut self.reorders, &reorders);
        Ok(())
    }

    fn durations(&mut self, _time: Time, changes: &[DurationUpdate]) -> Result<(), String> {
        apply_changes(&mut self.durations, changes);
        Ok(())
    }

    fn forecasts(&mut self, _time: Time, changes: &[ForecastUpdate]) -> Result<(), String> {
        apply_changes(&mut self.forecasts, changes);
        Ok(())
    }

    fn epoch(&mut self, time: Time, changes: &[MapUpdate], _: Duration) -> Result<(), String> {
        for &((task, device), diff) in changes {
            if diff < 0 && self.current.remove(&task) != Some(device) {
                return Err(format!("retracted {task:?} from {device} where it was not"));
            }
        }
        for &((task, device), diff) in changes {
            if diff > 0 && self.current.insert(task, device).is_some() {
                return Err(format!("{task:?} placed twice at {time}"));
            }
        }
        let mut log = self.after_epoch.lock().map_err(|e| e.to_string())?;
        log.push((time, self.current.clone()));
        let mut log = self
            .forecasts_after_epoch
            .lock()
            .map_err(|e| e.to_string())?;
        log.push((time, self.forecasts.clone()));
        let mut log = self
            .durations_after_epoch
            .lock()
            .map_err(|e| e.to_string())?;
        log.push((time, self.durations.clone()));
        let mut log = self.prewarm_after_epoch.lock().map_err(|e| e.to_string())?;
        log.push(self.prewarm.iter().map(|(c, a)| (*c, *a)).collect());
        let mut log = self
            .variants_after_epoch
            .lock()
            .map_err(|e| e.to_string())?;
        log.push(self.variants.clone());
        let mut log = self
            .reorders_after_epoch
            .lock()
            .map_err(|e| e.to_string())?;
        log.push(self.reorders.clone());
        Ok(())
    }
}

pub use augur::testing::shared_data;

/// The project's bundled data folder.
pub fn bundled_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}
