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
//! - **One user, no rollback.** A store file has an anchor beside it (`anchor`): its OS lock keeps a
//!   second open out ([`Error::StoreInUse`]), and it records the store's generation, which every
//!   writing transaction raises, so an older copy of the file put back is noticed at open
//!   ([`Error::StoreRolledBack`]) and opens only read-only.
//!
//! ## What the file shows to someone who has it but not the key
//! No plaintext, no key, no user key, conversation id or message id. Visible: the number of rows in
//! each table and the values' sizes; which messages belong to the same conversation (equal
//! conversation HMACs, not which conversation it is); each message's sender timestamp (`sent_at`,
//! the pagination order) and expiry time; the outbox's retry times and when relay ids were
//! processed; which messages share a word (equal search tokens, not the word). SQLite overwrites
//! deleted content (`secure_delete`), and changing the unlock checkpoints the WAL, but flash storage
//! may keep old copies of pages: a deleted value is gone for good only once the store key is.

#[cfg(not(target_arch = "wasm32"))]
mod anchor;
mod cipher;
mod contact;
mod conversation;
mod history;
mod outbox;
mod records;
mod schema;
mod search;
mod sent_log;
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

#[cfg(not(target_arch = "wasm32"))]
use anchor::{Anchor, Anchored};

pub use contact::{Contact, ContactState};
pub use conversation::{Conversation, ConversationId};
pub use history::{HistoryCursor, MessageStatus, StoredMessage};
pub use outbox::OutboxItem;
pub use sent_log::SentCopy;
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
    generation: Option<Generation>,
}

/// A file store's generation (§14.16): the number of its writing transactions, kept in the store
/// and, after each commit, in its anchor. In-memory and image stores have none.
pub(crate) struct Generation {
    #[cfg(not(target_arch = "wasm32"))]
    anchor: Anchor,
    /// The generation of the last commit.
    current: u64,
    /// Opened with [`Store::open_read_only`]: every writing commit fails [`Error::StoreReadOnly`].
    read_only: bool,
}

impl Generation {
    /// Records `next` as the generation just committed, in memory and in the anchor.
    fn committed(&mut self, next: u64) -> Result<()> {
        self.current = next;
        #[cfg(not(target_arch = "wasm32"))]
        self.anchor.write(next)?;
        Ok(())
    }
}

/// How a file store is opened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    ReadOnly,
}

