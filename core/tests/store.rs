//! The encrypted local store (`hush_core::store`): every table round-trips; wrong keys, moved and
//! corrupted values give typed errors; nothing readable is in the file; history, search, expiry,
//! outbox and dedupe behave; and a store written by an earlier schema opens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use hush_core::attachment;
use hush_core::content::{AttachmentPointer, MessageId, ReceiptKind};
use hush_core::group::{Group, GroupId};
use hush_core::store::{
    Contact, ContactState, Conversation, ConversationId, MessageStatus, OutboxItem, SentCopy, StoredMessage,
};
use hush_core::{
    Account, Argon2Params, Content, ContentBody, DeliveryToken, Error, PeerUser, SignedDeviceList, SigningPublicKey,
    Store, Unlock, UserIdentity,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Argon2id parameters small enough for tests that unlock many times.
const FAST: Argon2Params = Argon2Params { m_cost_kib: 256, t_cost: 1, p_cost: 1 };

fn key(byte: u8) -> Unlock {
    Unlock::Key(Zeroizing::new([byte; 32]))
}

fn passphrase(p: &str) -> Unlock {
    Unlock::Passphrase(Zeroizing::new(p.to_owned()), FAST)
}

fn user_key(rng: &mut ChaCha20Rng) -> SigningPublicKey {
    UserIdentity::generate(rng).user_key()
}

fn text(rng: &mut ChaCha20Rng, at: u64, body: &str) -> Content {
    Content::new(rng, at, ContentBody::Text(body.to_owned()))
}

fn incoming(conv: ConversationId, sender: SigningPublicKey, content: &Content) -> StoredMessage {
    StoredMessage::from_content(conv, sender, content, content.timestamp_ms + 1, MessageStatus::Received).unwrap()
}

fn file_hash(path: &Path) -> [u8; 32] {
    Sha256::digest(std::fs::read(path).unwrap()).into()
}

fn wal(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// A raw SQLite connection to the file, as an attacker with the file (and no key) has.
fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

fn contact(rng: &mut ChaCha20Rng, name: &str, state: ContactState) -> Contact {
    Contact {
        user_key: user_key(rng),
        display_name: name.to_owned(),
        state,
        verified: state == ContactState::Accepted,
        relay_url: format!("wss://{name}.relay.example"),
        delivery_token: Some(DeliveryToken::generate(rng)),
    }
}

/// A peer user with one device and an open session to it.
fn peer(rng: &mut ChaCha20Rng, local: &Account) -> PeerUser {
    let user = UserIdentity::generate(rng);
    let mut device = Account::new(rng);
    let list = SignedDeviceList::sign(&user, 1, &[device.device_keys()], 1_700_000_000_000).unwrap();
    let otk = device.generate_one_time_prekeys(rng, 1).unwrap();
    let kem = device.generate_kem_prekeys(rng, 1).unwrap();
    let bundle = device.prekey_bundle(Some(otk[0].id), Some(kem[0].id)).unwrap();
    let mut peer = PeerUser::new(list);
    peer.add_session(rng, local.identity(), &bundle, common::PQ).unwrap();
    peer
}

#[test]
fn every_table_round_trips_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("account.db");
    let mut rng = common::rng(1);
    let account = Account::new(&mut rng);
    let me = UserIdentity::generate(&mut rng);
    let alice = peer(&mut rng, &account);
    let bob = peer(&mut rng, &account);
    let (group, _) = Group::create(&mut rng, &me, "friends", &[alice.user_key()], 5).unwrap();
    let carol = contact(&mut rng, "carol", ContactState::Accepted);
    let dave = Contact { delivery_token: None, ..contact(&mut rng, "dave", ContactState::Requested) };
    let direct = ConversationId::Direct(carol.user_key);
    let group_chat = ConversationId::Group(group.id());
    let conversations = [
        Conversation {
            id: direct,
            last_activity_ms: 10,
            unread: 2,
            disappearing_secs: 0,
            muted: false,
            request: false,
        },
        Conversation {
            id: group_chat,
            last_activity_ms: 20,
            unread: 0,
            disappearing_secs: 3600,
            muted: true,
            request: true,
        },
    ];
    let (_, encryption) = attachment::encrypt_bytes(&mut rng, b"a picture", 1 << 20).unwrap();
    let pointer = AttachmentPointer {
        blob_id: b"blob-1".to_vec(),
        encryption,
        mime: "image/png".into(),
        thumbnail: None,
        file_name: Some("holiday.png".into()),
    };
    let messages = [
        incoming(direct, carol.user_key, &text(&mut rng, 100, "hi there")),
        StoredMessage {
            expires_at_ms: Some(u64::MAX),
            reactions: vec![(carol.user_key, "👍".into())],
            ..StoredMessage::from_content(
                group_chat,
                me.user_key(),
                &Content::new(&mut rng, 200, ContentBody::Attachment(pointer)),
                200,
                MessageStatus::Sending,
            )
            .unwrap()
        },
    ];
    let outbox = OutboxItem {
        id: 0,
        conversation: group_chat,
        message_id: messages[1].id,
        frame: vec![1, 2, 3, 4],
        attempts: 0,
        next_attempt_ms: 200,
    };

    let mut store = Store::create(&path, key(1)).unwrap();
    let tx = store.transaction().unwrap();
    assert!(tx.account().unwrap().is_none());
    assert!(tx.user().unwrap().is_none());
    tx.put_account(&account).unwrap();
    tx.put_user(&me).unwrap();
    tx.put_peer(&alice).unwrap();
    tx.put_peer(&bob).unwrap();
    tx.put_group(&group).unwrap();
    tx.put_contact(&carol).unwrap();
    tx.put_contact(&dave).unwrap();
    for c in &conversations {
        tx.put_conversation(c).unwrap();
    }
    for m in &messages {
        assert!(tx.insert_message(m).unwrap());
    }
    let outbox_id = tx.outbox_push(&outbox).unwrap();
    assert!(tx.mark_processed(77, 1_000).unwrap());
    tx.put_setting("relay_url", b"wss://relay.example").unwrap();
    tx.commit().unwrap();
    store.close().unwrap();

    let mut store = Store::open(&path, key(1)).unwrap();
    let tx = store.transaction().unwrap();
    assert_eq!(*tx.account().unwrap().unwrap().to_bytes(), *account.to_bytes());
    assert_eq!(tx.user().unwrap().unwrap().user_key(), me.user_key());
    assert_eq!(*tx.peer(&alice.user_key()).unwrap().unwrap().to_bytes(), *alice.to_bytes());
    assert_eq!(*tx.peer(&bob.user_key()).unwrap().unwrap().to_bytes(), *bob.to_bytes());
    assert!(tx.peer(&carol.user_key).unwrap().is_none());
    let mut peers: Vec<_> = tx.peers().unwrap().iter().map(|p| p.to_bytes().to_vec()).collect();
    let mut expected: Vec<_> = [&alice, &bob].iter().map(|p| p.to_bytes().to_vec()).collect();
    peers.sort();
    expected.sort();
    assert_eq!(peers, expected);
    assert_eq!(*tx.group(&group.id()).unwrap().unwrap().to_bytes(), *group.to_bytes());
    assert_eq!(tx.groups().unwrap().len(), 1);
    assert!(tx.group(&GroupId::from_slice(&[0; 16]).unwrap()).unwrap().is_none());
    assert_eq!(tx.contact(&carol.user_key).unwrap().unwrap(), carol);
    assert_eq!(tx.contact(&dave.user_key).unwrap().unwrap(), dave);
    assert_eq!(tx.contacts().unwrap(), vec![carol.clone(), dave.clone()]);
    assert_eq!(tx.conversation(&direct).unwrap().unwrap(), conversations[0]);
    // Newest first.
    assert_eq!(tx.conversations().unwrap(), vec![conversations[1].clone(), conversations[0].clone()]);
    for m in &messages {
        assert_eq!(tx.message(&m.conversation, &m.id).unwrap().unwrap(), *m);
    }
    let ContentBody::Attachment(loaded) =
        tx.message(&group_chat, &messages[1].id).unwrap().unwrap().content().unwrap().unwrap().body
    else {
        panic!("not an attachment")
    };
    assert_eq!(loaded.file_name.as_deref(), Some("holiday.png"));
    assert_eq!(tx.outbox_item(outbox_id).unwrap().unwrap(), OutboxItem { id: outbox_id, ..outbox });
    assert!(tx.is_processed(77).unwrap());
    assert!(!tx.is_processed(78).unwrap());
    assert_eq!(tx.setting("relay_url").unwrap().unwrap().as_slice(), b"wss://relay.example");
    assert!(tx.setting("other").unwrap().is_none());

    // Deletes.
    assert!(tx.delete_contact(&dave.user_key).unwrap());
    assert!(!tx.delete_contact(&dave.user_key).unwrap());
    assert!(tx.delete_peer(&bob.user_key()).unwrap());
    assert!(tx.delete_setting("relay_url").unwrap());
    assert!(tx.delete_group(&group.id()).unwrap());
    assert!(tx.delete_conversation(&direct).unwrap());
    assert!(tx.message(&direct, &messages[0].id).unwrap().is_none());
    assert!(tx.message(&group_chat, &messages[1].id).unwrap().is_some());
    assert_eq!(tx.contacts().unwrap(), vec![carol]);
    assert_eq!(tx.peers().unwrap().len(), 1);
    assert!(tx.groups().unwrap().is_empty());
    tx.commit().unwrap();
}

#[test]
fn a_dropped_transaction_writes_nothing() {
    let mut store = Store::open_in_memory(key(1)).unwrap();
    let tx = store.transaction().unwrap();
    tx.put_setting("a", b"1").unwrap();
    assert!(tx.mark_processed(5, 0).unwrap());
    drop(tx);
    let tx = store.transaction().unwrap();
    assert!(tx.setting("a").unwrap().is_none());
    assert!(tx.mark_processed(5, 0).unwrap());
    tx.rollback().unwrap();
}

#[test]
fn wrong_key_or_passphrase_is_a_typed_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = common::rng(2);
    for (name, right, wrong) in [
        ("key.db", key(1), vec![key(2), passphrase("x")]),
        ("pass.db", passphrase("right one"), vec![passphrase("wrong one"), passphrase("right one "), key(1)]),
    ] {
        let path = dir.path().join(name);
        let mut store = Store::create(&path, right).unwrap();
        let tx = store.transaction().unwrap();
        tx.put_contact(&contact(&mut rng, "erin", ContactState::Accepted)).unwrap();
        tx.commit().unwrap();
        store.close().unwrap();
        assert!(!wal(&path).exists());
        let before = file_hash(&path);
        for unlock in wrong {
            assert_eq!(Store::open(&path, unlock).unwrap_err(), Error::WrongStoreKey);
            assert_eq!(file_hash(&path), before);
            assert!(std::fs::metadata(wal(&path)).map_or(true, |m| m.len() == 0));
        }
    }
    // The right one still works.
    let store = Store::open(dir.path().join("pass.db"), passphrase("right one")).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_SCHEMA);
}

