//! The pipescope-inputs header: pipescope_fuzz_checks::lineage_inputs says what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipescope_fuzz_checks::lineage_inputs(data));
