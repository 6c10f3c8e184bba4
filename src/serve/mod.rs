//! `augur serve`: the engine run continuously behind an HTTP API.
//!
//! Producers POST workflows, metric samples and task events; they are validated and interned as
//! `augur run` does (the same readers, catalog, lateness and lifecycle rules) and fed to the
//! same engine through a live [`source::LiveSource`]; a [`sink::LiveSink`] keeps the current map,
//! forecasts and scale-out advice for the GET endpoints and the event streams. See
//! [`source`] for how epochs close in a live service, and README.md for the endpoints.
//!
//! Threads: the engine (timely's worker 0 runs the source and the sink), the accept loop (the
//! caller's thread) and one per connection. A collector in the same process can push samples
//! through a [`source::ServiceHandle`], the handle the HTTP handlers use.

pub mod api;
pub mod body_rejections;
pub mod checkpoint;
pub mod exposition;
pub mod extender;
pub mod live;
pub mod parse;
pub mod sink;
pub mod source;
pub mod state;

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use augur_dataflows::EngineConfig;
use clap::Args;

use crate::catalog::Catalog;
use crate::checkpoint::{CheckpointConfig, CheckpointError};
use crate::cli::{engine_knobs, read_config_file, ConfigError, ConfigFile};
use crate::engine::{run_engine_checkpointed, Checkpointing, Workers};
use crate::http::{Limits, ServerOptions};
use crate::input::metrics::MetricOptions;
use crate::input::platform::read_platform;
use crate::input::Rejection;

pub use extender::parse_extender_args;
pub use parse::{parse_events, parse_metrics, parse_workflow_body};
pub use source::{Accepted, Command, Refusal, ServiceHandle};

/// Flags of `augur serve`, as given.
#[derive(Debug, Clone, Args)]
#[command(after_help = ENDPOINTS)]
pub struct ServeArgs {
    /// IP address and port to listen on (`127.0.0.1:8080`, `[::1]:8080`; a host name is not
    /// looked up); port 0 picks a free one. The bound address is printed as the first line of
    /// stdout.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "IP:PORT")]
    pub listen: String,
    /// Platform TOML (the devices; fixed for the service's life).
    #[arg(long, value_name = "FILE")]
    pub platform: PathBuf,
    /// TOML file of engine knobs (forecast, placement, lateness), as for `run`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Out-of-order tolerance, seconds: records wait this long behind the newest time seen
    /// before their epoch is applied [default: 60, or the config file's].
    #[arg(long, value_name = "SECS")]
    pub lateness: Option<f64>,
    /// Placement policy [default: predictive, or the config file's].
    #[arg(long, value_parser = ["predictive", "heft", "reactive", "static", "seed"])]
    pub policy: Option<String>,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Bearer token required on every request (or set AUGUR_TOKEN); required when listening
    /// on a non-loopback address.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Largest request body accepted, bytes (at least 1024).
    #[arg(long, default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// How long a flush or a POST waits for the engine, seconds (1 to 1e6).
    #[arg(long, default_value_t = 600.0, value_name = "SECS")]
    pub engine_timeout: f64,
    /// Also sample this host (sysinfo) every INTERVAL (`1s`, `500ms`, ...) as a live source,
    /// reporting as --collect-device.
    #[arg(long, value_name = "INTERVAL")]
    pub collect: Option<String>,
    /// The platform device this host's samples are about [default: the host name].
    #[arg(long, value_name = "NAME", requires = "collect")]
    pub collect_device: Option<String>,
    /// Also scrape a node_exporter (text exposition) as a live source of DEVICE (repeatable).
    #[arg(long = "node-exporter", value_name = "URL=DEVICE")]
    pub node_exporters: Vec<String>,
    /// How often --node-exporter targets are scraped.
    #[arg(long, default_value = "5s", value_name = "INTERVAL")]
    pub scrape_interval: String,
    /// Checkpoint folder: the service writes a checkpoint there (admitted workflows, buffered
    /// records, task lifecycle, model state, partition map) every --checkpoint-every epochs,
    /// and once more when it stops cleanly (POST /v1/shutdown, SIGTERM, SIGINT), after the drain;
    /// that one keeps the records still in the reorder buffer, for the resumed service.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// Epochs (distinct event times) between checkpoints [default: 1000].
    #[arg(long, value_name = "N", requires = "checkpoint")]
    pub checkpoint_every: Option<u64>,
    /// Resume from the latest checkpoint in --checkpoint DIR (same platform and settings; any
    /// number of workers). Records sent after that checkpoint must be sent again: see
    /// `checkpoint` in GET /v1/status.
    #[arg(long, requires = "checkpoint")]
    pub resume: bool,
}

