//! cargo-fuzz entry point of the `store_anchor` target; its body (and what it checks) is in
//! fuzz/bodies/store_anchor.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/store_anchor/ on stable.
#![no_main]

#[path = "../bodies/store_anchor.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