impl Store {
    /// Creates a store in a new file at `path` (or in an empty database file), with a fresh random
    /// store key wrapped for `unlock`. A file that already holds a store (or anything else) is
    /// [`Error::StoreExists`]; it is not touched.
    ///
    /// The store's anchor file (`path` + `-anchor`) is created beside it and locked while the store
    /// is open: [`Error::StoreInUse`] if another open store holds it.
    pub fn create(path: impl AsRef<Path>, unlock: Unlock) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path.as_ref(), flags)?;
        #[cfg(not(target_arch = "wasm32"))]
        {
            let mut anchor = Anchor::lock(path.as_ref())?;
            let mut store = Self::init(conn, &unlock)?;
            anchor.key_with(&store.cipher)?;
            anchor.write(0)?;
            store.generation = Some(Generation { anchor, current: 0, read_only: false });
            Ok(store)
        }
        #[cfg(target_arch = "wasm32")]
        Self::init(conn, &unlock)
    }

    /// Opens the store at `path`. A wrong key or passphrase is [`Error::WrongStoreKey`] and writes
    /// nothing; a store written by a newer build is [`Error::UnsupportedVersion`]. Pending schema
    /// migrations run after the unlock, one transaction each.
    ///
    /// [`Error::StoreInUse`] while another open store holds the file (§14.16);
    /// [`Error::StoreRolledBack`] when the file is older than the state its anchor records (a
    /// backup or copy put back, or a file moved without its anchor): its ratchet states and
    /// one-time prekeys may have been used since, so it is refused before anything is written.
    /// [`Store::open_read_only`] still reads it.
    pub fn open(path: impl AsRef<Path>, unlock: Unlock) -> Result<Self> {
        Self::open_file(path.as_ref(), &unlock, Access::ReadWrite)
    }

    /// Opens the store at `path` for reading only, a rolled-back one included: history, contacts
    /// and conversations read as usual, but every transaction that would write fails
    /// [`Error::StoreReadOnly`], no migration runs (a store of an older schema is
    /// [`Error::UnsupportedVersion`]), and a client on it sends nothing. It takes the lock as
    /// [`Store::open`] does.
    pub fn open_read_only(path: impl AsRef<Path>, unlock: Unlock) -> Result<Self> {
        Self::open_file(path.as_ref(), &unlock, Access::ReadOnly)
    }

    /// Whether this store was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.generation.as_ref().is_some_and(|g| g.read_only)
    }

    fn open_file(path: &Path, unlock: &Unlock, access: Access) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        #[cfg(not(target_arch = "wasm32"))]
        {
            let mut anchor = Anchor::lock(path)?;
            let (mut conn, cipher) = Self::unlock_key(conn, unlock)?;
            anchor.key_with(&cipher)?;
            let stored = tx::stored_generation(&mut conn, &cipher)?;
            let rolled_back = match anchor.read()? {
                Anchored::Empty if stored == 0 => None,
                Anchored::Generation(g) if stored >= g => None,
                Anchored::Empty | Anchored::Unauthentic => Some(None),
                Anchored::Generation(g) => Some(Some(g)),
            };
            match (rolled_back, access) {
                (Some(anchored), Access::ReadWrite) => return Err(Error::StoreRolledBack { stored, anchored }),
                (_, Access::ReadOnly) => {
                    let version = schema::user_version(&conn)?;
                    if version != schema::SCHEMA_VERSION {
                        return Err(Error::UnsupportedVersion { what: "store schema (read-only)", version });
                    }
                    let generation = Some(Generation { anchor, current: stored, read_only: true });
                    return Ok(Self { conn, cipher, generation });
                }
                (None, Access::ReadWrite) => {}
            }
            // A store ahead of its anchor (a crash between a commit and the anchor's write, or a
            // store from before anchors) is the newest state there is: the anchor catches up.
            let mut generation = Generation { anchor, current: stored, read_only: false };
            generation.committed(stored)?;
            enable_wal(&conn)?;
            schema::migrate(&mut conn, &cipher)?;
            Ok(Self { conn, cipher, generation: Some(generation) })
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = access;
            Self::unlock(conn, unlock)
        }
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
    fn unlock(conn: Connection, unlock: &Unlock) -> Result<Self> {
        let (mut conn, cipher) = Self::unlock_key(conn, unlock)?;
        enable_wal(&conn)?;
        schema::migrate(&mut conn, &cipher)?;
        Ok(Self { conn, cipher, generation: None })
    }

    /// The checks and unlock of an existing store on `conn`; writes nothing.
    fn unlock_key(conn: Connection, unlock: &Unlock) -> Result<(Connection, StoreCipher)> {
        configure(&conn)?;
        let version = schema::user_version(&conn)?;
        if version == 0 {
            return Err(Error::Malformed { what: "store file" });
        }
        if version > schema::SCHEMA_VERSION {
            return Err(Error::UnsupportedVersion { what: "store schema", version });
        }
        let cipher = WrappedKey::load(&conn)?.unwrap(unlock)?;
        Ok((conn, cipher))
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
        Ok(Self { conn, cipher, generation: None })
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
        Ok(Self { conn, cipher, generation: None })
    }

    /// Rewraps the store key for `new` (a new passphrase, new Argon2id parameters, or a raw key);
    /// no value is re-encrypted. The old key or passphrase stops working at once. Argon2id runs
    /// before the write, so the write lock is held only for the swap.
    pub fn change_unlock(&mut self, new: Unlock) -> Result<()> {
        if self.is_read_only() {
            return Err(Error::StoreReadOnly);
        }
        let wrapped = WrappedKey::wrap(&self.cipher, &new)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        wrapped.save(&tx)?;
        tx.commit()?;
        // Copy the new page into the main file and empty the WAL, so the old wrapping does not
        // linger there (secure_delete already overwrote it in the page itself).
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Deletes every row of every table (the key wrapping and the generation stay): for a device
    /// removed from its user (docs/PROTOCOL.md §12.9). SQLite overwrites the deleted content
    /// (`secure_delete`) and the WAL is checkpointed and emptied; delete the files as well.
    pub fn wipe(&mut self) -> Result<()> {
        let tx = self.transaction()?;
        tx.delete_every_row()?;
        tx.commit()?;
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Begins a transaction, taking the write lock. Commit it with [`StoreTx::commit`]; dropping it
    /// rolls everything back.
    pub fn transaction(&mut self) -> Result<StoreTx<'_>> {
        let Store { conn, cipher, generation } = self;
        Ok(StoreTx::new(conn.transaction_with_behavior(TransactionBehavior::Immediate)?, cipher, generation.as_mut()))
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
