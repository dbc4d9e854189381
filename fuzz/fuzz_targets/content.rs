//! cargo-fuzz entry point of the `content` target; its body (and what it checks) is in
//! fuzz/bodies/content.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/content/ on stable.
#![no_main]

#[path = "../bodies/content.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
