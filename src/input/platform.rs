//! The platform: the devices tasks can be placed on, from a TOML file or from the machines a
//! workflow instance was recorded on.
//!
//! A platform is small and everything downstream indexes into it, so a single bad device
//! refuses the whole file: running on a silently shrunken platform would give plausible but
//! wrong placements.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::rejection::{RejectKind, Rejection, MAX_DURATION_S};
use super::wfformat::{Machine, Workflow};

const BYTES_PER_GIB: f64 = (1u64 << 30) as f64;
const BYTES_PER_MB: f64 = 1e6;
const BYTES_PER_GBIT: f64 = 1e9 / 8.0;

/// One device, in the units the rest of augur uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    /// Unique name, used by metric logs and events to refer to it.
    pub id: String,
    /// Cores (may be fractional, e.g. a share of a host).
    pub cores: f64,
    /// Memory in bytes; `None` means unconstrained.
    pub memory_bytes: Option<u64>,
    /// Speed relative to the machines the task runtimes were measured on (durations divide by it).
    pub speed: f64,
    /// Disk bandwidth in bytes per second, if known.
    pub disk_bytes_per_s: Option<f64>,
    /// Network bandwidth in bytes per second, if known.
    pub network_bytes_per_s: Option<f64>,
    /// Price of one hour of use.
    pub cost_per_hour: f64,
    /// Power draw in watts.
    pub power_watts: f64,
    /// Placement zone (failure or locality domain).
    pub zone: String,
}

/// The devices, in file order; a device's position is its dense id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Platform {
    /// All devices; ids are unique.
    pub devices: Vec<Device>,
}

impl Platform {
    /// The position of the device named `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.devices.iter().position(|device| device.id == id)
    }
}

/// The file as written; validated into [`Device`]s by [`validate`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlatform {
    #[serde(default)]
    device: Vec<RawDevice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    id: String,
    cores: Option<f64>,
    memory_gib: Option<f64>,
    speed: Option<f64>,
    disk_mbps: Option<f64>,
    network_gbps: Option<f64>,
    cost_per_hour: Option<f64>,
    power_watts: Option<f64>,
    zone: Option<String>,
}

/// Reads a platform TOML file.
pub fn read_platform(path: &Path) -> Result<Platform, Rejection> {
    let name = path.display().to_string();
    let text = super::regular::read_regular_string(path)
        .map_err(|error| Rejection::whole_file(&name, RejectKind::Io, error.to_string()))?;
    parse_platform(&text, &name)
}

/// Parses platform TOML text; `path` names it in rejections.
pub fn parse_platform(text: &str, path: &str) -> Result<Platform, Rejection> {
    let raw: RawPlatform = toml::from_str(text).map_err(|error| {
        let message = error.to_string();
        // toml has one error type for syntax and shape; only the message tells them apart.
        let shape_error = [
            "unknown field",
            "missing field",
            "invalid type",
            "invalid value",
        ]
        .iter()
        .any(|marker| message.contains(marker));
        let kind = if shape_error {
            RejectKind::Schema
        } else {
            RejectKind::Parse
        };
        Rejection::whole_file(path, kind, message.trim().replace('\n', " "))
    })?;
    validate(raw).map_err(|(kind, reason)| Rejection::whole_file(path, kind, reason))
}

/// A platform of the machines a workflow instance names, for replaying it where it ran.
/// Machines are unioned by name (the first definition wins). A runtime is seconds at speed 1
/// (the peers' convention): here, speed 1 is the most common clock of `machines` (the lowest
/// of equally common ones, see [`reference_clock`]), and a task recorded on another clock has
/// its runtime scaled to it by [`scale_to_recorded_clocks`], so that every task replayed on
/// its own machine runs in its recorded time. (Relative to 1 GHz, a task recorded in 17 s on a
/// 3,033 MHz machine replayed there in 5.7 s, and a makespan came out shorter than its longest
/// task.)
pub fn platform_from_machines(machines: &[Machine]) -> Platform {
    let reference = reference_clock(machines);
    let devices = distinct_machines(machines)
        .into_iter()
        .map(|machine| {
            let mut device = device_of_machine(machine);
            // A machine without a usable clock stays at 1, the reference's equal.
            if let (Some(clock), Some(reference)) = (clock_of(machine), reference) {
                device.speed = relative_speed(clock, reference);
            }
            device
        })
        .collect();
    Platform { devices }
}

