//! Groups: 3 users × 2 devices, membership changes and what each member can read afterwards,
//! admin rules, convergence of concurrent changes, limits and replays.

use hush_core::group::{ChangeRejection, Group, GroupEvent, GroupSend, RosterAction};
use hush_core::limits::SENDER_CHAIN_MAX_MESSAGES;
use hush_core::{Error, SigningPublicKey, UserIdentity};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// One member device: its user, its device key, its view of the group.
struct Device {
    user: usize,
    key: SigningPublicKey,
    group: Option<Group>,
}

/// Users and their devices, with the transport a client would do: roster controls and sender-key
/// distributions go to every device of the users concerned (as if through 1:1 sessions).
struct World {
    rng: ChaCha20Rng,
    users: Vec<UserIdentity>,
    devices: Vec<Device>,
    /// The sending device of each group message sent, as its sealed-sender envelope would name it;
    /// bytes not sent as such (a tampered copy) travel as from the last sender.
    sent_by: std::collections::HashMap<Vec<u8>, SigningPublicKey>,
    last_sender: Option<SigningPublicKey>,
}

impl World {
    fn new(seed: u64, users: usize, devices_per_user: usize) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let users: Vec<_> = (0..users).map(|_| UserIdentity::generate(&mut rng)).collect();
        let devices = (0..users.len() * devices_per_user)
            .map(|i| Device {
                user: i / devices_per_user,
                key: hush_core::DeviceIdentity::generate(&mut rng).device_key(),
                group: None,
            })
            .collect();
        World { rng, users, devices, sent_by: Default::default(), last_sender: None }
    }

    fn user_key(&self, u: usize) -> SigningPublicKey {
        self.users[u].user_key()
    }

    /// User 0's first device creates the group with the given users; every device of them joins.
    fn create(&mut self, members: &[usize]) {
        let others: Vec<_> = members.iter().filter(|&&u| u != 0).map(|&u| self.user_key(u)).collect();
        let (group, welcome) = Group::create(&mut self.rng, &self.users[0], "friends", &others, 1).unwrap();
        self.devices[0].group = Some(group);
        for d in 1..self.devices.len() {
            if members.contains(&self.devices[d].user) {
                let me = self.user_key(self.devices[d].user);
                self.devices[d].group = Some(Group::join(me, &welcome).unwrap());
            }
        }
    }

    fn group(&mut self, d: usize) -> &mut Group {
        self.devices[d].group.as_mut().unwrap()
    }

    /// Device `d` makes a roster change; everyone in the group before or after gets the control,
    /// added users' devices get the welcome.
    fn change(&mut self, d: usize, action: RosterAction) -> hush_core::Result<Vec<GroupEvent>> {
        let user = self.users[self.devices[d].user].clone();
        let before = self.group(d).members();
        let update = self.group(d).change(&user, action, 2)?;
        let after = self.group(d).members();
        for other in 0..self.devices.len() {
            if other == d {
                continue;
            }
            let u = self.user_key(self.devices[other].user);
            if let (Some(welcome), false, true) = (&update.welcome, before.contains(&u), after.contains(&u)) {
                self.devices[other].group = Some(Group::join(u, welcome).unwrap());
            } else if (before.contains(&u) || after.contains(&u))
                && let Some(g) = self.devices[other].group.as_mut()
            {
                g.apply_control(&update.control).unwrap();
            }
        }
        Ok(update.events)
    }

    /// Device `d` sends; distributions go to every device of every current member (as the client
    /// would); returns the group message.
    fn send(&mut self, d: usize, text: &str) -> Vec<u8> {
        let sender_user = self.user_key(self.devices[d].user);
        let sender_device = self.devices[d].key;
        let group = self.devices[d].group.as_mut().unwrap();
        let GroupSend { distribution, message } = group.encrypt(&mut self.rng, text.as_bytes(), 1).unwrap();
        if let Some(dist) = distribution {
            let members = self.group(d).members();
            for other in 0..self.devices.len() {
                let u = self.user_key(self.devices[other].user);
                if other != d
                    && members.contains(&u)
                    && let Some(g) = self.devices[other].group.as_mut()
                {
                    g.process_distribution(sender_user, sender_device, &dist).unwrap();
                }
            }
        }
        self.sent_by.insert(message.clone(), sender_device);
        self.last_sender = Some(sender_device);
        message
    }

    fn read(&mut self, d: usize, message: &[u8]) -> hush_core::Result<String> {
        let sender = self.sent_by.get(message).copied().or(self.last_sender).ok_or(Error::UnknownSenderChain)?;
        let g = self.devices[d].group.as_mut().ok_or(Error::NotGroupMember)?;
        g.decrypt(&sender, message).map(|p| String::from_utf8(p.plaintext).unwrap())
    }
}

