//! Storage formats ("pickles") of the secret state: an [`Account`] and a [`SessionRecord`] to and from
//! the versioned protobuf messages of `core/proto/storage.proto`, for the encrypted local store.
//!
//! Loading trusts nothing: size limit, canonical encoding, version, every field's length, the
//! protocol's bounds and every signature are checked, and public keys are re-derived from their
//! secrets, so a loaded value is one the protocol code itself could have produced. Encoding is
//! deterministic: `to_bytes(from_bytes(b)) == b` for every accepted `b`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use prost::Message;
use zeroize::Zeroizing;

use crate::account::{Account, KemPrekeySecret, SignedPrekeySecret};
use crate::crypto::kem::{KEM_CIPHERTEXT_LEN, KemSecret};
use crate::crypto::keys::{KeyPair, Signature64, SigningKeyPair, array32};
use crate::crypto::{DeviceKeys, PublicKey, SigningPublicKey};
use crate::error::{Error, Result};
use crate::identity::DeviceIdentity;
use crate::limits::{
    MAX_ACCOUNT_BYTES, MAX_ARCHIVED_SESSIONS, MAX_OLD_SIGNED_PREKEYS, MAX_ONE_TIME_PREKEYS, MAX_RECEIVING_CHAINS,
    MAX_SEEN_BASE_KEYS, MAX_SESSION_RECORD_BYTES, MAX_SKIPPED_KEYS,
};
use crate::pqxdh::associated_data;
use crate::prekeys::{KemPrekey, SignedPrekey};
use crate::ratchet::keys::{ChainKey, Key32, MessageKey};
use crate::ratchet::{RatchetState, ReceivingChain};
use crate::session::{PendingPrekey, Session, SessionRecord};
use crate::wire::{self, storage};

/// Format version of [`storage::Account`].
const ACCOUNT_VERSION: u32 = 1;
/// Format version of [`storage::SessionRecord`].
const SESSION_RECORD_VERSION: u32 = 1;
/// Signed prekeys and last-resort ML-KEM prekeys an account holds: the current one and the old ones.
const MAX_ROTATED_PREKEYS: usize = MAX_OLD_SIGNED_PREKEYS + 1;
/// Session associated data: two devices' Ed25519 device key and X25519 identity key.
const AD_LEN: usize = 2 * (32 + 32);

