//! The store's value encryption and blind lookups (docs/PROTOCOL.md §14; the shape of
//! matrix-sdk-store-encryption's `StoreCipher`).
//!
//! From the 32-byte store key, HKDF-SHA256 derives two keys per table: a value key for
//! XChaCha20-Poly1305 and a lookup key for HMAC-SHA256. A stored value is
//! `version || nonce (24) || ciphertext || tag` with AD `len(table) || table || lookup || version`,
//! so a value copied into another row or table fails to authenticate. Lookup columns hold
//! `HMAC(lookup key, natural key)`, never the natural key itself.

use core::fmt;

use chacha20::cipher::consts::U10;
use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{aead, kdf};
use crate::error::{Error, Result};

/// Length of the store key and of every key derived from it.
pub(crate) const STORE_KEY_LEN: usize = 32;
/// Format version of an encrypted value, first byte of every `value` column.
pub(crate) const VALUE_VERSION: u8 = 1;
/// XChaCha20-Poly1305 nonce length.
pub(crate) const XNONCE_LEN: usize = 24;
/// Poly1305 tag length.
const TAG_LEN: usize = 16;
/// Length of a search token: a truncated HMAC. 128 bits keep collisions out of reach for any
/// vocabulary a device will hold.
pub(crate) const SEARCH_TOKEN_LEN: usize = 16;

/// HKDF info prefixes. The table name follows.
const VALUE_KEY_INFO: &[u8] = b"hush/store/v1/value/";
const LOOKUP_KEY_INFO: &[u8] = b"hush/store/v1/lookup/";

/// The tables whose rows carry encrypted values or blind lookups. The name is both the SQL table
/// and the name bound into every value's AD and key derivation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Table {
    Account,
    User,
    Peers,
    Groups,
    Contacts,
    Conversations,
    Messages,
    SearchTokens,
    Outbox,
    Processed,
    Settings,
    SentLog,
}

impl Table {
    /// Every table, in the order of [`StoreCipher`]'s key array.
    pub(crate) const ALL: [Table; 12] = [
        Table::Account,
        Table::User,
        Table::Peers,
        Table::Groups,
        Table::Contacts,
        Table::Conversations,
        Table::Messages,
        Table::SearchTokens,
        Table::Outbox,
        Table::Processed,
        Table::Settings,
        Table::SentLog,
    ];

    /// The SQL table's name.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Table::Account => "account",
            Table::User => "user_identity",
            Table::Peers => "peers",
            Table::Groups => "group_states",
            Table::Contacts => "contacts",
            Table::Conversations => "conversations",
            Table::Messages => "messages",
            Table::SearchTokens => "search_tokens",
            Table::Outbox => "outbox",
            Table::Processed => "processed",
            Table::Settings => "settings",
            Table::SentLog => "sent_log",
        }
    }

    /// The error for a row of this table that fails to authenticate or decode.
    pub(crate) const fn corrupt(self) -> Error {
        Error::StoreCorrupt { table: self.name() }
    }
}

/// One table's two keys.
#[derive(Zeroize, ZeroizeOnDrop)]
struct TableKeys {
    value: [u8; STORE_KEY_LEN],
    lookup: [u8; STORE_KEY_LEN],
}

/// The unwrapped store key and every key derived from it. Wiped on drop, redacted in `Debug`.
pub(crate) struct StoreCipher {
    store_key: Zeroizing<[u8; STORE_KEY_LEN]>,
    tables: Vec<(Table, TableKeys)>,
    /// Benchmark-only: store values and lookups in the clear (see the `bench-plaintext` feature).
    #[cfg(feature = "bench-plaintext")]
    plaintext: bool,
}

impl StoreCipher {
    /// A fresh random store key.
    pub(crate) fn generate() -> Result<Self> {
        let mut key = Zeroizing::new([0u8; STORE_KEY_LEN]);
        OsRng.try_fill_bytes(key.as_mut_slice()).map_err(|_| Error::Internal("random store key"))?;
        Self::from_key(key)
    }

