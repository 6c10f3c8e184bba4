//! Fuzzes the metrics_long_csv reader; what is checked is in `augur_fuzz::metrics_long_csv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| augur_fuzz::metrics_long_csv(data));
