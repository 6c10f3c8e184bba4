//! The `augur` binary: parses flags, runs a command, and turns errors into messages and exit
//! codes (0 success, 1 failure, 2 bad usage, 3 input rejected under --strict).

use std::io::Write;
use std::process::ExitCode;

use augur::bench::{run_bench, BenchOptions, ClusterLayout};
use augur::cli::{check_input_files, hosts, run_config, BenchArgs, BenchKind, Cli, Command};
use augur::demo::{demo_args, print_demo};
use augur::run::{run, RunError};
use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A panic is a bug or a lost peer process, never an input problem; say it in one line (the
    // engine turns it into an error and a non-zero exit) instead of a wall of thread dumps.
    std::panic::set_hook(Box::new(|info| {
        // A panicking thread fails this process's run; its peers hear so as it ends.
        augur::cluster::note_failure();
        // After a peer process is lost, timely's threads fail one by one; the run's error
        // names the peer once instead.
        if augur::cluster::a_peer_was_lost() {
            return;
        }
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown failure");
        let thread = std::thread::current();
        let location = info
            .location()
            .map_or(String::new(), |l| format!(" at {}:{}", l.file(), l.line()));
        augur::say!(
            "augur: thread '{}' failed{location}: {message}",
            thread.name().unwrap_or("?")
        );
    }));
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            let config = match run_config(&args) {
                Ok(config) => config,
                Err(error) => return usage(&error.to_string()),
            };
            match run(&config) {
                Ok(Some(outcome)) => {
                    for note in &outcome.summary.notes {
                        augur::say!("augur: note: {note}");
                    }
                    for (path, counts) in outcome.summary.inputs_with_nothing_accepted() {
                        let named = |paths: &[std::path::PathBuf]| {
                            paths.iter().any(|p| p.display().to_string() == path)
                        };
                        // The likely slip depends on the kind of input.
                        let hint = if named(&config.metrics) {
                            " (is --format right? does --map name a device?)"
                        } else if named(&config.events) {
                            " (do its events name the workflows' tasks and the platform's devices?)"
                        } else {
                            ""
                        };
                        augur::say!(
                            "augur: note: none of the {} records of {path} was accepted; \
                             {} says why{hint}",
                            counts.read,
                            config.out.join("rejected.jsonl").display()
                        );
                    }
                    if config.progress {
                        augur::say!(
                            "augur: {} epochs, {} tasks placed, {} moved, {} rejected lines; outputs in {}",
                            outcome.summary.epochs,
                            outcome.summary.tasks_placed,
                            outcome.summary.tasks_moved,
                            outcome.summary.rejected_lines,
                            config.out.display()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Ok(None) => ExitCode::SUCCESS,
                Err(error) => failure(&error),
            }
        }
        Command::Demo(args) => {
            let dir = match augur::demo::demo_dir() {
                Ok(dir) => dir,
                Err(message) => {
                    augur::say!("augur demo: {message}");
                    return ExitCode::FAILURE;
                }
            };
            let run_args = demo_args(&args, &dir);
            let config = match run_config(&run_args) {
                Ok(config) => config,
                Err(error) => return usage(&error.to_string()),
            };
            match run(&config) {
                Ok(Some(outcome)) => {
                    let mut out = std::io::stdout().lock();
                    match print_demo(&mut out, &config, &outcome) {
                        Ok(()) => ExitCode::SUCCESS,
                        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                            ExitCode::SUCCESS
                        }
                        Err(error) => {
                            augur::say!("augur: {error}");
                            ExitCode::FAILURE
                        }
                    }
                }
                Ok(None) => ExitCode::SUCCESS,
                Err(error) => failure(&error),
            }
        }
        Command::Bench(args) => bench(&args),
        Command::Forecast(args) => {
            if let Err(message) = check_input_files("--series", &args.input.series) {
                return usage(&message);
            }
            let mut out = std::io::stdout().lock();
            match augur::forecast_eval::run(&args, &mut out, &mut std::io::stderr()) {
                Err(error @ augur::forecast_eval::ForecastEvalError::Flag { .. }) => {
                    usage(&error.to_string())
                }
                result => report(result, |error| match error {
                    augur::forecast_eval::ForecastEvalError::Output(io) => Some(io),
                    _ => None,
                }),
            }
        }
        Command::Pareto(args) => {
            if let Err(message) = check_input_files("--workflow", [&args.workflow])
                .and_then(|()| check_input_files("--platform", &args.platform))
            {
                return usage(&message);
            }
            let mut out = std::io::stdout().lock();
            match augur::pareto::run(&args, &mut out) {
                Err(
                    error @ (augur::pareto::ParetoError::Weight { .. }
                    | augur::pareto::ParetoError::WeightTooLarge { .. }
                    | augur::pareto::ParetoError::LocalityTooLarge(_)
                    | augur::pareto::ParetoError::WeightOverflow { .. }),
                ) => usage(&error.to_string()),
                result => report(result.map(|_| ()), |error| match error {
                    augur::pareto::ParetoError::Output(io) => Some(io),
                    _ => None,
                }),
            }
        }
        Command::Durations(args) => {
            if let Err(message) = check_input_files("--workflow", &args.workflows) {
                return usage(&message);
            }
            let mut out = std::io::stdout().lock();
            match augur::durations_eval::run(&args, &mut out) {
                Err(error @ augur::durations_eval::DurationsError::Flag { .. }) => {
                    usage(&error.to_string())
                }
                result => report(result, |error| match error {
                    augur::durations_eval::DurationsError::Output(io) => Some(io),
                    _ => None,
                }),
            }
        }
        Command::Simulate(args) => simulate(&args),
        Command::Collect(args) => collect(&args),
        Command::Serve(args) => {
            if let Err(message) = check_input_files("--platform", [&args.platform])
                .and_then(|()| check_input_files("--config", &args.config))
            {
                return usage(&message);
            }
            serve(&args)
        }
        Command::Anomalies(args) => {
            if let Err(message) = check_input_files("--series", &args.input.series)
                .and_then(|()| check_input_files("--labels", &args.labels))
            {
                return usage(&message);
            }
            let mut out = std::io::stdout().lock();
            match augur::anomalies::run(&args, &mut out) {
                Err(error @ augur::anomalies::AnomaliesError::Flag { .. }) => {
                    usage(&error.to_string())
                }
                result => report(result, |error| match error {
                    augur::anomalies::AnomaliesError::Summary(io) => Some(io),
                    _ => None,
                }),
            }
        }
    }
}