/// The platform a replay of `workflows` on their own machines runs on (all their machines,
/// [`platform_from_machines`]), with each task's runtime restated at its speed 1
/// ([`scale_to_recorded_clocks`]); and, per workflow in order, what a user should hear of that.
/// `run` (without --platform), `simulate` and `pareto` replay through this one door.
pub fn replay_on_own_machines(workflows: &mut [Workflow]) -> (Platform, Vec<Vec<String>>) {
    let machines: Vec<Machine> = workflows
        .iter()
        .flat_map(|workflow| workflow.machines.iter().cloned())
        .collect();
    let reference = reference_clock(&machines);
    let notes = workflows
        .iter_mut()
        .map(|workflow| scale_to_recorded_clocks(workflow, &machines).notes(reference))
        .collect();
    (platform_from_machines(&machines), notes)
}

/// The speed of a machine of `clock` on a platform whose speed 1 is `reference`, held within
/// the range a platform file allows.
fn relative_speed(clock: f64, reference: f64) -> f64 {
    (clock / reference).clamp(MIN_SPEED, MAX_SPEED)
}

/// The machines by name, the first definition of each, in order.
fn distinct_machines(machines: &[Machine]) -> Vec<&Machine> {
    let mut seen = HashSet::new();
    machines
        .iter()
        .filter(|machine| seen.insert(machine.name.as_str()))
        .collect()
}

/// The clock (GHz) that is speed 1 on a platform of `machines`: the most common usable clock
/// among them, the lowest of equally common ones; `None` when none has one.
pub fn reference_clock(machines: &[Machine]) -> Option<f64> {
    let mut clocks: Vec<f64> = distinct_machines(machines)
        .into_iter()
        .filter_map(clock_of)
        .collect();
    clocks.sort_by(f64::total_cmp);
    let mut reference = None::<(usize, f64)>;
    for run in clocks.chunk_by(|a, b| a == b) {
        if reference.is_none_or(|(count, _)| run.len() > count) {
            reference = Some((run.len(), run[0]));
        }
    }
    reference.map(|(_, clock)| clock)
}

/// What [`scale_to_recorded_clocks`] did to one workflow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockScaling {
    /// Tasks recorded on a machine of another clock than the reference, scaled to it.
    pub scaled: usize,
    /// Tasks that name a machine `machines` does not hold, left as recorded.
    pub unknown_machine: usize,
    /// Tasks whose restated runtime would pass [`MAX_DURATION_S`], held there.
    pub capped: usize,
}

impl ClockScaling {
    /// What a user replaying the workflow should hear of it, if anything.
    pub fn notes(&self, reference: Option<f64>) -> Vec<String> {
        let mut notes = Vec::new();
        let tasks = |n: usize| {
            if n == 1 {
                "1 task".to_string()
            } else {
                format!("{n} tasks")
            }
        };
        if let (true, Some(reference)) = (self.scaled > 0, reference) {
            // To the kHz, as clocks are written: 1000, not 1e3.
            let mhz = (reference * 1e6).round() / 1e3;
            notes.push(format!(
                "{} ran on machines of another clock than the most common ({mhz} MHz): \
                 restated at that clock, so that each replays on its own machine in its \
                 recorded time",
                tasks(self.scaled)
            ));
        }
        if self.unknown_machine > 0 {
            notes.push(format!(
                "{} {} a machine the instance does not list: taken as recorded at the most \
                 common clock",
                tasks(self.unknown_machine),
                if self.unknown_machine == 1 {
                    "names"
                } else {
                    "name"
                }
            ));
        }
        if self.capped > 0 {
            notes.push(format!(
                "{} would take over {} s restated: held at that",
                tasks(self.capped),
                super::short_number(MAX_DURATION_S)
            ));
        }
        notes
    }
}

