//! The client state machine against an in-memory relay ([`TestRelay`]).

use prost::Message as _;
use zeroize::Zeroizing;

use super::test_relay::TestRelay;
use super::*;
use crate::content::ReceiptKind;
use crate::error::ErrorKind;
use crate::safety_number::SafetyNumber;
use crate::sealed_sender::{self, InnerKind};
use crate::store::{ContactState, ConversationId, MessageStatus, OutboxItem, Unlock};
use crate::wire::relay::client_frame::Body as Req;

pub(crate) const T0: u64 = 1_700_000_000_000;

pub(crate) fn new_client(name: &str) -> Client {
    let store = Store::open_in_memory(Unlock::Key(Zeroizing::new([7; 32]))).unwrap();
    Client::create(store, ClientConfig::new("ws://relay.test/v1/ws", name), T0).unwrap()
}

pub(crate) fn direct(c: &Client) -> ConversationId {
    ConversationId::Direct(c.user_key().unwrap())
}

pub(crate) fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) | Event::MessageRequest(m) => match m.content().unwrap()?.body {
                ContentBody::Text(t) => Some(t),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

pub(crate) fn history_texts(c: &mut Client, conv: &ConversationId) -> Vec<String> {
    let (page, _) = c.history(conv, None, 500).unwrap();
    page.iter()
        .rev()
        .filter_map(|m| match m.content().unwrap()?.body {
            ContentBody::Text(t) => Some(t),
            _ => None,
        })
        .collect()
}

/// Alice and Bob, connected, each with the other as an accepted contact and a session both ways.
pub(crate) fn pair() -> (TestRelay, Client, Client) {
    let mut relay = TestRelay::default();
    let mut alice = new_client("Alice");
    let mut bob = new_client("Bob");
    relay.connect(&mut alice, T0);
    relay.connect(&mut bob, T0);
    relay.pump(&mut [&mut alice, &mut bob], T0);
    alice.add_contact(&bob.contact_link().unwrap(), T0).unwrap();
    bob.add_contact(&alice.contact_link().unwrap(), T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], T0);
    (relay, alice, bob)
}

#[test]
fn a_first_message_from_a_stranger_is_a_request_until_accepted() {
    let mut relay = TestRelay::default();
    let mut alice = new_client("Alice");
    let mut bob = new_client("Bob");
    relay.connect(&mut alice, T0);
    relay.connect(&mut bob, T0);
    relay.pump(&mut [&mut alice, &mut bob], T0);

    alice.add_contact(&bob.contact_link().unwrap(), T0).unwrap();
    let id = alice.send_text(&direct(&bob), "hi Bob, it's Alice", T0).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 1);
    assert!(
        matches!(&events[1][..], [Event::MessageRequest(m)] if m.id == id && m.sender == alice.user_key().unwrap())
    );
    // A request gets no delivery receipt; the relay took the message, so it is Sent.
    assert_eq!(alice.message(&direct(&bob), &id).unwrap().unwrap().status, MessageStatus::Sent);
    assert!(events[0].contains(&Event::MessageStatus { conversation: direct(&bob), id, status: MessageStatus::Sent }));
    assert_eq!(bob.contacts().unwrap()[0].state, ContactState::Requested);
    // Sent sealed: the relay saw no sender.
    assert!(relay.sealed_sends > 0);
    assert_eq!(relay.mailbox_len(&bob), 0, "processed messages are acked");

    // Typing from a requester is not shown.
    bob.accept_contact(&alice.user_key().unwrap()).unwrap();
    let reply = bob.send_text(&direct(&alice), "hello Alice", T0 + 2).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 2);
    assert_eq!(texts(&events[0]), ["hello Alice"]);
    // Alice accepted Bob (she added him), so she sent a delivery receipt.
    assert!(
        events[1]
            .iter()
            .any(|e| matches!(e, Event::Receipt { kind: ReceiptKind::Delivered, targets, .. } if targets == &[reply]))
    );
    assert_eq!(bob.message(&direct(&alice), &reply).unwrap().unwrap().status, MessageStatus::Delivered);
    // Bob never saw Alice's contact link, but her first envelope carried her delivery token
    // (§9.5): his reply and his receipts went sealed, and nothing ever named a sender.
    assert_eq!(relay.plain_sends, 0, "a send named its sender to the relay");
}

/// The delivery token a client keeps for `user` (learned from its sealed envelopes).
fn kept_token(c: &mut Client, user: &SigningPublicKey) -> Option<crate::DeliveryToken> {
    let tx = c.store.transaction().unwrap();
    let peer = tx.peer(user).unwrap();
    tx.commit().unwrap();
    peer.and_then(|p| p.delivery_token().cloned())
}

#[test]
fn a_delivery_token_is_kept_only_from_an_envelope_that_decrypts() {
    let (mut relay, mut alice, mut bob) = pair();
    let a = alice.user_key().unwrap();
    alice.send_text(&direct(&bob), "one", T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], T0);
    let theirs = alice.token.clone().unwrap();
    assert_eq!(kept_token(&mut bob, &a), Some(theirs.clone()));

    // Alice's device seals an inner message Bob already read with another token: the inner message
    // is a duplicate, so the envelope changes nothing, the token included.
    relay.disconnect(&mut bob);
    alice.send_text(&direct(&bob), "two", T0 + 1).unwrap();
    relay.pump(&mut [&mut alice], T0 + 1);
    let copy = relay.mailbox(&bob).pop().unwrap();
    relay.connect(&mut bob, T0 + 2);
    assert_eq!(texts(&relay.pump(&mut [&mut alice, &mut bob], T0 + 2)[1]), ["two"]);
    let inner = sealed_sender::open(&bob.identity, &copy.payload).unwrap().inner;
    let other = crate::DeliveryToken::generate(&mut alice.rng);
    let state = sealed_sender::SenderState::new(alice.own_list_version, Some(other));
    let bob_keys = bob.identity.keys();
    let resealed =
        sealed_sender::seal(&mut alice.rng, &a, &state, &alice.identity, &bob_keys, InnerKind::Session, &inner)
            .unwrap();
    let replay = relay::Envelope { id: relay.next_id(), payload: resealed, ..copy };
    relay.release(&bob, vec![replay]);
    assert!(relay.pump(&mut [&mut alice, &mut bob], T0 + 3)[1].is_empty());
    assert_eq!(kept_token(&mut bob, &a), Some(theirs), "a token from an envelope that did not decrypt was kept");
}

#[test]
fn conversation_with_edits_reactions_receipts_typing_and_timer() {
    let (mut relay, mut alice, mut bob) = pair();
    let a2b = direct(&bob);
    let b2a = direct(&alice);
    let id = alice.send_text(&a2b, "lunch at noon?", T0 + 10).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], T0 + 10);
    assert_eq!(history_texts(&mut bob, &b2a), ["lunch at noon?"]);

    alice.edit(&a2b, &id, "lunch at one?", T0 + 11).unwrap();
    bob.react(&b2a, &id, "👍", false, T0 + 12).unwrap();
    bob.set_typing(&b2a, true, T0 + 12).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 12);
    assert!(events[1].contains(&Event::Edited { conversation: b2a, id }));
    assert!(events[0].iter().any(
        |e| matches!(e, Event::Reaction { emoji, from, .. } if emoji == "👍" && *from == bob.user_key().unwrap())
    ));
    assert!(events[0].contains(&Event::Typing { conversation: a2b, from: bob.user_key().unwrap(), started: true }));
    assert_eq!(history_texts(&mut bob, &b2a), ["lunch at one?"]);
    assert_eq!(alice.message(&a2b, &id).unwrap().unwrap().reactions, vec![(bob.user_key().unwrap(), "👍".to_owned())]);

    bob.mark_read(&b2a, T0 + 13).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 13);
    assert!(events[0].iter().any(|e| matches!(e, Event::Receipt { kind: ReceiptKind::Read, .. })));
    assert_eq!(alice.message(&a2b, &id).unwrap().unwrap().status, MessageStatus::Read);
    assert_eq!(bob.conversations().unwrap()[0].unread, 0);

    // Only the sender may edit or delete.
    assert!(bob.edit(&b2a, &id, "mine now", T0 + 14).is_err());
    alice.delete(&a2b, &id, T0 + 14).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 14);
    assert!(events[1].contains(&Event::Deleted { conversation: b2a, id }));
    assert!(bob.message(&b2a, &id).unwrap().unwrap().deleted);

    // Disappearing messages.
    alice.set_disappearing(&a2b, 60, T0 + 20).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 20);
    assert!(events[1].iter().any(|e| matches!(e, Event::DisappearingTimer { seconds: 60, .. })));
    bob.send_text(&b2a, "this one goes away", T0 + 21).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], T0 + 21);
    assert_eq!(history_texts(&mut alice, &a2b), ["this one goes away"]);
    assert_eq!(alice.tick(T0 + 21 + 61_000).unwrap(), vec![Event::Expired { count: 1 }]);
    assert!(history_texts(&mut alice, &a2b).is_empty());

    // Search goes through the blind index.
    bob.send_text(&b2a, "the quick brown fox", T0 + 30).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], T0 + 30);
    assert_eq!(alice.search("brown fox", 10).unwrap().len(), 1);
}

