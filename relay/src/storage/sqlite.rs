//! The SQLite backend (the default): one file in WAL mode, one writer connection owned by a writer
//! thread, and a small pool of readers driven on tokio's blocking thread pool. Numbered migrations,
//! one transaction each, with `PRAGMA user_version`. `secure_delete` is on, so acked messages leave no
//! bytes behind.
//!
//! Group commit: every write (a send, an ack, a prekey upload …) is a job queued to the writer thread.
//! The thread takes all jobs waiting (up to [`MAX_BATCH`]), runs each in its own savepoint inside one
//! transaction — a job that fails rolls back only its savepoint, exactly as if it had been its own
//! transaction — commits once (one fsync with `synchronous = FULL`) and only then answers each caller.
//! So a write is still durable when its method returns, and jobs run in arrival order, but concurrent
//! writers share the cost of the fsync instead of queueing behind one fsync each.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, mpsc as std_mpsc};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    BundleParts, DeviceId, Expired, LogAppend, LogPage, LogRetention, NewMessage, PrekeyUpload, Quota, Storage,
    StorageResult, StoredMessage, Submitted,
};
use crate::error::StorageError;
use crate::limits::MAX_STORED_ONE_TIME_PREKEYS;

/// Migrations, applied in order; `PRAGMA user_version` is the number applied. Never edit one that
/// shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE devices (
        device_key BLOB PRIMARY KEY,
        registered_at INTEGER NOT NULL,
        device_keys BLOB,
        delivery_token_hash BLOB,
        push_endpoint TEXT,
        queued_count INTEGER NOT NULL DEFAULT 0,
        queued_bytes INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE device_lists (
        user_key BLOB PRIMARY KEY,
        list_version INTEGER NOT NULL,
        signed_list BLOB NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE signed_prekeys (device_key BLOB PRIMARY KEY, prekey BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE last_resort_kem_prekeys (device_key BLOB PRIMARY KEY, prekey BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE one_time_prekeys (
        device_key BLOB NOT NULL, id INTEGER NOT NULL, prekey BLOB NOT NULL, PRIMARY KEY (device_key, id)
    ) WITHOUT ROWID;
    CREATE TABLE kem_prekeys (
        device_key BLOB NOT NULL, id INTEGER NOT NULL, prekey BLOB NOT NULL, PRIMARY KEY (device_key, id)
    ) WITHOUT ROWID;
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient BLOB NOT NULL,
        sender BLOB,
        payload BLOB NOT NULL,
        received_at INTEGER NOT NULL
    );
    CREATE INDEX messages_by_recipient ON messages (recipient, id);
    CREATE INDEX messages_by_age ON messages (received_at);
    CREATE TABLE upload_tokens (token_hash BLOB PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE blobs (id BLOB PRIMARY KEY, size INTEGER NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID;",
    // 2: group logs (docs/PROTOCOL.md §11.9): the head of each (its epoch and append key, the oldest
    // entry held, the bytes held), the entries, and how many logs each device created.
    "CREATE TABLE group_logs (
        log_id BLOB PRIMARY KEY,
        epoch INTEGER NOT NULL,
        append_key BLOB NOT NULL,
        first_epoch INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE group_log_entries (
        log_id BLOB NOT NULL, epoch INTEGER NOT NULL, entry BLOB NOT NULL, PRIMARY KEY (log_id, epoch)
    ) WITHOUT ROWID;
    CREATE TABLE group_log_creators (device_key BLOB PRIMARY KEY, count INTEGER NOT NULL) WITHOUT ROWID;",
    // 3: which user each device published a list of, and the devices a newer list revoked.
    "CREATE TABLE device_users (device_key BLOB PRIMARY KEY, user_key BLOB NOT NULL) WITHOUT ROWID;
    CREATE INDEX device_users_by_user ON device_users (user_key);
    CREATE TABLE revoked_devices (
        device_key BLOB PRIMARY KEY, user_key BLOB NOT NULL, revoked_at INTEGER NOT NULL
    ) WITHOUT ROWID;",
];

/// Reader connections opened at start.
const READERS: usize = 2;

/// Most reader connections kept open: reads past this many at once open (and close) their own.
const MAX_IDLE_READERS: usize = 16;

/// Most write jobs committed in one transaction.
const MAX_BATCH: usize = 512;

/// A write queued to the writer thread.
trait WriteJob: Send {
    /// Runs the job inside the batch's transaction (in its own savepoint); true when it succeeded
    /// (its writes stay), false when it failed (its savepoint is rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller after the batch's commit: its own result when the commit succeeded (or the
    /// job had failed anyway), else the commit's error.
    fn finish(self: Box<Self>, commit: Result<(), &str>);
}

struct Job<T, F> {
    work: Option<F>,
    result: Option<StorageResult<T>>,
    reply: tokio::sync::oneshot::Sender<StorageResult<T>>,
}

impl<T, F> WriteJob for Job<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> StorageResult<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else { return false };
        // A bug that panics in one job must not take the writer thread (and every later write) down.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(StorageError::Task("a storage write panicked".into())));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), &str>) {
        let result = match (self.result, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(out)), Ok(())) => Ok(out),
            (Some(Ok(_)) | None, Err(e)) => Err(StorageError::Database(e.to_string())),
            (None, Ok(())) => Err(StorageError::Task("write job not run".into())),
        };
        // The caller may have gone away (its task was cancelled); the write stands regardless.
        let _ = self.reply.send(result);
    }
}