impl Account {
    /// Encodes the account's secret state (identity, prekey secrets, replay memory) for the
    /// encrypted store. The buffer is wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let p = storage::Account {
            version: ACCOUNT_VERSION,
            device_signing_secret: self.identity.signing.secret_bytes().to_vec(),
            identity_secret: self.identity.identity.secret_bytes().to_vec(),
            signed_prekeys: self
                .signed_prekeys
                .iter()
                .map(|k| storage::SignedPrekeySecret {
                    id: k.public.id,
                    secret: k.pair.secret_bytes().to_vec(),
                    signature: k.public.signature.0.to_vec(),
                })
                .collect(),
            one_time_prekeys: self
                .one_time_prekeys
                .iter()
                .map(|(&id, pair)| storage::OneTimePrekeySecret { id, secret: pair.secret_bytes().to_vec() })
                .collect(),
            kem_prekeys: self
                .kem_prekeys
                .values()
                .map(|k| storage::KemPrekeySecret {
                    id: k.public.id,
                    seed: k.secret.seed().to_vec(),
                    last_resort: k.public.last_resort,
                    signature: k.public.signature.0.to_vec(),
                })
                .collect(),
            last_resort_ids: self.last_resort_ids.clone(),
            next_prekey_id: self.next_prekey_id,
            seen_base_keys: self
                .seen_base_keys
                .iter()
                .map(|(id, k)| storage::SeenBaseKey { signed_prekey_id: *id, base_key: k.as_bytes().to_vec() })
                .collect(),
        };
        // `encode_to_vec` allocates the exact length once, so no unwiped copy is left behind.
        Zeroizing::new(p.encode_to_vec())
    }

    /// Decodes an account written by [`Account::to_bytes`], re-deriving every public key from its
    /// secret and verifying every prekey signature against the restored device key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let p: storage::Account = wire::decode(bytes, MAX_ACCOUNT_BYTES, "account")?;
        wire::check_version("account", p.version, ACCOUNT_VERSION)?;
        // Counts first, so an oversized account costs no key generation.
        let one_time_kem = p.kem_prekeys.iter().filter(|k| !k.last_resort).count();
        let last_resort = p.kem_prekeys.len().saturating_sub(one_time_kem);
        check_count("signed prekeys", p.signed_prekeys.len(), 1, MAX_ROTATED_PREKEYS)?;
        check_count("one-time prekeys", p.one_time_prekeys.len(), 0, MAX_ONE_TIME_PREKEYS)?;
        check_count("ML-KEM prekeys", one_time_kem, 0, MAX_ONE_TIME_PREKEYS)?;
        check_count("last-resort ML-KEM prekeys", last_resort, 1, MAX_ROTATED_PREKEYS)?;
        check_count("seen base keys", p.seen_base_keys.len(), 0, MAX_SEEN_BASE_KEYS)?;
        if p.next_prekey_id == 0 {
            return Err(Error::Malformed { what: "next prekey id" });
        }

        let signing = SigningKeyPair::from_secret_bytes(&*secret32(&p.device_signing_secret, "device signing key")?);
        let identity_pair = KeyPair::from_secret_bytes(*secret32(&p.identity_secret, "identity key")?);
        let identity = DeviceIdentity::from_parts(signing, identity_pair);
        let device = identity.keys();
        // Prekey ids share one space (see `Account::take_id`).
        let mut ids = BTreeSet::new();
        let mut unique_id =
            |id: u32| if ids.insert(id) { Ok(()) } else { Err(Error::Malformed { what: "prekey ids" }) };

        let mut signed_prekeys = Vec::with_capacity(p.signed_prekeys.len());
        for k in &p.signed_prekeys {
            unique_id(k.id)?;
            let pair = KeyPair::from_secret_bytes(*secret32(&k.secret, "signed prekey secret")?);
            let public = SignedPrekey {
                id: k.id,
                public_key: pair.public(),
                signature: signature64(&k.signature, "signed prekey signature")?,
            };
            public.verify(&device)?;
            signed_prekeys.push(SignedPrekeySecret { public, pair });
        }

        let mut one_time_prekeys = BTreeMap::new();
        for k in &p.one_time_prekeys {
            // Ascending ids: the one encoding of a map, so encoding stays deterministic.
            if one_time_prekeys.last_key_value().is_some_and(|(&last, _)| last >= k.id) {
                return Err(Error::Malformed { what: "one-time prekey order" });
            }
            unique_id(k.id)?;
            one_time_prekeys.insert(k.id, KeyPair::from_secret_bytes(*secret32(&k.secret, "one-time prekey secret")?));
        }

        let mut kem_prekeys = BTreeMap::new();
        for k in &p.kem_prekeys {
            if kem_prekeys.last_key_value().is_some_and(|(&last, _)| last >= k.id) {
                return Err(Error::Malformed { what: "ML-KEM prekey order" });
            }
            unique_id(k.id)?;
            let seed = Zeroizing::new(
                <[u8; 64]>::try_from(k.seed.as_slice()).map_err(|_| Error::Malformed { what: "ML-KEM prekey seed" })?,
            );
            let secret = KemSecret::from_seed(*seed);
            let public = KemPrekey {
                id: k.id,
                public_key: secret.public(),
                last_resort: k.last_resort,
                signature: signature64(&k.signature, "ML-KEM prekey signature")?,
            };
            public.verify(&device)?;
            kem_prekeys.insert(k.id, KemPrekeySecret { public, secret });
        }

        // Exactly the last-resort KEM prekeys, each named once.
        let named: BTreeSet<u32> = p.last_resort_ids.iter().copied().collect();
        if named.len() != p.last_resort_ids.len()
            || named.len() != last_resort
            || !named.iter().all(|id| kem_prekeys.get(id).is_some_and(|k| k.public.last_resort))
        {
            return Err(Error::Malformed { what: "last-resort prekey ids" });
        }

        let seen_base_keys = p
            .seen_base_keys
            .iter()
            .map(|s| {
                if !signed_prekeys.iter().any(|k| k.public.id == s.signed_prekey_id) {
                    return Err(Error::Malformed { what: "seen base key prekey id" });
                }
                Ok((s.signed_prekey_id, PublicKey::from_slice(&s.base_key, "seen base key")?))
            })
            .collect::<Result<VecDeque<_>>>()?;

        Ok(Self {
            identity,
            signed_prekeys,
            one_time_prekeys,
            kem_prekeys,
            last_resort_ids: p.last_resort_ids.clone(),
            next_prekey_id: p.next_prekey_id,
            seen_base_keys,
        })
    }
}

impl SessionRecord {
    /// Encodes every session with this peer device (ratchet secrets, skipped message keys) for
    /// the encrypted store. The buffer is wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(record_to_storage(self).encode_to_vec())
    }

    /// Decodes a record written by [`SessionRecord::to_bytes`], enforcing the ratchet's bounds
    /// (receiving chains, skipped keys, archived sessions) and verifying every device key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let p: storage::SessionRecord = wire::decode(bytes, MAX_SESSION_RECORD_BYTES, "session record")?;
        record_from_storage(&p)
    }
}

/// A record as its storage message (also embedded in a peer user's, see `pickle_peer.rs`).
pub(crate) fn record_to_storage(r: &SessionRecord) -> storage::SessionRecord {
    storage::SessionRecord {
        version: SESSION_RECORD_VERSION,
        active: r.active.as_ref().map(session_to_storage),
        archived: r.archived.iter().map(session_to_storage).collect(),
    }
}

/// Every check of [`SessionRecord::from_bytes`] after decoding.
pub(crate) fn record_from_storage(p: &storage::SessionRecord) -> Result<SessionRecord> {
    wire::check_version("session record", p.version, SESSION_RECORD_VERSION)?;
    check_count("archived sessions", p.archived.len(), 0, MAX_ARCHIVED_SESSIONS)?;
    let active = p.active.as_ref().map(session_from_storage).transpose()?;
    let archived = p.archived.iter().map(session_from_storage).collect::<Result<VecDeque<_>>>()?;
    // A record belongs to one peer device (`SessionRecord::check_peer`).
    let mut sessions = active.iter().chain(&archived);
    if let Some(first) = sessions.next() {
        let same = |s: &Session| {
            s.peer.device_key() == first.peer.device_key() && s.peer.identity_key() == first.peer.identity_key()
        };
        if !sessions.all(same) {
            return Err(Error::Malformed { what: "session record peers" });
        }
    }
    Ok(SessionRecord { active, archived })
}

