//! The storage format ("pickle") of a [`PeerUser`]: the pinned and pending device lists, the
//! session record with each device (in the format of `crate::session::pickle`) and the verified
//! mark, to and from the versioned `storage::PeerUser` message of `core/proto/storage.proto`.
//! Loading verifies both signed device lists again, and every session record goes through the same
//! checks as [`SessionRecord::from_bytes`](crate::SessionRecord::from_bytes) and must be with a
//! listed device. The rules every format follows are in `crate::pickle`.

use std::collections::BTreeMap;

use prost::Message;
use zeroize::Zeroizing;

use super::PeerUser;
use crate::crypto::SigningPublicKey;
use crate::delivery_token::DeliveryToken;
use crate::device_list::SignedDeviceList;
use crate::error::{Error, Result};
use crate::limits::{MAX_PEER_BYTES, MAX_SESSION_RECORD_BYTES};
use crate::pickle::check_count;
use crate::session::pickle::{record_from_storage, record_to_storage};
use crate::wire::{self, storage};

/// Format version of [`storage::PeerUser`].
const PEER_USER_VERSION: u32 = 1;

impl PeerUser {
    /// Encodes the peer (pinned and pending device lists, the sessions with each device, the
    /// verified mark) for the encrypted store. The buffer is wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let p = storage::PeerUser {
            version: PEER_USER_VERSION,
            devices: self.devices.to_bytes(),
            // A `BTreeMap`: ascending device keys, the one encoding of the map.
            sessions: self
                .sessions
                .iter()
                .map(|(device, record)| storage::PeerDeviceSessions {
                    device_key: device.to_vec(),
                    record: Some(record_to_storage(record)),
                })
                .collect(),
            verified: self.verified,
            pending_identity: self.pending_identity.as_ref().map(SignedDeviceList::to_bytes),
            delivery_token: self.delivery_token.as_ref().map(|t| t.to_bytes().to_vec()),
        };
        Zeroizing::new(p.encode_to_vec())
    }

    /// Decodes a peer written by [`PeerUser::to_bytes`], verifying both device lists again and
    /// checking that every session record is with a device the pinned list names.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let p: storage::PeerUser = wire::decode(bytes, MAX_PEER_BYTES, "peer user")?;
        wire::check_version("peer user", p.version, PEER_USER_VERSION)?;
        let devices = SignedDeviceList::from_bytes(&p.devices)?;
        // At most one record per listed device; counted first, so excess costs no key derivation.
        check_count("peer sessions", p.sessions.len(), 0, devices.devices().len())?;

        let mut sessions = BTreeMap::new();
        for s in &p.sessions {
            let device = SigningPublicKey::from_slice(&s.device_key, "peer session device key")?;
            if sessions.last_key_value().is_some_and(|(last, _)| last >= device.as_bytes()) {
                return Err(Error::Malformed { what: "peer session order" });
            }
            // `PeerUser` drops the sessions of devices that leave the list.
            devices.device(&device)?;
            let record = wire::required(&s.record, "peer session record")?;
            // As if it were loaded on its own with `SessionRecord::from_bytes`.
            let size = record.encoded_len();
            if size > MAX_SESSION_RECORD_BYTES {
                return Err(Error::TooLarge { what: "session record", size, max: MAX_SESSION_RECORD_BYTES });
            }
            let record = record_from_storage(record)?;
            // The record's sessions are with this device. Only the device key is compared: a later
            // list may name the device with another identity key, and `PeerUser` keeps the record.
            if record.peer().is_some_and(|peer| peer.device_key() != device) {
                return Err(Error::Malformed { what: "peer session device" });
            }
            sessions.insert(device.to_bytes(), record);
        }

        // Only a list signed by another user key is held aside (`PeerUser::update_device_list`).
        let pending_identity = p.pending_identity.as_deref().map(SignedDeviceList::from_bytes).transpose()?;
        if pending_identity.as_ref().is_some_and(|list| list.user_key() == devices.user_key()) {
            return Err(Error::Malformed { what: "pending identity change" });
        }
        let delivery_token = p.delivery_token.as_deref().map(DeliveryToken::from_bytes).transpose()?;
        Ok(Self { devices, sessions, verified: p.verified, pending_identity, delivery_token })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::identity::{DeviceIdentity, UserIdentity};
    use crate::test_util::{PQ, rng};
    use crate::{Account, SafetyNumber};

    /// Round trips, checking that re-encoding gives the same bytes.
    fn reload_peer(peer: &PeerUser) -> PeerUser {
        let bytes = peer.to_bytes();
        let back = PeerUser::from_bytes(&bytes).unwrap();
        assert_eq!(*back.to_bytes(), *bytes);
        back
    }

    fn reload_account(account: &Account) -> Account {
        Account::from_bytes(&account.to_bytes()).unwrap()
    }

    /// Loads, keeping only the outcome (the secret types have no `PartialEq`).
    pub(crate) fn load_peer(bytes: &[u8]) -> Result<()> {
        PeerUser::from_bytes(bytes).map(drop)
    }

    /// Re-encodes `bytes` after `edit`, bypassing every check but protobuf's.
    pub(crate) fn edit_peer(bytes: &[u8], edit: impl FnOnce(&mut storage::PeerUser)) -> Vec<u8> {
        let mut p = storage::PeerUser::decode(bytes).unwrap();
        edit(&mut p);
        p.encode_to_vec()
    }

    /// Alice (one device) and Bob (two devices) mid-conversation, each side keeping the other as
    /// a `PeerUser`, with what the network still holds back.
    pub(crate) struct Peers {
        pub(crate) alice_user: UserIdentity,
        pub(crate) bob_user: UserIdentity,
        pub(crate) alice: Account,
        pub(crate) bobs: Vec<Account>,
        /// Alice's view of Bob.
        pub(crate) a: PeerUser,
        /// Each of Bob's devices' view of Alice.
        pub(crate) b: Vec<PeerUser>,
        /// Messages to Bob's devices not yet delivered: (device, message, plaintext).
        pub(crate) to_bob: Vec<(usize, Vec<u8>, Vec<u8>)>,
        /// Messages from Bob's devices to Alice not yet delivered.
        pub(crate) to_alice: Vec<(usize, Vec<u8>, Vec<u8>)>,
    }

    impl Peers {
        pub(crate) fn new(rng: &mut ChaCha20Rng) -> Self {
            let (alice_user, bob_user) = (UserIdentity::generate(rng), UserIdentity::generate(rng));
            let alice = Account::new(rng);
            let bobs: Vec<_> = (0..2).map(|_| Account::new(rng)).collect();
            let alice_list = SignedDeviceList::sign(&alice_user, 1, &[alice.device_keys()], 1).unwrap();
            let bob_devices: Vec<_> = bobs.iter().map(Account::device_keys).collect();
            let bob_list = SignedDeviceList::sign(&bob_user, 1, &bob_devices, 1).unwrap();
            let mut a = PeerUser::new(bob_list);
            for bob in &bobs {
                a.add_session(rng, alice.identity(), &bob.prekey_bundle(None, None).unwrap(), PQ).unwrap();
            }
            let b = vec![PeerUser::new(alice_list.clone()), PeerUser::new(alice_list)];
            let mut peers = Self { alice_user, bob_user, alice, bobs, a, b, to_bob: Vec::new(), to_alice: Vec::new() };
            for turn in 0..3 {
                // Alice sends three to both devices; each gets only the second now.
                for i in 0..3 {
                    let text = format!("a{turn}.{i}").into_bytes();
                    for (d, m) in peers.send_to_bob(rng, &text).into_iter().enumerate() {
                        if i == 1 {
                            peers.bob_receives(rng, d, &m, &text);
                        } else {
                            peers.to_bob.push((d, m, text.clone()));
                        }
                    }
                }
                // Each device answers twice; Alice gets the second.
                for d in 0..2 {
                    let first = format!("b{d}.{turn}.0").into_bytes();
                    let second = format!("b{d}.{turn}.1").into_bytes();
                    let held = peers.send_to_alice(rng, d, &first);
                    let m = peers.send_to_alice(rng, d, &second);
                    peers.alice_receives(rng, d, &m, &second);
                    peers.to_alice.push((d, held, first));
                }
            }
            assert_eq!(peers.a.sessions.len(), 2);
            for record in peers.a.sessions.values().chain(peers.b.iter().flat_map(|b| b.sessions.values())) {
                assert!(record.active.as_ref().unwrap().ratchet.skipped_count() > 0);
            }
            peers
        }

        /// A copy through the storage formats.
        fn reload(&self) -> Self {
            Self {
                alice_user: self.alice_user.clone(),
                bob_user: self.bob_user.clone(),
                alice: reload_account(&self.alice),
                bobs: self.bobs.iter().map(reload_account).collect(),
                a: reload_peer(&self.a),
                b: self.b.iter().map(reload_peer).collect(),
                to_bob: self.to_bob.clone(),
                to_alice: self.to_alice.clone(),
            }
        }

        /// Alice's copies for Bob's devices, in list order.
        fn send_to_bob(&mut self, rng: &mut ChaCha20Rng, text: &[u8]) -> Vec<Vec<u8>> {
            let sent = self.a.encrypt(rng, text, None).unwrap();
            let keys: Vec<_> = self.bobs.iter().map(Account::device_key).collect();
            assert_eq!(sent.iter().map(|m| m.device).collect::<Vec<_>>(), keys);
            sent.into_iter().map(|m| m.message).collect()
        }

        fn send_to_alice(&mut self, rng: &mut ChaCha20Rng, device: usize, text: &[u8]) -> Vec<u8> {
            let mut sent = self.b[device].encrypt(rng, text, None).unwrap();
            assert_eq!(sent.len(), 1);
            sent.remove(0).message
        }

        fn bob_receives(&mut self, rng: &mut ChaCha20Rng, device: usize, m: &[u8], text: &[u8]) {
            let from = self.alice.device_key();
            let plaintext = self.b[device].decrypt(rng, &mut self.bobs[device], &from, m, PQ).unwrap();
            assert_eq!(plaintext, text);
        }

        fn alice_receives(&mut self, rng: &mut ChaCha20Rng, device: usize, m: &[u8], text: &[u8]) {
            let from = self.bobs[device].device_key();
            assert_eq!(self.a.decrypt(rng, &mut self.alice, &from, m, PQ).unwrap(), text);
        }

        /// Delivers everything held back (newest first), then talks both ways; returns every
        /// message sent.
        fn finish(&mut self, rng: &mut ChaCha20Rng) -> Vec<Vec<u8>> {
            for (d, m, text) in self.to_bob.clone().iter().rev() {
                self.bob_receives(rng, *d, m, text);
            }
            for (d, m, text) in self.to_alice.clone().iter().rev() {
                self.alice_receives(rng, *d, m, text);
            }
            let mut wire = Vec::new();
            for round in 0..3 {
                let text = format!("after a{round}").into_bytes();
                for (d, m) in self.send_to_bob(rng, &text).into_iter().enumerate() {
                    self.bob_receives(rng, d, &m, &text);
                    wire.push(m);
                }
                for d in 0..2 {
                    let text = format!("after b{d}.{round}").into_bytes();
                    let m = self.send_to_alice(rng, d, &text);
                    self.alice_receives(rng, d, &m, &text);
                    wire.push(m);
                }
            }
            wire
        }
    }

    #[test]
    fn new_peer_round_trips() {
        let mut rng = rng(1);
        let user = UserIdentity::generate(&mut rng);
        let list = SignedDeviceList::sign(&user, 7, &[DeviceIdentity::generate(&mut rng).keys()], 5).unwrap();
        let back = reload_peer(&PeerUser::new(list.clone()));
        assert_eq!(back.device_list(), &list);
        assert!(back.sessions.is_empty() && !back.is_verified() && back.pending_identity_change().is_none());
    }

    /// A peer stored before delivery tokens were kept has none; one that has one keeps it; a token
    /// of another length is refused, and an identity change forgets the old identity's token.
    #[test]
    fn a_peers_delivery_token_round_trips() {
        let mut rng = rng(5);
        let user = UserIdentity::generate(&mut rng);
        let list = SignedDeviceList::sign(&user, 7, &[DeviceIdentity::generate(&mut rng).keys()], 5).unwrap();
        let mut peer = PeerUser::new(list);
        let old = PeerUser::from_bytes(&edit_peer(&peer.to_bytes(), |p| p.delivery_token = None)).unwrap();
        assert!(old.delivery_token().is_none());
        let token = DeliveryToken::generate(&mut rng);
        peer.set_delivery_token(token.clone());
        assert_eq!(reload_peer(&peer).delivery_token(), Some(&token));
        let short = edit_peer(&peer.to_bytes(), |p| p.delivery_token = Some(vec![1; 31]));
        assert!(matches!(load_peer(&short), Err(Error::Malformed { what: "delivery token" })));
        peer.pending_identity = Some(
            SignedDeviceList::sign(
                &UserIdentity::generate(&mut rng),
                1,
                &[DeviceIdentity::generate(&mut rng).keys()],
                5,
            )
            .unwrap(),
        );
        peer.accept_identity_change().unwrap();
        assert!(peer.delivery_token().is_none());
    }

    #[test]
    fn peers_round_trip_mid_conversation_and_carry_on() {
        let mut original = Peers::new(&mut rng(2));
        let mut restored = original.reload();
        // Same randomness on both copies: the restored state must behave exactly as the original.
        let wire_original = original.finish(&mut rng(20));
        let wire_restored = restored.finish(&mut rng(20));
        assert_eq!(wire_original, wire_restored);
        assert_eq!(*original.a.to_bytes(), *restored.a.to_bytes());
        for (o, r) in original.b.iter().zip(&restored.b) {
            assert_eq!(*o.to_bytes(), *r.to_bytes());
        }
        reload_peer(&restored.a);
    }

    #[test]
    fn pending_identity_change_round_trips_and_resolves_alike() {
        let mut rng = rng(3);
        let mut p = Peers::new(&mut rng);
        let alice_key = p.alice_user.user_key();
        let scanned = SafetyNumber::new(&alice_key, &p.bob_user.user_key()).qr_payload();
        assert!(p.a.verify(&alice_key, &scanned).unwrap());
        // Bob's account is replaced by a new user key with a fresh device (two list versions).
        let new_bob = UserIdentity::generate(&mut rng);
        let fresh = Account::new(&mut rng);
        let v1 = SignedDeviceList::sign(&new_bob, 1, &[fresh.device_keys()], 2).unwrap();
        let v2 = SignedDeviceList::sign(&new_bob, 2, &[fresh.device_keys()], 3).unwrap();
        p.a.update_device_list(v2).unwrap();
        assert!(p.a.is_verified() && p.a.sessions.len() == 2);

        let mut restored = reload_peer(&p.a);
        assert_eq!(restored.pending_identity_change(), Some(new_bob.user_key()));
        assert_eq!(restored.user_key(), p.bob_user.user_key());
        assert!(restored.is_verified());
        assert_eq!(restored.devices_without_session(None), p.a.devices_without_session(None));

        // Both copies go on alike: sending is blocked, a rollback of the pending list is refused,
        // and verifying the new key accepts it, drops the old sessions and allows new ones.
        let bundle = fresh.prekey_bundle(None, None).unwrap();
        let new_scanned = SafetyNumber::new(&alice_key, &new_bob.user_key()).qr_payload();
        let mut outcomes = Vec::new();
        for peer in [&mut p.a, &mut restored] {
            let mut rng = self::rng(30);
            let blocked = peer.encrypt(&mut rng, b"blocked", None).map(drop);
            let rollback = peer.update_device_list(v1.clone());
            let verified = peer.verify(&alice_key, &new_scanned);
            let missing = peer.devices_without_session(None);
            peer.add_session(&mut rng, p.alice.identity(), &bundle, PQ).unwrap();
            let sent = peer.encrypt(&mut rng, b"hello again", None).unwrap();
            outcomes.push((blocked, rollback, verified, missing, sent, peer.to_bytes().to_vec()));
        }
        assert_eq!(outcomes[0], outcomes[1]);
        let (blocked, rollback, verified, missing, _, _) = &outcomes[0];
        assert_eq!(blocked, &Err(Error::IdentityChangePending));
        assert_eq!(rollback, &Err(Error::DeviceListRollback { pinned: 2, received: 1 }));
        assert_eq!((verified, missing), (&Ok(true), &vec![fresh.device_keys()]));
    }

    #[test]
    fn peer_encoding_is_deterministic() {
        let p = Peers::new(&mut rng(4));
        let bytes = p.a.to_bytes();
        assert_eq!(*p.a.to_bytes(), *bytes);
        assert_eq!(*p.a.clone().to_bytes(), *bytes);
        // The map's order, not insertion order: a peer rebuilt with its records added the other
        // way round encodes the same.
        let mut rebuilt = PeerUser::new(p.a.devices.clone());
        for (k, r) in p.a.sessions.iter().rev() {
            rebuilt.sessions.insert(*k, r.clone());
        }
        assert_eq!(*rebuilt.to_bytes(), *bytes);
    }

    #[test]
    fn bad_peer_fields_are_typed_errors() {
        let mut rng = rng(5);
        let mut p = Peers::new(&mut rng);
        let other = UserIdentity::generate(&mut rng);
        let stranger = DeviceIdentity::generate(&mut rng).device_key();
        let other_list = SignedDeviceList::sign(&other, 1, &[], 1).unwrap();
        p.a.update_device_list(other_list).unwrap();
        let bytes = p.a.to_bytes();
        let check = |edit: &dyn Fn(&mut storage::PeerUser), expected: Error| {
            assert_eq!(load_peer(&edit_peer(&bytes, edit)), Err(expected));
        };
        let malformed = |what| Error::Malformed { what };

        // A session with a device the pinned list does not name.
        check(
            &|p| {
                p.sessions.truncate(1);
                p.sessions[0].device_key = stranger.to_bytes().to_vec();
            },
            Error::UnknownDevice,
        );
        check(
            &|p| {
                p.sessions[1].device_key.pop();
            },
            malformed("peer session device key"),
        );
        check(&|p| p.sessions.swap(0, 1), malformed("peer session order"));
        check(&|p| p.sessions[1].device_key = p.sessions[0].device_key.clone(), malformed("peer session order"));
        check(
            &|p| {
                let extra = p.sessions[0].clone();
                p.sessions.push(extra);
            },
            Error::TooLarge { what: "peer sessions", size: 3, max: 2 },
        );
        check(&|p| p.sessions[0].record = None, malformed("peer session record"));
        // Each device's record under the other's key: the sessions are with another device.
        check(
            &|p| {
                let first = p.sessions[0].record.clone();
                p.sessions[0].record = p.sessions[1].record.clone();
                p.sessions[1].record = first;
            },
            malformed("peer session device"),
        );
        // The records inside go through every check of a stored `SessionRecord`.
        check(&|p| first_record(p).version = 3, Error::UnsupportedVersion { what: "session record", version: 3 });
        check(
            &|p| first_record(p).active.as_mut().unwrap().ratchet.as_mut().unwrap().root_key.truncate(16),
            malformed("root key"),
        );

        // The pinned list is verified again; the pending one must be of another user key.
        check(&|p| *p.devices.last_mut().unwrap() ^= 1, Error::BadSignature { what: "device list" });
        check(&|p| p.devices.clear(), Error::UnsupportedVersion { what: "signed device list", version: 0 });
        check(&|p| p.pending_identity = Some(p.devices.clone()), malformed("pending identity change"));
        check(
            &|p| *p.pending_identity.as_mut().unwrap().last_mut().unwrap() ^= 1,
            Error::BadSignature { what: "device list" },
        );
        // As large a record as `SessionRecord::from_bytes` takes, and one byte larger.
        let sized = |target: usize| {
            load_peer(&edit_peer(&bytes, |p| {
                let r = first_record(p);
                let mut n = 0;
                for _ in 0..3 {
                    r.active.as_mut().unwrap().ad = vec![0; n];
                    n = n + target - r.encoded_len();
                }
                r.active.as_mut().unwrap().ad = vec![0; n];
                assert_eq!(r.encoded_len(), target);
            }))
        };
        assert_eq!(sized(MAX_SESSION_RECORD_BYTES), Err(malformed("session ad")));
        assert_eq!(
            sized(MAX_SESSION_RECORD_BYTES + 1),
            Err(Error::TooLarge {
                what: "session record",
                size: MAX_SESSION_RECORD_BYTES + 1,
                max: MAX_SESSION_RECORD_BYTES
            })
        );
    }

    fn first_record(p: &mut storage::PeerUser) -> &mut storage::SessionRecord {
        p.sessions[0].record.as_mut().unwrap()
    }
}
