//! The Postgres backend (phase 2): several relay processes share one database. Each commit that
//! queues mail also `NOTIFY`s the recipients (delivered at commit), and every relay `LISTEN`s, so a
//! device connected to instance A is woken by a send through instance B. Presence and online-only
//! messages (typing) travel between instances as [`Signal`]s on a second channel: NOTIFY payloads
//! only, never stored.
//!
//! Concurrency: bundle fetches take one-time prekeys with `FOR UPDATE SKIP LOCKED`, enqueue locks the
//! recipients' mailbox rows in a fixed order before checking quotas, device lists use one upsert
//! guarded by the version. Connections are plain TCP (`NoTls`): run Postgres on loopback or a private
//! network, or put TLS in front (a TLS connector is a later step).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::{Mutex, mpsc};
use tokio_postgres::{AsyncMessage, Client, NoTls};

use super::{
    BundleParts, DeviceId, Expired, LogAppend, LogPage, LogRetention, NewMessage, PrekeyUpload, Quota, RemoteWakeups,
    Signal, Storage, StorageResult, StoredMessage, Wake,
};
use crate::error::StorageError;
use crate::limits::MAX_STORED_ONE_TIME_PREKEYS;

/// Migrations, in order; the `hush_schema` table holds how many were applied.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema (the same as SQLite's).
    "CREATE TABLE devices (
        device_key BYTEA PRIMARY KEY,
        registered_at BIGINT NOT NULL,
        device_keys BYTEA,
        delivery_token_hash BYTEA,
        push_endpoint TEXT,
        queued_count BIGINT NOT NULL DEFAULT 0,
        queued_bytes BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE device_lists (
        user_key BYTEA PRIMARY KEY,
        list_version BIGINT NOT NULL,
        signed_list BYTEA NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE signed_prekeys (device_key BYTEA PRIMARY KEY, prekey BYTEA NOT NULL);
    CREATE TABLE last_resort_kem_prekeys (device_key BYTEA PRIMARY KEY, prekey BYTEA NOT NULL);
    CREATE TABLE one_time_prekeys (
        device_key BYTEA NOT NULL, id BIGINT NOT NULL, prekey BYTEA NOT NULL, PRIMARY KEY (device_key, id)
    );
    CREATE TABLE kem_prekeys (
        device_key BYTEA NOT NULL, id BIGINT NOT NULL, prekey BYTEA NOT NULL, PRIMARY KEY (device_key, id)
    );
    CREATE TABLE messages (
        id BIGSERIAL PRIMARY KEY,
        recipient BYTEA NOT NULL,
        sender BYTEA,
        payload BYTEA NOT NULL,
        received_at BIGINT NOT NULL
    );
    CREATE INDEX messages_by_recipient ON messages (recipient, id);
    CREATE INDEX messages_by_age ON messages (received_at);
    CREATE TABLE upload_tokens (token_hash BYTEA PRIMARY KEY, expires_at BIGINT NOT NULL);
    CREATE TABLE blobs (id BYTEA PRIMARY KEY, size BIGINT NOT NULL, created_at BIGINT NOT NULL);",
    // 2: group logs (the same as SQLite's).
    "CREATE TABLE group_logs (
        log_id BYTEA PRIMARY KEY,
        epoch BIGINT NOT NULL,
        append_key BYTEA NOT NULL,
        first_epoch BIGINT NOT NULL,
        bytes BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE group_log_entries (
        log_id BYTEA NOT NULL, epoch BIGINT NOT NULL, entry BYTEA NOT NULL, PRIMARY KEY (log_id, epoch)
    );
    CREATE TABLE group_log_creators (device_key BYTEA PRIMARY KEY, count BIGINT NOT NULL);",
    // 3: which user each device published a list of, and the devices a newer list revoked (as SQLite's).
    "CREATE TABLE device_users (device_key BYTEA PRIMARY KEY, user_key BYTEA NOT NULL);
    CREATE INDEX device_users_by_user ON device_users (user_key);
    CREATE TABLE revoked_devices (device_key BYTEA PRIMARY KEY, user_key BYTEA NOT NULL, revoked_at BIGINT NOT NULL);",
];

/// Connections kept open for queries (the listener has its own).
const POOL: usize = 4;

/// Largest online-only payload sent to other instances: hex doubles it, and a NOTIFY payload must
/// stay under 8000 bytes.
pub const MAX_SIGNAL_PAYLOAD: usize = 3800;

