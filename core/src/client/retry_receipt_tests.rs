//! Retry receipts (docs/PROTOCOL.md §16.13) against the in-memory relay: a message its device
//! cannot decrypt comes again in a new session and is shown once; a relay restored from a backup
//! that hands out used one-time prekeys costs a retry, not the message; a receipt from anyone but
//! the device the copy went to changes nothing; a relay replaying old ciphertexts gets a bounded
//! number of receipts and re-sends, never a duplicate.

use sha2::{Digest, Sha256};

use super::test_relay::TestRelay;
use super::tests::{T0, direct, history_texts, new_client, newcomer, pair, texts};
use super::*;
use crate::content::DecryptionErrorReason;
use crate::limits::MAX_RETRY_RECEIPTS_PER_DEVICE;
use crate::sealed_sender::{self, InnerKind};
use crate::store::{ConversationId, MessageStatus};

fn undecryptable(events: &[Event]) -> usize {
    events.iter().filter(|e| matches!(e, Event::Undecryptable { .. })).count()
}

/// `c`'s sessions with every device of `of` are gone (a store put back from before they existed).
fn forget_sessions(c: &mut Client, of: &Client) {
    let tx = c.store.transaction().unwrap();
    let mut peer = tx.peer(&of.user_key().unwrap()).unwrap().unwrap();
    peer.sessions.clear();
    tx.put_peer(&peer).unwrap();
    tx.commit().unwrap();
}

/// The id of `c`'s session with `of`'s device.
fn session_with(c: &mut Client, of: &Client) -> Option<[u8; 32]> {
    let tx = c.store.transaction().unwrap();
    let peer = tx.peer(&of.user_key().unwrap()).unwrap().unwrap();
    tx.commit().unwrap();
    peer.session_id(&of.device_key())
}

/// Envelopes the relay took for `to` whose inner kind is `kind`, opened with `to`'s identity.
fn sealed_of_kind(relay: &TestRelay, to: &Client, kind: InnerKind) -> Vec<sealed_sender::Unsealed> {
    relay
        .taken_for(to)
        .iter()
        .filter_map(|e| sealed_sender::open(to.device_identity(), &e.payload).ok())
        .filter(|u| u.kind == kind)
        .collect()
}

#[test]
fn a_message_its_device_cannot_decrypt_comes_again_in_a_new_session_and_is_shown_once() {
    let (mut relay, mut alice, mut bob) = pair();
    let (to_bob, to_alice) = (direct(&bob), direct(&alice));
    alice.send_text(&to_bob, "before", T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], T0);
    let before = session_with(&mut alice, &bob);
    forget_sessions(&mut bob, &alice);

    let id = alice.send_text(&to_bob, "after", T0 + 1).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 1);
    assert_eq!(undecryptable(&events[1]), 1);
    assert_eq!(texts(&events[1]), ["after"], "sent again and shown, once");
    assert_eq!(history_texts(&mut bob, &to_alice), ["before", "after"]);
    let receipts = sealed_of_kind(&relay, &alice, InnerKind::Plaintext);
    assert_eq!(receipts.len(), 1);
    match Content::from_bytes(&receipts[0].inner).unwrap().body {
        ContentBody::DecryptionError { reason, .. } => assert_eq!(reason, DecryptionErrorReason::NoSession),
        other => panic!("{other:?}"),
    }
    assert_ne!(session_with(&mut alice, &bob), before, "a new session");
    assert_eq!(alice.message(&to_bob, &id).unwrap().unwrap().status, MessageStatus::Delivered);
    // And the new session carries on both ways.
    bob.send_text(&to_alice, "reply", T0 + 2).unwrap();
    assert_eq!(texts(&relay.pump(&mut [&mut alice, &mut bob], T0 + 2)[0]), ["reply"]);
}

