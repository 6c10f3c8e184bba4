//! node_exporter's counters to utilisation, and the scraper that reads them at an interval.
//!
//! The rules, per scrape after the first (which only sets the baseline and yields memory):
//!
//! - **cpu** = 1 − Δidle / Δall over every CPU, from `node_cpu_seconds_total{cpu, mode}` (Δall
//!   sums every mode: user, system, nice, iowait, irq, softirq, steal, idle).
//! - **memory** = 1 − `node_memory_MemAvailable_bytes` / `node_memory_MemTotal_bytes` (a gauge:
//!   every scrape, the first included). "Available" counts reclaimable cache as free, as the
//!   kernel's own estimate of what a new task could get.
//! - **disk** = the busiest disk's busy fraction, max over disks of
//!   Δ`node_disk_io_time_seconds_total` / Δt: a task doing I/O waits on the disk it uses, so the
//!   busiest disk is the contended one (and a device-mapper volume over a disk counts the same
//!   busy time twice, which a sum would double). Without `io_time`, read + written bytes/s
//!   (`node_disk_read_bytes_total`, `node_disk_written_bytes_total`, summed over disks) over the
//!   configured disk bandwidth.
//! - **network** = received + transmitted bytes/s over every interface but `lo`
//!   (`node_network_{receive,transmit}_bytes_total`), over the configured network bandwidth.
//!
//! cpu, memory and disk are clamped to [0, 1] (a busy fraction cannot exceed 1; scrape jitter
//! can make Δio_time a hair longer than Δt); network keeps values above 1, which mean more
//! traffic than the configured bandwidth. Counters that go down were reset and count from zero
//! ([`crate::collect::counters`]). A metric the page lacks is reported in
//! [`Sampled::missing`], never fatal: node_exporter's collectors differ by platform and flags.

use std::time::Duration;

use augur_dataflows::types::{Resource, Time};

use super::exposition::{parse_exposition, Exposition};
use super::PromError;
use crate::collect::counters::{increases, total_increase, CounterReadings};
use crate::collect::{Capacity, Sampled};
use crate::http_client::{get, HttpUrl};
use crate::input::metrics::MetricRecord;

/// What one page says, in counters (per series) and gauges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeSnapshot {
    /// Idle seconds per CPU.
    pub cpu_idle: CounterReadings,
    /// Seconds per CPU and mode, every mode.
    pub cpu_all: CounterReadings,
    /// `MemAvailable`, bytes.
    pub memory_available: Option<f64>,
    /// `MemTotal`, bytes.
    pub memory_total: Option<f64>,
    /// Busy seconds per disk.
    pub disk_io_time: CounterReadings,
    /// Bytes read and written, per disk and direction.
    pub disk_bytes: CounterReadings,
    /// Bytes received and transmitted, per interface (not `lo`) and direction.
    pub network_bytes: CounterReadings,
}

impl NodeSnapshot {
    /// Picks the series the rules use out of a parsed page; everything else is ignored.
    pub fn from_exposition(page: &Exposition) -> NodeSnapshot {
        let mut snapshot = NodeSnapshot::default();
        for sample in &page.samples {
            let label = |name: &str| sample.label(name).unwrap_or("");
            match sample.name.as_str() {
                "node_cpu_seconds_total" => {
                    let (cpu, mode) = (label("cpu"), label("mode"));
                    snapshot
                        .cpu_all
                        .insert(format!("{cpu}/{mode}"), sample.value);
                    if mode == "idle" {
                        snapshot.cpu_idle.insert(cpu.to_string(), sample.value);
                    }
                }
                "node_memory_MemAvailable_bytes" => snapshot.memory_available = Some(sample.value),
                "node_memory_MemTotal_bytes" => snapshot.memory_total = Some(sample.value),
                "node_disk_io_time_seconds_total" => {
                    snapshot
                        .disk_io_time
                        .insert(label("device").to_string(), sample.value);
                }
                "node_disk_read_bytes_total" | "node_disk_written_bytes_total" => {
                    let direction = if sample.name.contains("read") {
                        "read"
                    } else {
                        "written"
                    };
                    snapshot
                        .disk_bytes
                        .insert(format!("{}/{direction}", label("device")), sample.value);
                }
                "node_network_receive_bytes_total" | "node_network_transmit_bytes_total"
                    if label("device") != "lo" =>
                {
                    let direction = if sample.name.contains("receive") {
                        "rx"
                    } else {
                        "tx"
                    };
                    snapshot
                        .network_bytes
                        .insert(format!("{}/{direction}", label("device")), sample.value);
                }
                _ => {}
            }
        }
        snapshot
    }
}