#[test]
fn three_users_two_devices_each() {
    let mut w = World::new(1, 3, 2);
    w.create(&[0, 1, 2]);
    for sender in 0..6 {
        let text = format!("hello from device {sender}");
        let m = w.send(sender, &text);
        for reader in (0..6).filter(|&r| r != sender) {
            assert_eq!(w.read(reader, &m).unwrap(), text);
        }
    }
    // Every device agrees on the roster.
    let epoch = w.group(0).epoch();
    assert!((0..6).all(|d| w.group(d).epoch() == epoch && w.group(d).members().len() == 3));
}

#[test]
fn removed_user_reads_nothing_after() {
    let mut w = World::new(2, 3, 2);
    w.create(&[0, 1, 2]);
    let before = w.send(2, "before removal");
    assert_eq!(w.read(4, &before).unwrap(), "before removal");
    let removed = w.user_key(2);
    let events = w.change(0, RosterAction::Remove(removed)).unwrap();
    assert_eq!(events, vec![GroupEvent::MemberRemoved(removed)]);
    // Devices 4 and 5 (user 2) learnt they are out; nobody sends them new chains.
    assert!(!w.group(4).roster().is_member(&removed));
    for sender in [0, 1, 2, 3] {
        let m = w.send(sender, "after removal");
        assert!(w.read(4, &m).is_err() && w.read(5, &m).is_err());
        assert_eq!(w.read((sender + 1) % 4, &m).unwrap(), "after removal");
    }
    // The removed user can no longer send: members reject its old chain.
    assert_eq!(w.group(4).encrypt(&mut ChaCha20Rng::seed_from_u64(0), b"x", 1).unwrap_err(), Error::NotGroupMember);
}

#[test]
fn old_epoch_message_from_removed_member_rejected() {
    let mut w = World::new(3, 3, 1);
    w.create(&[0, 1, 2]);
    let first = w.send(2, "one");
    assert_eq!(w.read(1, &first).unwrap(), "one");
    let queued = w.send(2, "sent before the removal, delivered after");
    let removed = w.user_key(2);
    w.change(0, RosterAction::Remove(removed)).unwrap();
    assert_eq!(w.read(1, &queued), Err(Error::UnknownSenderChain));
}

#[test]
fn added_user_reads_nothing_before() {
    let mut w = World::new(4, 3, 2);
    w.create(&[0, 1]);
    let old = w.send(2, "before the add");
    let added = w.user_key(2);
    w.change(0, RosterAction::Add(vec![added])).unwrap();
    assert!(w.group(4).roster().is_member(&added));
    assert_eq!(w.read(4, &old), Err(Error::UnknownSenderChain));
    let new = w.send(2, "after the add");
    assert_eq!(w.read(4, &new).unwrap(), "after the add");
    assert_eq!(w.read(5, &new).unwrap(), "after the add");
    let reply = w.send(4, "hi all");
    assert_eq!(w.read(0, &reply).unwrap(), "hi all");
}

#[test]
fn only_admins_change_the_roster() {
    let mut w = World::new(5, 3, 1);
    w.create(&[0, 1, 2]);
    // User 1 is a member, not an admin: its own client refuses, and members reject a forced change.
    let target = w.user_key(2);
    let err = w.change(1, RosterAction::Remove(target)).unwrap_err();
    assert_eq!(err, Error::GroupChangeRejected(ChangeRejection::NotAdmin));
    let promoted = w.user_key(1);
    w.change(0, RosterAction::Promote(promoted)).unwrap();
    assert!(w.group(2).roster().is_admin(&promoted));
    w.change(1, RosterAction::Rename("renamed".into())).unwrap();
    assert_eq!(w.group(2).roster().name, "renamed");
    // Anyone may leave.
    let leaver = w.user_key(2);
    let events = w.change(2, RosterAction::Leave).unwrap();
    assert_eq!(events, vec![GroupEvent::MemberRemoved(leaver)]);
    assert_eq!(w.group(0).members().len(), 2);
}

