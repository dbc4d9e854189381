//! The encrypted store in this runtime (the `store` feature).

use hush_core::{Store, Unlock};
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
        return Err(HushError::new("StoreCorrupt", "the store read back a different value"));
    }
    Ok(store.schema_version()?)
}
