//! The store's compressed chunks: pipescope_fuzz_checks::store_chunk says what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipescope_fuzz_checks::store_chunk(data));