const ENDPOINTS: &str = "\
Endpoints (JSON unless noted; errors are {\"error\": ...} with a 4xx status):
  POST /v1/workflows?name=NAME[&arrival=TIME]  WfFormat JSON; 409 if NAME is taken, 422 if refused
  POST /v1/metrics           long-format samples (CSV with header, or JSONL)
  POST /v1/events            task events (JSONL: arrival, start, complete)
  POST /v1/flush             apply everything buffered; answers with the status
  POST /v1/shutdown          drain and stop (exit 0); so does SIGTERM or SIGINT (with
                             --checkpoint, what is still buffered waits in the checkpoint)
  GET  /v1/map               workflow -> task -> device (as final_map.json)
  GET  /v1/map/WORKFLOW      task -> device;   GET /v1/map/WORKFLOW/TASK
  GET  /v1/predictions       device -> resource -> latest, predicted, sigma, anomaly
  GET  /v1/predictions/DEVICE
  GET  /v1/anomalies         series scoring at or above the threshold
  GET  /v1/status            event time reached, epochs, buffered records, counts
  GET  /v1/rejections        the latest refused records
  GET  /v1/changes           Server-Sent Events: one 'map' event per epoch that changed it
  GET  /v1/scaleout          per device pool: recommended instances over the horizon
  GET  /v1/scaleout/stream   Server-Sent Events: one 'scaleout' event per change
  GET  /metrics              Prometheus text format
  POST /filter, /prioritize  Kubernetes scheduler extender (ExtenderArgs)
A POST is applied whole or not at all. Records wait in a reorder buffer until the newest time
seen is --lateness past them (or a flush); time never goes back once an epoch is applied.";

/// Everything `augur serve` needs, validated.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The platform file.
    pub platform: PathBuf,
    /// Engine knobs.
    pub engine: EngineKnobs,
    /// Out-of-order tolerance, milliseconds.
    pub lateness_ms: i64,
    /// Worker threads.
    pub workers: usize,
    /// The bearer token, if any.
    pub token: Option<String>,
    /// Request limits.
    pub limits: Limits,
    /// Longest accepted line in a body.
    pub max_line_bytes: usize,
    /// How long producers wait for the engine.
    pub engine_timeout: Duration,
    /// Live sources sampled while serving.
    pub live: live::LiveConfig,
    /// Checkpoints, if any.
    pub checkpoint: Option<CheckpointConfig>,
}

/// The forecast and placement knobs.
#[derive(Clone, Copy, Debug)]
pub struct EngineKnobs {
    /// Forecasts.
    pub forecast: augur_dataflows::contention_forecast::ForecastConfig,
    /// Placement.
    pub placement: augur_dataflows::placement::PlacementConfig,
}

/// Why the service could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A flag or the config file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The platform file is unusable.
    #[error("platform: {0}")]
    Platform(Rejection),
    /// The platform has no devices.
    #[error("the platform has no devices")]
    NoDevices,
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Listening or signal set-up failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The engine failed.
    #[error("engine: {0}")]
    Engine(String),
    /// A live source (--collect, --node-exporter) could not be set up.
    #[error("live source: {0}")]
    Live(String),
    /// The checkpoint to resume from is missing, damaged or was taken over another platform
    /// or settings.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
}

