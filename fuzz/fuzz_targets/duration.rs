#![no_main]
//! `inngest_sdk::fuzzing::duration`: see its docs for the input and the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| inngest_sdk::fuzzing::duration(data));
