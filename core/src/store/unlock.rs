//! How a store is unlocked: its random store key, wrapped with XChaCha20-Poly1305 under either a
//! raw 32-byte key from the platform keystore or Argon2id(passphrase). The wrapping sits in the
//! `meta` table beside what is needed to redo it (salt, Argon2id parameters and version), and is
//! bound to them as AD, so changing a parameter in the file breaks the unwrap instead of weakening
//! it. Changing the passphrase or key rewraps the store key; no value is re-encrypted.

use core::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::{OsRng, RngCore};
use rusqlite::Connection;
use rusqlite::types::Value;
use zeroize::Zeroizing;

use super::cipher::{STORE_KEY_LEN, StoreCipher, XNONCE_LEN, xopen, xseal};
use crate::error::{Error, Result};
use crate::limits::{MAX_STORE_ARGON2_M_KIB, MAX_STORE_ARGON2_P_COST, MAX_STORE_ARGON2_T_COST};

/// Argon2id salt length.
const SALT_LEN: usize = 16;
/// Domain separation of the wrapping's AD.
const WRAP_CONTEXT: &[u8] = b"hush/store/key-wrap/v1";
const KDF_RAW: &str = "raw";
const KDF_ARGON2ID: &str = "argon2id";
/// The `meta` rows the wrapping occupies (all of them are replaced together).
const KEY_ROWS: &[&str] = &[
    "key_kdf",
    "key_salt",
    "key_argon2_m_kib",
    "key_argon2_t",
    "key_argon2_p",
    "key_argon2_version",
    "key_nonce",
    "key_wrapped",
];

/// What unlocks a store.
pub enum Unlock {
    /// A raw 32-byte key, typically kept by the platform keystore (Android Keystore, iOS Keychain,
    /// a non-extractable WebCrypto key's output).
    Key(Zeroizing<[u8; 32]>),
    /// A passphrase stretched with Argon2id. The parameters apply when a store is created or its
    /// unlock changed; opening uses the ones stored in the file. The passphrase's UTF-8 bytes are
    /// used as they are: normalise (e.g. NFC) before if the text may come from different keyboards.
    Passphrase(Zeroizing<String>, Argon2Params),
}

impl fmt::Debug for Unlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unlock::Key(_) => f.write_str("Unlock::Key([redacted])"),
            Unlock::Passphrase(_, params) => write!(f, "Unlock::Passphrase([redacted], {params:?})"),
        }
    }
}

/// Argon2id cost parameters (RFC 9106), version 0x13.
///
/// The default, m = 64 MiB, t = 3, p = 1, is RFC 9106's second recommended option (its "uniformly
/// safe option" when much less than 2 GiB of memory is available), with one lane because the
/// `argon2` crate computes lanes one after the other anyway, so more lanes would only cost time
/// without adding memory hardness. It takes 0.11–0.17 s on one core of the 2-core x86 server the
/// benchmarks run on (the spread is other load on the machine), which is 2–3 times as fast as a
/// mid-range phone core: about 0.25–0.5 s on a phone, the range aimed at for an unlock the user
/// waits for. t = 2 would save a third of that; the third pass keeps RFC 9106's margin against
/// time–memory trade-offs. 64 MiB fits a phone app's and a browser tab's memory. In the browser
/// (wasm32, no SIMD) expect roughly twice the native time. See BENCHMARKS.md, section "Store".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB (at least 8 × `p_cost`, at most [`MAX_STORE_ARGON2_M_KIB`]).
    pub m_cost_kib: u32,
    /// Passes over the memory (1 to [`MAX_STORE_ARGON2_T_COST`]).
    pub t_cost: u32,
    /// Lanes (1 to [`MAX_STORE_ARGON2_P_COST`]).
    pub p_cost: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self { m_cost_kib: 64 * 1024, t_cost: 3, p_cost: 1 }
    }
}

impl Argon2Params {
    fn check(&self) -> Result<Params> {
        if self.m_cost_kib > MAX_STORE_ARGON2_M_KIB
            || self.t_cost > MAX_STORE_ARGON2_T_COST
            || self.p_cost > MAX_STORE_ARGON2_P_COST
        {
            return Err(Error::Malformed { what: "Argon2id parameters" });
        }
        Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(STORE_KEY_LEN))
            .map_err(|_| Error::Malformed { what: "Argon2id parameters" })
    }
}

/// How the wrapping key is obtained.
enum Kdf {
    Raw,
    Argon2id { salt: [u8; SALT_LEN], params: Argon2Params },
}

impl Kdf {
    /// The AD of the wrapping: context, KDF name and every parameter.
    fn associated_data(&self) -> Vec<u8> {
        let mut ad = WRAP_CONTEXT.to_vec();
        match self {
            Kdf::Raw => ad.extend_from_slice(KDF_RAW.as_bytes()),
            Kdf::Argon2id { salt, params } => {
                ad.extend_from_slice(KDF_ARGON2ID.as_bytes());
                ad.extend_from_slice(salt);
                for n in [params.m_cost_kib, params.t_cost, params.p_cost, u32::from(Version::V0x13)] {
                    ad.extend_from_slice(&n.to_be_bytes());
                }
            }
        }
        ad
    }