    /// The cipher of an unwrapped store key.
    pub(crate) fn from_key(store_key: Zeroizing<[u8; STORE_KEY_LEN]>) -> Result<Self> {
        let mut tables = Vec::with_capacity(Table::ALL.len());
        for table in Table::ALL {
            let value = derive(&store_key, VALUE_KEY_INFO, table)?;
            let lookup = derive(&store_key, LOOKUP_KEY_INFO, table)?;
            tables.push((table, TableKeys { value: *value, lookup: *lookup }));
        }
        Ok(Self {
            store_key,
            tables,
            #[cfg(feature = "bench-plaintext")]
            plaintext: false,
        })
    }

    /// Benchmark-only: a cipher that stores everything in the clear.
    #[cfg(feature = "bench-plaintext")]
    pub(crate) fn plaintext() -> Result<Self> {
        let mut cipher = Self::generate()?;
        cipher.plaintext = true;
        Ok(cipher)
    }

    /// The store key, for wrapping.
    pub(crate) fn store_key(&self) -> &[u8; STORE_KEY_LEN] {
        &self.store_key
    }

    /// Every key this cipher holds, for tests that scan files for key bytes.
    #[cfg(test)]
    pub(crate) fn all_keys(&self) -> Vec<[u8; STORE_KEY_LEN]> {
        let mut keys = vec![*self.store_key];
        for (_, k) in &self.tables {
            keys.push(k.value);
            keys.push(k.lookup);
        }
        keys
    }

    fn keys(&self, table: Table) -> Result<&TableKeys> {
        self.tables.iter().find(|(t, _)| *t == table).map(|(_, k)| k).ok_or(Error::Internal("store table keys"))
    }

    /// `HMAC-SHA256(lookup key of table, natural key)`: what lookup columns hold.
    pub(crate) fn lookup(&self, table: Table, natural_key: &[u8]) -> Result<[u8; 32]> {
        #[cfg(feature = "bench-plaintext")]
        if self.plaintext {
            let mut out = [0u8; 32];
            for (o, b) in out.iter_mut().zip(natural_key.iter().rev()) {
                *o = *b;
            }
            return Ok(out);
        }
        Ok(*kdf::hmac(&self.keys(table)?.lookup, natural_key)?)
    }

    /// A blind search token for one normalised word.
    pub(crate) fn search_token(&self, word: &str) -> Result<[u8; SEARCH_TOKEN_LEN]> {
        let mut token = [0u8; SEARCH_TOKEN_LEN];
        #[cfg(feature = "bench-plaintext")]
        if self.plaintext {
            for (t, b) in token.iter_mut().zip(word.bytes()) {
                *t = b;
            }
            return Ok(token);
        }
        let mac = kdf::hmac(&self.keys(Table::SearchTokens)?.lookup, word.as_bytes())?;
        for (t, m) in token.iter_mut().zip(mac.iter()) {
            *t = *m;
        }
        Ok(token)
    }