/// The writer thread: takes every job waiting, runs them in one transaction, commits, answers.
fn writer_loop(mut conn: Connection, jobs: std_mpsc::Receiver<Box<dyn WriteJob>>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = Vec::with_capacity(64);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = run_batch(&mut conn, &mut batch);
        let commit = outcome.as_ref().map(|_| ()).map_err(|e| e.as_str());
        for job in batch {
            job.finish(commit);
        }
    }
}

/// Runs a batch in one immediate transaction with one savepoint per job, and commits it.
fn run_batch(conn: &mut Connection, batch: &mut [Box<dyn WriteJob>]) -> Result<(), String> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| e.to_string())?;
    for job in batch.iter_mut() {
        // Cached statements: the writer thread runs these per job, tens of thousands of times a second.
        tx.prepare_cached("SAVEPOINT job").and_then(|mut s| s.execute([])).map_err(|e| e.to_string())?;
        let ok = job.run(&tx);
        if tx.is_autocommit() {
            // SQLite rolled the whole transaction back (disk full, I/O error): nothing of the batch stands.
            return Err("the transaction was rolled back by the database".into());
        }
        if !ok {
            tx.prepare_cached("ROLLBACK TO job").and_then(|mut s| s.execute([])).map_err(|e| e.to_string())?;
        }
        tx.prepare_cached("RELEASE job").and_then(|mut s| s.execute([])).map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())
}

