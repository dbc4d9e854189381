//! `hush-ffi`: the foreign-function interface of hush for Kotlin (JVM/Android), Swift and Python.
//!
//! uniffi proc-macros export this crate's API; `uniffi-bindgen` (the `cli` feature's binary, run
//! in library mode on the compiled `libhush_ffi`) generates the Kotlin package `dev.hush`
//! (`ffi-kotlin/`), the Swift package `Hush` (`ffi-swift/`) and the Python package `hush`
//! (`bindings/python/`). `scripts/bindings.sh` builds, generates and tests all three.
//!
//! What is exported:
//! - [`HushError`]: the one typed error of every exported call (an exception class per variant in
//!   Kotlin, Swift and Python, one per [`hush_core::ErrorKind`]), and [`hush_error_codes`];
//! - free functions that check the shared `test-vectors/` from every language
//!   ([`compute_safety_number`], [`verify_device_list`], [`open_sealed_envelope`],
//!   [`delivery_token_hash`]) and [`hush_version`].

uniffi::setup_scaffolding!();

mod client;
mod error;
mod vectors;

pub use client::*;
pub use error::{HushError, hush_error_codes};
pub use vectors::*;

/// The version of the hush library (the `hush-ffi` crate version), e.g. `"0.1.0"`.
#[uniffi::export]
pub fn hush_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
