//! augur: places the tasks of workflow DAGs onto devices by predicted resource contention.

/// `eprintln!` that cannot panic: with standard error closed or gone (`2>&1 | head -1`, a
/// supervisor's pipe with no reader) the line is lost, where `eprintln!` would panic, and a
/// panic while reporting one aborts the process half-way through writing its outputs.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

pub mod anomalies;
pub mod bench;
pub mod bench_ingest;
pub mod bench_workflow;
pub mod catalog;
pub mod checkpoint;
pub mod cli;
pub mod cluster;
pub mod collect;
pub mod demo;
pub mod durations_eval;
pub mod engine;
pub mod epoch_group;
pub mod feed;
pub mod file_names;
pub mod forecast_eval;
pub mod handoff;
pub mod http;
pub mod http_client;
pub mod input;
pub mod lifecycle;
pub mod memory;
pub mod nab_score;
pub mod output;
pub mod pareto;
pub mod plot;
pub mod prometheus;
pub mod read_ahead;
pub mod run;
pub mod run_report;
pub mod same_file;
pub mod scaleout;
pub mod series;
pub mod serve;
pub mod simulate;
pub mod testing;
pub mod thread_cpu;
pub mod write_behind;
