//! augur-dataflows: the timely/differential operator graphs and the pure models they run.
#![deny(missing_docs)]

pub mod types;