#[test]
fn create_refuses_an_existing_database_and_open_refuses_what_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    Store::create(&path, key(1)).unwrap().close().unwrap();
    let before = file_hash(&path);
    assert_eq!(Store::create(&path, key(1)).unwrap_err(), Error::StoreExists);
    assert_eq!(file_hash(&path), before);

    let other = dir.path().join("other.db");
    raw(&other).execute_batch("CREATE TABLE t (x)").unwrap();
    assert_eq!(Store::create(&other, key(1)).unwrap_err(), Error::StoreExists);
    assert_eq!(Store::open(&other, key(1)).unwrap_err(), Error::Malformed { what: "store file" });

    let missing = dir.path().join("missing.db");
    assert!(matches!(Store::open(&missing, key(1)), Err(Error::Database(_))));
    assert!(!missing.exists());

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    assert!(matches!(Store::open(&garbage, key(1)), Err(Error::Database(_))));

    // A store from a newer build.
    raw(&path).pragma_update(None, "user_version", 99).unwrap();
    assert_eq!(
        Store::open(&path, key(1)).unwrap_err(),
        Error::UnsupportedVersion { what: "store schema", version: 99 }
    );
}

/// The browser keeps a store as an image (its SQLite bytes) in IndexedDB: the image reopens with
/// the same unlock and the same rows, a wrong unlock or bytes that are no store are typed errors,
/// and `write_count` moves exactly when something was written.
#[test]
fn an_image_reopens_with_its_unlock_and_only_with_it() {
    let mut rng = common::rng(9);
    type MakeUnlock = fn() -> Unlock;
    let unlocks: [(MakeUnlock, MakeUnlock); 2] =
        [(|| key(1), || key(2)), (|| passphrase("right one"), || passphrase("wrong one"))];
    for (right, wrong) in unlocks {
        let mut store = Store::open_in_memory(right()).unwrap();
        let written = store.write_count();
        let erin = contact(&mut rng, "erin", ContactState::Accepted);
        let tx = store.transaction().unwrap();
        tx.put_contact(&erin).unwrap();
        tx.commit().unwrap();
        assert!(store.write_count() > written);
        let image = store.image().unwrap();
        let unchanged = store.write_count();
        let tx = store.transaction().unwrap();
        assert!(tx.contact(&erin.user_key).unwrap().is_some());
        tx.commit().unwrap();
        assert_eq!(store.write_count(), unchanged, "a read is not a write");
        store.close().unwrap();

        assert_eq!(Store::open_image(&image, wrong()).unwrap_err(), Error::WrongStoreKey);
        let mut reopened = Store::open_image(&image, right()).unwrap();
        assert_eq!(reopened.schema_version().unwrap(), CURRENT_SCHEMA);
        let tx = reopened.transaction().unwrap();
        assert_eq!(tx.contact(&erin.user_key).unwrap().unwrap().display_name, "erin");
        tx.commit().unwrap();
        // The image of a reopened store reopens too, and it is a store file as well.
        let again = reopened.image().unwrap();
        assert!(Store::open_image(&again, right()).is_ok());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.db"), &again).unwrap();
        let mut from_file = Store::open(dir.path().join("s.db"), right()).unwrap();
        assert!(from_file.transaction().unwrap().contact(&erin.user_key).unwrap().is_some());
    }
    assert_eq!(Store::open_image(&[], key(1)).unwrap_err(), Error::Malformed { what: "store image" });
    assert!(matches!(Store::open_image(&[0x5a; 8192], key(1)), Err(Error::Database(_))));
    assert!(matches!(
        Store::open_image(b"SQLite format 3\0", key(1)),
        Err(Error::Database(_) | Error::Malformed { .. })
    ));
}

