//! The sent log (docs/PROTOCOL.md §14.12, §16.13): payloads sent recently, one row per copy a
//! device got, found by that device and the hash of the copy's inner message, which is what a
//! retry receipt names. Bounded by age and by rows.

use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::cipher::Table;
use super::conversation::ConversationId;
use super::records::{self, SentCopyRecord};
use super::tx::{StoreTx, sql_time};
use crate::content::MessageId;
use crate::crypto::SigningPublicKey;
use crate::error::Result;

/// One copy sent: what to send again should its device report that it could not decrypt it.
#[derive(Clone, PartialEq, Eq)]
pub struct SentCopy {
    /// The conversation of the payload.
    pub conversation: ConversationId,
    /// The payload's client message id.
    pub message_id: MessageId,
    /// The user whose device got the copy (this user for a sent sync).
    pub recipient: SigningPublicKey,
    /// The encoded `Content` (secret).
    pub content: Zeroizing<Vec<u8>>,
    /// The base key of the session the copy was encrypted in, if it was a 1:1 copy.
    pub session: Option<[u8; 32]>,
    /// How many times this payload was sent again after a retry receipt before this copy.
    pub resends: u32,
    /// When the copy was sent (ms).
    pub sent_at_ms: u64,
}

impl core::fmt::Debug for SentCopy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SentCopy")
            .field("conversation", &self.conversation)
            .field("resends", &self.resends)
            .field("sent_at_ms", &self.sent_at_ms)
            .field("content", &"[redacted]")
            .finish_non_exhaustive()
    }
}

fn natural_key(device: &[u8; 32], message_hash: &[u8; 32]) -> [u8; 64] {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(device);
    key[32..].copy_from_slice(message_hash);
    key
}

impl StoreTx<'_> {
    /// Logs a copy sent to `device` (a device key's bytes, or a slot the client reserves) whose
    /// inner message hashes to `message_hash` (replacing an earlier row of the same copy).
    pub fn sent_log_put(&self, device: &[u8; 32], message_hash: &[u8; 32], copy: &SentCopy) -> Result<()> {
        let table = Table::SentLog;
        let lookup = self.cipher.lookup(table, &natural_key(device, message_hash))?;
        let record = SentCopyRecord {
            conversation: copy.conversation.to_bytes(),
            message_id: copy.message_id.to_vec(),
            recipient: copy.recipient.to_bytes().to_vec(),
            content: copy.content.to_vec(),
            session: copy.session.map(|s| s.to_vec()),
            resends: copy.resends,
            sent_at_ms: copy.sent_at_ms,
        };
        let sealed = self.cipher.seal(table, &lookup, &Zeroizing::new(prost::Message::encode_to_vec(&record)))?;
        self.tx
            .prepare_cached(
                "INSERT INTO sent_log (lookup, sent_at, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (lookup) DO UPDATE SET sent_at = excluded.sent_at, value = excluded.value",
            )?
            .execute(params![lookup.as_slice(), sql_time(copy.sent_at_ms), sealed])?;
        Ok(())
    }

    /// The copy sent to `device` whose inner message hashes to `message_hash`, if still logged.
    pub fn sent_log_get(&self, device: &[u8; 32], message_hash: &[u8; 32]) -> Result<Option<SentCopy>> {
        let table = Table::SentLog;
        let lookup = self.cipher.lookup(table, &natural_key(device, message_hash))?;
        let Some(value) = self.get_value(table, &lookup)? else { return Ok(None) };
        let r: SentCopyRecord = records::decode(table, &value)?;
        let corrupt = |_| table.corrupt();
        Ok(Some(SentCopy {
            conversation: ConversationId::from_bytes(&r.conversation).map_err(corrupt)?,
            message_id: r.message_id.as_slice().try_into().map_err(|_| table.corrupt())?,
            recipient: SigningPublicKey::from_slice(&r.recipient, "sent log recipient").map_err(corrupt)?,
            content: Zeroizing::new(r.content.clone()),
            session: r.session.as_deref().map(|s| s.try_into().map_err(|_| table.corrupt())).transpose()?,
            resends: r.resends,
            sent_at_ms: r.sent_at_ms,
        }))
    }

    /// Forgets one copy; whether it was logged.
    pub fn sent_log_remove(&self, device: &[u8; 32], message_hash: &[u8; 32]) -> Result<bool> {
        let lookup = self.cipher.lookup(Table::SentLog, &natural_key(device, message_hash))?;
        self.delete_value(Table::SentLog, &lookup)
    }

    /// Forgets copies sent before `now_ms − max_age_ms`, then the oldest beyond `max_rows`; how many.
    pub fn sent_log_prune(&self, now_ms: u64, max_age_ms: u64, max_rows: usize) -> Result<usize> {
        let old = self
            .tx
            .prepare_cached("DELETE FROM sent_log WHERE sent_at < ?1")?
            .execute([sql_time(now_ms.saturating_sub(max_age_ms))])?;
        let keep = i64::try_from(max_rows).unwrap_or(i64::MAX);
        let over = self
            .tx
            .prepare_cached(
                "DELETE FROM sent_log WHERE lookup IN
                 (SELECT lookup FROM sent_log ORDER BY sent_at DESC, lookup LIMIT -1 OFFSET ?1)",
            )?
            .execute([keep])?;
        Ok(old + over)
    }

    /// How many copies the log holds.
    pub fn sent_log_len(&self) -> Result<usize> {
        let n: Option<i64> =
            self.tx.prepare_cached("SELECT count(*) FROM sent_log")?.query_row([], |row| row.get(0)).optional()?;
        Ok(usize::try_from(n.unwrap_or(0)).unwrap_or(usize::MAX))
    }
}