/// Restates the runtimes of `workflow`'s tasks at speed 1 of [`platform_from_machines`] over
/// the same `machines`: a task recorded in `r` s on a machine of clock `c` did `r c / c₀`
/// seconds of work at the reference clock `c₀`, and so replays on its own machine (speed
/// `c / c₀`) in `r` s again. A task naming no machine, an unknown one or one without a usable
/// clock keeps its runtime (its machine, if any, is at speed 1). Only for a replay on the
/// instance's own machines: with a --platform, a runtime is seconds at that platform's speed 1
/// (the peers' convention), whatever it was recorded on.
pub fn scale_to_recorded_clocks(workflow: &mut Workflow, machines: &[Machine]) -> ClockScaling {
    let mut scaling = ClockScaling::default();
    let Some(reference) = reference_clock(machines) else {
        return scaling;
    };
    let clocks: std::collections::HashMap<&str, Option<f64>> = distinct_machines(machines)
        .into_iter()
        .map(|machine| (machine.name.as_str(), clock_of(machine)))
        .collect();
    for task in &mut workflow.tasks {
        let Some(name) = &task.machine else { continue };
        match clocks.get(name.as_str()) {
            // A task that takes no time takes none at any clock: nothing to say of it.
            Some(Some(clock)) if *clock != reference && task.runtime_s > 0.0 => {
                // The device's own speed, as `platform_from_machines` gives it.
                task.runtime_s *= relative_speed(*clock, reference);
                scaling.scaled += 1;
                if task.runtime_s > MAX_DURATION_S {
                    task.runtime_s = MAX_DURATION_S;
                    scaling.capped += 1;
                }
            }
            Some(_) => {}
            None => scaling.unknown_machine += 1,
        }
    }
    scaling
}

/// A machine's usable clock in GHz (`speedInMHz` / 1000 within the speed range), if any.
pub fn clock_of(machine: &Machine) -> Option<f64> {
    machine
        .speed_mhz
        .map(|mhz| mhz / 1000.0)
        .filter(|speed| (MIN_SPEED..=MAX_SPEED).contains(speed))
}

/// The device a WfFormat machine stands for: a missing or unusable core count is 1, a missing
/// or unusable speed 1.
pub fn device_of_machine(machine: &Machine) -> Device {
    Device {
        id: machine.name.clone(),
        cores: f64::from(
            machine
                .cores
                .filter(|&cores| cores > 0 && f64::from(cores) <= MAX_CORES)
                .unwrap_or(1),
        ),
        memory_bytes: machine.memory_bytes,
        speed: clock_of(machine).unwrap_or(1.0),
        disk_bytes_per_s: None,
        network_bytes_per_s: None,
        cost_per_hour: 0.0,
        power_watts: 0.0,
        zone: "default".to_string(),
    }
}

type Problem = (RejectKind, String);

fn validate(raw: RawPlatform) -> Result<Platform, Problem> {
    if raw.device.is_empty() {
        return Err((
            RejectKind::Schema,
            "no devices: add at least one [[device]] table".to_string(),
        ));
    }
    let mut seen = HashSet::new();
    let mut devices = Vec::with_capacity(raw.device.len());
    for raw_device in raw.device {
        if !seen.insert(raw_device.id.clone()) {
            return Err((
                RejectKind::DuplicateId,
                format!("device {:?} is defined twice", raw_device.id),
            ));
        }
        devices.push(validate_device(raw_device)?);
    }
    Ok(Platform { devices })
}