    /// Encrypts `plaintext` for the row of `table` whose lookup (or other row key) is `row_key`.
    pub(crate) fn seal(&self, table: Table, row_key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        #[cfg(feature = "bench-plaintext")]
        if self.plaintext {
            let mut out = Vec::with_capacity(1 + plaintext.len());
            out.push(VALUE_VERSION);
            out.extend_from_slice(plaintext);
            return Ok(out);
        }
        let mut nonce = [0u8; XNONCE_LEN];
        OsRng.try_fill_bytes(&mut nonce).map_err(|_| Error::Internal("random nonce"))?;
        let ciphertext = xseal(&self.keys(table)?.value, &nonce, &associated_data(table, row_key), plaintext)?;
        let mut out = Vec::with_capacity(1 + XNONCE_LEN + ciphertext.len());
        out.push(VALUE_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Decrypts a value [`seal`](Self::seal)ed for this row. Anything else, a value of another row
    /// or table included, is [`Error::StoreCorrupt`].
    pub(crate) fn open(&self, table: Table, row_key: &[u8], stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        #[cfg(feature = "bench-plaintext")]
        if self.plaintext {
            return match stored.split_first() {
                Some((&VALUE_VERSION, rest)) => Ok(Zeroizing::new(rest.to_vec())),
                _ => Err(table.corrupt()),
            };
        }
        let (version, rest) = stored.split_first().ok_or(table.corrupt())?;
        if *version != VALUE_VERSION || rest.len() < XNONCE_LEN + TAG_LEN {
            return Err(table.corrupt());
        }
        let (nonce, ciphertext) = rest.split_first_chunk::<XNONCE_LEN>().ok_or(table.corrupt())?;
        xopen(&self.keys(table)?.value, nonce, &associated_data(table, row_key), ciphertext)
            .map_err(|_| table.corrupt())
    }
}

impl fmt::Debug for StoreCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreCipher([redacted])")
    }
}

/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03): HChaCha20 turns the key and the nonce's first
/// 16 bytes into a subkey, under which ChaCha20-Poly1305 runs with nonce `0^4 || nonce[16..24]`.
/// The ChaCha20-Poly1305 is hush's own (`crypto::aead`: ring natively, about 7× faster than the
/// portable crate on short values; RustCrypto on wasm32). The same bytes as RustCrypto's
/// `XChaCha20Poly1305` (tested). Returns ciphertext || tag.
pub(crate) fn xseal(key: &[u8; 32], nonce: &[u8; XNONCE_LEN], ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let (subkey, inner_nonce) = xchacha_subkey(key, nonce);
    aead::seal(&subkey, &inner_nonce, ad, plaintext)
}

/// Opens [`xseal`]'s output; any mismatch is [`Error::DecryptionFailed`]. Wiped on drop.
pub(crate) fn xopen(
    key: &[u8; 32],
    nonce: &[u8; XNONCE_LEN],
    ad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let (subkey, inner_nonce) = xchacha_subkey(key, nonce);
    aead::open(&subkey, &inner_nonce, ad, ciphertext).map(Zeroizing::new)
}

fn xchacha_subkey(key: &[u8; 32], nonce: &[u8; XNONCE_LEN]) -> (Zeroizing<[u8; 32]>, [u8; aead::NONCE_LEN]) {
    let (head, tail) = nonce.split_at(16);
    let mut derived = chacha20::hchacha::<U10>(key.into(), head.into());
    let mut subkey = Zeroizing::new([0u8; 32]);
    subkey.copy_from_slice(&derived);
    derived.as_mut_slice().zeroize();
    let mut inner_nonce = [0u8; aead::NONCE_LEN];
    for (n, t) in inner_nonce.iter_mut().skip(4).zip(tail) {
        *n = *t;
    }
    (subkey, inner_nonce)
}

/// `len(table) || table || row key || version`.
fn associated_data(table: Table, row_key: &[u8]) -> Vec<u8> {
    let name = table.name().as_bytes();
    let mut ad = Vec::with_capacity(2 + name.len() + row_key.len());
    // Table names are short constants; the cast cannot truncate.
    ad.push(name.len() as u8);
    ad.extend_from_slice(name);
    ad.extend_from_slice(row_key);
    ad.push(VALUE_VERSION);
    ad
}