/// The exit code of a command that prints a report: success, also when the reader of the report
/// went away (a closed pipe is not an error); otherwise the error, on stderr.
fn report<T, E: std::fmt::Display>(
    result: Result<T, E>,
    output_error: impl Fn(&E) -> Option<&std::io::Error>,
) -> ExitCode {
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(error)
            if output_error(&error)
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            augur::say!("augur: {error}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: &BenchArgs) -> ExitCode {
    match &args.kind {
        Some(BenchKind::Ingest(ingest)) => {
            let mut progress = |line: &str| augur::say!("augur bench ingest: {line}");
            return match augur::bench_ingest::run_ingest(ingest, &mut progress) {
                Err(error @ augur::bench_ingest::IngestError::Options(_)) => {
                    usage(&error.to_string())
                }
                result => print_json(result),
            };
        }
        Some(BenchKind::Soak(soak)) => {
            let mut progress = |line: &str| augur::say!("augur bench soak: {line}");
            return match augur::bench_ingest::run_soak(soak, &mut progress) {
                Err(error @ augur::bench_ingest::IngestError::Options(_)) => {
                    usage(&error.to_string())
                }
                result => print_json(result),
            };
        }
        Some(BenchKind::Workflow(workflow)) => {
            if let Err(message) = check_input_files("--platform", [&workflow.platform])
                .and_then(|()| check_input_files("--workflow", &workflow.workflows))
            {
                return usage(&message);
            }
            let mut progress = |line: &str| augur::say!("augur bench workflow: {line}");
            return print_json(augur::bench_workflow::run_workflow_bench(
                workflow,
                &mut progress,
            ));
        }
        None => {}
    }
    let mut options = if args.smoke {
        BenchOptions::smoke()
    } else if args.large {
        BenchOptions::large()
    } else {
        BenchOptions::full()
    };
    if let Some(devices) = args.devices {
        options.devices = devices;
        // Defaults sized for the default device count shrink with it; explicit flags do not.
        options.classes = options.classes.min(devices.max(1));
        options.batch_size = options.batch_size.min(devices.max(1));
    }
    if let Some(classes) = args.classes {
        options.classes = classes;
    }
    if let Some(tasks) = args.tasks {
        options.tasks = tasks;
    }
    if let Some(epochs) = args.single_epochs {
        options.single_epochs = epochs;
    }
    if let Some(epochs) = args.batch_epochs {
        options.batch_epochs = epochs;
    }
    if let Some(size) = args.batch_size {
        options.batch_size = size;
    }
    if let Some(at) = &args.rss_at {
        options.rss_checkpoints = at.clone();
    }
    if let Some(workers) = args.workers {
        options.workers = workers;
    }
    if let Some(policy) = augur_dataflows::placement::Policy::from_name(&args.policy) {
        options.policy = policy;
    }
    options.dag = !args.independent;
    options.hierarchy = match args.hierarchy.as_deref() {
        Some("on") => augur_dataflows::placement::Hierarchy::On,
        Some("off") => augur_dataflows::placement::Hierarchy::Off,
        _ => options.hierarchy,
    };
    // As `run` checks them.
    if args.processes == 0 || args.processes > 1024 {
        return usage("--processes: must be between 1 and 1024");
    }
    if args.process >= args.processes {
        return usage(&format!(
            "--process: must be below --processes ({})",
            args.processes
        ));
    }
    if args.processes == 1 && args.hostfile.is_some() {
        // One process reads no hostfile, but one named must be there and well formed.
        if let Err(error) = hosts(args.hostfile.as_deref(), 1) {
            return usage(&error.to_string());
        }
    }
    if args.processes > 1 {
        let addresses = match hosts(args.hostfile.as_deref(), args.processes) {
            Ok(addresses) => addresses,
            Err(error) => return usage(&error.to_string()),
        };
        options.cluster = Some(ClusterLayout {
            process: args.process,
            addresses,
        });
    }
    let mut progress = |line: &str| augur::say!("augur bench: {line}");
    match run_bench(&options, &mut progress) {
        Ok(Some(report)) => print_json::<_, std::io::Error>(Ok(report)),
        Ok(None) => ExitCode::SUCCESS,
        Err(
            error @ (augur::bench::BenchError::Options(_)
            | augur::bench::BenchError::Engine(augur::engine::EngineError::Disagree(_))),
        ) => usage(&error.to_string()),
        Err(error) => {
            augur::say!("augur: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a report as pretty JSON on stdout (a closed pipe is not an error), or the error.
fn print_json<T: serde::Serialize, E: std::fmt::Display>(result: Result<T, E>) -> ExitCode {
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            augur::say!("augur: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut out, &report)
        // `From` keeps an I/O error's kind (a closed pipe), where `other` wrapped it away.
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            augur::say!("augur: {error}");
            ExitCode::FAILURE
        }
    }
}

fn simulate(args: &augur::cli::SimulateArgs) -> ExitCode {
    use augur::simulate::{report, SimError};
    let config = match augur::cli::simulate_config(args) {
        Ok(config) => config,
        Err(error) => return usage(&error.to_string()),
    };
    let mut out = std::io::stdout().lock();
    let written = |e: std::io::Error| SimError::Output {
        path: "stdout".into(),
        source: e,
    };
    // The table's header comes with its first row: a run that fails before any prints none.
    let mut header_due = !args.json;
    let note = |line: &str| augur::say!("augur simulate: note: {line}");
    let result = augur::simulate::simulate_noting(&config, note, |outcome| {
        if args.json {
            writeln!(out, "{}", report::json_line(&outcome.summary)).map_err(written)
        } else {
            if std::mem::take(&mut header_due) {
                report::table_header(&mut out).map_err(written)?;
            }
            report::table_row(&mut out, &outcome.summary).map_err(written)
        }
    });
    // The workflows simulated are reported even when others were refused; the run then fails.
    let result = result.and_then(|simulated| {
        if let Some(path) = &args.report {
            std::fs::write(path, report::html(&simulated.outcomes)).map_err(|source| {
                SimError::Output {
                    path: path.clone(),
                    source,
                }
            })?;
        }
        simulated.refused.map_or(Ok(()), Err)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(SimError::Output { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error @ SimError::Flag { .. }) => usage(&error.to_string()),
        Err(error) => {
            augur::say!("augur simulate: {error}");
            ExitCode::FAILURE
        }
    }
}

fn collect(args: &augur::collect::CollectArgs) -> ExitCode {
    use augur::collect::{CollectConfig, CollectError};
    if let Err(message) = check_input_files("--platform", &args.platform) {
        return usage(&message);
    }
    let config = match CollectConfig::from_args(args, augur::collect::now_ms()) {
        Ok(config) => config,
        Err(error @ CollectError::Flag(_)) => return usage(&error.to_string()),
        Err(error) => {
            augur::say!("augur collect: {error}");
            return ExitCode::FAILURE;
        }
    };
    match augur::collect::collect(&config, &mut |line| augur::say!("{line}")) {
        Ok(_) => ExitCode::SUCCESS,
        Err(CollectError::Output { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ExitCode::SUCCESS
        }
        Err(error @ CollectError::Flag(_)) => usage(&error.to_string()),
        Err(error) => {
            augur::say!("augur collect: {error}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &augur::serve::ServeArgs) -> ExitCode {
    use augur::serve::{serve, serve_config, ServeError};
    let config = match serve_config(args, std::env::var("AUGUR_TOKEN").ok()) {
        Ok(config) => config,
        Err(error) => return usage(&error.to_string()),
    };
    match serve(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ (ServeError::Config(_) | ServeError::Live(_))) => usage(&error.to_string()),
        Err(error) => {
            augur::say!("augur serve: {error}");
            ExitCode::FAILURE
        }
    }
}

fn usage(message: &str) -> ExitCode {
    augur::say!("augur: {message}");
    ExitCode::from(2)
}

fn failure(error: &RunError) -> ExitCode {
    augur::say!("augur: {error}");
    match error {
        RunError::Strict(_) => ExitCode::from(3),
        RunError::Disagree(_) => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}
