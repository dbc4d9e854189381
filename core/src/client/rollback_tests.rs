//! A store file put back from an older copy (docs/PROTOCOL.md §14.16): the client refuses to send
//! with the keys it holds, which it may have used since the copy was made.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;

use zeroize::Zeroizing;

use super::test_relay::TestRelay;
use super::tests::new_client;
use super::*;
use crate::store::{ConversationId, Unlock};

const T0: u64 = 1_700_000_000_000;

fn key() -> Unlock {
    Unlock::Key(Zeroizing::new([0xa1; 32]))
}

fn config() -> ClientConfig {
    ClientConfig::new("ws://relay.test/v1/ws", "Alice")
}

/// Alice (a store file at `path`) and Bob (in memory), contacts of each other, one text each way.
fn talking(path: &Path) -> (TestRelay, Client, Client) {
    let mut relay = TestRelay::default();
    let mut alice = Client::create(Store::create(path, key()).unwrap(), config(), T0).unwrap();
    let mut bob = new_client("Bob");
    relay.connect(&mut alice, T0);
    relay.connect(&mut bob, T0);
    relay.pump(&mut [&mut alice, &mut bob], T0);
    alice.add_contact(&bob.contact_link().unwrap(), T0).unwrap();
    bob.add_contact(&alice.contact_link().unwrap(), T0).unwrap();
    exchange(&mut relay, &mut alice, &mut bob, "one", T0);
    (relay, alice, bob)
}

fn exchange(relay: &mut TestRelay, alice: &mut Client, bob: &mut Client, text: &str, now: u64) {
    alice.send_text(&ConversationId::Direct(bob.user_key().unwrap()), text, now).unwrap();
    bob.send_text(&ConversationId::Direct(alice.user_key().unwrap()), text, now).unwrap();
    let events = relay.pump(&mut [alice, bob], now);
    assert!(events.iter().all(|e| e.iter().any(|e| matches!(e, Event::Message(_)))), "{events:?}");
}

#[test]
fn a_store_put_back_from_an_older_copy_never_sends_with_its_old_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.db");
    let (mut relay, mut alice, mut bob) = talking(&path);
    relay.disconnect(&mut alice);
    drop(alice);
    // The copy: a backup, a snapshot, or an attacker with the device. Closing checkpointed the WAL,
    // so the file is the whole store.
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();

    let mut alice = Client::open(Store::open(&path, key()).unwrap(), config()).unwrap();
    relay.connect(&mut alice, T0 + 1);
    exchange(&mut relay, &mut alice, &mut bob, "two", T0 + 1);
    relay.disconnect(&mut alice);
    drop(alice);
    std::fs::copy(&copy, &path).unwrap();

    // The older copy is refused before anything is written…
    let Err(Error::StoreRolledBack { stored, anchored: Some(anchored) }) = Store::open(&path, key()) else {
        panic!("the older copy opened read-write")
    };
    assert!(stored < anchored, "{stored} {anchored}");
    // …and read-only, it reads what it held, but sends nothing: no message, no prekeys, no frame.
    let store = Store::open_read_only(&path, key()).unwrap();
    let mut alice = Client::open(store, config()).unwrap();
    let bobs = ConversationId::Direct(bob.user_key().unwrap());
    assert_eq!(alice.history(&bobs, None, 10).unwrap().0.len(), 2, "one sent, one received");
    assert_eq!(alice.send_text(&bobs, "three", T0 + 2), Err(Error::StoreReadOnly));
    alice.on_connected(T0 + 2).unwrap();
    assert!(alice.take_outgoing().is_empty());
    assert_eq!(alice.tick(T0 + 2).unwrap_or_default(), Vec::new());
    assert!(alice.take_outgoing().is_empty());
    drop(alice);
    // Reading it changed nothing: it is refused again.
    assert!(matches!(Store::open(&path, key()), Err(Error::StoreRolledBack { .. })));
}

#[test]
fn a_store_moved_without_its_anchor_opens_only_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.db");
    let (mut relay, mut alice, _bob) = talking(&path);
    relay.disconnect(&mut alice);
    drop(alice);
    let moved = dir.path().join("moved.db");
    std::fs::rename(&path, &moved).unwrap();
    assert!(matches!(Store::open(&moved, key()), Err(Error::StoreRolledBack { anchored: None, .. })));
    Client::open(Store::open_read_only(&moved, key()).unwrap(), config()).unwrap();
}