#[test]
fn concurrent_changes_converge() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let users: Vec<_> = (0..5).map(|_| UserIdentity::generate(&mut rng)).collect();
    let keys: Vec<_> = users.iter().map(|u| u.user_key()).collect();
    let (mut g0, welcome) = Group::create(&mut rng, &users[0], "g", &keys[1..3], 1).unwrap();
    let mut g1 = Group::join(keys[1], &welcome).unwrap();
    let mut g2 = Group::join(keys[2], &welcome).unwrap();
    let u = g0.change(&users[0], RosterAction::Promote(keys[1]), 2).unwrap();
    g1.apply_control(&u.control).unwrap();
    g2.apply_control(&u.control).unwrap();
    // Two admins change the roster at the same epoch, without seeing each other's change.
    let a = g0.change(&users[0], RosterAction::Add(vec![keys[3]]), 3).unwrap();
    let b = g1.change(&users[1], RosterAction::Add(vec![keys[4]]), 3).unwrap();
    let c = g0.change(&users[0], RosterAction::Rename("after a".into()), 4).unwrap();
    // Members receive them in different orders.
    g0.apply_control(&b.control).unwrap();
    g1.apply_control(&c.control).unwrap();
    g1.apply_control(&a.control).unwrap();
    for ctl in [&c.control, &b.control, &a.control] {
        g2.apply_control(ctl).unwrap();
    }
    assert_eq!(g0.roster(), g1.roster());
    assert_eq!(g1.roster(), g2.roster());
    // `a` has a follow-up (`c`), so its branch is longer and wins; `b` lost the race and is stale
    // everywhere — its author re-issues it on the new epoch.
    assert_eq!(g0.members().len(), 4);
    assert!(g0.roster().is_member(&keys[3]) && !g0.roster().is_member(&keys[4]));
    assert_eq!(g0.roster().name, "after a");
    let redo = g1.change(&users[1], RosterAction::Add(vec![keys[4]]), 5).unwrap();
    g0.apply_control(&redo.control).unwrap();
    g2.apply_control(&redo.control).unwrap();
    assert_eq!(g0.roster(), g2.roster());
    assert_eq!(g0.members().len(), 5);
    // Re-delivery changes nothing.
    assert!(g2.apply_control(&a.control).unwrap().is_empty());
    assert_eq!(g2.roster(), g0.roster());
}

#[test]
fn stale_change_reported() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let users: Vec<_> = (0..3).map(|_| UserIdentity::generate(&mut rng)).collect();
    let keys: Vec<_> = users.iter().map(|u| u.user_key()).collect();
    let (mut g0, welcome) = Group::create(&mut rng, &users[0], "g", &keys[1..], 1).unwrap();
    let mut g1 = Group::join(keys[1], &welcome).unwrap();
    let p = g0.change(&users[0], RosterAction::Promote(keys[1]), 2).unwrap();
    g1.apply_control(&p.control).unwrap();
    let first = g0.change(&users[0], RosterAction::Rename("one".into()), 3).unwrap();
    let second = g0.change(&users[0], RosterAction::Rename("two".into()), 4).unwrap();
    g1.apply_control(&first.control).unwrap();
    g1.apply_control(&second.control).unwrap();
    // A member that lagged (it saw only the promotion) renames: its change is made on an epoch the
    // group has moved on from.
    let mut old_view = Group::join(keys[1], &welcome).unwrap();
    old_view.apply_control(&p.control).unwrap();
    let stale = old_view.change(&users[1], RosterAction::Rename("stale".into()), 5).unwrap();
    let events = g0.apply_control(&stale.control).unwrap();
    assert_eq!(events, vec![GroupEvent::ChangeRejected { author: keys[1], reason: ChangeRejection::StaleEpoch }]);
    assert_eq!(g0.roster().name, "two");
}

#[test]
fn replay_duplicate_and_forward_limit() {
    let mut w = World::new(9, 2, 1);
    w.create(&[0, 1]);
    let m = w.send(0, "once");
    assert_eq!(w.read(1, &m).unwrap(), "once");
    assert_eq!(w.read(1, &m), Err(Error::DuplicateMessage));
    // Out of order within the chain.
    let a = w.send(0, "a");
    let b = w.send(0, "b");
    assert_eq!(w.read(1, &b).unwrap(), "b");
    assert_eq!(w.read(1, &a).unwrap(), "a");
    assert_eq!(w.read(1, &a), Err(Error::DuplicateMessage));
    // An honest sender never nears the jump limit: its chain is replaced every
    // SENDER_CHAIN_MAX_MESSAGES messages (docs/PROTOCOL.md §10.3), and a reader that missed a
    // stretch reads on. A far jump, which only a modified client makes, is checked in group::tests.
    let mut last = Vec::new();
    for i in 0..2 * SENDER_CHAIN_MAX_MESSAGES + 50 {
        last = w.send(0, &format!("{i}"));
    }
    assert_eq!(w.read(1, &last).unwrap(), format!("{}", 2 * SENDER_CHAIN_MAX_MESSAGES + 49));
}