#[test]
fn used_one_time_prekeys_handed_out_again_cost_a_retry_not_the_message() {
    // The relay, restored from a backup, hands Dave the one-time prekeys Carol's session used.
    let mut relay = TestRelay::default();
    let mut bob = new_client("Bob");
    relay.connect(&mut bob, T0);
    relay.pump(&mut [&mut bob], T0);
    for (name, restore) in [("Carol", false), ("Dave", true)] {
        if restore {
            relay.restore_handed_out_prekeys(&bob);
        }
        let mut peer = new_client(name);
        relay.connect(&mut peer, T0);
        peer.add_contact(&bob.contact_link().unwrap(), T0).unwrap();
        peer.send_text(&ConversationId::Direct(bob.user_key().unwrap()), name, T0).unwrap();
        let events = relay.pump(&mut [&mut bob, &mut peer], T0);
        assert_eq!(texts(&events[0]), [name], "{name}'s first message, once");
        assert_eq!(undecryptable(&events[0]), usize::from(restore));
    }
    let receipts = sealed_of_kind(&relay, &bob, InnerKind::Plaintext);
    assert!(receipts.is_empty(), "Bob got no receipt; he sent one");
}

/// Queues, on `from`, a retry receipt naming `message_hash` to `to`'s device.
fn queue_receipt(from: &mut Client, to: &Client, message_hash: [u8; 32], now: u64) {
    let body = ContentBody::DecryptionError { message_hash, reason: DecryptionErrorReason::Undecryptable };
    let receipt = Content::new(&mut from.rng, now, body);
    let tx = from.store.transaction().unwrap();
    let target = outbox::Target {
        user: to.user_key().unwrap(),
        device: to.device_key(),
        group: false,
        unsessioned: true,
        resends: 0,
    };
    let (conversation, id) = (direct(to), receipt.client_message_id);
    outbox::push_to_device(&tx, &conversation, &id, target, receipt.to_bytes().unwrap()).unwrap();
    tx.commit().unwrap();
}

#[test]
fn a_retry_receipt_from_anyone_but_the_device_the_copy_went_to_changes_nothing() {
    let (mut relay, mut alice, mut bob) = pair();
    let mut carol = newcomer(&mut relay, &mut alice, "Carol");
    carol.add_contact(&alice.contact_link().unwrap(), T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0);
    alice.send_text(&direct(&bob), "for Bob", T0 + 1).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 1);
    let copy = sealed_of_kind(&relay, &bob, InnerKind::Session).pop().unwrap();
    let hash: [u8; 32] = Sha256::digest(&copy.inner).into();
    let session = session_with(&mut alice, &bob);
    let sent_to_bob = relay.taken_for(&bob).len();

    // Carol names Alice's copy to Bob (she could learn its hash from Bob), and an unknown hash.
    queue_receipt(&mut carol, &alice, hash, T0 + 2);
    queue_receipt(&mut carol, &alice, [7; 32], T0 + 2);
    carol.tick(T0 + 2).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 2);
    assert_eq!(sealed_of_kind(&relay, &alice, InnerKind::Plaintext).len(), 2, "both reached Alice");
    assert!(events[0].is_empty(), "{:?}", events[0]);
    assert_eq!(session_with(&mut alice, &bob), session, "the session with Bob stands");
    assert_eq!(relay.taken_for(&bob).len(), sent_to_bob, "nothing sent again");

    // From Bob's device, the same receipt is heard, once.
    queue_receipt(&mut bob, &alice, hash, T0 + 3);
    queue_receipt(&mut bob, &alice, hash, T0 + 3);
    bob.tick(T0 + 3).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 3);
    assert_ne!(session_with(&mut alice, &bob), session, "archived: a new session");
    assert!(texts(&events[1]).is_empty(), "sent again, shown once: already there");
    assert_eq!(history_texts(&mut bob, &direct(&alice)), ["for Bob"]);
    assert_eq!(relay.taken_for(&bob).len(), sent_to_bob + 1, "one copy sent again for two receipts");
}

