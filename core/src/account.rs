//! A device's account: its identity and the secret halves of its prekeys. Like vodozemac's
//! `Account`, it is the responder's half of session setup; unlike it, one-time prekeys are removed
//! only after the first message decrypted, so a forged first message cannot burn them.

pub(crate) mod pickle;

use std::collections::{BTreeMap, VecDeque};

use rand_core::CryptoRngCore;

use crate::crypto::kem::KemSecret;
use crate::crypto::keys::KeyPair;
use crate::crypto::{DeviceKeys, PublicKey};
use crate::error::{Error, Result};
use crate::identity::DeviceIdentity;
use crate::limits::{
    MAX_OLD_SIGNED_PREKEYS, MAX_ONE_TIME_PREKEYS, MAX_SEEN_BASE_KEYS, OLD_PREKEY_GRACE_MS, PREKEY_ROTATION_MS,
};
use crate::prekeys::{KemPrekey, OneTimePrekey, PrekeyBundle, SignedPrekey};

/// The prekeys a first message used, consumed once it decrypted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UsedPrekeys {
    pub(crate) signed: u32,
    pub(crate) one_time: Option<u32>,
    pub(crate) kem: Option<u32>,
    pub(crate) base_key: PublicKey,
}

#[derive(Clone, Debug)]
pub(crate) struct SignedPrekeySecret {
    pub(crate) public: SignedPrekey,
    pub(crate) pair: KeyPair,
    /// When it became current (unix ms); 0 until the account learns the time.
    pub(crate) created_at_ms: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct KemPrekeySecret {
    pub(crate) public: KemPrekey,
    pub(crate) secret: KemSecret,
    /// Last resort only: when it became current (unix ms); 0 until the account learns the time.
    pub(crate) created_at_ms: u64,
}

/// What [`Account::rotate_due_prekeys`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrekeyRotation {
    /// A new signed prekey and last-resort ML-KEM prekey became current: publish them.
    pub rotated: bool,
    /// The account changed (a rotation, old prekeys deleted, or the current ones dated): store it.
    pub changed: bool,
}

/// A device's identity and prekey secrets.
#[derive(Clone, Debug)]
pub struct Account {
    pub(crate) identity: DeviceIdentity,
    /// Oldest first; the last is current.
    pub(crate) signed_prekeys: Vec<SignedPrekeySecret>,
    pub(crate) one_time_prekeys: BTreeMap<u32, KeyPair>,
    /// One-time and last-resort ML-KEM prekeys.
    pub(crate) kem_prekeys: BTreeMap<u32, KemPrekeySecret>,
    /// Last-resort KEM prekey ids, oldest first; the last is current.
    pub(crate) last_resort_ids: Vec<u32>,
    pub(crate) next_prekey_id: u32,
    /// Base keys of accepted first messages that used no one-time prekey (a replay of one that did
    /// fails on the consumed prekey), with the signed prekey each used: kept while that prekey is
    /// held, at most [`MAX_SEEN_BASE_KEYS`], oldest dropped first.
    pub(crate) seen_base_keys: VecDeque<(u32, PublicKey)>,
}

impl Account {
    /// A new device: fresh identity, a signed prekey and a last-resort ML-KEM prekey.
    pub fn new(rng: &mut impl CryptoRngCore) -> Self {
        let identity = DeviceIdentity::generate(rng);
        Self::from_identity(rng, identity)
    }

    /// An account around an existing identity, with a fresh signed prekey and last-resort KEM key.
    pub fn from_identity(rng: &mut impl CryptoRngCore, identity: DeviceIdentity) -> Self {
        let mut account = Self {
            identity,
            signed_prekeys: Vec::new(),
            one_time_prekeys: BTreeMap::new(),
            kem_prekeys: BTreeMap::new(),
            last_resort_ids: Vec::new(),
            next_prekey_id: 1,
            seen_base_keys: VecDeque::new(),
        };
        // Dated by the first `rotate_due_prekeys`: the account has no clock.
        account.rotate_signed_prekey(rng, 0);
        account.rotate_last_resort_kem_prekey(rng, 0);
        account
    }

    /// The device identity.
    pub fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    /// The device's public keys.
    pub fn device_keys(&self) -> DeviceKeys {
        self.identity.keys()
    }

    /// The Ed25519 device key: the device's id.
    pub fn device_key(&self) -> crate::SigningPublicKey {
        self.identity.device_key()
    }

    fn take_id(&mut self) -> u32 {
        let id = self.next_prekey_id;
        // Ids are never reused; 2³² prekeys outlast any device.
        self.next_prekey_id = self.next_prekey_id.wrapping_add(1).max(1);
        id
    }

    /// The current signed prekey.
    pub fn signed_prekey(&self) -> Result<SignedPrekey> {
        self.signed_prekeys.last().map(|k| k.public).ok_or(Error::Internal("no signed prekey"))
    }

