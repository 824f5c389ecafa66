#![no_main]
//! `inngest_sdk::fuzzing::signature_header`: see its docs for the input and the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| inngest_sdk::fuzzing::signature_header(data));
