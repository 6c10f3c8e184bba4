//! This host as one device, through `sysinfo`.
//!
//! The rules, per sample after the first (which sets the baselines and yields memory only):
//!
//! - **cpu**: busy share of all CPUs since the previous sample (`sysinfo`'s global CPU usage,
//!   which is 1 − Δidle/Δtotal over `/proc/stat` on Linux), as a fraction.
//! - **memory**: 1 − available / total (available counts reclaimable cache as free, the same
//!   rule as node_exporter's `MemAvailable`).
//! - **disk**: bytes read + written per second, summed over the mounted disks (each counted
//!   once, however many times it is mounted), over the disk bandwidth.
//! - **network**: bytes received + transmitted per second over every interface but `lo`, over
//!   the network bandwidth.
//!
//! The bandwidths come from the device's entry in `--platform`, else `--disk-bytes-per-s` and
//! `--net-bytes-per-s`, else [`Capacity::DEFAULT`]. cpu and memory are clamped to [0, 1];
//! disk and network keep values above 1 (more than the assumed bandwidth).

use augur_dataflows::types::{Resource, Time};
use sysinfo::{Disks, Networks, System};

use super::counters::{total_increase, CounterReadings};
use super::{Capacity, Sampled};
use crate::input::metrics::MetricRecord;

/// Samples this host.
pub struct HostCollector {
    device: String,
    capacity: Capacity,
    system: System,
    disks: Disks,
    networks: Networks,
    /// The previous sample's time and byte counters.
    previous: Option<(Time, CounterReadings, CounterReadings)>,
}

impl std::fmt::Debug for HostCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCollector")
            .field("device", &self.device)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl HostCollector {
    /// A collector reporting as `device` (default: the host name, else `localhost`).
    pub fn new(device: Option<String>, capacity: Capacity) -> HostCollector {
        HostCollector {
            device: device.unwrap_or_else(default_device),
            capacity,
            system: System::new(),
            disks: Disks::new_with_refreshed_list(),
            networks: Networks::new_with_refreshed_list(),
            previous: None,
        }
    }

    /// The device the records are about.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Samples now; `now` stamps the records and measures the interval for rates.
    pub fn sample(&mut self, now: Time) -> Sampled {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        // `true` drops disks and interfaces that went away; new ones are picked up too.
        self.disks.refresh(true);
        self.networks.refresh(true);
        let mut readings = Vec::new();
        let mut missing = Vec::new();
        let total = self.system.total_memory();
        if total > 0 {
            let available = self.system.available_memory().min(total);
            readings.push((Resource::Memory, 1.0 - available as f64 / total as f64));
        } else {
            missing.push("memory: the total memory is unknown".to_string());
        }
        let disk_bytes = self.disk_bytes();
        let network_bytes = self.network_bytes();
        if let Some((then, previous_disk, previous_network)) = &self.previous {
            let seconds = (now - then) as f64 / 1000.0;
            if seconds > 0.0 {
                let cpu = f64::from(self.system.global_cpu_usage()) / 100.0;
                if cpu.is_finite() {
                    readings.push((Resource::Cpu, cpu.clamp(0.0, 1.0)));
                } else {
                    missing.push("cpu: no usage reported".to_string());
                }
                match total_increase(previous_disk, &disk_bytes) {
                    Some(bytes) => readings.push((
                        Resource::Disk,
                        bytes / seconds / self.capacity.disk_bytes_per_s,
                    )),
                    None => missing.push("disk: no disk with I/O counters found".to_string()),
                }
                match total_increase(previous_network, &network_bytes) {
                    Some(bytes) => readings.push((
                        Resource::Network,
                        bytes / seconds / self.capacity.network_bytes_per_s,
                    )),
                    None => missing.push("network: no interface besides lo found".to_string()),
                }
            } else {
                missing.push("cpu, disk, network: no time passed since the previous sample".into());
            }
        }
        self.previous = Some((now, disk_bytes, network_bytes));
        readings.retain(|(_, value)| value.is_finite() && *value >= 0.0);
        readings.sort_by_key(|(resource, _)| *resource);
        Sampled {
            records: readings
                .into_iter()
                .map(|(resource, value)| MetricRecord {
                    time: now,
                    device: self.device.clone(),
                    resource,
                    value,
                })
                .collect(),
            missing,
        }
    }

    /// Cumulative bytes per disk and direction; a disk mounted at several places once.
    fn disk_bytes(&self) -> CounterReadings {
        let mut bytes = CounterReadings::new();
        for disk in self.disks.list() {
            let name = disk.name().to_string_lossy();
            let usage = disk.usage();
            bytes.insert(format!("{name}/read"), usage.total_read_bytes as f64);
            bytes.insert(format!("{name}/written"), usage.total_written_bytes as f64);
        }
        bytes
    }

    /// Cumulative bytes per interface (not `lo`) and direction.
    fn network_bytes(&self) -> CounterReadings {
        let mut bytes = CounterReadings::new();
        for (name, data) in self.networks.list() {
            if name == "lo" {
                continue;
            }
            bytes.insert(format!("{name}/rx"), data.total_received() as f64);
            bytes.insert(format!("{name}/tx"), data.total_transmitted() as f64);
        }
        bytes
    }
}

/// The host name, the device's natural name.
pub fn default_device() -> String {
    System::host_name()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_is_memory_then_every_resource() {
        let mut host = HostCollector::new(Some("me".into()), Capacity::DEFAULT);
        let first = host.sample(1_000);
        assert_eq!(
            first.records.iter().map(|r| r.resource).collect::<Vec<_>>(),
            vec![Resource::Memory]
        );
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let second = host.sample(1_300);
        for record in &second.records {
            assert_eq!((record.time, record.device.as_str()), (1_300, "me"));
            assert!(
                record.value.is_finite() && record.value >= 0.0,
                "{record:?}"
            );
            if matches!(record.resource, Resource::Cpu | Resource::Memory) {
                assert!(record.value <= 1.0, "{record:?}");
            }
        }
        assert!(second.records.iter().any(|r| r.resource == Resource::Cpu));
        let same_time = host.sample(1_300);
        assert!(same_time
            .missing
            .iter()
            .any(|m| m.contains("no time passed")));
    }
}
