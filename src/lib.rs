//! augur: places the tasks of workflow DAGs onto devices by predicted resource contention.

pub mod anomalies;
pub mod bench;
pub mod bench_ingest;
pub mod catalog;
pub mod checkpoint;
pub mod cli;
pub mod collect;
pub mod demo;
pub mod durations_eval;
pub mod engine;
pub mod feed;
pub mod forecast_eval;
pub mod http;
pub mod http_client;
pub mod input;
pub mod memory;
pub mod nab_score;
pub mod output;
pub mod pareto;
pub mod prometheus;
pub mod run;
pub mod scaleout;
pub mod series;
pub mod serve;
pub mod simulate;
pub mod testing;
