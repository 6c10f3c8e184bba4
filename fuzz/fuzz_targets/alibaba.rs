//! Fuzzes the alibaba reader; what is checked is in `augur_fuzz::alibaba`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| augur_fuzz::alibaba(data));
