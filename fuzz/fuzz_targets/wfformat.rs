//! Fuzzes the wfformat reader; what is checked is in `augur_fuzz::wfformat`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| augur_fuzz::wfformat(data));
