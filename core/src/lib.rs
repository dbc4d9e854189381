//! # hush-core
//!
//! The sans-IO protocol core of hush: device and user identities, signed device lists, prekey
//! bundles, PQXDH session setup (X25519 + ML-KEM-768), the Double Ratchet with header encryption,
//! and safety numbers. No sockets, no threads, no clocks: callers pass bytes, time and randomness
//! in and get bytes and results out. The protocol is specified in `docs/PROTOCOL.md`; the crates and
//! their layering are in `docs/ARCHITECTURE.md`.
//!
//! ```
//! use hush_core::{Account, SessionConfig, SessionRecord};
//! use rand_core::OsRng;
//!
//! let mut alice = Account::new(&mut OsRng);
//! let mut bob = Account::new(&mut OsRng);
//! let one_time = bob.generate_one_time_prekeys(&mut OsRng, 1)?;
//! let kem = bob.generate_kem_prekeys(&mut OsRng, 1)?;
//! // Alice fetched this bundle of Bob's from the relay; `PrekeyBundle::from_bytes` verifies it.
//! let bundle = bob.prekey_bundle(Some(one_time[0].id), Some(kem[0].id))?;
//!
//! let mut alice_to_bob = SessionRecord::new();
//! alice_to_bob.initiate(&mut OsRng, alice.identity(), &bundle, SessionConfig::default())?;
//! let wire = alice_to_bob.encrypt(&mut OsRng, b"hello Bob")?;
//!
//! let mut bob_from_alice = SessionRecord::new();
//! let plaintext = bob_from_alice.decrypt(&mut OsRng, &mut bob, &wire, SessionConfig::default())?;
//! assert_eq!(plaintext, b"hello Bob");
//!
//! let reply = bob_from_alice.encrypt(&mut OsRng, b"hi Alice")?;
//! assert_eq!(alice_to_bob.decrypt(&mut OsRng, &mut alice, &reply, SessionConfig::default())?, b"hi Alice");
//! # Ok::<(), hush_core::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod account;
pub mod attachment;
pub mod client;
pub mod content;
mod crypto;
mod delivery_token;
mod device_list;
mod error;
pub mod group;
mod identity;
pub mod limits;
pub mod link;
mod message;
mod peer;
mod pickle;
mod pqxdh;
mod prekeys;
mod ratchet;
mod safety_number;
pub mod sealed_sender;
mod session;
pub mod store;
pub mod wire;

/// Entry points for the fuzz targets (`fuzz/bodies/`) into paths no public input reaches.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::ratchet::pq::fuzzing::pq_chunks;
}

#[cfg(test)]
mod layering_tests;
#[cfg(test)]
mod redaction_tests;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod vectors;

pub use account::Account;
/// The sans-IO client state machine (see [`client`]).
pub use client::{Client, ClientConfig, ContactLink, Event};
/// Payloads: the one `Content` every message carries (see [`content`]).
pub use content::{Content, ContentBody};
pub use crypto::kem::{KEM_CIPHERTEXT_LEN, KEM_PUBLIC_KEY_LEN, KemPublicKey};
pub use crypto::{DeviceKeys, PublicKey, SigningPublicKey};
/// Delivery tokens: the secret that authorises sealed sends to a recipient; the relay keeps its hash.
pub use delivery_token::{DELIVERY_TOKEN_LEN, DeliveryToken};
pub use device_list::SignedDeviceList;
pub use error::{Error, ErrorKind, PrekeyKind, Result};
pub use identity::{DeviceIdentity, UserIdentity};
pub use message::{PrekeyMessage, RatchetMessage, SessionMessage};
pub use peer::{DeviceMessage, PeerEvent, PeerUser};
pub use pqxdh::SessionConfig;
pub use prekeys::{KemPrekey, OneTimePrekey, PrekeyBundle, SignedPrekey};
pub use safety_number::{QR_PAYLOAD_LEN, SafetyNumber};
/// Sealed sender: envelopes that hide the sender from the relay (see [`sealed_sender`]).
pub use sealed_sender::{InnerKind, Unsealed};
pub use session::SessionRecord;
/// The encrypted local store (see [`store`]).
pub use store::{Argon2Params, Store, StoreTx, Unlock};
