//! Flags of `augur collect` as given ([`CollectArgs`]), and their validation into a
//! [`CollectConfig`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use augur_dataflows::types::Time;

use super::sink::OutputFormat;
use super::{Capacity, CollectError, Collector, HostCollector};
use crate::input::platform::{read_platform, Platform};
use crate::input::time::parse_time_field;
use crate::prometheus::{HistoryQuery, NodeExporterScraper};

/// `--step` unless given.
const DEFAULT_STEP: Duration = Duration::from_secs(15);
/// `--rate-window` unless given.
const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);

/// Flags of `augur collect`, as given.
#[derive(Debug, Clone, clap::Args)]
pub struct CollectArgs {
    /// Output file: long-format JSONL (`.csv`: long-format CSV; `-`: JSONL on stdout).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Time between samples (`1s`, `500ms`, `1m`).
    #[arg(
        long,
        default_value = "1s",
        value_parser = parse_duration,
        value_name = "DURATION",
        conflicts_with = "prometheus"
    )]
    pub interval: Duration,
    /// Stop after this long: no round starts later; one begun by then still finishes, its
    /// scrapes within --timeout [default: until Ctrl-C or SIGTERM].
    #[arg(
        long,
        value_parser = parse_duration,
        value_name = "DURATION",
        conflicts_with = "prometheus"
    )]
    pub duration: Option<Duration>,
    /// Device names. This host: one name [default: the host name]. With --node-exporter: one per
    /// URL, in order [default: each target's host:port]. With --prometheus: INSTANCE=NAME, to
    /// rename an `instance` label [default: the label].
    #[arg(long = "device", value_name = "NAME")]
    pub devices: Vec<String>,
    /// Scrape this node_exporter instead of sampling this host (repeatable; `/metrics` is added
    /// to a URL without a path).
    #[arg(
        long = "node-exporter",
        value_name = "URL",
        conflicts_with = "prometheus"
    )]
    pub node_exporters: Vec<String>,
    /// Read history from this Prometheus server's query_range API instead of sampling.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// With --prometheus: the first time (seconds since the epoch, `YYYY-MM-DD HH:MM:SS` UTC,
    /// `now` or `now-5m`).
    #[arg(
        long,
        value_name = "TIME",
        requires = "prometheus",
        allow_hyphen_values = true
    )]
    pub start: Option<String>,
    /// With --prometheus: the last time [default: now].
    #[arg(
        long,
        value_name = "TIME",
        requires = "prometheus",
        allow_hyphen_values = true
    )]
    pub end: Option<String>,
    /// With --prometheus: the time between points [default: 15s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub step: Option<Duration>,
    /// With --prometheus: the rate() window, at least twice Prometheus' scrape interval
    /// [default: 1m].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub rate_window: Option<Duration>,
    /// Platform TOML: a device's disk_mbps and network_gbps are its bandwidths.
    #[arg(long, value_name = "FILE")]
    pub platform: Option<PathBuf>,
    /// Disk bandwidth (read + written) for devices the platform does not give [default: 200e6].
    #[arg(long, value_name = "BYTES")]
    pub disk_bytes_per_s: Option<f64>,
    /// Network bandwidth (received + transmitted) for devices the platform does not give
    /// [default: 125e6, 1 Gbit/s].
    #[arg(long, value_name = "BYTES")]
    pub net_bytes_per_s: Option<f64>,
    /// Deadline of one scrape or query.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// What to collect from.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// This host, through `sysinfo`.
    Host {
        /// Its device name.
        device: String,
        /// Its bandwidths.
        capacity: Capacity,
    },
    /// node_exporter targets.
    NodeExporters {
        /// (URL, device name, bandwidths) per target.
        targets: Vec<(String, String, Capacity)>,
        /// Deadline of one scrape.
        timeout: Duration,
    },
    /// A Prometheus server's history, read once.
    History {
        /// The server's base URL.
        url: String,
        /// The range and the naming.
        query: HistoryQuery,
    },
}

