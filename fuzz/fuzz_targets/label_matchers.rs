//! Label matchers (the store API's `match`): pipescope_fuzz_checks::label_matchers says what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipescope_fuzz_checks::label_matchers(data));
