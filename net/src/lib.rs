//! `hush-net`: the native client transport of hush (docs/PROTOCOL.md §15 and §16), apart from
//! the relay as libsignal keeps `rust/net` apart from `rust/protocol`. It speaks the frames of
//! `core/proto/relay.proto` over one WebSocket ([`client`]), drives hush-core's sans-IO
//! [`hush_core::Client`] over it and moves encrypted blobs over HTTP ([`messenger`]); the uniffi
//! bindings wrap it. [`tls`] is the rustls client configuration for `wss://` and `https://`.
#![forbid(unsafe_code)]
#![deny(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod client;
pub mod messenger;
pub mod tls;