/// Validated flags.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectConfig {
    /// Where the records go.
    pub out: PathBuf,
    /// JSONL or CSV.
    pub format: OutputFormat,
    /// Time between samples (live modes).
    pub interval: Duration,
    /// How long to sample; `None` until a signal (live modes).
    pub duration: Option<Duration>,
    /// Progress lines on stderr.
    pub progress: bool,
    /// The source.
    pub mode: Mode,
}

impl CollectConfig {
    /// Validates the flags; `now` resolves `now`-relative times.
    pub fn from_args(args: &CollectArgs, now: Time) -> Result<CollectConfig, CollectError> {
        let flag = |message: String| Err(CollectError::Flag(message));
        // Found now, not after the first round of scrapes as the operating system's bare
        // "Is a directory".
        if args.out != Path::new("-") {
            if let Some(reason) = crate::cli::not_an_output_file(&args.out) {
                return flag(format!("--out: {reason}"));
            }
        }
        if args.timeout.is_zero() {
            // Every scrape would fail at once ("did not answer within 0ns").
            return flag("--timeout must be more than 0".into());
        }
        // Flags of history alone, given to a live mode, would be ignored without a word.
        if args.prometheus.is_none() {
            let given = [
                ("--start", args.start.is_some()),
                ("--end", args.end.is_some()),
                ("--step", args.step.is_some()),
                ("--rate-window", args.rate_window.is_some()),
            ];
            if let Some((name, _)) = given.iter().find(|(_, given)| *given) {
                return flag(format!("{name} reads history: it needs --prometheus"));
            }
        }
        if args.interval.is_zero() {
            return flag("--interval must be more than 0".into());
        }
        let platform = match &args.platform {
            Some(path) => Some(read_platform(path).map_err(|rejection| {
                CollectError::Platform(format!("platform {}: {}", path.display(), rejection.reason))
            })?),
            None => None,
        };
        let bandwidth = |name: &str, value: Option<f64>, default: f64| match value {
            Some(v) if v.is_finite() && v > 0.0 => Ok(v),
            Some(v) => Err(CollectError::Flag(format!(
                "--{name} must be a positive number of bytes per second, not {v}"
            ))),
            None => Ok(default),
        };
        let fallback = Capacity {
            disk_bytes_per_s: bandwidth(
                "disk-bytes-per-s",
                args.disk_bytes_per_s,
                Capacity::DEFAULT.disk_bytes_per_s,
            )?,
            network_bytes_per_s: bandwidth(
                "net-bytes-per-s",
                args.net_bytes_per_s,
                Capacity::DEFAULT.network_bytes_per_s,
            )?,
        };
        let capacity_of = |device: &str| capacity_of(platform.as_ref(), device, fallback);
        for device in &args.devices {
            if device.trim().is_empty() {
                return flag("--device must not be empty".into());
            }
        }
        let mode = if let Some(url) = &args.prometheus {
            let Some(start) = &args.start else {
                return flag("--prometheus needs --start".into());
            };
            let start = parse_time_arg(start, now)
                .map_err(|reason| CollectError::Flag(format!("--start: {reason}")))?;
            let end = match &args.end {
                Some(end) => parse_time_arg(end, now)
                    .map_err(|reason| CollectError::Flag(format!("--end: {reason}")))?,
                None => now,
            };
            if start > end {
                return flag("--start is after --end".into());
            }
            // Nothing is recorded after now: an --end of year 9999 (a typo) asked thousands of
            // empty pieces of 10,000 steps.
            if start > now {
                return flag("--start is in the future: Prometheus has no history there".into());
            }
            let end = end.min(now);
            let step_ms = duration_ms(args.step.unwrap_or(DEFAULT_STEP));
            if step_ms == 0 {
                return flag("--step must be at least 1ms".into());
            }
            let mut devices = BTreeMap::new();
            for pair in &args.devices {
                let Some((instance, name)) = pair.split_once('=') else {
                    return flag(format!(
                        "with --prometheus, --device is INSTANCE=NAME, not {pair:?}"
                    ));
                };
                let (instance, name) = (instance.trim().to_string(), name.trim().to_string());
                // Two names for one instance, or one name for two: either mixes or splits a
                // device's series without a word.
                if devices.contains_key(&instance) {
                    return flag(format!("--device names instance {instance:?} twice"));
                }
                if devices.values().any(|taken| *taken == name) {
                    return flag(format!("--device gives the name {name:?} to two instances"));
                }
                devices.insert(instance, name);
            }
            Mode::History {
                url: url.clone(),
                query: HistoryQuery {
                    start,
                    end,
                    step_ms,
                    rate_window: promql_duration(args.rate_window.unwrap_or(DEFAULT_RATE_WINDOW))?,
                    capacity: fallback,
                    // The platform's bandwidths: the query cannot know which instance is which
                    // device, so each device's series is divided by its own after it is named.
                    network_by_device: platform
                        .as_ref()
                        .map(|platform| {
                            platform
                                .devices
                                .iter()
                                .filter_map(|d| Some((d.id.clone(), d.network_bytes_per_s?)))
                                .collect()
                        })
                        .unwrap_or_default(),
                    devices,
                    timeout: args.timeout,
                },
            }
        } else if !args.node_exporters.is_empty() {
            if !args.devices.is_empty() && args.devices.len() != args.node_exporters.len() {
                return flag(format!(
                    "give one --device per --node-exporter ({} names for {} URLs), or none",
                    args.devices.len(),
                    args.node_exporters.len()
                ));
            }
            let mut targets = Vec::new();
            for (index, url) in args.node_exporters.iter().enumerate() {
                // The scraper's own rules name a target without a --device; ask it.
                let device = match args.devices.get(index) {
                    Some(device) => device.clone(),
                    None => NodeExporterScraper::new(url, None, fallback, args.timeout)
                        .map_err(|error| CollectError::Flag(format!("--node-exporter: {error}")))?
                        .device()
                        .to_string(),
                };
                let capacity = capacity_of(&device);
                // Refuse a bad URL now rather than at the first scrape.
                NodeExporterScraper::new(url, Some(device.clone()), capacity, args.timeout)
                    .map_err(|error| CollectError::Flag(format!("--node-exporter: {error}")))?;
                // Two targets under one name would write one series of two hosts' samples.
                if targets.iter().any(|(_, taken, _)| *taken == device) {
                    return flag(format!(
                        "two --node-exporter targets would both be device {device:?}; name them \
                         apart with --device"
                    ));
                }
                targets.push((url.clone(), device, capacity));
            }
            Mode::NodeExporters {
                targets,
                timeout: args.timeout,
            }
        } else {
            if args.devices.len() > 1 {
                return flag("sampling this host takes at most one --device".into());
            }
            // The host's CPU counters refresh at most this often: faster samples repeat the
            // last share (the first 200 ms of 1-ms samples all read the share since boot).
            if args.interval < sysinfo::MINIMUM_CPU_UPDATE_INTERVAL {
                return flag(format!(
                    "--interval below {} ms: this host's CPU counters refresh no faster",
                    sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.as_millis()
                ));
            }
            let device = args
                .devices
                .first()
                .cloned()
                .unwrap_or_else(super::host::default_device);
            Mode::Host {
                capacity: capacity_of(&device),
                device,
            }
        };
        let format = OutputFormat::for_path(&args.out);
        if format == OutputFormat::Csv {
            let names: Vec<&str> = match &mode {
                Mode::Host { device, .. } => vec![device],
                Mode::NodeExporters { targets, .. } => targets
                    .iter()
                    .map(|(_, device, _)| device.as_str())
                    .collect(),
                Mode::History { .. } => Vec::new(),
            };
            if let Some(bad) = names.iter().find(|name| !OutputFormat::csv_safe(name)) {
                return flag(format!(
                    "device {bad:?} cannot be written to CSV (a line break); use .jsonl"
                ));
            }
        }
        Ok(CollectConfig {
            out: args.out.clone(),
            format,
            interval: args.interval,
            duration: args.duration,
            progress: !args.quiet,
            mode,
        })
    }

