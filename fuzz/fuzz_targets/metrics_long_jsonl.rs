//! Fuzzes the metrics_long_jsonl reader; what is checked is in `augur_fuzz::metrics_long_jsonl`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| augur_fuzz::metrics_long_jsonl(data));
