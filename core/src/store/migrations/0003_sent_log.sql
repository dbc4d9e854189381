-- The sent log (docs/PROTOCOL.md §14.12, §16.13): payloads sent recently, one row per copy a device got,
-- under the HMAC of (device, SHA-256 of the copy's inner message), so a retry receipt naming a copy
-- has that payload sent again. Bounded by age and rows (core/src/limits.rs).
CREATE TABLE sent_log (
    lookup BLOB PRIMARY KEY,
    sent_at INTEGER NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX sent_log_by_age ON sent_log (sent_at);