    /// The live collectors of this configuration (none in history mode): what `augur serve`
    /// samples on its own clock.
    pub fn collectors(&self) -> Result<Vec<Box<dyn Collector>>, CollectError> {
        match &self.mode {
            Mode::Host { device, capacity } => Ok(vec![Box::new(HostCollector::new(
                Some(device.clone()),
                *capacity,
            ))]),
            Mode::NodeExporters { targets, timeout } => targets
                .iter()
                .map(|(url, device, capacity)| {
                    NodeExporterScraper::new(url, Some(device.clone()), *capacity, *timeout)
                        .map(|scraper| Box::new(scraper) as Box<dyn Collector>)
                        .map_err(|source| CollectError::Source {
                            source_name: url.clone(),
                            source,
                        })
                })
                .collect(),
            Mode::History { .. } => Ok(Vec::new()),
        }
    }
}

/// The device's bandwidths from the platform where it gives them, else `fallback`'s.
pub fn capacity_of(platform: Option<&Platform>, device: &str, fallback: Capacity) -> Capacity {
    let entry = platform.and_then(|platform| {
        platform
            .index_of(device)
            .and_then(|i| platform.devices.get(i))
    });
    Capacity {
        disk_bytes_per_s: entry
            .and_then(|d| d.disk_bytes_per_s)
            .unwrap_or(fallback.disk_bytes_per_s),
        network_bytes_per_s: entry
            .and_then(|d| d.network_bytes_per_s)
            .unwrap_or(fallback.network_bytes_per_s),
    }
}