#[test]
fn a_relay_id_seen_before_is_acked_again_and_reported_once() {
    let (mut relay, mut alice, mut bob) = pair();
    alice.send_text(&direct(&bob), "once", T0).unwrap();
    // Alice's frames reach the relay, Bob's mailbox fills; Bob is not pumped yet.
    relay.pump(&mut [&mut alice], T0);
    let queued = relay.mailbox(&bob);
    assert_eq!(queued.len(), 1);
    let first = bob.handle_envelopes(queued.clone(), T0).unwrap();
    assert_eq!(texts(&first), ["once"]);
    let again = bob.handle_envelopes(queued, T0).unwrap();
    assert!(again.is_empty(), "{again:?}");
    let acks: Vec<_> = bob
        .take_outgoing()
        .into_iter()
        .filter_map(|f| match f.body {
            Some(Req::Ack(a)) => Some(a.ids),
            _ => None,
        })
        .collect();
    assert_eq!(acks.len(), 2, "acked after each delivery");
}

/// The ack frames a client queued, each as its list of relay ids.
fn ack_frames(c: &mut Client) -> Vec<Vec<u64>> {
    c.take_outgoing()
        .into_iter()
        .filter_map(|f| match f.body {
            Some(Req::Ack(a)) => Some(a.ids),
            _ => None,
        })
        .collect()
}

/// A payload that decrypts but cannot be applied (a poison message, issue 15 part 6): here a
/// reaction beyond `MAX_REACTIONS_PER_USER`, which only Bob's store can refuse. It is reported with
/// its reason and acked with its batch; the messages on either side of it arrive, and nothing is
/// delivered again.
#[test]
fn a_poison_message_between_two_good_ones_is_reported_acked_and_skipped() {
    let (mut relay, mut alice, mut bob) = pair();
    let (a2b, b2a) = (direct(&bob), direct(&alice));
    let target = bob.send_text(&b2a, "react to this", T0 + 1).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], T0 + 1);
    // Alice's own client refuses a reaction over the limit; a modified one queues it anyway.
    let react = |alice: &mut Client, emoji: String| {
        let content = alice.content(ContentBody::Reaction { target, emoji, remove: false }, T0 + 2).unwrap();
        alice.queue(&a2b, content, T0 + 2).unwrap();
    };
    for i in 0..crate::limits::MAX_REACTIONS_PER_USER {
        react(&mut alice, format!("e{i}"));
    }
    relay.pump(&mut [&mut alice, &mut bob], T0 + 2);
    let full = bob.message(&b2a, &target).unwrap().unwrap().reactions;
    assert_eq!(full.len(), crate::limits::MAX_REACTIONS_PER_USER);

    alice.send_text(&a2b, "before", T0 + 3).unwrap();
    react(&mut alice, "one too many".into());
    alice.send_text(&a2b, "after", T0 + 3).unwrap();
    relay.pump(&mut [&mut alice], T0 + 3);
    let queued = relay.mailbox(&bob);
    assert_eq!(queued.len(), 3);
    let ids: Vec<u64> = queued.iter().map(|e| e.id).collect();

    let events = bob.handle_envelopes(queued, T0 + 4).unwrap();
    assert_eq!(texts(&events), ["before", "after"]);
    let alice_key = alice.user_key().unwrap();
    assert!(
        events.contains(&Event::Undecryptable { from: Some(alice_key), reason: ErrorKind::BadInput }),
        "{events:?}"
    );
    assert_eq!(ack_frames(&mut bob), [ids], "the whole batch in one ack");
    assert_eq!(bob.message(&b2a, &target).unwrap().unwrap().reactions, full, "the poison applied nothing");
    relay.pump(&mut [&mut alice, &mut bob], T0 + 5);
    assert_eq!(relay.mailbox_len(&bob), 0);
    assert_eq!(history_texts(&mut bob, &b2a), ["react to this", "before", "after"]);
    // The session goes on both ways.
    alice.send_text(&a2b, "still here", T0 + 6).unwrap();
    bob.send_text(&b2a, "me too", T0 + 6).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 6);
    assert_eq!((texts(&events[0]), texts(&events[1])), (vec!["me too".to_owned()], vec!["still here".to_owned()]));
}

/// A batch of messages from one contact is acknowledged with one delivery receipt naming them all,
/// not one receipt (one more encryption, outbox row and relay send) per message.
#[test]
fn a_batch_of_messages_gets_one_delivery_receipt() {
    let (mut relay, mut alice, mut bob) = pair();
    let ids: Vec<_> = (0..5).map(|i| alice.send_text(&direct(&bob), &format!("m{i}"), T0 + 1).unwrap()).collect();
    relay.pump(&mut [&mut alice], T0 + 1);
    let events = bob.handle_envelopes(relay.mailbox(&bob), T0 + 2).unwrap();
    assert_eq!(texts(&events), ["m0", "m1", "m2", "m3", "m4"]);
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 2);
    let receipts: Vec<&Vec<_>> = events[0]
        .iter()
        .filter_map(|e| match e {
            Event::Receipt { kind: ReceiptKind::Delivered, targets, .. } => Some(targets),
            _ => None,
        })
        .collect();
    assert_eq!(receipts, [&ids]);
    for id in &ids {
        assert_eq!(alice.message(&direct(&bob), id).unwrap().unwrap().status, MessageStatus::Delivered);
    }
}

#[test]
fn a_send_whose_answer_was_lost_is_resent_and_shown_once() {
    let (mut relay, mut alice, mut bob) = pair();
    relay.disconnect(&mut bob);
    relay.lose_send_answers = 1;
    let id = alice.send_text(&direct(&bob), "are you there?", T0).unwrap();
    relay.pump(&mut [&mut alice], T0);
    assert_eq!(alice.message(&direct(&bob), &id).unwrap().unwrap().status, MessageStatus::Sending);
    // Reconnect: the outbox sends the same request again; the relay now holds it twice.
    relay.disconnect(&mut alice);
    relay.connect(&mut alice, T0 + 1);
    relay.pump(&mut [&mut alice], T0 + 1);
    assert_eq!(relay.mailbox_len(&bob), 2);
    // Encrypted anew, not the same bytes: the ratchet may have moved past the first by now.
    let copies = relay.mailbox(&bob);
    assert_ne!(copies[0].payload, copies[1].payload);
    assert_eq!(alice.message(&direct(&bob), &id).unwrap().unwrap().status, MessageStatus::Sent);

    relay.connect(&mut bob, T0 + 2);
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 2);
    assert_eq!(texts(&events[1]), ["are you there?"]);
    assert_eq!(relay.mailbox_len(&bob), 0);
    assert_eq!(history_texts(&mut bob, &direct(&alice)), ["are you there?"]);
}

#[test]
fn a_send_refused_for_the_rate_goes_again_when_the_relay_says_and_never_fails() {
    let (mut relay, mut alice, mut bob) = pair();
    let to_bob = direct(&bob);
    // Far more refusals than max_attempts (5): a rate limit is not a failure.
    relay.rate_limit_sends = 12;
    relay.rate_limit_retry_ms = 2_000;
    let id = alice.send_text(&to_bob, "slow down", T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], T0);
    assert_eq!(relay.rate_limited, 1);
    let mut now = T0;
    let mut received = Vec::new();
    for refused in 1..=12 {
        // Not before the relay's time…
        alice.tick(now + 1_999).unwrap();
        relay.pump(&mut [&mut alice, &mut bob], now + 1_999);
        assert_eq!(relay.rate_limited, refused, "re-sent before the relay's retry-after");
        // …and within it plus half of it (the jitter).
        now += 3_000;
        alice.tick(now).unwrap();
        let events = relay.pump(&mut [&mut alice, &mut bob], now);
        received.extend(texts(&events[1]));
        if refused < 12 {
            assert_eq!(relay.rate_limited, refused + 1, "not re-sent within retry-after × 1.5");
        }
        let (page, _) = alice.history(&to_bob, None, 1).unwrap();
        assert_ne!(page[0].status, MessageStatus::Failed, "a rate-limited send was given up");
    }
    assert_eq!(received, ["slow down"]);
    let (page, _) = alice.history(&to_bob, None, 1).unwrap();
    assert_eq!((page[0].id, page[0].status), (id, MessageStatus::Delivered), "sent, and Bob's receipt came back");
}

