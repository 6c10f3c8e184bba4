//! `augur collect`: utilisation metrics from live sources, in the `long` metric format that
//! `augur run --metrics` reads (every value a fraction of capacity, times in seconds).
//!
//! Sources, each a [`Collector`] that a caller samples at its own pace:
//!
//! - [`HostCollector`]: this host through `sysinfo` (the default source).
//! - [`NodeExporterScraper`]: a node_exporter's `/metrics` page (`--node-exporter URL`).
//!
//! and, read once rather than sampled, a Prometheus server's history (`--prometheus URL`,
//! [`crate::prometheus::query_range`]). The sampling loop, the output file and the signals live
//! in [`sampling`]; the collectors know nothing of them, so `augur serve` can sample the same
//! collectors on its own clock and feed the records to its engine.

pub mod args;
pub mod counters;
pub mod host;
pub mod sampling;
pub mod sink;

pub use args::{parse_duration, CollectArgs, CollectConfig, Mode};
pub use host::HostCollector;
pub use sampling::{collect, CollectSummary};

use augur_dataflows::types::Time;

use crate::input::metrics::MetricRecord;
use crate::prometheus::{NodeExporterScraper, PromError};

/// Disk and network bandwidth that throughput is measured against, bytes per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    /// Disk bandwidth (read + written), for sources that only know bytes.
    pub disk_bytes_per_s: f64,
    /// Network bandwidth (received + transmitted).
    pub network_bytes_per_s: f64,
}

impl Capacity {
    /// 200 MB/s of disk (a SATA SSD's sustained rate, and the demo platform's `disk_mbps`) and
    /// 1 Gbit/s of network: what is assumed when neither the flags nor a platform say.
    pub const DEFAULT: Capacity = Capacity {
        disk_bytes_per_s: 200e6,
        network_bytes_per_s: 125e6,
    };
}

/// What one sample gave: records, and what could not be measured this time (not an error: a
/// counter has no rate on the first sample, an exporter may lack a collector).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sampled {
    /// Utilisation records, all stamped with the sample's time.
    pub records: Vec<MetricRecord>,
    /// Why a resource is absent, one line each.
    pub missing: Vec<String>,
}

/// A live source of utilisation records. The first sample sets counters' baselines and gives
/// only gauges (memory); later ones give rates over the time since the previous sample.
pub trait Collector: Send {
    /// The device the records are about.
    fn device(&self) -> &str;

    /// Samples now (`now`: Unix epoch milliseconds, the records' time).
    fn sample(&mut self, now: Time) -> Result<Sampled, CollectError>;
}

impl Collector for HostCollector {
    fn device(&self) -> &str {
        HostCollector::device(self)
    }

    fn sample(&mut self, now: Time) -> Result<Sampled, CollectError> {
        Ok(HostCollector::sample(self, now))
    }
}

impl Collector for NodeExporterScraper {
    fn device(&self) -> &str {
        NodeExporterScraper::device(self)
    }

    fn sample(&mut self, now: Time) -> Result<Sampled, CollectError> {
        self.scrape(now).map_err(|source| CollectError::Source {
            source_name: self.url().to_string(),
            source,
        })
    }
}

/// Why `augur collect` stopped.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// A flag is invalid or flags contradict each other (a usage error).
    #[error("{0}")]
    Flag(String),
    /// The platform file could not be read.
    #[error("{0}")]
    Platform(String),
    /// A source failed (a scrape or a query).
    #[error("{source_name}: {source}")]
    Source {
        /// The URL of the source.
        source_name: String,
        /// What failed.
        source: PromError,
    },
    /// The output could not be written.
    #[error("writing {path}: {source}")]
    Output {
        /// The output file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// Ctrl-C and SIGTERM could not be caught.
    #[error("installing the signal handlers: {0}")]
    Signal(std::io::Error),
    /// The run ended without a single record (every scrape failed, or the history was empty).
    #[error("no records collected: {0}")]
    Nothing(String),
}

/// The wall clock as the records' time: Unix epoch milliseconds.
pub fn now_ms() -> Time {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Time::try_from(since_epoch.as_millis()).unwrap_or(Time::MAX)
}
