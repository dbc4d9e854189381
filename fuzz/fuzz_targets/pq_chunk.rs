//! cargo-fuzz entry point of the `pq_chunk` target; its body (and what it checks) is in
//! fuzz/bodies/pq_chunk.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/pq_chunk/ on stable.
#![no_main]

#[path = "../bodies/pq_chunk.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
