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
    scan(&std::fs::read(anchor::path_of(&path)).unwrap());
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
    let aged = plan("DELETE FROM sent_log WHERE sent_at < 5");
    assert!(aged.contains("sent_log_by_age"), "{aged}");
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

/// Names the store file the child of [`a_second_process_opening_the_store_gets_store_in_use`] holds.
const HOLD_VAR: &str = "HUSH_STORE_HOLD_PATH";

/// The child: holds the store open until its stdin closes. Run only by the parent test.
#[test]
#[ignore = "run by a_second_process_opening_the_store_gets_store_in_use in a child process"]
fn hold_the_store_open() {
    let Some(path) = std::env::var_os(HOLD_VAR) else { return };
    let store = Store::open(&path, key()).unwrap();
    println!("holding");
    std::io::Write::flush(&mut std::io::stdout()).unwrap();
    let _ = std::io::Read::read(&mut std::io::stdin(), &mut [0u8; 1]);
    drop(store);
}

#[test]
fn a_second_process_opening_the_store_gets_store_in_use() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    Store::create(&path, key()).unwrap().close().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "store::tests::hold_the_store_open", "--ignored", "--nocapture", "--test-threads=1"])
        .env(HOLD_VAR, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap().contains("holding")), "the child never opened the store");
    assert_eq!(Store::open(&path, key()).err(), Some(Error::StoreInUse));
    assert_eq!(Store::open_read_only(&path, key()).err(), Some(Error::StoreInUse));
    assert_eq!(Store::create(&path, key()).err(), Some(Error::StoreInUse));
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    Store::open(&path, key()).unwrap();
}

#[test]
fn a_second_open_in_one_process_gets_store_in_use_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let first = Store::create(&path, key()).unwrap();
    assert_eq!(Store::open(&path, key()).err(), Some(Error::StoreInUse));
    // The lock comes before the key: a wrong key learns nothing more.
    assert_eq!(Store::open(&path, Unlock::Key(Zeroizing::new([1; 32]))).err(), Some(Error::StoreInUse));
    first.close().unwrap();
    let second = Store::open(&path, key()).unwrap();
    drop(second);
    Store::open(&path, key()).unwrap();
}

/// Every writing commit raises the generation in the store and its anchor; reads do not.
#[test]
fn writing_commits_raise_the_generation_and_reads_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut store = Store::create(&path, key()).unwrap();
    let generation = |s: &Store| s.generation.as_ref().map(|g| g.current);
    assert_eq!(generation(&store), Some(0));
    let tx = store.transaction().unwrap();
    tx.put_setting("a", b"1").unwrap();
    tx.commit().unwrap();
    let tx = store.transaction().unwrap();
    assert!(tx.setting("a").unwrap().is_some());
    tx.commit().unwrap();
    assert_eq!(generation(&store), Some(1));
    let tx = store.transaction().unwrap();
    tx.put_setting("a", b"2").unwrap();
    drop(tx);
    assert_eq!(generation(&store), Some(1), "a rolled-back transaction");
    assert_eq!(store.generation.as_mut().unwrap().anchor.read().unwrap(), anchor::Anchored::Generation(1));
    store.close().unwrap();
    let store = Store::open(&path, key()).unwrap();
    assert_eq!(generation(&store), Some(1));
    // Stores in memory have none.
    assert!(Store::open_in_memory(key()).unwrap().generation.is_none());
}

/// A crash between a commit and the anchor's write leaves the store ahead of its anchor: the newest
/// state, which opens, and the anchor catches up.
#[test]
fn a_store_ahead_of_its_anchor_opens_and_the_anchor_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut store = Store::create(&path, key()).unwrap();
    let old_anchor = std::fs::read(anchor::path_of(&path)).unwrap();
    for i in 0..3u8 {
        let tx = store.transaction().unwrap();
        tx.put_setting("a", &[i]).unwrap();
        tx.commit().unwrap();
    }
    store.close().unwrap();
    std::fs::write(anchor::path_of(&path), old_anchor).unwrap();
    let mut store = Store::open(&path, key()).unwrap();
    assert_eq!(store.generation.as_mut().unwrap().anchor.read().unwrap(), anchor::Anchored::Generation(3));
}

#[test]
fn an_older_copy_opens_only_read_only_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut store = Store::create(&path, key()).unwrap();
    let put = |store: &mut Store, value: &[u8]| {
        let tx = store.transaction()?;
        tx.put_setting("a", value)?;
        tx.commit()
    };
    put(&mut store, b"old").unwrap();
    store.close().unwrap();
    let copy = std::fs::read(&path).unwrap();
    let mut store = Store::open(&path, key()).unwrap();
    put(&mut store, b"new").unwrap();
    store.close().unwrap();
    std::fs::write(&path, &copy).unwrap();

    assert_eq!(Store::open(&path, key()).err(), Some(Error::StoreRolledBack { stored: 1, anchored: Some(2) }));
    let mut store = Store::open_read_only(&path, key()).unwrap();
    assert!(store.is_read_only());
    let tx = store.transaction().unwrap();
    assert_eq!(tx.setting("a").unwrap().unwrap().as_slice(), b"old");
    tx.commit().unwrap();
    assert_eq!(put(&mut store, b"newer"), Err(Error::StoreReadOnly));
    assert_eq!(store.change_unlock(key()), Err(Error::StoreReadOnly));
    store.close().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), copy, "nothing was written");
    assert!(matches!(Store::open(&path, key()), Err(Error::StoreRolledBack { .. })));
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
    assert_eq!(schema::user_version(&conn).unwrap(), schema::SCHEMA_VERSION);
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

#[test]
fn the_sent_log_finds_a_copy_by_device_and_hash_and_stays_within_its_age_and_rows() {
    let mut store = Store::open_in_memory(key()).unwrap();
    let copy = |at: u64| SentCopy {
        conversation: ConversationId::Direct(user(1)),
        message_id: [at as u8; 16],
        recipient: user(1),
        content: Zeroizing::new(b"payload".to_vec()),
        session: Some([9; 32]),
        resends: 1,
        sent_at_ms: at,
    };
    let tx = store.transaction().unwrap();
    for at in 0..10u64 {
        tx.sent_log_put(user(2).as_bytes(), &[at as u8; 32], &copy(at)).unwrap();
    }
    assert_eq!(tx.sent_log_get(user(2).as_bytes(), &[3; 32]).unwrap(), Some(copy(3)));
    // Another device, or another hash: nothing.
    assert_eq!(tx.sent_log_get(user(3).as_bytes(), &[3; 32]).unwrap(), None);
    assert_eq!(tx.sent_log_get(user(2).as_bytes(), &[42; 32]).unwrap(), None);
    assert!(tx.sent_log_remove(user(2).as_bytes(), &[3; 32]).unwrap());
    assert!(!tx.sent_log_remove(user(2).as_bytes(), &[3; 32]).unwrap());
    // Older than 100 − 95 = 5 goes (0..=4, 3 already gone), then the oldest beyond 3 rows.
    assert_eq!(tx.sent_log_prune(100, 95, 3).unwrap(), 4 + 2);
    assert_eq!(tx.sent_log_len().unwrap(), 3);
    assert!(tx.sent_log_get(user(2).as_bytes(), &[6; 32]).unwrap().is_none());
    assert_eq!(tx.sent_log_get(user(2).as_bytes(), &[9; 32]).unwrap(), Some(copy(9)));
    tx.commit().unwrap();
    assert!(!format!("{:?}", copy(1)).contains("payload"));
}