#[test]
fn change_unlock_rewraps_and_the_old_unlock_stops_working() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut store = Store::create(&path, passphrase("first")).unwrap();
    let tx = store.transaction().unwrap();
    tx.put_setting("name", b"value").unwrap();
    tx.commit().unwrap();
    store.change_unlock(passphrase("second")).unwrap();
    // The open store keeps working.
    assert_eq!(store.transaction().unwrap().setting("name").unwrap().unwrap().as_slice(), b"value");
    store.close().unwrap();

    assert_eq!(Store::open(&path, passphrase("first")).unwrap_err(), Error::WrongStoreKey);
    let mut store = Store::open(&path, passphrase("second")).unwrap();
    store.change_unlock(key(7)).unwrap();
    drop(store);
    assert_eq!(Store::open(&path, passphrase("second")).unwrap_err(), Error::WrongStoreKey);
    let mut store = Store::open(&path, key(7)).unwrap();
    assert_eq!(store.transaction().unwrap().setting("name").unwrap().unwrap().as_slice(), b"value");
    store
        .change_unlock(Unlock::Passphrase(Zeroizing::new("third".into()), Argon2Params { t_cost: 2, ..FAST }))
        .unwrap();
    drop(store);
    assert_eq!(Store::open(&path, key(7)).unwrap_err(), Error::WrongStoreKey);
    // Opening uses the stored parameters, whatever the caller passes.
    Store::open(&path, passphrase("third")).unwrap();
}

/// Swaps the `value` columns of two rows of `table`, as someone editing the file could.
fn swap_values(path: &Path, table: &str, key_column: &str) {
    swap_values_where(path, table, key_column, "1");
}

/// [`swap_values`] among the rows matching the SQL condition `filter`.
fn swap_values_where(path: &Path, table: &str, key_column: &str, filter: &str) {
    let conn = raw(path);
    let rows: Vec<(Vec<u8>, Vec<u8>)> = conn
        .prepare(&format!("SELECT {key_column}, value FROM {table} WHERE {filter} ORDER BY {key_column} LIMIT 2"))
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, rusqlite::types::Value>(0).map(value_bytes)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 2);
    let sql = format!("UPDATE {table} SET value = ?1 WHERE {key_column} = ?2");
    conn.execute(&sql, rusqlite::params![rows[1].1, key_param(&rows[0].0)]).unwrap();
    conn.execute(&sql, rusqlite::params![rows[0].1, key_param(&rows[1].0)]).unwrap();
}

fn value_bytes(v: rusqlite::types::Value) -> Vec<u8> {
    match v {
        rusqlite::types::Value::Blob(b) => b,
        rusqlite::types::Value::Integer(i) => i.to_be_bytes().to_vec(),
        other => panic!("unexpected key {other:?}"),
    }
}

fn key_param(bytes: &[u8]) -> rusqlite::types::Value {
    if bytes.len() == 8 {
        rusqlite::types::Value::Integer(i64::from_be_bytes(bytes.try_into().unwrap()))
    } else {
        rusqlite::types::Value::Blob(bytes.to_vec())
    }
}

#[test]
fn values_swapped_between_rows_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut rng = common::rng(3);
    let (a, b) = (contact(&mut rng, "a", ContactState::Accepted), contact(&mut rng, "b", ContactState::Blocked));
    let conv = ConversationId::Direct(a.user_key);
    let (m1, m2) =
        (incoming(conv, a.user_key, &text(&mut rng, 1, "one")), incoming(conv, a.user_key, &text(&mut rng, 2, "two")));
    let mut store = Store::create(&path, key(1)).unwrap();
    let tx = store.transaction().unwrap();
    tx.put_contact(&a).unwrap();
    tx.put_contact(&b).unwrap();
    tx.insert_message(&m1).unwrap();
    tx.insert_message(&m2).unwrap();
    for at in [5, 6] {
        tx.outbox_push(&OutboxItem {
            id: 0,
            conversation: conv,
            message_id: m1.id,
            frame: vec![at as u8],
            attempts: 0,
            next_attempt_ms: at,
        })
        .unwrap();
    }
    tx.put_setting("x", b"1").unwrap();
    tx.put_setting("y", b"2").unwrap();
    tx.commit().unwrap();
    store.close().unwrap();

    swap_values(&path, "contacts", "lookup");
    swap_values(&path, "messages", "id");
    swap_values(&path, "outbox", "id");
    // The two one-byte settings (sealed: 1 + 24 + 1 + 16 bytes), not the store's generation, which
    // the open checks (§14.16) and so would refuse the whole store.
    swap_values_where(&path, "settings", "lookup", "length(value) = 42");

    let mut store = Store::open(&path, key(1)).unwrap();
    let tx = store.transaction().unwrap();
    let contacts = Error::StoreCorrupt { table: "contacts" };
    assert_eq!(tx.contact(&a.user_key).unwrap_err(), contacts);
    assert_eq!(tx.contact(&b.user_key).unwrap_err(), contacts);
    assert_eq!(tx.contacts().unwrap_err(), contacts);
    let messages = Error::StoreCorrupt { table: "messages" };
    assert_eq!(tx.message(&conv, &m1.id).unwrap_err(), messages);
    assert_eq!(tx.message(&conv, &m2.id).unwrap_err(), messages);
    assert_eq!(tx.history(&conv, None, 10).unwrap_err(), messages);
    assert_eq!(tx.apply_delete(&conv, &m1.id).unwrap_err(), messages);
    assert_eq!(tx.outbox_due(u64::MAX).unwrap_err(), Error::StoreCorrupt { table: "outbox" });
    assert_eq!(tx.setting("x"), Err(Error::StoreCorrupt { table: "settings" }));
    assert_eq!(tx.setting("y"), Err(Error::StoreCorrupt { table: "settings" }));
}

