//! cargo-fuzz entry point of the `link_uri` target; its body (and what it checks) is in
//! fuzz/bodies/link_uri.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/link_uri/ on stable.
#![no_main]

#[path = "../bodies/link_uri.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
