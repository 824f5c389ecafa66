#![no_main]
//! `huckleberry::fuzzing::paypal_webhook`: see its docs for the input and the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| huckleberry::fuzzing::paypal_webhook(data));
