//! Local search through a blind token index (docs/PROTOCOL.md §14): each distinct
//! word of a message is stored as `HMAC(search key, word)` truncated to 16 bytes, beside the
//! message's row id. A query's words are hashed the same way and every one must match.
//!
//! Words are maximal runs of Unicode alphanumerics, lowercased; there is no stemming, prefix or
//! substring matching, and scripts written without spaces (Chinese, Japanese, Thai) index whole
//! runs. Equal tokens show which messages share a word, never the word.

use std::collections::BTreeSet;

use rusqlite::params_from_iter;
use rusqlite::types::Value;

use super::cipher::Table;
use super::conversation::ConversationId;
use super::records::{self, MessageRecord};
use super::tx::{StoreTx, blob, lookup32};
use crate::content::{Content, ContentBody, MessageId};
use crate::error::{Error, Result};
use crate::limits::{MAX_HISTORY_PAGE, MAX_SEARCH_QUERY_WORDS};

/// The normalised distinct words of `text`.
pub(crate) fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// The searchable text of a payload: a text message's text, an attachment's file name.
fn searchable(content: &Content) -> Option<&str> {
    match &content.body {
        ContentBody::Text(text) => Some(text),
        ContentBody::Attachment(pointer) => pointer.file_name.as_deref(),
        _ => None,
    }
}

impl StoreTx<'_> {
    /// Adds the words of `content` to the index, for message row `row`.
    pub(crate) fn index_message(&self, row: i64, content: &Content) -> Result<()> {
        let Some(text) = searchable(content) else { return Ok(()) };
        let mut insert =
            self.tx.prepare_cached("INSERT OR IGNORE INTO search_tokens (token, message) VALUES (?1, ?2)")?;
        for word in words(text) {
            insert.execute(rusqlite::params![self.cipher.search_token(&word)?.as_slice(), row])?;
        }
        Ok(())
    }

    /// Removes every token of message row `row`.
    pub(crate) fn unindex_message(&self, row: i64) -> Result<()> {
        self.tx.prepare_cached("DELETE FROM search_tokens WHERE message = ?1")?.execute([row])?;
        Ok(())
    }

    /// Messages containing every word of `query` (whole words, any case), newest first, at most
    /// `limit` (capped at [`MAX_HISTORY_PAGE`]). A query of more than
    /// [`MAX_SEARCH_QUERY_WORDS`] distinct words is [`Error::TooLarge`]; one without words finds
    /// nothing.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<(ConversationId, MessageId)>> {
        let words = words(query);
        if words.len() > MAX_SEARCH_QUERY_WORDS {
            return Err(Error::TooLarge { what: "search query words", size: words.len(), max: MAX_SEARCH_QUERY_WORDS });
        }
        let limit = limit.min(MAX_HISTORY_PAGE);
        if words.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut params =
            words.iter().map(|w| Ok(Value::Blob(self.cipher.search_token(w)?.to_vec()))).collect::<Result<Vec<_>>>()?;
        params.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        let matches = (1..=words.len())
            .map(|i| format!("SELECT message FROM search_tokens WHERE token = ?{i}"))
            .collect::<Vec<_>>()
            .join(" INTERSECT ");
        let sql = format!(
            "SELECT lookup, value FROM messages WHERE id IN ({matches}) ORDER BY sent_at DESC, id DESC LIMIT ?{}",
            words.len() + 1
        );
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(params))?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            let table = Table::Messages;
            let lookup = lookup32(row, 0, table)?;
            let plaintext = self.cipher.open(table, &lookup, &blob(row, 1, table)?)?;
            let record: MessageRecord = records::decode(table, &plaintext)?;
            let conversation = ConversationId::from_bytes(&record.conversation).map_err(|_| table.corrupt())?;
            let id: MessageId = record.id.as_slice().try_into().map_err(|_| table.corrupt())?;
            found.push((conversation, id));
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_split_on_non_alphanumerics_and_lowercased() {
        let w = words("Hello, WORLD! hello—world… Grüße 42x ÉCOLE straße_1");
        let expected: BTreeSet<String> =
            ["hello", "world", "grüße", "42x", "école", "straße", "1"].iter().map(|s| s.to_string()).collect();
        assert_eq!(w, expected);
        assert!(words("  ,.;!  ").is_empty());
        assert!(words("").is_empty());
    }
}
