//! The encrypted local store (docs/PROTOCOL.md §14): one SQLite file per account,
//! through rusqlite (bundled SQLite natively, sqlite-wasm-rs in the browser), with every value
//! encrypted by hush itself rather than by a whole-file cipher.
//!
//! - **Keys.** A random 32-byte store key, wrapped by a raw key or by Argon2id(passphrase)
//!   ([`Unlock`]); per-table value and lookup keys derived from it with HKDF-SHA256.
//! - **Values.** XChaCha20-Poly1305 with a random nonce; the AD binds table, row and format version,
//!   so a value moved to another row is [`Error::StoreCorrupt`].
//! - **Lookups.** Keyed HMAC-SHA256 of user keys, conversation ids, message ids and setting names;
//!   local search goes through a blind token index (a truncated HMAC per word).
//! - **Transactions.** Everything goes through a [`StoreTx`]: processing one incoming envelope is
//!   one transaction (session update, history insert, dedupe mark, outbox entry), so a crash never
//!   loses a message nor decrypts one twice. The transaction takes SQLite's write lock when it
//!   begins: one writer at a time.
//! - **Schema.** `PRAGMA user_version` and numbered SQL migrations, one transaction each (`schema`).
//!
//! ## What the file shows to someone who has it but not the key
//! No plaintext, no key, no user key, conversation id or message id. Visible: the number of rows in
//! each table and the values' sizes; which messages belong to the same conversation (equal
//! conversation HMACs, not which conversation it is); each message's sender timestamp (`sent_at`,
//! the pagination order) and expiry time; the outbox's retry times and when relay ids were
//! processed; which messages share a word (equal search tokens, not the word). SQLite overwrites
//! deleted content (`secure_delete`), and changing the unlock checkpoints the WAL, but flash storage
//! may keep old copies of pages: a deleted value is gone for good only once the store key is.

mod cipher;
mod contact;
mod conversation;
mod history;
mod outbox;
mod records;
mod schema;
mod search;
mod tx;
mod unlock;

#[cfg(test)]
mod tests;

use core::fmt;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::{Error, Result};
use cipher::StoreCipher;
use unlock::WrappedKey;

pub use contact::{Contact, ContactState};
pub use conversation::{Conversation, ConversationId};
pub use history::{HistoryCursor, MessageStatus, StoredMessage};
pub use outbox::OutboxItem;
pub use tx::StoreTx;
pub use unlock::{Argon2Params, Unlock};

/// How long a transaction waits for another connection's write lock before failing.
const BUSY_TIMEOUT: core::time::Duration = core::time::Duration::from_secs(5);

/// Prepared statements kept per connection: the generic row statements of every table, the
/// history, outbox and processed-id statements, and one search statement per query word count.
const STATEMENT_CACHE: usize = 128;

/// An open, unlocked store. Not `Sync`: one connection, one writer.
pub struct Store {
    conn: Connection,
    cipher: StoreCipher,
}