#[test]
fn a_relay_cannot_stall_a_send_or_make_it_hammer_by_what_it_says_about_retrying() {
    // A relay that says "retry in u64::MAX ms" is heard no further than the client's own wait
    // (retry_after_ms, 30 s, plus jitter); one that says "retry in 1 ms" no sooner than 250 ms.
    let (mut relay, mut alice, mut bob) = pair();
    let to_bob = direct(&bob);
    relay.rate_limit_sends = 1;
    relay.rate_limit_retry_ms = u64::MAX;
    alice.send_text(&to_bob, "patience", T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], T0);
    assert_eq!(relay.rate_limited, 1);
    alice.tick(T0 + 45_000).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 45_000);
    assert_eq!(texts(&events[1]), ["patience"], "a huge retry-after held the send beyond the client's own wait");

    relay.rate_limit_sends = 1;
    relay.rate_limit_retry_ms = 1;
    let now = T0 + 50_000;
    alice.send_text(&to_bob, "not too fast", now).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], now);
    assert_eq!(relay.rate_limited, 2);
    let sent_before = relay.plain_sends + relay.sealed_sends;
    assert_eq!(bob_texts_after(&mut relay, &mut alice, &mut bob, now + 249), Vec::<String>::new());
    assert_eq!(relay.plain_sends + relay.sealed_sends, sent_before, "re-sent sooner than 250 ms");
    assert_eq!(bob_texts_after(&mut relay, &mut alice, &mut bob, now + 375), ["not too fast"]);
}

#[test]
fn a_busy_chat_that_keeps_touching_the_rate_limit_loses_nothing_and_never_delivers_a_refused_ciphertext() {
    // Both write every second; the relay refuses every third send for 10 s, long enough for the
    // ratchets to move on by more than MAX_RECEIVING_CHAINS: a refused copy sent late as it was
    // would be undecryptable (and was, before payloads were encrypted at send time).
    let (mut relay, mut alice, mut bob) = pair();
    relay.rate_limit_every = 3;
    relay.rate_limit_retry_ms = 10_000;
    let (to_bob, to_alice) = (direct(&bob), direct(&alice));
    let (mut sent_a, mut sent_b, mut got_a, mut got_b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut undecryptable = 0;
    let mut now = T0;
    for round in 0..60 {
        now += 1_000;
        if round < 30 {
            sent_a.push(format!("a{round}"));
            alice.send_text(&to_bob, &sent_a[round], now).unwrap();
            sent_b.push(format!("b{round}"));
            bob.send_text(&to_alice, &sent_b[round], now).unwrap();
        } else {
            now += 10_000;
        }
        alice.tick(now).unwrap();
        bob.tick(now).unwrap();
        let events = relay.pump(&mut [&mut alice, &mut bob], now);
        got_a.extend(texts(&events[0]));
        got_b.extend(texts(&events[1]));
        undecryptable += events.iter().flatten().filter(|e| matches!(e, Event::Undecryptable { .. })).count();
    }
    assert!(relay.rate_limited > 20, "the limit was touched {} times", relay.rate_limited);
    assert_eq!(undecryptable, 0);
    assert!(relay.deposited.iter().all(|e| !relay.refused_envelopes.contains(e)), "a refused ciphertext was delivered");
    // Each message shown exactly once, and the history in each sender's order.
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(got_b), sorted(sent_a.clone()));
    assert_eq!(sorted(got_a), sorted(sent_b.clone()));
    assert_eq!(
        history_texts(&mut bob, &to_alice).into_iter().filter(|t| t.starts_with('a')).collect::<Vec<_>>(),
        sent_a
    );
    assert_eq!(
        history_texts(&mut alice, &to_bob).into_iter().filter(|t| t.starts_with('b')).collect::<Vec<_>>(),
        sent_b
    );
    let (page, _) = alice.history(&to_bob, None, 100).unwrap();
    assert!(page.iter().all(|m| m.status != MessageStatus::Failed && m.status != MessageStatus::Sending));
}

#[test]
fn a_group_message_refused_for_some_members_reaches_each_of_them_once() {
    let (mut relay, mut alice, mut bob) = pair();
    let mut carol = newcomer(&mut relay, &mut alice, "Carol");
    let members = [bob.user_key().unwrap(), carol.user_key().unwrap()];
    let group = alice.create_group("refusals", &members, T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0);
    let conversation = ConversationId::Group(group);
    relay.rate_limit_every = 2;
    relay.rate_limit_retry_ms = 1_000;
    let id = alice.send_text(&conversation, "to all", T0 + 10).unwrap();
    let mut got = [Vec::new(), Vec::new()];
    for step in 0..10 {
        let now = T0 + 10 + step * 2_000;
        alice.tick(now).unwrap();
        let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol], now);
        got[0].extend(texts(&events[1]));
        got[1].extend(texts(&events[2]));
    }
    assert!(relay.rate_limited > 0);
    assert_eq!(got, [vec!["to all".to_owned()], vec!["to all".to_owned()]]);
    assert!(relay.deposited.iter().all(|e| !relay.refused_envelopes.contains(e)));
    assert_eq!(alice.message(&conversation, &id).unwrap().unwrap().status, MessageStatus::Sent);
}

#[test]
fn version_1_outbox_entries_still_go() {
    // What the outbox held before payloads were encrypted at send time: a payload waiting for
    // sessions (a group message's with no recipients: the members at sending) and a request
    // already encrypted. Both still reach the peer, the ciphertext as it was.
    use crate::wire::client::{OutboxEntry, PendingContent, outbox_entry::Entry};
    let (mut relay, mut alice, mut bob) = pair();
    let group = alice.create_group("old", &[bob.user_key().unwrap()], T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], T0);
    relay.disconnect(&mut alice);
    let mut old = Vec::new();
    let c = alice.content(ContentBody::Text("frame of old".into()), T0 + 2).unwrap();
    let g = alice.content(ContentBody::Text("old group payload".into()), T0 + 3).unwrap();
    let me = alice.user_key().unwrap();
    let tx = alice.store.transaction().unwrap();
    let mut peer = tx.peer(&bob.user_key().unwrap()).unwrap().unwrap();
    let list_version = alice.own_list_version;
    let mut ctx =
        Ctx { rng: &mut alice.rng, identity: &alice.identity, me, list_version, token: None, config: &alice.config };
    let addressed = outbox::encrypt_for(&mut ctx, &tx, &mut peer, &c.to_bytes().unwrap()).unwrap();
    tx.put_peer(&peer).unwrap();
    for a in addressed {
        let frame = ClientFrame { version: RELAY_PROTOCOL_VERSION, request_id: 0, body: Some(a.into_request(false)) };
        old.push((
            c.client_message_id,
            direct(&bob),
            OutboxEntry { version: 1, entry: Some(Entry::Frame(frame.encode_to_vec())) },
        ));
    }
    let pending = PendingContent {
        conversation: ConversationId::Group(group).to_bytes(),
        recipients: Vec::new(),
        content: g.to_bytes().unwrap().to_vec(),
        group_message: true,
        delivered: Vec::new(),
        refusals: 0,
        devices: Vec::new(),
        unsessioned: false,
        resends: 0,
    };
    old.push((
        g.client_message_id,
        ConversationId::Group(group),
        OutboxEntry { version: 1, entry: Some(Entry::Pending(pending)) },
    ));
    for (message_id, conversation, entry) in old {
        tx.outbox_push(&OutboxItem {
            id: 0,
            conversation,
            message_id,
            frame: entry.encode_to_vec(),
            attempts: 0,
            next_attempt_ms: 0,
        })
        .unwrap();
    }
    tx.commit().unwrap();
    relay.connect(&mut alice, T0 + 4);
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 4);
    let mut got = texts(&events[1]);
    got.sort();
    assert_eq!(got, ["frame of old", "old group payload"]);
    let tx = alice.store.transaction().unwrap();
    assert_eq!(tx.outbox_due(u64::MAX).unwrap().len(), 0);
    tx.commit().unwrap();
}

#[test]
fn a_relay_restored_from_an_old_backup_cannot_pass_new_messages_off_as_processed_ones() {
    // Restored, the relay counts its ids again from where the backup was: new envelopes get ids
    // Bob processed before. Marked by id alone, they were acked and dropped unseen.
    let (mut relay, mut alice, mut bob) = pair();
    let to_bob = direct(&bob);
    let backup = relay.next_id();
    alice.send_text(&to_bob, "one", T0).unwrap();
    alice.send_text(&to_bob, "two", T0).unwrap();
    assert_eq!(texts(&relay.pump(&mut [&mut alice, &mut bob], T0)[1]), ["one", "two"]);
    relay.reuse_ids_from(backup);
    relay.disconnect(&mut bob);
    alice.send_text(&to_bob, "three", T0 + 1).unwrap();
    relay.pump(&mut [&mut alice], T0 + 1);
    assert_eq!(relay.mailbox(&bob).first().map(|e| e.id), Some(backup), "an id Bob saw before");
    relay.connect(&mut bob, T0 + 2);
    assert_eq!(texts(&relay.pump(&mut [&mut alice, &mut bob], T0 + 2)[1]), ["three"]);
    assert_eq!(history_texts(&mut bob, &direct(&alice)), ["one", "two", "three"]);
}