fn derive(store_key: &[u8; STORE_KEY_LEN], info: &[u8], table: Table) -> Result<Zeroizing<[u8; STORE_KEY_LEN]>> {
    let mut full = Vec::with_capacity(info.len() + table.name().len());
    full.extend_from_slice(info);
    full.extend_from_slice(table.name().as_bytes());
    kdf::hkdf::<STORE_KEY_LEN>(None, store_key, &full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> StoreCipher {
        StoreCipher::from_key(Zeroizing::new([5u8; 32])).unwrap()
    }

    #[test]
    fn value_round_trips_and_is_pinned_to_its_row_and_table() {
        let c = cipher();
        let sealed = c.seal(Table::Contacts, b"row-a", b"secret value").unwrap();
        assert_eq!(sealed.len(), 1 + XNONCE_LEN + 12 + TAG_LEN);
        assert_eq!(sealed[0], VALUE_VERSION);
        assert_eq!(c.open(Table::Contacts, b"row-a", &sealed).unwrap().as_slice(), b"secret value");
        let corrupt = Err(Error::StoreCorrupt { table: "contacts" });
        assert_eq!(c.open(Table::Contacts, b"row-b", &sealed), corrupt);
        assert_eq!(c.open(Table::Peers, b"row-a", &sealed), Err(Error::StoreCorrupt { table: "peers" }));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(c.open(Table::Contacts, b"row-a", &bad), corrupt);
        }
        assert_eq!(c.open(Table::Contacts, b"row-a", &sealed[..sealed.len() - 1]), corrupt);
        assert_eq!(c.open(Table::Contacts, b"row-a", &[]), corrupt);
        assert_eq!(c.open(Table::Contacts, b"row-a", &[VALUE_VERSION]), corrupt);
        // Fresh nonce every time.
        assert_ne!(sealed, c.seal(Table::Contacts, b"row-a", b"secret value").unwrap());
    }

    #[test]
    fn keys_differ_per_table_and_store_key() {
        let c = cipher();
        let other = StoreCipher::from_key(Zeroizing::new([6u8; 32])).unwrap();
        let a = c.lookup(Table::Contacts, b"alice").unwrap();
        assert_eq!(a, c.lookup(Table::Contacts, b"alice").unwrap());
        assert_ne!(a, c.lookup(Table::Peers, b"alice").unwrap());
        assert_ne!(a, other.lookup(Table::Contacts, b"alice").unwrap());
        assert_ne!(c.search_token("hello").unwrap(), other.search_token("hello").unwrap());
        let sealed = c.seal(Table::Contacts, b"row", b"x").unwrap();
        assert!(other.open(Table::Contacts, b"row", &sealed).is_err());
        let mut names: Vec<_> = Table::ALL.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Table::ALL.len());
    }

    /// Ours and RustCrypto's XChaCha20-Poly1305 (the one wasm32 would use) give the same bytes;
    /// the draft's test vector (draft-irtf-cfrg-xchacha-03, A.3.1) included.
    #[test]
    fn xchacha_matches_rustcrypto_and_the_draft() {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        for len in [0usize, 1, 63, 64, 65, 300] {
            let key = [len as u8; 32];
            let nonce = [0x5a ^ len as u8; 24];
            let msg = vec![0xA5u8; len];
            let ours = xseal(&key, &nonce, b"assoc", &msg).unwrap();
            let theirs = chacha20poly1305::XChaCha20Poly1305::new((&key).into())
                .encrypt((&nonce).into(), Payload { msg: &msg, aad: b"assoc" })
                .unwrap();
            assert_eq!(ours, theirs);
            assert_eq!(xopen(&key, &nonce, b"assoc", &ours).unwrap().as_slice(), msg.as_slice());
            assert_eq!(xopen(&key, &nonce, b"assoX", &ours), Err(Error::DecryptionFailed));
        }
        let key: Vec<u8> = (0x80..=0x9f).collect();
        let nonce: Vec<u8> = (0x40..=0x57).collect();
        let ad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
        let msg = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let ct = xseal(&key.try_into().unwrap(), &nonce.try_into().unwrap(), &ad, msg).unwrap();
        assert_eq!(
            hex::encode(&ct),
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52ec0875924c1c7987947deafd8780acf49"
        );
    }

    #[test]
    fn debug_is_redacted() {
        let c = cipher();
        let dbg = format!("{c:?}");
        assert_eq!(dbg, "StoreCipher([redacted])");
        crate::test_util::assert_no_secret(&dbg, c.store_key());
    }
}
