//! cargo-fuzz entry point of the `attachment_decrypt` target; its body (and what it checks) is in
//! fuzz/bodies/attachment_decrypt.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/attachment_decrypt/ on stable.
#![no_main]

#[path = "../bodies/attachment_decrypt.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
