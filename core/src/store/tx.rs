//! [`StoreTx`]: one SQLite transaction over the store, and the rows that are one encrypted value
//! under one blind lookup (account, user key, peers, groups, settings), plus processed relay ids.

use core::fmt;

use rusqlite::{OptionalExtension, Row, Transaction, params};
use zeroize::Zeroizing;

use super::Generation;
use super::cipher::{StoreCipher, Table};
use crate::account::Account;
use crate::crypto::SigningPublicKey;
use crate::error::{Error, Result};
use crate::group::{Group, GroupId};
use crate::identity::UserIdentity;
use crate::limits::PROCESSED_RELAY_ID_RETENTION_MS;
use crate::peer::PeerUser;

/// The natural key of the single-row tables.
const SINGLETON: &[u8] = b"self";
/// The setting holding the store's generation (§14.16), BE64; the client's own settings are
/// named `client/…`.
const SETTING_GENERATION: &str = "store/generation";

/// One transaction over the store, holding SQLite's write lock. Every read and write of the store
/// goes through one. [`commit`](Self::commit) makes its writes durable at once; dropping it
/// instead rolls all of them back.
pub struct StoreTx<'a> {
    pub(crate) tx: Transaction<'a>,
    pub(crate) cipher: &'a StoreCipher,
    /// A file store's generation, raised by a commit that writes.
    generation: Option<&'a mut Generation>,
    /// The connection's change count when the transaction began.
    changes_at_begin: u64,
}

impl fmt::Debug for StoreTx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreTx([redacted])")
    }
}

impl<'a> StoreTx<'a> {
    pub(crate) fn new(tx: Transaction<'a>, cipher: &'a StoreCipher, generation: Option<&'a mut Generation>) -> Self {
        let changes_at_begin = tx.total_changes();
        Self { tx, cipher, generation, changes_at_begin }
    }

    /// Commits every write of this transaction. In a file store a transaction that wrote raises
    /// the store's generation in the same commit, then in its anchor (§14.16); in a store opened
    /// read-only it is rolled back and fails [`Error::StoreReadOnly`].
    pub fn commit(self) -> Result<()> {
        let wrote = self.tx.total_changes() != self.changes_at_begin;
        let StoreTx { tx, cipher, generation, .. } = self;
        let Some(generation) = generation.filter(|_| wrote) else { return Ok(tx.commit()?) };
        if generation.read_only {
            tx.rollback()?;
            return Err(Error::StoreReadOnly);
        }
        let next = generation.current.checked_add(1).ok_or(Error::Internal("store generation"))?;
        put_generation(&tx, cipher, next)?;
        tx.commit()?;
        // The store is now ahead of its anchor until this returns: an open in between (after a
        // crash) finds the newest state and lets the anchor catch up.
        generation.committed(next)
    }

    /// Rolls every write of this transaction back (as dropping it does, but reporting errors).
    pub fn rollback(self) -> Result<()> {
        Ok(self.tx.rollback()?)
    }

    /// Runs `step` inside a savepoint of this transaction: its writes stay when it returns `Ok`
    /// and are undone, alone, when it returns `Err` (the writes before it stay either way). A batch
    /// of envelopes shares one transaction this way without one failing envelope taking its
    /// neighbours down (docs/PROTOCOL.md §16.3). Savepoints nest.
    pub fn savepoint<T>(&self, step: impl FnOnce() -> Result<T>) -> Result<T> {
        self.tx.prepare_cached("SAVEPOINT step")?.execute([])?;
        let result = step();
        if result.is_err() {
            self.tx.prepare_cached("ROLLBACK TO step")?.execute([])?;
        }
        // After a rollback the savepoint is still open (at its start); releasing it ends it.
        self.tx.prepare_cached("RELEASE step")?.execute([])?;
        result
    }

    /// Deletes every row of every table but `meta` ([`Store::wipe`](super::Store::wipe)).
    pub(crate) fn delete_every_row(&self) -> Result<()> {
        for table in Table::ALL {
            self.tx.execute(&format!("DELETE FROM {}", table.name()), [])?;
        }
        Ok(())
    }

    // ---- Generic rows: (lookup, encrypted value) ----

    /// The decrypted value of the row of `table` whose lookup is `lookup`.
    pub(crate) fn get_value(&self, table: Table, lookup: &[u8; 32]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let sql = format!("SELECT value FROM {} WHERE lookup = ?1", table.name());
        let stored: Option<Vec<u8>> =
            self.tx.prepare_cached(&sql)?.query_row([lookup.as_slice()], |row| row.get(0)).optional().map_err(|e| {
                match e {
                    rusqlite::Error::InvalidColumnType(..) | rusqlite::Error::FromSqlConversionFailure(..) => {
                        table.corrupt()
                    }
                    e => e.into(),
                }
            })?;
        stored.map(|v| self.cipher.open(table, lookup, &v)).transpose()
    }