    /// The key that wraps the store key. `WrongStoreKey` when `unlock` is of the other kind.
    fn wrapping_key(&self, unlock: &Unlock) -> Result<Zeroizing<[u8; STORE_KEY_LEN]>> {
        match (self, unlock) {
            (Kdf::Raw, Unlock::Key(key)) => Ok(key.clone()),
            (Kdf::Argon2id { salt, params }, Unlock::Passphrase(passphrase, _)) => {
                let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.check()?);
                let mut out = Zeroizing::new([0u8; STORE_KEY_LEN]);
                argon
                    .hash_password_into(passphrase.as_bytes(), salt, out.as_mut_slice())
                    .map_err(|_| Error::Malformed { what: "Argon2id parameters" })?;
                Ok(out)
            }
            _ => Err(Error::WrongStoreKey),
        }
    }
}

/// The wrapped store key as the `meta` table holds it.
pub(crate) struct WrappedKey {
    kdf: Kdf,
    nonce: [u8; XNONCE_LEN],
    wrapped: Vec<u8>,
}

impl WrappedKey {
    /// Wraps `cipher`'s store key for `unlock` (a fresh salt and nonce; Argon2id runs here).
    pub(crate) fn wrap(cipher: &StoreCipher, unlock: &Unlock) -> Result<Self> {
        let kdf = match unlock {
            Unlock::Key(_) => Kdf::Raw,
            Unlock::Passphrase(_, params) => {
                params.check()?;
                let mut salt = [0u8; SALT_LEN];
                OsRng.try_fill_bytes(&mut salt).map_err(|_| Error::Internal("random salt"))?;
                Kdf::Argon2id { salt, params: *params }
            }
        };
        let key = kdf.wrapping_key(unlock)?;
        let mut nonce = [0u8; XNONCE_LEN];
        OsRng.try_fill_bytes(&mut nonce).map_err(|_| Error::Internal("random nonce"))?;
        let wrapped = xseal(&key, &nonce, &kdf.associated_data(), cipher.store_key())?;
        Ok(Self { kdf, nonce, wrapped })
    }

    /// Unwraps the store key with `unlock`: [`Error::WrongStoreKey`] if it is not the right one.
    pub(crate) fn unwrap(&self, unlock: &Unlock) -> Result<StoreCipher> {
        let key = self.kdf.wrapping_key(unlock)?;
        let store_key =
            xopen(&key, &self.nonce, &self.kdf.associated_data(), &self.wrapped).map_err(|_| Error::WrongStoreKey)?;
        if store_key.len() != STORE_KEY_LEN {
            return Err(Error::StoreCorrupt { table: "meta" });
        }
        let mut key = Zeroizing::new([0u8; STORE_KEY_LEN]);
        key.copy_from_slice(&store_key);
        StoreCipher::from_key(key)
    }

    /// Reads the wrapping from `meta`. Missing or ill-typed rows are [`Error::StoreCorrupt`].
    pub(crate) fn load(conn: &Connection) -> Result<Self> {
        let corrupt = || Error::StoreCorrupt { table: "meta" };
        let mut rows = std::collections::BTreeMap::new();
        let mut stmt = conn.prepare("SELECT name, value FROM meta WHERE name LIKE 'key\\_%' ESCAPE '\\'")?;
        let mut query = stmt.query([])?;
        while let Some(row) = query.next()? {
            let name: String = row.get(0).map_err(|_| corrupt())?;
            let value: Value = row.get(1)?;
            rows.insert(name, value);
        }
        let blob = |name: &str| match rows.get(name) {
            Some(Value::Blob(b)) => Ok(b.clone()),
            _ => Err(corrupt()),
        };
        let int = |name: &str| match rows.get(name) {
            Some(Value::Integer(i)) => u32::try_from(*i).map_err(|_| corrupt()),
            _ => Err(corrupt()),
        };
        let kdf = match rows.get("key_kdf") {
            Some(Value::Text(t)) if t == KDF_RAW => Kdf::Raw,
            Some(Value::Text(t)) if t == KDF_ARGON2ID => {
                if int("key_argon2_version")? != u32::from(Version::V0x13) {
                    return Err(Error::UnsupportedVersion { what: "Argon2", version: int("key_argon2_version")? });
                }
                Kdf::Argon2id {
                    salt: blob("key_salt")?.as_slice().try_into().map_err(|_| corrupt())?,
                    params: Argon2Params {
                        m_cost_kib: int("key_argon2_m_kib")?,
                        t_cost: int("key_argon2_t")?,
                        p_cost: int("key_argon2_p")?,
                    },
                }
            }
            _ => return Err(corrupt()),
        };
        let nonce = blob("key_nonce")?.as_slice().try_into().map_err(|_| corrupt())?;
        Ok(Self { kdf, nonce, wrapped: blob("key_wrapped")? })
    }

