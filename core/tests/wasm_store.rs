//! The encrypted store at run time on `wasm32-unknown-unknown` (rusqlite on sqlite-wasm-rs, the OS
//! RNG through `crypto.getRandomValues`): an in-memory store keeps a session's state across
//! transactions and the restored state decrypts new messages; history round-trips; a store image
//! (what the browser keeps in IndexedDB) reopens with its passphrase only.
//!
//! Run by `scripts/wasm.sh test` through `wasm-bindgen-test-runner` (the wasm32 runner in
//! `.cargo/config.toml`): in Node by default, and in headless Chromium with
//! `WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=/usr/bin/chromedriver`. On other targets this file
//! compiles to nothing.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hush_core::store::{ConversationId, MessageStatus, StoredMessage};
use hush_core::{
    Account, Argon2Params, Content, ContentBody, Error, PeerUser, SessionConfig, SignedDeviceList, Store, Unlock,
    UserIdentity,
};
use rand_core::OsRng;
use wasm_bindgen_test::wasm_bindgen_test;
use zeroize::Zeroizing;

const PQ: SessionConfig = SessionConfig { allow_classical: false };
/// Argon2id parameters small enough for a test (the real ones are chosen by the caller).
const FAST: Argon2Params = Argon2Params { m_cost_kib: 256, t_cost: 1, p_cost: 1 };

/// One user with one device, and its own store.
struct Side {
    user: UserIdentity,
    list: SignedDeviceList,
    store: Store,
}

impl Side {
    fn new(unlock: Unlock) -> (Self, Account) {
        let user = UserIdentity::generate(&mut OsRng);
        let account = Account::new(&mut OsRng);
        let list = SignedDeviceList::sign(&user, 1, &[account.device_keys()], 1_700_000_000_000).unwrap();
        (Self { user, list, store: Store::open_in_memory(unlock).unwrap() }, account)
    }

    /// Writes the account and the peer in one transaction.
    fn save(&mut self, account: &Account, peer: &PeerUser) {
        let tx = self.store.transaction().unwrap();
        tx.put_account(account).unwrap();
        tx.put_peer(peer).unwrap();
        tx.commit().unwrap();
    }

    /// Reads the account and the peer back in a new transaction.
    fn load(&mut self, peer: &UserIdentity) -> (Account, PeerUser) {
        let tx = self.store.transaction().unwrap();
        let account = tx.account().unwrap().expect("account stored");
        let peer = tx.peer(&peer.user_key()).unwrap().expect("peer stored");
        tx.commit().unwrap();
        (account, peer)
    }
}

#[wasm_bindgen_test]
fn session_state_survives_the_store_and_decrypts_new_messages() {
    let (mut alice, alice_account) = Side::new(Unlock::Key(Zeroizing::new([7; 32])));
    let (mut bob, mut bob_account) = Side::new(Unlock::Passphrase(Zeroizing::new("correct horse".into()), FAST));

    // Alice fetched Bob's device list and prekey bundle and opens a session.
    let otk = bob_account.generate_one_time_prekeys(&mut OsRng, 1).unwrap();
    let kem = bob_account.generate_kem_prekeys(&mut OsRng, 1).unwrap();
    let bundle = bob_account.prekey_bundle(Some(otk[0].id), Some(kem[0].id)).unwrap();
    let mut alice_bob = PeerUser::new(bob.list.clone());
    alice_bob.add_session(&mut OsRng, alice_account.identity(), &bundle, PQ).unwrap();
    let first = alice_bob.encrypt(&mut OsRng, b"hello Bob", None).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].device, bob_account.device_key());
    alice.save(&alice_account, &alice_bob);
    drop((alice_account, alice_bob));

    // Bob receives the first message, which consumes his one-time prekeys, and saves everything.
    let mut bob_alice = PeerUser::new(alice.list.clone());
    let from = alice.list.devices()[0].device_key();
    let pt = bob_alice.decrypt(&mut OsRng, &mut bob_account, &from, &first[0].message, PQ).unwrap();
    assert_eq!(pt, b"hello Bob");
    bob.save(&bob_account, &bob_alice);
    drop((bob_account, bob_alice));

    // Both restart from their stores. Bob answers; Alice's restored state decrypts it.
    let (bob_account, mut bob_alice) = bob.load(&alice.user);
    let reply = bob_alice.encrypt(&mut OsRng, b"hi Alice", None).unwrap();
    bob.save(&bob_account, &bob_alice);
    let (mut alice_account, mut alice_bob) = alice.load(&bob.user);
    let bob_device = bob.list.devices()[0].device_key();
    let pt = alice_bob.decrypt(&mut OsRng, &mut alice_account, &bob_device, &reply[0].message, PQ).unwrap();
    assert_eq!(pt, b"hi Alice");
    alice.save(&alice_account, &alice_bob);

    // A new message after both restored: the ratchet advanced and was persisted on both sides.
    let (_, mut alice_bob) = alice.load(&bob.user);
    let next = alice_bob.encrypt(&mut OsRng, b"second message", None).unwrap();
    let (mut bob_account, mut bob_alice) = bob.load(&alice.user);
    let pt = bob_alice.decrypt(&mut OsRng, &mut bob_account, &from, &next[0].message, PQ).unwrap();
    assert_eq!(pt, b"second message");
    // The first message was consumed before the save: replaying it now is refused, as natively.
    let replay = bob_alice.decrypt(&mut OsRng, &mut bob_account, &from, &first[0].message, PQ);
    assert!(replay.is_err(), "a replayed first message decrypted again");

    bob.save(&bob_account, &bob_alice);

    // A rolled-back transaction leaves the stored state as it was.
    let saved = bob_alice.to_bytes();
    let tx = bob.store.transaction().unwrap();
    assert!(tx.delete_peer(&alice.user.user_key()).unwrap());
    tx.rollback().unwrap();
    let (_, still) = bob.load(&alice.user);
    assert_eq!(*still.to_bytes(), *saved);
}

