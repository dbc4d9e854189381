//! Storage formats ("pickles") of a [`PeerUser`] and a [`Group`], to and from the versioned
//! protobuf messages at the end of `core/proto/storage.proto`, in the manner of `pickle.rs`.
//!
//! Loading trusts nothing: size limit, canonical encoding and version first; every signed device
//! list and roster change is verified again; every session record goes through the same checks as
//! [`SessionRecord::from_bytes`](crate::SessionRecord::from_bytes) and must be with a listed device;
//! a group's roster, change statuses and head are not stored but replayed from its log, and its
//! sender chains must fit that roster and the protocol's bounds. Encoding is deterministic:
//! `to_bytes(from_bytes(b)) == b` for every accepted `b`.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use zeroize::Zeroizing;

use crate::crypto::SigningPublicKey;
use crate::crypto::keys::SigningKeyPair;
use crate::device_list::SignedDeviceList;
use crate::error::{Error, Result};
use crate::group::roster::{RosterChange, replay};
use crate::group::sender_chain::{ChainId, InboundSenderChain, OutboundSenderChain};
use crate::group::{Group, GroupId};
use crate::limits::{
    MAX_GROUP_BYTES, MAX_GROUP_CHANGE_BYTES, MAX_GROUP_LOG, MAX_PEER_BYTES, MAX_SENDER_CHAINS_PER_DEVICE,
    MAX_SESSION_RECORD_BYTES, MAX_SKIPPED_KEYS,
};
use crate::peer::PeerUser;
use crate::pickle::{
    chain_key_from_storage, chain_key_to_storage, check_count, record_from_storage, record_to_storage, secret32,
    skipped_keys_from_storage, skipped_keys_to_storage,
};
use crate::wire::{self, group as group_proto, storage};

/// Format version of [`storage::PeerUser`].
const PEER_USER_VERSION: u32 = 1;
/// Format version of [`storage::Group`].
const GROUP_VERSION: u32 = 1;
/// Largest encoded `SignedGroupChange`: the change, its 64-byte signature and their framing.
const MAX_SIGNED_CHANGE_BYTES: usize = MAX_GROUP_CHANGE_BYTES + 128;

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
        Ok(Self { devices, sessions, verified: p.verified, pending_identity })
    }
}

impl Group {
    /// Encodes this device's view of the group (the roster log, its sender chain, the members'
    /// chains with their skipped keys) for the encrypted store. The buffer is wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let p = storage::Group {
            version: GROUP_VERSION,
            id: self.id.0.to_vec(),
            me: self.me.to_bytes().to_vec(),
            log: self.log.iter().map(|c| c.signed.clone()).collect(),
            outbound: self.outbound.as_ref().map(|c| storage::OutboundSenderChain {
                epoch: c.epoch,
                chain_id: c.chain_id.to_vec(),
                chain: Some(chain_key_to_storage(&c.chain)),
                signing_secret: c.signing.secret_bytes().to_vec(),
            }),
            inbound: self
                .inbound
                .iter()
                .map(|c| storage::InboundSenderChain {
                    sender_user: c.sender_user.to_bytes().to_vec(),
                    sender_device: c.sender_device.to_bytes().to_vec(),
                    epoch: c.epoch,
                    chain_id: c.chain_id.to_vec(),
                    signing_key: c.signing_key.to_bytes().to_vec(),
                    chain: Some(chain_key_to_storage(&c.chain)),
                    skipped: skipped_keys_to_storage(&c.skipped),
                })
                .collect(),
        };
        Zeroizing::new(p.encode_to_vec())
    }

    /// Decodes a group written by [`Group::to_bytes`]: verifies every roster change again and
    /// replays the log for the roster, then checks the sender chains against it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let p: storage::Group = wire::decode(bytes, MAX_GROUP_BYTES, "group")?;
        wire::check_version("group", p.version, GROUP_VERSION)?;
        // Every group holds its create, so the log is never empty.
        check_count("group log", p.log.len(), 1, MAX_GROUP_LOG)?;
        let id = GroupId::from_slice(&p.id)?;
        let me = SigningPublicKey::from_slice(&p.me, "group member key")?;

        let mut log = Vec::with_capacity(p.log.len());
        let mut hashes = BTreeSet::new();
        for signed in &p.log {
            let change = change_from_storage(signed)?;
            if change.group_id != id {
                return Err(Error::Malformed { what: "group change group id" });
            }
            // `Group` ignores a change it already holds.
            if !hashes.insert(change.hash) {
                return Err(Error::Malformed { what: "group log duplicate" });
            }
            log.push(change);
        }
        // Exactly one create (`Group` refuses a second), and it took effect: a group is only made
        // by a create or joined from a welcome whose create gave a roster.
        if log.iter().filter(|c| c.parent.is_none()).count() != 1 {
            return Err(Error::Malformed { what: "group log creates" });
        }
        let replayed = replay(&log);
        if replayed.head.is_none() {
            return Err(Error::Malformed { what: "group create" });
        }
        let roster = replayed.roster;

        let outbound = p.outbound.as_ref().map(outbound_from_storage).transpose()?;
        if let Some(chain) = &outbound {
            // A device that is no longer a member drops its chain; epochs only go up.
            if !roster.is_member(&me) {
                return Err(Error::NotGroupMember);
            }
            if chain.epoch > roster.epoch {
                return Err(Error::Malformed { what: "outbound sender chain epoch" });
            }
        }

        let mut inbound: Vec<InboundSenderChain> = Vec::with_capacity(p.inbound.len());
        for c in &p.inbound {
            let chain = inbound_from_storage(c)?;
            // `Group` takes chains only from members and drops them when their user leaves.
            if !roster.is_member(&chain.sender_user) {
                return Err(Error::NotGroupMember);
            }
            if inbound.iter().any(|other| other.chain_id == chain.chain_id) {
                return Err(Error::Malformed { what: "sender chain ids" });
            }
            let of_device = 1 + inbound.iter().filter(|other| other.sender_device == chain.sender_device).count();
            check_count("sender chains of a device", of_device, 0, MAX_SENDER_CHAINS_PER_DEVICE)?;
            inbound.push(chain);
        }

        Ok(Self { id, me, log, statuses: replayed.statuses, roster, head: replayed.head, outbound, inbound })
    }
}