#[test]
fn old_ciphertexts_replayed_by_the_relay_under_new_ids_show_nothing() {
    let (mut relay, mut alice, mut bob) = pair();
    relay.disconnect(&mut bob);
    alice.send_text(&direct(&bob), "once", T0).unwrap();
    relay.pump(&mut [&mut alice], T0);
    let copies = relay.mailbox(&bob);
    relay.connect(&mut bob, T0 + 1);
    assert_eq!(texts(&relay.pump(&mut [&mut alice, &mut bob], T0 + 1)[1]), ["once"]);
    relay.release(&bob, copies);
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 2);
    assert!(events[1].is_empty(), "{:?}", events[1]);
    assert_eq!(relay.mailbox_len(&bob), 0, "acked");
    assert_eq!(history_texts(&mut bob, &direct(&alice)), ["once"]);
}

/// Ticks Alice at `now` and returns the texts Bob receives.
fn bob_texts_after(relay: &mut TestRelay, alice: &mut Client, bob: &mut Client, now: u64) -> Vec<String> {
    alice.tick(now).unwrap();
    texts(&relay.pump(&mut [alice, bob], now)[1])
}

#[test]
fn messages_written_offline_wait_in_the_outbox() {
    let (mut relay, mut alice, mut bob) = pair();
    relay.disconnect(&mut alice);
    for i in 0..5 {
        alice.send_text(&direct(&bob), &format!("offline {i}"), T0 + i).unwrap();
    }
    assert!(alice.take_outgoing().is_empty());
    relay.connect(&mut alice, T0 + 10);
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 10);
    assert_eq!(texts(&events[1]).len(), 5);
    assert_eq!(history_texts(&mut bob, &direct(&alice)).len(), 5);
}

#[test]
fn a_blocked_contact_is_acked_and_dropped_without_events() {
    let (mut relay, mut alice, mut bob) = pair();
    bob.block(&alice.user_key().unwrap()).unwrap();
    alice.send_text(&direct(&bob), "let me in", T0).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T0);
    assert!(events[1].is_empty(), "{:?}", events[1]);
    assert_eq!(relay.mailbox_len(&bob), 0);
    assert!(history_texts(&mut bob, &direct(&alice)).is_empty());
}

/// A new user, connected, whom Alice adds from their link (they know nobody).
pub(crate) fn newcomer(relay: &mut TestRelay, alice: &mut Client, name: &str) -> Client {
    let mut c = new_client(name);
    relay.connect(&mut c, T0);
    relay.pump(&mut [&mut c], T0);
    alice.add_contact(&c.contact_link().unwrap(), T0).unwrap();
    c
}

#[test]
fn groups_create_talk_add_and_remove() {
    let (mut relay, mut alice, mut bob) = pair();
    let mut carol = newcomer(&mut relay, &mut alice, "Carol");

    let group = alice.create_group("trip", &[bob.user_key().unwrap(), carol.user_key().unwrap()], T0).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0);
    for e in &events[1..] {
        assert!(e.contains(&Event::GroupJoined { group, name: "trip".into() }), "{e:?}");
    }
    let conv = ConversationId::Group(group);
    alice.send_text(&conv, "who brings the tent?", T0 + 1).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 1);
    assert_eq!(texts(&events[1]), ["who brings the tent?"]);
    assert_eq!(texts(&events[2]), ["who brings the tent?"]);
    // Carol and Bob are not contacts of each other: the group is enough.
    carol.send_text(&conv, "me", T0 + 2).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 2);
    assert_eq!(texts(&events[0]), ["me"]);
    assert_eq!(texts(&events[1]), ["me"]);

    alice.remove_member(&group, &carol.user_key().unwrap(), T0 + 3).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 3);
    assert!(events[1].iter().any(|e| matches!(e, Event::GroupChanged { .. })));
    alice.send_text(&conv, "carol is out", T0 + 4).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 4);
    assert_eq!(texts(&events[1]), ["carol is out"]);
    assert!(texts(&events[2]).is_empty());
    assert!(carol.send_text(&conv, "still here?", T0 + 5).is_err());
    assert_eq!(history_texts(&mut bob, &conv), ["who brings the tent?", "me", "carol is out"]);

    alice.rename_group(&group, "trip 2027", T0 + 6).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 6);
    assert!(events[1].iter().any(|e| matches!(e, Event::GroupChanged { events, .. } if events.contains(&crate::group::GroupEvent::Renamed("trip 2027".into())))));
}

/// Group post-compromise security through the client (docs/PROTOCOL.md §10.3): Alice's sender
/// chain is replaced after 100 messages and again after a week, each new chain distributed the
/// lazy way with the next message, and Bob reads every message across the changes.
#[test]
fn a_group_sender_chain_is_replaced_after_a_hundred_messages_and_after_a_week() {
    use crate::limits::{SENDER_CHAIN_MAX_AGE_MS, SENDER_CHAIN_MAX_MESSAGES};
    let (mut relay, mut alice, mut bob) = pair();
    let group = alice.create_group("pcs", &[bob.user_key().unwrap()], T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], T0);
    let conv = ConversationId::Group(group);
    let chain = |c: &mut Client| {
        let g = c.group(&group).unwrap().unwrap();
        g.outbound.as_ref().map(|o| (o.chain_id, o.chain.index)).unwrap()
    };
    let mut read = 0;
    let mut ids = Vec::new();
    for i in 0..=SENDER_CHAIN_MAX_MESSAGES {
        let at = T0 + 1 + u64::from(i);
        alice.send_text(&conv, &format!("m{i}"), at).unwrap();
        let events = relay.pump(&mut [&mut alice, &mut bob], at);
        read += texts(&events[1]).len();
        ids.push(chain(&mut alice).0);
    }
    assert!(ids[..SENDER_CHAIN_MAX_MESSAGES as usize].iter().all(|id| *id == ids[0]));
    assert_ne!(ids[SENDER_CHAIN_MAX_MESSAGES as usize], ids[0], "the 101st message starts a new chain");
    assert_eq!(chain(&mut alice).1, 1);
    let week = T0 + 200 + SENDER_CHAIN_MAX_AGE_MS;
    alice.send_text(&conv, "a week on", week).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], week);
    read += texts(&events[1]).len();
    assert_ne!(chain(&mut alice).0, ids[SENDER_CHAIN_MAX_MESSAGES as usize], "a week-old chain is replaced");
    assert_eq!(read, SENDER_CHAIN_MAX_MESSAGES as usize + 2);
}

/// Carol, removed from the group, runs a modified client: she signs a rename off the group state
/// she kept and sends it, and a sender-key distribution, to Bob over their 1:1 session. Bob refuses
/// both (she is no member of his roster), his group is unchanged, and the envelopes are acked, so
/// they do not come back on the next connection.
#[test]
fn group_payloads_from_a_removed_member_are_refused_and_acked() {
    use crate::group::RosterAction;
    use crate::group::roster::RosterChange;
    let (mut relay, mut alice, mut bob) = pair();
    let mut carol = newcomer(&mut relay, &mut alice, "Carol");
    let group = alice.create_group("trip", &[bob.user_key().unwrap(), carol.user_key().unwrap()], T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0);
    let conv = ConversationId::Group(group);
    // Carol sends once (so she and Bob have a 1:1 session) and keeps her chain's distribution.
    carol.send_text(&conv, "hi", T0 + 1).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 1);
    let distribution = carol.group(&group).unwrap().unwrap().sender_key_distribution().unwrap();
    alice.remove_member(&group, &carol.user_key().unwrap(), T0 + 2).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 2);
    let kept = carol.group(&group).unwrap().unwrap();
    assert!(!kept.roster().is_member(&carol.user_key().unwrap()));
    let before = bob.group(&group).unwrap().unwrap().to_bytes();

    let rename = RosterChange::sign(
        carol.primary_user().unwrap(),
        group,
        Some((kept.head.unwrap(), kept.epoch())),
        T0 + 3,
        RosterAction::Rename("carol's now".into()),
    )
    .unwrap();
    let control = crate::wire::group::GroupControl {
        version: 1,
        group_id: group.to_bytes().to_vec(),
        changes: vec![rename.to_proto().unwrap()],
    }
    .encode_to_vec();
    let bob_key = bob.user_key().unwrap();
    for body in [
        ContentBody::GroupControl { group_id: group, change: control },
        ContentBody::SenderKeyDistribution(crate::content::SecretBytes::new(distribution)),
    ] {
        let content = carol.content(body, T0 + 3).unwrap();
        carol.queue_to(&ConversationId::Direct(bob_key), vec![bob_key], content, T0 + 3).unwrap();
    }
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 3);
    assert!(events[1].iter().all(|e| !matches!(e, Event::GroupChanged { .. })), "{:?}", events[1]);
    assert_eq!(*bob.group(&group).unwrap().unwrap().to_bytes(), *before);
    assert_eq!(relay.mailbox_len(&bob), 0);
    relay.disconnect(&mut bob);
    relay.connect(&mut bob, T0 + 4);
    let events = relay.pump(&mut [&mut bob], T0 + 4);
    assert!(events[0].is_empty(), "{:?}", events[0]);
    // The group still works for its members.
    alice.send_text(&conv, "still here", T0 + 5).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 5);
    assert_eq!(texts(&events[1]), ["still here"]);
}