#[test]
fn a_message_moved_to_another_conversation_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut rng = common::rng(4);
    let (alice, bob) = (user_key(&mut rng), user_key(&mut rng));
    let (ca, cb) = (ConversationId::Direct(alice), ConversationId::Direct(bob));
    let ma = incoming(ca, alice, &text(&mut rng, 1, "for alice's chat"));
    let mb = incoming(cb, bob, &text(&mut rng, 2, "for bob's chat"));
    let mut store = Store::create(&path, key(1)).unwrap();
    let tx = store.transaction().unwrap();
    tx.insert_message(&ma).unwrap();
    tx.insert_message(&mb).unwrap();
    tx.commit().unwrap();
    store.close().unwrap();
    // Point alice's message row at bob's conversation (both columns are HMACs the attacker can copy).
    let conn = raw(&path);
    let conv_of = |at: i64| -> Vec<u8> {
        conn.query_row("SELECT conversation FROM messages WHERE sent_at = ?1", [at], |r| r.get(0)).unwrap()
    };
    let (a_conv, b_conv) = (conv_of(1), conv_of(2));
    conn.execute("UPDATE messages SET conversation = ?1 WHERE sent_at = 1", [&b_conv]).unwrap();
    let mut store = Store::open(&path, key(1)).unwrap();
    let tx = store.transaction().unwrap();
    assert_eq!(tx.history(&cb, None, 10).map(|_| ()), Err(Error::StoreCorrupt { table: "messages" }));
    assert_eq!(tx.history(&ca, None, 10).unwrap().0, vec![]);
    drop(tx);
    // Re-dating a row (to move it in the history) is caught too.
    conn.execute("UPDATE messages SET conversation = ?1, sent_at = 3 WHERE sent_at = 1", [&a_conv]).unwrap();
    assert_eq!(
        store.transaction().unwrap().message(&ca, &ma.id).map(|_| ()),
        Err(Error::StoreCorrupt { table: "messages" })
    );
    conn.execute("UPDATE messages SET sent_at = 1 WHERE sent_at = 3", []).unwrap();
    assert_eq!(store.transaction().unwrap().message(&ca, &ma.id).unwrap().unwrap(), ma);
}

/// Flips one byte in the middle of `needle`'s only occurrence in the file.
fn flip_byte_of(path: &Path, needle: &[u8]) {
    let mut bytes = std::fs::read(path).unwrap();
    let positions: Vec<usize> =
        bytes.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect();
    assert_eq!(positions.len(), 1, "value found {} times", positions.len());
    bytes[positions[0] + needle.len() / 2] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_byte_flipped_on_disk_fails_only_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut rng = common::rng(5);
    let contacts: Vec<Contact> = (0..5).map(|i| contact(&mut rng, &format!("c{i}"), ContactState::Accepted)).collect();
    let conv = ConversationId::Direct(contacts[0].user_key);
    let messages: Vec<StoredMessage> =
        (0..5).map(|i| incoming(conv, contacts[0].user_key, &text(&mut rng, i, &format!("message {i}")))).collect();
    let mut store = Store::create(&path, passphrase("pw")).unwrap();
    let tx = store.transaction().unwrap();
    for c in &contacts {
        tx.put_contact(c).unwrap();
    }
    for m in &messages {
        tx.insert_message(m).unwrap();
    }
    tx.commit().unwrap();
    store.close().unwrap();
    assert!(!wal(&path).exists(), "closing checkpoints the WAL into the file");

    // One contact value and one message value, picked from the file as an attacker would.
    let conn = raw(&path);
    let contact_value: Vec<u8> = conn.query_row("SELECT value FROM contacts LIMIT 1", [], |r| r.get(0)).unwrap();
    let message_value: Vec<u8> =
        conn.query_row("SELECT value FROM messages WHERE sent_at = 3", [], |r| r.get(0)).unwrap();
    drop(conn);
    flip_byte_of(&path, &contact_value);
    flip_byte_of(&path, &message_value);

    let mut store = Store::open(&path, passphrase("pw")).unwrap();
    let tx = store.transaction().unwrap();
    let results: Vec<_> = contacts.iter().map(|c| tx.contact(&c.user_key)).collect();
    let failed = results.iter().filter(|r| **r == Err(Error::StoreCorrupt { table: "contacts" })).count();
    assert_eq!(failed, 1);
    for (r, c) in results.iter().zip(&contacts) {
        if let Ok(found) = r {
            assert_eq!(found.as_ref(), Some(c));
        }
    }
    for m in &messages {
        let got = tx.message(&conv, &m.id);
        if m.sent_at_ms == 3 {
            assert_eq!(got, Err(Error::StoreCorrupt { table: "messages" }));
        } else {
            assert_eq!(got.unwrap().as_ref(), Some(m));
        }
    }
    assert_eq!(tx.contacts(), Err(Error::StoreCorrupt { table: "contacts" }));
    // The page holding the bad row fails; the page after it reads.
    assert_eq!(tx.history(&conv, None, 5).map(|_| ()), Err(Error::StoreCorrupt { table: "messages" }));
    let (newest, cursor) = tx.history(&conv, None, 1).unwrap();
    assert_eq!(newest, vec![messages[4].clone()]);
    assert!(cursor.is_some());
}

/// Every 16-byte window of `secret` is absent from `haystack`.
fn assert_absent(haystack_windows: &HashSet<&[u8]>, secret: &[u8], what: &str) {
    assert!(secret.len() >= 16, "{what} is too short to scan");
    // Windows of few distinct bytes (zero runs in an encoding) are everywhere in any file.
    for w in secret.windows(16).filter(|w| w.iter().collect::<HashSet<_>>().len() >= 8) {
        assert!(!haystack_windows.contains(w), "{what} found in the database file");
    }
}

