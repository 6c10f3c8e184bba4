//! Fuzzes what `augur serve` and `augur collect` parse off the wire; what is checked is in
//! `augur_fuzz::http_bodies`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| augur_fuzz::http_bodies(data));