    /// Makes a new signed prekey, dated `now_ms`, current, keeping the previous ones for first
    /// messages in flight (until [`rotate_due_prekeys`](Self::rotate_due_prekeys) deletes them, and
    /// at most [`MAX_OLD_SIGNED_PREKEYS`]).
    pub fn rotate_signed_prekey(&mut self, rng: &mut impl CryptoRngCore, now_ms: u64) -> SignedPrekey {
        let id = self.take_id();
        let pair = KeyPair::generate(rng);
        let public = SignedPrekey::sign(&self.identity, id, pair.public());
        self.signed_prekeys.push(SignedPrekeySecret { public, pair, created_at_ms: now_ms });
        let excess = self.signed_prekeys.len().saturating_sub(MAX_OLD_SIGNED_PREKEYS + 1);
        self.signed_prekeys.drain(..excess);
        self.forget_base_keys_of_dropped_prekeys();
        public
    }

    /// A replay naming a deleted signed prekey fails on it: its base keys need not be kept.
    fn forget_base_keys_of_dropped_prekeys(&mut self) {
        let held: Vec<u32> = self.signed_prekeys.iter().map(|k| k.public.id).collect();
        self.seen_base_keys.retain(|(id, _)| held.contains(id));
    }

    /// The schedule of §5.5 at `now_ms`: when the current signed prekey or last-resort ML-KEM
    /// prekey has been current for [`PREKEY_ROTATION_MS`], both are replaced by new ones; a
    /// rotated-out one is deleted [`OLD_PREKEY_GRACE_MS`] after it stopped being current. A current
    /// prekey not yet dated (a new account, or one stored before rotation existed) is dated
    /// `now_ms` instead of being rotated.
    pub fn rotate_due_prekeys(&mut self, rng: &mut impl CryptoRngCore, now_ms: u64) -> PrekeyRotation {
        let mut out = PrekeyRotation::default();
        let current_kem = self.last_resort_ids.last().copied();
        let dates = [
            self.signed_prekeys.last_mut().map(|k| &mut k.created_at_ms),
            current_kem.and_then(|id| self.kem_prekeys.get_mut(&id)).map(|k| &mut k.created_at_ms),
        ];
        let mut due = false;
        for created_at in dates.into_iter().flatten() {
            if *created_at == 0 {
                *created_at = now_ms;
                out.changed = true;
            }
            due |= now_ms >= created_at.saturating_add(PREKEY_ROTATION_MS);
        }
        if due {
            self.rotate_signed_prekey(rng, now_ms);
            self.rotate_last_resort_kem_prekey(rng, now_ms);
            out = PrekeyRotation { rotated: true, changed: true };
        }
        // Each old key stopped being current when the next one was made.
        let expired = |next_created_at: u64| now_ms >= next_created_at.saturating_add(OLD_PREKEY_GRACE_MS);
        let signed_expired = self
            .signed_prekeys
            .windows(2)
            .take_while(|w| matches!(w, [_, next] if expired(next.created_at_ms)))
            .count();
        if signed_expired > 0 {
            self.signed_prekeys.drain(..signed_expired);
            self.forget_base_keys_of_dropped_prekeys();
            out.changed = true;
        }
        let kem_created_at = |id: &u32| self.kem_prekeys.get(id).map_or(0, |k| k.created_at_ms);
        let kem_expired = self
            .last_resort_ids
            .windows(2)
            .take_while(|w| matches!(w, [_, next] if expired(kem_created_at(next))))
            .count();
        if kem_expired > 0 {
            for id in self.last_resort_ids.drain(..kem_expired) {
                self.kem_prekeys.remove(&id);
            }
            out.changed = true;
        }
        out
    }

    /// The current last-resort ML-KEM prekey.
    pub fn last_resort_kem_prekey(&self) -> Result<KemPrekey> {
        self.last_resort_ids
            .last()
            .and_then(|id| self.kem_prekeys.get(id))
            .map(|k| k.public.clone())
            .ok_or(Error::Internal("no last-resort prekey"))
    }

    /// Makes a new last-resort ML-KEM prekey, dated `now_ms`, current, keeping the previous ones as
    /// [`rotate_signed_prekey`](Self::rotate_signed_prekey) does.
    pub fn rotate_last_resort_kem_prekey(&mut self, rng: &mut impl CryptoRngCore, now_ms: u64) -> KemPrekey {
        let public = self.new_kem_prekey(rng, true, now_ms);
        self.last_resort_ids.push(public.id);
        let excess = self.last_resort_ids.len().saturating_sub(MAX_OLD_SIGNED_PREKEYS + 1);
        for id in self.last_resort_ids.drain(..excess) {
            self.kem_prekeys.remove(&id);
        }
        public
    }

    fn new_kem_prekey(&mut self, rng: &mut impl CryptoRngCore, last_resort: bool, created_at_ms: u64) -> KemPrekey {
        let id = self.take_id();
        let secret = KemSecret::generate(rng);
        let public = KemPrekey::sign(&self.identity, id, secret.public(), last_resort);
        self.kem_prekeys.insert(id, KemPrekeySecret { public: public.clone(), secret, created_at_ms });
        public
    }

