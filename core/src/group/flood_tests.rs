//! Log stuffing (docs/PROTOCOL.md §11.5): a stranger and a removed admin send a member thousands of
//! junk roster changes, small and large; a thousand fresh keys send one each. None that can never
//! apply is stored, the waiting ones stay under their caps (the non-members' under their own, which
//! never push out a member's), and the group keeps working.

use std::time::Instant;

use rand_core::RngCore;

use super::roster::{ChangeStatus, RosterChange};
use super::sender_chain::ChainId;
use super::*;
use crate::identity::UserIdentity;
use crate::limits::{
    MAX_GROUP_CHANGE_BYTES, MAX_NON_MEMBER_WAITING_BYTES, MAX_NON_MEMBER_WAITING_CHANGES, MAX_SENDER_CHAINS_PER_USER,
    MAX_SKIPPED_KEYS, MAX_WAITING_CHANGES, MAX_WAITING_CHANGES_PER_AUTHOR,
};
use crate::test_util::rng;

fn control_of(group: &Group, change: &RosterChange) -> Vec<u8> {
    group.control(std::iter::once(change)).unwrap()
}

fn waiting_of(group: &Group, author: &SigningPublicKey) -> usize {
    group.log.iter().zip(&group.statuses).filter(|(c, s)| c.author == *author && **s != ChangeStatus::Applied).count()
}