    /// Whether `meta` holds a wrapping at all (a store was fully created in this file).
    pub(crate) fn exists(conn: &Connection) -> Result<bool> {
        let count: i64 = conn.query_row("SELECT count(*) FROM meta WHERE name = 'key_wrapped'", [], |r| r.get(0))?;
        Ok(count > 0)
    }

    /// Replaces the wrapping in `meta` (call inside a transaction).
    pub(crate) fn save(&self, conn: &Connection) -> Result<()> {
        for name in KEY_ROWS {
            conn.execute("DELETE FROM meta WHERE name = ?1", [name])?;
        }
        let mut insert = conn.prepare("INSERT INTO meta (name, value) VALUES (?1, ?2)")?;
        match &self.kdf {
            Kdf::Raw => {
                insert.execute(rusqlite::params!["key_kdf", KDF_RAW])?;
            }
            Kdf::Argon2id { salt, params } => {
                insert.execute(rusqlite::params!["key_kdf", KDF_ARGON2ID])?;
                insert.execute(rusqlite::params!["key_salt", salt.as_slice()])?;
                insert.execute(rusqlite::params!["key_argon2_m_kib", params.m_cost_kib])?;
                insert.execute(rusqlite::params!["key_argon2_t", params.t_cost])?;
                insert.execute(rusqlite::params!["key_argon2_p", params.p_cost])?;
                insert.execute(rusqlite::params!["key_argon2_version", u32::from(Version::V0x13)])?;
            }
        }
        insert.execute(rusqlite::params!["key_nonce", self.nonce.as_slice()])?;
        insert.execute(rusqlite::params!["key_wrapped", self.wrapped.as_slice()])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small parameters: tests run Argon2id many times.
    pub(crate) const FAST: Argon2Params = Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 };

    fn passphrase(p: &str) -> Unlock {
        Unlock::Passphrase(Zeroizing::new(p.to_owned()), FAST)
    }

    #[test]
    fn wrap_unwrap_with_key_and_passphrase() {
        let cipher = StoreCipher::generate().unwrap();
        let key = Unlock::Key(Zeroizing::new([9u8; 32]));
        let wrapped = WrappedKey::wrap(&cipher, &key).unwrap();
        assert_eq!(wrapped.unwrap(&key).unwrap().store_key(), cipher.store_key());
        assert_eq!(wrapped.unwrap(&Unlock::Key(Zeroizing::new([8u8; 32]))).err(), Some(Error::WrongStoreKey));
        assert_eq!(wrapped.unwrap(&passphrase("x")).err(), Some(Error::WrongStoreKey));

        let pass = passphrase("correct horse");
        let wrapped = WrappedKey::wrap(&cipher, &pass).unwrap();
        // Opening ignores the parameters given: the stored ones apply.
        let other_params = Unlock::Passphrase(Zeroizing::new("correct horse".into()), Argon2Params::default());
        assert_eq!(wrapped.unwrap(&other_params).unwrap().store_key(), cipher.store_key());
        assert_eq!(wrapped.unwrap(&passphrase("correct horsE")).err(), Some(Error::WrongStoreKey));
        assert_eq!(wrapped.unwrap(&key).err(), Some(Error::WrongStoreKey));
    }

    #[test]
    fn parameters_are_bound_to_the_wrapping() {
        let cipher = StoreCipher::generate().unwrap();
        let pass = passphrase("pw");
        let mut wrapped = WrappedKey::wrap(&cipher, &pass).unwrap();
        if let Kdf::Argon2id { params, .. } = &mut wrapped.kdf {
            params.t_cost = 2;
        }
        assert_eq!(wrapped.unwrap(&pass).err(), Some(Error::WrongStoreKey));
    }

    #[test]
    fn absurd_parameters_are_refused_before_running() {
        let cipher = StoreCipher::generate().unwrap();
        for params in [
            Argon2Params { m_cost_kib: MAX_STORE_ARGON2_M_KIB + 1, ..FAST },
            Argon2Params { t_cost: 0, ..FAST },
            Argon2Params { t_cost: MAX_STORE_ARGON2_T_COST + 1, ..FAST },
            Argon2Params { p_cost: 0, ..FAST },
            Argon2Params { m_cost_kib: 8, p_cost: 2, t_cost: 1 },
        ] {
            let unlock = Unlock::Passphrase(Zeroizing::new("pw".into()), params);
            assert_eq!(
                WrappedKey::wrap(&cipher, &unlock).err(),
                Some(Error::Malformed { what: "Argon2id parameters" })
            );
        }
    }

    #[test]
    fn debug_is_redacted() {
        let key = Unlock::Key(Zeroizing::new([0xAB; 32]));
        let pass = Unlock::Passphrase(Zeroizing::new("hunter2-passphrase".into()), FAST);
        let dbg = format!("{key:?} {pass:?}");
        crate::test_util::assert_no_secret(&dbg, &[0xAB; 32]);
        assert!(!dbg.contains("hunter2"));
        assert!(dbg.contains("redacted"));
    }
}