fn session_to_storage(s: &Session) -> storage::Session {
    storage::Session {
        ratchet: Some(ratchet_to_storage(&s.ratchet)),
        peer: Some(device_keys_to_storage(&s.peer)),
        ad: s.ad.clone(),
        base_key: s.base_key.as_bytes().to_vec(),
        post_quantum: s.post_quantum,
        pending_prekey: s.pending_prekey.as_ref().map(|p| storage::PendingPrekey {
            local: Some(device_keys_to_storage(&p.local)),
            signed_prekey_id: p.signed_prekey_id,
            one_time_prekey_id: p.one_time_prekey_id,
            kem_prekey_id: p.kem_prekey_id,
            kem_ciphertext: p.kem_ciphertext.clone(),
        }),
    }
}

fn session_from_storage(p: &storage::Session) -> Result<Session> {
    let ratchet = ratchet_from_storage(wire::required(&p.ratchet, "session ratchet")?)?;
    let peer = device_keys_from_storage(wire::required(&p.peer, "session peer")?)?;
    let base_key = PublicKey::from_slice(&p.base_key, "session base key")?;
    let (first, second) = p.ad.split_at_checked(AD_LEN / 2).ok_or(Error::Malformed { what: "session ad" })?;
    if second.len() != AD_LEN / 2 {
        return Err(Error::Malformed { what: "session ad" });
    }
    let pending_prekey = match &p.pending_prekey {
        None => None,
        Some(pending) => {
            let local = device_keys_from_storage(wire::required(&pending.local, "pending prekey device")?)?;
            let ct_len = if pending.kem_prekey_id.is_some() { KEM_CIPHERTEXT_LEN } else { 0 };
            if pending.kem_ciphertext.len() != ct_len {
                return Err(Error::Malformed { what: "pending prekey ML-KEM ciphertext" });
            }
            if p.post_quantum != pending.kem_prekey_id.is_some() {
                return Err(Error::Malformed { what: "session post-quantum flag" });
            }
            Some(PendingPrekey {
                local,
                signed_prekey_id: pending.signed_prekey_id,
                one_time_prekey_id: pending.one_time_prekey_id,
                kem_prekey_id: pending.kem_prekey_id,
                kem_ciphertext: pending.kem_ciphertext.clone(),
            })
        }
    };
    // The AD binds both devices, initiator first: the peer is one of them, and an initiator
    // still awaiting a reply knows both.
    let ad_ok = match &pending_prekey {
        Some(pending) => p.ad == associated_data(&pending.local, &peer),
        None => [first, second].iter().any(|half| names_device(half, &peer)),
    };
    if !ad_ok {
        return Err(Error::Malformed { what: "session ad" });
    }
    Ok(Session { ratchet, peer, ad: p.ad.clone(), base_key, post_quantum: p.post_quantum, pending_prekey })
}

/// Whether `half` of a session's AD is `device`'s device key then identity key.
fn names_device(half: &[u8], device: &DeviceKeys) -> bool {
    half.get(..32) == Some(device.device_key().as_bytes().as_slice())
        && half.get(32..) == Some(device.identity_key().as_bytes().as_slice())
}

fn ratchet_to_storage(r: &RatchetState) -> storage::RatchetState {
    storage::RatchetState {
        root_key: r.root_key.0.to_vec(),
        sending_ratchet_secret: r.sending_ratchet.secret_bytes().to_vec(),
        sending_chain: r.sending_chain.as_ref().map(chain_key_to_storage),
        sending_header_key: r.sending_header_key.as_ref().map(|k| k.0.to_vec()),
        next_sending_header_key: r.next_sending_header_key.0.to_vec(),
        previous_counter: r.previous_counter,
        receiving: r
            .receiving
            .iter()
            .map(|c| storage::ReceivingChain {
                ratchet_key: c.ratchet_key.as_bytes().to_vec(),
                header_key: c.header_key.0.to_vec(),
                chain_key: c.chain_key.as_ref().map(chain_key_to_storage),
                next_index: c.next_index,
                skipped: skipped_keys_to_storage(&c.skipped),
            })
            .collect(),
        next_receiving_header_key: r.next_receiving_header_key.0.to_vec(),
    }
}

fn ratchet_from_storage(p: &storage::RatchetState) -> Result<RatchetState> {
    check_count("receiving chains", p.receiving.len(), 0, MAX_RECEIVING_CHAINS)?;
    let skipped: usize = p.receiving.iter().map(|c| c.skipped.len()).sum();
    check_count("skipped message keys", skipped, 0, MAX_SKIPPED_KEYS)?;
    // Both or neither: a responder gets its first sending chain and header key in one ratchet step.
    let (sending_chain, sending_header_key) = match (&p.sending_chain, &p.sending_header_key) {
        (Some(chain), Some(key)) => {
            (Some(chain_key_from_storage(chain, "sending chain key")?), Some(key32(key, "sending header key")?))
        }
        (None, None) => (None, None),
        _ => return Err(Error::Malformed { what: "sending chain" }),
    };
    Ok(RatchetState {
        root_key: key32(&p.root_key, "root key")?,
        sending_ratchet: KeyPair::from_secret_bytes(*secret32(&p.sending_ratchet_secret, "sending ratchet key")?),
        sending_chain,
        sending_header_key,
        next_sending_header_key: key32(&p.next_sending_header_key, "next sending header key")?,
        previous_counter: p.previous_counter,
        receiving: p.receiving.iter().map(receiving_chain_from_storage).collect::<Result<_>>()?,
        next_receiving_header_key: key32(&p.next_receiving_header_key, "next receiving header key")?,
    })
}

