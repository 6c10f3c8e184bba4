//! Fuzzes the task_events reader; what is checked is in `augur_fuzz::task_events`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| augur_fuzz::task_events(data));
