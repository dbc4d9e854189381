-- hush store, schema 1 (see core/src/store/mod.rs for the threat model).
--
-- Every `value` column holds an encrypted record: version || 24-byte nonce || XChaCha20-Poly1305
-- ciphertext, with AD = table name || the row's lookup (or id) || version, so a value moved to another
-- row fails to decrypt. Every `lookup`, `conversation` and `token` column holds a keyed HMAC of the
-- natural key (user key, conversation id, message id, setting name, word), never the key itself.
-- Plain integers (`sent_at`, `expires_at`, `next_attempt_at`, `seen_at`) are visible metadata, kept
-- so that pagination, expiry, retries and pruning run without decrypting every row.

-- Store key wrapping: read before any migration runs, so its layout never changes.
-- Rows: key_kdf ('raw' | 'argon2id'), key_salt, key_argon2_m_kib, key_argon2_t, key_argon2_p,
-- key_argon2_version, key_nonce, key_wrapped.
CREATE TABLE meta (
    name TEXT PRIMARY KEY NOT NULL,
    value NOT NULL
) WITHOUT ROWID;

-- This device's account (device identity, prekey secrets): one row.
CREATE TABLE account (
    lookup BLOB PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- The user key, when this device holds it: one row.
CREATE TABLE user_identity (
    lookup BLOB PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- Peer users (pinned device list, sessions with each device, trust state), by user key.
CREATE TABLE peers (
    lookup BLOB PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- Groups (roster log, sender chains), by group id.
CREATE TABLE group_states (
    lookup BLOB PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- Contacts (name, state, verification, relay, delivery token), by user key.
CREATE TABLE contacts (
    lookup BLOB PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- Conversations (last activity, unread count, timer, muted), by conversation id.
CREATE TABLE conversations (
    lookup BLOB PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- Message history. `lookup` = HMAC(conversation || message id) dedupes; `conversation` =
-- HMAC(conversation) groups a conversation's rows; `sent_at` (sender's clock, ms) orders them.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    lookup BLOB NOT NULL UNIQUE,
    conversation BLOB NOT NULL,
    sent_at INTEGER NOT NULL,
    expires_at INTEGER,
    value BLOB NOT NULL
);
CREATE INDEX messages_by_time ON messages (conversation, sent_at, id);
CREATE INDEX messages_by_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;

-- Blind search index: one row per distinct word of a message, token = HMAC(word) truncated.
CREATE TABLE search_tokens (
    token BLOB NOT NULL,
    message INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    PRIMARY KEY (token, message)
) WITHOUT ROWID;
CREATE INDEX search_tokens_by_message ON search_tokens (message);

-- Frames waiting for the relay's acknowledgement. AUTOINCREMENT: an id is never reused.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    next_attempt_at INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX outbox_by_due ON outbox (next_attempt_at, id);

-- Relay message ids already processed (HMAC), with when they were first seen, for pruning.
CREATE TABLE processed (
    lookup BLOB PRIMARY KEY NOT NULL,
    seen_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX processed_by_age ON processed (seen_at);

-- The client's own small settings, by name.
CREATE TABLE settings (
    lookup BLOB PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;
