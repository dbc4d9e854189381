-- hush store, schema 2: the expiry index covers every message.
--
-- Schema 1 indexed only rows with an expiry (`WHERE expires_at IS NOT NULL`). The client asks for
-- the next expiry (`SELECT min(expires_at) FROM messages`, StoreTx::next_expiry) after every change
-- to schedule its timer, and SQLite cannot use a partial index for that query: it read every
-- message of every conversation. An index over all rows answers it from the index's first non-NULL
-- entry and still serves the expiry DELETE's range. Cost: one small index entry per message
-- (a NULL and the row id for messages that never expire).
DROP INDEX messages_by_expiry;
CREATE INDEX messages_by_expiry ON messages (expires_at);
