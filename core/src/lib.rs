//! # hush-core
//!
//! The sans-IO protocol core of hush: device and user identities, signed device lists, prekey
//! bundles, PQXDH session setup (X25519 + ML-KEM-768), the Double Ratchet with header encryption,
//! and safety numbers. No sockets, no threads, no clocks: callers pass bytes, time and randomness
//! in and get bytes and results out. See `../shared/DESIGN.md` in the repository for the design.
//!
//! ```
//! use hush_core::{Account, SessionConfig, SessionRecord};
//! use rand_core::OsRng;
//!
//! let mut alice = Account::new(&mut OsRng);
//! let mut bob = Account::new(&mut OsRng);
//! let one_time = bob.generate_one_time_prekeys(&mut OsRng, 1)?;
//! let kem = bob.generate_kem_prekeys(&mut OsRng, 1)?;
//! // Alice fetched this bundle of Bob's from the relay.
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
mod crypto;
mod device_list;
mod error;
mod identity;
pub mod limits;
mod message;
mod pqxdh;
mod prekeys;
mod ratchet;
mod safety_number;
mod session;
pub mod wire;

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod redaction_tests;

pub use account::Account;
pub use crypto::kem::{KEM_CIPHERTEXT_LEN, KEM_PUBLIC_KEY_LEN, KemPublicKey};
pub use crypto::{DeviceKeys, PublicKey, SigningPublicKey};
pub use device_list::SignedDeviceList;
pub use error::{Error, PrekeyKind, Result};
pub use identity::{DeviceIdentity, UserIdentity};
pub use message::{PrekeyMessage, RatchetMessage, SessionMessage};
pub use pqxdh::SessionConfig;
pub use prekeys::{KemPrekey, OneTimePrekey, PrekeyBundle, SignedPrekey};
pub use safety_number::{QR_PAYLOAD_LEN, SafetyNumber};
pub use session::SessionRecord;
