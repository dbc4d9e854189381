//! Two-party conversations over many DH ratchet turns, out-of-order delivery, limits, and
//! simultaneous initiation.

mod common;

use common::{PQ, Pair};
use hush_core::limits::{MAX_ARCHIVED_SESSIONS, MAX_FORWARD_JUMP, MAX_SKIPPED_KEYS};
use hush_core::{Account, Error, SessionConfig, SessionMessage, SessionRecord};

#[test]
fn many_ratchet_turns() {
    let mut p = Pair::new(1);
    for turn in 0..200u32 {
        let burst = 1 + turn % 4;
        for i in 0..burst {
            let text = format!("a{turn}.{i}");
            let m = p.a_send(text.as_bytes());
            assert_eq!(p.b_recv(&m).unwrap(), text.as_bytes());
        }
        for i in 0..(turn % 3) {
            let text = format!("b{turn}.{i}");
            let m = p.b_send(text.as_bytes());
            assert_eq!(p.a_recv(&m).unwrap(), text.as_bytes());
        }
    }
    assert!(p.a.is_post_quantum() && p.b.is_post_quantum());
}

#[test]
fn prekey_messages_until_first_reply() {
    let mut p = Pair::new(2);
    let m1 = p.a_send(b"1");
    let m2 = p.a_send(b"2");
    assert!(matches!(SessionMessage::from_bytes(&m1).unwrap(), SessionMessage::Prekey(_)));
    assert!(p.a.awaiting_reply());
    // Out of order, both prekey messages land in the same session.
    assert_eq!(p.b_recv(&m2).unwrap(), b"2");
    assert_eq!(p.b_recv(&m1).unwrap(), b"1");
    assert_eq!(p.b.archived_count(), 0);
    let r = p.b_send(b"r");
    assert!(matches!(SessionMessage::from_bytes(&r).unwrap(), SessionMessage::Ratchet(_)));
    p.a_recv(&r).unwrap();
    assert!(!p.a.awaiting_reply());
    let m3 = p.a_send(b"3");
    assert!(matches!(SessionMessage::from_bytes(&m3).unwrap(), SessionMessage::Ratchet(_)));
}

#[test]
fn out_of_order_across_ratchet_steps() {
    let mut p = Pair::established(3);
    let early: Vec<_> = (0..5).map(|i| p.a_send(format!("x{i}").as_bytes())).collect();
    let reply = p.b_send(b"turn");
    p.a_recv(&reply).unwrap();
    let late: Vec<_> = (0..3).map(|i| p.a_send(format!("y{i}").as_bytes())).collect();
    // The new chain first, then the old chain's messages, newest first.
    for (i, m) in late.iter().enumerate().rev() {
        assert_eq!(p.b_recv(m).unwrap(), format!("y{i}").as_bytes());
    }
    for (i, m) in early.iter().enumerate().rev() {
        assert_eq!(p.b_recv(m).unwrap(), format!("x{i}").as_bytes());
    }
    for m in early.iter().chain(&late) {
        assert_eq!(p.b_recv(m), Err(Error::DuplicateMessage));
    }
}

#[test]
fn replay_is_duplicate() {
    let mut p = Pair::established(4);
    let m = p.a_send(b"once");
    assert_eq!(p.b_recv(&m).unwrap(), b"once");
    assert_eq!(p.b_recv(&m), Err(Error::DuplicateMessage));
    let next = p.a_send(b"next");
    assert_eq!(p.b_recv(&next).unwrap(), b"next");
}

#[test]
fn forward_jump_limit_leaves_session_usable() {
    let mut p = Pair::established(5);
    let sent: Vec<_> = (0..=MAX_FORWARD_JUMP + 1).map(|_| p.a.encrypt(&mut p.rng, b"m").unwrap()).collect();
    let far = sent.last().unwrap();
    assert!(matches!(p.b_recv(far), Err(Error::TooFarAhead { .. })));
    // Bob's state is unchanged: he still sends, and a message within the limit still decrypts...
    let r = p.b_send(b"still here");
    assert_eq!(p.a_recv(&r).unwrap(), b"still here");
    assert_eq!(p.b_recv(&sent[5]).unwrap(), b"m");
    // ...after which the far message is within reach.
    assert_eq!(p.b_recv(far).unwrap(), b"m");
}

#[test]
fn skipped_keys_are_capped_oldest_dropped() {
    let mut p = Pair::established(6);
    let skipped: Vec<_> = (0..MAX_SKIPPED_KEYS + 10).map(|_| p.a_send(b"s")).collect();
    let last = p.a_send(b"last");
    assert_eq!(p.b_recv(&last).unwrap(), b"last");
    // The oldest ten keys were dropped; their messages now count as already handled.
    assert_eq!(p.b_recv(&skipped[0]), Err(Error::DuplicateMessage));
    assert_eq!(p.b_recv(&skipped[9]), Err(Error::DuplicateMessage));
    assert_eq!(p.b_recv(&skipped[10]).unwrap(), b"s");
    assert_eq!(p.b_recv(skipped.last().unwrap()).unwrap(), b"s");
}

