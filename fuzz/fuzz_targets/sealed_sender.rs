//! cargo-fuzz entry point of the `sealed_sender` target; its body (and what it checks) is in
//! fuzz/bodies/sealed_sender.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/sealed_sender/ on stable.
#![no_main]

#[path = "../bodies/sealed_sender.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
