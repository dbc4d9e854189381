//! The storage format ("pickle") of a [`Group`]: this device's view of the group (the roster log,
//! its own sender chain, the members' chains with their skipped keys) to and from the versioned
//! `storage::Group` message of `core/proto/storage.proto`. The roster, change statuses and head are
//! not stored but replayed from the log, every roster change is verified again, and the sender
//! chains must fit that roster and the protocol's bounds. The rules every format follows are in
//! `crate::pickle`.

use std::collections::BTreeSet;

use prost::Message;
use zeroize::Zeroizing;

use super::roster::{self, ChangeStatus, RosterChange, replay};
use super::sender_chain::{ChainId, InboundSenderChain, OutboundSenderChain};
use super::{ChangeRejection, Group, GroupId, drop_chains_beyond_user_cap};
use crate::crypto::SigningPublicKey;
use crate::crypto::keys::SigningKeyPair;
use crate::error::{Error, Result};
use crate::limits::{
    MAX_GROUP_BYTES, MAX_GROUP_CHANGE_BYTES, MAX_GROUP_LOG, MAX_SENDER_CHAINS_PER_DEVICE, MAX_SKIPPED_KEYS,
};
use crate::pickle::{check_count, secret32};
use crate::ratchet::pickle::{
    chain_key_from_storage, chain_key_to_storage, skipped_keys_from_storage, skipped_keys_to_storage,
};
use crate::wire::{self, group as group_proto, storage};

/// Format version of [`storage::Group`]: 2 since logs are bounded (docs/PROTOCOL.md §11.5): the log
/// holds no change that can never apply, and no more waiting changes than the caps allow.
const GROUP_VERSION: u32 = 2;
/// The version before: the same fields, but the log holds every change received. Loading one
/// migrates it (drops what version 2 does not hold); the next write stores version 2.
const GROUP_VERSION_UNBOUNDED_LOG: u32 = 1;
/// Largest encoded `SignedGroupChange`: the change, its 64-byte signature and their framing.
const MAX_SIGNED_CHANGE_BYTES: usize = MAX_GROUP_CHANGE_BYTES + 128;

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
                started_at_ms: c.started_at_ms,
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
        let migrate = p.version == GROUP_VERSION_UNBOUNDED_LOG;
        if !migrate {
            wire::check_version("group", p.version, GROUP_VERSION)?;
        }
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
        let mut group = Group {
            id,
            me,
            log,
            statuses: replayed.statuses,
            roster: replayed.roster,
            head: replayed.head,
            outbound: None,
            inbound: Vec::new(),
        };
        if migrate {
            group.prune();
        } else {
            check_bounded_log(&group)?;
        }
        let roster = &group.roster;

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
            // `Group` takes no chain of epoch 0; version 1 did, and such a chain is dropped.
            if chain.epoch == 0 {
                if migrate {
                    continue;
                }
                return Err(Error::Malformed { what: "sender chain epoch" });
            }
            if inbound
                .iter()
                .any(|other| other.sender_device == chain.sender_device && other.chain_id == chain.chain_id)
            {
                return Err(Error::Malformed { what: "sender chain ids" });
            }
            let of_device = 1 + inbound.iter().filter(|other| other.sender_device == chain.sender_device).count();
            check_count("sender chains of a device", of_device, 0, MAX_SENDER_CHAINS_PER_DEVICE)?;
            inbound.push(chain);
        }

        // A group written before the per-user cap may hold more of a user's chains (of many
        // devices): they are dropped as `process_distribution` now would, the oldest first.
        let mut seen = BTreeSet::new();
        let users: Vec<SigningPublicKey> =
            inbound.iter().map(|c| c.sender_user).filter(|u| seen.insert(u.to_bytes())).collect();
        for user in &users {
            drop_chains_beyond_user_cap(&mut inbound, user);
        }

        group.outbound = outbound;
        group.inbound = inbound;
        Ok(group)
    }
}