#[test]
fn a_flood_of_junk_changes_is_not_stored_and_the_group_keeps_working() {
    let mut rng = rng(0xF100D);
    // Alice (admin), Bob (the victim), Eve (an admin, then removed), Mallory (a stranger).
    let [alice, bob, eve, mallory] = [(); 4].map(|_| UserIdentity::generate(&mut rng));
    let (a, b, e, m) = (alice.user_key(), bob.user_key(), eve.user_key(), mallory.user_key());
    let (mut ga, welcome) = Group::create(&mut rng, &alice, "flood", &[b, e], 1).unwrap();
    let mut gb = Group::join(b, &welcome).unwrap();
    let promote = ga.change(&alice, RosterAction::Promote(e), 2).unwrap();
    gb.apply_control(&promote.control).unwrap();
    // Where Eve was still an admin: her changes made there are valid on their own branch.
    let before_removal = (gb.head.unwrap(), gb.epoch());
    for action in [RosterAction::Remove(e), RosterAction::Rename("after".into())] {
        let update = ga.change(&alice, action, 3).unwrap();
        gb.apply_control(&update.control).unwrap();
    }
    let head = (gb.head.unwrap(), gb.epoch());
    let applied = gb.log.len();
    let roster = gb.roster().clone();
    assert!(!roster.is_member(&e));
    let load_before = time_load(&gb);

    // 990 other users: an add of them is about 34 KB, and fits the member cap off Eve's branch.
    let many: Vec<SigningPublicKey> = (0..990).map(|_| UserIdentity::generate(&mut rng).user_key()).collect();
    let random_parent = |rng: &mut rand_chacha::ChaCha20Rng| {
        let mut p = [0u8; 32];
        rng.fill_bytes(&mut p);
        Some((p, 5))
    };
    let mut junk: Vec<RosterChange> = Vec::new();
    let mut t = 10;
    let mut sign = |who: &UserIdentity, parent, action| {
        t += 1;
        RosterChange::sign(who, gb.id, parent, t, action).unwrap()
    };
    for _ in 0..50 {
        junk.push(sign(&mallory, Some(head), RosterAction::Add(many.clone())));
        junk.push(sign(&eve, Some(before_removal), RosterAction::Add(many.clone())));
    }
    for i in 0..2_500 {
        junk.push(sign(&mallory, Some(head), RosterAction::Rename(format!("mallory {i}"))));
        junk.push(sign(&mallory, random_parent(&mut rng), RosterAction::Remove(a)));
    }
    for i in 0..2_000 {
        junk.push(sign(&eve, Some(head), RosterAction::Rename(format!("eve {i}"))));
    }
    for i in 0..1_000 {
        junk.push(sign(&eve, Some(before_removal), RosterAction::Rename(format!("eve was here {i}"))));
        junk.push(sign(&eve, random_parent(&mut rng), RosterAction::Remove(a)));
        // Bob, a member, floods pending changes: held, up to his cap.
        junk.push(sign(&bob, random_parent(&mut rng), RosterAction::Leave));
    }
    let large = junk.iter().filter(|c| c.signed.len() > MAX_GROUP_CHANGE_BYTES / 2).count();
    let controls: Vec<Vec<u8>> = junk.iter().map(|c| control_of(&gb, c)).collect();

    let started = Instant::now();
    for control in &controls {
        gb.apply_control(control).unwrap();
    }
    let took = started.elapsed();
    let stored = gb.to_bytes().len();
    let load_after = time_load(&gb);
    println!(
        "flood: {} junk changes ({large} of about 34 KB) in {took:?} ({:?} each); log {} changes, stored group \
         {stored} bytes; loading it took {load_before:?} before, {load_after:?} after",
        controls.len(),
        took / u32::try_from(controls.len()).unwrap(),
        gb.log.len(),
    );
    assert!(controls.len() >= 10_000);

    // Of what Mallory sent, only her newest pending changes (a non-member's change whose parent
    // has not arrived waits, §11.5), up to the per-author cap; of Eve's, her valid (stale) changes on
    // the branch where she was an admin and her pending ones, the newest up to the cap (alternating:
    // half of each); of Bob's pending ones, his cap's worth. The non-members' pending ones, Mallory's
    // and Eve's, fit their budget. The roster is Alice's.
    let stale = ChangeStatus::Rejected(ChangeRejection::StaleEpoch);
    let held = |who: &SigningPublicKey, status: ChangeStatus| {
        gb.log.iter().zip(&gb.statuses).filter(|(c, s)| c.author == *who && **s == status).count()
    };
    let cap = MAX_WAITING_CHANGES_PER_AUTHOR;
    assert_eq!((held(&m, ChangeStatus::Pending), waiting_of(&gb, &m)), (cap, cap));
    assert_eq!((held(&e, stale), held(&e, ChangeStatus::Pending)), (cap / 2, cap / 2));
    assert_eq!((held(&b, ChangeStatus::Pending), waiting_of(&gb, &b)), (cap, cap));
    assert!(cap + cap / 2 <= MAX_NON_MEMBER_WAITING_CHANGES);
    assert_eq!(gb.log.len(), applied + 3 * cap);
    // The newest were kept: the small renames, not the large adds.
    assert!(stored < 64 * 1024, "{stored} bytes");
    assert_eq!((gb.roster(), gb.head), (&roster, Some(head.0)));
    assert_eq!(gb.roster(), ga.roster());

    // The group works: both members send, the other reads, and the state survives a reload.
    let mut gb = Group::from_bytes(&gb.to_bytes()).unwrap();
    let mut talk = |from: &mut Group, to: &mut Group, sender: SigningPublicKey| {
        let sent = from.encrypt(&mut rng, b"still working", 1).unwrap();
        to.process_distribution(sender, sender, &sent.distribution.unwrap()).unwrap();
        assert_eq!(to.decrypt(&sender, &sent.message).unwrap().plaintext, b"still working");
    };
    talk(&mut ga, &mut gb, a);
    talk(&mut gb, &mut ga, b);
    let rename = ga.change(&alice, RosterAction::Rename("on we go".into()), 4).unwrap();
    assert_eq!(gb.apply_control(&rename.control).unwrap(), vec![GroupEvent::Renamed("on we go".into())]);
}

fn time_load(group: &Group) -> std::time::Duration {
    let bytes = group.to_bytes();
    let started = Instant::now();
    Group::from_bytes(&bytes).unwrap();
    started.elapsed()
}