#[test]
fn a_relay_replaying_old_ciphertexts_gets_bounded_receipts_and_resends_and_no_duplicate() {
    let (mut relay, mut alice, mut bob) = pair();
    let (to_bob, to_alice) = (direct(&bob), direct(&alice));
    // A chat long enough for Bob's ratchet to drop Alice's first chains.
    let mut now = T0;
    let mut sent = Vec::new();
    for round in 0..12 {
        now += 1_000;
        sent.push(format!("a{round}"));
        alice.send_text(&to_bob, &sent[round], now).unwrap();
        relay.pump(&mut [&mut alice, &mut bob], now);
        bob.send_text(&to_alice, &format!("b{round}"), now).unwrap();
        relay.pump(&mut [&mut alice, &mut bob], now);
    }
    let old = relay.taken_for(&bob);
    let (to_bob_before, to_alice_before) = (old.len(), relay.taken_for(&alice).len());
    let mut shown = 0;
    for _ in 0..5 {
        now += 1_000;
        relay.release(&bob, old.clone());
        let events = relay.pump(&mut [&mut alice, &mut bob], now);
        shown += texts(&events[1]).len();
    }
    // Quiet afterwards: nothing loops.
    now += 60_000;
    alice.tick(now).unwrap();
    bob.tick(now).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], now);
    let receipts = sealed_of_kind(&relay, &alice, InnerKind::Plaintext).len();
    let resent = relay.taken_for(&bob).len() - to_bob_before;
    assert!(receipts > 0, "old ciphertexts beyond the ratchet's window were reported");
    assert!(receipts <= MAX_RETRY_RECEIPTS_PER_DEVICE as usize, "{receipts} receipts");
    assert!(resent <= old.len(), "{resent} copies sent again for {} messages", old.len());
    assert_eq!(shown, 0, "a replay or a copy sent again was shown");
    let mut history = history_texts(&mut bob, &to_alice);
    history.retain(|t| t.starts_with('a'));
    assert_eq!(history, sent);
    let traffic = (relay.taken_for(&bob).len(), relay.taken_for(&alice).len());
    now += 60_000;
    alice.tick(now).unwrap();
    bob.tick(now).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], now);
    assert_eq!((relay.taken_for(&bob).len(), relay.taken_for(&alice).len()), traffic);
    assert!(traffic.1 > to_alice_before);
}

#[test]
fn a_group_message_whose_chain_was_lost_comes_with_the_chain_after_the_members_retry_receipt() {
    let (mut relay, mut alice, mut bob) = pair();
    let group = alice.create_group("lost chain", &[bob.user_key().unwrap()], T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], T0);
    let conversation = ConversationId::Group(group);
    // Alice's first group message; the relay loses her sender chain's distribution to Bob.
    relay.disconnect(&mut bob);
    alice.send_text(&conversation, "to the group", T0 + 1).unwrap();
    relay.pump(&mut [&mut alice], T0 + 1);
    let queued = relay.mailbox(&bob);
    assert_eq!(queued.len(), 2, "the distribution, then the message");
    relay.withhold(&bob, &[queued[0].id]);
    relay.connect(&mut bob, T0 + 2);
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 2);
    assert!(texts(&events[1]).is_empty(), "parked for its chain");
    assert!(sealed_of_kind(&relay, &alice, InnerKind::Plaintext).is_empty(), "not asked for yet");
    // Thirty seconds on (a reconnect delivers it again), Bob asks Alice's device for the chain.
    relay.disconnect(&mut bob);
    relay.connect(&mut bob, T0 + 40_000);
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 40_000);
    assert_eq!(texts(&events[1]), ["to the group"], "shown once");
    assert_eq!(history_texts(&mut bob, &conversation), ["to the group"]);
    assert_eq!(sealed_of_kind(&relay, &alice, InnerKind::Plaintext).len(), 1);
    // Asked again (a replayed receipt, or another reconnect), Alice answers no more.
    let sent = relay.taken_for(&bob).len();
    relay.disconnect(&mut bob);
    relay.connect(&mut bob, T0 + 80_000);
    relay.pump(&mut [&mut alice, &mut bob], T0 + 80_000);
    assert_eq!(relay.taken_for(&bob).len(), sent);
}