#[test]
fn no_plaintext_or_key_bytes_in_the_file() {
    const CANARY: &str = "CANARY_4f2b9e_plaintext_must_never_reach_the_disk";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut rng = common::rng(6);
    let raw_key = [0x3c; 32];
    let account = Account::new(&mut rng);
    let me = UserIdentity::generate(&mut rng);
    let alice = peer(&mut rng, &account);
    let mut carol = contact(&mut rng, CANARY, ContactState::Accepted);
    carol.relay_url = format!("wss://{CANARY}.example");
    let conv = ConversationId::Direct(carol.user_key);
    let messages: Vec<StoredMessage> =
        (0..200).map(|i| incoming(conv, carol.user_key, &text(&mut rng, i, &format!("{CANARY} number {i}")))).collect();
    let (_, encryption) = attachment::encrypt_bytes(&mut rng, b"secret picture", 1 << 20).unwrap();
    let attachment_key = *encryption.key.as_bytes();
    let pointer = AttachmentPointer {
        blob_id: b"blob".to_vec(),
        encryption,
        mime: "image/png".into(),
        thumbnail: None,
        file_name: None,
    };
    let with_attachment =
        incoming(conv, carol.user_key, &Content::new(&mut rng, 999, ContentBody::Attachment(pointer)));

    let mut store = Store::create(&path, Unlock::Key(Zeroizing::new(raw_key))).unwrap();
    let tx = store.transaction().unwrap();
    tx.put_account(&account).unwrap();
    tx.put_user(&me).unwrap();
    tx.put_peer(&alice).unwrap();
    tx.put_contact(&carol).unwrap();
    tx.put_conversation(&Conversation::new(conv)).unwrap();
    for m in &messages {
        tx.insert_message(m).unwrap();
    }
    tx.insert_message(&with_attachment).unwrap();
    tx.outbox_push(&OutboxItem {
        id: 0,
        conversation: conv,
        message_id: messages[0].id,
        frame: CANARY.as_bytes().to_vec(),
        attempts: 0,
        next_attempt_ms: 0,
    })
    .unwrap();
    tx.put_setting(CANARY, CANARY.as_bytes()).unwrap();
    tx.commit().unwrap();

    let check = |bytes: &[u8]| {
        let windows: HashSet<&[u8]> = bytes.windows(16).collect();
        assert_absent(&windows, CANARY.as_bytes(), "the canary");
        assert_absent(&windows, CANARY.to_lowercase().as_bytes(), "the lowercased canary");
        assert_absent(&windows, &raw_key, "the unlock key");
        assert_absent(&windows, me.secret_bytes().as_slice(), "the user's secret key");
        assert_absent(&windows, me.user_key().as_bytes(), "the user key");
        assert_absent(&windows, carol.user_key.as_bytes(), "a contact's user key");
        assert_absent(&windows, alice.user_key().as_bytes(), "a peer's user key");
        assert_absent(&windows, carol.delivery_token.as_ref().unwrap().to_bytes().as_slice(), "a delivery token");
        assert_absent(&windows, &attachment_key, "an attachment key");
        assert_absent(&windows, &account.to_bytes(), "the account's pickle");
        assert_absent(&windows, &alice.to_bytes(), "a peer's pickle (sessions)");
        for m in &messages {
            assert_absent(&windows, &m.id, "a message id");
        }
    };
    let main_file = std::fs::read(&path).unwrap();
    let wal_file = std::fs::read(wal(&path)).unwrap();
    assert!(wal_file.len() > 100_000, "the data is in the WAL while the store is open");
    check(&main_file);
    check(&wal_file);
    store.close().unwrap();
    let main_file = std::fs::read(&path).unwrap();
    assert!(main_file.len() > 100_000);
    check(&main_file);
}

#[test]
fn history_pages_newest_first_with_cursors() {
    let mut rng = common::rng(7);
    let (alice, bob) = (user_key(&mut rng), user_key(&mut rng));
    let (ca, cb) = (ConversationId::Direct(alice), ConversationId::Direct(bob));
    let mut store = Store::open_in_memory(key(1)).unwrap();
    let tx = store.transaction().unwrap();
    // 25 messages in A, inserted out of time order, three sharing a timestamp; 10 in B between.
    let mut expected = Vec::new();
    for i in 0..25u64 {
        let at = if (10..13).contains(&i) { 10_000 } else { 1_000 * ((i * 7) % 25) + 1 };
        let m = incoming(ca, alice, &text(&mut rng, at, &format!("a{i}")));
        assert!(tx.insert_message(&m).unwrap());
        expected.push((at, i, m));
        if i % 3 == 0 {
            tx.insert_message(&incoming(cb, bob, &text(&mut rng, at, "b"))).unwrap();
        }
    }
    // Newest first; equal timestamps in reverse insertion order.
    expected.sort_by_key(|x| std::cmp::Reverse((x.0, x.1)));
    let expected: Vec<StoredMessage> = expected.into_iter().map(|(_, _, m)| m).collect();

    let (p1, c1) = tx.history(&ca, None, 10).unwrap();
    let (p2, c2) = tx.history(&ca, c1, 10).unwrap();
    let (p3, c3) = tx.history(&ca, c2, 10).unwrap();
    assert_eq!((p1.len(), p2.len(), p3.len()), (10, 10, 5));
    assert!(c1.is_some() && c2.is_some() && c3.is_none());
    assert_eq!([p1, p2, p3].concat(), expected);
    assert_eq!(tx.history(&cb, None, 100).unwrap().0.len(), 9);
    // An exact multiple of the page size ends with no cursor.
    let (all, end) = tx.history(&ca, None, 25).unwrap();
    assert_eq!((all.len(), end), (25, None));
    assert_eq!(tx.history(&ca, None, 0).unwrap(), (vec![], None));
    assert!(tx.history(&ConversationId::Group(GroupId::from_slice(&[1; 16]).unwrap()), None, 10).unwrap().0.is_empty());
}

#[test]
fn inserts_dedupe_on_the_message_id() {
    let mut rng = common::rng(8);
    let alice = user_key(&mut rng);
    let conv = ConversationId::Direct(alice);
    let m = incoming(conv, alice, &text(&mut rng, 5, "once"));
    let mut store = Store::open_in_memory(key(1)).unwrap();
    let tx = store.transaction().unwrap();
    assert!(tx.insert_message(&m).unwrap());
    assert!(!tx.insert_message(&m).unwrap());
    assert!(!tx.insert_message(&StoredMessage { received_at_ms: 99, ..m.clone() }).unwrap());
    // A tombstone still dedupes a late copy.
    assert!(tx.apply_delete(&conv, &m.id).unwrap());
    assert!(!tx.insert_message(&m).unwrap());
    assert_eq!(tx.history(&conv, None, 10).unwrap().0.len(), 1);
    // The same id in another conversation is another message.
    assert!(
        tx.insert_message(&StoredMessage { conversation: ConversationId::Direct(user_key(&mut rng)), ..m.clone() })
            .unwrap()
    );
    // The body must be a payload.
    let bad = StoredMessage { id: [9; 16], body: hush_core::content::SecretBytes::new(vec![0xff, 0xff]), ..m };
    assert!(tx.insert_message(&bad).is_err());
}