/// Utilisation per resource from the previous page (with its time) to this one.
pub fn utilisation(
    previous: Option<(Time, &NodeSnapshot)>,
    now: Time,
    current: &NodeSnapshot,
    capacity: &Capacity,
) -> (Vec<(Resource, f64)>, Vec<String>) {
    let mut readings = Vec::new();
    let mut missing = Vec::new();
    match (current.memory_available, current.memory_total) {
        (Some(available), Some(total))
            if total > 0.0 && total.is_finite() && available.is_finite() =>
        {
            readings.push((Resource::Memory, (1.0 - available / total).clamp(0.0, 1.0)));
        }
        (Some(available), Some(total)) => missing.push(if total > 0.0 && total.is_finite() {
            format!("memory: MemAvailable_bytes is {available}, not a number of bytes")
        } else {
            format!("memory: MemTotal_bytes is {total}, not a positive number")
        }),
        _ => missing.push(
            "memory: node_memory_MemAvailable_bytes or node_memory_MemTotal_bytes not exposed"
                .into(),
        ),
    }
    let Some((then, previous)) = previous else {
        // The first page only sets the counters' baseline.
        return (readings, missing);
    };
    let seconds = (now - then) as f64 / 1000.0;
    if seconds <= 0.0 {
        missing.push("cpu, disk, network: no time passed since the previous scrape".into());
        return (readings, missing);
    }
    // A CPU counts whole or not at all: one whose idle counter (or any other mode's) is NaN,
    // missing or unusable on either page is left out, since summing the modes it has with the
    // idle time it lacks (or the other way round) would read it busier or idler than it was.
    let idle = increases(&previous.cpu_idle, &current.cpu_idle);
    let all = increases(&previous.cpu_all, &current.cpu_all);
    let cpu_of = |series: &str| -> String {
        series
            .rsplit_once('/')
            .map_or(series, |(cpu, _)| cpu)
            .to_string()
    };
    let incomplete: std::collections::BTreeSet<String> = current
        .cpu_all
        .keys()
        .filter(|series| !all.contains_key(*series))
        .map(|series| cpu_of(series))
        .collect();
    let counted = |cpu: &str| idle.contains_key(cpu) && !incomplete.contains(cpu);
    let (mut idle_time, mut all_time, mut cpus) = (0.0, 0.0, 0usize);
    for (cpu, increase) in &idle {
        if counted(cpu) {
            idle_time += increase;
            cpus += 1;
        }
    }
    for (series, increase) in &all {
        if counted(&cpu_of(series)) {
            all_time += increase;
        }
    }
    if cpus == 0 {
        missing.push(
            "cpu: node_cpu_seconds_total{mode=\"idle\"} not exposed, or no CPU's counters usable"
                .into(),
        );
    } else if all_time > 0.0 {
        readings.push((Resource::Cpu, (1.0 - idle_time / all_time).clamp(0.0, 1.0)));
    } else {
        missing.push("cpu: the CPU counters did not advance".into());
    }
    let busy = increases(&previous.disk_io_time, &current.disk_io_time);
    let disk_bytes = total_increase(&previous.disk_bytes, &current.disk_bytes);
    if !busy.is_empty() {
        let busiest = busy.values().fold(0.0_f64, |most, &b| most.max(b));
        readings.push((Resource::Disk, (busiest / seconds).clamp(0.0, 1.0)));
    } else if let Some(bytes) = disk_bytes {
        readings.push((Resource::Disk, bytes / seconds / capacity.disk_bytes_per_s));
    } else {
        missing.push(
            "disk: neither node_disk_io_time_seconds_total nor node_disk_*_bytes_total exposed"
                .into(),
        );
    }
    match total_increase(&previous.network_bytes, &current.network_bytes) {
        Some(bytes) => readings.push((
            Resource::Network,
            bytes / seconds / capacity.network_bytes_per_s,
        )),
        None => missing.push("network: node_network_*_bytes_total not exposed (besides lo)".into()),
    }
    // A capacity of zero or a huge counter could still give a non-finite fraction.
    readings.retain(|(_, value)| value.is_finite() && *value >= 0.0);
    readings.sort_by_key(|(resource, _)| *resource);
    (readings, missing)
}

/// Scrapes one node_exporter and turns each page into utilisation records of one device.
#[derive(Debug)]
pub struct NodeExporterScraper {
    url: HttpUrl,
    device: String,
    capacity: Capacity,
    timeout: Duration,
    previous: Option<(Time, NodeSnapshot)>,
}