fn flag(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Flag {
        flag,
        reason: reason.into(),
    }
}

/// Validates `serve` flags (and the config file they name); `env_token` is `AUGUR_TOKEN`.
pub fn serve_config(
    args: &ServeArgs,
    env_token: Option<String>,
) -> Result<ServeConfig, ConfigError> {
    let file = match &args.config {
        Some(path) => read_config_file(path)?,
        None => ConfigFile::default(),
    };
    let listen: SocketAddr = args.listen.parse().map_err(|_| {
        flag(
            "--listen",
            format!(
                "'{}' is not IP:PORT (an IP address and a port; host names are not looked up)",
                args.listen
            ),
        )
    })?;
    let token = args
        .token
        .clone()
        .or(env_token)
        .filter(|token| !token.is_empty());
    if let Some(token) = &token {
        if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(flag(
                "--token",
                "must be at least 16 characters, without spaces",
            ));
        }
    }
    if !listen.ip().is_loopback() && token.is_none() {
        return Err(flag(
            "--listen",
            format!(
                "{listen} is reachable from other machines: give --token (or AUGUR_TOKEN) so \
                 requests must authenticate"
            ),
        ));
    }
    // A bad value is named where the user wrote it: the flag, or else the config file's key.
    let (lateness_source, lateness_s) = match (args.lateness, file.lateness_s) {
        (Some(seconds), _) => ("--lateness", seconds),
        (None, Some(seconds)) => ("lateness_s", seconds),
        (None, None) => ("--lateness", 60.0),
    };
    if !(lateness_s.is_finite() && (0.0..=1e9).contains(&lateness_s)) {
        return Err(flag(
            lateness_source,
            format!(
                "{} is not within [0, 1e9]",
                crate::cli::short_number(lateness_s)
            ),
        ));
    }
    let (forecast, placement) = engine_knobs(&file, args.policy.clone())?;
    if args.workers == 0 || args.workers > 1024 {
        return Err(flag("--workers", "must be between 1 and 1024"));
    }
    if args.max_body_bytes < 1024 {
        return Err(flag("--max-body-bytes", "must be at least 1024"));
    }
    // Bounded above too: a timeout past what a Duration holds (1e20) ended the service with
    // a panic, and one of weeks is no timeout at all.
    if !(args.engine_timeout.is_finite() && (1.0..=1e6).contains(&args.engine_timeout)) {
        return Err(flag(
            "--engine-timeout",
            format!(
                "{} is not within [1, 1e6] seconds",
                crate::cli::short_number(args.engine_timeout)
            ),
        ));
    }
    // As `run` refuses it: raised silently to 64, a limit of 10 let 26-byte lines through.
    let max_line_bytes = crate::input::lines::line_limit(file.max_line_bytes)
        .map_err(|r| flag("max_line_bytes", r))?;
    let interval = |name: &'static str, text: &str| {
        crate::collect::parse_duration(text)
            .ok()
            .filter(|every| *every >= Duration::from_millis(10))
            .ok_or_else(|| {
                flag(
                    name,
                    format!("'{text}' is not an interval of at least 10ms"),
                )
            })
    };
    let live = live::LiveConfig {
        host: match &args.collect {
            Some(text) => Some((interval("--collect", text)?, args.collect_device.clone())),
            None => None,
        },
        node_exporters: args
            .node_exporters
            .iter()
            .map(|text| live::parse_target(text).map_err(|reason| flag("--node-exporter", reason)))
            .collect::<Result<_, _>>()?,
        scrape_interval: interval("--scrape-interval", &args.scrape_interval)?,
    };
    let checkpoint = match &args.checkpoint {
        Some(dir) => {
            // As `run` refuses it: otherwise a bare "File exists" from the lock, exit 1.
            if let Some(reason) = crate::cli::not_an_output_folder(dir) {
                return Err(flag("--checkpoint", reason));
            }
            let every = args.checkpoint_every.unwrap_or(1000);
            if every == 0 {
                return Err(flag("--checkpoint-every", "must be at least 1"));
            }
            Some(CheckpointConfig {
                dir: dir.clone(),
                every,
                resume: args.resume,
            })
        }
        None => None,
    };
    Ok(ServeConfig {
        listen,
        platform: args.platform.clone(),
        engine: EngineKnobs {
            forecast,
            placement,
        },
        lateness_ms: (lateness_s * 1000.0).round() as i64,
        workers: args.workers,
        token,
        limits: Limits {
            max_head_bytes: 16 * 1024,
            max_body_bytes: args.max_body_bytes,
            ..Limits::default()
        },
        max_line_bytes,
        engine_timeout: Duration::from_secs_f64(args.engine_timeout),
        live,
        checkpoint,
    })
}

