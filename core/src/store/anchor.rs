//! The store's anchor (docs/PROTOCOL.md §14.16): a small file beside the SQLite file that keeps the
//! store's generation outside it, so an older copy of the store is noticed at open, and whose OS
//! lock makes one open [`Store`](super::Store) the file's only user.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::cipher::{STORE_KEY_LEN, StoreCipher};
use crate::crypto::kdf;
use crate::error::{Error, Result};

/// What the anchor's file name adds to the store's (as SQLite's `-wal` and `-shm`).
const SUFFIX: &str = "-anchor";
/// The first bytes of an anchor file: its magic and format version.
const HEADER: &[u8; 12] = b"hush/anchor\x01";
/// One slot: BE64(generation) ‖ HMAC-SHA256(anchor key, BE64(generation)).
const SLOT_LEN: usize = 8 + 32;
/// Header and two slots: a write tearing one slot leaves the other.
pub(crate) const ANCHOR_LEN: usize = HEADER.len() + 2 * SLOT_LEN;
/// HKDF info of the anchor key (derived from the store key as the table keys are).
const ANCHOR_KEY_INFO: &[u8] = b"hush/store/v1/anchor";
/// How long an open waits for the lock before it is [`Error::StoreInUse`]: a process that forks
/// holds a copy of every descriptor, so the lock, until its child execs (a moment, longer on a
/// loaded machine); a store really open elsewhere stays locked.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(250);
/// How often the lock is tried again meanwhile.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// What an anchor file says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Anchored {
    /// Nothing yet: a store created before anchors, or a crash before the first write.
    Empty,
    /// The highest generation of an authentic slot.
    Generation(u64),
    /// No slot authenticates under this store's key: garbage, or another store's anchor.
    Unauthentic,
}

/// The anchor file of one store, opened and locked for as long as the store is open. The lock is
/// the OS's advisory whole-file lock (`flock` on Unix, `LockFileEx` on Windows), released when the
/// file closes, a crash included.
pub(crate) struct Anchor {
    file: File,
    key: Option<Zeroizing<[u8; STORE_KEY_LEN]>>,
}

impl Anchor {
    /// Opens (creating it empty if needed) and locks the anchor of the store at `store_path`.
    /// [`Error::StoreInUse`] when another open store, in this process or another, holds it.
    pub(crate) fn lock(store_path: &Path) -> Result<Self> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path_of(store_path))?;
        let started = std::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { file, key: None }),
                Err(TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => std::thread::sleep(LOCK_POLL),
                Err(TryLockError::WouldBlock) => return Err(Error::StoreInUse),
                Err(TryLockError::Error(e)) => return Err(e.into()),
            }
        }
    }

    /// Keys the anchor's MACs to this store (call once the store key is unwrapped).
    pub(crate) fn key_with(&mut self, cipher: &StoreCipher) -> Result<()> {
        self.key = Some(kdf::hkdf::<STORE_KEY_LEN>(None, cipher.store_key(), ANCHOR_KEY_INFO)?);
        Ok(())
    }

    fn mac(&self, generation: u64) -> Result<Zeroizing<[u8; 32]>> {
        let key = self.key.as_ref().ok_or(Error::Internal("store anchor used before its key"))?;
        kdf::hmac(key.as_slice(), &generation.to_be_bytes())
    }

    /// Reads the generation the anchor vouches for.
    pub(crate) fn read(&mut self) -> Result<Anchored> {
        let mut bytes = Vec::with_capacity(ANCHOR_LEN);
        self.file.seek(SeekFrom::Start(0))?;
        // One byte more than a well-formed anchor, so a longer file is seen as one.
        (&mut self.file).take(ANCHOR_LEN as u64 + 1).read_to_end(&mut bytes)?;
        if bytes.is_empty() {
            return Ok(Anchored::Empty);
        }
        let Some(slots) = bytes.strip_prefix(HEADER.as_slice()) else { return Ok(Anchored::Unauthentic) };
        if slots.len() != 2 * SLOT_LEN {
            return Ok(Anchored::Unauthentic);
        }
        let mut best = None;
        for slot in slots.chunks_exact(SLOT_LEN) {
            let (generation, tag) = slot.split_at(8);
            let generation = u64::from_be_bytes(generation.try_into().map_err(|_| Error::Internal("anchor slot"))?);
            if bool::from(self.mac(generation)?.as_slice().ct_eq(tag)) {
                best = best.max(Some(generation));
            }
        }
        Ok(best.map_or(Anchored::Unauthentic, Anchored::Generation))
    }

    /// Records `generation`, durably (`fsync`) before returning. Generation `g` goes to slot
    /// `g mod 2`, so the other slot keeps the one before while this one is written; a file that
    /// is not a whole anchor yet is written whole.
    pub(crate) fn write(&mut self, generation: u64) -> Result<()> {
        let mut slot = Vec::with_capacity(SLOT_LEN);
        slot.extend_from_slice(&generation.to_be_bytes());
        slot.extend_from_slice(self.mac(generation)?.as_slice());
        if self.file.metadata()?.len() != ANCHOR_LEN as u64 {
            let mut whole = HEADER.to_vec();
            whole.extend_from_slice(&slot);
            whole.extend_from_slice(&slot);
            self.file.set_len(0)?;
            self.file.seek(SeekFrom::Start(0))?;
            self.file.write_all(&whole)?;
        } else {
            let offset = HEADER.len() + SLOT_LEN * usize::from(generation % 2 == 1);
            self.file.seek(SeekFrom::Start(offset as u64))?;
            self.file.write_all(&slot)?;
        }
        self.file.sync_data()?;
        Ok(())
    }
}

