//! The primitives hush builds on, each behind one small function so a backend is a choice made by
//! benchmark (see `aead`) and every protocol file calls the same code.

pub(crate) mod aead;
pub(crate) mod kdf;
pub mod kem;
pub(crate) mod keys;

pub use keys::{DeviceKeys, PublicKey, SigningPublicKey};
