//! augur: places the tasks of workflow DAGs onto devices by predicted resource contention.

pub mod input;
pub mod engine;