/// Group messages that `from` seals for every device of `to` on fresh chains (ids random) of
/// `epoch`, queued in `to`'s mailbox as the relay would.
fn junk_group_messages(
    relay: &mut TestRelay,
    from: &mut Client,
    to: &Client,
    group: crate::group::GroupId,
    epoch: u64,
    n: usize,
) {
    use crate::group::sender_chain::OutboundSenderChain;
    let tx = from.store.transaction().unwrap();
    let peer = tx.peer(&to.user_key().unwrap()).unwrap().unwrap();
    tx.commit().unwrap();
    let me = from.user_key().unwrap();
    let mut envelopes = Vec::new();
    for _ in 0..n {
        let mut chain = OutboundSenderChain::new(&mut from.rng, epoch, 1);
        let message = chain.encrypt(&group, b"junk").unwrap();
        for device in peer.device_list().devices() {
            let payload = crate::sealed_sender::seal(
                &mut from.rng,
                &me,
                &crate::sealed_sender::SenderState::new(1, None),
                &from.identity,
                device,
                crate::sealed_sender::InnerKind::Group,
                &message,
            )
            .unwrap();
            let sender_device = from.device_key().to_bytes().to_vec();
            envelopes.push(crate::wire::relay::Envelope {
                id: 0,
                sender_device,
                payload,
                received_at: T0,
                sealed: true,
            });
        }
    }
    relay.release(to, envelopes);
}

/// Carol, removed, sends Bob 300 group messages on made-up chains (more than the relay's delivery
/// window of 256): Bob refuses each (she is no member of his roster) instead of parking it, so all
/// are acked, his mailbox is empty, and he still reads Alice. Alice, a member, sends messages
/// naming an epoch too far ahead: refused too; one naming the next epoch still waits, parked.
#[test]
fn group_messages_from_non_members_and_far_epochs_are_never_parked() {
    let (mut relay, mut alice, mut bob) = pair();
    let mut carol = newcomer(&mut relay, &mut alice, "Carol");
    let group = alice.create_group("trip", &[bob.user_key().unwrap(), carol.user_key().unwrap()], T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0);
    let conv = ConversationId::Group(group);
    carol.send_text(&conv, "hi", T0 + 1).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 1);
    alice.remove_member(&group, &carol.user_key().unwrap(), T0 + 2).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 2);
    let epoch = bob.group(&group).unwrap().unwrap().epoch();

    junk_group_messages(&mut relay, &mut carol, &bob, group, epoch, 300);
    assert_eq!(relay.mailbox_len(&bob), 300);
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 3);
    assert!(bob.parked.is_empty());
    assert_eq!(relay.mailbox_len(&bob), 0);
    let refused = events[1].iter().filter(|e| matches!(e, Event::Undecryptable { .. })).count();
    assert_eq!(refused, 300);

    let limit = u64::from(crate::limits::MAX_GROUP_EPOCHS_AHEAD);
    junk_group_messages(&mut relay, &mut alice, &bob, group, epoch + limit + 1, 10);
    relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 4);
    assert!(bob.parked.is_empty());
    assert_eq!(relay.mailbox_len(&bob), 0);
    // Within the bound, a member's message on a chain not yet arrived waits for it.
    junk_group_messages(&mut relay, &mut alice, &bob, group, epoch + limit, 1);
    relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 5);
    assert_eq!((bob.parked.len(), relay.mailbox_len(&bob)), (1, 1));

    alice.send_text(&conv, "still here", T0 + 6).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 6);
    assert_eq!(texts(&events[1]), ["still here"]);
}

/// A relay that reorders: Alice adds Xavier, Xavier leaves, and Bob (offline meanwhile) is pushed
/// Xavier's leave, and only later Alice's add. Xavier is no member of Bob's roster then, but the leave is
/// held as waiting (its parent has not arrived) and acked; once the add arrives both apply, Bob's
/// roster is Alice's and Xavier's, and he reads what Alice sends at the new epoch.
#[test]
fn a_control_from_a_member_added_in_a_change_not_yet_arrived_waits_for_it() {
    let (mut relay, mut alice, mut bob) = pair();
    let mut xavier = newcomer(&mut relay, &mut alice, "Xavier");
    let group = alice.create_group("trip", &[bob.user_key().unwrap()], T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut xavier], T0);
    relay.disconnect(&mut bob);
    alice.add_members(&group, &[xavier.user_key().unwrap()], T0 + 1).unwrap();
    relay.pump(&mut [&mut alice, &mut xavier], T0 + 1);
    let add: Vec<u64> = relay.mailbox(&bob).iter().map(|e| e.id).collect();
    assert!(!add.is_empty());
    xavier.leave_group(&group, T0 + 2).unwrap();
    relay.pump(&mut [&mut alice, &mut xavier], T0 + 2);
    let add = relay.withhold(&bob, &add);
    assert_eq!(relay.mailbox_len(&bob), 1);
    let before = bob.group(&group).unwrap().unwrap();

    // Bob takes Xavier's leave alone: it waits, and is acked.
    relay.connect(&mut bob, T0 + 3);
    relay.pump(&mut [&mut alice, &mut bob, &mut xavier], T0 + 3);
    assert_eq!(relay.mailbox_len(&bob), 0);
    let waiting = bob.group(&group).unwrap().unwrap();
    assert_eq!(
        (waiting.epoch(), waiting.members(), waiting.log.len()),
        (before.epoch(), before.members(), before.log.len() + 1)
    );
    relay.release(&bob, add);
    relay.pump(&mut [&mut alice, &mut bob, &mut xavier], T0 + 3);
    assert_eq!(relay.mailbox_len(&bob), 0);
    let roster = |c: &mut Client| {
        let g = c.group(&group).unwrap().unwrap();
        (g.epoch(), g.members())
    };
    let expected = roster(&mut alice);
    let (a, b) = (alice.user_key().unwrap(), bob.user_key().unwrap());
    assert!(expected.1.len() == 2 && expected.1.contains(&a) && expected.1.contains(&b), "{expected:?}");
    assert_eq!(roster(&mut bob), expected);
    assert_eq!(roster(&mut xavier), expected);
    alice.send_text(&ConversationId::Group(group), "just us again", T0 + 4).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut xavier], T0 + 4);
    assert_eq!(texts(&events[1]), ["just us again"]);
}

/// The same with two changes overtaken: Alice adds Xavier and makes him an admin, Xavier renames
/// the group, and Bob gets the rename first. It waits (two parents missing); once Alice's changes
/// arrive all three apply, and Bob reads Xavier's messages at the new epoch.
#[test]
fn a_rename_by_a_member_promoted_in_changes_not_yet_arrived_waits_for_them() {
    use crate::group::RosterAction;
    let (mut relay, mut alice, mut bob) = pair();
    let mut xavier = newcomer(&mut relay, &mut alice, "Xavier");
    let x = xavier.user_key().unwrap();
    let group = alice.create_group("trip", &[bob.user_key().unwrap()], T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut xavier], T0);
    relay.disconnect(&mut bob);
    alice.add_members(&group, &[x], T0 + 1).unwrap();
    alice.change_group(&group, RosterAction::Promote(x), &[], T0 + 1).unwrap();
    relay.pump(&mut [&mut alice, &mut xavier], T0 + 1);
    let ids: Vec<u64> = relay.mailbox(&bob).iter().map(|e| e.id).collect();
    xavier.rename_group(&group, "xavier's trip", T0 + 2).unwrap();
    relay.pump(&mut [&mut alice, &mut xavier], T0 + 2);
    let withheld = relay.withhold(&bob, &ids);
    assert_eq!((withheld.len(), relay.mailbox_len(&bob)), (2, 1));

    relay.connect(&mut bob, T0 + 3);
    relay.pump(&mut [&mut alice, &mut bob, &mut xavier], T0 + 3);
    assert_eq!(relay.mailbox_len(&bob), 0);
    assert_eq!(bob.group(&group).unwrap().unwrap().roster().name, "trip");
    relay.release(&bob, withheld);
    relay.pump(&mut [&mut alice, &mut bob, &mut xavier], T0 + 3);
    let state = |c: &mut Client| {
        let g = c.group(&group).unwrap().unwrap();
        (g.epoch(), g.members(), g.roster().name.clone())
    };
    let expected = state(&mut alice);
    assert_eq!(expected.2, "xavier's trip");
    assert_eq!(state(&mut bob), expected);
    assert_eq!(state(&mut xavier), expected);
    xavier.send_text(&ConversationId::Group(group), "renamed it", T0 + 4).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut xavier], T0 + 4);
    assert_eq!(texts(&events[1]), ["renamed it"]);
}

