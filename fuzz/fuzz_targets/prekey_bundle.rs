//! cargo-fuzz entry point of the `prekey_bundle` target; its body (and what it checks) is in
//! fuzz/bodies/prekey_bundle.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/prekey_bundle/ on stable.
#![no_main]

#[path = "../bodies/prekey_bundle.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
