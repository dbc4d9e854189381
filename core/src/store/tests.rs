//! Unit tests of the store that need its internals (keys, query plans); the behaviour tests are in
//! `core/tests/store.rs`.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zeroize::Zeroizing;

use super::*;
use crate::content::{Content, ContentBody};
use crate::crypto::SigningPublicKey;
use crate::identity::UserIdentity;

const FAST: Argon2Params = Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 };

fn key() -> Unlock {
    Unlock::Key(Zeroizing::new([0x42; 32]))
}

fn user(seed: u64) -> SigningPublicKey {
    UserIdentity::generate(&mut ChaCha20Rng::seed_from_u64(seed)).user_key()
}

fn text(rng: &mut ChaCha20Rng, at: u64, body: &str) -> Content {
    Content::new(rng, at, ContentBody::Text(body.to_owned()))
}

/// Every key the store derives is absent from the file and its WAL, in any 8-byte window.
#[test]
fn no_key_bytes_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut store =
        Store::create(&path, Unlock::Passphrase(Zeroizing::new("correct horse battery".into()), FAST)).unwrap();
    let keys = store.cipher().all_keys();
    let conv = ConversationId::Direct(user(2));
    let tx = store.transaction().unwrap();
    for i in 0..50 {
        let m =
            StoredMessage::from_content(conv, user(2), &text(&mut rng, i, "hello there"), i, MessageStatus::Received)
                .unwrap();
        tx.insert_message(&m).unwrap();
    }
    tx.put_setting("relay", b"wss://relay.example").unwrap();
    tx.commit().unwrap();
    let scan = |bytes: &[u8]| {
        for k in &keys {
            for window in k.windows(8) {
                assert!(!bytes.windows(8).any(|w| w == window), "key bytes in the file");
            }
        }
    };
    let wal = path.with_file_name("s.db-wal");
    scan(&std::fs::read(&path).unwrap());
    scan(&std::fs::read(&wal).unwrap_or_default());
    store.close().unwrap();
    scan(&std::fs::read(&path).unwrap());
}

#[test]
fn debug_prints_no_secret() {
    let mut store = Store::open_in_memory(key()).unwrap();
    let keys = store.cipher().all_keys();
    let tx = store.transaction().unwrap();
    let dbg = format!("{tx:?}");
    drop(tx);
    let dbg = format!("{dbg} {store:?}");
    for k in &keys {
        crate::test_util::assert_no_secret(&dbg, k);
    }
    assert!(dbg.contains("redacted"));
}

/// History and search queries use the indexes, not a scan of every message.
#[test]
fn queries_use_indexes() {
    let store = Store::open_in_memory(key()).unwrap();
    let plan = |sql: &str| -> String {
        let mut stmt = store.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("; ")
    };
    let history = plan(
        "SELECT id, lookup, sent_at, value FROM messages WHERE conversation = x'00' AND (sent_at, id) < (1, 2)
         ORDER BY sent_at DESC, id DESC LIMIT 3",
    );
    assert!(history.contains("messages_by_time"), "{history}");
    assert!(!history.contains("TEMP B-TREE"), "{history}");
    let expire = plan("DELETE FROM messages WHERE expires_at IS NOT NULL AND expires_at <= 5");
    assert!(expire.contains("messages_by_expiry"), "{expire}");
    let search = plan(
        "SELECT lookup, value FROM messages WHERE id IN (SELECT message FROM search_tokens WHERE token = x'00'
         INTERSECT SELECT message FROM search_tokens WHERE token = x'01') ORDER BY sent_at DESC, id DESC LIMIT 3",
    );
    assert!(!search.contains("SCAN search_tokens"), "{search}");
    let due =
        plan("SELECT id, next_attempt_at, value FROM outbox WHERE next_attempt_at <= 5 ORDER BY next_attempt_at, id");
    assert!(due.contains("outbox_by_due"), "{due}");
}

#[test]
fn history_cursor_bytes_round_trip() {
    let mut store = Store::open_in_memory(key()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let conv = ConversationId::Group(crate::group::GroupId([7; 16]));
    let tx = store.transaction().unwrap();
    for i in 0..3 {
        let m =
            StoredMessage::from_content(conv, user(4), &text(&mut rng, i, "x"), i, MessageStatus::Received).unwrap();
        assert!(tx.insert_message(&m).unwrap());
    }
    let (page, cursor) = tx.history(&conv, None, 2).unwrap();
    assert_eq!(page.len(), 2);
    let cursor = cursor.unwrap();
    let again = HistoryCursor::from_bytes(&cursor.to_bytes()).unwrap();
    assert_eq!(again, cursor);
    assert_eq!(tx.history(&conv, Some(again), 2).unwrap().0.len(), 1);
    assert!(HistoryCursor::from_bytes(&[0; 15]).is_err());
}

#[test]
fn the_single_writer_holds_the_lock_for_its_whole_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut a = Store::create(&path, key()).unwrap();
    let mut b = Store::open(&path, key()).unwrap();
    b.conn.busy_timeout(core::time::Duration::from_millis(10)).unwrap();
    let tx = a.transaction().unwrap();
    assert!(matches!(b.transaction(), Err(crate::Error::Database(_))));
    tx.commit().unwrap();
    b.transaction().unwrap().commit().unwrap();
}

