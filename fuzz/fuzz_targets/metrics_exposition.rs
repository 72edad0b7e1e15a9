//! /metrics label values read back by a text-format parser: pipescope_fuzz_checks::metrics_exposition says what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipescope_fuzz_checks::metrics_exposition(data));