/// Queues a batch (the body of [`Storage::enqueue`], run in a writer transaction).
fn enqueue_tx(tx: &Connection, batch: &[NewMessage], quota: Quota, now_ms: u64) -> StorageResult<Vec<u64>> {
    let mut usage: HashMap<DeviceId, (u64, u64)> = HashMap::new();
    let mut ids = Vec::with_capacity(batch.len());
    let mut insert = tx.prepare_cached(
        "INSERT INTO messages (recipient, sender, payload, received_at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
    )?;
    for (index, m) in batch.iter().enumerate() {
        let (count, bytes) = match usage.get(&m.recipient) {
            Some(u) => *u,
            None => tx
                .prepare_cached("SELECT queued_count, queued_bytes FROM devices WHERE device_key = ?1")?
                .query_row([&m.recipient[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .ok_or(StorageError::UnknownRecipient { index })?,
        };
        let (count, bytes) = (count + 1, bytes + m.payload.len() as u64);
        if count > quota.messages || bytes > quota.bytes {
            return Err(StorageError::QuotaExceeded { index });
        }
        usage.insert(m.recipient, (count, bytes));
        let sender = m.sender.as_ref().map(|s| &s[..]);
        let id: u64 = insert.query_row(params![&m.recipient[..], sender, m.payload, now_ms], |r| r.get(0))?;
        ids.push(id);
    }
    let mut update =
        tx.prepare_cached("UPDATE devices SET queued_count = ?2, queued_bytes = ?3 WHERE device_key = ?1")?;
    for (device, (count, bytes)) in usage {
        update.execute(params![&device[..], count, bytes])?;
    }
    Ok(ids)
}

/// Deletes acked messages (the body of [`Storage::ack`], run in a writer transaction).
fn ack_tx(tx: &Connection, device: DeviceId, ids: Vec<u64>) -> StorageResult<u64> {
    let d = &device[..];
    let mut delete =
        tx.prepare_cached("DELETE FROM messages WHERE recipient = ?1 AND id = ?2 RETURNING length(payload)")?;
    let (mut count, mut bytes) = (0u64, 0u64);
    for id in ids {
        if let Some(len) = delete.query_row(params![d, id], |r| r.get::<_, u64>(0)).optional()? {
            count += 1;
            bytes += len;
        }
    }
    if count > 0 {
        tx.prepare_cached(
            "UPDATE devices SET queued_count = MAX(queued_count - ?2, 0), queued_bytes = MAX(queued_bytes - ?3, 0)
             WHERE device_key = ?1",
        )?
        .execute(params![d, count, bytes])?;
    }
    Ok(count)
}

/// SQLite storage in one file.
#[derive(Clone)]
pub struct SqliteStorage {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Jobs for the writer thread, which ends when this (the last sender) is dropped.
    jobs: Mutex<std_mpsc::Sender<Box<dyn WriteJob>>>,
    readers: Mutex<Vec<Connection>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in a closure cannot leave a transaction open (dropping it rolls back), so the
    // connection behind a poisoned lock is still consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn open_connection(path: &Path, writer: bool) -> StorageResult<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    if writer {
        // FULL: a commit is on disk (not only in the OS cache) before a send is acknowledged.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA secure_delete = ON;
             PRAGMA foreign_keys = ON;",
        )?;
    } else {
        conn.execute_batch("PRAGMA query_only = ON;")?;
    }
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> StorageResult<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > MIGRATIONS.len() {
        return Err(StorageError::Unsupported(format!(
            "the database has schema version {current}, this relay knows {}: upgrade the relay",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied storage migration");
    }
    Ok(())
}

fn id32(bytes: Vec<u8>, what: &'static str) -> StorageResult<[u8; 32]> {
    <[u8; 32]>::try_from(bytes).map_err(|_| StorageError::Corrupt(what))
}

/// Drops the oldest entries of a log beyond `keep`, always keeping the newest.
fn trim_group_log(tx: &Connection, log_id: &[u8], keep: LogRetention) -> StorageResult<()> {
    loop {
        let (epoch, first, bytes): (u64, u64, u64) =
            tx.query_row("SELECT epoch, first_epoch, bytes FROM group_logs WHERE log_id = ?1", [log_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        if first >= epoch || (epoch - first < keep.entries && bytes <= keep.bytes) {
            return Ok(());
        }
        let len: u64 = tx.query_row(
            "DELETE FROM group_log_entries WHERE log_id = ?1 AND epoch = ?2 RETURNING length(entry)",
            params![log_id, first],
            |r| r.get(0),
        )?;
        tx.execute(
            "UPDATE group_logs SET first_epoch = first_epoch + 1, bytes = bytes - ?2 WHERE log_id = ?1",
            params![log_id, len],
        )?;
    }
}

fn register(conn: &Connection, device: &DeviceId, now: u64) -> StorageResult<()> {
    conn.execute(
        "INSERT OR IGNORE INTO devices (device_key, registered_at) VALUES (?1, ?2)",
        params![&device[..], now],
    )?;
    Ok(())
}

/// Revokes the devices recorded as `user`'s that `listed` does not name (inside `put_device_list`'s
/// transaction): no more mailbox, messages, prekeys or registration; `revoked_devices` remembers them.
fn revoke_unlisted(tx: &Connection, user: &[u8; 32], listed: &[DeviceId], now: u64) -> StorageResult<()> {
    let recorded: Vec<Vec<u8>> = tx
        .prepare_cached("SELECT device_key FROM device_users WHERE user_key = ?1")?
        .query_map([&user[..]], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for device in recorded.iter().filter(|d| !listed.iter().any(|l| l[..] == d[..])) {
        tx.execute(
            "INSERT INTO revoked_devices (device_key, user_key, revoked_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (device_key) DO NOTHING",
            params![device, &user[..], now],
        )?;
        for table in
            ["device_users", "devices", "signed_prekeys", "last_resort_kem_prekeys", "one_time_prekeys", "kem_prekeys"]
        {
            tx.execute(&format!("DELETE FROM {table} WHERE device_key = ?1"), [device])?;
        }
        tx.execute("DELETE FROM messages WHERE recipient = ?1", [device])?;
    }
    Ok(())
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: impl Into<PathBuf>) -> StorageResult<Self> {
        let path = path.into();
        tokio::task::spawn_blocking(move || {
            let mut writer = open_connection(&path, true)?;
            migrate(&mut writer)?;
            let readers = (0..READERS).map(|_| open_connection(&path, false)).collect::<StorageResult<Vec<_>>>()?;
            let (jobs, queue) = std_mpsc::channel();
            std::thread::Builder::new()
                .name("hush-relay-sqlite-writer".into())
                .spawn(move || writer_loop(writer, queue))
                .map_err(|e| StorageError::Task(format!("starting the writer thread: {e}")))?;
            Ok(Self { inner: Arc::new(Inner { path, jobs: Mutex::new(jobs), readers: Mutex::new(readers) }) })
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))?
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the writer thread inside a group-committed transaction (see the module docs);
    /// returns once the transaction holding `f`'s writes committed. `f`'s writes are atomic: when it
    /// fails, none of them stay.
    async fn write<T, F>(&self, f: F) -> StorageResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StorageResult<T> + Send + 'static,
    {
        self.submit(f).await
    }

    /// Queues `f` to the writer thread now (jobs run in the order they are queued) and returns the
    /// future of its result, ready once the transaction holding `f`'s writes committed.
    fn submit<T, F>(&self, f: F) -> Submitted<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StorageResult<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Box<dyn WriteJob> = Box::new(Job { work: Some(f), result: None, reply });
        let queued = lock(&self.inner.jobs).send(job).is_ok();
        Box::pin(async move {
            if !queued {
                return Err(StorageError::Task("the writer thread stopped".into()));
            }
            answer.await.map_err(|_| StorageError::Task("the writer thread dropped a write".into()))?
        })
    }

    /// Runs `f` on a reader connection (WAL lets it read while the writer writes).
    async fn read<T, F>(&self, f: F) -> StorageResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StorageResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = lock(&inner.readers).pop();
            let conn = match conn {
                Some(c) => c,
                None => open_connection(&inner.path, false)?,
            };
            let out = f(&conn);
            let mut pool = lock(&inner.readers);
            if pool.len() < MAX_IDLE_READERS {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))?
    }
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn is_registered(&self, device: DeviceId) -> StorageResult<bool> {
        self.read(move |c| {
            Ok(c.query_row("SELECT 1 FROM devices WHERE device_key = ?1", [&device[..]], |_| Ok(()))
                .optional()?
                .is_some())
        })
        .await
    }

    async fn put_device_list(
        &self,
        publisher: DeviceId,
        user_key: [u8; 32],
        list_version: u64,
        signed_list: Vec<u8>,
        listed: Vec<DeviceId>,
        now: u64,
    ) -> StorageResult<()> {
        self.write(move |tx| {
            let stored: Option<(u64, Vec<u8>)> = tx
                .query_row(
                    "SELECT list_version, signed_list FROM device_lists WHERE user_key = ?1",
                    [&user_key[..]],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match stored {
                Some((v, bytes)) if v > list_version || (v == list_version && bytes != signed_list) => {
                    return Err(StorageError::Rollback { stored: v, received: list_version });
                }
                Some((v, _)) if v == list_version => {}
                _ => {
                    tx.execute(
                        "INSERT INTO device_lists (user_key, list_version, signed_list, updated_at)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (user_key) DO UPDATE SET list_version = excluded.list_version,
                           signed_list = excluded.signed_list, updated_at = excluded.updated_at",
                        params![&user_key[..], list_version, signed_list, now],
                    )?;
                    revoke_unlisted(tx, &user_key, &listed, now)?;
                }
            }
            register(tx, &publisher, now)?;
            tx.execute(
                "INSERT INTO device_users (device_key, user_key) VALUES (?1, ?2)
                 ON CONFLICT (device_key) DO UPDATE SET user_key = excluded.user_key",
                params![&publisher[..], &user_key[..]],
            )?;
            Ok(())
        })
        .await
    }

    async fn revoked_user(&self, device: DeviceId) -> StorageResult<Option<[u8; 32]>> {
        self.read(move |c| {
            let user: Option<Vec<u8>> = c
                .query_row("SELECT user_key FROM revoked_devices WHERE device_key = ?1", [&device[..]], |r| r.get(0))
                .optional()?;
            user.map(|u| <[u8; 32]>::try_from(u.as_slice()).map_err(|_| StorageError::Corrupt("revoked device user")))
                .transpose()
        })
        .await
    }

    async fn device_list(&self, user_key: [u8; 32]) -> StorageResult<Option<Vec<u8>>> {
        self.read(move |c| {
            Ok(c.query_row("SELECT signed_list FROM device_lists WHERE user_key = ?1", [&user_key[..]], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn publish_prekeys(&self, device: DeviceId, upload: PrekeyUpload, now: u64) -> StorageResult<()> {
        self.write(move |tx| {
            let d = &device[..];
            register(tx, &device, now)?;
            if let Some(keys) = &upload.device_keys {
                tx.execute("UPDATE devices SET device_keys = ?2 WHERE device_key = ?1", params![d, keys])?;
            }
            let has_keys: Option<Vec<u8>> =
                tx.query_row("SELECT device_keys FROM devices WHERE device_key = ?1", [d], |r| r.get(0))?;
            if has_keys.is_none() {
                return Err(StorageError::NotFound("device keys (send them with the first upload)"));
            }
            if let Some(p) = &upload.signed_prekey {
                tx.execute(
                    "INSERT OR REPLACE INTO signed_prekeys (device_key, prekey) VALUES (?1, ?2)",
                    params![d, p],
                )?;
            }
            if let Some(p) = &upload.last_resort_kem {
                tx.execute(
                    "INSERT OR REPLACE INTO last_resort_kem_prekeys (device_key, prekey) VALUES (?1, ?2)",
                    params![d, p],
                )?;
            }
            for (table, keys, what) in [
                ("one_time_prekeys", &upload.one_time, "one-time prekeys"),
                ("kem_prekeys", &upload.kem_one_time, "one-time ML-KEM prekeys"),
            ] {
                let mut insert = tx.prepare_cached(&format!(
                    "INSERT OR REPLACE INTO {table} (device_key, id, prekey) VALUES (?1, ?2, ?3)"
                ))?;
                for (id, p) in keys {
                    insert.execute(params![d, id, p])?;
                }
                let count: u64 =
                    tx.query_row(&format!("SELECT COUNT(*) FROM {table} WHERE device_key = ?1"), [d], |r| r.get(0))?;
                if count > MAX_STORED_ONE_TIME_PREKEYS {
                    return Err(StorageError::TooMany(what));
                }
            }
            Ok(())
        })
        .await
    }

    async fn device_keys(&self, device: DeviceId) -> StorageResult<Option<Vec<u8>>> {
        self.read(move |c| {
            Ok(c.query_row("SELECT device_keys FROM devices WHERE device_key = ?1", [&device[..]], |r| r.get(0))
                .optional()?
                .flatten())
        })
        .await
    }

    async fn prekey_counts(&self, device: DeviceId) -> StorageResult<(u64, u64)> {
        self.read(move |c| {
            let d = &device[..];
            let one: u64 =
                c.query_row("SELECT COUNT(*) FROM one_time_prekeys WHERE device_key = ?1", [d], |r| r.get(0))?;
            let kem: u64 = c.query_row("SELECT COUNT(*) FROM kem_prekeys WHERE device_key = ?1", [d], |r| r.get(0))?;
            Ok((one, kem))
        })
        .await
    }

    async fn take_bundle(&self, device: DeviceId) -> StorageResult<Option<BundleParts>> {
        self.write(move |tx| {
            let d = &device[..];
            let device_keys: Option<Vec<u8>> = tx
                .query_row("SELECT device_keys FROM devices WHERE device_key = ?1", [d], |r| r.get(0))
                .optional()?
                .flatten();
            let Some(device_keys) = device_keys else { return Ok(None) };
            let signed: Option<Vec<u8>> = tx
                .query_row("SELECT prekey FROM signed_prekeys WHERE device_key = ?1", [d], |r| r.get(0))
                .optional()?;
            let Some(signed_prekey) = signed else { return Ok(None) };
            let take = |table: &str| -> StorageResult<Option<Vec<u8>>> {
                Ok(tx
                    .query_row(
                        &format!(
                            "DELETE FROM {table} WHERE device_key = ?1
                               AND id = (SELECT MIN(id) FROM {table} WHERE device_key = ?1)
                             RETURNING prekey"
                        ),
                        [d],
                        |r| r.get(0),
                    )
                    .optional()?)
            };
            let one_time = take("one_time_prekeys")?;
            let kem = match take("kem_prekeys")? {
                Some(k) => Some(k),
                None => tx
                    .query_row("SELECT prekey FROM last_resort_kem_prekeys WHERE device_key = ?1", [d], |r| r.get(0))
                    .optional()?,
            };
            Ok(Some(BundleParts { device_keys, signed_prekey, one_time, kem }))
        })
        .await
    }

    async fn enqueue(&self, batch: Vec<NewMessage>, quota: Quota, now_ms: u64) -> StorageResult<Vec<u64>> {
        self.write(move |tx| enqueue_tx(tx, &batch, quota, now_ms)).await
    }

    async fn pending(&self, device: DeviceId, limit: u32) -> StorageResult<Vec<StoredMessage>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, sender, payload, received_at FROM messages WHERE recipient = ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![&device[..], limit], |r| {
                Ok((r.get::<_, u64>(0)?, r.get::<_, Option<Vec<u8>>>(1)?, r.get(2)?, r.get(3)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, sender, payload, received_at_ms) = row?;
                let sender = sender.map(|s| id32(s, "message sender")).transpose()?;
                out.push(StoredMessage { id, sender, payload, received_at_ms });
            }
            Ok(out)
        })
        .await
    }

    async fn ack(&self, device: DeviceId, ids: Vec<u64>) -> StorageResult<u64> {
        self.write(move |tx| ack_tx(tx, device, ids)).await
    }

    fn submits_in_order(&self) -> bool {
        true
    }

    fn submit_enqueue(self: Arc<Self>, batch: Vec<NewMessage>, quota: Quota, now_ms: u64) -> Submitted<Vec<u64>> {
        self.submit(move |tx| enqueue_tx(tx, &batch, quota, now_ms))
    }

    fn submit_ack(self: Arc<Self>, device: DeviceId, ids: Vec<u64>) -> Submitted<u64> {
        self.submit(move |tx| ack_tx(tx, device, ids))
    }

    async fn set_delivery_token_hash(&self, device: DeviceId, hash: Option<[u8; 32]>, now: u64) -> StorageResult<()> {
        self.write(move |tx| {
            register(tx, &device, now)?;
            let hash = hash.as_ref().map(|h| &h[..]);
            tx.execute(
                "UPDATE devices SET delivery_token_hash = ?2 WHERE device_key = ?1",
                params![&device[..], hash],
            )?;
            Ok(())
        })
        .await
    }

    async fn delivery_token_hash(&self, device: DeviceId) -> StorageResult<Option<Vec<u8>>> {
        self.read(move |c| {
            Ok(c.query_row("SELECT delivery_token_hash FROM devices WHERE device_key = ?1", [&device[..]], |r| {
                r.get(0)
            })
            .optional()?
            .flatten())
        })
        .await
    }

    async fn set_push_endpoint(&self, device: DeviceId, endpoint: Option<String>, now: u64) -> StorageResult<()> {
        self.write(move |tx| {
            register(tx, &device, now)?;
            tx.execute("UPDATE devices SET push_endpoint = ?2 WHERE device_key = ?1", params![&device[..], endpoint])?;
            Ok(())
        })
        .await
    }

    async fn push_endpoint(&self, device: DeviceId) -> StorageResult<Option<String>> {
        self.read(move |c| {
            Ok(c.query_row("SELECT push_endpoint FROM devices WHERE device_key = ?1", [&device[..]], |r| r.get(0))
                .optional()?
                .flatten())
        })
        .await
    }

    async fn put_upload_token(&self, token_hash: [u8; 32], expires_at: u64) -> StorageResult<()> {
        self.write(move |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO upload_tokens (token_hash, expires_at) VALUES (?1, ?2)",
                params![&token_hash[..], expires_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn take_upload_token(&self, token_hash: [u8; 32], now: u64) -> StorageResult<bool> {
        self.write(move |tx| {
            let expires: Option<u64> = tx
                .query_row(
                    "DELETE FROM upload_tokens WHERE token_hash = ?1 RETURNING expires_at",
                    [&token_hash[..]],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(expires.is_some_and(|e| e >= now))
        })
        .await
    }

    async fn put_blob(&self, id: [u8; 32], size: u64, now: u64) -> StorageResult<()> {
        self.write(move |tx| {
            tx.execute("INSERT INTO blobs (id, size, created_at) VALUES (?1, ?2, ?3)", params![&id[..], size, now])?;
            Ok(())
        })
        .await
    }

    async fn blob_exists(&self, id: [u8; 32], not_before: u64) -> StorageResult<bool> {
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT 1 FROM blobs WHERE id = ?1 AND created_at >= ?2",
                params![&id[..], not_before],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        })
        .await
    }

    async fn expire(&self, messages_before_ms: u64, blobs_before: u64, now: u64) -> StorageResult<Expired> {
        self.write(move |tx| {
            let mut per_device: HashMap<Vec<u8>, (u64, u64)> = HashMap::new();
            {
                let mut stmt =
                    tx.prepare("DELETE FROM messages WHERE received_at < ?1 RETURNING recipient, length(payload)")?;
                let rows = stmt.query_map([messages_before_ms], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, u64>(1)?)))?;
                for row in rows {
                    let (device, len) = row?;
                    let e = per_device.entry(device).or_default();
                    e.0 += 1;
                    e.1 += len;
                }
            }
            let mut expired = Expired::default();
            for (device, (count, bytes)) in per_device {
                expired.messages += count;
                tx.execute(
                    "UPDATE devices SET queued_count = MAX(queued_count - ?2, 0), queued_bytes = MAX(queued_bytes - ?3, 0)
                     WHERE device_key = ?1",
                    params![device, count, bytes],
                )?;
            }
            {
                let mut stmt = tx.prepare("DELETE FROM blobs WHERE created_at < ?1 RETURNING id")?;
                let rows = stmt.query_map([blobs_before], |r| r.get::<_, Vec<u8>>(0))?;
                for row in rows {
                    expired.blobs.push(id32(row?, "blob id")?);
                }
            }
            expired.upload_tokens = tx.execute("DELETE FROM upload_tokens WHERE expires_at < ?1", [now])? as u64;
            Ok(expired)
        })
        .await
    }

    async fn queue_depth(&self) -> StorageResult<u64> {
        self.read(|c| Ok(c.query_row("SELECT COALESCE(SUM(queued_count), 0) FROM devices", [], |r| r.get(0))?)).await
    }

    async fn create_group_log(
        &self,
        creator: DeviceId,
        log_id: [u8; 32],
        append_key: [u8; 32],
        entry: Vec<u8>,
        max_per_device: u64,
        now: u64,
    ) -> StorageResult<bool> {
        self.write(move |tx| {
            let created = tx.execute(
                "INSERT OR IGNORE INTO group_logs (log_id, epoch, append_key, first_epoch, bytes, updated_at)
                 VALUES (?1, 1, ?2, 1, ?3, ?4)",
                params![&log_id[..], &append_key[..], entry.len() as u64, now],
            )?;
            if created == 0 {
                return Ok(false);
            }
            let count: u64 = tx.query_row(
                "INSERT INTO group_log_creators (device_key, count) VALUES (?1, 1)
                 ON CONFLICT (device_key) DO UPDATE SET count = count + 1 RETURNING count",
                [&creator[..]],
                |r| r.get(0),
            )?;
            if count > max_per_device {
                // The job's savepoint is rolled back: the log is not created, the count not raised.
                return Err(StorageError::TooMany("group logs created by this device"));
            }
            tx.execute(
                "INSERT INTO group_log_entries (log_id, epoch, entry) VALUES (?1, 1, ?2)",
                params![&log_id[..], entry],
            )?;
            Ok(true)
        })
        .await
    }

    async fn group_log_head(&self, log_id: [u8; 32]) -> StorageResult<Option<(u64, [u8; 32])>> {
        self.read(move |c| {
            let row: Option<(u64, Vec<u8>)> = c
                .query_row("SELECT epoch, append_key FROM group_logs WHERE log_id = ?1", [&log_id[..]], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            row.map(|(epoch, key)| Ok((epoch, id32(key, "group log append key")?))).transpose()
        })
        .await
    }

    async fn append_group_log(&self, append: LogAppend, keep: LogRetention, now: u64) -> StorageResult<Option<u64>> {
        let LogAppend { log_id, expected_epoch, append_key, next_key, entry } = append;
        self.write(move |tx| {
            let moved = tx.execute(
                "UPDATE group_logs SET epoch = epoch + 1, append_key = ?4, bytes = bytes + ?5, updated_at = ?6
                 WHERE log_id = ?1 AND epoch = ?2 AND append_key = ?3",
                params![&log_id[..], expected_epoch, &append_key[..], &next_key[..], entry.len() as u64, now],
            )?;
            if moved == 0 {
                return Ok(None);
            }
            let epoch = expected_epoch + 1;
            tx.execute(
                "INSERT INTO group_log_entries (log_id, epoch, entry) VALUES (?1, ?2, ?3)",
                params![&log_id[..], epoch, entry],
            )?;
            trim_group_log(tx, &log_id, keep)?;
            Ok(Some(epoch))
        })
        .await
    }

    async fn group_log_entries(
        &self,
        log_id: [u8; 32],
        after_epoch: u64,
        max_entries: u32,
        max_bytes: u64,
    ) -> StorageResult<Option<LogPage>> {
        self.read(move |c| {
            let head: Option<(u64, u64)> = c
                .query_row("SELECT epoch, first_epoch FROM group_logs WHERE log_id = ?1", [&log_id[..]], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let Some((epoch, first_epoch)) = head else { return Ok(None) };
            let mut stmt = c.prepare_cached(
                "SELECT epoch, entry FROM group_log_entries WHERE log_id = ?1 AND epoch > ?2 ORDER BY epoch LIMIT ?3",
            )?;
            let rows =
                stmt.query_map(params![&log_id[..], after_epoch, max_entries], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let mut page = LogPage { epoch, first_epoch, entries: Vec::new() };
            let mut bytes = 0u64;
            for row in rows {
                let (e, entry): (u64, Vec<u8>) = row?;
                bytes += entry.len() as u64;
                if bytes > max_bytes && !page.entries.is_empty() {
                    break;
                }
                page.entries.push((e, entry));
            }
            Ok(Some(page))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(n: u8) -> DeviceId {
        [n; 32]
    }

    #[tokio::test]
    async fn migrations_apply_once_and_refuse_newer_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.sqlite");
        let s = SqliteStorage::open(&path).await.unwrap();
        s.set_push_endpoint(device(1), Some("http://x/".into()), 1).await.unwrap();
        drop(s);
        // Reopening applies nothing and keeps the data.
        let s = SqliteStorage::open(&path).await.unwrap();
        assert!(s.is_registered(device(1)).await.unwrap());
        drop(s);
        let version: usize =
            Connection::open(&path).unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len());
        Connection::open(&path).unwrap().pragma_update(None, "user_version", MIGRATIONS.len() + 1).unwrap();
        assert!(matches!(SqliteStorage::open(&path).await, Err(StorageError::Unsupported(_))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_commit_together_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStorage::open(dir.path().join("relay.sqlite")).await.unwrap();
        s.set_push_endpoint(device(1), Some("http://x/".into()), 1).await.unwrap();
        let quota = Quota { messages: 100, bytes: 1 << 20 };
        let mut tasks = Vec::new();
        for i in 0..300u32 {
            let s = s.clone();
            // Every third send goes to an unknown device; the rest race for 100 places in one mailbox.
            let recipient = if i % 3 == 0 { device(2) } else { device(1) };
            let batch = vec![NewMessage { recipient, sender: Some(device(3)), payload: vec![7; 10] }];
            tasks.push(tokio::spawn(async move { (recipient, s.enqueue(batch, quota, 5).await) }));
        }
        let (mut stored, mut full, mut unknown) = (0, 0, 0);
        for t in tasks {
            match t.await.unwrap() {
                (r, Ok(ids)) if r == device(1) && ids.len() == 1 => stored += 1,
                (r, Err(StorageError::QuotaExceeded { index: 0 })) if r == device(1) => full += 1,
                (r, Err(StorageError::UnknownRecipient { index: 0 })) if r == device(2) => unknown += 1,
                (_, other) => panic!("unexpected result {other:?}"),
            }
        }
        assert_eq!((stored, full, unknown), (100, 100, 100));
        assert_eq!(s.queue_depth().await.unwrap(), 100);
        assert_eq!(s.pending(device(1), 1000).await.unwrap().len(), 100);
        // What a failed job wrote before failing was rolled back with its savepoint only.
        assert_eq!(s.pending(device(2), 1000).await.unwrap().len(), 0);
    }
}