impl Store {
    /// Creates a store in a new file at `path` (or in an empty database file), with a fresh random
    /// store key wrapped for `unlock`. A file that already holds a store (or anything else) is
    /// [`Error::StoreExists`]; it is not touched.
    pub fn create(path: impl AsRef<Path>, unlock: Unlock) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Self::init(Connection::open_with_flags(path, flags)?, &unlock)
    }

    /// Opens the store at `path`. A wrong key or passphrase is [`Error::WrongStoreKey`] and writes
    /// nothing; a store written by a newer build is [`Error::UnsupportedVersion`]. Pending schema
    /// migrations run after the unlock, one transaction each.
    pub fn open(path: impl AsRef<Path>, unlock: Unlock) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Self::unlock(Connection::open_with_flags(path, flags)?, &unlock)
    }

    /// Opens a store from an image [`Store::image`] made, into memory: for runtimes where the
    /// application keeps the file's bytes itself (the browser keeps them in IndexedDB). The same
    /// checks as [`Store::open`]: a wrong key or passphrase is [`Error::WrongStoreKey`], bytes that
    /// are not a store are [`Error::Malformed`] or [`Error::Database`].
    pub fn open_image(image: &[u8], unlock: Unlock) -> Result<Self> {
        if image.is_empty() {
            return Err(Error::Malformed { what: "store image" });
        }
        let mut conn = Connection::open_in_memory()?;
        conn.deserialize_read_exact(rusqlite::MAIN_DB, image, image.len(), false)?;
        Self::unlock(conn, &unlock)
    }

    /// The database file's bytes (SQLite's serialization of it), for [`Store::open_image`]. Values
    /// in it are encrypted as in the file: it shows what the file shows (see the module docs).
    pub fn image(&mut self) -> Result<Vec<u8>> {
        Ok(self.conn.serialize(rusqlite::MAIN_DB)?.to_vec())
    }

    /// How many rows this connection has written since it opened (inserts, updates, deletes, those
    /// of rolled-back transactions included): when it moved, the image changed.
    pub fn write_count(&self) -> u64 {
        self.conn.total_changes()
    }

    /// The checks and unlock of an existing store on `conn`, then pending migrations.
    fn unlock(mut conn: Connection, unlock: &Unlock) -> Result<Self> {
        configure(&conn)?;
        // Read-only until the key is proven right: nothing before this line writes.
        let version = schema::user_version(&conn)?;
        if version == 0 {
            return Err(Error::Malformed { what: "store file" });
        }
        if version > schema::SCHEMA_VERSION {
            return Err(Error::UnsupportedVersion { what: "store schema", version });
        }
        let cipher = WrappedKey::load(&conn)?.unwrap(unlock)?;
        enable_wal(&conn)?;
        schema::migrate(&mut conn, &cipher)?;
        Ok(Self { conn, cipher })
    }

    /// A fresh store in memory (tests; in the browser, kept across reloads with [`Store::image`]).
    pub fn open_in_memory(unlock: Unlock) -> Result<Self> {
        Self::init(Connection::open_in_memory()?, &unlock)
    }

    /// Benchmark-only: an in-memory store that keeps values and lookups IN THE CLEAR, to measure
    /// what encryption costs (`bench/core/benches/store.rs`). Exists only with the `bench-plaintext` feature.
    #[cfg(feature = "bench-plaintext")]
    #[doc(hidden)]
    pub fn insecure_plaintext_in_memory_for_benchmarks() -> Result<Self> {
        let mut conn = Connection::open_in_memory()?;
        configure(&conn)?;
        let cipher = StoreCipher::plaintext()?;
        schema::migrate(&mut conn, &cipher)?;
        Ok(Self { conn, cipher })
    }

    fn init(mut conn: Connection, unlock: &Unlock) -> Result<Self> {
        configure(&conn)?;
        let version = schema::user_version(&conn)?;
        let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        // A half-created store (schema but no wrapped key) is finished; anything else is left alone.
        let half_created = version > 0 && version <= schema::SCHEMA_VERSION && !WrappedKey::exists(&conn)?;
        if objects > 0 && !half_created {
            return Err(Error::StoreExists);
        }
        enable_wal(&conn)?;
        let cipher = StoreCipher::generate()?;
        let wrapped = WrappedKey::wrap(&cipher, unlock)?;
        schema::migrate(&mut conn, &cipher)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        wrapped.save(&tx)?;
        tx.commit()?;
        Ok(Self { conn, cipher })
    }

    /// Rewraps the store key for `new` (a new passphrase, new Argon2id parameters, or a raw key);
    /// no value is re-encrypted. The old key or passphrase stops working at once. Argon2id runs
    /// before the write, so the write lock is held only for the swap.
    pub fn change_unlock(&mut self, new: Unlock) -> Result<()> {
        let wrapped = WrappedKey::wrap(&self.cipher, &new)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        wrapped.save(&tx)?;
        tx.commit()?;
        // Copy the new page into the main file and empty the WAL, so the old wrapping does not
        // linger there (secure_delete already overwrote it in the page itself).
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Begins a transaction, taking the write lock. Commit it with [`StoreTx::commit`]; dropping it
    /// rolls everything back.
    pub fn transaction(&mut self) -> Result<StoreTx<'_>> {
        let Store { conn, cipher } = self;
        Ok(StoreTx::new(conn.transaction_with_behavior(TransactionBehavior::Immediate)?, cipher))
    }

    /// The schema version of the file (after migrations: the one this build writes).
    pub fn schema_version(&self) -> Result<u32> {
        schema::user_version(&self.conn)
    }

    /// Closes the store, reporting any error SQLite has while closing (dropping closes too).
    pub fn close(self) -> Result<()> {
        self.conn.close().map_err(|(_, e)| e.into())
    }

    #[cfg(test)]
    pub(crate) fn cipher(&self) -> &StoreCipher {
        &self.cipher
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.conn.path()).field("keys", &"[redacted]").finish()
    }
}

/// Connection settings that write nothing to the file.
fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Every statement the store prepares fits (rusqlite's default keeps 16).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "foreign_keys", true)?;
    // Durable at commit, power loss included: the relay deletes a message once its processing
    // committed, so a rolled-back commit would lose it.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Deleted rows (disappearing messages, tombstones, old key wrappings) are overwritten with zeros.
    conn.pragma_update(None, "secure_delete", true)?;
    Ok(())
}

/// WAL journal for files: readers do not block the writer, and commits append. In-memory databases
/// and VFSes without shared memory (the browser's) keep their own journal.
fn enable_wal(conn: &Connection) -> Result<()> {
    #[cfg(not(target_arch = "wasm32"))]
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    #[cfg(target_arch = "wasm32")]
    let _ = conn;
    Ok(())
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Database(e.to_string())
    }
}
