//! augur's integration tests: one binary, a module per concern.

mod common;
mod determinism;
mod faults;
mod fuzz_corpus;
mod oracle_vs_dataflow;
mod property;
mod rejections;
mod resculpt;
mod shared_data;
mod simulate;