/// What a version-2 log must be: what `roster::kept` keeps, all of it (a change it would drop:
/// rejected other than as stale, or waiting beyond a cap of §11.5).
fn check_bounded_log(group: &Group) -> Result<()> {
    if group.statuses.iter().any(|s| matches!(s, ChangeStatus::Rejected(why) if *why != ChangeRejection::StaleEpoch)) {
        return Err(Error::Malformed { what: "group log rejected change" });
    }
    if roster::kept(&group.log, &group.statuses, &group.roster).iter().all(|k| *k) {
        Ok(())
    } else {
        Err(Error::Malformed { what: "group log beyond its bounds" })
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
        started_at_ms: p.started_at_ms,
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
pub(crate) mod tests {
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::group::roster::ChangeStatus;
    use crate::group::{ChangeRejection, GroupEvent, RosterAction};
    use crate::identity::{DeviceIdentity, UserIdentity};
    use crate::test_util::rng;

    fn reload_group(group: &Group) -> Group {
        let bytes = group.to_bytes();
        let back = Group::from_bytes(&bytes).unwrap();
        assert_eq!(*back.to_bytes(), *bytes);
        // The derived state is replayed, not stored: it must come out the same.
        assert_eq!((&back.roster, &back.statuses, back.head), (&group.roster, &group.statuses, group.head));
        back
    }

    /// Loads, keeping only the outcome (the secret types have no `PartialEq`).
    pub(crate) fn load_group(bytes: &[u8]) -> Result<()> {
        Group::from_bytes(bytes).map(drop)
    }

    /// Re-encodes `bytes` after `edit`, bypassing every check but protobuf's.
    pub(crate) fn edit_group(bytes: &[u8], edit: impl FnOnce(&mut storage::Group)) -> Vec<u8> {
        let mut p = storage::Group::decode(bytes).unwrap();
        edit(&mut p);
        p.encode_to_vec()
    }

    /// The user owning each device of [`Groups`]: Alice, Bob (two devices), Carol.
    const OWNER: [usize; 4] = [0, 1, 1, 2];
    /// Carol's device, the reader whose group holds the most state.
    pub(crate) const CAROL: usize = 3;

    /// A group of Alice (admin), Bob and Carol after several roster changes, one of them
    /// concurrent and so stale, with a sender chain on every device (two of Alice's at Carol's)
    /// and messages to Carol held back on three chains.
    pub(crate) struct Groups {
        /// Alice, Bob, Carol, and Dave, whom Bob tries to add.
        pub(crate) users: Vec<UserIdentity>,
        /// Each device's key, in [`OWNER`] order.
        pub(crate) devices: Vec<SigningPublicKey>,
        /// Each device's group.
        pub(crate) groups: Vec<Group>,
        /// Group messages to Carol not yet delivered, with their sending device and plaintexts.
        pub(crate) held: Vec<(usize, Vec<u8>, Vec<u8>)>,
    }

    impl Groups {
        pub(crate) fn new(rng: &mut ChaCha20Rng) -> Self {
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
                g.hold_or_deliver(0, m, text, i == 2);
            }
            // A new epoch: Alice's next message starts her second chain.
            let rename = g.groups[0].change(&g.users[0], RosterAction::Rename("again".into()), 4).unwrap().control;
            g.broadcast(0, &rename);
            for (device, count) in [(0, 2), (1, 2), (2, 1)] {
                for i in 0..count {
                    let text = format!("device {device}, {i}").into_bytes();
                    let m = g.send(rng, device, &text);
                    g.hold_or_deliver(device, m, text, i + 1 == count);
                }
            }
            // Carol sends too; Alice reads it.
            for i in 0..2 {
                let text = format!("carol {i}").into_bytes();
                let m = g.send(rng, CAROL, &text);
                g.deliver(CAROL, 0, &m, &text);
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
            let sent = self.groups[from].encrypt(rng, text, 1).unwrap();
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

        fn deliver(&mut self, from: usize, to: usize, m: &[u8], text: &[u8]) {
            let device = self.devices[from];
            assert_eq!(self.groups[to].decrypt(&device, m).unwrap().plaintext, text);
        }

        fn hold_or_deliver(&mut self, from: usize, m: Vec<u8>, text: Vec<u8>, deliver: bool) {
            if deliver {
                self.deliver(from, CAROL, &m, &text);
            } else {
                self.held.push((from, m, text));
            }
        }

        /// Delivers what was held back (newest first), removes Bob, and talks on; returns a
        /// transcript of everything sent and seen.
        fn finish(&mut self, rng: &mut ChaCha20Rng) -> Vec<Vec<u8>> {
            let mut transcript = Vec::new();
            for (from, m, text) in self.held.clone().iter().rev() {
                self.deliver(*from, CAROL, m, text);
            }
            for (from, m, _) in &self.held {
                assert_eq!(self.groups[CAROL].decrypt(&self.devices[*from], m), Err(Error::DuplicateMessage));
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
                    self.deliver(from, to, &m, &text);
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

        check(&|g| g.version = 3, Error::UnsupportedVersion { what: "group", version: 3 });
        check(&|g| g.inbound[2].epoch = 0, malformed("sender chain epoch"));
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

    /// A version-1 group (`test-vectors/store/group_v1.json`, written by the code before bounded
    /// logs) whose log holds a stranger's rejected and pending changes and a member's rejected
    /// renames and pending leave, beside Carol's chain of Alice's with a message held back.
    #[test]
    fn a_version_1_group_migrates_to_a_bounded_log() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/store/group_v1.json");
        let f: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let hex = |k: &str| hex::decode(f[k].as_str().unwrap()).unwrap();
        let key = |k: &str| SigningPublicKey::from_slice(&hex(k), "key").unwrap();
        let v1 = hex("pickle");
        assert_eq!(storage::Group::decode(v1.as_slice()).unwrap().version, 1);
        assert_eq!(storage::Group::decode(v1.as_slice()).unwrap().log.len(), 11);

        let mut group = Group::from_bytes(&v1).unwrap();
        // Kept: the create, the rename, Bob's pending leave (he is a member) and Mallory's three
        // pending changes (within the non-members' budget). Mallory's three rejected changes and
        // Bob's two rejected renames are gone.
        assert_eq!(group.log.len(), 6);
        let pending = |who: &SigningPublicKey| {
            group
                .log
                .iter()
                .zip(&group.statuses)
                .filter(|(c, s)| c.author == *who && **s == ChangeStatus::Pending)
                .count()
        };
        assert_eq!((pending(&key("mallory")), group.log.iter().filter(|c| c.author == key("mallory")).count()), (3, 3));
        assert_eq!(group.statuses.iter().filter(|s| **s == ChangeStatus::Applied).count(), 2);
        assert_eq!(group.statuses.iter().filter(|s| **s == ChangeStatus::Pending).count(), 4);
        assert_eq!((group.roster.name.as_str(), group.roster.members.len(), group.epoch()), ("fixture 2", 3, 2));
        // The chains came through: the message held back decrypts.
        let read = group.decrypt(&key("sender_device"), &hex("held_message")).unwrap();
        assert_eq!((read.sender_user, read.plaintext), (key("sender_user"), b"held across the migration".to_vec()));

        // Written again, it is version 2 and loads as it is.
        let v2 = group.to_bytes();
        assert_eq!(storage::Group::decode(v2.as_slice()).unwrap().version, GROUP_VERSION);
        reload_group(&group);
        // A version-2 pickle may not hold what version 1 did.
        let tagged = edit_group(&v1, |g| g.version = GROUP_VERSION);
        assert_eq!(load_group(&tagged), Err(Error::Malformed { what: "group log rejected change" }));
    }

    /// A version-2 group (`test-vectors/store/group_v2.json`, written before sender chains rotated
    /// by count and age): Alice's chain has no start time. It loads, keeps its chain (no rotation
    /// on load), is dated at its next use, and is replaced a week after that.
    #[test]
    fn a_version_2_group_dates_its_chain_and_keeps_it() {
        use crate::limits::SENDER_CHAIN_MAX_AGE_MS;
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/store/group_v2.json");
        let f: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let hex = |k: &str| hex::decode(f[k].as_str().unwrap()).unwrap();
        let alice_key = SigningPublicKey::from_slice(&hex("alice_key"), "key").unwrap();
        let mut alice = Group::from_bytes(&hex("alice")).unwrap();
        let mut bob = Group::from_bytes(&hex("bob")).unwrap();
        let chain = alice.outbound.as_ref().map(|c| (c.chain_id, c.chain.index, c.started_at_ms)).unwrap();
        assert_eq!((chain.1, chain.2), (3, 0));
        let mut rng = <ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(9);
        let now = 1_765_000_000_000;
        let send = alice.encrypt(&mut rng, b"after the upgrade", now).unwrap();
        assert!(send.distribution.is_none());
        assert_eq!(bob.decrypt(&alice_key, &send.message).unwrap().plaintext, b"after the upgrade");
        let reloaded = Group::from_bytes(&alice.to_bytes()).unwrap();
        let out = reloaded.outbound.as_ref().unwrap();
        assert_eq!((out.chain_id, out.started_at_ms), (chain.0, now));
        assert!(alice.encrypt(&mut rng, b"a week on", now + SENDER_CHAIN_MAX_AGE_MS).unwrap().distribution.is_some());
    }

    fn outbound(g: &mut storage::Group) -> &mut storage::OutboundSenderChain {
        g.outbound.as_mut().unwrap()
    }
}