/// Twenty members each send more pending changes than the group may hold in all, and one member
/// sends two: the group keeps `MAX_WAITING_CHANGES`, taken from those who hold the most, and the
/// member who sent few keeps his.
#[test]
fn the_group_cap_evicts_from_the_author_holding_the_most() {
    let mut rng = rng(0xCA9);
    let users: Vec<UserIdentity> = (0..22).map(|_| UserIdentity::generate(&mut rng)).collect();
    let keys: Vec<SigningPublicKey> = users.iter().map(UserIdentity::user_key).collect();
    let (_, welcome) = Group::create(&mut rng, &users[0], "cap", &keys[1..], 1).unwrap();
    let mut g = Group::join(keys[1], &welcome).unwrap();
    let (floods, quiet) = (&users[2..], &users[1]);
    let send = |g: &mut Group, who: &UserIdentity, rng: &mut rand_chacha::ChaCha20Rng| {
        let mut parent = [0u8; 32];
        rng.fill_bytes(&mut parent);
        let change = RosterChange::sign(who, g.id, Some((parent, 3)), 9, RosterAction::Leave).unwrap();
        g.apply_control(&control_of(g, &change)).unwrap();
    };
    send(&mut g, quiet, &mut rng);
    send(&mut g, quiet, &mut rng);
    for _ in 0..MAX_WAITING_CHANGES_PER_AUTHOR {
        for who in floods {
            send(&mut g, who, &mut rng);
        }
    }
    let held: Vec<usize> = floods.iter().map(|u| waiting_of(&g, &u.user_key())).collect();
    assert_eq!(held.iter().sum::<usize>() + waiting_of(&g, &keys[1]), MAX_WAITING_CHANGES);
    assert_eq!(waiting_of(&g, &keys[1]), 2);
    let (least, most) = (held.iter().min().unwrap(), held.iter().max().unwrap());
    assert!(most - least <= 1, "{held:?}");
    // What is held loads as it is.
    assert_eq!(*Group::from_bytes(&g.to_bytes()).unwrap().to_bytes(), *g.to_bytes());
}