/// The text of a [`Signal`] NOTIFY payload: `<instance hex> <kind> <fields…>`.
fn encode_signal(from: u64, signal: &Signal) -> StorageResult<String> {
    Ok(match signal {
        Signal::Presence { device, online } => format!("{from:016x} P{} {}", u8::from(*online), hex::encode(device)),
        Signal::Live { recipient, sender, payload } => {
            if payload.len() > MAX_SIGNAL_PAYLOAD {
                return Err(StorageError::TooMany("online-only bytes for another instance"));
            }
            let sender = sender.map(hex::encode).unwrap_or_else(|| "-".into());
            format!("{from:016x} L {} {sender} {}", hex::encode(recipient), hex::encode(payload))
        }
        Signal::Hello => format!("{from:016x} H"),
    })
}

/// Parses a [`Signal`] NOTIFY payload; `None` for anything malformed.
fn decode_signal(text: &str) -> Option<(u64, Signal)> {
    let mut parts = text.split(' ');
    let from = u64::from_str_radix(parts.next()?, 16).ok()?;
    let device = |s: Option<&str>| s.and_then(|h| hex::decode(h).ok()).and_then(|b| DeviceId::try_from(b).ok());
    let signal = match parts.next()? {
        "P1" => Signal::Presence { device: device(parts.next())?, online: true },
        "P0" => Signal::Presence { device: device(parts.next())?, online: false },
        "L" => {
            let recipient = device(parts.next())?;
            let sender = match parts.next()? {
                "-" => None,
                h => Some(device(Some(h))?),
            };
            Signal::Live { recipient, sender, payload: hex::decode(parts.next()?).ok()? }
        }
        "H" => Signal::Hello,
        _ => return None,
    };
    parts.next().is_none().then_some((from, signal))
}

/// Postgres storage.
pub struct PostgresStorage {
    url: String,
    schema: String,
    channel: String,
    signal_channel: String,
    /// This process's id in signals, to skip its own.
    instance: u64,
    clients: Vec<Mutex<Client>>,
    next: AtomicUsize,
    wakeups: std::sync::Mutex<Option<RemoteWakeups>>,
}

impl From<tokio_postgres::Error> for StorageError {
    fn from(e: tokio_postgres::Error) -> Self {
        // A server error's detail can quote row values (keys); keep its code and primary message only.
        match e.as_db_error() {
            Some(db) => Self::Database(format!("postgres {}: {}", db.code().code(), db.message())),
            None => match std::error::Error::source(&e) {
                Some(cause) => Self::Database(format!("postgres: {e}: {cause}")),
                None => Self::Database(format!("postgres: {e}")),
            },
        }
    }
}

fn i64_of(v: u64) -> StorageResult<i64> {
    i64::try_from(v).map_err(|_| StorageError::Database("value out of range".into()))
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn id32(bytes: Vec<u8>, what: &'static str) -> StorageResult<[u8; 32]> {
    <[u8; 32]>::try_from(bytes).map_err(|_| StorageError::Corrupt(what))
}

/// Schema names are interpolated into SQL: allow only simple identifiers.
fn check_schema(schema: &str) -> StorageResult<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 48
        && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if ok { Ok(()) } else { Err(StorageError::Unsupported(format!("bad Postgres schema name {schema:?}"))) }
}

async fn connect_pooled(url: &str, schema: &str) -> StorageResult<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %StorageError::from(e), "postgres connection ended");
        }
    });
    client.batch_execute(&format!("SET search_path TO {schema}")).await?;
    Ok(client)
}

impl PostgresStorage {
    /// Connects to `url`, creates `schema` if needed, applies migrations and starts listening for
    /// other instances' wake-ups.
    pub async fn open(url: &str, schema: &str) -> StorageResult<Self> {
        check_schema(schema)?;
        let mut clients = Vec::with_capacity(POOL);
        for _ in 0..POOL {
            clients.push(Mutex::new(connect_pooled(url, schema).await?));
        }
        {
            let mut first = clients[0].lock().await;
            migrate(&mut first, schema).await?;
        }
        let channel = format!("hush_mailbox_{schema}");
        let signal_channel = format!("hush_signal_{schema}");
        let instance = rand_core::RngCore::next_u64(&mut rand_core::OsRng);
        let (tx, rx) = mpsc::unbounded_channel();
        let listener = Listener {
            url: url.to_owned(),
            channel: channel.clone(),
            signal_channel: signal_channel.clone(),
            instance,
        };
        tokio::spawn(listen(listener, tx));
        Ok(Self {
            url: url.to_owned(),
            schema: schema.to_owned(),
            channel,
            signal_channel,
            instance,
            clients,
            next: AtomicUsize::new(0),
            wakeups: std::sync::Mutex::new(Some(rx)),
        })
    }