#[test]
fn edits_deletes_reactions_and_receipts_apply_to_the_right_message() {
    let mut rng = common::rng(9);
    let (me, alice, bob) = (user_key(&mut rng), user_key(&mut rng), user_key(&mut rng));
    let conv = ConversationId::Direct(alice);
    let other = ConversationId::Direct(bob);
    let mut store = Store::open_in_memory(key(1)).unwrap();
    let tx = store.transaction().unwrap();
    let mine = StoredMessage::from_content(conv, me, &text(&mut rng, 10, "original words"), 10, MessageStatus::Sending)
        .unwrap();
    let theirs = incoming(conv, alice, &text(&mut rng, 11, "their message"));
    let elsewhere = StoredMessage { conversation: other, ..mine.clone() };
    for m in [&mine, &theirs, &elsewhere] {
        tx.insert_message(m).unwrap();
    }
    let unknown: MessageId = [0xEE; 16];

    // Edit.
    assert!(tx.apply_edit(&conv, &mine.id, "edited words", 20).unwrap());
    let edited = tx.message(&conv, &mine.id).unwrap().unwrap();
    assert!(edited.edited);
    assert_eq!(edited.edited_at_ms, Some(20));
    let content = edited.content().unwrap().unwrap();
    assert_eq!(content.body, ContentBody::Text("edited words".into()));
    assert_eq!((content.client_message_id, content.timestamp_ms), (mine.id, 10));
    // An older edit arriving late is ignored; a newer one applies.
    assert!(!tx.apply_edit(&conv, &mine.id, "stale", 15).unwrap());
    assert!(tx.apply_edit(&conv, &mine.id, "final words", 30).unwrap());
    assert!(!tx.apply_edit(&conv, &unknown, "x", 40).unwrap());
    // Untouched: the other message, and the same id in the other conversation.
    assert_eq!(tx.message(&conv, &theirs.id).unwrap().unwrap(), theirs);
    assert_eq!(tx.message(&other, &mine.id).unwrap().unwrap(), elsewhere);
    // Search follows the edit.
    assert_eq!(tx.search("final", 10).unwrap(), vec![(conv, mine.id)]);
    assert!(tx.search("original", 10).unwrap().iter().all(|(c, _)| *c == other));
    assert!(tx.search("edited", 10).unwrap().is_empty());

    // Reactions.
    assert!(tx.apply_reaction(&conv, &theirs.id, &me, "❤️", false).unwrap());
    assert!(!tx.apply_reaction(&conv, &theirs.id, &me, "❤️", false).unwrap());
    assert!(tx.apply_reaction(&conv, &theirs.id, &alice, "❤️", false).unwrap());
    assert!(tx.apply_reaction(&conv, &theirs.id, &me, "😂", false).unwrap());
    assert!(tx.apply_reaction(&conv, &theirs.id, &me, "❤️", true).unwrap());
    assert!(!tx.apply_reaction(&conv, &theirs.id, &me, "❤️", true).unwrap());
    assert!(!tx.apply_reaction(&conv, &unknown, &me, "❤️", false).unwrap());
    assert!(tx.apply_reaction(&conv, &theirs.id, &me, "", false).is_err());
    assert_eq!(
        tx.message(&conv, &theirs.id).unwrap().unwrap().reactions,
        vec![(alice, "❤️".into()), (me, "😂".into())]
    );
    assert!(tx.message(&conv, &mine.id).unwrap().unwrap().reactions.is_empty());
    for i in 0..15 {
        tx.apply_reaction(&conv, &theirs.id, &bob, &format!("e{i}"), false).unwrap();
    }
    assert!(tx.apply_reaction(&conv, &theirs.id, &bob, "e15", false).unwrap());
    assert!(matches!(tx.apply_reaction(&conv, &theirs.id, &bob, "e16", false), Err(Error::TooLarge { .. })));

    // Receipts move an outgoing message forward only, and never touch an incoming one.
    assert!(tx.set_message_status(&conv, &mine.id, MessageStatus::Sent).unwrap());
    assert!(tx.apply_receipt(&conv, &mine.id, ReceiptKind::Read).unwrap());
    assert!(!tx.apply_receipt(&conv, &mine.id, ReceiptKind::Delivered).unwrap());
    assert_eq!(tx.message(&conv, &mine.id).unwrap().unwrap().status, MessageStatus::Read);
    assert!(tx.apply_receipt(&other, &mine.id, ReceiptKind::Delivered).unwrap());
    assert_eq!(tx.message(&other, &mine.id).unwrap().unwrap().status, MessageStatus::Delivered);
    assert!(!tx.apply_receipt(&conv, &theirs.id, ReceiptKind::Read).unwrap());
    assert_eq!(tx.message(&conv, &theirs.id).unwrap().unwrap().status, MessageStatus::Received);
    assert!(!tx.apply_receipt(&conv, &unknown, ReceiptKind::Read).unwrap());

    // Delete: a tombstone without body, reactions or search tokens.
    assert!(tx.apply_delete(&conv, &theirs.id).unwrap());
    assert!(!tx.apply_delete(&conv, &theirs.id).unwrap());
    let tomb = tx.message(&conv, &theirs.id).unwrap().unwrap();
    assert!(tomb.deleted && tomb.body.as_bytes().is_empty() && tomb.reactions.is_empty());
    assert_eq!(tomb.content().unwrap(), None);
    assert!(tx.search("their", 10).unwrap().is_empty());
    assert!(!tx.apply_edit(&conv, &theirs.id, "revived", 99).unwrap());
    assert!(!tx.apply_reaction(&conv, &theirs.id, &me, "👍", false).unwrap());
    assert!(!tx.apply_delete(&conv, &unknown).unwrap());
    assert!(!tx.message(&conv, &mine.id).unwrap().unwrap().deleted);
}

#[test]
fn search_matches_whole_words_only() {
    let mut rng = common::rng(10);
    let alice = user_key(&mut rng);
    let (ca, cg) = (ConversationId::Direct(alice), ConversationId::Group(GroupId::from_slice(&[3; 16]).unwrap()));
    let mut store = Store::open_in_memory(key(1)).unwrap();
    let tx = store.transaction().unwrap();
    let m1 = incoming(ca, alice, &text(&mut rng, 1, "Meet me at the Café tomorrow, okay?"));
    let m2 = incoming(cg, alice, &text(&mut rng, 2, "the café is closed tomorrow"));
    let m3 = incoming(ca, alice, &text(&mut rng, 3, "Hello world"));
    let (_, encryption) = attachment::encrypt_bytes(&mut rng, b"pdf", 1 << 20).unwrap();
    let file = incoming(
        ca,
        alice,
        &Content::new(
            &mut rng,
            4,
            ContentBody::Attachment(AttachmentPointer {
                blob_id: b"b".to_vec(),
                encryption,
                mime: "application/pdf".into(),
                thumbnail: None,
                file_name: Some("Quarterly-Report.pdf".into()),
            }),
        ),
    );
    for m in [&m1, &m2, &m3, &file] {
        tx.insert_message(m).unwrap();
    }
    // Newest first, across conversations.
    assert_eq!(tx.search("café", 10).unwrap(), vec![(cg, m2.id), (ca, m1.id)]);
    assert_eq!(tx.search("CAFÉ  Tomorrow!", 10).unwrap(), vec![(cg, m2.id), (ca, m1.id)]);
    assert_eq!(tx.search("tomorrow meet", 10).unwrap(), vec![(ca, m1.id)]);
    assert_eq!(tx.search("café", 1).unwrap(), vec![(cg, m2.id)]);
    assert_eq!(tx.search("hello", 10).unwrap(), vec![(ca, m3.id)]);
    assert_eq!(tx.search("report", 10).unwrap(), vec![(ca, file.id)]);
    for nothing in ["hel", "ello", "helloworld", "hello mars", "zzqxv", "caf", "", "?!", "e"] {
        assert!(tx.search(nothing, 10).unwrap().is_empty(), "{nothing:?} matched");
    }
    let many: String = (0..17).map(|i| format!("w{i} ")).collect();
    assert!(matches!(tx.search(&many, 10), Err(Error::TooLarge { .. })));
}

