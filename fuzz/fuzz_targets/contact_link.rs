//! cargo-fuzz entry point of the `contact_link` target; its body (and what it checks) is in
//! fuzz/bodies/contact_link.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/contact_link/ on stable.
#![no_main]

#[path = "../bodies/contact_link.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
