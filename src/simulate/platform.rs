//! The simulated cluster's hardware: devices with speeds and slots, and the bandwidth of every
//! link between two devices, from a platform TOML, a SAGA network JSON
//! (`../shared/peers/networks/*.json`) or the workflow's `machines`.
//!
//! A network JSON describes SAGA's model: every node runs one task at a time, so its devices
//! have one core and every task is taken as one core ([`SimPlatform::exclusive`]).

use std::path::Path;

use serde::Deserialize;

use crate::input::platform::{
    read_platform, replay_on_own_machines, Device, Platform, MAX_COST_PER_HOUR, MAX_POWER_WATTS,
    MAX_SPEED, MIN_SPEED,
};
use crate::input::wfformat::Workflow;

use super::SimError;

/// Bandwidth of a link the platform says nothing about: transfers over it are free.
pub const UNKNOWN_BANDWIDTH: f64 = f64::INFINITY;

/// The devices and links of a simulation.
#[derive(Clone, Debug)]
pub struct SimPlatform {
    /// The devices, as the catalog and the dataflow see them.
    pub platform: Platform,
    /// `bandwidth[a][b]`: bytes per second from device `a` to `b`; infinite on the diagonal
    /// (same device), unless `--ccr` rescaled it, as SAGA's `scale_to_ccr` does.
    pub bandwidth: Vec<Vec<f64>>,
    /// One task at a time per device (SAGA's model; a network JSON platform).
    pub exclusive: bool,
}

#[derive(Deserialize)]
struct RawNetwork {
    nodes: Vec<RawNode>,
    #[serde(default = "default_bandwidth")]
    bandwidth: f64,
    #[serde(default)]
    links: Vec<RawLink>,
}

#[derive(Deserialize)]
struct RawNode {
    name: String,
    speed: f64,
    #[serde(default)]
    cost_per_hour: f64,
    #[serde(default)]
    power_watts: f64,
}

#[derive(Deserialize)]
struct RawLink {
    a: String,
    b: String,
    bandwidth: f64,
}

/// `saga_makespan.py`'s default link bandwidth (1 Gbit/s).
fn default_bandwidth() -> f64 {
    1.25e8
}

impl SimPlatform {
    /// Reads `--platform`: a `.json` file is a SAGA network, anything else a platform TOML.
    pub fn read(path: &Path) -> Result<SimPlatform, SimError> {
        let is_json = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
        if is_json {
            let text = crate::input::regular::read_regular_string(path).map_err(|e| {
                SimError::Platform {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                }
            })?;
            parse_network(&text).map_err(|reason| SimError::Platform {
                path: path.display().to_string(),
                reason,
            })
        } else {
            let platform = read_platform(path).map_err(|r| SimError::Platform {
                path: path.display().to_string(),
                reason: r.reason,
            })?;
            Ok(SimPlatform::from_devices(platform))
        }
    }

    /// The platform of a workflow's `machines` section, as `augur run` builds it, with the
    /// runtimes of its tasks recorded on other clocks restated at the platform's speed 1 (see
    /// [`replay_on_own_machines`]), and what a user should hear of that.
    pub fn from_machines(workflow: &mut Workflow) -> Result<(SimPlatform, Vec<String>), SimError> {
        let (platform, notes) = replay_on_own_machines(std::slice::from_mut(workflow));
        if platform.devices.is_empty() {
            return Err(SimError::NoDevices {
                workflow: workflow.name.clone(),
            });
        }
        Ok((SimPlatform::from_devices(platform), notes.concat()))
    }

    /// Links of a TOML platform run at the smaller of the two devices' network bandwidths, as
    /// the dataflow's transfer model takes them (free when either is unknown).
    fn from_devices(platform: Platform) -> SimPlatform {
        let n = platform.devices.len();
        let mut bandwidth = vec![vec![UNKNOWN_BANDWIDTH; n]; n];
        for (a, row) in bandwidth.iter_mut().enumerate() {
            for (b, cell) in row.iter_mut().enumerate() {
                if a == b {
                    continue;
                }
                let (da, db) = (&platform.devices[a], &platform.devices[b]);
                // The slower end bounds a link; one end's bandwidth bounds it alone (a device
                // with none made even a link to a 1-kB/s device free).
                *cell = match (da.network_bytes_per_s, db.network_bytes_per_s) {
                    (Some(x), Some(y)) => x.min(y),
                    (Some(x), None) | (None, Some(x)) => x,
                    (None, None) => UNKNOWN_BANDWIDTH,
                };
            }
        }
        SimPlatform {
            platform,
            bandwidth,
            exclusive: false,
        }
    }