fn validate_device(raw: RawDevice) -> Result<Device, Problem> {
    let id = raw.id;
    if id.trim().is_empty() {
        return Err((RejectKind::Schema, "a device has an empty id".to_string()));
    }
    let cores = raw.cores.ok_or_else(|| {
        (
            RejectKind::Schema,
            format!("device {id:?}: cores is required"),
        )
    })?;
    let cores = within(
        &id,
        "cores",
        positive(&id, "cores", cores)?,
        1e-3,
        MAX_CORES,
    )?;
    let memory_bytes = match raw.memory_gib {
        Some(gib) => {
            let gib = non_negative(&id, "memory_gib", gib)?;
            let gib = within(&id, "memory_gib", gib, 0.0, MAX_MEMORY_GIB)?;
            Some(to_bytes(gib * BYTES_PER_GIB))
        }
        None => None,
    };
    let speed = positive(&id, "speed", raw.speed.unwrap_or(1.0))?;
    // Durations are divided by the speed: a speed of 1e-308 would make every task on the device
    // take forever and overflow the arithmetic downstream.
    let speed = within(&id, "speed", speed, MIN_SPEED, MAX_SPEED)?;
    // A zero bandwidth would make every throughput reading an infinite fraction.
    // A bandwidth near zero (1e-300) made a simulated transfer last 1e295 s, as a subnormal
    // speed did; the bounds are those of any real link or disk, and then some.
    let disk_bytes_per_s = match raw.disk_mbps {
        Some(mbps) => {
            let bytes = bytes_per_s(&id, "disk_mbps", mbps, BYTES_PER_MB)?;
            within(&id, "disk_mbps", mbps, MIN_DISK_MBPS, MAX_DISK_MBPS)?;
            Some(bytes)
        }
        None => None,
    };
    let network_bytes_per_s = match raw.network_gbps {
        Some(gbps) => {
            let bytes = bytes_per_s(&id, "network_gbps", gbps, BYTES_PER_GBIT)?;
            within(
                &id,
                "network_gbps",
                gbps,
                MIN_NETWORK_GBPS,
                MAX_NETWORK_GBPS,
            )?;
            Some(bytes)
        }
        None => None,
    };
    let cost_per_hour = non_negative(&id, "cost_per_hour", raw.cost_per_hour.unwrap_or(0.0))?;
    let cost_per_hour = within(&id, "cost_per_hour", cost_per_hour, 0.0, MAX_COST_PER_HOUR)?;
    let power_watts = non_negative(&id, "power_watts", raw.power_watts.unwrap_or(0.0))?;
    let power_watts = within(&id, "power_watts", power_watts, 0.0, MAX_POWER_WATTS)?;
    Ok(Device {
        id,
        cores,
        memory_bytes,
        speed,
        disk_bytes_per_s,
        network_bytes_per_s,
        cost_per_hour,
        power_watts,
        zone: raw.zone.unwrap_or_else(|| "default".to_string()),
    })
}

fn non_negative(id: &str, field: &str, value: f64) -> Result<f64, Problem> {
    if !value.is_finite() {
        return Err((
            RejectKind::NonFinite,
            format!(
                "device {id:?}: {field} = {} is not finite",
                super::short_number(value)
            ),
        ));
    }
    if value < 0.0 {
        return Err((
            RejectKind::Negative,
            format!(
                "device {id:?}: {field} = {} is negative",
                super::short_number(value)
            ),
        ));
    }
    Ok(value)
}

