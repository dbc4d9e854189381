//! The outbox: payloads stored before they leave and kept until the relay took a copy for every
//! recipient device, so a send survives a crash or a lost connection. The recipients dedupe
//! retries by client message id.

use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::cipher::Table;
use super::conversation::ConversationId;
use super::records::{self, OutboxRecord};
use super::tx::{StoreTx, blob, integer, sql_time};
use crate::content::MessageId;
use crate::error::Result;

/// A frame waiting for the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    /// Assigned by [`StoreTx::outbox_push`] (ignored there); never reused.
    pub id: u64,
    /// The conversation the message belongs to.
    pub conversation: ConversationId,
    /// The message's client id.
    pub message_id: MessageId,
    /// What to send: the client's encoded outbox entry (docs/PROTOCOL.md §16.8).
    pub frame: Vec<u8>,
    /// Send attempts so far.
    pub attempts: u32,
    /// Not to be sent before this time (ms).
    pub next_attempt_ms: u64,
}

/// The row key bound into an outbox value's AD: its id.
fn row_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

impl StoreTx<'_> {
    /// Queues a frame; returns its id (`item.id` is ignored).
    pub fn outbox_push(&self, item: &OutboxItem) -> Result<u64> {
        // The id is bound into the value's AD, so the row is created first and filled in after.
        self.tx
            .prepare_cached("INSERT INTO outbox (next_attempt_at, value) VALUES (?1, x'')")?
            .execute([sql_time(item.next_attempt_ms)])?;
        let id = u64::try_from(self.tx.last_insert_rowid()).map_err(|_| Table::Outbox.corrupt())?;
        self.write_outbox(&OutboxItem { id, ..item.clone() })?;
        Ok(id)
    }

    /// Seals and writes `item` into its row; whether the row exists.
    fn write_outbox(&self, item: &OutboxItem) -> Result<bool> {
        let record = OutboxRecord {
            conversation: item.conversation.to_bytes(),
            message_id: item.message_id.to_vec(),
            frame: item.frame.clone(),
            attempts: item.attempts,
            next_attempt_ms: item.next_attempt_ms,
        };
        let sealed = self.cipher.seal(
            Table::Outbox,
            &row_key(item.id),
            &Zeroizing::new(prost::Message::encode_to_vec(&record)),
        )?;
        let changed = self
            .tx
            .prepare_cached("UPDATE outbox SET next_attempt_at = ?1, value = ?2 WHERE id = ?3")?
            .execute(params![sql_time(item.next_attempt_ms), sealed, sql_time(item.id)])?;
        Ok(changed > 0)
    }

    fn read_outbox(&self, id: i64, next_attempt_at: i64, value: &[u8]) -> Result<OutboxItem> {
        let table = Table::Outbox;
        let id = u64::try_from(id).map_err(|_| table.corrupt())?;
        let plaintext = self.cipher.open(table, &row_key(id), value)?;
        let r: OutboxRecord = records::decode(table, &plaintext)?;
        if sql_time(r.next_attempt_ms) != next_attempt_at {
            return Err(table.corrupt());
        }
        Ok(OutboxItem {
            id,
            conversation: ConversationId::from_bytes(&r.conversation).map_err(|_| table.corrupt())?,
            message_id: r.message_id.as_slice().try_into().map_err(|_| table.corrupt())?,
            frame: r.frame.clone(),
            attempts: r.attempts,
            next_attempt_ms: r.next_attempt_ms,
        })
    }

    /// The queued frame with this id.
    pub fn outbox_item(&self, id: u64) -> Result<Option<OutboxItem>> {
        let found = self
            .tx
            .prepare_cached("SELECT next_attempt_at, value FROM outbox WHERE id = ?1")?
            .query_row([sql_time(id)], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?)))
            .optional()
            .map_err(|e| match e {
                rusqlite::Error::InvalidColumnType(..) | rusqlite::Error::FromSqlConversionFailure(..) => {
                    Table::Outbox.corrupt()
                }
                e => e.into(),
            })?;
        found.map(|(next, value)| self.read_outbox(sql_time(id), next, &value)).transpose()
    }

    /// Frames due at `now_ms`, the longest-waiting first.
    pub fn outbox_due(&self, now_ms: u64) -> Result<Vec<OutboxItem>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT id, next_attempt_at, value FROM outbox WHERE next_attempt_at <= ?1 ORDER BY next_attempt_at, id",
        )?;
        let mut rows = stmt.query([sql_time(now_ms)])?;
        let mut due = Vec::new();
        while let Some(row) = rows.next()? {
            let table = Table::Outbox;
            due.push(self.read_outbox(integer(row, 0, table)?, integer(row, 1, table)?, &blob(row, 2, table)?)?);
        }
        Ok(due)
    }

    /// Counts an attempt to send frame `id` and schedules the next one at `next_attempt_ms`.
    /// `false` if there is no such frame.
    pub fn outbox_mark_attempt(&self, id: u64, next_attempt_ms: u64) -> Result<bool> {
        self.reschedule_outbox(id, next_attempt_ms, |attempts| attempts.saturating_add(1))
    }

    /// Schedules frame `id` again at `next_attempt_ms` without counting the attempt just made (the
    /// relay refused it for the rate, not for what it is); whether it was there.
    pub fn outbox_retry_at(&self, id: u64, next_attempt_ms: u64) -> Result<bool> {
        self.reschedule_outbox(id, next_attempt_ms, |attempts| attempts.saturating_sub(1))
    }

    /// Sets frame `id`'s next attempt time and its attempt count (from the stored one).
    fn reschedule_outbox(&self, id: u64, next_attempt_ms: u64, attempts: impl Fn(u32) -> u32) -> Result<bool> {
        let Some(mut item) = self.outbox_item(id)? else { return Ok(false) };
        item.attempts = attempts(item.attempts);
        item.next_attempt_ms = next_attempt_ms;
        self.write_outbox(&item)
    }

    /// Rewrites queued item `item.id` (what it holds, its attempts and its next attempt time);
    /// `false` if there is no such item.
    pub fn outbox_put(&self, item: &OutboxItem) -> Result<bool> {
        self.write_outbox(item)
    }

    /// Removes frame `id` (the relay acknowledged it, or the client gave up); whether it was there.
    pub fn outbox_remove(&self, id: u64) -> Result<bool> {
        Ok(self.tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?.execute([sql_time(id)])? > 0)
    }
}
