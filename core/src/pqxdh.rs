//! Session setup: PQXDH (Signal's PQXDH spec, rev. 3) with X25519 and ML-KEM-768, and classical
//! X3DH only where the caller explicitly allows it for peers that publish no KEM prekey.
//!
//! This module is the key agreement only: it returns the shared secret, the associated data and
//! what the first message carries; `session.rs` builds the Double Ratchet from them
//! (docs/PROTOCOL.md §5–§6).
//!
//! `SK = HKDF-SHA256(salt = 0³², ikm = F || DH1 || DH2 || DH3 [|| DH4] [|| SS], info)`, F = 32 × 0xFF.

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::account::{Account, UsedPrekeys};
use crate::crypto::kdf;
use crate::crypto::keys::KeyPair;
use crate::crypto::{DeviceKeys, PublicKey};
use crate::error::{Error, PrekeyKind, Result};
use crate::identity::DeviceIdentity;
use crate::message::PrekeyMessage;
use crate::prekeys::PrekeyBundle;

const INFO_PQ: &[u8] = b"hush/pqxdh/v1/x25519/mlkem768";
const INFO_CLASSICAL: &[u8] = b"hush/x3dh/v1/x25519";

/// Choices a caller makes about session setup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionConfig {
    /// Allow classical X3DH (no ML-KEM) with peers that publish no KEM prekey. Off by default:
    /// a classical session can be recorded today and broken by a quantum computer later.
    pub allow_classical: bool,
}

/// The associated data binding a session to both devices: initiator's keys then responder's.
pub(crate) fn associated_data(initiator: &DeviceKeys, responder: &DeviceKeys) -> Vec<u8> {
    let mut ad = Vec::with_capacity(128);
    for d in [initiator, responder] {
        ad.extend_from_slice(d.device_key().as_bytes());
        ad.extend_from_slice(d.identity_key().as_bytes());
    }
    ad
}

pub(crate) fn shared_secret(dhs: &[&[u8; 32]], kem_secret: Option<&[u8; 32]>) -> Result<Zeroizing<[u8; 32]>> {
    let mut ikm = Zeroizing::new(Vec::with_capacity(32 * 6));
    ikm.extend_from_slice(&[0xFF; 32]);
    for dh in dhs {
        ikm.extend_from_slice(*dh);
    }
    let info = match kem_secret {
        Some(ss) => {
            ikm.extend_from_slice(ss);
            INFO_PQ
        }
        None => INFO_CLASSICAL,
    };
    kdf::hkdf::<32>(Some(&[0u8; 32]), &ikm, info)
}

/// The initiator's result of the key agreement: the session secret, and what its first message
/// tells the responder. No `Debug`: it holds the session secret.
pub(crate) struct Initiation {
    /// The shared secret SK the Double Ratchet starts from.
    pub(crate) sk: Zeroizing<[u8; 32]>,
    /// Initiator's device and identity keys, then the responder's ([`associated_data`]).
    pub(crate) ad: Vec<u8>,
    /// The responder's signed prekey: its first ratchet public key.
    pub(crate) peer_signed_prekey: PublicKey,
    /// The initiator's ephemeral key.
    pub(crate) base_key: PublicKey,
    /// The prekeys the first message names, and the KEM ciphertext it carries (empty if none).
    pub(crate) signed_prekey_id: u32,
    pub(crate) one_time_prekey_id: Option<u32>,
    pub(crate) kem_prekey_id: Option<u32>,
    pub(crate) kem_ciphertext: Vec<u8>,
}

/// The responder's result of the key agreement a first message opens. No `Debug`: it holds the
/// session secret and the signed prekey's secret.
pub(crate) struct Response {
    /// The shared secret SK the Double Ratchet starts from.
    pub(crate) sk: Zeroizing<[u8; 32]>,
    /// Initiator's device and identity keys, then the responder's ([`associated_data`]).
    pub(crate) ad: Vec<u8>,
    /// The signed prekey the message named: the responder's first ratchet key pair.
    pub(crate) signed_prekey: KeyPair,
    /// Whether ML-KEM took part (PQXDH rather than classical X3DH).
    pub(crate) post_quantum: bool,
    /// The prekeys to consume once the first message decrypts.
    pub(crate) used: UsedPrekeys,
}