fn receiving_chain_from_storage(p: &storage::ReceivingChain) -> Result<ReceivingChain> {
    let chain_key = p.chain_key.as_ref().map(|c| chain_key_from_storage(c, "receiving chain key")).transpose()?;
    // The ratchet keeps a receiving chain key exactly at the next expected message.
    if chain_key.as_ref().is_some_and(|c| c.index != p.next_index) {
        return Err(Error::Malformed { what: "receiving chain index" });
    }
    let skipped =
        skipped_keys_from_storage(&p.skipped, p.next_index, "skipped message key", "skipped message key index")?;
    Ok(ReceivingChain {
        ratchet_key: PublicKey::from_slice(&p.ratchet_key, "receiving ratchet key")?,
        header_key: key32(&p.header_key, "receiving header key")?,
        chain_key,
        next_index: p.next_index,
        skipped,
    })
}

/// Skipped message keys of a ratchet receiving chain or a group sender chain.
pub(crate) fn skipped_keys_to_storage(keys: &[MessageKey]) -> Vec<storage::SkippedKey> {
    keys.iter().map(|k| storage::SkippedKey { index: k.index, key: k.key.to_vec() }).collect()
}

/// Decodes skipped message keys, which must be ascending (chains drop the oldest first) and all
/// before `next_index`, the next message the chain expects. `key_what` and `index_what` name the
/// field in errors.
pub(crate) fn skipped_keys_from_storage(
    keys: &[storage::SkippedKey],
    next_index: u32,
    key_what: &'static str,
    index_what: &'static str,
) -> Result<Vec<MessageKey>> {
    let mut skipped: Vec<MessageKey> = Vec::with_capacity(keys.len());
    for k in keys {
        if k.index >= next_index || skipped.last().is_some_and(|last| last.index >= k.index) {
            return Err(Error::Malformed { what: index_what });
        }
        skipped.push(MessageKey { key: array32(&k.key, key_what)?, index: k.index });
    }
    Ok(skipped)
}

pub(crate) fn chain_key_to_storage(c: &ChainKey) -> storage::ChainKey {
    storage::ChainKey { key: c.key.to_vec(), index: c.index }
}

pub(crate) fn chain_key_from_storage(p: &storage::ChainKey, what: &'static str) -> Result<ChainKey> {
    Ok(ChainKey { key: array32(&p.key, what)?, index: p.index })
}

fn device_keys_to_storage(k: &DeviceKeys) -> storage::DeviceKeys {
    storage::DeviceKeys {
        device_key: k.device_key().as_bytes().to_vec(),
        identity_key: k.identity_key().as_bytes().to_vec(),
        identity_signature: k.signature().to_vec(),
    }
}

fn device_keys_from_storage(p: &storage::DeviceKeys) -> Result<DeviceKeys> {
    let signature = signature64(&p.identity_signature, "identity key signature")?;
    DeviceKeys::new(
        SigningPublicKey::from_slice(&p.device_key, "device key")?,
        PublicKey::from_slice(&p.identity_key, "identity key")?,
        &signature.0,
    )
}

/// `count` within `min..=max`: below is [`Error::Malformed`], above [`Error::TooLarge`].
pub(crate) fn check_count(what: &'static str, count: usize, min: usize, max: usize) -> Result<()> {
    if count > max {
        return Err(Error::TooLarge { what, size: count, max });
    }
    if count < min {
        return Err(Error::Malformed { what });
    }
    Ok(())
}

pub(crate) fn secret32(bytes: &[u8], what: &'static str) -> Result<Zeroizing<[u8; 32]>> {
    Ok(Zeroizing::new(array32(bytes, what)?))
}

fn key32(bytes: &[u8], what: &'static str) -> Result<Key32> {
    Ok(Key32(array32(bytes, what)?))
}

