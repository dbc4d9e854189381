//! The store's schema: numbered SQL migrations, applied in order, one transaction each, with the
//! schema version in `PRAGMA user_version`.
//!
//! To change the schema, add `migrations/NNNN_what.sql` (the next number) and one entry to
//! [`MIGRATIONS`]; never edit a migration that has shipped. A step that must rewrite encrypted
//! values (re-encode a record, move a value to a new table) adds a Rust `data` step, which runs in
//! the same transaction after the SQL with the unwrapped store key. Then add a fixture of the
//! previous version to `test-vectors/store/` (see `core/tests/store.rs`, `HUSH_WRITE_VECTORS=1`) so
//! the test opens a store of every shipped version with the new code.
//!
//! The `meta` table's key-wrapping rows are read before migrations run (the key is needed for data
//! steps), so their layout must never change.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::cipher::StoreCipher;
use crate::error::{Error, Result};

/// One schema step.
pub(crate) struct Migration {
    /// The `user_version` after this step.
    pub(crate) version: u32,
    /// The schema change.
    pub(crate) sql: &'static str,
    /// Rewrites of encrypted values this step needs, if any.
    pub(crate) data: Option<fn(&Transaction<'_>, &StoreCipher) -> Result<()>>,
}

/// Every migration, in order; `MIGRATIONS[i].version == i + 1`.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: include_str!("migrations/0001_initial.sql"), data: None },
    Migration { version: 2, sql: include_str!("migrations/0002_expiry_index_all_rows.sql"), data: None },
    Migration { version: 3, sql: include_str!("migrations/0003_sent_log.sql"), data: None },
];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: u32 = 3;

/// The file's schema version (0 for a database hush never touched).
pub(crate) fn user_version(conn: &Connection) -> Result<u32> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    u32::try_from(version).map_err(|_| Error::StoreCorrupt { table: "meta" })
}

/// Brings the schema up to [`SCHEMA_VERSION`], one transaction per step, so a crash leaves the file
/// at some whole version. A file newer than this build is refused before anything is written.
pub(crate) fn migrate(conn: &mut Connection, cipher: &StoreCipher) -> Result<()> {
    let current = user_version(conn)?;
    if current > SCHEMA_VERSION {
        return Err(Error::UnsupportedVersion { what: "store schema", version: current });
    }
    for step in MIGRATIONS.iter().filter(|m| m.version > current) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another connection may have migrated meanwhile: re-check under the write lock.
        if user_version(&tx)? >= step.version {
            continue;
        }
        tx.execute_batch(step.sql)?;
        if let Some(data) = step.data {
            data(&tx, cipher)?;
        }
        tx.pragma_update(None, "user_version", step.version)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_end_at_the_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            assert!(!m.sql.trim().is_empty());
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }

    #[test]
    fn migrate_is_idempotent_and_refuses_newer_files() {
        let mut conn = Connection::open_in_memory().unwrap();
        let cipher = StoreCipher::generate().unwrap();
        assert_eq!(user_version(&conn).unwrap(), 0);
        migrate(&mut conn, &cipher).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        migrate(&mut conn, &cipher).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        assert_eq!(
            migrate(&mut conn, &cipher),
            Err(Error::UnsupportedVersion { what: "store schema", version: SCHEMA_VERSION + 1 })
        );
    }

    #[test]
    fn a_failing_step_leaves_the_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        // A table the first migration creates already exists: the step fails as a whole.
        conn.execute_batch("CREATE TABLE settings (x)").unwrap();
        let cipher = StoreCipher::generate().unwrap();
        assert!(matches!(migrate(&mut conn, &cipher), Err(Error::Database(_))));
        assert_eq!(user_version(&conn).unwrap(), 0);
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).unwrap();
        assert_eq!(tables, 1);
    }
}
