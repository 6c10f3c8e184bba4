//! Fuzzes the platform reader; what is checked is in `augur_fuzz::platform`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| augur_fuzz::platform(data));
