//! augur's integration tests: one binary, a module per concern.

mod checkpoint;
mod collect;
mod common;
mod determinism;
mod faults;
mod fuzz_corpus;
mod oracle_vs_dataflow;
mod prometheus;
mod property;
mod rejections;
mod report;
mod resculpt;
mod serve;
mod serve_checkpoint;
mod serve_support;
mod shared_data;
mod simulate;