#[test]
fn expiry_removes_due_messages_and_their_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut rng = common::rng(11);
    let alice = user_key(&mut rng);
    let conv = ConversationId::Direct(alice);
    let mut store = Store::create(&path, key(1)).unwrap();
    let tx = store.transaction().unwrap();
    let mut keep = Vec::new();
    let mut gone = Vec::new();
    for i in 0..6u64 {
        let mut m = incoming(conv, alice, &text(&mut rng, i, &format!("vanishing words {i}")));
        m.expires_at_ms = match i {
            0 | 1 => Some(1_000 + i),
            2 => Some(5_000),
            _ => None,
        };
        tx.insert_message(&m).unwrap();
        if i < 2 { gone.push(m) } else { keep.push(m) }
    }
    let later = keep[1].clone();
    assert!(tx.set_message_expiry(&conv, &later.id, Some(1_001)).unwrap());
    assert_eq!(tx.next_expiry().unwrap(), Some(1_000));
    assert_eq!(tx.expire_messages(999).unwrap(), 0);
    assert_eq!(tx.expire_messages(1_001).unwrap(), 3);
    assert_eq!(tx.expire_messages(1_001).unwrap(), 0);
    assert_eq!(tx.next_expiry().unwrap(), Some(5_000));
    tx.commit().unwrap();
    for m in gone.iter().chain([&later]) {
        assert!(store.transaction().unwrap().message(&conv, &m.id).unwrap().is_none());
    }
    let tx = store.transaction().unwrap();
    assert_eq!(tx.history(&conv, None, 10).unwrap().0.len(), 3);
    assert_eq!(tx.search("vanishing", 10).unwrap().len(), 3);
    assert!(tx.search("0", 10).unwrap().is_empty());
    drop(tx);
    // Exactly the remaining messages' tokens are left: 2 shared words + 1 number each.
    let tokens: i64 = raw(&path).query_row("SELECT count(*) FROM search_tokens", [], |r| r.get(0)).unwrap();
    assert_eq!(tokens, 3 * 3);
}

#[test]
fn outbox_due_attempt_and_remove() {
    let mut rng = common::rng(12);
    let conv = ConversationId::Direct(user_key(&mut rng));
    let mut store = Store::open_in_memory(key(1)).unwrap();
    let tx = store.transaction().unwrap();
    let item = |at: u64, byte: u8| OutboxItem {
        id: 12345,
        conversation: conv,
        message_id: [byte; 16],
        frame: vec![byte; 40],
        attempts: 0,
        next_attempt_ms: at,
    };
    let a = tx.outbox_push(&item(100, 1)).unwrap();
    let b = tx.outbox_push(&item(50, 2)).unwrap();
    let c = tx.outbox_push(&item(500, 3)).unwrap();
    assert!(a < b && b < c);
    let due = tx.outbox_due(100).unwrap();
    assert_eq!(due.iter().map(|i| i.id).collect::<Vec<_>>(), vec![b, a]);
    assert_eq!(due[1], OutboxItem { id: a, ..item(100, 1) });
    assert!(tx.outbox_mark_attempt(b, 1_000).unwrap());
    assert!(!tx.outbox_mark_attempt(999, 1_000).unwrap());
    assert_eq!(tx.outbox_due(100).unwrap().iter().map(|i| i.id).collect::<Vec<_>>(), vec![a]);
    let retried = tx.outbox_item(b).unwrap().unwrap();
    assert_eq!((retried.attempts, retried.next_attempt_ms), (1, 1_000));
    assert_eq!(tx.outbox_due(u64::MAX).unwrap().iter().map(|i| i.id).collect::<Vec<_>>(), vec![a, c, b]);
    assert!(tx.outbox_remove(c).unwrap());
    assert!(!tx.outbox_remove(c).unwrap());
    // Ids are never reused, even for the highest one removed.
    let d = tx.outbox_push(&item(0, 4)).unwrap();
    assert!(d > c);
    assert!(tx.outbox_item(c).unwrap().is_none());
}

#[test]
fn processed_relay_ids_dedupe_and_prune_by_age() {
    let mut store = Store::open_in_memory(key(1)).unwrap();
    let tx = store.transaction().unwrap();
    let day = 24 * 60 * 60 * 1000;
    assert!(tx.mark_processed(1, 0).unwrap());
    assert!(!tx.mark_processed(1, 10 * day).unwrap());
    assert!(tx.mark_processed(2, 30 * day).unwrap());
    assert!(tx.mark_processed(u64::MAX, 30 * day).unwrap());
    assert!(tx.is_processed(1).unwrap());
    // The first sighting counts: id 1 is 61 days old, id 2 only 31.
    assert_eq!(tx.prune_processed(61 * day).unwrap(), 1);
    assert!(!tx.is_processed(1).unwrap());
    assert!(tx.is_processed(2).unwrap());
    assert!(tx.mark_processed(1, 61 * day).unwrap());
    assert_eq!(tx.prune_processed(61 * day).unwrap(), 0);
}

// ---- Migrations: a store written by every shipped schema opens with the current code ----

const FIXTURE_SEED: u64 = 0x5354_4f52_4501;
/// The schema the current code writes (the version of the fixture `HUSH_WRITE_VECTORS=1` writes).
const CURRENT_SCHEMA: u32 = 3;

/// `hush store fixture vN`: the passphrase of the schema-N fixture.
fn fixture_passphrase(version: u32) -> String {
    format!("hush store fixture v{version}")
}

/// The anchor file beside a store file (`core/src/store/anchor.rs`).
fn anchor_of(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push("-anchor");
    PathBuf::from(name)
}

fn fixture_path(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../test-vectors/store/v{version}.sqlite"))
}

/// The contents of the fixture, rebuilt deterministically from its seed (ids and keys included),
/// so the test knows what every row must hold.
struct FixtureContents {
    me: UserIdentity,
    contact: Contact,
    conversation: Conversation,
    messages: Vec<StoredMessage>,
}

fn fixture_contents() -> FixtureContents {
    let mut rng = ChaCha20Rng::seed_from_u64(FIXTURE_SEED);
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let me = UserIdentity::from_secret_bytes(&secret);
    let mut peer_secret = [0u8; 32];
    rng.fill_bytes(&mut peer_secret);
    let mut token = [0u8; 32];
    rng.fill_bytes(&mut token);
    let contact = Contact {
        user_key: UserIdentity::from_secret_bytes(&peer_secret).user_key(),
        display_name: "Fixture Friend".into(),
        state: ContactState::Accepted,
        verified: true,
        relay_url: "wss://relay.example".into(),
        delivery_token: Some(DeliveryToken::from_bytes(&token).unwrap()),
    };
    let id = ConversationId::Direct(contact.user_key);
    let conversation = Conversation {
        id,
        last_activity_ms: 1_700_000_003_000,
        unread: 1,
        disappearing_secs: 0,
        muted: false,
        request: false,
    };
    let messages = (0..3u64)
        .map(|i| {
            let mut mid = [0u8; 16];
            rng.fill_bytes(&mut mid);
            let content = Content {
                client_message_id: mid,
                timestamp_ms: 1_700_000_000_000 + i * 1_000,
                body: ContentBody::Text(format!("fixture message {i}")),
            };
            let sender = if i == 1 { me.user_key() } else { contact.user_key };
            let status = if i == 1 { MessageStatus::Read } else { MessageStatus::Received };
            StoredMessage::from_content(id, sender, &content, content.timestamp_ms + 5, status).unwrap()
        })
        .collect();
    FixtureContents { me, contact, conversation, messages }
}

