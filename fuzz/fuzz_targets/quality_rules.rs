//! A topic's quality rules and a record: pipescope_fuzz_checks::quality_rules says what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipescope_fuzz_checks::quality_rules(data));