#[test]
fn tampered_group_message_rejected_state_unchanged() {
    let mut w = World::new(10, 2, 1);
    w.create(&[0, 1]);
    let m = w.send(0, "tamper me");
    for i in 0..m.len() * 8 {
        let mut bad = m.clone();
        bad[i / 8] ^= 1 << (i % 8);
        assert!(w.read(1, &bad).is_err(), "bit {i} accepted");
    }
    assert_eq!(w.read(1, &m).unwrap(), "tamper me");
}

#[test]
fn concurrent_leaf_changes_converge_in_any_order() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let users: Vec<_> = (0..6).map(|_| UserIdentity::generate(&mut rng)).collect();
    let keys: Vec<_> = users.iter().map(|u| u.user_key()).collect();
    let (mut g0, welcome) = Group::create(&mut rng, &users[0], "g", &keys[1..3], 1).unwrap();
    let mut g1 = Group::join(keys[1], &welcome).unwrap();
    let p = g0.change(&users[0], RosterAction::Promote(keys[1]), 2).unwrap();
    g1.apply_control(&p.control).unwrap();
    let a = g0.change(&users[0], RosterAction::Add(vec![keys[3]]), 3).unwrap().control;
    let b = g1.change(&users[1], RosterAction::Remove(keys[2]), 3).unwrap().control;
    let controls = [&p.control, &a, &b];
    // Every delivery order gives the same roster.
    let mut rosters = Vec::new();
    for order in [[0, 1, 2], [0, 2, 1], [2, 0, 1], [1, 2, 0], [2, 1, 0]] {
        let mut g = Group::join(keys[2], &welcome).unwrap();
        for i in order {
            // A change whose parent is missing is pending, not an error.
            g.apply_control(controls[i]).unwrap();
        }
        rosters.push(g.roster().clone());
    }
    g0.apply_control(&b).unwrap();
    g1.apply_control(&a).unwrap();
    rosters.push(g0.roster().clone());
    rosters.push(g1.roster().clone());
    assert!(rosters.windows(2).all(|w| w[0] == w[1]), "{rosters:#?}");
    assert_eq!(rosters[0].epoch, 3);
}

/// Mallory's distribution of a chain of her own (her signing key) under `chain_id` and `epoch`.
fn forged_distribution(group: &Group, chain_id: Vec<u8>, epoch: u64, seed: u64) -> Vec<u8> {
    use hush_core::wire::group::SenderKeyDistribution;
    use prost::Message;
    let signing = ed25519_dalek::SigningKey::from_bytes(&[seed as u8; 32]);
    let d = SenderKeyDistribution {
        version: 1,
        group_id: group.id().to_bytes().to_vec(),
        epoch,
        chain_id,
        iteration: 0,
        chain_key: vec![seed as u8; 32],
        signing_key: signing.verifying_key().to_bytes().to_vec(),
    };
    d.encode_to_vec()
}

/// The chain id a group message names.
fn chain_id_of(message: &[u8]) -> Vec<u8> {
    use hush_core::wire::group::GroupMessage;
    use prost::Message;
    GroupMessage::decode(message).unwrap().chain_id
}