/// The public store types print no secret: delivery tokens, message bodies (which may carry
/// attachment keys), unlock keys and passphrases.
#[test]
fn debug_of_public_types_is_redacted() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let token = crate::DeliveryToken::generate(&mut rng);
    let contact = Contact {
        user_key: user(6),
        display_name: "Eve".into(),
        state: ContactState::Accepted,
        verified: true,
        relay_url: "wss://r".into(),
        delivery_token: Some(token.clone()),
    };
    let (_, encryption) = crate::attachment::encrypt_bytes(&mut rng, b"x", 1024).unwrap();
    let attachment_key = *encryption.key.as_bytes();
    let pointer = crate::content::AttachmentPointer {
        blob_id: b"b".to_vec(),
        encryption,
        mime: "image/png".into(),
        thumbnail: None,
        file_name: None,
    };
    let conv = ConversationId::Direct(user(6));
    let secret_text = text(&mut rng, 1, "the secret text of a message");
    let messages = [
        StoredMessage::from_content(conv, user(6), &secret_text, 1, MessageStatus::Received).unwrap(),
        StoredMessage::from_content(
            conv,
            user(6),
            &Content::new(&mut rng, 2, ContentBody::Attachment(pointer)),
            2,
            MessageStatus::Received,
        )
        .unwrap(),
    ];
    let unlock = Unlock::Passphrase(Zeroizing::new("the passphrase".into()), FAST);
    let dbg = format!("{contact:?} {messages:?} {unlock:?}");
    crate::test_util::assert_no_secret(&dbg, token.to_bytes().as_slice());
    crate::test_util::assert_no_secret(&dbg, &attachment_key);
    crate::test_util::assert_no_secret(&dbg, messages[0].body.as_bytes());
    assert!(!dbg.contains("secret text"));
    assert!(!dbg.contains("the passphrase"));
    assert!(dbg.contains("Eve"));
    let record = format!("{:?}", records::MessageRecord::default());
    assert_eq!(record, "store::MessageRecord([redacted])");
}

/// The client's next-expiry query (`StoreTx::next_expiry`, after every change) reads schema 2's
/// expiry index instead of every message; schema 1's partial index could not serve it.
#[test]
fn next_expiry_reads_the_index_not_every_message() {
    let plan = |conn: &rusqlite::Connection| -> String {
        let mut stmt = conn.prepare("EXPLAIN QUERY PLAN SELECT min(expires_at) FROM messages").unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("; ")
    };
    let store = Store::open_in_memory(key()).unwrap();
    let now = plan(&store.conn);
    assert!(now.contains("USING COVERING INDEX messages_by_expiry"), "{now}");

    // A schema-1 database with messages: the plan scanned; migration 2 keeps every row and fixes it.
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(schema::MIGRATIONS[0].sql).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    let before = plan(&conn);
    assert!(!before.contains("INDEX"), "{before}");
    for i in 0..20i64 {
        let expires = if i % 3 == 1 { Some(1_000 - i) } else { None };
        conn.execute(
            "INSERT INTO messages (lookup, conversation, sent_at, expires_at, value) VALUES (?1, x'00', ?2, ?3, x'')",
            rusqlite::params![i.to_be_bytes().as_slice(), i, expires],
        )
        .unwrap();
    }
    schema::migrate(&mut conn, &cipher::StoreCipher::generate().unwrap()).unwrap();
    assert_eq!(schema::user_version(&conn).unwrap(), 2);
    let after = plan(&conn);
    assert!(after.contains("messages_by_expiry"), "{after}");
    let min: i64 = conn.query_row("SELECT min(expires_at) FROM messages", [], |r| r.get(0)).unwrap();
    assert_eq!(min, 1_000 - 19);
    let rows: i64 =
        conn.query_row("SELECT count(*) FROM messages INDEXED BY messages_by_expiry", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 20);
}

/// A failing step inside a savepoint takes back its own writes only: the writes before it, and a
/// step that succeeded after it, commit (one envelope of a batch failing, docs/PROTOCOL.md §16.3).
#[test]
fn a_failed_savepoint_undoes_only_its_own_writes() {
    let mut store = Store::open_in_memory(key()).unwrap();
    let tx = store.transaction().unwrap();
    tx.put_setting("before", b"1").unwrap();
    let failed: Result<()> = tx.savepoint(|| {
        tx.put_setting("poison", b"2")?;
        tx.put_setting("before", b"overwritten")?;
        // Nested: its success is undone with the step around it.
        tx.savepoint(|| tx.put_setting("nested", b"3"))?;
        Err(Error::Malformed { what: "test step" })
    });
    assert!(failed.is_err());
    tx.savepoint(|| tx.put_setting("after", b"4")).unwrap();
    tx.commit().unwrap();
    let tx = store.transaction().unwrap();
    assert_eq!(tx.setting("before").unwrap().as_deref().map(Vec::as_slice), Some(&b"1"[..]));
    assert!(tx.setting("poison").unwrap().is_none());
    assert!(tx.setting("nested").unwrap().is_none());
    assert_eq!(tx.setting("after").unwrap().as_deref().map(Vec::as_slice), Some(&b"4"[..]));
}