/// Initiator side: the key agreement with a verified bundle. Draws the base key, then (PQXDH) the
/// KEM encapsulation from `rng`.
pub(crate) fn initiate(
    rng: &mut impl CryptoRngCore,
    local: &DeviceIdentity,
    bundle: &PrekeyBundle,
    config: SessionConfig,
) -> Result<Initiation> {
    if bundle.kem_prekey.is_none() && !config.allow_classical {
        return Err(Error::PostQuantumRequired);
    }
    let spk = bundle.signed_prekey.public_key;
    let base = KeyPair::generate(rng);
    let dh1 = local.identity.agree(&spk)?;
    let dh2 = base.agree(&bundle.device.identity_key())?;
    let dh3 = base.agree(&spk)?;
    let dh4 = bundle.one_time_prekey.map(|k| base.agree(&k.public_key)).transpose()?;
    let kem = bundle.kem_prekey.as_ref().map(|k| (k.id, k.public_key.encapsulate(rng)));

    let mut dhs = vec![&*dh1, &*dh2, &*dh3];
    if let Some(dh4) = &dh4 {
        dhs.push(dh4);
    }
    let sk = shared_secret(&dhs, kem.as_ref().map(|(_, (_, ss))| &**ss))?;
    let (kem_prekey_id, kem_ciphertext) = match kem {
        Some((id, (ct, _))) => (Some(id), ct),
        None => (None, Vec::new()),
    };
    Ok(Initiation {
        sk,
        ad: associated_data(&local.keys(), &bundle.device),
        peer_signed_prekey: spk,
        base_key: base.public(),
        signed_prekey_id: bundle.signed_prekey.id,
        one_time_prekey_id: bundle.one_time_prekey.map(|k| k.id),
        kem_prekey_id,
        kem_ciphertext,
    })
}

/// Responder side: the key agreement a first message opens, without changing the account. The
/// caller decrypts the first message with the session built from it and only then consumes the
/// prekeys it names.
pub(crate) fn respond(account: &Account, msg: &PrekeyMessage, config: SessionConfig) -> Result<Response> {
    let spk = account
        .signed_prekey_pair(msg.signed_prekey_id)
        .ok_or(Error::UnknownPrekey { kind: PrekeyKind::Signed, id: msg.signed_prekey_id })?;
    let kem_secret = match msg.kem_prekey_id {
        Some(id) => Some(
            account
                .kem_prekey_secret(id)
                .ok_or(Error::UnknownPrekey { kind: PrekeyKind::Kem, id })?
                .decapsulate(&msg.kem_ciphertext)?,
        ),
        None if config.allow_classical => None,
        None => return Err(Error::ClassicalRefused),
    };
    let opk = msg
        .one_time_prekey_id
        .map(|id| account.one_time_prekey_pair(id).ok_or(Error::UnknownPrekey { kind: PrekeyKind::OneTime, id }))
        .transpose()?;

    let identity = &account.identity().identity;
    let dh1 = spk.agree(&msg.initiator.identity_key())?;
    let dh2 = identity.agree(&msg.base_key)?;
    let dh3 = spk.agree(&msg.base_key)?;
    let dh4 = opk.map(|k| k.agree(&msg.base_key)).transpose()?;
    let mut dhs = vec![&*dh1, &*dh2, &*dh3];
    if let Some(dh4) = &dh4 {
        dhs.push(dh4);
    }
    let sk = shared_secret(&dhs, kem_secret.as_deref())?;
    Ok(Response {
        sk,
        ad: associated_data(&msg.initiator, &account.identity().keys()),
        signed_prekey: spk.clone(),
        post_quantum: kem_secret.is_some(),
        used: UsedPrekeys {
            signed: msg.signed_prekey_id,
            one_time: msg.one_time_prekey_id,
            kem: msg.kem_prekey_id,
            base_key: msg.base_key,
        },
    })
}