/// The range of a device's relative speed (1.0 is a 1 GHz core): a millionth to a million.
pub const MIN_SPEED: f64 = 1e-6;
/// See [`MIN_SPEED`].
pub const MAX_SPEED: f64 = 1e6;
/// The most cores a device may have: the engine counts thousandths of a core in 32 bits.
pub const MAX_CORES: f64 = 1e6;
/// The most a device may cost an hour: at 1e308 a run's cost was infinite (null in the
/// results) and every plan of `pareto` tied as optimal.
pub const MAX_COST_PER_HOUR: f64 = 1e6;
/// The most power a device may draw, watts (a gigawatt), for the same reason.
pub const MAX_POWER_WATTS: f64 = 1e9;
/// A device's disk bandwidth, MB/s: a kilobyte a second to a petabyte a second.
pub const MIN_DISK_MBPS: f64 = 1e-3;
/// See [`MIN_DISK_MBPS`].
pub const MAX_DISK_MBPS: f64 = 1e9;
/// A device's network bandwidth, Gbit/s: a kilobit a second to a petabit a second.
pub const MIN_NETWORK_GBPS: f64 = 1e-6;
/// See [`MIN_NETWORK_GBPS`].
pub const MAX_NETWORK_GBPS: f64 = 1e6;
/// The most memory a device may have, GiB (an exabyte).
pub const MAX_MEMORY_GIB: f64 = 1e9;

fn within(id: &str, field: &str, value: f64, low: f64, high: f64) -> Result<f64, Problem> {
    if (low..=high).contains(&value) {
        Ok(value)
    } else {
        Err((
            RejectKind::Schema,
            format!(
                "device {id:?}: {field} = {} is outside {}..={}",
                super::short_number(value),
                super::short_number(low),
                super::short_number(high)
            ),
        ))
    }
}

fn positive(id: &str, field: &str, value: f64) -> Result<f64, Problem> {
    let value = non_negative(id, field, value)?;
    if value == 0.0 {
        return Err((
            RejectKind::Schema,
            format!("device {id:?}: {field} must be greater than zero"),
        ));
    }
    Ok(value)
}

/// A positive bandwidth in bytes per second. A finite figure can still overflow once converted
/// (`disk_mbps = 1e305`, caught by the platform fuzz target's check), and an infinite
/// bandwidth would make every transfer free and every throughput reading zero.
fn bytes_per_s(id: &str, field: &str, value: f64, unit: f64) -> Result<f64, Problem> {
    let bytes = positive(id, field, value)? * unit;
    if !bytes.is_finite() {
        return Err((
            RejectKind::NonFinite,
            format!(
                "device {id:?}: {field} = {} is too large",
                super::short_number(value)
            ),
        ));
    }
    Ok(bytes)
}

