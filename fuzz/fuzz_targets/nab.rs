//! Fuzzes the nab reader; what is checked is in `augur_fuzz::nab`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| augur_fuzz::nab(data));
