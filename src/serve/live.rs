//! Live metric producers inside `augur serve`: this host (`--collect INTERVAL`) and node_exporter
//! targets (`--node-exporter URL=DEVICE`), sampled on a fixed clock by one thread and pushed
//! through the service's own channel, so they get the same validation, reordering and counters
//! as `POST /v1/metrics`. The thread ends when the service refuses with 503 (it is stopping).

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::collect::args::capacity_of;
use crate::collect::{now_ms, Capacity, Collector, HostCollector};
use crate::input::platform::Platform;
use crate::prometheus::node_exporter::NodeExporterScraper;

use super::ServiceHandle;

/// What to sample while serving, as validated from the flags.
#[derive(Clone, Debug, Default)]
pub struct LiveConfig {
    /// Sample this host every interval, as this device (`None`: the host name).
    pub host: Option<(Duration, Option<String>)>,
    /// node_exporter targets `(url, device)`, scraped every `scrape_interval`.
    pub node_exporters: Vec<(String, String)>,
    /// How often the node_exporter targets are scraped.
    pub scrape_interval: Duration,
}

impl LiveConfig {
    /// Whether anything is to be sampled.
    pub fn is_empty(&self) -> bool {
        self.host.is_none() && self.node_exporters.is_empty()
    }
}

/// Parses `URL=DEVICE` (the device must name a platform device for its samples to be accepted).
pub fn parse_target(text: &str) -> Result<(String, String), String> {
    match text.rsplit_once('=') {
        Some((url, device)) if !url.is_empty() && !device.is_empty() => {
            Ok((url.to_string(), device.to_string()))
        }
        _ => Err(format!("'{text}' is not URL=DEVICE")),
    }
}

/// One collector on its own clock.
pub struct Scheduled {
    collector: Box<dyn Collector>,
    every: Duration,
    next: Instant,
    /// Refusals and failures reported so far (the first few are printed, then every 100th).
    complaints: u64,
}

impl Scheduled {
    fn complain(&mut self, message: String) {
        self.complaints += 1;
        if self.complaints <= 3 || self.complaints.is_multiple_of(100) {
            crate::say!(
                "augur serve: live samples of {} ({}x): {message}",
                self.collector.device(),
                self.complaints
            );
        }
    }
}

/// Refuses a live source for a device the platform does not have: every sample it took would
/// be refused, for as long as the service ran, with nothing but a line on stderr to say so.
fn known_device(platform: &Platform, device: &str, flag: &str) -> Result<(), String> {
    if platform.devices.iter().any(|known| known.id == device) {
        return Ok(());
    }
    let names: Vec<&str> = platform.devices.iter().map(|d| d.id.as_str()).collect();
    Err(format!(
        "{flag}: '{device}' is not a device of the platform ({}); its samples would all be \
         refused",
        names.join(", ")
    ))
}

/// Builds the collectors (before the service starts, so a bad target is a usage error).
/// Bandwidths for disk and network utilisation come from each device's platform entry where it
/// gives them.
pub fn prepare(config: &LiveConfig, platform: &Platform) -> Result<Vec<Scheduled>, String> {
    let start = Instant::now();
    let mut scheduled = Vec::new();
    if let Some((every, device)) = &config.host {
        let collector = HostCollector::new(device.clone(), Capacity::DEFAULT);
        let flag = if device.is_some() {
            "--collect-device"
        } else {
            "--collect (this host's name; name a platform device with --collect-device)"
        };
        known_device(platform, collector.device(), flag)?;
        let capacity = capacity_of(Some(platform), collector.device(), Capacity::DEFAULT);
        let collector = HostCollector::new(Some(collector.device().to_string()), capacity);
        scheduled.push(Scheduled {
            collector: Box::new(collector),
            every: *every,
            next: start,
            complaints: 0,
        });
    }
    for (url, device) in &config.node_exporters {
        known_device(platform, device, &format!("--node-exporter {url}"))?;
        let capacity = capacity_of(Some(platform), device, Capacity::DEFAULT);
        let timeout = config
            .scrape_interval
            .clamp(Duration::from_secs(1), Duration::from_secs(10));
        let scraper = NodeExporterScraper::new(url, Some(device.clone()), capacity, timeout)
            .map_err(|error| format!("--node-exporter {url}: {error}"))?;
        scheduled.push(Scheduled {
            collector: Box::new(scraper),
            every: config.scrape_interval,
            next: start,
            complaints: 0,
        });
    }
    Ok(scheduled)
}

/// Starts the sampling thread; `None` when there is nothing to sample.
pub fn start(
    handle: ServiceHandle,
    scheduled: Vec<Scheduled>,
) -> Result<Option<JoinHandle<()>>, String> {
    if scheduled.is_empty() {
        return Ok(None);
    }
    let thread = std::thread::Builder::new()
        .name("augur-live".into())
        .spawn(move || sample_until_stopped(&handle, scheduled))
        .map_err(|error| format!("could not start the sampling thread: {error}"))?;
    Ok(Some(thread))
}

fn sample_until_stopped(handle: &ServiceHandle, mut scheduled: Vec<Scheduled>) {
    loop {
        let Some(due) = scheduled.iter().map(|s| s.next).min() else {
            return;
        };
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let now = Instant::now();
        for source in scheduled.iter_mut().filter(|s| s.next <= now) {
            // A round that overran skips the ticks it missed rather than bursting.
            while source.next <= now {
                source.next += source.every;
            }
            let sampled = match source.collector.sample(now_ms()) {
                Ok(sampled) => sampled,
                Err(error) => {
                    source.complain(error.to_string());
                    continue;
                }
            };
            if sampled.records.is_empty() {
                continue;
            }
            let records = (1..).zip(sampled.records).collect();
            match handle.push_samples(records, super::body_rejections::BodyRejections::new()) {
                Ok(_) => {}
                Err(refusal) if refusal.status == 503 => return,
                Err(refusal) => {
                    let first = refusal
                        .rejections
                        .first()
                        .map_or_else(String::new, |r| r.reason.clone());
                    source.complain(format!("refused ({}): {first}", refusal.status));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_url_equals_device() {
        assert_eq!(
            parse_target("http://127.0.0.1:9100=node-a"),
            Ok(("http://127.0.0.1:9100".into(), "node-a".into()))
        );
        assert!(parse_target("http://127.0.0.1:9100").is_err());
        assert!(parse_target("=dev").is_err());
        assert!(parse_target("http://x=").is_err());
    }
}