    /// Rescales every link, a device's link to itself included, to the one bandwidth that
    /// makes mean transfer time over mean compute time equal `ccr` for this workflow: SAGA's
    /// `Network.scale_to_ccr`, with its averages over the task graph SAGA builds (a zero-cost
    /// super source and super sink with zero-size edges when there are several entries or
    /// exits).
    pub fn scale_to_ccr(&mut self, workflow: &Workflow, ccr: f64) -> Result<(), SimError> {
        let mut costs: Vec<f64> = workflow.tasks.iter().map(|t| t.runtime_s).collect();
        let mut sizes: Vec<f64> = workflow.edges.iter().map(|e| e.bytes as f64).collect();
        let sources = workflow
            .tasks
            .iter()
            .filter(|t| t.parents.is_empty())
            .count();
        let sinks = workflow
            .tasks
            .iter()
            .filter(|t| t.children.is_empty())
            .count();
        if sources != 1 {
            costs.push(0.0);
            sizes.extend(std::iter::repeat_n(0.0, sources));
        }
        if sinks != 1 {
            costs.push(0.0);
            sizes.extend(std::iter::repeat_n(0.0, sinks));
        }
        let speeds: Vec<f64> = self.platform.devices.iter().map(|d| d.speed).collect();
        // `+ 0.0`: an empty sum is -0.0, which a message would print as "-0".
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64 + 0.0;
        let comp = mean(&costs) / mean(&speeds);
        let link = mean(&sizes) / (ccr * comp);
        if !(link.is_finite() && link > 0.0) {
            return Err(SimError::Ccr {
                workflow: workflow.name.clone(),
                reason: format!(
                    "the workflow's mean edge size ({} bytes) and mean compute time ({comp} s) give no positive link bandwidth",
                    mean(&sizes)
                ),
            });
        }
        for row in &mut self.bandwidth {
            for cell in row.iter_mut() {
                *cell = link;
            }
        }
        for device in &mut self.platform.devices {
            device.network_bytes_per_s = Some(link);
        }
        Ok(())
    }

    /// Seconds to move `bytes` from device `a` to device `b`.
    pub fn transfer_s(&self, bytes: u64, a: usize, b: usize) -> f64 {
        let bandwidth = self
            .bandwidth
            .get(a)
            .and_then(|row| row.get(b))
            .copied()
            .unwrap_or(UNKNOWN_BANDWIDTH);
        if bytes == 0 || bandwidth.is_infinite() {
            0.0
        } else {
            bytes as f64 / bandwidth
        }
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        self.platform.devices.len()
    }

    /// Whether there are no devices.
    pub fn is_empty(&self) -> bool {
        self.platform.devices.is_empty()
    }
}

/// The least bandwidth a SAGA network may give a link (its data units per time unit).
pub const MIN_BANDWIDTH: f64 = 1e-6;

/// Parses a SAGA network JSON, with `load_network`'s checks (unique names, positive speeds and
/// bandwidths).
pub fn parse_network(text: &str) -> Result<SimPlatform, String> {
    let raw: RawNetwork = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if raw.nodes.is_empty() {
        return Err("no nodes".to_string());
    }
    let mut devices: Vec<Device> = Vec::with_capacity(raw.nodes.len());
    for node in &raw.nodes {
        if devices.iter().any(|d| d.id == node.name) {
            return Err(format!("node {:?} is defined twice", node.name));
        }
        // The platform file's bounds: a subnormal speed stalled the simulation, and a cost
        // near f64::MAX made every result's cost null.
        if !(MIN_SPEED..=MAX_SPEED).contains(&node.speed) {
            return Err(format!(
                "node {:?}: speed {:e} is outside {MIN_SPEED:e}..={MAX_SPEED:e}",
                node.name, node.speed
            ));
        }
        let within = |v: f64, high: f64| (0.0..=high).contains(&v);
        if !within(node.cost_per_hour, MAX_COST_PER_HOUR)
            || !within(node.power_watts, MAX_POWER_WATTS)
        {
            return Err(format!(
                "node {:?}: cost_per_hour must be within 0..={MAX_COST_PER_HOUR:e} and \
                 power_watts within 0..={MAX_POWER_WATTS:e}",
                node.name
            ));
        }
        devices.push(Device {
            id: node.name.clone(),
            cores: 1.0,
            memory_bytes: None,
            speed: node.speed,
            disk_bytes_per_s: None,
            network_bytes_per_s: None,
            cost_per_hour: node.cost_per_hour,
            power_watts: node.power_watts,
            zone: "default".to_string(),
        });
    }
    // A bandwidth near zero (1e-310) stalled the simulation as a subnormal speed did.
    let usable = |b: f64| b.is_finite() && b >= MIN_BANDWIDTH;
    if !usable(raw.bandwidth) {
        return Err(format!(
            "bandwidth must be a finite number of at least {MIN_BANDWIDTH:e}"
        ));
    }
    let n = devices.len();
    let mut bandwidth = vec![vec![raw.bandwidth; n]; n];
    for (i, row) in bandwidth.iter_mut().enumerate() {
        row[i] = UNKNOWN_BANDWIDTH;
    }
    for link in &raw.links {
        let index = |name: &str| {
            devices
                .iter()
                .position(|d| d.id == name)
                .ok_or_else(|| format!("link names unknown node {name:?}"))
        };
        let (a, b) = (index(&link.a)?, index(&link.b)?);
        if !usable(link.bandwidth) {
            return Err(format!(
                "bandwidth between {} and {} must be a finite number of at least {MIN_BANDWIDTH:e}",
                link.a, link.b
            ));
        }
        if a != b {
            bandwidth[a][b] = link.bandwidth;
            bandwidth[b][a] = link.bandwidth;
        }
    }
    // The dataflow knows one bandwidth per device and takes the smaller of two: a device's
    // fastest link is what it offers (exact for hetero4/hetero16, where a link's bandwidth is
    // the slower end's).
    for (i, device) in devices.iter_mut().enumerate() {
        let fastest = bandwidth[i]
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, b)| *b)
            .fold(0.0, f64::max);
        device.network_bytes_per_s = (fastest > 0.0).then_some(fastest);
    }
    Ok(SimPlatform {
        platform: Platform { devices },
        bandwidth,
        exclusive: true,
    })
}
