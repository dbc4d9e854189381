//! cargo-fuzz entry point of the `session_decrypt` target; its body (and what it checks) is in
//! fuzz/bodies/session_decrypt.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/session_decrypt/ on stable.
#![no_main]

#[path = "../bodies/session_decrypt.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
