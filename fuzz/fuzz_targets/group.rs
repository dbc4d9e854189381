//! cargo-fuzz entry point of the `group` target; its body (and what it checks) is in
//! fuzz/bodies/group.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/group/ on stable.
#![no_main]

#[path = "../bodies/group.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