/// Bob is removed; Alice then adds Carol and makes her an admin, and Carol adds Bob back. Her
/// welcome comes from someone who is no member of the roster Bob kept, but merged it makes her one
/// (and Bob one again): Bob takes it, and reads the group again.
#[test]
fn a_welcome_back_from_an_admin_added_since_is_taken() {
    use crate::group::RosterAction;
    let (mut relay, mut alice, mut bob) = pair();
    let mut carol = newcomer(&mut relay, &mut alice, "Carol");
    let (b, c) = (bob.user_key().unwrap(), carol.user_key().unwrap());
    let group = alice.create_group("trip", &[b], T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0);
    alice.remove_member(&group, &b, T0 + 1).unwrap();
    alice.add_members(&group, &[c], T0 + 1).unwrap();
    alice.change_group(&group, RosterAction::Promote(c), &[], T0 + 1).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 1);
    let kept = bob.group(&group).unwrap().unwrap();
    assert!(!kept.roster().is_member(&b) && !kept.roster().is_member(&c));

    carol.add_members(&group, &[b], T0 + 2).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 2);
    assert!(
        events[1].iter().any(|e| matches!(e, Event::GroupChanged { events, .. } if events.contains(&crate::group::GroupEvent::MemberAdded(b)))),
        "{:?}",
        events[1]
    );
    let epoch = alice.group(&group).unwrap().unwrap().epoch();
    let back = bob.group(&group).unwrap().unwrap();
    assert_eq!((back.epoch(), back.members()), (epoch, alice.group(&group).unwrap().unwrap().members()));
    let conv = ConversationId::Group(group);
    carol.send_text(&conv, "welcome back", T0 + 3).unwrap();
    alice.send_text(&conv, "hi bob", T0 + 3).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol], T0 + 3);
    let mut read = texts(&events[1]);
    read.sort();
    assert_eq!(read, ["hi bob", "welcome back"]);
}

/// With group requests on, an invite from someone who is not an accepted contact is a request:
/// Carol and Dave (who know nobody) see `GroupRequest`, not `GroupJoined`; the group's messages
/// arrive as requests and reading them sends no receipt. Carol accepts: the next message is an
/// ordinary one. Dave declines: he leaves (Alice sees it) and forgets the group. Bob, who accepted
/// Alice, joins as before.
#[test]
fn a_group_invite_from_a_non_contact_is_a_request() {
    let (mut relay, mut alice, mut bob) = pair();
    let mut carol = newcomer(&mut relay, &mut alice, "Carol");
    let mut dave = newcomer(&mut relay, &mut alice, "Dave");
    for c in [&mut bob, &mut carol, &mut dave] {
        c.config.group_requests = true;
    }
    let members = [bob.user_key().unwrap(), carol.user_key().unwrap(), dave.user_key().unwrap()];
    let group = alice.create_group("trip", &members, T0).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol, &mut dave], T0);
    let a = alice.user_key().unwrap();
    assert!(events[1].contains(&Event::GroupJoined { group, name: "trip".into() }), "{:?}", events[1]);
    for e in &events[2..] {
        assert!(e.contains(&Event::GroupRequest { group, name: "trip".into(), from: a }), "{e:?}");
        assert!(!e.iter().any(|e| matches!(e, Event::GroupJoined { .. })), "{e:?}");
    }
    let conv = ConversationId::Group(group);
    assert!(carol.conversations().unwrap().iter().any(|c| c.id == conv && c.request));

    alice.send_text(&conv, "first", T0 + 1).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol, &mut dave], T0 + 1);
    assert_eq!(texts(&events[1]), ["first"]);
    assert!(events[1].iter().any(|e| matches!(e, Event::Message(_))));
    for e in &events[2..] {
        assert!(e.iter().any(|e| matches!(e, Event::MessageRequest(_))), "{e:?}");
    }
    // Reading a request tells nobody.
    carol.mark_read(&conv, T0 + 2).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol, &mut dave], T0 + 2);
    assert!(!events[0].iter().any(|e| matches!(e, Event::Receipt { .. })), "{:?}", events[0]);

    carol.accept_group(&group).unwrap();
    dave.decline_group(&group, T0 + 3).unwrap();
    assert!(dave.group(&group).unwrap().is_none());
    assert!(!dave.conversations().unwrap().iter().any(|c| c.id == conv));
    assert_eq!(dave.decline_group(&group, T0 + 3), Err(Error::NotGroupMember));
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol, &mut dave], T0 + 3);
    let d = dave.user_key().unwrap();
    assert!(
        events[0].iter().any(|e| matches!(e, Event::GroupChanged { events, .. } if events.contains(&crate::group::GroupEvent::MemberRemoved(d)))),
        "{:?}",
        events[0]
    );
    alice.send_text(&conv, "second", T0 + 4).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut carol, &mut dave], T0 + 4);
    assert!(events[2].iter().any(|e| matches!(e, Event::Message(_))), "{:?}", events[2]);
    assert!(texts(&events[3]).is_empty());
    assert!(!carol.conversations().unwrap().iter().any(|c| c.request));
}

#[test]
fn a_config_whose_contact_link_no_one_could_add_is_refused_before_anything_is_stored() {
    let key = || Unlock::Key(Zeroizing::new([7; 32]));
    let mut store = Store::open_in_memory(key()).unwrap();
    let huge_name = "n".repeat(1024 * 1024);
    let refused = [
        (ClientConfig::new("ws://relay.test/v1/ws", huge_name.as_str()), "display name"),
        (ClientConfig::new("ws://relay.test/v1/ws", "Eve\u{0}"), "display name"),
        (ClientConfig::new("not a url", "Eve"), "relay URL"),
        (ClientConfig::new("https://relay.test/v1/ws", "Eve"), "relay URL"),
        (ClientConfig::new(format!("ws://{}", "r".repeat(2048)), "Eve"), "relay URL"),
    ];
    for (config, field) in refused {
        match Client::create(store, config.clone(), T0) {
            Err(e @ (Error::Malformed { what } | Error::TooLarge { what, .. })) => {
                assert_eq!(what, field, "{e}");
            }
            other => panic!("{config:?} was not refused: {:?}", other.map(|_| ())),
        }
        store = Store::open_in_memory(key()).unwrap();
    }
    // Nothing was written: a store file a refused create was given takes a valid account afterwards.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let bad = ClientConfig::new("ws://relay.test/v1/ws", huge_name.as_str());
    assert!(Client::create(Store::create(&path, key()).unwrap(), bad, T0).is_err());
    let mut store = Store::open(&path, key()).unwrap();
    {
        let tx = store.transaction().unwrap();
        assert!(tx.account().unwrap().is_none(), "a refused create stored an account");
        tx.commit().unwrap();
    }
    // A client at both limits hands out a link another client adds.
    let url = format!("ws://{}", "r".repeat(crate::limits::MAX_LINK_TEXT_BYTES - "ws://".len()));
    let name = "\u{e4}".repeat(crate::limits::MAX_LINK_TEXT_BYTES / 2);
    let eve = Client::create(store, ClientConfig::new(url.as_str(), name.as_str()), T0).unwrap();
    let mut alice = new_client("Alice");
    alice.add_contact(&eve.contact_link().unwrap(), T0).unwrap();
    // Opening with a config that fails the check is refused too.
    drop(eve);
    let reopened = Client::open(Store::open(&path, key()).unwrap(), ClientConfig::new("ws://x", "a\nb"));
    assert!(matches!(reopened, Err(Error::Malformed { what: "display name" })));
}