    /// Generates `count` one-time X25519 prekeys to publish.
    pub fn generate_one_time_prekeys(
        &mut self,
        rng: &mut impl CryptoRngCore,
        count: usize,
    ) -> Result<Vec<OneTimePrekey>> {
        let size = self.one_time_prekeys.len().saturating_add(count);
        if size > MAX_ONE_TIME_PREKEYS {
            return Err(Error::TooLarge { what: "one-time prekeys", size, max: MAX_ONE_TIME_PREKEYS });
        }
        Ok((0..count)
            .map(|_| {
                let id = self.take_id();
                let pair = KeyPair::generate(rng);
                let public = OneTimePrekey { id, public_key: pair.public() };
                self.one_time_prekeys.insert(id, pair);
                public
            })
            .collect())
    }

    /// Generates `count` signed one-time ML-KEM-768 prekeys to publish.
    pub fn generate_kem_prekeys(&mut self, rng: &mut impl CryptoRngCore, count: usize) -> Result<Vec<KemPrekey>> {
        let size = self.kem_one_time_count().saturating_add(count);
        if size > MAX_ONE_TIME_PREKEYS {
            return Err(Error::TooLarge { what: "ML-KEM prekeys", size, max: MAX_ONE_TIME_PREKEYS });
        }
        Ok((0..count).map(|_| self.new_kem_prekey(rng, false, 0)).collect())
    }

    /// Unused one-time X25519 prekeys held.
    pub fn one_time_prekey_count(&self) -> usize {
        self.one_time_prekeys.len()
    }

    /// Unused one-time ML-KEM prekeys held.
    pub fn kem_one_time_count(&self) -> usize {
        self.kem_prekeys.values().filter(|k| !k.public.last_resort).count()
    }

    /// A bundle as the relay would hand it out: the given one-time prekeys (which must be held)
    /// or none, and the given KEM prekey or the last-resort one. For tests and local demos; in
    /// production the relay assembles bundles from published keys.
    pub fn prekey_bundle(&self, one_time_prekey: Option<u32>, kem_prekey: Option<u32>) -> Result<PrekeyBundle> {
        let one_time_prekey = one_time_prekey
            .map(|id| {
                self.one_time_prekeys
                    .get(&id)
                    .map(|p| OneTimePrekey { id, public_key: p.public() })
                    .ok_or(Error::UnknownPrekey { kind: crate::PrekeyKind::OneTime, id })
            })
            .transpose()?;
        let kem = match kem_prekey {
            Some(id) => self
                .kem_prekeys
                .get(&id)
                .map(|k| k.public.clone())
                .ok_or(Error::UnknownPrekey { kind: crate::PrekeyKind::Kem, id })?,
            None => self.last_resort_kem_prekey()?,
        };
        PrekeyBundle::new(self.device_keys(), self.signed_prekey()?, one_time_prekey, Some(kem))
    }

    /// Deletes signed prekey `id` at once, with its base keys; the current one is first replaced
    /// by one dated as it was (so the schedule holds; the client publishes it at its next `tick`).
    fn forget_signed_prekey(&mut self, rng: &mut impl CryptoRngCore, id: u32) {
        if let Some(current) = self.signed_prekeys.last().filter(|k| k.public.id == id) {
            let created_at_ms = current.created_at_ms;
            self.rotate_signed_prekey(rng, created_at_ms);
        }
        self.signed_prekeys.retain(|k| k.public.id != id);
        self.forget_base_keys_of_dropped_prekeys();
    }

    pub(crate) fn signed_prekey_pair(&self, id: u32) -> Option<&KeyPair> {
        self.signed_prekeys.iter().find(|k| k.public.id == id).map(|k| &k.pair)
    }

    pub(crate) fn one_time_prekey_pair(&self, id: u32) -> Option<&KeyPair> {
        self.one_time_prekeys.get(&id)
    }

    pub(crate) fn kem_prekey_secret(&self, id: u32) -> Option<&KemSecret> {
        self.kem_prekeys.get(&id).map(|k| &k.secret)
    }

    pub(crate) fn has_seen_base_key(&self, key: &PublicKey) -> bool {
        self.seen_base_keys.iter().any(|(_, k)| k == key)
    }

    /// Removes the one-time prekeys a decrypted first message used; last-resort keys stay.
    pub(crate) fn consume(&mut self, rng: &mut impl CryptoRngCore, used: &UsedPrekeys) {
        let one_time_kem = used.kem.filter(|id| !self.last_resort_ids.contains(id));
        if used.one_time.is_none() && one_time_kem.is_none() {
            self.seen_base_keys.push_back((used.signed, used.base_key));
            // Full: rather than forget a base key whose signed prekey still opens first messages
            // (a replay would then decrypt again), delete that prekey and all its base keys.
            if self.seen_base_keys.len() > MAX_SEEN_BASE_KEYS
                && let Some(&(oldest, _)) = self.seen_base_keys.front()
            {
                self.forget_signed_prekey(rng, oldest);
            }
        }
        if let Some(id) = used.one_time {
            self.one_time_prekeys.remove(&id);
        }
        if let Some(id) = one_time_kem {
            self.kem_prekeys.remove(&id);
        }
    }
}

#[cfg(test)]
mod rotation_tests;
