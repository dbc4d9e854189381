//! cargo-fuzz entry point of the `device_list` target; its body (and what it checks) is in
//! fuzz/bodies/device_list.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/device_list/ on stable.
#![no_main]

#[path = "../bodies/device_list.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