#[test]
fn safety_numbers_match_and_verify() {
    let (_relay, mut alice, mut bob) = pair();
    let a = alice.safety_number(&bob.user_key().unwrap()).unwrap();
    let b = bob.safety_number(&alice.user_key().unwrap()).unwrap();
    assert_eq!(a.digits(), b.digits());
    assert!(alice.verify(&bob.user_key().unwrap(), &b.qr_payload()).unwrap());
    assert!(alice.contacts().unwrap().iter().any(|c| c.verified));
    let stranger = crate::UserIdentity::generate(&mut crate::test_util::rng(1)).user_key();
    let wrong = SafetyNumber::new(&stranger, &alice.user_key().unwrap());
    assert!(!bob.verify(&alice.user_key().unwrap(), &wrong.qr_payload()).unwrap());
    assert!(!bob.contacts().unwrap().iter().any(|c| c.verified));
}

#[test]
fn garbage_from_the_relay_is_an_error_or_a_dropped_message_never_a_panic() {
    let (mut relay, mut alice, mut bob) = pair();
    assert!(bob.handle_incoming(b"\xff\xff\xff", T0).is_err());
    let junk =
        relay::Envelope { id: 9_999, sender_device: vec![], payload: vec![1, 2, 3], received_at: 0, sealed: true };
    let events = bob.handle_envelopes(vec![junk], T0).unwrap();
    assert_eq!(events, vec![Event::Undecryptable { from: None, reason: ErrorKind::Decryption }]);
    // Still works afterwards.
    alice.send_text(&direct(&bob), "still fine", T0).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T0);
    assert_eq!(texts(&events[1]), ["still fine"]);
}

#[test]
fn state_survives_reopening_the_store() {
    let dir = std::env::temp_dir().join(format!("hush-client-reopen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bob.db");
    let key = || Unlock::Key(Zeroizing::new([3; 32]));
    let mut relay = TestRelay::default();
    let mut alice = new_client("Alice");
    let config = ClientConfig::new("ws://relay.test/v1/ws", "Bob");
    let mut bob = Client::create(Store::create(&path, key()).unwrap(), config.clone(), T0).unwrap();
    relay.connect(&mut alice, T0);
    relay.connect(&mut bob, T0);
    relay.pump(&mut [&mut alice, &mut bob], T0);
    alice.add_contact(&bob.contact_link().unwrap(), T0).unwrap();
    bob.add_contact(&alice.contact_link().unwrap(), T0).unwrap();
    alice.send_text(&direct(&bob), "before", T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], T0);
    let bob_key = bob.user_key().unwrap();
    relay.disconnect(&mut bob);
    drop(bob);

    let mut bob = Client::open(Store::open(&path, key()).unwrap(), config).unwrap();
    assert_eq!(bob.user_key().unwrap(), bob_key);
    relay.connect(&mut bob, T0 + 1);
    alice.send_text(&direct(&bob), "after", T0 + 1).unwrap();
    bob.send_text(&direct(&alice), "back", T0 + 2).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 2);
    assert_eq!(texts(&events[1]), ["after"]);
    assert_eq!(texts(&events[0]), ["back"]);
    assert_eq!(history_texts(&mut bob, &direct(&alice)), ["before", "after", "back"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn debug_shows_no_secret() {
    let c = new_client("Dora");
    let text = format!("{c:?}");
    crate::test_util::assert_no_secret(&text, c.token.as_ref().unwrap().to_bytes().as_slice());
    crate::test_util::assert_no_secret(&text, c.user_identity.as_ref().unwrap().secret_bytes().as_slice());
}

#[test]
fn upload_tokens_are_requested_through_the_client() {
    let (mut relay, mut alice, mut bob) = pair();
    let request = alice.request_upload_token().unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T0);
    // The in-memory relay refuses uploads: the answer still names the request.
    assert_eq!(events[0], vec![Event::UploadToken { request, token: None }]);
    relay.disconnect(&mut alice);
    assert!(alice.request_upload_token().is_err(), "offline");
}

// ---- Linking a second device, and what several devices of one user see ---------------------------

fn unread(c: &mut Client, conversation: &ConversationId) -> u32 {
    c.conversations().unwrap().iter().find(|c| c.id == *conversation).map_or(0, |c| c.unread)
}

fn new_pending(name: &str) -> Client {
    let store = Store::open_in_memory(Unlock::Key(Zeroizing::new([8; 32]))).unwrap();
    Client::create_for_link(store, ClientConfig::new("ws://relay.test/v1/ws", name), T0).unwrap()
}

/// What a refused link must leave as it was: the own device list, the own-devices peer, and
/// nothing queued for the relay.
fn link_state(c: &mut Client) -> (Vec<u8>, Option<Vec<u8>>, usize) {
    let list = c.own_device_list().unwrap().to_bytes();
    let me = c.user_key().unwrap();
    let tx = c.store.transaction().unwrap();
    let own = tx.peer(&me).unwrap().map(|p| p.to_bytes().to_vec());
    let outbox = tx.outbox_due(u64::MAX).unwrap().len();
    tx.commit().unwrap();
    (list, own, outbox + c.take_outgoing().len())
}

/// Alice (device A) and Bob as in [`pair`], plus Alice's second device B, linked.
pub(super) fn linked_trio() -> (TestRelay, Client, Client, Client) {
    let (mut relay, mut alice, mut bob) = pair();
    let mut alice2 = new_pending("Alice's laptop");
    assert!(!alice2.is_linked());
    assert_eq!(alice2.user_key(), Err(Error::NotLinked));
    relay.connect(&mut alice2, T0);
    relay.pump(&mut [&mut alice, &mut bob, &mut alice2], T0);
    let uri = alice2.link_request().unwrap();
    assert!(uri.starts_with(crate::link::LINK_URI_PREFIX));
    assert_eq!(alice.link_device(&uri, T0 + 1).unwrap(), alice2.device_key());
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut alice2], T0 + 1);
    assert_eq!(events[2], vec![Event::DeviceLinked { user: alice.user_key().unwrap() }]);
    (relay, alice, bob, alice2)
}

#[test]
fn a_linked_device_gets_the_user_and_the_contacts() {
    let (mut relay, mut alice, mut bob, mut alice2) = linked_trio();
    assert!(alice2.is_linked());
    assert_eq!(alice2.user_key().unwrap(), alice.user_key().unwrap());
    assert_eq!(alice2.own_device_list().unwrap(), alice.own_device_list().unwrap());
    assert_eq!(alice2.own_device_list().unwrap().devices().len(), 2);
    let contacts = alice2.contacts().unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!((contacts[0].user_key, contacts[0].state), (bob.user_key().unwrap(), ContactState::Accepted));
    assert!(contacts[0].delivery_token.is_some());
    // The same user and delivery token (the name hint is this device's configured name).
    let (l1, l2) = (alice.contact_link().unwrap(), alice2.contact_link().unwrap());
    assert_eq!((l2.user_key, l2.delivery_token), (l1.user_key, l1.delivery_token));
    assert!(alice2.conversations().unwrap().iter().any(|c| c.id == direct(&bob)));
    assert_eq!(alice2.link_request().map(|_| ()), Err(Error::AlreadyLinked));
    relay.pump(&mut [&mut alice, &mut bob, &mut alice2], T0 + 2);
    assert_eq!(relay.mailbox_len(&alice2), 0, "the approval was acked");
}

#[test]
fn both_devices_see_each_others_sends_and_the_peers_replies() {
    let (mut relay, mut alice, mut bob, mut alice2) = linked_trio();
    let to_bob = direct(&bob);
    let to_alice = direct(&alice);

    // Sent on A: Bob gets it, and B shows it as sent by Alice.
    let from_a = alice.send_text(&to_bob, "from A", T0 + 10).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut alice2], T0 + 10);
    assert_eq!(texts(&events[1]), ["from A"]);
    // A's message names list version 2, which Bob fetches before reading it: his receipt reaches B too.
    assert!(
        matches!(&events[2][..], [Event::Message(m), Event::Receipt { .. }] if m.id == from_a && m.sender == alice.user_key().unwrap())
    );
    let synced = alice2.message(&to_bob, &from_a).unwrap().unwrap();
    assert_eq!((synced.sender, synced.status), (alice.user_key().unwrap(), MessageStatus::Delivered));

    // Sent on B: Bob learns the new device from the message itself (his pinned list is older), and
    // A gets the sync.
    alice2.send_text(&to_bob, "from B", T0 + 20).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut alice2], T0 + 20);
    assert_eq!(texts(&events[1]), ["from B"]);
    assert_eq!(texts(&events[0]), ["from B"]);
    assert!(!events[1].iter().any(|e| matches!(e, Event::Undecryptable { .. })));

    // Bob now writes to both devices.
    bob.send_text(&to_alice, "hi both", T0 + 30).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut alice2], T0 + 30);
    assert_eq!(texts(&events[0]), ["hi both"]);
    assert_eq!(texts(&events[2]), ["hi both"]);

    let expected = ["from A", "from B", "hi both"];
    assert_eq!(history_texts(&mut alice, &to_bob), expected);
    assert_eq!(history_texts(&mut alice2, &to_bob), expected);
    assert_eq!(history_texts(&mut bob, &to_alice), expected);

    // Edits, reactions, deletes and reading follow too.
    alice.edit(&to_bob, &from_a, "from A, edited", T0 + 40).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut alice2], T0 + 40);
    assert!(events[2].contains(&Event::Edited { conversation: to_bob, id: from_a }));
    let (page, _) = alice2.history(&to_bob, None, 1).unwrap();
    let hi = page[0].id;
    alice2.react(&to_bob, &hi, "👍", false, T0 + 50).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut alice2], T0 + 50);
    assert_eq!(
        alice.message(&to_bob, &hi).unwrap().unwrap().reactions,
        vec![(alice.user_key().unwrap(), "👍".to_owned())]
    );
    assert_eq!(bob.message(&to_alice, &hi).unwrap().unwrap().reactions.len(), 1);
    assert_eq!(unread(&mut alice2, &to_bob), 1);
    alice.mark_read(&to_bob, T0 + 60).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut alice2], T0 + 60);
    assert!(events[2].contains(&Event::ConversationRead { conversation: to_bob }));
    assert_eq!(unread(&mut alice2, &to_bob), 0);
    alice2.delete(&to_bob, &from_a, T0 + 70).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut alice2], T0 + 70);
    assert!(events[0].contains(&Event::Deleted { conversation: to_bob, id: from_a }));
    assert!(alice.message(&to_bob, &from_a).unwrap().unwrap().deleted);
    assert!(bob.message(&to_alice, &from_a).unwrap().unwrap().deleted);
    for c in [&alice, &bob, &alice2] {
        assert_eq!(relay.mailbox_len(c), 0);
    }
}