/// Parses `1s`, `250ms`, `1.5s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let seconds_per_unit = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "duration {text:?}: unknown unit {other:?} (use ms, s, m or h)"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("duration {text:?} is not a number with a unit (like 1s)"))?;
    Duration::try_from_secs_f64(value * seconds_per_unit)
        .map_err(|_| format!("duration {text:?} is out of range"))
}

/// A time flag: what `run` reads (seconds, UTC datetime), `now`, or `now-DURATION`.
fn parse_time_arg(text: &str, now: Time) -> Result<Time, String> {
    let trimmed = text.trim();
    if trimmed == "now" {
        return Ok(now);
    }
    if let Some(ago) = trimmed.strip_prefix("now-") {
        let ago = parse_duration(ago)?;
        return Ok(now.saturating_sub(duration_ms(ago)));
    }
    parse_time_field(trimmed).map_err(|reason| {
        format!(
            "{reason} (give seconds since the epoch, `YYYY-MM-DD HH:MM:SS` UTC, `now` or `now-5m`)"
        )
    })
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A duration as PromQL writes it, in whole milliseconds.
fn promql_duration(duration: Duration) -> Result<String, CollectError> {
    let ms = duration_ms(duration);
    if ms == 0 {
        return Err(CollectError::Flag(
            "--rate-window must be at least 1ms".into(),
        ));
    }
    Ok(if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    })
}

