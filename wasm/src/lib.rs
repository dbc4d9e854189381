//! `hush-wasm`: the wasm-bindgen bindings of hush for browsers and Node.
//!
//! This crate will expose the client API of [`hush_core`] to JavaScript through `wasm-bindgen`
//! (built for `wasm32-unknown-unknown` and packaged with `wasm-bindgen-cli`), together with the
//! browser-side store.
//!
//! It is deliberately empty for now: the JavaScript API, the store and their tests (Node and
//! headless browser) arrive with the wasm issue. Until then the crate only checks that it builds
//! against `hush-core` inside the workspace.
