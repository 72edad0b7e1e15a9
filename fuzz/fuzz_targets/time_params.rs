//! The store API's time and step parameters: pipescope_fuzz_checks::time_params says what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipescope_fuzz_checks::time_params(data));
