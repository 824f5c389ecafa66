#![no_main]
//! `huckleberry::fuzzing::svix_webhook`: see its docs for the input and the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| huckleberry::fuzzing::svix_webhook(data));
