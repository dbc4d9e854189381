//! cargo-fuzz entry point of the `pickle_peer` target; its body (and what it checks) is in
//! fuzz/bodies/pickle_peer.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/pickle_peer/ on stable.
#![no_main]

#[path = "../bodies/pickle_peer.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