impl NodeExporterScraper {
    /// A scraper of `url` (`http://host:port`, `/metrics` added when it has no path), reporting
    /// as `device` (default: the target's `host:port`).
    pub fn new(
        url: &str,
        device: Option<String>,
        capacity: Capacity,
        timeout: Duration,
    ) -> Result<NodeExporterScraper, PromError> {
        let mut url = HttpUrl::parse(url)?;
        if url.path == "/" {
            url.path = "/metrics".to_string();
        }
        let device = device.unwrap_or_else(|| url.address());
        Ok(NodeExporterScraper {
            url,
            device,
            capacity,
            timeout,
            previous: None,
        })
    }

    /// The device the records are about.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The URL scraped.
    pub fn url(&self) -> &HttpUrl {
        &self.url
    }

    /// Scrapes now. A failed scrape leaves the baseline as it was, so the next good one
    /// measures over the whole gap.
    pub fn scrape(&mut self, now: Time) -> Result<Sampled, PromError> {
        let response = get(&self.url, self.timeout)?;
        if response.status != 200 {
            return Err(PromError::Status {
                url: self.url.to_string(),
                status: response.status,
                body: super::clip_body(&response.text()),
            });
        }
        Ok(self.observe(&response.text(), now))
    }

    /// Takes a page read at `now` (the scrape without the fetch: tests replay recorded pages).
    pub fn observe(&mut self, text: &str, now: Time) -> Sampled {
        let page = parse_exposition(text);
        let snapshot = NodeSnapshot::from_exposition(&page);
        let previous = self
            .previous
            .as_ref()
            .map(|(then, snapshot)| (*then, snapshot));
        let (readings, mut missing) = utilisation(previous, now, &snapshot, &self.capacity);
        if !page.problems.is_empty() {
            missing.push(format!(
                "{} line(s) of the page skipped (first: line {}: {})",
                page.problems.len(),
                page.problems[0].line,
                page.problems[0].reason
            ));
        }
        self.previous = Some((now, snapshot));
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPACITY: Capacity = Capacity {
        disk_bytes_per_s: 1000.0,
        network_bytes_per_s: 100.0,
    };

    fn page(idle: f64, user: f64, io: f64, rx: f64, lo: f64) -> String {
        format!(
            "node_cpu_seconds_total{{cpu=\"0\",mode=\"idle\"}} {idle}\n\
             node_cpu_seconds_total{{cpu=\"0\",mode=\"user\"}} {user}\n\
             node_memory_MemAvailable_bytes 250\nnode_memory_MemTotal_bytes 1000\n\
             node_disk_io_time_seconds_total{{device=\"sda\"}} {io}\n\
             node_disk_io_time_seconds_total{{device=\"sdb\"}} 0\n\
             node_network_receive_bytes_total{{device=\"eth0\"}} {rx}\n\
             node_network_transmit_bytes_total{{device=\"eth0\"}} 0\n\
             node_network_receive_bytes_total{{device=\"lo\"}} {lo}\n"
        )
    }

    fn value(sampled: &Sampled, resource: Resource) -> Option<f64> {
        sampled
            .records
            .iter()
            .find(|record| record.resource == resource)
            .map(|record| record.value)
    }

    #[test]
    fn first_page_gives_memory_only_then_rates() {
        let mut scraper =
            NodeExporterScraper::new("http://h:1", Some("d".into()), CAPACITY, Duration::ZERO)
                .expect("url");
        let first = scraper.observe(&page(10.0, 10.0, 1.0, 0.0, 0.0), 1_000);
        assert_eq!(first.records.len(), 1);
        assert_eq!(value(&first, Resource::Memory), Some(0.75));
        assert!(first.missing.is_empty(), "{:?}", first.missing);
        // 2 s later: idle +1, user +3 => 75% busy; sda busy 1 of 2 s; 400 bytes in 2 s at
        // 100 B/s = 2.0 (over-commit kept); lo's traffic ignored.
        let second = scraper.observe(&page(11.0, 13.0, 2.0, 400.0, 1e9), 3_000);
        assert_eq!(value(&second, Resource::Cpu), Some(0.75));
        assert_eq!(value(&second, Resource::Disk), Some(0.5));
        assert_eq!(value(&second, Resource::Network), Some(2.0));
        assert!(second
            .records
            .iter()
            .all(|r| r.time == 3_000 && r.device == "d"));
    }

    #[test]
    fn a_cpu_whose_idle_counter_is_unreadable_is_left_out_not_read_as_busy() {
        let two_cpus = |idle1: &str, other: f64| {
            format!(
                "node_cpu_seconds_total{{cpu=\"0\",mode=\"idle\"}} {other}\n\
                 node_cpu_seconds_total{{cpu=\"0\",mode=\"user\"}} {other}\n\
                 node_cpu_seconds_total{{cpu=\"1\",mode=\"idle\"}} {idle1}\n\
                 node_cpu_seconds_total{{cpu=\"1\",mode=\"user\"}} {other}\n\
                 node_memory_MemAvailable_bytes 250\nnode_memory_MemTotal_bytes 1000\n"
            )
        };
        let mut scraper =
            NodeExporterScraper::new("http://h:1", None, CAPACITY, Duration::ZERO).expect("url");
        scraper.observe(&two_cpus("10", 10.0), 0);
        // CPU 0 was half busy; CPU 1's idle counter reads NaN, so it says nothing. Counting
        // its user time without its idle time read 2/3 busy.
        let after = scraper.observe(&two_cpus("NaN", 12.0), 2_000);
        assert_eq!(value(&after, Resource::Cpu), Some(0.5));
        // The other way round: CPU 1's idle time is readable, its user time not.
        let other = |user1: &str, idle: f64, user0: f64| {
            format!(
                "node_cpu_seconds_total{{cpu=\"0\",mode=\"idle\"}} {idle}\n\
                 node_cpu_seconds_total{{cpu=\"0\",mode=\"user\"}} {user0}\n\
                 node_cpu_seconds_total{{cpu=\"1\",mode=\"idle\"}} {idle}\n\
                 node_cpu_seconds_total{{cpu=\"1\",mode=\"user\"}} {user1}\n"
            )
        };
        let mut scraper =
            NodeExporterScraper::new("http://h:1", None, CAPACITY, Duration::ZERO).expect("url");
        scraper.observe(&other("10", 10.0, 10.0), 0);
        // CPU 0: idle +1, user +3. CPU 1's user counter went NaN: counting its idle second
        // without its busy ones read 3/5 busy, not 3/4.
        let after = scraper.observe(&other("NaN", 11.0, 13.0), 2_000);
        assert_eq!(value(&after, Resource::Cpu), Some(0.75));
    }

    #[test]
    fn counter_reset_counts_from_zero() {
        let mut scraper =
            NodeExporterScraper::new("http://h:1", None, CAPACITY, Duration::ZERO).expect("url");
        assert_eq!(scraper.device(), "h:1");
        scraper.observe(&page(1000.0, 1000.0, 50.0, 1e6, 0.0), 0);
        // The exporter's host rebooted: every counter restarted.
        let after = scraper.observe(&page(1.0, 1.0, 0.5, 100.0, 0.0), 1_000);
        assert_eq!(value(&after, Resource::Cpu), Some(0.5));
        assert_eq!(value(&after, Resource::Disk), Some(0.5));
        assert_eq!(value(&after, Resource::Network), Some(1.0));
    }

    #[test]
    fn missing_metrics_are_reported_not_fatal() {
        let mut scraper =
            NodeExporterScraper::new("http://h:1", None, CAPACITY, Duration::ZERO).expect("url");
        scraper.observe("node_load1 0.5\nbroken{\n", 0);
        let sampled = scraper.observe("node_load1 0.5\n", 1_000);
        assert!(sampled.records.is_empty());
        let text = sampled.missing.join("; ");
        for resource in ["memory", "cpu", "disk", "network"] {
            assert!(text.contains(resource), "{text}");
        }
    }

    #[test]
    fn disk_bytes_when_no_io_time() {
        let snapshot = |bytes: f64| {
            NodeSnapshot::from_exposition(&parse_exposition(&format!(
            "node_disk_read_bytes_total{{device=\"sda\"}} {bytes}\nnode_disk_written_bytes_total{{device=\"sda\"}} {bytes}\n"
        )))
        };
        let (readings, _) = utilisation(
            Some((0, &snapshot(0.0))),
            2_000,
            &snapshot(500.0),
            &CAPACITY,
        );
        assert_eq!(readings, vec![(Resource::Disk, 0.5)]);
    }

    #[test]
    fn url_gets_metrics_path() {
        let scraper =
            NodeExporterScraper::new("http://127.0.0.1:9100", None, CAPACITY, Duration::ZERO)
                .expect("url");
        assert_eq!(scraper.url().path, "/metrics");
        let scraper = NodeExporterScraper::new(
            "http://127.0.0.1:9100/x/metrics",
            None,
            CAPACITY,
            Duration::ZERO,
        )
        .expect("url");
        assert_eq!(scraper.url().path, "/x/metrics");
    }
}