/// The anchor file's path: the store's with [`SUFFIX`] appended.
pub(crate) fn path_of(store_path: &Path) -> PathBuf {
    let mut name = store_path.as_os_str().to_owned();
    name.push(SUFFIX);
    PathBuf::from(name)
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(path: &Path, cipher: &StoreCipher) -> Anchor {
        let mut anchor = Anchor::lock(path).unwrap();
        anchor.key_with(cipher).unwrap();
        anchor
    }

    #[test]
    fn generations_round_trip_and_a_torn_slot_leaves_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let cipher = StoreCipher::generate().unwrap();
        let mut anchor = keyed(&db, &cipher);
        assert_eq!(anchor.read().unwrap(), Anchored::Empty);
        for g in [0, 1, 2, 7, 8] {
            anchor.write(g).unwrap();
            assert_eq!(anchor.read().unwrap(), Anchored::Generation(g));
        }
        assert_eq!(std::fs::metadata(path_of(&db)).unwrap().len(), ANCHOR_LEN as u64);
        // Generation 9 torn halfway through its slot (odd: the second one): 8 still stands.
        let mut bytes = std::fs::read(path_of(&db)).unwrap();
        let mut slot = 9u64.to_be_bytes().to_vec();
        slot.extend_from_slice(anchor.mac(9).unwrap().as_slice());
        let second = HEADER.len() + SLOT_LEN;
        bytes[second..second + 20].copy_from_slice(&slot[..20]);
        std::fs::write(path_of(&db), &bytes).unwrap();
        assert_eq!(anchor.read().unwrap(), Anchored::Generation(8));
    }

    #[test]
    fn another_stores_anchor_or_garbage_vouches_for_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let mut anchor = keyed(&db, &StoreCipher::generate().unwrap());
        anchor.write(5).unwrap();
        drop(anchor);
        // The same file read with another store's key.
        let mut other = keyed(&db, &StoreCipher::generate().unwrap());
        assert_eq!(other.read().unwrap(), Anchored::Unauthentic);
        // A raised generation without the key's MAC.
        let mut bytes = std::fs::read(path_of(&db)).unwrap();
        bytes[HEADER.len()..HEADER.len() + 8].copy_from_slice(&u64::MAX.to_be_bytes());
        for garbage in [bytes.clone(), b"hush/anchor\x02".to_vec(), vec![0; ANCHOR_LEN + 1], vec![1]] {
            std::fs::write(path_of(&db), &garbage).unwrap();
            assert_eq!(other.read().unwrap(), Anchored::Unauthentic);
        }
    }

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let first = Anchor::lock(&db).unwrap();
        assert_eq!(Anchor::lock(&db).err(), Some(Error::StoreInUse));
        drop(first);
        Anchor::lock(&db).unwrap();
    }
}