/// Whether `path` names standard output.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: CollectArgs,
    }

    const NOW: Time = 1_700_000_000_000;

    fn config(flags: &[&str]) -> Result<CollectConfig, CollectError> {
        let mut argv = vec!["augur"];
        argv.extend_from_slice(flags);
        let parsed =
            Wrapper::try_parse_from(argv).map_err(|e| CollectError::Flag(e.to_string()))?;
        CollectConfig::from_args(&parsed.args, NOW)
    }

    fn flag_error(flags: &[&str]) -> String {
        match config(flags) {
            Err(CollectError::Flag(message)) => message,
            other => panic!("{flags:?}: expected a flag error, got {other:?}"),
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "1d", "-1s", "1e400s", "abc"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_mode_defaults_and_device() {
        let c = config(&["--out", "m.jsonl", "--device", "me"]).expect("valid");
        assert_eq!(
            c.mode,
            Mode::Host {
                device: "me".into(),
                capacity: Capacity::DEFAULT
            }
        );
        assert_eq!(
            (c.interval, c.duration, c.progress),
            (Duration::from_secs(1), None, true)
        );
        assert_eq!(c.format, OutputFormat::Jsonl);
        let c = config(&[
            "--out",
            "m.csv",
            "--quiet",
            "--net-bytes-per-s",
            "1e9",
            "--duration",
            "3s",
        ])
        .expect("valid");
        assert_eq!(c.format, OutputFormat::Csv);
        assert!(!c.progress);
        assert_eq!(c.duration, Some(Duration::from_secs(3)));
        let Mode::Host { capacity, .. } = c.mode else {
            panic!("host mode")
        };
        assert_eq!(capacity.network_bytes_per_s, 1e9);
        assert!(
            flag_error(&["--out", "m", "--device", "a", "--device", "b"]).contains("at most one")
        );
        assert!(flag_error(&["--out", "m", "--interval", "0s"]).contains("--interval"));
        assert!(flag_error(&["--out", "m", "--timeout", "0s"]).contains("--timeout"));
        assert!(flag_error(&["--out", "m", "--interval", "1ms"]).contains("refresh"));
        assert!(flag_error(&["--out", "m", "--disk-bytes-per-s", "0"]).contains("positive"));
        // A comma is quoted; a line break cannot be in a CSV line at all.
        assert!(config(&["--out", "m.csv", "--device", "a,b"]).is_ok());
        assert!(flag_error(&["--out", "m.csv", "--device", "a\nb"]).contains("CSV"));
    }

    #[test]
    fn node_exporter_devices_pair_with_urls() {
        let c = config(&[
            "--out",
            "m",
            "--node-exporter",
            "http://a:9100",
            "--node-exporter",
            "http://b:9100/m",
        ])
        .expect("valid");
        let Mode::NodeExporters { targets, .. } = c.mode else {
            panic!("scrape mode")
        };
        let devices: Vec<&str> = targets.iter().map(|(_, d, _)| d.as_str()).collect();
        assert_eq!(devices, ["a:9100", "b:9100"]);
        let c = config(&[
            "--out",
            "m",
            "--node-exporter",
            "http://a:9100",
            "--device",
            "edge",
        ])
        .expect("valid");
        assert_eq!(c.collectors().expect("collectors")[0].device(), "edge");
        assert!(flag_error(&[
            "--out",
            "m",
            "--node-exporter",
            "http://a",
            "--device",
            "x",
            "--device",
            "y"
        ])
        .contains("one --device per"));
        assert!(flag_error(&["--out", "m", "--node-exporter", "https://a"]).contains("https"));
        // Two targets under one device name would mix two hosts in one series.
        let same = ["--out", "m", "--node-exporter", "http://a:9100"];
        let twice = [&same[..], &["--node-exporter", "http://a:9100"]].concat();
        assert!(flag_error(&twice).contains("both be device"));
        let named_alike = [&twice[..], &["--device", "x", "--device", "x"]].concat();
        assert!(flag_error(&named_alike).contains("both be device"));
    }

    /// The least flags of history mode.
    const HISTORY: [&str; 6] = [
        "--out",
        "m",
        "--prometheus",
        "http://p",
        "--start",
        "now-5m",
    ];

    /// In history mode one instance has one name, and one name one instance.
    #[test]
    fn history_devices_map_one_to_one() {
        let args = |devices: &[&str]| {
            let mut argv = HISTORY.to_vec();
            for device in devices {
                argv.extend(["--device", device]);
            }
            flag_error(&argv)
        };
        assert!(args(&["x:1=n", "y:1=n"]).contains("to two instances"));
        assert!(args(&["x:1=n", "x:1=m"]).contains("twice"));
    }

    /// A flag of one mode given to another is refused, not ignored.
    #[test]
    fn flags_of_another_mode_are_refused() {
        assert!(flag_error(&["--out", "m", "--step", "5s"]).contains("needs --prometheus"));
        assert!(flag_error(&["--out", "m", "--rate-window", "30s"]).contains("--prometheus"));
        let scrape = ["--out", "m", "--node-exporter", "http://a:9100"];
        assert!(flag_error(&[&scrape[..], &["--start", "now"]].concat()).contains("--start"));
        assert!(flag_error(&[&HISTORY[..], &["--interval", "2s"]].concat()).contains("--interval"));
        assert!(flag_error(&[&HISTORY[..], &["--duration", "2s"]].concat()).contains("--duration"));
        assert!(config(&[&HISTORY[..], &["--step", "5s"]].concat()).is_ok());
    }

    /// History ends at now at the latest: there is none after it to ask for.
    #[test]
    fn history_past_now_is_not_asked_for() {
        let c = config(&[&HISTORY[..], &["--end", "9999-12-31 00:00:00"]].concat()).expect("valid");
        let Mode::History { query, .. } = c.mode else {
            panic!("history mode")
        };
        assert_eq!(query.end, NOW);
        let future = [
            "--out",
            "m",
            "--prometheus",
            "http://p",
            "--start",
            "2100-01-01 00:00:00",
        ];
        let error = flag_error(&[&future[..], &["--end", "2100-01-02 00:00:00"]].concat());
        assert!(error.contains("in the future"), "{error}");
    }

    #[test]
    fn platform_gives_bandwidths() {
        let dir = crate::testing::Scratch::new("collect-args");
        let platform = dir.join("p.toml");
        std::fs::write(
            &platform,
            "[[device]]\nid = \"edge\"\ncores = 4\ndisk_mbps = 100\nnetwork_gbps = 10\n",
        )
        .expect("write platform");
        let path = platform.display().to_string();
        let c = config(&["--out", "m", "--device", "edge", "--platform", &path]).expect("valid");
        let Mode::Host { capacity, .. } = c.mode else {
            panic!("host mode")
        };
        assert_eq!(
            capacity,
            Capacity {
                disk_bytes_per_s: 100e6,
                network_bytes_per_s: 1.25e9
            }
        );
        let c = config(&["--out", "m", "--device", "other", "--platform", &path]).expect("valid");
        assert!(matches!(c.mode, Mode::Host { capacity, .. } if capacity == Capacity::DEFAULT));
    }

    #[test]
    fn history_times_steps_and_instances() {
        let c = config(&[
            "--out",
            "m",
            "--prometheus",
            "http://p:9090",
            "--start",
            "now-5m",
            "--step",
            "1s",
            "--device",
            "10.0.0.1:9100=edge",
            "--rate-window",
            "1500ms",
        ])
        .expect("valid");
        let Mode::History { url, query } = c.mode else {
            panic!("history mode")
        };
        assert_eq!(url, "http://p:9090");
        assert_eq!(
            (query.start, query.end, query.step_ms),
            (NOW - 300_000, NOW, 1000)
        );
        assert_eq!(query.rate_window, "1500ms");
        assert_eq!(query.devices["10.0.0.1:9100"], "edge");
        let c = config(&[
            "--out",
            "m",
            "--prometheus",
            "http://p",
            "--start",
            "1699999000",
            "--end",
            "2023-11-14 22:13:20",
        ])
        .expect("valid");
        let Mode::History { query, .. } = c.mode else {
            panic!("history mode")
        };
        assert_eq!((query.start, query.end), (1_699_999_000_000, NOW));
        assert!(flag_error(&["--out", "m", "--prometheus", "http://p"]).contains("--start"));
        assert!(flag_error(&[
            "--out",
            "m",
            "--prometheus",
            "http://p",
            "--start",
            "now",
            "--end",
            "now-1m"
        ])
        .contains("after"));
        assert!(flag_error(&[
            "--out",
            "m",
            "--prometheus",
            "http://p",
            "--start",
            "now",
            "--device",
            "x"
        ])
        .contains("INSTANCE=NAME"));
        assert!(flag_error(&["--out", "m", "--start", "now"]).contains("prometheus"));
        let unreadable = flag_error(&[
            "--out",
            "m",
            "--prometheus",
            "http://p",
            "--start",
            "yesterday",
        ]);
        assert!(
            unreadable.starts_with("--start: ") && unreadable.contains("now-5m"),
            "{unreadable}"
        );
        assert!(flag_error(&[
            "--out",
            "m",
            "--prometheus",
            "http://p",
            "--node-exporter",
            "http://n"
        ])
        .contains("cannot be used"));
    }
}
