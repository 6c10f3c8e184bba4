//! Fuzzes the bitbrains reader; what is checked is in `augur_fuzz::bitbrains`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| augur_fuzz::bitbrains(data));