/// Writes `test-vectors/store/vN.sqlite` for the current schema N (run with `HUSH_WRITE_VECTORS=1`
/// only while N is the current one; afterwards the file is history and must not be rewritten).
fn write_fixture(version: u32) {
    let c = fixture_contents();
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join(format!("v{version}.sqlite"));
    let params = Argon2Params { m_cost_kib: 1024, t_cost: 1, p_cost: 1 };
    let unlock = Unlock::Passphrase(Zeroizing::new(fixture_passphrase(version)), params);
    let mut store = Store::create(&tmp, unlock).unwrap();
    assert_eq!(store.schema_version().unwrap(), version, "the v{version} fixture must be written by schema {version}");
    let tx = store.transaction().unwrap();
    tx.put_user(&c.me).unwrap();
    tx.put_contact(&c.contact).unwrap();
    tx.put_conversation(&c.conversation).unwrap();
    for m in &c.messages {
        tx.insert_message(m).unwrap();
    }
    tx.apply_reaction(&c.conversation.id, &c.messages[0].id, &c.me.user_key(), "👍", false).unwrap();
    tx.outbox_push(&OutboxItem {
        id: 0,
        conversation: c.conversation.id,
        message_id: c.messages[1].id,
        frame: vec![7; 8],
        attempts: 2,
        next_attempt_ms: 9,
    })
    .unwrap();
    tx.mark_processed(4242, 1_700_000_000_000).unwrap();
    tx.put_setting("relay_url", b"wss://relay.example").unwrap();
    if version >= 3 {
        let (device, hash, copy) = fixture_sent_copy(&c);
        tx.sent_log_put(device.as_bytes(), &hash, &copy).unwrap();
    }
    tx.commit().unwrap();
    store.close().unwrap();
    std::fs::create_dir_all(fixture_path(version).parent().unwrap()).unwrap();
    std::fs::copy(&tmp, fixture_path(version)).unwrap();
    // From schema 3 on a store has an anchor (§14.16): without it the copy would be a rollback.
    std::fs::copy(anchor_of(&tmp), anchor_of(&fixture_path(version))).unwrap();
}

#[test]
fn a_schema_1_store_opens_with_the_current_code() {
    open_fixture(1);
}

#[test]
fn a_schema_2_store_opens_with_the_current_code() {
    open_fixture(2);
}

#[test]
fn a_schema_3_store_opens_with_the_current_code() {
    if std::env::var("HUSH_WRITE_VECTORS").is_ok_and(|v| v == "1") {
        write_fixture(CURRENT_SCHEMA);
    }
    open_fixture(3);
}

/// The sent-log row of the schema-3 fixture (§14.12): a copy of the fixture's own message.
fn fixture_sent_copy(c: &FixtureContents) -> (SigningPublicKey, [u8; 32], SentCopy) {
    let copy = SentCopy {
        conversation: c.conversation.id,
        message_id: c.messages[1].id,
        recipient: c.contact.user_key,
        content: Zeroizing::new(c.messages[1].content().unwrap().unwrap().to_bytes().unwrap().to_vec()),
        session: Some([0x33; 32]),
        resends: 1,
        sent_at_ms: 1_700_000_001_000,
    };
    (c.contact.user_key, [0x44; 32], copy)
}

/// Opens a copy of the schema-`version` fixture with the current code and checks every row.
fn open_fixture(version: u32) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("v{version}.sqlite"));
    let fixture = fixture_path(version);
    std::fs::copy(&fixture, &path)
        .unwrap_or_else(|e| panic!("{}: {e} (see test-vectors/store/README.md)", fixture.display()));
    if anchor_of(&fixture).exists() {
        std::fs::copy(anchor_of(&fixture), anchor_of(&path)).unwrap();
    }
    assert_eq!(raw(&path).query_row("PRAGMA user_version", [], |r| r.get::<_, u32>(0)).unwrap(), version);

    assert_eq!(Store::open(&path, passphrase("not it")).unwrap_err(), Error::WrongStoreKey);
    let mut store = Store::open(&path, Unlock::Passphrase(Zeroizing::new(fixture_passphrase(version)), FAST)).unwrap();
    // Migrated to the current schema.
    assert_eq!(store.schema_version().unwrap(), CURRENT_SCHEMA);
    let c = fixture_contents();
    let tx = store.transaction().unwrap();
    assert_eq!(tx.user().unwrap().unwrap().user_key(), c.me.user_key());
    assert_eq!(tx.contacts().unwrap(), vec![c.contact.clone()]);
    assert_eq!(tx.conversations().unwrap(), vec![c.conversation.clone()]);
    let mut expected = c.messages.clone();
    expected[0].reactions = vec![(c.me.user_key(), "👍".into())];
    expected.reverse();
    assert_eq!(tx.history(&c.conversation.id, None, 10).unwrap(), (expected, None));
    assert_eq!(tx.search("fixture message", 10).unwrap().len(), 3);
    let due = tx.outbox_due(10).unwrap();
    assert_eq!((due.len(), due[0].attempts, due[0].frame.clone()), (1, 2, vec![7; 8]));
    assert!(!tx.mark_processed(4242, 1_700_000_000_000).unwrap());
    // Schema 3's sent log: the fixture's row from version 3 on, empty (and writable) before.
    let (device, hash, copy) = fixture_sent_copy(&c);
    let expected = (version >= 3).then(|| copy.clone());
    assert_eq!(tx.sent_log_get(device.as_bytes(), &hash).unwrap(), expected);
    tx.sent_log_put(device.as_bytes(), &[0x45; 32], &copy).unwrap();
    assert_eq!(tx.setting("relay_url").unwrap().unwrap().as_slice(), b"wss://relay.example");
    // And it takes new writes.
    assert!(
        tx.insert_message(&incoming(c.conversation.id, c.contact.user_key, &text(&mut common::rng(13), 5, "new")))
            .unwrap()
    );
    // Schema 2's expiry index (over every row) answers the next expiry.
    let mut expiring = incoming(c.conversation.id, c.contact.user_key, &text(&mut common::rng(14), 6, "soon gone"));
    expiring.expires_at_ms = Some(1_700_000_090_000);
    assert_eq!(tx.next_expiry().unwrap(), None);
    assert!(tx.insert_message(&expiring).unwrap());
    assert_eq!(tx.next_expiry().unwrap(), Some(1_700_000_090_000));
    tx.commit().unwrap();
    let index: String = raw(&path)
        .query_row("SELECT sql FROM sqlite_master WHERE name = 'messages_by_expiry'", [], |r| r.get(0))
        .unwrap();
    assert!(!index.contains("WHERE"), "{index}");
}