fn signature64(bytes: &[u8], what: &'static str) -> Result<Signature64> {
    <[u8; 64]>::try_from(bytes).map(Signature64).map_err(|_| Error::Malformed { what })
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::RngCore;

    use super::*;
    use crate::test_util::assert_no_secret;

    use crate::test_util::{PQ, rng};

    /// Round trip, checking that re-encoding gives the same bytes.
    fn reload_account(account: &Account) -> Account {
        let bytes = account.to_bytes();
        let back = Account::from_bytes(&bytes).unwrap();
        assert_eq!(*back.to_bytes(), *bytes);
        back
    }

    fn reload_record(record: &SessionRecord) -> SessionRecord {
        let bytes = record.to_bytes();
        let back = SessionRecord::from_bytes(&bytes).unwrap();
        assert_eq!(*back.to_bytes(), *bytes);
        back
    }

    /// Loads, keeping only the outcome (the secret types have no `PartialEq`).
    fn load_account(bytes: &[u8]) -> Result<()> {
        Account::from_bytes(bytes).map(drop)
    }

    fn load_record(bytes: &[u8]) -> Result<()> {
        SessionRecord::from_bytes(bytes).map(drop)
    }

    /// Re-encodes `bytes` after `edit`, bypassing every check but protobuf's.
    fn edit_account(bytes: &[u8], edit: impl FnOnce(&mut storage::Account)) -> Vec<u8> {
        let mut p = storage::Account::decode(bytes).unwrap();
        edit(&mut p);
        p.encode_to_vec()
    }

    fn edit_record(bytes: &[u8], edit: impl FnOnce(&mut storage::SessionRecord)) -> Vec<u8> {
        let mut p = storage::SessionRecord::decode(bytes).unwrap();
        edit(&mut p);
        p.encode_to_vec()
    }

    fn assert_same_account(a: &Account, b: &Account) {
        assert_eq!(a.device_keys(), b.device_keys());
        let publics = |x: &Account| x.signed_prekeys.iter().map(|k| k.public).collect::<Vec<_>>();
        assert_eq!(publics(a), publics(b));
        let kem = |x: &Account| x.kem_prekeys.values().map(|k| k.public.clone()).collect::<Vec<_>>();
        assert_eq!(kem(a), kem(b));
        let otk = |x: &Account| x.one_time_prekeys.iter().map(|(&id, k)| (id, k.public())).collect::<Vec<_>>();
        assert_eq!(otk(a), otk(b));
        assert_eq!(a.last_resort_ids, b.last_resort_ids);
        assert_eq!(a.next_prekey_id, b.next_prekey_id);
        assert_eq!(a.seen_base_keys, b.seen_base_keys);
    }

    /// Two devices mid-conversation, with what the network still holds back.
    struct Conversation {
        alice: Account,
        bob: Account,
        a: SessionRecord,
        b: SessionRecord,
        /// Messages to Bob not yet delivered, with their plaintexts.
        to_bob: Vec<(Vec<u8>, Vec<u8>)>,
        /// Messages to Alice not yet delivered.
        to_alice: Vec<(Vec<u8>, Vec<u8>)>,
    }

    fn send(record: &mut SessionRecord, rng: &mut ChaCha20Rng, text: &str) -> (Vec<u8>, Vec<u8>) {
        (record.encrypt(rng, text.as_bytes()).unwrap(), text.as_bytes().to_vec())
    }

    fn recv(record: &mut SessionRecord, account: &mut Account, rng: &mut ChaCha20Rng, m: &(Vec<u8>, Vec<u8>)) {
        assert_eq!(record.decrypt(rng, account, &m.0, PQ).unwrap(), m.1);
    }

    /// A conversation over three of Alice's sending chains with messages held back on each, some
    /// of Bob's held back too, then a second session Alice opens (archiving the first on both sides).
    fn conversation(rng: &mut ChaCha20Rng) -> Conversation {
        let mut alice = Account::new(rng);
        let mut bob = Account::new(rng);
        let otk = bob.generate_one_time_prekeys(rng, 2).unwrap();
        let kem = bob.generate_kem_prekeys(rng, 2).unwrap();
        let bundle = bob.prekey_bundle(Some(otk[0].id), Some(kem[0].id)).unwrap();
        let (mut a, mut b) = (SessionRecord::new(), SessionRecord::new());
        a.initiate(rng, alice.identity(), &bundle, PQ).unwrap();
        let (mut to_bob, mut to_alice) = (Vec::new(), Vec::new());
        for turn in 0..3 {
            // Alice sends four; Bob gets only the third now.
            let mut sent: Vec<_> = (0..4).map(|i| send(&mut a, rng, &format!("a{turn}.{i}"))).collect();
            let third = sent.remove(2);
            recv(&mut b, &mut bob, rng, &third);
            to_bob.extend(sent);
            // Bob answers twice; Alice gets the second.
            let first = send(&mut b, rng, &format!("b{turn}.0"));
            let second = send(&mut b, rng, &format!("b{turn}.1"));
            recv(&mut a, &mut alice, rng, &second);
            to_alice.push(first);
        }
        let s1 = b.active.as_ref().unwrap();
        assert!(s1.ratchet.receiving.len() >= 3);
        assert!(s1.ratchet.receiving.iter().filter(|c| !c.skipped.is_empty()).count() >= 3);
        assert!(a.active.as_ref().unwrap().ratchet.skipped_count() > 0);

        // Alice opens a second session (as after a reinstall of her session state) from a bundle
        // without one-time prekeys, so Bob must remember its base key; Bob takes it.
        let bundle = bob.prekey_bundle(None, None).unwrap();
        a.initiate(rng, alice.identity(), &bundle, PQ).unwrap();
        let opening = send(&mut a, rng, "second session");
        recv(&mut b, &mut bob, rng, &opening);
        assert_eq!((a.archived_count(), b.archived_count()), (1, 1));
        assert!(a.awaiting_reply());
        assert!(!bob.seen_base_keys.is_empty());
        Conversation { alice, bob, a, b, to_bob, to_alice }
    }

    /// Delivers everything held back (newest first), then talks both ways; returns every message sent.
    fn finish(c: &mut Conversation, rng: &mut ChaCha20Rng) -> Vec<Vec<u8>> {
        let mut wire = Vec::new();
        for m in c.to_bob.iter().rev() {
            recv(&mut c.b, &mut c.bob, rng, m);
        }
        for m in &c.to_bob {
            assert_eq!(c.b.decrypt(rng, &mut c.bob, &m.0, PQ), Err(Error::DuplicateMessage));
        }
        for m in c.to_alice.iter().rev() {
            recv(&mut c.a, &mut c.alice, rng, m);
        }
        for round in 0..4 {
            let m = send(&mut c.a, rng, &format!("after a{round}"));
            recv(&mut c.b, &mut c.bob, rng, &m);
            let r = send(&mut c.b, rng, &format!("after b{round}"));
            recv(&mut c.a, &mut c.alice, rng, &r);
            wire.extend([m.0, r.0]);
        }
        wire
    }

    #[test]
    fn fresh_account_round_trips() {
        let account = Account::new(&mut rng(1));
        let back = reload_account(&account);
        assert_same_account(&account, &back);
        assert_eq!(back.prekey_bundle(None, None).unwrap(), account.prekey_bundle(None, None).unwrap());
    }

    #[test]
    fn used_account_round_trips_and_still_accepts_sessions() {
        let mut rng = rng(2);
        let alice = Account::new(&mut rng);
        let mut bob = Account::new(&mut rng);
        let otk = bob.generate_one_time_prekeys(&mut rng, 5).unwrap();
        let kem = bob.generate_kem_prekeys(&mut rng, 3).unwrap();
        for _ in 0..4 {
            bob.rotate_signed_prekey(&mut rng);
            bob.rotate_last_resort_kem_prekey(&mut rng);
        }
        // Bundles fetched before the restart; one without one-time prekeys opens a session first, so
        // Bob remembers its base key.
        let early = bob.prekey_bundle(None, None).unwrap();
        let later = bob.prekey_bundle(Some(otk[3].id), Some(kem[2].id)).unwrap();
        let last_resort = bob.prekey_bundle(None, None).unwrap();
        let mut a = SessionRecord::new();
        a.initiate(&mut rng, alice.identity(), &early, PQ).unwrap();
        let first = a.encrypt(&mut rng, b"first").unwrap();
        SessionRecord::new().decrypt(&mut rng, &mut bob, &first, PQ).unwrap();
        assert_eq!((bob.signed_prekeys.len(), bob.last_resort_ids.len(), bob.seen_base_keys.len()), (3, 3, 1));

        let mut restored = reload_account(&bob);
        assert_same_account(&bob, &restored);
        // A replayed first message is still refused, and prekeys published before still work.
        assert_eq!(SessionRecord::new().decrypt(&mut rng, &mut restored, &first, PQ), Err(Error::DuplicateMessage));
        for bundle in [&later, &last_resort] {
            let mut a = SessionRecord::new();
            a.initiate(&mut rng, alice.identity(), bundle, PQ).unwrap();
            let m = a.encrypt(&mut rng, b"after restart").unwrap();
            let mut b = SessionRecord::new();
            assert_eq!(b.decrypt(&mut rng, &mut restored, &m, PQ).unwrap(), b"after restart");
        }
        assert_eq!(restored.one_time_prekey_count(), 4);
    }

    #[test]
    fn empty_record_round_trips() {
        let back = reload_record(&SessionRecord::new());
        assert!(!back.has_session() && back.archived_count() == 0);
    }

    #[test]
    fn records_round_trip_mid_conversation_and_carry_on() {
        let mut rng = rng(3);
        let mut original = conversation(&mut rng);
        let mut restored = Conversation {
            alice: reload_account(&original.alice),
            bob: reload_account(&original.bob),
            a: reload_record(&original.a),
            b: reload_record(&original.b),
            to_bob: original.to_bob.clone(),
            to_alice: original.to_alice.clone(),
        };
        // Same randomness on both copies: the restored state must behave exactly as the original.
        let wire_original = finish(&mut original, &mut self::rng(30));
        let wire_restored = finish(&mut restored, &mut self::rng(30));
        assert_eq!(wire_original, wire_restored);
        assert_eq!(*original.a.to_bytes(), *restored.a.to_bytes());
        assert_eq!(*original.b.to_bytes(), *restored.b.to_bytes());
        assert_eq!(*original.bob.to_bytes(), *restored.bob.to_bytes());
        reload_record(&restored.a);
        reload_record(&restored.b);
    }

    #[test]
    fn full_archive_round_trips_and_more_is_refused() {
        let mut rng = rng(4);
        let alice = Account::new(&mut rng);
        let bob = Account::new(&mut rng);
        let bundle = bob.prekey_bundle(None, None).unwrap();
        let mut a = SessionRecord::new();
        for _ in 0..=MAX_ARCHIVED_SESSIONS {
            a.initiate(&mut rng, alice.identity(), &bundle, PQ).unwrap();
        }
        assert_eq!(a.archived_count(), MAX_ARCHIVED_SESSIONS);
        let bytes = reload_record(&a).to_bytes();
        let more = edit_record(&bytes, |r| {
            let extra = r.archived[0].clone();
            r.archived.push(extra);
        });
        assert_eq!(
            load_record(&more),
            Err(Error::TooLarge {
                what: "archived sessions",
                size: MAX_ARCHIVED_SESSIONS + 1,
                max: MAX_ARCHIVED_SESSIONS
            })
        );
    }

    #[test]
    fn oversized_truncated_garbage_and_versions_are_typed_errors() {
        let mut rng = rng(5);
        let account = Account::new(&mut rng);
        let bytes = account.to_bytes();
        let big = vec![0u8; MAX_ACCOUNT_BYTES + 1];
        assert_eq!(
            load_account(&big),
            Err(Error::TooLarge { what: "account", size: MAX_ACCOUNT_BYTES + 1, max: MAX_ACCOUNT_BYTES })
        );
        let big = vec![0u8; MAX_SESSION_RECORD_BYTES + 1];
        assert!(matches!(load_record(&big), Err(Error::TooLarge { what: "session record", .. })));

        // Every strict prefix of a fresh account fails (the last field, next_prekey_id, is required).
        for n in 0..bytes.len() {
            assert!(load_account(&bytes[..n]).is_err(), "prefix of {n} bytes accepted");
        }
        assert_eq!(load_account(&bytes[..bytes.len() - 1]), Err(Error::Malformed { what: "account" }));

        let record = conversation(&mut rng).b;
        let rbytes = record.to_bytes();
        assert_eq!(load_record(&rbytes[..rbytes.len() - 1]), Err(Error::Malformed { what: "session record" }));
        // Cut inside a session.
        assert_eq!(load_record(&rbytes[..rbytes.len() / 2]), Err(Error::Malformed { what: "session record" }));

        assert_eq!(load_account(&[0xFF; 64]), Err(Error::Malformed { what: "account" }));
        assert_eq!(load_record(&[0xFF; 64]), Err(Error::Malformed { what: "session record" }));
        for len in [1usize, 7, 64, 500, 5000] {
            for _ in 0..50 {
                let mut garbage = vec![0u8; len];
                rng.fill_bytes(&mut garbage);
                assert!(load_account(&garbage).is_err());
                assert!(load_record(&garbage).is_err());
            }
        }
        // An unknown field breaks the canonical encoding.
        let mut extra = bytes.to_vec();
        extra.extend_from_slice(&[0xF8, 0x01, 0x01]);
        assert_eq!(load_account(&extra), Err(Error::Malformed { what: "account" }));

        for version in [0, 2, u32::MAX] {
            let other = edit_account(&bytes, |p| p.version = version);
            assert_eq!(load_account(&other), Err(Error::UnsupportedVersion { what: "account", version }));
            let other = edit_record(&rbytes, |p| p.version = version);
            assert_eq!(load_record(&other), Err(Error::UnsupportedVersion { what: "session record", version }));
        }
    }

    #[test]
    fn bad_account_fields_are_typed_errors() {
        let mut rng = rng(6);
        let mut account = Account::new(&mut rng);
        account.generate_one_time_prekeys(&mut rng, 3).unwrap();
        account.generate_kem_prekeys(&mut rng, 2).unwrap();
        let bytes = account.to_bytes();
        let check = |edit: &dyn Fn(&mut storage::Account), expected: Error| {
            assert_eq!(load_account(&edit_account(&bytes, edit)), Err(expected));
        };
        let malformed = |what| Error::Malformed { what };
        check(&|p| p.device_signing_secret.truncate(31), malformed("device signing key"));
        check(&|p| p.identity_secret.push(0), malformed("identity key"));
        // Another device key: the stored prekey signatures no longer verify.
        check(&|p| p.device_signing_secret[0] ^= 1, Error::BadSignature { what: "signed prekey" });
        check(&|p| p.signed_prekeys[0].secret[1] ^= 1, Error::BadSignature { what: "signed prekey" });
        check(
            &|p| {
                p.signed_prekeys[0].signature.pop();
            },
            malformed("signed prekey signature"),
        );
        check(&|p| p.signed_prekeys.clear(), malformed("signed prekeys"));
        check(
            &|p| {
                let k = p.signed_prekeys[0].clone();
                p.signed_prekeys.extend([k.clone(), k.clone(), k]);
            },
            Error::TooLarge { what: "signed prekeys", size: 4, max: 3 },
        );
        check(&|p| p.one_time_prekeys[1].secret.truncate(0), malformed("one-time prekey secret"));
        check(&|p| p.one_time_prekeys.swap(0, 1), malformed("one-time prekey order"));
        check(&|p| p.one_time_prekeys[0].id = p.signed_prekeys[0].id, malformed("prekey ids"));
        check(
            &|p| {
                let k = p.one_time_prekeys[0].clone();
                p.one_time_prekeys =
                    (1..=1001).map(|id| storage::OneTimePrekeySecret { id, secret: k.secret.clone() }).collect();
            },
            Error::TooLarge { what: "one-time prekeys", size: 1001, max: MAX_ONE_TIME_PREKEYS },
        );
        check(&|p| p.kem_prekeys[0].seed[5] ^= 1, Error::BadSignature { what: "ML-KEM prekey" });
        check(&|p| p.kem_prekeys[0].seed.truncate(32), malformed("ML-KEM prekey seed"));
        // The last-resort flag is signed (kem_prekeys[0] is the last-resort key, [1] a one-time key).
        check(&|p| p.kem_prekeys[1].last_resort ^= true, Error::BadSignature { what: "ML-KEM prekey" });
        check(&|p| p.kem_prekeys.swap(0, 1), malformed("ML-KEM prekey order"));
        check(&|p| p.last_resort_ids.push(p.last_resort_ids[0]), malformed("last-resort prekey ids"));
        check(&|p| p.last_resort_ids[0] = p.kem_prekeys[1].id, malformed("last-resort prekey ids"));
        check(&|p| p.last_resort_ids.clear(), malformed("last-resort prekey ids"));
        check(&|p| p.next_prekey_id = 0, malformed("next prekey id"));
        let seen = |p: &storage::Account, key: Vec<u8>| storage::SeenBaseKey {
            signed_prekey_id: p.signed_prekeys[0].id,
            base_key: key,
        };
        check(&|p| p.seen_base_keys.push(seen(p, vec![1; 31])), malformed("seen base key"));
        check(
            &|p| p.seen_base_keys.push(storage::SeenBaseKey { signed_prekey_id: 9999, base_key: vec![9; 32] }),
            malformed("seen base key prekey id"),
        );
        check(
            &|p| p.seen_base_keys = vec![seen(p, vec![9; 32]); MAX_SEEN_BASE_KEYS + 1],
            Error::TooLarge { what: "seen base keys", size: MAX_SEEN_BASE_KEYS + 1, max: MAX_SEEN_BASE_KEYS },
        );
    }

    #[test]
    fn bad_session_fields_are_typed_errors() {
        let mut rng = rng(7);
        let c = conversation(&mut rng);
        // Bob's active session is the second one; his archived one has the out-of-order chains.
        let bytes = c.b.to_bytes();
        let a_bytes = c.a.to_bytes();
        let malformed = |what| Err(Error::Malformed { what });
        let ratchet = |edit: &dyn Fn(&mut storage::RatchetState)| {
            load_record(&edit_record(&bytes, |r| edit(r.archived[0].ratchet.as_mut().unwrap())))
        };
        assert_eq!(ratchet(&|r| r.root_key.truncate(16)), malformed("root key"));
        assert_eq!(ratchet(&|r| r.sending_ratchet_secret.clear()), malformed("sending ratchet key"));
        assert_eq!(ratchet(&|r| r.sending_header_key = None), malformed("sending chain"));
        assert_eq!(ratchet(&|r| r.next_receiving_header_key.push(0)), malformed("next receiving header key"));
        assert_eq!(
            ratchet(&|r| {
                r.receiving[1].ratchet_key.pop();
            }),
            malformed("receiving ratchet key")
        );
        assert_eq!(
            ratchet(&|r| r.receiving[0].chain_key.as_mut().unwrap().index += 1),
            malformed("receiving chain index")
        );
        assert_eq!(ratchet(&|r| r.receiving[1].skipped.reverse()), malformed("skipped message key index"));
        assert_eq!(ratchet(&|r| r.receiving[1].next_index = 0), malformed("skipped message key index"));
        assert_eq!(ratchet(&|r| r.receiving[1].skipped[0].key.clear()), malformed("skipped message key"));
        assert_eq!(
            ratchet(&|r| {
                let chain = r.receiving[0].clone();
                r.receiving.resize(MAX_RECEIVING_CHAINS + 1, chain);
            }),
            Err(Error::TooLarge {
                what: "receiving chains",
                size: MAX_RECEIVING_CHAINS + 1,
                max: MAX_RECEIVING_CHAINS
            })
        );
        let many_skipped = ratchet(&|r| {
            let key = r.receiving[1].skipped[0].key.clone();
            r.receiving[1].next_index = 5_000;
            r.receiving[1].skipped =
                (0..MAX_SKIPPED_KEYS as u32).map(|index| storage::SkippedKey { index, key: key.clone() }).collect();
        });
        // The limit is per session: the other chains' keys count too.
        assert!(matches!(
            many_skipped,
            Err(Error::TooLarge { what: "skipped message keys", max: MAX_SKIPPED_KEYS, .. })
        ));

        let session = |bytes: &[u8], edit: &dyn Fn(&mut storage::Session)| {
            load_record(&edit_record(bytes, |r| edit(r.active.as_mut().unwrap())))
        };
        assert_eq!(session(&bytes, &|s| s.ratchet = None), malformed("session ratchet"));
        assert_eq!(session(&bytes, &|s| s.base_key.push(0)), malformed("session base key"));
        assert_eq!(session(&bytes, &|s| s.ad.truncate(100)), malformed("session ad"));
        // Bob responded: the AD's first half is the peer's (Alice's) keys.
        assert_eq!(session(&bytes, &|s| s.ad[0] ^= 1), malformed("session ad"));
        assert_eq!(
            session(&bytes, &|s| s.peer.as_mut().unwrap().identity_key[0] ^= 1),
            Err(Error::BadSignature { what: "identity key" })
        );
        assert_eq!(
            session(&bytes, &|s| s.peer.as_mut().unwrap().identity_signature.clear()),
            malformed("identity key signature")
        );
        // Alice still awaits Bob's reply on her active session.
        assert_eq!(session(&a_bytes, &|s| s.ad[0] ^= 1), malformed("session ad"));
        assert_eq!(session(&a_bytes, &|s| s.post_quantum = false), malformed("session post-quantum flag"));
        assert_eq!(
            session(&a_bytes, &|s| {
                s.pending_prekey.as_mut().unwrap().kem_ciphertext.pop();
            }),
            malformed("pending prekey ML-KEM ciphertext")
        );
        assert_eq!(
            session(&a_bytes, &|s| s.pending_prekey.as_mut().unwrap().local = None),
            malformed("pending prekey device")
        );

        // Every session of a record is with the same peer device.
        let other = conversation(&mut rng).b.to_bytes();
        let stranger = storage::SessionRecord::decode(other.as_slice()).unwrap().active.clone().unwrap();
        let mixed = edit_record(&bytes, |r| r.archived.push(stranger.clone()));
        assert_eq!(load_record(&mixed), malformed("session record peers"));
    }

    #[test]
    fn storage_types_redact_debug_and_wipe() {
        let mut rng = rng(8);
        let c = conversation(&mut rng);
        let account = storage::Account::decode(c.bob.to_bytes().as_slice()).unwrap();
        let record = storage::SessionRecord::decode(c.b.to_bytes().as_slice()).unwrap();
        let text = format!("{account:?}{record:?}{:?}", record.archived[0]);
        assert_eq!(text, "storage::Account([redacted])storage::SessionRecord([redacted])storage::Session([redacted])");
        let mut secrets = vec![account.device_signing_secret.clone(), account.identity_secret.clone()];
        secrets.extend(account.kem_prekeys.iter().map(|k| k.seed.clone()));
        for s in record.active.iter().chain(&record.archived) {
            let r = s.ratchet.as_ref().unwrap();
            secrets.extend([r.root_key.clone(), r.sending_ratchet_secret.clone()]);
            secrets.extend(r.receiving.iter().flat_map(|c| c.skipped.iter().map(|k| k.key.clone())));
        }
        for secret in &secrets {
            assert_no_secret(&text, secret);
        }

        let mut wiped = account.clone();
        zeroize::Zeroize::zeroize(&mut wiped);
        assert!(wiped.device_signing_secret.is_empty() && wiped.kem_prekeys.is_empty());
        assert_eq!(wiped.encode_to_vec(), Vec::<u8>::new());
    }
}
