//! cargo-fuzz entry point of the `group_log` target; its body (and what it checks) is in
//! fuzz/bodies/group_log.rs, which core/tests/fuzz_corpus.rs also runs over fuzz/seeds/group_log/ on stable.
#![no_main]

#[path = "../bodies/group_log.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
