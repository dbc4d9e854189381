//! cargo-fuzz entry point of the `client_incoming` target; its body (and what it checks) is in
//! fuzz/bodies/client_incoming.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/client_incoming/ on stable.
#![no_main]

#[path = "../bodies/client_incoming.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
