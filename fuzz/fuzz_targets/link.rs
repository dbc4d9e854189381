//! cargo-fuzz entry point of the `link` target; its body (and what it checks) is in
//! fuzz/bodies/link.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/link/ on stable.
#![no_main]

#[path = "../bodies/link.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
