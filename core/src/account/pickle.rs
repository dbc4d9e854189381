//! The storage format ("pickle") of an [`Account`]: its secret state (identity, prekey secrets,
//! replay memory) to and from the versioned `storage::Account` message of
//! `core/proto/storage.proto`. The rules every format follows are in `crate::pickle`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use prost::Message;
use zeroize::Zeroizing;

use super::{Account, KemPrekeySecret, SignedPrekeySecret};
use crate::crypto::PublicKey;
use crate::crypto::kem::KemSecret;
use crate::crypto::keys::{KeyPair, SigningKeyPair};
use crate::error::{Error, Result};
use crate::identity::DeviceIdentity;
use crate::limits::{MAX_ACCOUNT_BYTES, MAX_OLD_SIGNED_PREKEYS, MAX_ONE_TIME_PREKEYS, MAX_SEEN_BASE_KEYS};
use crate::pickle::{check_count, secret32, signature64};
use crate::prekeys::{KemPrekey, SignedPrekey};
use crate::wire::{self, storage};

/// Format version of [`storage::Account`].
const ACCOUNT_VERSION: u32 = 1;
/// Signed prekeys and last-resort ML-KEM prekeys an account holds: the current one and the old ones.
const MAX_ROTATED_PREKEYS: usize = MAX_OLD_SIGNED_PREKEYS + 1;

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
                    created_at_ms: k.created_at_ms,
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
                    created_at_ms: k.created_at_ms,
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
            signed_prekeys.push(SignedPrekeySecret { public, pair, created_at_ms: k.created_at_ms });
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
            if !k.last_resort && k.created_at_ms != 0 {
                return Err(Error::Malformed { what: "ML-KEM prekey date" });
            }
            kem_prekeys.insert(k.id, KemPrekeySecret { public, secret, created_at_ms: k.created_at_ms });
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::SessionRecord;
    use crate::test_util::{PQ, rng};

    /// Round trip, checking that re-encoding gives the same bytes.
    pub(crate) fn reload_account(account: &Account) -> Account {
        let bytes = account.to_bytes();
        let back = Account::from_bytes(&bytes).unwrap();
        assert_eq!(*back.to_bytes(), *bytes);
        back
    }

    /// Loads, keeping only the outcome (the secret types have no `PartialEq`).
    pub(crate) fn load_account(bytes: &[u8]) -> Result<()> {
        Account::from_bytes(bytes).map(drop)
    }

    /// Re-encodes `bytes` after `edit`, bypassing every check but protobuf's.
    pub(crate) fn edit_account(bytes: &[u8], edit: impl FnOnce(&mut storage::Account)) -> Vec<u8> {
        let mut p = storage::Account::decode(bytes).unwrap();
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
            bob.rotate_signed_prekey(&mut rng, 0);
            bob.rotate_last_resort_kem_prekey(&mut rng, 0);
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
        assert_eq!((bob.signed_prekeys.len(), bob.last_resort_ids.len(), bob.seen_base_keys.len()), (5, 5, 1));

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
                p.signed_prekeys.extend(std::iter::repeat_n(k, MAX_ROTATED_PREKEYS));
            },
            Error::TooLarge { what: "signed prekeys", size: MAX_ROTATED_PREKEYS + 1, max: MAX_ROTATED_PREKEYS },
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
        // Only the last-resort key is dated (kem_prekeys[1] is a one-time key).
        check(&|p| p.kem_prekeys[1].created_at_ms = 5, malformed("ML-KEM prekey date"));
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
}
