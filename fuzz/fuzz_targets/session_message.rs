//! cargo-fuzz entry point of the `session_message` target; its body (and what it checks) is in
//! fuzz/bodies/session_message.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/session_message/ on stable.
#![no_main]

#[path = "../bodies/session_message.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
