//! `hush-wasm`: the wasm-bindgen bindings of hush for browsers and Node, packaged for npm as
//! `hush-wasm` (see `wasm/package.json` and `scripts/wasm.sh`).
//!
//! Every fallible export throws a [`HushError`]: a JS class (an `Error` by prototype) with a stable
//! `code` string naming the kind of the failure ([`hush_core::ErrorKind::code`], the same
//! codes as the native bindings; [`error_codes`] lists them). TypeScript types come from the `.d.ts`
//! that `wasm-bindgen` generates.
//!
//! The `store` feature (on by default) adds the encrypted store on sqlite-wasm-rs; without it the
//! module holds only the protocol exports.
#![forbid(unsafe_code)]
#![deny(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(feature = "bench")]
mod bench;
#[cfg(feature = "store")]
mod client;
mod error;
mod protocol;
#[cfg(feature = "store")]
mod store;

#[cfg(feature = "bench")]
pub use bench::BenchSession;
#[cfg(feature = "store")]
pub use client::WasmClient;
pub use error::{HushError, error_codes};
pub use protocol::{SafetyNumber, safety_number, version};
#[cfg(feature = "store")]
pub use store::check_store;