/// A logged change: its canonical `SignedGroupChange` encoding, verified as when it arrived.
fn change_from_storage(bytes: &[u8]) -> Result<RosterChange> {
    let signed: group_proto::SignedGroupChange = wire::decode(bytes, MAX_SIGNED_CHANGE_BYTES, "group change")?;
    RosterChange::from_proto(&signed)
}

fn chain_id(bytes: &[u8], what: &'static str) -> Result<ChainId> {
    bytes.try_into().map_err(|_| Error::Malformed { what })
}

fn outbound_from_storage(p: &storage::OutboundSenderChain) -> Result<OutboundSenderChain> {
    let chain = wire::required(&p.chain, "outbound sender chain")?;
    Ok(OutboundSenderChain {
        epoch: p.epoch,
        chain_id: chain_id(&p.chain_id, "outbound sender chain id")?,
        chain: chain_key_from_storage(chain, "outbound sender chain key")?,
        signing: SigningKeyPair::from_secret_bytes(&*secret32(&p.signing_secret, "outbound sender signing key")?),
    })
}

fn inbound_from_storage(p: &storage::InboundSenderChain) -> Result<InboundSenderChain> {
    let chain = chain_key_from_storage(wire::required(&p.chain, "sender chain")?, "sender chain key")?;
    check_count("skipped sender chain keys", p.skipped.len(), 0, MAX_SKIPPED_KEYS)?;
    let skipped = skipped_keys_from_storage(
        &p.skipped,
        chain.index,
        "skipped sender chain key",
        "skipped sender chain key index",
    )?;
    Ok(InboundSenderChain {
        sender_user: SigningPublicKey::from_slice(&p.sender_user, "sender user key")?,
        sender_device: SigningPublicKey::from_slice(&p.sender_device, "sender device key")?,
        epoch: p.epoch,
        chain_id: chain_id(&p.chain_id, "sender chain id")?,
        signing_key: SigningPublicKey::from_slice(&p.signing_key, "sender signing key")?,
        chain,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::RngCore;

    use super::*;
    use crate::group::roster::ChangeStatus;
    use crate::group::{ChangeRejection, GroupEvent, RosterAction};
    use crate::identity::{DeviceIdentity, UserIdentity};
    use crate::test_util::assert_no_secret;
    use crate::{Account, SafetyNumber};

    use crate::test_util::{PQ, rng};

    /// Round trips, checking that re-encoding gives the same bytes.
    fn reload_peer(peer: &PeerUser) -> PeerUser {
        let bytes = peer.to_bytes();
        let back = PeerUser::from_bytes(&bytes).unwrap();
        assert_eq!(*back.to_bytes(), *bytes);
        back
    }

    fn reload_group(group: &Group) -> Group {
        let bytes = group.to_bytes();
        let back = Group::from_bytes(&bytes).unwrap();
        assert_eq!(*back.to_bytes(), *bytes);
        // The derived state is replayed, not stored: it must come out the same.
        assert_eq!((&back.roster, &back.statuses, back.head), (&group.roster, &group.statuses, group.head));
        back
    }

    fn reload_account(account: &Account) -> Account {
        Account::from_bytes(&account.to_bytes()).unwrap()
    }

    /// Loads, keeping only the outcome (the secret types have no `PartialEq`).
    fn load_peer(bytes: &[u8]) -> Result<()> {
        PeerUser::from_bytes(bytes).map(drop)
    }

    fn load_group(bytes: &[u8]) -> Result<()> {
        Group::from_bytes(bytes).map(drop)
    }

    /// Re-encodes `bytes` after `edit`, bypassing every check but protobuf's.
    fn edit_peer(bytes: &[u8], edit: impl FnOnce(&mut storage::PeerUser)) -> Vec<u8> {
        let mut p = storage::PeerUser::decode(bytes).unwrap();
        edit(&mut p);
        p.encode_to_vec()
    }

    fn edit_group(bytes: &[u8], edit: impl FnOnce(&mut storage::Group)) -> Vec<u8> {
        let mut p = storage::Group::decode(bytes).unwrap();
        edit(&mut p);
        p.encode_to_vec()
    }

    // ---- Peers ----

    /// Alice (one device) and Bob (two devices) mid-conversation, each side keeping the other as
    /// a `PeerUser`, with what the network still holds back.
    struct Peers {
        alice_user: UserIdentity,
        bob_user: UserIdentity,
        alice: Account,
        bobs: Vec<Account>,
        /// Alice's view of Bob.
        a: PeerUser,
        /// Each of Bob's devices' view of Alice.
        b: Vec<PeerUser>,
        /// Messages to Bob's devices not yet delivered: (device, message, plaintext).
        to_bob: Vec<(usize, Vec<u8>, Vec<u8>)>,
        /// Messages from Bob's devices to Alice not yet delivered.
        to_alice: Vec<(usize, Vec<u8>, Vec<u8>)>,
    }

    impl Peers {
        fn new(rng: &mut ChaCha20Rng) -> Self {
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
        check(&|p| first_record(p).version = 2, Error::UnsupportedVersion { what: "session record", version: 2 });
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

    // ---- Groups ----

    /// The user owning each device of [`Groups`]: Alice, Bob (two devices), Carol.
    const OWNER: [usize; 4] = [0, 1, 1, 2];
    /// Carol's device, the reader whose group holds the most state.
    const CAROL: usize = 3;

    /// A group of Alice (admin), Bob and Carol after several roster changes, one of them
    /// concurrent and so stale, with a sender chain on every device (two of Alice's at Carol's)
    /// and messages to Carol held back on three chains.
    struct Groups {
        /// Alice, Bob, Carol, and Dave, whom Bob tries to add.
        users: Vec<UserIdentity>,
        /// Each device's key, in [`OWNER`] order.
        devices: Vec<SigningPublicKey>,
        /// Each device's group.
        groups: Vec<Group>,
        /// Group messages to Carol not yet delivered, with their plaintexts.
        held: Vec<(Vec<u8>, Vec<u8>)>,
    }

    impl Groups {
        fn new(rng: &mut ChaCha20Rng) -> Self {
            let users: Vec<_> = (0..4).map(|_| UserIdentity::generate(rng)).collect();
            let keys: Vec<_> = users.iter().map(UserIdentity::user_key).collect();
            let devices = (0..OWNER.len()).map(|_| DeviceIdentity::generate(rng).device_key()).collect();
            let (alice, welcome) = Group::create(rng, &users[0], "pickles", &keys[1..3], 1).unwrap();
            let mut groups = vec![alice];
            groups.extend(OWNER[1..].iter().map(|&u| Group::join(keys[u], &welcome).unwrap()));
            let mut g = Self { users, devices, groups, held: Vec::new() };

            let promote = g.groups[0].change(&g.users[0], RosterAction::Promote(keys[1]), 2).unwrap().control;
            g.broadcast(0, &promote);
            // Alice renames while Bob adds Dave, both on the same epoch: one of them goes stale.
            let rename = g.groups[0].change(&g.users[0], RosterAction::Rename("renamed".into()), 3).unwrap().control;
            let add = g.groups[1].change(&g.users[1], RosterAction::Add(vec![keys[3]]), 3).unwrap().control;
            g.broadcast(0, &rename);
            g.broadcast(1, &add);
            for other in &g.groups {
                assert_eq!((&other.roster, other.head), (&g.groups[0].roster, g.groups[0].head));
            }
            let stale = ChangeStatus::Rejected(ChangeRejection::StaleEpoch);
            assert_eq!(g.groups[CAROL].statuses.iter().filter(|&&s| s == stale).count(), 1);

            // Alice's first chain: Carol reads only the third message.
            for i in 0..3 {
                let text = format!("alice {i}").into_bytes();
                let m = g.send(rng, 0, &text);
                g.hold_or_deliver(m, text, i == 2);
            }
            // A new epoch: Alice's next message starts her second chain.
            let rename = g.groups[0].change(&g.users[0], RosterAction::Rename("again".into()), 4).unwrap().control;
            g.broadcast(0, &rename);
            for (device, count) in [(0, 2), (1, 2), (2, 1)] {
                for i in 0..count {
                    let text = format!("device {device}, {i}").into_bytes();
                    let m = g.send(rng, device, &text);
                    g.hold_or_deliver(m, text, i + 1 == count);
                }
            }
            // Carol sends too; Alice reads it.
            for i in 0..2 {
                let text = format!("carol {i}").into_bytes();
                let m = g.send(rng, CAROL, &text);
                g.deliver(0, &m, &text);
            }

            let carol = &g.groups[CAROL];
            assert_eq!(carol.inbound.len(), 4);
            assert_eq!(carol.inbound.iter().filter(|c| c.sender_device == g.devices[0]).count(), 2);
            let skipped: Vec<Vec<u32>> =
                carol.inbound.iter().map(|c| c.skipped.iter().map(|k| k.index).collect()).collect();
            assert_eq!(skipped, vec![vec![0, 1], vec![0], vec![0], vec![]]);
            assert_eq!(carol.outbound.as_ref().unwrap().chain.index, 2);
            g
        }

        fn reload(&self) -> Self {
            Self {
                users: self.users.clone(),
                devices: self.devices.clone(),
                groups: self.groups.iter().map(reload_group).collect(),
                held: self.held.clone(),
            }
        }

        fn user_key(&self, device: usize) -> SigningPublicKey {
            self.users[OWNER[device]].user_key()
        }

        /// A roster control from one device to all the others; returns what each saw.
        fn broadcast(&mut self, from: usize, control: &[u8]) -> Vec<Vec<GroupEvent>> {
            let others = self.groups.iter_mut().enumerate().filter(|(i, _)| *i != from);
            others.map(|(_, g)| g.apply_control(control).unwrap()).collect()
        }

        /// Encrypts on `from`, handing a new chain's distribution to every other member device.
        fn send(&mut self, rng: &mut ChaCha20Rng, from: usize, text: &[u8]) -> Vec<u8> {
            let sent = self.groups[from].encrypt(rng, text).unwrap();
            if let Some(distribution) = &sent.distribution {
                let (user, device) = (self.user_key(from), self.devices[from]);
                for (i, g) in self.groups.iter_mut().enumerate() {
                    if i != from && g.roster.is_member(&g.me) {
                        g.process_distribution(user, device, distribution).unwrap();
                    }
                }
            }
            sent.message
        }

        fn deliver(&mut self, to: usize, m: &[u8], text: &[u8]) {
            assert_eq!(self.groups[to].decrypt(m).unwrap().plaintext, text);
        }

        fn hold_or_deliver(&mut self, m: Vec<u8>, text: Vec<u8>, deliver: bool) {
            if deliver {
                self.deliver(CAROL, &m, &text);
            } else {
                self.held.push((m, text));
            }
        }

        /// Delivers what was held back (newest first), removes Bob, and talks on; returns a
        /// transcript of everything sent and seen.
        fn finish(&mut self, rng: &mut ChaCha20Rng) -> Vec<Vec<u8>> {
            let mut transcript = Vec::new();
            for (m, text) in self.held.clone().iter().rev() {
                self.deliver(CAROL, m, text);
            }
            for (m, _) in &self.held {
                assert_eq!(self.groups[CAROL].decrypt(m), Err(Error::DuplicateMessage));
            }
            let bob = self.users[1].user_key();
            let remove = self.groups[0].change(&self.users[0], RosterAction::Remove(bob), 5).unwrap();
            let events = self.broadcast(0, &remove.control);
            assert!(events[CAROL - 1].contains(&GroupEvent::MemberRemoved(bob)));
            assert!(self.groups[CAROL].inbound.iter().all(|c| c.sender_user != bob));
            transcript.extend([remove.control, format!("{events:?}").into_bytes()]);
            for round in 0..3 {
                for (from, to) in [(CAROL, 0), (0, CAROL)] {
                    let text = format!("after {from} {round}").into_bytes();
                    let m = self.send(rng, from, &text);
                    self.deliver(to, &m, &text);
                    transcript.push(m);
                }
            }
            transcript
        }
    }

    #[test]
    fn new_group_round_trips() {
        let mut rng = rng(6);
        let users: Vec<_> = (0..2).map(|_| UserIdentity::generate(&mut rng)).collect();
        let (created, welcome) = Group::create(&mut rng, &users[0], "g", &[users[1].user_key()], 1).unwrap();
        let joined = Group::join(users[1].user_key(), &welcome).unwrap();
        for group in [&created, &joined] {
            let back = reload_group(group);
            assert_eq!((back.id(), back.me, back.epoch()), (group.id(), group.me, 1));
            assert!(back.outbound.is_none() && back.inbound.is_empty());
        }
    }

    #[test]
    fn groups_round_trip_mid_conversation_and_carry_on() {
        let mut original = Groups::new(&mut rng(7));
        let mut restored = original.reload();
        let transcript_original = original.finish(&mut rng(70));
        let transcript_restored = restored.finish(&mut rng(70));
        assert_eq!(transcript_original, transcript_restored);
        for (o, r) in original.groups.iter().zip(&restored.groups) {
            assert_eq!(*o.to_bytes(), *r.to_bytes());
            reload_group(r);
        }
    }

    #[test]
    fn group_encoding_is_deterministic() {
        let g = Groups::new(&mut rng(8));
        for group in &g.groups {
            let bytes = group.to_bytes();
            assert_eq!(*group.to_bytes(), *bytes);
            assert_eq!(*group.clone().to_bytes(), *bytes);
        }
        // The log is kept in arrival order, which differs between devices; the replayed roster
        // does not.
        let (alice, bob) = (reload_group(&g.groups[0]), reload_group(&g.groups[1]));
        assert_ne!(alice.log, bob.log);
        assert_eq!((&alice.roster, alice.head), (&bob.roster, bob.head));
    }

    #[test]
    fn bad_group_fields_are_typed_errors() {
        let mut rng = rng(9);
        let g = Groups::new(&mut rng);
        let carol = &g.groups[CAROL];
        let bytes = carol.to_bytes();
        let check = |edit: &dyn Fn(&mut storage::Group), expected: Error| {
            assert_eq!(load_group(&edit_group(&bytes, edit)), Err(expected));
        };
        let malformed = |what| Error::Malformed { what };
        let stranger = UserIdentity::generate(&mut rng);

        check(&|g| g.version = 2, Error::UnsupportedVersion { what: "group", version: 2 });
        check(
            &|g| {
                g.id.pop();
            },
            malformed("group id"),
        );
        check(&|g| g.me.truncate(31), malformed("group member key"));
        // A device that is not a member holds no sender chain.
        check(&|g| g.me = stranger.user_key().to_bytes().to_vec(), Error::NotGroupMember);
        check(&|g| outbound(g).chain = None, malformed("outbound sender chain"));
        check(&|g| outbound(g).chain.as_mut().unwrap().key.truncate(31), malformed("outbound sender chain key"));
        check(&|g| outbound(g).chain_id.push(0), malformed("outbound sender chain id"));
        check(&|g| outbound(g).signing_secret.truncate(16), malformed("outbound sender signing key"));
        check(&|g| outbound(g).epoch += 1, malformed("outbound sender chain epoch"));

        // Chains: [0] and [1] are Alice's, [2] and [3] Bob's devices'.
        check(&|g| g.inbound[0].sender_user = stranger.user_key().to_bytes().to_vec(), Error::NotGroupMember);
        check(&|g| g.inbound[2].sender_user.truncate(8), malformed("sender user key"));
        check(&|g| g.inbound[2].sender_device.clear(), malformed("sender device key"));
        check(&|g| g.inbound[2].signing_key.push(1), malformed("sender signing key"));
        check(&|g| g.inbound[2].chain_id.truncate(15), malformed("sender chain id"));
        check(&|g| g.inbound[2].chain = None, malformed("sender chain"));
        check(&|g| g.inbound[2].chain.as_mut().unwrap().key.push(0), malformed("sender chain key"));
        check(&|g| g.inbound[0].skipped.reverse(), malformed("skipped sender chain key index"));
        check(&|g| g.inbound[0].chain.as_mut().unwrap().index = 1, malformed("skipped sender chain key index"));
        check(&|g| g.inbound[0].skipped[1].key.truncate(31), malformed("skipped sender chain key"));
        check(
            &|g| {
                let key = g.inbound[0].skipped[0].key.clone();
                g.inbound[0].chain.as_mut().unwrap().index = 5_000;
                g.inbound[0].skipped = (0..=MAX_SKIPPED_KEYS as u32)
                    .map(|index| storage::SkippedKey { index, key: key.clone() })
                    .collect();
            },
            Error::TooLarge { what: "skipped sender chain keys", size: MAX_SKIPPED_KEYS + 1, max: MAX_SKIPPED_KEYS },
        );
        check(
            &|g| {
                let again = g.inbound[2].clone();
                g.inbound.push(again);
            },
            malformed("sender chain ids"),
        );
        check(
            &|g| {
                let mut third = g.inbound[0].clone();
                third.chain_id = vec![7; 16];
                g.inbound.push(third);
            },
            Error::TooLarge {
                what: "sender chains of a device",
                size: MAX_SENDER_CHAINS_PER_DEVICE + 1,
                max: MAX_SENDER_CHAINS_PER_DEVICE,
            },
        );

        // The log: every change verified again, one create, all of this group.
        let id = carol.id;
        let create = |author: &UserIdentity, id: GroupId, members: Vec<SigningPublicKey>| {
            let action = RosterAction::Create { name: "mine".into(), members };
            RosterChange::sign(author, id, None, 9, action).unwrap().signed
        };
        let second_create = create(&g.users[1], id, vec![]);
        let foreign = create(&g.users[0], GroupId([0xAB; 16]), vec![]);
        // A create naming a member twice never takes effect.
        let void = create(&g.users[0], id, vec![g.user_key(CAROL), g.user_key(CAROL)]);
        assert!(carol.log[0].parent.is_none());
        check(&|g| g.log.clear(), malformed("group log"));
        check(
            &|g| g.log = vec![g.log[0].clone(); MAX_GROUP_LOG + 1],
            Error::TooLarge { what: "group log", size: MAX_GROUP_LOG + 1, max: MAX_GROUP_LOG },
        );
        check(
            &|g| {
                g.log.remove(0);
            },
            malformed("group log creates"),
        );
        check(&|g| g.log.push(second_create.clone()), malformed("group log creates"));
        check(&|g| g.log.push(foreign.clone()), malformed("group change group id"));
        check(&|g| g.log.push(g.log[1].clone()), malformed("group log duplicate"));
        check(&|g| *g.log[1].last_mut().unwrap() ^= 1, Error::BadSignature { what: "group change" });
        check(&|g| g.log[1].push(0), malformed("group change"));
        check(&|g| g.log[1] = vec![0xFF; 3], malformed("group change"));
        check(
            &|g| {
                g.log = vec![void.clone()];
                g.outbound = None;
                g.inbound.clear();
            },
            malformed("group create"),
        );
    }

    fn outbound(g: &mut storage::Group) -> &mut storage::OutboundSenderChain {
        g.outbound.as_mut().unwrap()
    }

    // ---- Both ----

    #[test]
    fn oversized_truncated_garbage_and_versions_are_typed_errors() {
        let mut rng = rng(10);
        let mut peers = Peers::new(&mut rng);
        let other = SignedDeviceList::sign(&UserIdentity::generate(&mut rng), 1, &[], 1).unwrap();
        peers.a.update_device_list(other).unwrap();
        let peer = peers.a.to_bytes();
        let group = Groups::new(&mut rng).groups[CAROL].to_bytes();

        // `vec!` of zeroes maps untouched pages: the size is refused before any byte is read.
        assert_eq!(
            load_peer(&vec![0; MAX_PEER_BYTES + 1]),
            Err(Error::TooLarge { what: "peer user", size: MAX_PEER_BYTES + 1, max: MAX_PEER_BYTES })
        );
        assert_eq!(
            load_group(&vec![0; MAX_GROUP_BYTES + 1]),
            Err(Error::TooLarge { what: "group", size: MAX_GROUP_BYTES + 1, max: MAX_GROUP_BYTES })
        );

        for (bytes, load, what) in
            [(&peer, load_peer as fn(&[u8]) -> Result<()>, "peer user"), (&group, load_group, "group")]
        {
            let malformed = Err(Error::Malformed { what });
            // Cut inside the last field, inside the middle one, inside the first.
            for n in [bytes.len() - 1, bytes.len() / 2, 3] {
                assert_eq!(load(&bytes[..n]), malformed, "{what} cut at {n}");
            }
            assert_eq!(load(&[0xFF; 64]), malformed);
            // An unknown field breaks the canonical encoding.
            let mut extra = bytes.to_vec();
            extra.extend_from_slice(&[0xF8, 0x01, 0x01]);
            assert_eq!(load(&extra), malformed);
            for len in [1usize, 7, 64, 500, 5000] {
                for _ in 0..50 {
                    let mut garbage = vec![0u8; len];
                    rng.fill_bytes(&mut garbage);
                    assert!(load(&garbage).is_err());
                }
            }
            // Nothing at all: version 0.
            assert_eq!(load(&[]), Err(Error::UnsupportedVersion { what, version: 0 }));
        }
        for version in [0, 2, u32::MAX] {
            let other = edit_peer(&peer, |p| p.version = version);
            assert_eq!(load_peer(&other), Err(Error::UnsupportedVersion { what: "peer user", version }));
            let other = edit_group(&group, |g| g.version = version);
            assert_eq!(load_group(&other), Err(Error::UnsupportedVersion { what: "group", version }));
        }
    }

    #[test]
    fn storage_types_redact_debug_and_wipe() {
        let mut rng = rng(11);
        let peers = Peers::new(&mut rng);
        let groups = Groups::new(&mut rng);
        let peer = storage::PeerUser::decode(peers.a.to_bytes().as_slice()).unwrap();
        let group = storage::Group::decode(groups.groups[CAROL].to_bytes().as_slice()).unwrap();
        let outbound = group.outbound.as_ref().unwrap();
        let text = format!("{peer:?}{:?}{group:?}{outbound:?}{:?}", peer.sessions[0], group.inbound[0]);
        assert_eq!(
            text,
            "storage::PeerUser([redacted])storage::PeerDeviceSessions([redacted])storage::Group([redacted])\
             storage::OutboundSenderChain([redacted])storage::InboundSenderChain([redacted])"
        );
        let mut secrets = vec![outbound.chain.as_ref().unwrap().key.clone(), outbound.signing_secret.clone()];
        for c in &group.inbound {
            secrets.push(c.chain.as_ref().unwrap().key.clone());
            secrets.extend(c.skipped.iter().map(|k| k.key.clone()));
        }
        for s in peer.sessions.iter().flat_map(|s| s.record.as_ref().unwrap().active.as_ref()) {
            let r = s.ratchet.as_ref().unwrap();
            secrets.extend([r.root_key.clone(), r.sending_ratchet_secret.clone()]);
        }
        assert!(secrets.len() > 10);
        for secret in &secrets {
            assert_no_secret(&text, secret);
        }

        let mut wiped = group.clone();
        zeroize::Zeroize::zeroize(&mut wiped);
        assert!(wiped.outbound.is_none() && wiped.inbound.is_empty() && wiped.log.is_empty());
        assert_eq!(wiped.encode_to_vec(), Vec::<u8>::new());
        let mut wiped = peer.clone();
        zeroize::Zeroize::zeroize(&mut wiped);
        assert_eq!(wiped.encode_to_vec(), Vec::<u8>::new());
    }
}