    /// Encrypts `plaintext` into the row of `table` whose lookup is `lookup`, replacing any value.
    pub(crate) fn put_value(&self, table: Table, lookup: &[u8; 32], plaintext: &[u8]) -> Result<()> {
        let sealed = self.cipher.seal(table, lookup, plaintext)?;
        let sql = format!(
            "INSERT INTO {} (lookup, value) VALUES (?1, ?2) ON CONFLICT (lookup) DO UPDATE SET value = excluded.value",
            table.name()
        );
        self.tx.prepare_cached(&sql)?.execute(params![lookup.as_slice(), sealed])?;
        Ok(())
    }

    /// Deletes the row of `table` whose lookup is `lookup`; whether there was one.
    pub(crate) fn delete_value(&self, table: Table, lookup: &[u8; 32]) -> Result<bool> {
        let sql = format!("DELETE FROM {} WHERE lookup = ?1", table.name());
        Ok(self.tx.prepare_cached(&sql)?.execute([lookup.as_slice()])? > 0)
    }

    /// Every decrypted value of `table`, in lookup order (which reveals nothing: lookups are HMACs).
    pub(crate) fn all_values(&self, table: Table) -> Result<Vec<Zeroizing<Vec<u8>>>> {
        let sql = format!("SELECT lookup, value FROM {} ORDER BY lookup", table.name());
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let lookup = lookup32(row, 0, table)?;
            out.push(self.cipher.open(table, &lookup, &blob(row, 1, table)?)?);
        }
        Ok(out)
    }

    // ---- Account and user key ----

    /// This device's account, if one was stored.
    pub fn account(&self) -> Result<Option<Account>> {
        let lookup = self.cipher.lookup(Table::Account, SINGLETON)?;
        self.get_value(Table::Account, &lookup)?.map(|v| Account::from_bytes(&v)).transpose()
    }

    /// Stores this device's account (after every change to its prekeys or replay memory).
    pub fn put_account(&self, account: &Account) -> Result<()> {
        let lookup = self.cipher.lookup(Table::Account, SINGLETON)?;
        self.put_value(Table::Account, &lookup, &account.to_bytes())
    }

    /// The user key, if this device holds it.
    pub fn user(&self) -> Result<Option<UserIdentity>> {
        let lookup = self.cipher.lookup(Table::User, SINGLETON)?;
        let Some(value) = self.get_value(Table::User, &lookup)? else { return Ok(None) };
        if value.len() != 32 {
            return Err(Table::User.corrupt());
        }
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&value);
        Ok(Some(UserIdentity::from_secret_bytes(&secret)))
    }

    /// Stores the user key (on the primary device only, docs/PROTOCOL.md §12).
    pub fn put_user(&self, user: &UserIdentity) -> Result<()> {
        let lookup = self.cipher.lookup(Table::User, SINGLETON)?;
        self.put_value(Table::User, &lookup, user.secret_bytes().as_slice())
    }

    /// Deletes the user key (a linked device's copy from before §12.10); whether one was stored.
    pub fn delete_user(&self) -> Result<bool> {
        let lookup = self.cipher.lookup(Table::User, SINGLETON)?;
        self.delete_value(Table::User, &lookup)
    }

    // ---- Peers ----

    /// The peer user with this (pinned) user key: device list, sessions, trust state.
    pub fn peer(&self, user_key: &SigningPublicKey) -> Result<Option<PeerUser>> {
        let lookup = self.cipher.lookup(Table::Peers, user_key.as_bytes())?;
        self.get_value(Table::Peers, &lookup)?.map(|v| PeerUser::from_bytes(&v)).transpose()
    }

    /// Stores a peer user under its pinned user key, replacing any earlier state.
    pub fn put_peer(&self, peer: &PeerUser) -> Result<()> {
        let lookup = self.cipher.lookup(Table::Peers, peer.user_key().as_bytes())?;
        self.put_value(Table::Peers, &lookup, &peer.to_bytes())
    }

    /// Deletes a peer user (e.g. under its old key after an accepted identity change); whether one
    /// was stored.
    pub fn delete_peer(&self, user_key: &SigningPublicKey) -> Result<bool> {
        let lookup = self.cipher.lookup(Table::Peers, user_key.as_bytes())?;
        self.delete_value(Table::Peers, &lookup)
    }

    /// Every stored peer user, in no meaningful order.
    pub fn peers(&self) -> Result<Vec<PeerUser>> {
        self.all_values(Table::Peers)?.iter().map(|v| PeerUser::from_bytes(v)).collect()
    }

    // ---- Groups ----

    /// The group with this id: roster log, sender chains.
    pub fn group(&self, id: &GroupId) -> Result<Option<Group>> {
        let lookup = self.cipher.lookup(Table::Groups, &id.to_bytes())?;
        self.get_value(Table::Groups, &lookup)?.map(|v| Group::from_bytes(&v)).transpose()
    }

    /// Stores a group under its id, replacing any earlier state.
    pub fn put_group(&self, group: &Group) -> Result<()> {
        let lookup = self.cipher.lookup(Table::Groups, &group.id().to_bytes())?;
        self.put_value(Table::Groups, &lookup, &group.to_bytes())
    }

    /// Deletes a group; whether one was stored.
    pub fn delete_group(&self, id: &GroupId) -> Result<bool> {
        let lookup = self.cipher.lookup(Table::Groups, &id.to_bytes())?;
        self.delete_value(Table::Groups, &lookup)
    }

    /// Every stored group, in no meaningful order.
    pub fn groups(&self) -> Result<Vec<Group>> {
        self.all_values(Table::Groups)?.iter().map(|v| Group::from_bytes(v)).collect()
    }

    // ---- Settings ----

    /// The client's setting `name` (relay URL, last prekey upload, …), if set.
    pub fn setting(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let lookup = self.cipher.lookup(Table::Settings, name.as_bytes())?;
        self.get_value(Table::Settings, &lookup)
    }

    /// Sets the client's setting `name` to `value`.
    pub fn put_setting(&self, name: &str, value: &[u8]) -> Result<()> {
        let lookup = self.cipher.lookup(Table::Settings, name.as_bytes())?;
        self.put_value(Table::Settings, &lookup, value)
    }

    /// Removes the setting `name`; whether it was set.
    pub fn delete_setting(&self, name: &str) -> Result<bool> {
        let lookup = self.cipher.lookup(Table::Settings, name.as_bytes())?;
        self.delete_value(Table::Settings, &lookup)
    }

    // ---- Processed relay message ids ----

    /// Records that the relay message `relay_message_id` was processed at `now_ms`: `true` the
    /// first time, `false` if it was seen before (then ack it again and do nothing else).
    pub fn mark_processed(&self, relay_message_id: u64, now_ms: u64) -> Result<bool> {
        let lookup = self.cipher.lookup(Table::Processed, &relay_message_id.to_be_bytes())?;
        let inserted = self
            .tx
            .prepare_cached("INSERT INTO processed (lookup, seen_at) VALUES (?1, ?2) ON CONFLICT (lookup) DO NOTHING")?
            .execute(params![lookup.as_slice(), sql_time(now_ms)])?;
        Ok(inserted > 0)
    }

    /// Whether the relay message `relay_message_id` was processed (and not pruned since).
    pub fn is_processed(&self, relay_message_id: u64) -> Result<bool> {
        let lookup = self.cipher.lookup(Table::Processed, &relay_message_id.to_be_bytes())?;
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM processed WHERE lookup = ?1")?
            .query_row([lookup.as_slice()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Forgets processed ids first seen more than [`PROCESSED_RELAY_ID_RETENTION_MS`] before
    /// `now_ms` (the relay expires messages well before that); how many.
    pub fn prune_processed(&self, now_ms: u64) -> Result<usize> {
        let cutoff = sql_time(now_ms.saturating_sub(PROCESSED_RELAY_ID_RETENTION_MS));
        Ok(self.tx.prepare_cached("DELETE FROM processed WHERE seen_at < ?1")?.execute([cutoff])?)
    }
}

/// A BLOB column; any other type is a corrupt row of `table`.
pub(crate) fn blob(row: &Row<'_>, idx: usize, table: Table) -> Result<Vec<u8>> {
    row.get(idx).map_err(|_| table.corrupt())
}

/// An INTEGER column; any other type is a corrupt row of `table`.
pub(crate) fn integer(row: &Row<'_>, idx: usize, table: Table) -> Result<i64> {
    row.get(idx).map_err(|_| table.corrupt())
}

/// A time in ms as an SQLite integer (signed 64-bit). Times past year 292 million saturate.
pub(crate) fn sql_time(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// A 32-byte lookup from a BLOB column.
pub(crate) fn lookup32(row: &Row<'_>, idx: usize, table: Table) -> Result<[u8; 32]> {
    blob(row, idx, table)?.as_slice().try_into().map_err(|_| table.corrupt())
}

/// The generation a store file holds (§14.16): 0 for a store that never committed a write since
/// it got an anchor. Reads in a transaction of its own, which it rolls back.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn stored_generation(conn: &mut rusqlite::Connection, cipher: &StoreCipher) -> Result<u64> {
    let tx = conn.transaction()?;
    let lookup = cipher.lookup(Table::Settings, SETTING_GENERATION.as_bytes())?;
    let sql = "SELECT value FROM settings WHERE lookup = ?1";
    let stored: Option<Vec<u8>> = tx.query_row(sql, [lookup.as_slice()], |row| row.get(0)).optional()?;
    let Some(stored) = stored else { return Ok(0) };
    let value = cipher.open(Table::Settings, &lookup, &stored)?;
    let bytes: [u8; 8] = value.as_slice().try_into().map_err(|_| Table::Settings.corrupt())?;
    Ok(u64::from_be_bytes(bytes))
}

fn put_generation(tx: &Transaction<'_>, cipher: &StoreCipher, generation: u64) -> Result<()> {
    let lookup = cipher.lookup(Table::Settings, SETTING_GENERATION.as_bytes())?;
    let sealed = cipher.seal(Table::Settings, &lookup, &generation.to_be_bytes())?;
    let sql = "INSERT INTO settings (lookup, value) VALUES (?1, ?2) ON CONFLICT (lookup) DO UPDATE SET value = excluded.value";
    tx.prepare_cached(sql)?.execute(params![lookup.as_slice(), sealed])?;
    Ok(())
}
