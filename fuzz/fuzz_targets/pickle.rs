//! cargo-fuzz entry point of the `pickle` target; its body (and what it checks) is in
//! fuzz/bodies/pickle.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/pickle/ on stable.
#![no_main]

#[path = "../bodies/pickle.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