#[test]
fn a_third_device_linked_by_the_primary_reaches_everyone() {
    let (mut relay, mut alice, mut bob, mut alice2) = linked_trio();
    let mut alice3 = new_pending("Alice's tablet");
    relay.connect(&mut alice3, T0);
    relay.pump(&mut [&mut alice, &mut bob, &mut alice2, &mut alice3], T0);
    let uri = alice3.link_request().unwrap();
    // Only the primary holds the user key: the linked laptop cannot approve (§12.10).
    let before = link_state(&mut alice2);
    assert_eq!(alice2.link_device(&uri, T0 + 5).map(|_| ()), Err(Error::NotPrimary));
    assert_eq!(link_state(&mut alice2), before);
    alice.link_device(&uri, T0 + 5).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut alice2, &mut alice3], T0 + 5);
    assert!(alice3.is_linked() && !alice3.is_primary() && alice.is_primary());
    assert_eq!(alice3.own_device_list().unwrap().devices().len(), 3);
    // Device B learns of the third device when it writes (its own list is refetched).
    alice3.send_text(&direct(&bob), "from C", T0 + 10).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut alice2, &mut alice3], T0 + 10);
    for (i, e) in events.iter().take(3).enumerate() {
        assert_eq!(texts(e), ["from C"], "client {i}");
    }
    assert_eq!(alice2.own_device_list().unwrap().devices().len(), 3);
    alice.send_text(&direct(&bob), "from A", T0 + 20).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut alice2, &mut alice3], T0 + 20);
    for (i, e) in events.iter().enumerate().skip(1) {
        assert_eq!(texts(e), ["from A"], "client {i}");
    }
}

#[test]
fn bad_foreign_and_replayed_link_uris_change_nothing() {
    let (mut relay, mut alice, mut bob) = pair();
    let before = link_state(&mut alice);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    let version_2 = {
        let other = crate::Account::new(&mut rng);
        let p = crate::link::proto::LinkRequest {
            version: 2,
            prekey_bundle: other.prekey_bundle(None, None).unwrap().to_bytes(),
            link_secret: vec![1; 16],
        };
        use base64::Engine as _;
        format!("hush://link/{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(p.encode_to_vec()))
    };
    let own = crate::link::LinkRequest::new(&mut rng, &alice.account).unwrap().to_uri();
    let contact = bob.contact_link().unwrap().to_url();
    let huge = format!("hush://link/{}", "A".repeat(crate::link::MAX_LINK_URI_CHARS));
    let cases: Vec<(&str, Error)> = vec![
        ("", Error::Malformed { what: "link URI" }),
        ("not a uri", Error::Malformed { what: "link URI" }),
        (&contact, Error::Malformed { what: "link URI" }),
        ("hush://link/!!!", Error::Malformed { what: "link URI" }),
        ("hush://link/AAAA", Error::Malformed { what: "link request" }),
        (&huge, Error::TooLarge { what: "link URI", size: huge.len(), max: crate::link::MAX_LINK_URI_CHARS }),
        (&version_2, Error::UnsupportedVersion { what: "link request", version: 2 }),
        (&own, Error::DuplicateDevice),
    ];
    for (uri, expected) in cases {
        let got = alice.link_device(uri, T0 + 1).map(|_| ());
        let got = match got {
            Err(Error::Malformed { .. }) if matches!(expected, Error::Malformed { .. }) => Ok(()),
            Err(e) if e == expected => Ok(()),
            other => Err(other),
        };
        assert_eq!(got, Ok(()), "{uri:.40}");
        assert_eq!(link_state(&mut alice), before, "{uri:.40}");
    }

    // A waiting device cannot approve anyone.
    let mut pending = new_pending("P");
    assert_eq!(pending.link_device(&own, T0).map(|_| ()), Err(Error::NotLinked));

    // The same URI twice: the second time the device is already listed.
    let mut alice2 = new_pending("Alice 2");
    relay.connect(&mut alice2, T0);
    relay.pump(&mut [&mut alice, &mut bob, &mut alice2], T0);
    let uri = alice2.link_request().unwrap();
    alice.link_device(&uri, T0 + 2).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut alice2], T0 + 2);
    assert!(alice2.is_linked());
    let linked = link_state(&mut alice);
    assert_eq!(alice.link_device(&uri, T0 + 3).map(|_| ()), Err(Error::DuplicateDevice));
    assert_eq!(link_state(&mut alice), linked);
}

#[test]
fn an_approval_for_a_request_the_device_did_not_show_is_refused() {
    let (mut relay, mut alice, mut bob) = pair();
    let mut victim = new_pending("V");
    relay.connect(&mut victim, T0);
    relay.pump(&mut [&mut alice, &mut bob, &mut victim], T0);
    // A request with the victim's bundle but another link secret (not the one the victim shows).
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    let forged = crate::link::LinkRequest::new(&mut rng, &victim.account).unwrap().to_uri();
    alice.link_device(&forged, T0 + 1).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut victim], T0 + 1);
    assert_eq!(events[2], vec![Event::Undecryptable { from: None, reason: ErrorKind::BadInput }]);
    assert!(!victim.is_linked());
    assert_eq!(relay.mailbox_len(&victim), 0, "dropped and acked");
    // Its own request still works afterwards.
    let uri = victim.link_request().unwrap();
    assert!(crate::link::LinkRequest::from_uri(&uri).is_ok());
    assert_eq!(victim.send_text(&direct(&bob), "x", T0).map(|_| ()), Err(Error::NotLinked));
    assert_eq!(victim.contact_link().map(|_| ()), Err(Error::NotLinked));
}

#[test]
fn a_waiting_device_survives_a_restart_and_links_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pending.db");
    let key = || Unlock::Key(Zeroizing::new([5; 32]));
    let config = ClientConfig::new("ws://relay.test/v1/ws", "Alice 2");
    let (mut relay, mut alice, mut bob) = pair();
    let mut alice2 = Client::create_for_link(Store::create(&path, key()).unwrap(), config.clone(), T0).unwrap();
    let uri = alice2.link_request().unwrap();
    drop(alice2);
    let mut alice2 = Client::open(Store::open(&path, key()).unwrap(), config.clone()).unwrap();
    assert_eq!(alice2.link_request().unwrap(), uri, "the same request after a restart");
    relay.connect(&mut alice2, T0);
    relay.pump(&mut [&mut alice, &mut bob, &mut alice2], T0);
    alice.link_device(&uri, T0 + 1).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut alice2], T0 + 1);
    assert!(alice2.is_linked());
    drop(alice2);
    let mut alice2 = Client::open(Store::open(&path, key()).unwrap(), config).unwrap();
    assert_eq!(alice2.user_key().unwrap(), alice.user_key().unwrap());
    relay.connect(&mut alice2, T0 + 2);
    bob.send_text(&direct(&alice), "hello", T0 + 2).unwrap();
    alice2.send_text(&direct(&bob), "back", T0 + 3).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut alice2], T0 + 3);
    assert_eq!(texts(&events[1]), ["back"]);
    assert!(texts(&events[0]).contains(&"back".to_owned()));
}
