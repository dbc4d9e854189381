//! `hush-relay`: the hush blind relay, which stores and forwards ciphertext only (docs/PROTOCOL.md
//! §15). Devices speak the protobuf frames of `core/proto/relay.proto` over one WebSocket
//! (`/v1/ws`) and move encrypted blobs over HTTP (`/v1/blobs`).
//!
//! The relay keeps device public keys, signed device lists, prekeys, mailboxes of ciphertext,
//! blobs, push endpoints and hashed delivery tokens. It never sees plaintext, never stores the sender
//! of a sealed message and never logs message bytes, keys or tokens.
//!
//! ```no_run
//! # async fn run() -> Result<(), hush_relay::RelayError> {
//! let mut config = hush_relay::Config::with_data_dir("./hush-relay-data");
//! config.listen = "127.0.0.1:0".parse().map_err(|e| hush_relay::RelayError::Config(format!("{e}")))?;
//! let relay = hush_relay::start(config).await?;
//! println!("listening on {}", relay.local_addr());
//! relay.shutdown().await
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod auth;
mod blobs;
pub mod config;
mod connection;
pub mod error;
pub mod frame;
mod hub;
pub mod limits;
mod metrics;
mod push;
mod rate_limit;
mod requests;
mod server;
mod state;
pub mod storage;
pub mod webchat;

pub use config::Config;
pub use error::{RelayError, RequestError, StorageError};
pub use server::{RelayHandle, open_storage, start, start_with};
