//! `hush-ffi`: the foreign-function interface of hush for Kotlin (JVM/Android), Swift and Python.
//!
//! This crate will wrap the client API of [`hush_core`] with uniffi proc-macros so that
//! `uniffi-bindgen` can generate the Kotlin package `dev.hush` (see `ffi-kotlin/`), the Swift
//! package `Hush` (see `ffi-swift/`) and a Python module from the compiled library.
//!
//! It is deliberately empty for now: the exported API, its error type and the generated bindings
//! arrive with the bindings issue, once the `hush-core` API they wrap has settled. Until then the
//! crate only checks that it builds against `hush-core` inside the workspace.