/// Member Mallory (user 2) learns Bob's chain id from his first message and distributes chains of
/// her own under that id, her copies arriving at Alice before Bob's: one at Bob's epoch, one
/// claiming epoch 999. Chains are held per (sending device, chain id), so Alice still reads every
/// message of Bob's as Bob's, and Mallory's forgeries never pass as Bob's.
#[test]
fn a_member_cannot_squat_another_devices_chain_id() {
    let mut w = World::new(11, 3, 1);
    w.create(&[0, 1, 2]);
    let (bob_user, bob_device) = (w.user_key(1), w.devices[1].key);
    let (mallory_user, mallory_device) = (w.user_key(2), w.devices[2].key);
    let epoch = w.group(0).epoch();
    // Bob's first message; his distribution is held back from Alice.
    let sent = w.group(1).encrypt(&mut ChaCha20Rng::seed_from_u64(1), b"bob 0", 1).unwrap();
    let bob_dist = sent.distribution.unwrap();
    let chain_id = chain_id_of(&sent.message);
    w.sent_by.insert(sent.message.clone(), bob_device);
    for (seed, claimed) in [(5, epoch), (6, 999)] {
        let forged = forged_distribution(w.group(0), chain_id.clone(), claimed, seed);
        w.group(0).process_distribution(mallory_user, mallory_device, &forged).unwrap();
    }
    // Before Bob's copy arrives his message is not readable, and not Mallory's either.
    assert_eq!(w.read(0, &sent.message), Err(Error::UnknownSenderChain));
    w.group(0).process_distribution(bob_user, bob_device, &bob_dist).unwrap();
    let read = w.group(0).decrypt(&bob_device, &sent.message).unwrap();
    assert_eq!((read.sender_user, read.sender_device, read.plaintext), (bob_user, bob_device, b"bob 0".to_vec()));
    // Bob's later messages all decrypt, as his.
    for i in 1..4 {
        let text = format!("bob {i}");
        let m = w.group(1).encrypt(&mut ChaCha20Rng::seed_from_u64(i), text.as_bytes(), 1).unwrap().message;
        let read = w.group(0).decrypt(&bob_device, &m).unwrap();
        assert_eq!((read.sender_user, read.plaintext), (bob_user, text.into_bytes()));
        // The same bytes presented as Mallory's are not hers.
        assert!(w.group(0).decrypt(&mallory_device, &m).is_err());
    }
}

/// A distribution must be from a member, for an epoch at which it was one; a forged epoch-0 chain
/// is malformed. Nothing changes on refusal.
#[test]
fn a_distribution_from_a_non_member_is_refused() {
    let mut w = World::new(12, 4, 1);
    w.create(&[0, 1, 2]);
    let stranger = (w.user_key(3), w.devices[3].key);
    let epoch = w.group(0).epoch();
    let before = w.group(0).to_bytes();
    let forged = forged_distribution(w.group(0), vec![1; 16], epoch, 7);
    assert_eq!(w.group(0).process_distribution(stranger.0, stranger.1, &forged), Err(Error::NotGroupMember));
    let zero = forged_distribution(w.group(0), vec![2; 16], 0, 8);
    let member = (w.user_key(2), w.devices[2].key);
    assert_eq!(
        w.group(0).process_distribution(member.0, member.1, &zero),
        Err(Error::Malformed { what: "sender key distribution epoch" })
    );
    assert_eq!(*w.group(0).to_bytes(), *before);
    // Added at a later epoch, user 3 cannot bring in a chain for an epoch before it joined.
    w.change(0, RosterAction::Add(vec![stranger.0])).unwrap();
    let old = forged_distribution(w.group(0), vec![3; 16], epoch, 9);
    let before = w.group(0).to_bytes();
    assert_eq!(w.group(0).process_distribution(stranger.0, stranger.1, &old), Err(Error::NotGroupMember));
    assert_eq!(*w.group(0).to_bytes(), *before);
    // A removed member's distribution is refused too.
    let removed = w.user_key(2);
    w.change(0, RosterAction::Remove(removed)).unwrap();
    let now = w.group(0).epoch();
    let late = forged_distribution(w.group(0), vec![4; 16], now, 10);
    let removed_device = w.devices[2].key;
    assert_eq!(w.group(0).process_distribution(removed, removed_device, &late), Err(Error::NotGroupMember));
}

/// A chain distributed for an epoch this device has not reached yet (the roster change is still on
/// its way) is held, but decrypts only once the roster reaches that epoch.
#[test]
fn a_chain_from_a_later_epoch_waits_for_the_roster() {
    let mut w = World::new(13, 3, 1);
    w.create(&[0, 1, 2]);
    let rename = {
        let user = w.users[0].clone();
        w.group(0).change(&user, RosterAction::Rename("next".into()), 3).unwrap().control
    };
    // Bob has the rename, Carol not yet; Bob sends on the new epoch.
    w.group(1).apply_control(&rename).unwrap();
    let sent = w.group(1).encrypt(&mut ChaCha20Rng::seed_from_u64(2), b"new epoch", 1).unwrap();
    let bob = (w.user_key(1), w.devices[1].key);
    w.group(2).process_distribution(bob.0, bob.1, &sent.distribution.unwrap()).unwrap();
    assert_eq!(w.group(2).decrypt(&bob.1, &sent.message), Err(Error::UnknownSenderChain));
    w.group(2).apply_control(&rename).unwrap();
    assert_eq!(w.group(2).decrypt(&bob.1, &sent.message).unwrap().plaintext, b"new epoch");
}