#[wasm_bindgen_test]
fn history_round_trips_newest_first() {
    let (mut me, _) = Side::new(Unlock::Key(Zeroizing::new([1; 32])));
    let peer = UserIdentity::generate(&mut OsRng).user_key();
    let conversation = ConversationId::Direct(peer);
    let texts = ["first", "second", "third 🎉"];
    let stored: Vec<StoredMessage> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let at = 1_700_000_000_000 + i as u64 * 1000;
            let content = Content::new(&mut OsRng, at, ContentBody::Text((*t).to_owned()));
            StoredMessage::from_content(conversation, peer, &content, at + 5, MessageStatus::Received).unwrap()
        })
        .collect();

    let tx = me.store.transaction().unwrap();
    for m in &stored {
        assert!(tx.insert_message(m).unwrap());
    }
    // The same message id again is a duplicate, not a second row.
    assert!(!tx.insert_message(&stored[0]).unwrap());
    tx.commit().unwrap();

    let tx = me.store.transaction().unwrap();
    assert_eq!(tx.message(&conversation, &stored[1].id).unwrap().as_ref(), Some(&stored[1]));
    assert!(tx.message(&conversation, &[9; 16]).unwrap().is_none());
    let (page, cursor) = tx.history(&conversation, None, 2).unwrap();
    assert_eq!(page, vec![stored[2].clone(), stored[1].clone()]);
    let (rest, end) = tx.history(&conversation, cursor, 2).unwrap();
    assert_eq!(rest, vec![stored[0].clone()]);
    assert!(end.is_none());
    let ContentBody::Text(text) = page[0].content().unwrap().expect("not deleted").body else {
        panic!("not a text message")
    };
    assert_eq!(text, "third 🎉");
    // Another conversation sees none of it.
    let other = ConversationId::Direct(UserIdentity::generate(&mut OsRng).user_key());
    assert!(tx.history(&other, None, 10).unwrap().0.is_empty());
    tx.commit().unwrap();
}

#[wasm_bindgen_test]
fn named_store_reopens_and_refuses_a_wrong_key() {
    // sqlite-wasm-rs's default VFS keeps named databases in memory for the module's lifetime, so a
    // store created by name can be closed and opened again, as a file natively.
    let path = "hush-wasm-test-reopen.db";
    let user = UserIdentity::generate(&mut OsRng);
    let mut store = Store::create(path, Unlock::Key(Zeroizing::new([5; 32]))).unwrap();
    let tx = store.transaction().unwrap();
    tx.put_user(&user).unwrap();
    tx.put_setting("relay_url", b"wss://relay.example").unwrap();
    tx.commit().unwrap();
    store.close().unwrap();

    assert!(matches!(Store::create(path, Unlock::Key(Zeroizing::new([5; 32]))), Err(Error::StoreExists)));
    assert!(matches!(Store::open(path, Unlock::Key(Zeroizing::new([6; 32]))), Err(Error::WrongStoreKey)));
    let mut store = Store::open(path, Unlock::Key(Zeroizing::new([5; 32]))).unwrap();
    let tx = store.transaction().unwrap();
    assert_eq!(tx.user().unwrap().expect("user stored").user_key(), user.user_key());
    assert_eq!(tx.setting("relay_url").unwrap().expect("setting stored").as_slice(), b"wss://relay.example");
    tx.commit().unwrap();
    // The passphrase path (Argon2id in wasm) replaces the raw key without re-encrypting data.
    store.change_unlock(Unlock::Passphrase(Zeroizing::new("new passphrase".into()), FAST)).unwrap();
    store.close().unwrap();
    assert!(matches!(Store::open(path, Unlock::Key(Zeroizing::new([5; 32]))), Err(Error::WrongStoreKey)));
    let mut store = Store::open(path, Unlock::Passphrase(Zeroizing::new("new passphrase".into()), FAST)).unwrap();
    let tx = store.transaction().unwrap();
    assert_eq!(tx.user().unwrap().expect("user stored").user_key(), user.user_key());
    tx.commit().unwrap();
}

#[wasm_bindgen_test]
fn an_image_reopens_with_its_passphrase_only() {
    // What the browser keeps in IndexedDB: the store's image, reopened on the next page load.
    let user = UserIdentity::generate(&mut OsRng);
    let pass = || Unlock::Passphrase(Zeroizing::new("browser passphrase".into()), FAST);
    let mut store = Store::open_in_memory(pass()).unwrap();
    let before = store.write_count();
    let tx = store.transaction().unwrap();
    tx.put_user(&user).unwrap();
    tx.commit().unwrap();
    assert!(store.write_count() > before);
    let image = store.image().unwrap();
    store.close().unwrap();

    let wrong = Unlock::Passphrase(Zeroizing::new("browser passphrasE".into()), FAST);
    assert!(matches!(Store::open_image(&image, wrong), Err(Error::WrongStoreKey)));
    let mut store = Store::open_image(&image, pass()).unwrap();
    let tx = store.transaction().unwrap();
    assert_eq!(tx.user().unwrap().expect("user stored").user_key(), user.user_key());
    tx.commit().unwrap();
}