/// Saturating, since `as` from f64 saturates and a finite non-negative input cannot be NaN.
fn to_bytes(bytes: f64) -> u64 {
    bytes.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Platform, Rejection> {
        parse_platform(text, "p.toml")
    }

    fn rejected(text: &str) -> Rejection {
        match parse(text) {
            Ok(platform) => panic!("accepted {platform:?}"),
            Err(rejection) => rejection,
        }
    }

    #[test]
    fn full_device_with_units() {
        let platform = parse(
            r#"
            [[device]]
            id = "edge-1"
            cores = 16
            memory_gib = 64.0
            speed = 1.5
            disk_mbps = 500.0
            network_gbps = 10.0
            cost_per_hour = 0.8
            power_watts = 250.0
            zone = "eu-1"

            [[device]]
            id = "pi"
            cores = 0.5
            "#,
        )
        .expect("valid platform");
        assert_eq!(platform.devices.len(), 2);
        let edge = &platform.devices[0];
        assert_eq!(edge.cores, 16.0);
        assert_eq!(edge.memory_bytes, Some(64 << 30));
        assert_eq!(edge.speed, 1.5);
        assert_eq!(edge.disk_bytes_per_s, Some(500e6));
        assert_eq!(edge.network_bytes_per_s, Some(1.25e9));
        assert_eq!(edge.zone, "eu-1");
        let pi = &platform.devices[1];
        assert_eq!((pi.cores, pi.speed, pi.memory_bytes), (0.5, 1.0, None));
        assert_eq!((pi.cost_per_hour, pi.power_watts), (0.0, 0.0));
        assert_eq!(pi.zone, "default");
        assert_eq!(platform.index_of("pi"), Some(1));
        assert_eq!(platform.index_of("nope"), None);
    }

    #[test]
    fn duplicate_ids() {
        let rejection = rejected("[[device]]\nid='a'\ncores=1\n[[device]]\nid='a'\ncores=2\n");
        assert_eq!(rejection.kind, RejectKind::DuplicateId);
        assert!(rejection.reason.contains("\"a\""));
        assert_eq!(rejection.line, None);
    }

    #[test]
    fn missing_zero_and_negative_cores() {
        let missing = rejected("[[device]]\nid='a'\n");
        assert_eq!(missing.kind, RejectKind::Schema);
        assert!(missing.reason.contains("\"a\"") && missing.reason.contains("cores"));
        assert_eq!(
            rejected("[[device]]\nid='a'\ncores=0\n").kind,
            RejectKind::Schema
        );
        assert_eq!(
            rejected("[[device]]\nid='a'\ncores=-2\n").kind,
            RejectKind::Negative
        );
    }

    #[test]
    fn speeds_and_cores_out_of_range_are_refused() {
        for text in [
            "[[device]]\nid='a'\ncores=1\nspeed=1e-308\n",
            "[[device]]\nid='a'\ncores=1\nspeed=1e-7\n",
            "[[device]]\nid='a'\ncores=1\nspeed=2e6\n",
            "[[device]]\nid='a'\ncores=1e308\n",
            "[[device]]\nid='a'\ncores=1e-9\n",
            "[[device]]\nid='a'\ncores=1\ncost_per_hour=1e308\n",
            "[[device]]\nid='a'\ncores=1\npower_watts=2e9\n",
            "[[device]]\nid='a'\ncores=1\nnetwork_gbps=1e-300\n",
            "[[device]]\nid='a'\ncores=1\nnetwork_gbps=2e6\n",
            "[[device]]\nid='a'\ncores=1\ndisk_mbps=1e-300\n",
            "[[device]]\nid='a'\ncores=1\ndisk_mbps=2e9\n",
            "[[device]]\nid='a'\ncores=1\nmemory_gib=2e9\n",
        ] {
            let rejection = rejected(text);
            assert_eq!(rejection.kind, RejectKind::Schema, "{text}");
            assert!(
                rejection.reason.contains("is outside"),
                "{text}: {}",
                rejection.reason
            );
        }
        // Bounds and values as a person writes them, not `0e0..=1e6`.
        let cost = rejected("[[device]]\nid='a'\ncores=1\ncost_per_hour=2000000.5\n");
        assert!(
            cost.reason
                .ends_with("cost_per_hour = 2000000.5 is outside 0..=1e6"),
            "{}",
            cost.reason
        );
        assert!(parse("[[device]]\nid='a'\ncores=0.5\nspeed=1e-6\n").is_ok());
        assert!(parse("[[device]]\nid='a'\ncores=1e6\nspeed=1e6\n").is_ok());
        assert!(parse(
            "[[device]]\nid='a'\ncores=1\nnetwork_gbps=1e-6\ndisk_mbps=1e-3\nmemory_gib=1e9\n"
        )
        .is_ok());
        assert!(parse(
            "[[device]]\nid='a'\ncores=1\nnetwork_gbps=1e6\ndisk_mbps=1e9\nmemory_gib=0\n"
        )
        .is_ok());
    }

    #[test]
    fn non_finite_and_negative_numbers() {
        let nan = rejected("[[device]]\nid='a'\ncores=1\nspeed=nan\n");
        assert_eq!(nan.kind, RejectKind::NonFinite);
        assert!(nan.reason.contains("speed"));
        let inf = rejected("[[device]]\nid='a'\ncores=1\nmemory_gib=inf\n");
        assert_eq!(inf.kind, RejectKind::NonFinite);
        let negative = rejected("[[device]]\nid='a'\ncores=1\ncost_per_hour=-1\n");
        assert_eq!(negative.kind, RejectKind::Negative);
        let zero_bandwidth = rejected("[[device]]\nid='a'\ncores=1\ndisk_mbps=0\n");
        assert_eq!(zero_bandwidth.kind, RejectKind::Schema);
    }

    #[test]
    fn unknown_keys() {
        let rejection = rejected("[[device]]\nid='a'\ncores=1\ncpus=4\n");
        assert_eq!(rejection.kind, RejectKind::Schema);
        assert!(rejection.reason.contains("cpus"));
        assert_eq!(
            rejected("[[devices]]\nid='a'\ncores=1\n").kind,
            RejectKind::Schema
        );
    }

    #[test]
    fn empty_device_list_and_bad_syntax() {
        assert_eq!(rejected("").kind, RejectKind::Schema);
        assert_eq!(rejected("[[device]\n").kind, RejectKind::Parse);
        assert_eq!(
            rejected("[[device]]\nid='a'\ncores='many'\n").kind,
            RejectKind::Schema
        );
        assert_eq!(
            rejected("[[device]]\nid=''\ncores=1\n").kind,
            RejectKind::Schema
        );
    }

    #[test]
    fn unreadable_file_is_io() {
        let rejection = read_platform(Path::new("/nonexistent/augur/platform.toml"));
        assert!(matches!(
            rejection,
            Err(Rejection {
                kind: RejectKind::Io,
                ..
            })
        ));
    }

    #[test]
    fn from_machines_unions_by_name() {
        let machine = |name: &str, cores, mhz| Machine {
            name: name.to_string(),
            cores,
            speed_mhz: mhz,
            memory_bytes: Some(1 << 30),
        };
        let platform = platform_from_machines(&[
            machine("a", Some(48), Some(2400.0)),
            machine("b", None, None),
            machine("a", Some(96), Some(1200.0)),
        ]);
        assert_eq!(platform.devices.len(), 2);
        assert_eq!(platform.devices[0].cores, 48.0);
        // The only clock is the reference: its tasks replay in their recorded times.
        assert_eq!(platform.devices[0].speed, 1.0);
        assert_eq!(platform.devices[1].cores, 1.0);
        assert_eq!(platform.devices[1].speed, 1.0);
        assert_eq!(platform.devices[1].memory_bytes, Some(1 << 30));
    }

    #[test]
    fn machine_speeds_are_relative_to_the_most_common_clock() {
        let machine = |name: &str, mhz| Machine {
            name: name.to_string(),
            cores: Some(8),
            speed_mhz: mhz,
            memory_bytes: None,
        };
        let platform = platform_from_machines(&[
            machine("a", Some(1200.0)),
            machine("b", Some(1432.0)),
            machine("c", Some(1200.0)),
            machine("d", Some(2400.0)),
            machine("e", None),
            machine("f", Some(1000.0)),
        ]);
        let speeds: Vec<f64> = platform.devices.iter().map(|d| d.speed).collect();
        assert_eq!(
            speeds,
            vec![1.0, 1.432 / 1.2, 1.0, 2.4 / 1.2, 1.0, 1.0 / 1.2]
        );
        // Equally common clocks: the lowest is the reference.
        let platform =
            platform_from_machines(&[machine("a", Some(2400.0)), machine("b", Some(1200.0))]);
        let speeds: Vec<f64> = platform.devices.iter().map(|d| d.speed).collect();
        assert_eq!(speeds, vec![2.0, 1.0]);
    }

    /// Every task of a real instance recorded on machines of two clocks (three machines at
    /// 1,200 MHz, one at 1,432) replays on its own machine in its recorded time once restated,
    /// where it ran 1.19x faster on the 1,432-MHz machine before.
    #[test]
    fn each_task_replays_on_its_own_machine_in_its_recorded_time() {
        let Some(shared) = crate::testing::shared_data() else {
            return;
        };
        let path =
            shared.join("wfinstances/pegasus/1000genome/1000genome-chameleon-22ch-250k-001.json");
        let read = super::super::wfformat::read_workflow(&path);
        let mut workflow = read.workflow.expect("the instance reads");
        let recorded: Vec<f64> = workflow.tasks.iter().map(|t| t.runtime_s).collect();
        let machines = workflow.machines.clone();
        let platform = platform_from_machines(&machines);
        let scaling = scale_to_recorded_clocks(&mut workflow, &machines);
        assert_eq!(
            scaling,
            ClockScaling {
                scaled: 249,
                unknown_machine: 0,
                capped: 0
            }
        );
        assert_eq!(reference_clock(&machines), Some(1.2));
        let mut faster = 0;
        for (task, recorded) in workflow.tasks.iter().zip(&recorded) {
            let name = task
                .machine
                .as_deref()
                .expect("every task names its machine");
            let device = &platform.devices[platform.index_of(name).expect("a listed machine")];
            let replayed = task.runtime_s / device.speed;
            assert!(
                (replayed - recorded).abs() <= 1e-9 * recorded.max(1.0),
                "{}: {replayed} s against {recorded} s recorded on {name}",
                task.id
            );
            faster += usize::from(device.speed > 1.0);
        }
        assert_eq!(faster, 249);
        let notes = scaling.notes(reference_clock(&machines));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with(
            "249 tasks ran on machines of another clock than the most common (1200 MHz)"
        ));
    }

    #[test]
    fn tasks_on_unlisted_or_clockless_machines_keep_their_runtimes() {
        use super::super::wfformat::{WfTask, Workflow};
        let machine = |name: &str, mhz| Machine {
            name: name.to_string(),
            cores: Some(8),
            speed_mhz: mhz,
            memory_bytes: None,
        };
        let task = |machine: Option<&str>| WfTask {
            id: "t".into(),
            name: "t".into(),
            category: None,
            runtime_s: 10.0,
            cores: 1.0,
            memory_bytes: None,
            avg_cpu_pct: None,
            read_bytes: None,
            written_bytes: None,
            input_bytes: 0,
            output_bytes: 0,
            parents: Vec::new(),
            children: Vec::new(),
            alternatives: Vec::new(),
            machine: machine.map(str::to_string),
        };
        let mut workflow = Workflow {
            name: "w".into(),
            path: "w.json".into(),
            tasks: vec![
                task(Some("fast")),
                task(Some("gone")),
                task(Some("bare")),
                task(None),
                task(Some("base")),
                task(Some("fast")),
                task(Some("fast")),
            ],
            edges: Vec::new(),
            machines: Vec::new(),
            notes: Vec::new(),
        };
        let machines = [
            machine("base", Some(1000.0)),
            machine("base2", Some(1000.0)),
            machine("fast", Some(3000.0)),
            machine("bare", None),
        ];
        // One that takes no time is not restated; one past the limit is held there.
        workflow.tasks[5].runtime_s = 0.0;
        workflow.tasks[6].runtime_s = 5e8;
        let scaling = scale_to_recorded_clocks(&mut workflow, &machines);
        let runtimes: Vec<f64> = workflow.tasks.iter().map(|t| t.runtime_s).collect();
        assert_eq!(
            runtimes,
            vec![30.0, 10.0, 10.0, 10.0, 10.0, 0.0, MAX_DURATION_S]
        );
        assert_eq!(
            scaling,
            ClockScaling {
                scaled: 2,
                unknown_machine: 1,
                capped: 1
            }
        );
        let notes = scaling.notes(Some(1.0));
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(
            notes[0].starts_with(
                "2 tasks ran on machines of another clock than the most common (1000 MHz)"
            ),
            "{notes:?}"
        );
        assert!(notes[1].starts_with("1 task names a machine"), "{notes:?}");
        // No clock at all: nothing to restate to.
        let scaling = scale_to_recorded_clocks(&mut workflow, &[machine("bare", None)]);
        assert_eq!(scaling, ClockScaling::default());
        assert_eq!(workflow.tasks[0].runtime_s, 30.0);
    }
}