    /// A pooled connection: a free one if any, else waits for one in turn. A closed connection is
    /// replaced.
    async fn client(&self) -> StorageResult<tokio::sync::MutexGuard<'_, Client>> {
        let mut guard = None;
        for c in &self.clients {
            if let Ok(g) = c.try_lock() {
                guard = Some(g);
                break;
            }
        }
        let mut guard = match guard {
            Some(g) => g,
            None => self.clients[self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len()].lock().await,
        };
        if guard.is_closed() {
            *guard = connect_pooled(&self.url, &self.schema).await?;
        }
        Ok(guard)
    }
}

async fn migrate(client: &mut Client, schema: &str) -> StorageResult<()> {
    let tx = client.transaction().await?;
    // One instance migrates at a time; the others wait here, then find nothing to do.
    tx.execute("SELECT pg_advisory_xact_lock(hashtext('hush-relay-migrate'))", &[]).await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.hush_schema (version BIGINT NOT NULL);
         INSERT INTO {schema}.hush_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM {schema}.hush_schema);"
    ))
    .await?;
    let current: i64 = tx.query_one(&format!("SELECT version FROM {schema}.hush_schema"), &[]).await?.get(0);
    let current = usize::try_from(current).unwrap_or(usize::MAX);
    if current > MIGRATIONS.len() {
        return Err(StorageError::Unsupported(format!(
            "the database has schema version {current}, this relay knows {}: upgrade the relay",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.batch_execute(sql).await?;
        tx.execute(&format!("UPDATE {schema}.hush_schema SET version = $1"), &[&((i + 1) as i64)]).await?;
        tracing::info!(version = i + 1, "applied storage migration");
    }
    tx.commit().await?;
    Ok(())
}

/// What the listener listens to.
struct Listener {
    url: String,
    channel: String,
    signal_channel: String,
    instance: u64,
}

/// Listens for wake-ups and signals on a dedicated connection, reconnecting with backoff. After a
/// reconnect it wakes every local socket, since notifications sent meanwhile were lost. Each time it
/// starts listening it says [`Signal::Hello`], so the other instances tell it who is online.
async fn listen(l: Listener, tx: mpsc::UnboundedSender<Wake>) {
    let Listener { url, channel, signal_channel, instance } = l;
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        if tx.is_closed() {
            return;
        }
        match tokio_postgres::connect(&url, NoTls).await {
            Ok((client, mut connection)) => {
                let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                let hello = encode_signal(instance, &Signal::Hello).unwrap_or_default();
                let listening = async {
                    client.batch_execute(&format!("LISTEN {channel}; LISTEN {signal_channel}")).await?;
                    client.execute("SELECT pg_notify($1, $2)", &[&signal_channel, &hello]).await?;
                    Ok::<(), StorageError>(())
                };
                // The connection must be polled for LISTEN to complete.
                let mut listening = Box::pin(listening);
                let ready = loop {
                    tokio::select! {
                        r = &mut listening => break r.is_ok(),
                        m = messages.next() => if m.is_none() { break false },
                    }
                };
                if ready {
                    backoff = Duration::from_millis(100);
                    if !first {
                        let _ = tx.send(Wake::All);
                    }
                    first = false;
                    loop {
                        let m = tokio::select! {
                            // The storage was dropped: stop listening.
                            () = tx.closed() => return,
                            m = messages.next() => m,
                        };
                        let Some(m) = m else { break };
                        match m {
                            Ok(AsyncMessage::Notification(n)) if n.channel() == signal_channel => {
                                match decode_signal(n.payload()) {
                                    Some((from, _)) if from == instance => {}
                                    Some((from, signal)) => {
                                        if tx.send(Wake::Signal { from, signal }).is_err() {
                                            return;
                                        }
                                    }
                                    None => tracing::debug!("ignored a malformed relay signal"),
                                }
                            }
                            Ok(AsyncMessage::Notification(n)) => {
                                let device = hex::decode(n.payload()).ok().and_then(|b| DeviceId::try_from(b).ok());
                                if let Some(device) = device
                                    && tx.send(Wake::Device(device)).is_err()
                                {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                }
                tracing::warn!("postgres listener disconnected; reconnecting");
            }
            Err(e) => tracing::warn!(error = %StorageError::from(e), "postgres listener cannot connect"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Revokes the devices recorded as `user`'s that `listed` does not name (inside `put_device_list`'s
/// transaction), as SQLite's `revoke_unlisted` does.
async fn revoke_unlisted(
    tx: &tokio_postgres::Transaction<'_>,
    user: &[u8; 32],
    listed: &[DeviceId],
    now: u64,
) -> StorageResult<()> {
    let recorded = tx.query("SELECT device_key FROM device_users WHERE user_key = $1", &[&&user[..]]).await?;
    for row in recorded {
        let device: Vec<u8> = row.get(0);
        if listed.iter().any(|l| l[..] == device[..]) {
            continue;
        }
        tx.execute(
            "INSERT INTO revoked_devices (device_key, user_key, revoked_at) VALUES ($1, $2, $3)
             ON CONFLICT (device_key) DO NOTHING",
            &[&device, &&user[..], &i64_of(now)?],
        )
        .await?;
        for table in
            ["device_users", "devices", "signed_prekeys", "last_resort_kem_prekeys", "one_time_prekeys", "kem_prekeys"]
        {
            tx.execute(&format!("DELETE FROM {table} WHERE device_key = $1"), &[&device]).await?;
        }
        tx.execute("DELETE FROM messages WHERE recipient = $1", &[&device]).await?;
    }
    Ok(())
}

async fn register(tx: &tokio_postgres::Transaction<'_>, device: &DeviceId, now: u64) -> StorageResult<()> {
    tx.execute(
        "INSERT INTO devices (device_key, registered_at) VALUES ($1, $2) ON CONFLICT (device_key) DO NOTHING",
        &[&&device[..], &i64_of(now)?],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn is_registered(&self, device: DeviceId) -> StorageResult<bool> {
        let c = self.client().await?;
        Ok(c.query_opt("SELECT 1 FROM devices WHERE device_key = $1", &[&&device[..]]).await?.is_some())
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
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let version = i64_of(list_version)?;
        let written = tx
            .query_opt(
                "INSERT INTO device_lists (user_key, list_version, signed_list, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_key) DO UPDATE SET list_version = excluded.list_version,
                   signed_list = excluded.signed_list, updated_at = excluded.updated_at
                 WHERE device_lists.list_version < excluded.list_version
                 RETURNING 1",
                &[&&user_key[..], &version, &signed_list, &i64_of(now)?],
            )
            .await?;
        if written.is_none() {
            let row = tx
                .query_one("SELECT list_version, signed_list FROM device_lists WHERE user_key = $1", &[&&user_key[..]])
                .await?;
            let (stored, bytes): (i64, Vec<u8>) = (row.get(0), row.get(1));
            if stored != version || bytes != signed_list {
                return Err(StorageError::Rollback { stored: u64_of(stored), received: list_version });
            }
        } else {
            revoke_unlisted(&tx, &user_key, &listed, now).await?;
        }
        register(&tx, &publisher, now).await?;
        tx.execute(
            "INSERT INTO device_users (device_key, user_key) VALUES ($1, $2)
             ON CONFLICT (device_key) DO UPDATE SET user_key = excluded.user_key",
            &[&&publisher[..], &&user_key[..]],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoked_user(&self, device: DeviceId) -> StorageResult<Option<[u8; 32]>> {
        let c = self.client().await?;
        let row = c.query_opt("SELECT user_key FROM revoked_devices WHERE device_key = $1", &[&&device[..]]).await?;
        row.map(|r| {
            let user: Vec<u8> = r.get(0);
            <[u8; 32]>::try_from(user.as_slice()).map_err(|_| StorageError::Corrupt("revoked device user"))
        })
        .transpose()
    }

    async fn device_list(&self, user_key: [u8; 32]) -> StorageResult<Option<Vec<u8>>> {
        let c = self.client().await?;
        Ok(c.query_opt("SELECT signed_list FROM device_lists WHERE user_key = $1", &[&&user_key[..]])
            .await?
            .map(|r| r.get(0)))
    }

    async fn publish_prekeys(&self, device: DeviceId, upload: PrekeyUpload, now: u64) -> StorageResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let d = &device[..];
        register(&tx, &device, now).await?;
        if let Some(keys) = &upload.device_keys {
            tx.execute("UPDATE devices SET device_keys = $2 WHERE device_key = $1", &[&d, keys]).await?;
        }
        let has_keys: Option<Vec<u8>> =
            tx.query_one("SELECT device_keys FROM devices WHERE device_key = $1", &[&d]).await?.get(0);
        if has_keys.is_none() {
            return Err(StorageError::NotFound("device keys (send them with the first upload)"));
        }
        if let Some(p) = &upload.signed_prekey {
            tx.execute(
                "INSERT INTO signed_prekeys (device_key, prekey) VALUES ($1, $2)
                 ON CONFLICT (device_key) DO UPDATE SET prekey = excluded.prekey",
                &[&d, p],
            )
            .await?;
        }
        if let Some(p) = &upload.last_resort_kem {
            tx.execute(
                "INSERT INTO last_resort_kem_prekeys (device_key, prekey) VALUES ($1, $2)
                 ON CONFLICT (device_key) DO UPDATE SET prekey = excluded.prekey",
                &[&d, p],
            )
            .await?;
        }
        for (table, keys, what) in [
            ("one_time_prekeys", &upload.one_time, "one-time prekeys"),
            ("kem_prekeys", &upload.kem_one_time, "one-time ML-KEM prekeys"),
        ] {
            if keys.is_empty() {
                continue;
            }
            let insert = tx
                .prepare(&format!(
                    "INSERT INTO {table} (device_key, id, prekey) VALUES ($1, $2, $3)
                     ON CONFLICT (device_key, id) DO UPDATE SET prekey = excluded.prekey"
                ))
                .await?;
            for (id, p) in keys {
                tx.execute(&insert, &[&d, &i64::from(*id), p]).await?;
            }
            let count: i64 =
                tx.query_one(&format!("SELECT COUNT(*) FROM {table} WHERE device_key = $1"), &[&d]).await?.get(0);
            if u64_of(count) > MAX_STORED_ONE_TIME_PREKEYS {
                return Err(StorageError::TooMany(what));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn device_keys(&self, device: DeviceId) -> StorageResult<Option<Vec<u8>>> {
        let c = self.client().await?;
        Ok(c.query_opt("SELECT device_keys FROM devices WHERE device_key = $1", &[&&device[..]])
            .await?
            .and_then(|r| r.get::<_, Option<Vec<u8>>>(0)))
    }

    async fn prekey_counts(&self, device: DeviceId) -> StorageResult<(u64, u64)> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT (SELECT COUNT(*) FROM one_time_prekeys WHERE device_key = $1),
                        (SELECT COUNT(*) FROM kem_prekeys WHERE device_key = $1)",
                &[&&device[..]],
            )
            .await?;
        Ok((u64_of(row.get(0)), u64_of(row.get(1))))
    }

    async fn take_bundle(&self, device: DeviceId) -> StorageResult<Option<BundleParts>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let d = &device[..];
        let device_keys: Option<Vec<u8>> =
            tx.query_opt("SELECT device_keys FROM devices WHERE device_key = $1", &[&d]).await?.and_then(|r| r.get(0));
        let Some(device_keys) = device_keys else { return Ok(None) };
        let Some(signed_prekey) =
            tx.query_opt("SELECT prekey FROM signed_prekeys WHERE device_key = $1", &[&d]).await?.map(|r| r.get(0))
        else {
            return Ok(None);
        };
        // SKIP LOCKED: concurrent fetches each take a different key, never the same one twice.
        let take = |table: &'static str| {
            let tx = &tx;
            async move {
                Ok::<_, StorageError>(
                    tx.query_opt(
                        &format!(
                            "DELETE FROM {table} WHERE (device_key, id) =
                               (SELECT device_key, id FROM {table} WHERE device_key = $1
                                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                             RETURNING prekey"
                        ),
                        &[&d],
                    )
                    .await?
                    .map(|r| r.get::<_, Vec<u8>>(0)),
                )
            }
        };
        let one_time = take("one_time_prekeys").await?;
        let kem = match take("kem_prekeys").await? {
            Some(k) => Some(k),
            None => tx
                .query_opt("SELECT prekey FROM last_resort_kem_prekeys WHERE device_key = $1", &[&d])
                .await?
                .map(|r| r.get(0)),
        };
        tx.commit().await?;
        Ok(Some(BundleParts { device_keys, signed_prekey, one_time, kem }))
    }

    async fn enqueue(&self, batch: Vec<NewMessage>, quota: Quota, now_ms: u64) -> StorageResult<Vec<u64>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Lock every recipient's mailbox row in a fixed order (no deadlocks between batches).
        let mut recipients: Vec<DeviceId> = batch.iter().map(|m| m.recipient).collect();
        recipients.sort_unstable();
        recipients.dedup();
        let mut usage: HashMap<DeviceId, (u64, u64)> = HashMap::new();
        for r in &recipients {
            if let Some(row) = tx
                .query_opt(
                    "SELECT queued_count, queued_bytes FROM devices WHERE device_key = $1 FOR UPDATE",
                    &[&&r[..]],
                )
                .await?
            {
                usage.insert(*r, (u64_of(row.get(0)), u64_of(row.get(1))));
            }
        }
        let insert = tx
            .prepare(
                "INSERT INTO messages (recipient, sender, payload, received_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .await?;
        let mut ids = Vec::with_capacity(batch.len());
        for (index, m) in batch.iter().enumerate() {
            let entry = usage.get_mut(&m.recipient).ok_or(StorageError::UnknownRecipient { index })?;
            let (count, bytes) = (entry.0 + 1, entry.1 + m.payload.len() as u64);
            if count > quota.messages || bytes > quota.bytes {
                return Err(StorageError::QuotaExceeded { index });
            }
            *entry = (count, bytes);
            let sender = m.sender.as_ref().map(|s| &s[..]);
            let id: i64 =
                tx.query_one(&insert, &[&&m.recipient[..], &sender, &m.payload, &i64_of(now_ms)?]).await?.get(0);
            ids.push(u64_of(id));
        }
        for (device, (count, bytes)) in &usage {
            tx.execute(
                "UPDATE devices SET queued_count = $2, queued_bytes = $3 WHERE device_key = $1",
                &[&&device[..], &i64_of(*count)?, &i64_of(*bytes)?],
            )
            .await?;
            // Delivered to every listening relay at commit, not before.
            tx.execute("SELECT pg_notify($1, $2)", &[&self.channel, &hex::encode(device)]).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn pending(&self, device: DeviceId, limit: u32) -> StorageResult<Vec<StoredMessage>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, sender, payload, received_at FROM messages WHERE recipient = $1 ORDER BY id LIMIT $2",
                &[&&device[..], &i64::from(limit)],
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                let sender: Option<Vec<u8>> = r.get(1);
                Ok(StoredMessage {
                    id: u64_of(r.get(0)),
                    sender: sender.map(|s| id32(s, "message sender")).transpose()?,
                    payload: r.get(2),
                    received_at_ms: u64_of(r.get(3)),
                })
            })
            .collect()
    }

    async fn ack(&self, device: DeviceId, ids: Vec<u64>) -> StorageResult<u64> {
        let ids: Vec<i64> = ids.into_iter().filter_map(|i| i64::try_from(i).ok()).collect();
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let rows = tx
            .query(
                "DELETE FROM messages WHERE recipient = $1 AND id = ANY($2) RETURNING octet_length(payload)::BIGINT",
                &[&&device[..], &ids],
            )
            .await?;
        let count = rows.len() as u64;
        let bytes: u64 = rows.iter().map(|r| u64_of(r.get(0))).sum();
        if count > 0 {
            tx.execute(
                "UPDATE devices SET queued_count = GREATEST(queued_count - $2, 0),
                   queued_bytes = GREATEST(queued_bytes - $3, 0) WHERE device_key = $1",
                &[&&device[..], &i64_of(count)?, &i64_of(bytes)?],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(count)
    }

    async fn set_delivery_token_hash(&self, device: DeviceId, hash: Option<[u8; 32]>, now: u64) -> StorageResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        register(&tx, &device, now).await?;
        let hash = hash.as_ref().map(|h| &h[..]);
        tx.execute("UPDATE devices SET delivery_token_hash = $2 WHERE device_key = $1", &[&&device[..], &hash]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delivery_token_hash(&self, device: DeviceId) -> StorageResult<Option<Vec<u8>>> {
        let c = self.client().await?;
        Ok(c.query_opt("SELECT delivery_token_hash FROM devices WHERE device_key = $1", &[&&device[..]])
            .await?
            .and_then(|r| r.get::<_, Option<Vec<u8>>>(0)))
    }

    async fn set_push_endpoint(&self, device: DeviceId, endpoint: Option<String>, now: u64) -> StorageResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        register(&tx, &device, now).await?;
        tx.execute("UPDATE devices SET push_endpoint = $2 WHERE device_key = $1", &[&&device[..], &endpoint]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn push_endpoint(&self, device: DeviceId) -> StorageResult<Option<String>> {
        let c = self.client().await?;
        Ok(c.query_opt("SELECT push_endpoint FROM devices WHERE device_key = $1", &[&&device[..]])
            .await?
            .and_then(|r| r.get::<_, Option<String>>(0)))
    }

    async fn put_upload_token(&self, token_hash: [u8; 32], expires_at: u64) -> StorageResult<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO upload_tokens (token_hash, expires_at) VALUES ($1, $2)
             ON CONFLICT (token_hash) DO UPDATE SET expires_at = excluded.expires_at",
            &[&&token_hash[..], &i64_of(expires_at)?],
        )
        .await?;
        Ok(())
    }

    async fn take_upload_token(&self, token_hash: [u8; 32], now: u64) -> StorageResult<bool> {
        let c = self.client().await?;
        let row = c
            .query_opt("DELETE FROM upload_tokens WHERE token_hash = $1 RETURNING expires_at", &[&&token_hash[..]])
            .await?;
        Ok(row.is_some_and(|r| u64_of(r.get(0)) >= now))
    }

    async fn put_blob(&self, id: [u8; 32], size: u64, now: u64) -> StorageResult<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO blobs (id, size, created_at) VALUES ($1, $2, $3)",
            &[&&id[..], &i64_of(size)?, &i64_of(now)?],
        )
        .await?;
        Ok(())
    }

    async fn blob_exists(&self, id: [u8; 32], not_before: u64) -> StorageResult<bool> {
        let c = self.client().await?;
        Ok(c.query_opt("SELECT 1 FROM blobs WHERE id = $1 AND created_at >= $2", &[&&id[..], &i64_of(not_before)?])
            .await?
            .is_some())
    }

    async fn expire(&self, messages_before_ms: u64, blobs_before: u64, now: u64) -> StorageResult<Expired> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let rows = tx
            .query(
                "DELETE FROM messages WHERE received_at < $1 RETURNING recipient, octet_length(payload)::BIGINT",
                &[&i64_of(messages_before_ms)?],
            )
            .await?;
        let mut per_device: HashMap<Vec<u8>, (i64, i64)> = HashMap::new();
        for r in &rows {
            let e = per_device.entry(r.get(0)).or_default();
            e.0 += 1;
            e.1 += r.get::<_, i64>(1);
        }
        let mut expired = Expired { messages: rows.len() as u64, ..Expired::default() };
        // A fixed order, like enqueue, so the two never deadlock.
        let mut devices: Vec<_> = per_device.into_iter().collect();
        devices.sort_unstable();
        for (device, (count, bytes)) in devices {
            tx.execute(
                "UPDATE devices SET queued_count = GREATEST(queued_count - $2, 0),
                   queued_bytes = GREATEST(queued_bytes - $3, 0) WHERE device_key = $1",
                &[&device, &count, &bytes],
            )
            .await?;
        }
        for r in tx.query("DELETE FROM blobs WHERE created_at < $1 RETURNING id", &[&i64_of(blobs_before)?]).await? {
            expired.blobs.push(id32(r.get(0), "blob id")?);
        }
        expired.upload_tokens = tx.execute("DELETE FROM upload_tokens WHERE expires_at < $1", &[&i64_of(now)?]).await?;
        tx.commit().await?;
        Ok(expired)
    }

    async fn queue_depth(&self) -> StorageResult<u64> {
        let c = self.client().await?;
        let n: i64 = c.query_one("SELECT COALESCE(SUM(queued_count), 0)::BIGINT FROM devices", &[]).await?.get(0);
        Ok(u64_of(n))
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
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let created = tx
            .execute(
                "INSERT INTO group_logs (log_id, epoch, append_key, first_epoch, bytes, updated_at)
                 VALUES ($1, 1, $2, 1, $3, $4) ON CONFLICT (log_id) DO NOTHING",
                &[&&log_id[..], &&append_key[..], &i64_of(entry.len() as u64)?, &i64_of(now)?],
            )
            .await?;
        if created == 0 {
            return Ok(false);
        }
        let count: i64 = tx
            .query_one(
                "INSERT INTO group_log_creators (device_key, count) VALUES ($1, 1)
                 ON CONFLICT (device_key) DO UPDATE SET count = group_log_creators.count + 1 RETURNING count",
                &[&&creator[..]],
            )
            .await?
            .get(0);
        if u64_of(count) > max_per_device {
            // Dropping the transaction rolls it back: no log, no count.
            return Err(StorageError::TooMany("group logs created by this device"));
        }
        tx.execute("INSERT INTO group_log_entries (log_id, epoch, entry) VALUES ($1, 1, $2)", &[&&log_id[..], &entry])
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn group_log_head(&self, log_id: [u8; 32]) -> StorageResult<Option<(u64, [u8; 32])>> {
        let c = self.client().await?;
        let row = c.query_opt("SELECT epoch, append_key FROM group_logs WHERE log_id = $1", &[&&log_id[..]]).await?;
        row.map(|r| Ok((u64_of(r.get(0)), id32(r.get(1), "group log append key")?))).transpose()
    }

    async fn append_group_log(&self, append: LogAppend, keep: LogRetention, now: u64) -> StorageResult<Option<u64>> {
        let LogAppend { log_id, expected_epoch, append_key, next_key, entry } = append;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let id = &log_id[..];
        // The row lock of the UPDATE orders concurrent appends: the second re-reads the row after
        // the first commits, finds the epoch moved, and changes nothing.
        let moved = tx
            .query_opt(
                "UPDATE group_logs SET epoch = epoch + 1, append_key = $4, bytes = bytes + $5, updated_at = $6
                 WHERE log_id = $1 AND epoch = $2 AND append_key = $3
                 RETURNING epoch, first_epoch, bytes",
                &[
                    &id,
                    &i64_of(expected_epoch)?,
                    &&append_key[..],
                    &&next_key[..],
                    &i64_of(entry.len() as u64)?,
                    &i64_of(now)?,
                ],
            )
            .await?;
        let Some(row) = moved else { return Ok(None) };
        let (epoch, mut first, mut bytes) = (u64_of(row.get(0)), u64_of(row.get(1)), u64_of(row.get(2)));
        tx.execute(
            "INSERT INTO group_log_entries (log_id, epoch, entry) VALUES ($1, $2, $3)",
            &[&id, &i64_of(epoch)?, &entry],
        )
        .await?;
        while first < epoch && (epoch - first >= keep.entries || bytes > keep.bytes) {
            let len: i64 = tx
                .query_one(
                    "DELETE FROM group_log_entries WHERE log_id = $1 AND epoch = $2 RETURNING length(entry)::BIGINT",
                    &[&id, &i64_of(first)?],
                )
                .await?
                .get(0);
            first += 1;
            bytes = bytes.saturating_sub(u64_of(len));
        }
        tx.execute(
            "UPDATE group_logs SET first_epoch = $2, bytes = $3 WHERE log_id = $1",
            &[&id, &i64_of(first)?, &i64_of(bytes)?],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(epoch))
    }

    async fn group_log_entries(
        &self,
        log_id: [u8; 32],
        after_epoch: u64,
        max_entries: u32,
        max_bytes: u64,
    ) -> StorageResult<Option<LogPage>> {
        let c = self.client().await?;
        let id = &log_id[..];
        let Some(head) = c.query_opt("SELECT epoch, first_epoch FROM group_logs WHERE log_id = $1", &[&id]).await?
        else {
            return Ok(None);
        };
        let rows = c
            .query(
                "SELECT epoch, entry FROM group_log_entries WHERE log_id = $1 AND epoch > $2 ORDER BY epoch LIMIT $3",
                &[&id, &i64_of(after_epoch)?, &i64::from(max_entries)],
            )
            .await?;
        let mut page = LogPage { epoch: u64_of(head.get(0)), first_epoch: u64_of(head.get(1)), entries: Vec::new() };
        let mut bytes = 0u64;
        for row in rows {
            let entry: Vec<u8> = row.get(1);
            bytes += entry.len() as u64;
            if bytes > max_bytes && !page.entries.is_empty() {
                break;
            }
            page.entries.push((u64_of(row.get(0)), entry));
        }
        Ok(Some(page))
    }

    fn remote_wakeups(&self) -> Option<RemoteWakeups> {
        self.wakeups.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }

    async fn broadcast(&self, signal: Signal) -> StorageResult<()> {
        let payload = encode_signal(self.instance, &signal)?;
        let c = self.client().await?;
        c.execute("SELECT pg_notify($1, $2)", &[&self.signal_channel, &payload]).await?;
        Ok(())
    }
}

impl PostgresStorage {
    /// The schema this storage lives in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Drops the whole schema (tests use a fresh schema each and drop it at the end).
    pub async fn drop_schema(&self) -> StorageResult<()> {
        let c = self.client().await?;
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_round_trip_and_malformed_ones_are_refused() {
        let signals = [
            Signal::Presence { device: [1; 32], online: true },
            Signal::Presence { device: [2; 32], online: false },
            Signal::Live { recipient: [3; 32], sender: Some([4; 32]), payload: vec![5; 100] },
            Signal::Live { recipient: [3; 32], sender: None, payload: vec![6; MAX_SIGNAL_PAYLOAD] },
            Signal::Hello,
        ];
        for signal in signals {
            let text = encode_signal(0xdead_beef_0123_4567, &signal).unwrap();
            assert!(text.len() < 8000, "{}", text.len());
            assert_eq!(decode_signal(&text), Some((0xdead_beef_0123_4567, signal)));
        }
        let big = Signal::Live { recipient: [3; 32], sender: None, payload: vec![0; MAX_SIGNAL_PAYLOAD + 1] };
        assert!(matches!(encode_signal(1, &big), Err(StorageError::TooMany(_))));
        for bad in
            ["", "zz H", "1 X", "1 P1 abcd", "1 L 00 - 00", "1 H extra", &format!("1 P2 {}", hex::encode([0; 32]))]
        {
            assert_eq!(decode_signal(bad), None, "{bad:?}");
        }
    }
}
