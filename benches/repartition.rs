//! The incremental-repartitioning benchmark (see `augur::bench` for the phases).
//!
//! Measures, on one seeded synthetic stream through the whole engine:
//! - the latency of the initial map of every task (one epoch);
//! - the latency of epochs of one metric change, and of epochs of `batch_size` changes
//!   (p50/p90/p99/max from an hdrhistogram), with the tasks each one moves;
//! - the resident set size at checkpoints of epochs fed, to check that memory stays flat.
//!
//! It states whether each target was met: initial map <= 100 ms; single change p50 <= 100 us
//! and p99 <= 1 ms; 1000 changes per epoch p99 <= 20 ms; last / first RSS <= 1.05.
//!
//! Full size (1000 devices, 100 000 tasks, 1 000 000 epochs; about a minute):
//!
//! ```text
//! cargo bench --bench repartition
//! ```
//!
//! Smoke size (well under a second once built):
//!
//! ```text
//! cargo bench --bench repartition -- --smoke
//! ```
//!
//! The report goes to stdout as pretty JSON; progress goes to stderr.

use std::io::Write;
use std::process::ExitCode;

use augur::bench::{run_bench, BenchOptions};

fn main() -> ExitCode {
    let mut smoke = false;
    for argument in std::env::args().skip(1) {
        match argument.as_str() {
            "--smoke" => smoke = true,
            // cargo passes `--bench` to every bench target.
            "--bench" => {}
            other => {
                eprintln!("repartition: unknown argument {other:?} (expected --smoke)");
                return ExitCode::from(2);
            }
        }
    }
    let options = if smoke {
        BenchOptions::smoke()
    } else {
        BenchOptions::full()
    };
    let report = match run_bench(&options, &mut |line| eprintln!("{line}")) {
        Ok(Some(report)) => report,
        Ok(None) => return ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("repartition: {error}");
            return ExitCode::FAILURE;
        }
    };
    let json = match serde_json::to_string_pretty(&report) {
        Ok(json) => json,
        Err(error) => {
            eprintln!("repartition: could not encode the report: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error.
    match writeln!(stdout, "{json}") {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("repartition: {error}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}