/// A member's pending change, with a random parent (as if it were made on a change not arrived).
fn pending_change(
    g: &Group,
    who: &UserIdentity,
    action: RosterAction,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> RosterChange {
    let mut parent = [0u8; 32];
    rng.fill_bytes(&mut parent);
    RosterChange::sign(who, g.id, Some((parent, 3)), 9, action).unwrap()
}

/// A thousand fresh keys (each a stranger, or a member added by a change not arrived yet) each
/// send a pending change after a member sent his: the group holds the newest
/// `MAX_NON_MEMBER_WAITING_CHANGES` of theirs, within their byte budget, and the member's still.
#[test]
fn pending_changes_of_a_thousand_strangers_stay_in_their_budget_and_evict_no_members() {
    let mut rng = rng(0x5724);
    let [alice, bob] = [(); 2].map(|_| UserIdentity::generate(&mut rng));
    let (_, welcome) = Group::create(&mut rng, &alice, "strangers", &[bob.user_key()], 1).unwrap();
    let mut g = Group::join(bob.user_key(), &welcome).unwrap();
    let roster = g.roster().clone();
    let own = pending_change(&g, &bob, RosterAction::Leave, &mut rng);
    g.apply_control(&control_of(&g, &own)).unwrap();
    let strangers: Vec<RosterChange> = (0..1_000)
        .map(|i| {
            let who = UserIdentity::generate(&mut rng);
            pending_change(&g, &who, RosterAction::Rename(format!("stranger {i}")), &mut rng)
        })
        .collect();
    for change in &strangers {
        g.apply_control(&control_of(&g, change)).unwrap();
    }
    let held: Vec<[u8; 32]> = g.log.iter().filter(|c| !roster.is_member(&c.author)).map(|c| c.hash).collect();
    let newest: Vec<[u8; 32]> =
        strangers[strangers.len() - MAX_NON_MEMBER_WAITING_CHANGES..].iter().map(|c| c.hash).collect();
    assert_eq!(held, newest);
    let bytes: usize = g.log.iter().filter(|c| !roster.is_member(&c.author)).map(|c| c.signed.len()).sum();
    assert!(bytes <= MAX_NON_MEMBER_WAITING_BYTES, "{bytes}");
    assert!(g.log.iter().any(|c| c.hash == own.hash));
    assert_eq!(g.roster(), &roster);
    assert!(g.statuses.iter().filter(|s| **s == ChangeStatus::Pending).count() == MAX_NON_MEMBER_WAITING_CHANGES + 1);
    assert_eq!(*Group::from_bytes(&g.to_bytes()).unwrap().to_bytes(), *g.to_bytes());
}

/// Over the count limit, the change that goes is the oldest of the author holding the most
/// changes, even when another holds more bytes: sixteen members fill the group's count with small
/// changes, one more holds a single large one, and his stays.
#[test]
fn over_the_count_limit_the_author_holding_the_most_changes_loses_one() {
    let mut rng = rng(0xC0);
    let n = MAX_WAITING_CHANGES / MAX_WAITING_CHANGES_PER_AUTHOR;
    let users: Vec<UserIdentity> = (0..n + 2).map(|_| UserIdentity::generate(&mut rng)).collect();
    let keys: Vec<SigningPublicKey> = users.iter().map(UserIdentity::user_key).collect();
    let (_, welcome) = Group::create(&mut rng, &users[0], "count", &keys[1..], 1).unwrap();
    let mut g = Group::join(keys[1], &welcome).unwrap();
    // About 34 KB: more bytes than any small author holds, one change.
    let many: Vec<SigningPublicKey> = (0..990).map(|_| UserIdentity::generate(&mut rng).user_key()).collect();
    let large = pending_change(&g, &users[1], RosterAction::Add(many), &mut rng);
    g.apply_control(&control_of(&g, &large)).unwrap();
    for _ in 0..MAX_WAITING_CHANGES_PER_AUTHOR {
        for who in &users[2..] {
            let change = pending_change(&g, who, RosterAction::Leave, &mut rng);
            g.apply_control(&control_of(&g, &change)).unwrap();
        }
    }
    assert!(g.log.iter().any(|c| c.hash == large.hash));
    let held: usize = users[2..].iter().map(|u| waiting_of(&g, &u.user_key())).sum();
    assert_eq!(held + 1, MAX_WAITING_CHANGES);
}

/// A removed admin's stale change dropped (her per-author cap) leaves its child, valid on her
/// branch, pending: it moves to the non-members' budget, which strangers fill. Pruning goes on
/// until nothing more is dropped, so what is stored loads as it is.
#[test]
fn a_stale_change_dropped_whose_child_then_overflows_the_non_members_budget_still_loads() {
    let mut rng = rng(0x57A1E);
    let [alice, bob, eve] = [(); 3].map(|_| UserIdentity::generate(&mut rng));
    let e = eve.user_key();
    let (mut ga, welcome) = Group::create(&mut rng, &alice, "prune", &[bob.user_key(), e], 1).unwrap();
    let mut gb = Group::join(bob.user_key(), &welcome).unwrap();
    let promote = ga.change(&alice, RosterAction::Promote(e), 2).unwrap();
    gb.apply_control(&promote.control).unwrap();
    let before_removal = (gb.head.unwrap(), gb.epoch());
    // Alice's chain stays the taller: a removal and two renames against Eve's two.
    for action in [RosterAction::Remove(e), RosterAction::Rename("a".into()), RosterAction::Rename("b".into())] {
        let update = ga.change(&alice, action, 3).unwrap();
        gb.apply_control(&update.control).unwrap();
    }
    for i in 0..MAX_NON_MEMBER_WAITING_CHANGES {
        let who = UserIdentity::generate(&mut rng);
        let change = pending_change(&gb, &who, RosterAction::Rename(format!("stranger {i}")), &mut rng);
        gb.apply_control(&control_of(&gb, &change)).unwrap();
    }
    // Eve's branch: a rename, its child, then more renames beside the first, until hers overflow.
    let sign = |parent, t, name: &str| {
        RosterChange::sign(&eve, gb.id, Some(parent), t, RosterAction::Rename(name.into())).unwrap()
    };
    let first = sign(before_removal, 10, "eve 0");
    let child = sign((first.hash, before_removal.1 + 1), 11, "eve child");
    let mut eves = vec![first, child.clone()];
    for i in 1..MAX_WAITING_CHANGES_PER_AUTHOR {
        eves.push(sign(before_removal, 11 + i as u64, &format!("eve {i}")));
    }
    for change in &eves {
        gb.apply_control(&control_of(&gb, change)).unwrap();
    }
    let status = |g: &Group, hash| g.log.iter().zip(&g.statuses).find(|(c, _)| c.hash == hash).map(|(_, s)| *s);
    assert_eq!(status(&gb, eves[0].hash), None);
    assert_eq!(status(&gb, child.hash), Some(ChangeStatus::Pending));
    let non_members = gb
        .log
        .iter()
        .zip(&gb.statuses)
        .filter(|(c, s)| **s == ChangeStatus::Pending && !gb.roster().is_member(&c.author))
        .count();
    assert_eq!(non_members, MAX_NON_MEMBER_WAITING_CHANGES);
    assert_eq!(*Group::from_bytes(&gb.to_bytes()).unwrap().to_bytes(), *gb.to_bytes());
    assert_eq!(gb.roster(), ga.roster());
}

/// Chains of `user` held by `group`, in the order held.
fn chains_of(group: &Group, user: &SigningPublicKey) -> Vec<ChainId> {
    group.inbound.iter().filter(|c| c.sender_user == *user).map(|c| c.chain_id).collect()
}

/// A fresh device's chain at `group`'s epoch: the device, its distribution, and a message sent on
/// it after `MAX_SKIPPED_KEYS` others (so a receiver keeps that many skipped keys for the chain).
fn device_chain(rng: &mut rand_chacha::ChaCha20Rng, group: &Group) -> (SigningPublicKey, ChainId, Vec<u8>, Vec<u8>) {
    let device = UserIdentity::generate(rng).user_key();
    let mut chain = OutboundSenderChain::new(rng, group.epoch(), 1);
    let distribution = chain.distribution(&group.id);
    for _ in 0..MAX_SKIPPED_KEYS {
        chain.chain = chain.chain.next().unwrap().unwrap();
    }
    let message = chain.encrypt(&group.id, b"far ahead").unwrap();
    (device, chain.chain_id, distribution, message)
}

/// Mallory, a member, lists many devices (up to `MAX_DEVICES`) and distributes a chain from 50 of
/// them, each pushed to `MAX_SKIPPED_KEYS` skipped keys: Bob keeps only her newest
/// `MAX_SENDER_CHAINS_PER_USER`, Alice's chain and the message held back on it are untouched, and
/// the stored group stays small.
#[test]
fn a_member_with_many_devices_keeps_only_her_user_cap_of_chains() {
    let mut rng = rng(0xDE71CE);
    let [alice, bob, mallory] = [(); 3].map(|_| UserIdentity::generate(&mut rng));
    let (a, b, m) = (alice.user_key(), bob.user_key(), mallory.user_key());
    let (mut ga, welcome) = Group::create(&mut rng, &alice, "devices", &[b, m], 1).unwrap();
    let mut gb = Group::join(b, &welcome).unwrap();
    let first = ga.encrypt(&mut rng, b"before", 1).unwrap();
    gb.process_distribution(a, a, &first.distribution.unwrap()).unwrap();
    let held = ga.encrypt(&mut rng, b"held back", 1).unwrap().message;
    let alice_chains = chains_of(&gb, &a);
    assert_eq!(alice_chains.len(), 1);

    let mut sent = Vec::new();
    for _ in 0..50 {
        let (device, chain_id, distribution, message) = device_chain(&mut rng, &gb);
        gb.process_distribution(m, device, &distribution).unwrap();
        assert_eq!(gb.decrypt(&device, &message).unwrap().plaintext, b"far ahead");
        assert!(chains_of(&gb, &m).len() <= MAX_SENDER_CHAINS_PER_USER);
        sent.push(chain_id);
    }
    // Her newest chains, in order; her oldest went, none of Alice's.
    assert_eq!(chains_of(&gb, &m), sent[sent.len() - MAX_SENDER_CHAINS_PER_USER..]);
    assert_eq!(chains_of(&gb, &a), alice_chains);
    let skipped: usize = gb.inbound.iter().map(|c| c.skipped.len()).sum();
    assert_eq!(skipped, MAX_SENDER_CHAINS_PER_USER * MAX_SKIPPED_KEYS);

    // Each skipped key is stored in under 48 bytes (a 32-byte key, its index, framing): her chains
    // cost at most the cap's worth, not 50 (or 200) chains'.
    let stored = gb.to_bytes().len();
    let bound = MAX_SENDER_CHAINS_PER_USER * (MAX_SKIPPED_KEYS * 48 + 512) + 16 * 1024;
    assert!(stored <= bound, "{stored} > {bound}");
    let mut gb = Group::from_bytes(&gb.to_bytes()).unwrap();
    assert_eq!(chains_of(&gb, &m), sent[sent.len() - MAX_SENDER_CHAINS_PER_USER..]);
    let read = gb.decrypt(&a, &held).unwrap();
    assert_eq!((read.sender_user, read.plaintext), (a, b"held back".to_vec()));
}

/// A group stored before the per-user cap may hold more of one user's chains: loading it keeps her
/// newest `MAX_SENDER_CHAINS_PER_USER`, as `process_distribution` would have, and no other's goes.
#[test]
fn loading_a_group_over_the_user_cap_drops_that_users_oldest_chains() {
    let mut rng = rng(0x10AD);
    let [alice, bob, mallory] = [(); 3].map(|_| UserIdentity::generate(&mut rng));
    let (a, b, m) = (alice.user_key(), bob.user_key(), mallory.user_key());
    let (mut ga, welcome) = Group::create(&mut rng, &alice, "devices", &[b, m], 1).unwrap();
    let mut gb = Group::join(b, &welcome).unwrap();
    let send = ga.encrypt(&mut rng, b"hi", 1).unwrap();
    let mut sent = Vec::new();
    for i in 0..MAX_SENDER_CHAINS_PER_USER + 3 {
        if i == 2 {
            gb.process_distribution(a, a, send.distribution.as_ref().unwrap()).unwrap();
        }
        let device = UserIdentity::generate(&mut rng).user_key();
        let chain = OutboundSenderChain::new(&mut rng, gb.epoch(), 1);
        let distribution = chain.distribution(&gb.id);
        // As the code before the cap held them: bypass it.
        gb.inbound.push(InboundSenderChain::from_distribution(&gb.id, m, device, &distribution).unwrap());
        sent.push(chain.chain_id);
    }
    assert_eq!(chains_of(&gb, &m).len(), MAX_SENDER_CHAINS_PER_USER + 3);
    let mut back = Group::from_bytes(&gb.to_bytes()).unwrap();
    assert_eq!(chains_of(&back, &m), sent[3..]);
    assert_eq!(chains_of(&back, &a).len(), 1);
    assert_eq!(back.decrypt(&a, &send.message).unwrap().plaintext, b"hi");
    // Stored again, it loads as it is.
    assert_eq!(*Group::from_bytes(&back.to_bytes()).unwrap().to_bytes(), *back.to_bytes());
}