#[test]
fn simultaneous_initiation_converges() {
    let mut rng = common::rng(7);
    let mut alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    let a_bundle = alice.prekey_bundle(None, None).unwrap();
    let b_bundle = bob.prekey_bundle(None, None).unwrap();
    let (mut a, mut b) = (SessionRecord::new(), SessionRecord::new());
    a.initiate(&mut rng, alice.identity(), &b_bundle, PQ).unwrap();
    b.initiate(&mut rng, bob.identity(), &a_bundle, PQ).unwrap();
    let from_a = a.encrypt(&mut rng, b"from a").unwrap();
    let from_b = b.encrypt(&mut rng, b"from b").unwrap();
    assert_eq!(b.decrypt(&mut rng, &mut bob, &from_a, PQ).unwrap(), b"from a");
    assert_eq!(a.decrypt(&mut rng, &mut alice, &from_b, PQ).unwrap(), b"from b");
    assert_eq!((a.archived_count(), b.archived_count()), (1, 1));
    // Each side now sends on a different session; the other finds it in its archive and promotes it.
    for round in 0..5 {
        let m = a.encrypt(&mut rng, format!("a{round}").as_bytes()).unwrap();
        assert_eq!(b.decrypt(&mut rng, &mut bob, &m, PQ).unwrap(), format!("a{round}").as_bytes());
        let m = b.encrypt(&mut rng, format!("b{round}").as_bytes()).unwrap();
        assert_eq!(a.decrypt(&mut rng, &mut alice, &m, PQ).unwrap(), format!("b{round}").as_bytes());
    }
}

#[test]
fn archive_is_bounded() {
    let mut rng = common::rng(8);
    let alice = Account::new(&mut rng);
    let bob = Account::new(&mut rng);
    let bundle = bob.prekey_bundle(None, None).unwrap();
    let mut a = SessionRecord::new();
    for _ in 0..MAX_ARCHIVED_SESSIONS + 5 {
        a.initiate(&mut rng, alice.identity(), &bundle, PQ).unwrap();
    }
    assert_eq!(a.archived_count(), MAX_ARCHIVED_SESSIONS);
}

#[test]
fn classical_only_when_allowed() {
    let mut rng = common::rng(9);
    let alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    let full = bob.prekey_bundle(None, None).unwrap();
    let classical = hush_core::PrekeyBundle::new(full.device, full.signed_prekey, full.one_time_prekey, None).unwrap();
    let mut a = SessionRecord::new();
    assert_eq!(a.initiate(&mut rng, alice.identity(), &classical, PQ), Err(Error::PostQuantumRequired));
    let allow = SessionConfig { allow_classical: true };
    a.initiate(&mut rng, alice.identity(), &classical, allow).unwrap();
    assert!(!a.is_post_quantum());
    let m = a.encrypt(&mut rng, b"classical").unwrap();
    let mut b = SessionRecord::new();
    // Bob refuses a classical session unless he allows it too, and nothing changes when he refuses.
    assert_eq!(b.decrypt(&mut rng, &mut bob, &m, PQ), Err(Error::ClassicalRefused));
    assert!(!b.has_session());
    assert_eq!(b.decrypt(&mut rng, &mut bob, &m, allow).unwrap(), b"classical");
    assert!(!b.is_post_quantum());
}

#[test]
fn one_time_prekeys_consumed_on_success_only() {
    let mut p = Pair::new(10);
    assert_eq!((p.bob.one_time_prekey_count(), p.bob.kem_one_time_count()), (1, 1));
    let m = p.a_send(b"hello");
    let mut bad = m.clone();
    let n = bad.len();
    bad[n - 3] ^= 0x40;
    assert!(p.b_recv(&bad).is_err());
    assert_eq!((p.bob.one_time_prekey_count(), p.bob.kem_one_time_count()), (1, 1));
    assert!(!p.b.has_session());
    p.b_recv(&m).unwrap();
    assert_eq!((p.bob.one_time_prekey_count(), p.bob.kem_one_time_count()), (0, 0));
}

#[test]
fn plaintext_limit() {
    let mut p = Pair::established(11);
    let big = vec![7u8; hush_core::limits::MAX_PLAINTEXT_BYTES];
    let m = p.a_send(&big);
    assert_eq!(p.b_recv(&m).unwrap(), big);
    let too_big = vec![7u8; hush_core::limits::MAX_PLAINTEXT_BYTES + 1];
    assert!(matches!(p.a.encrypt(&mut p.rng, &too_big), Err(Error::TooLarge { .. })));
}