/// Runs the service until `POST /v1/shutdown`, SIGTERM or SIGINT; prints
/// `augur serve: listening on http://ADDR` as the first line of stdout once it accepts
/// connections. Buffered records are applied before it returns.
pub fn serve(config: &ServeConfig) -> Result<(), ServeError> {
    if config.live.is_empty() {
        return serve_with(config, |_| {});
    }
    let platform = read_platform(&config.platform).map_err(ServeError::Platform)?;
    let scheduled = live::prepare(&config.live, &platform).map_err(ServeError::Live)?;
    let mut started = Ok(None);
    let served = serve_with(config, |handle| started = live::start(handle, scheduled));
    // The sampling thread ends on its own once the service refuses it; it is not joined, since
    // it may be asleep until its next tick.
    started.map_err(ServeError::Live)?;
    served
}

/// [`serve`], handing `producers` a [`ServiceHandle`] once the engine runs: an in-process
/// producer (a collector scraping hosts) keeps it and pushes records through the same channel,
/// validation and reordering as the HTTP handlers. The service stops when asked as usual; a
/// handle used after that gets 503 refusals.
pub fn serve_with(
    config: &ServeConfig,
    producers: impl FnOnce(ServiceHandle),
) -> Result<(), ServeError> {
    let platform = read_platform(&config.platform).map_err(ServeError::Platform)?;
    if platform.devices.is_empty() {
        return Err(ServeError::NoDevices);
    }
    let bandwidth: HashMap<String, (Option<f64>, Option<f64>)> = platform
        .devices
        .iter()
        .map(|d| (d.id.clone(), (d.disk_bytes_per_s, d.network_bytes_per_s)))
        .collect();
    let catalog = Catalog::new(platform);
    let engine_config = EngineConfig {
        devices: catalog.device_specs(),
        forecast: config.engine.forecast,
        placement: config.engine.placement,
        durations: Default::default(),
    };
    let settings = state::Settings {
        horizon_s: config.engine.forecast.horizon_ms as f64 / 1000.0,
        capacity_target: config.engine.placement.capacity_target,
        risk: config.engine.forecast.risk,
        anomaly: config.engine.forecast.anomaly,
        lateness_ms: config.lateness_ms,
        policy: config.engine.placement.policy.name().to_string(),
        max_line_bytes: config.max_line_bytes,
    };
    let shared = Arc::new(state::Shared::new(catalog, settings));
    // A resumed service has its workflows, buffers and view back before it listens.
    let fingerprint = checkpoint::serve_fingerprint(config);
    // Held until the service ends (its last checkpoint written): one folder, one writer.
    // Taken before the checkpoint is read, so that a service cannot resume from one that
    // another, still draining, is about to replace.
    let _folder_lock = match &config.checkpoint {
        Some(checkpointing) => Some(crate::checkpoint::lock_folder(
            &checkpointing.dir,
            checkpointing.resume,
        )?),
        None => None,
    };
    let resume = match &config.checkpoint {
        Some(checkpointing) if checkpointing.resume => {
            Some(crate::checkpoint::load(&checkpointing.dir, &fingerprint)?)
        }
        _ => None,
    };

    let listener = TcpListener::bind(config.listen).map_err(|source| ServeError::Bind {
        address: config.listen,
        source,
    })?;
    let address = listener.local_addr()?;

    let stop = Arc::new(AtomicBool::new(false));
    // The first signal drains (applies what is released, checkpoints); a second one while it
    // drains ends the process at once, exit 130, as an impatient operator expects (a drain of
    // many queued epochs takes a while). Registered before the flag's own handler, so the
    // first signal only sets the flag.
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }

    let (commands, receiver) = std::sync::mpsc::channel();
    let handle = ServiceHandle::new(commands, config.engine_timeout);
    let resume_absent = resume.is_none();
    let io = match &resume {
        Some(saved) => {
            let corrupt = |reason: String| {
                let dir = config
                    .checkpoint
                    .as_ref()
                    .map(|c| c.dir.clone())
                    .unwrap_or_default();
                CheckpointError::Corrupt {
                    path: dir.join(crate::checkpoint::LATEST),
                    reason,
                }
            };
            let source =
                source::LiveSource::restore(Arc::clone(&shared), receiver, &saved.engine.source)
                    .map_err(corrupt)?;
            let sink = sink::LiveSink::restore(Arc::clone(&shared), &saved.engine.sink)
                .map_err(corrupt)?;
            let newest = shared.view().snapshot_newest;
            shared.view_mut().checkpoint = Some(checkpoint::CheckpointMark {
                time: saved.engine.time,
                epochs: saved.engine.epochs,
                newest,
            });
            (source, sink)
        }
        None => (
            source::LiveSource::new(Arc::clone(&shared), receiver),
            sink::LiveSink::new(Arc::clone(&shared)),
        ),
    };
    // A checkpointing service's stop keeps its reorder buffer in the stop's checkpoint.
    let io = match config.checkpoint {
        // A fresh one checkpoints at its stop even if it was sent nothing.
        Some(_) if resume_absent => (io.0.keeping_buffer_at_stop().unsaved(), io.1),
        Some(_) => (io.0.keeping_buffer_at_stop(), io.1),
        None => io,
    };
    let io = Mutex::new(Some(io));
    let checkpointing = config.checkpoint.as_ref().map(|c| Checkpointing {
        every: c.every,
        // A clean stop (POST /v1/shutdown, SIGTERM, SIGINT) applies the epochs already
        // released and then checkpoints, the reorder buffer with them.
        at_end: true,
        store: Box::new(checkpoint::ServeStore::new(
            &c.dir,
            &fingerprint,
            Arc::clone(&shared),
        )),
        resume: resume.map(|saved| saved.engine),
    });
    let idle_shared = Arc::clone(&shared);
    let workers = Workers::Threads(config.workers);
    let engine_stop = Arc::clone(&stop);
    let engine = std::thread::Builder::new()
        .name("augur-engine".into())
        .spawn(move || {
            let result =
                run_engine_checkpointed(workers, engine_config, checkpointing, move || {
                    let taken = io.lock().ok().and_then(|mut io| io.take());
                    taken.unwrap_or_else(|| {
                        // Only worker 0 calls this, once; a closed channel ends at once anyway.
                        let (_, receiver) = std::sync::mpsc::channel();
                        (
                            source::LiveSource::new(Arc::clone(&idle_shared), receiver),
                            sink::LiveSink::new(Arc::clone(&idle_shared)),
                        )
                    })
                })
                .map(|_| ())
                .map_err(|error| error.to_string());
            // An engine that failed (a checkpoint on a full disk) stops the service at once:
            // left up, it answered 503 to every write and 200 to status until a signal came.
            if result.is_err() {
                engine_stop.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            result
        })?;

    let handler = api::handler(api::Api {
        shared: Arc::clone(&shared),
        handle: handle.clone(),
        stop: Arc::clone(&stop),
        token: config.token.clone(),
        metric_options: MetricOptions {
            max_line_bytes: config.max_line_bytes,
            bandwidth,
            ..MetricOptions::default()
        },
    });
    producers(handle.clone());
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "augur serve: listening on http://{address}");
        let _ = out.flush();
    }
    let served = crate::http::serve(
        listener,
        ServerOptions {
            limits: config.limits,
            probe_path: Some("/healthz"),
            ..ServerOptions::default()
        },
        api::screen(config.token.clone()),
        handler,
        {
            let shared = Arc::clone(&shared);
            Arc::new(move |status| *shared.counters().requests.entry(status).or_default() += 1)
        },
        Arc::clone(&stop),
    );
    // Drain: what is buffered is applied (with a checkpoint, what is released; the reorder
    // buffer is kept in the checkpoint), then the engine ends and the streams close.
    {
        let view = shared.view();
        let message = match (&config.checkpoint, view.buffered, view.queued_epochs) {
            (_, 0, 0) => None,
            (Some(_), buffered, queued) => Some(format!(
                "applying {queued} queued epochs and keeping {buffered} buffered records in \
                 the checkpoint"
            )),
            (None, buffered, queued) => Some(format!(
                "applying {buffered} buffered records and {queued} queued epochs"
            )),
        };
        if let Some(message) = message {
            crate::say!("augur serve: stopping: {message} (signal again to stop at once)");
        }
    }
    handle.shutdown();
    drop(handle);
    let engine = engine
        .join()
        .map_err(|_| ServeError::Engine("the engine thread failed".into()))?;
    shared.close_streams();
    served?;
    engine.map_err(ServeError::Engine)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn serve_args(extra: &[&str]) -> ServeArgs {
        let platform = concat!(env!("CARGO_MANIFEST_DIR"), "/data/demo/platform.toml");
        let argv = ["augur", "serve", "--platform", platform]
            .into_iter()
            .chain(extra.iter().copied());
        match crate::cli::Cli::try_parse_from(argv) {
            Ok(crate::cli::Cli {
                command: crate::cli::Command::Serve(args),
            }) => args,
            other => panic!("unexpected parse: {other:?}"),
        }
    }

    /// Why `serve` with these flags is refused (empty if it is not).
    fn refusal(extra: &[&str]) -> String {
        serve_config(&serve_args(extra), None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn a_bad_lateness_is_named_where_it_was_given() {
        let dir = crate::testing::Scratch::new("serve-lateness");
        let nan = dir.join("nan.toml");
        std::fs::write(&nan, "lateness_s = nan\n").expect("write");
        let nan = nan.to_str().unwrap_or("");
        let error = refusal(&["--config", nan]);
        assert!(error.starts_with("lateness_s: NaN"), "{error}");
        let error = refusal(&["--config", nan, "--lateness=-1"]);
        assert!(error.starts_with("--lateness: -1"), "{error}");
    }

    #[test]
    fn a_line_limit_below_64_is_refused_as_run_refuses_it() {
        let dir = crate::testing::Scratch::new("serve-line-limit");
        let config = dir.join("small.toml");
        std::fs::write(&config, "max_line_bytes = 10\n").expect("write");
        let config = config.to_str().unwrap_or("");
        let error = refusal(&["--config", config]);
        assert!(
            error.starts_with("max_line_bytes: must be at least 64"),
            "{error}"
        );
    }

    #[test]
    fn the_engine_timeout_is_bounded_both_ways() {
        // 1e20 s is past what a Duration holds: it ended the service with a panic.
        for (given, said) in [
            ("1e20", "1e20 is not within [1, 1e6]"),
            ("0.5", "0.5 is not within [1, 1e6]"),
            ("inf", "inf is not within [1, 1e6]"),
            ("NaN", "NaN is not within [1, 1e6]"),
        ] {
            let error = refusal(&["--engine-timeout", given]);
            assert!(error.contains(said), "{given}: {error}");
        }
        let config = serve_config(&serve_args(&["--engine-timeout", "1e6"]), None);
        assert!(config.is_ok_and(|config| config.engine_timeout.as_secs() == 1_000_000));
    }
}
