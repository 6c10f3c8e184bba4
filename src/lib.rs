//! augur: places the tasks of workflow DAGs onto devices by predicted resource contention.

pub mod anomalies;
pub mod bench;
pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod demo;
pub mod durations_eval;
pub mod engine;
pub mod feed;
pub mod forecast_eval;
pub mod input;
pub mod nab_score;
pub mod output;
pub mod pareto;
pub mod run;
pub mod series;
pub mod simulate;
pub mod testing;
