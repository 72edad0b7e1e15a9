//! What is checked: pipescope_fuzz_checks::kafka_offsets_topic (crates/pipescope-fuzz-checks), which the replay test also runs on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipescope_fuzz_checks::kafka_offsets_topic(data));
