//! The encrypted store in this runtime (the `store` feature).
//!
//! The store is SQLite (rusqlite on sqlite-wasm-rs) in the module's memory; what keeps it across
//! page loads is its image ([`hush_core::Store::image`]), which the JavaScript wrapper writes to
//! IndexedDB before it sends anything the new state caused (see `js/hush-store.js`).

use hush_core::{Argon2Params, ErrorKind, Store, Unlock};
use rand_core::{OsRng, RngCore};
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use crate::error::HushError;

/// Checks that the encrypted store works in this runtime: opens an in-memory store under a random
/// key, writes a value in one transaction and reads it back in another. Returns the store's schema
/// version; throws a `HushError` if SQLite or the store fails here.
#[wasm_bindgen(js_name = checkStore)]
pub fn check_store() -> Result<u32, HushError> {
    let mut key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(key.as_mut());
    let mut store = Store::open_in_memory(Unlock::Key(key))?;
    let tx = store.transaction()?;
    tx.put_setting("hush-wasm-check", b"ok")?;
    tx.commit()?;
    let tx = store.transaction()?;
    let read = tx.setting("hush-wasm-check")?;
    tx.commit()?;
    if read.as_deref().map(Vec::as_slice) != Some(b"ok".as_slice()) {
        return Err(HushError::new(ErrorKind::Storage, "the store read back a different value"));
    }
    Ok(store.schema_version()?)
}

/// What unlocks a store: a 32-byte `storeKey` or a `passphrase` (Argon2id, default parameters);
/// exactly one of them.
pub(crate) fn unlock(store_key: Option<Vec<u8>>, passphrase: Option<String>) -> Result<Unlock, HushError> {
    match (store_key.map(Zeroizing::new), passphrase.map(Zeroizing::new)) {
        (Some(key), None) => {
            let key: [u8; 32] = key
                .as_slice()
                .try_into()
                .map_err(|_| HushError::new(ErrorKind::BadInput, "the store key must be 32 bytes"))?;
            Ok(Unlock::Key(Zeroizing::new(key)))
        }
        (None, Some(p)) => Ok(Unlock::Passphrase(p, Argon2Params::default())),
        _ => Err(HushError::new(ErrorKind::BadInput, "give either a 32-byte store key or a passphrase")),
    }
}
