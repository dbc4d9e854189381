//! Attachment encryption: a file becomes an encrypted blob for the relay plus the key, digest and size
//! that go into an [`AttachmentPointer`](crate::content::AttachmentPointer). Streaming, in constant
//! memory, with the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, CRYPTO 2015) over
//! ChaCha20-Poly1305.
//!
//! Blob format, version 1:
//!
//! ```text
//! header = 0x01 || key commitment (32)                                     33 bytes
//! chunk i = ChaCha20-Poly1305(chunk key, nonce_i, ad = header, plaintext_i)  plaintext + 16 bytes
//! nonce_i = nonce prefix (7) || i as u32 big-endian || 0x01 on the last chunk, else 0x00
//! chunk key (32) || nonce prefix (7) || key commitment (32) = HKDF-SHA256(salt = none,
//!     ikm = attachment key (64 random bytes), info = "hush/attachment/v1")
//! ```
//!
//! Every chunk holds [`ATTACHMENT_CHUNK_BYTES`] of plaintext but the last, which holds 0 to that
//! many; an empty attachment is one empty last chunk. So the blob's length follows from the
//! plaintext size, and the chunk counter and last-chunk flag in each nonce make truncation,
//! reordering and extension fail to authenticate. The key commitment makes the blob (and so the
//! pointer's digest) name exactly one key: ChaCha20-Poly1305 alone does not commit to its key, and
//! without it a sender could craft one blob that different recipients open to different files.
//!
//! The pointer's digest is SHA-256 over the whole blob. [`decrypt`] checks it (and the length)
//! over the whole blob *before* it writes a single byte, then rewinds and decrypts.

use std::io::{Read, Seek, SeekFrom, Write};

use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::aead::{self, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::crypto::kdf;
use crate::error::{Error, Result};
use crate::limits::ATTACHMENT_CHUNK_BYTES;

/// Length of an [`AttachmentKey`].
pub const ATTACHMENT_KEY_LEN: usize = 64;
/// Length of an attachment digest (SHA-256 of the encrypted blob).
pub const ATTACHMENT_DIGEST_LEN: usize = 32;

const BLOB_VERSION: u8 = 1;
const COMMITMENT_LEN: usize = 32;
const HEADER_LEN: usize = 1 + COMMITMENT_LEN;
const NONCE_PREFIX_LEN: usize = 7;
const KDF_INFO: &[u8] = b"hush/attachment/v1";
/// One encrypted chunk, tag included.
const SEALED_CHUNK_BYTES: usize = ATTACHMENT_CHUNK_BYTES + TAG_LEN;
/// The chunk counter is 32 bits, which bounds what the format can carry (2^48 bytes).
const FORMAT_MAX_BYTES: u64 = (u32::MAX as u64 + 1) * ATTACHMENT_CHUNK_BYTES as u64;

/// The secret of one attachment: 64 random bytes, from which the chunk key, nonce prefix and key
/// commitment are derived. Wiped on drop; `Debug` prints no key bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AttachmentKey([u8; ATTACHMENT_KEY_LEN]);

impl AttachmentKey {
    /// A fresh random key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut key = Self([0u8; ATTACHMENT_KEY_LEN]);
        rng.fill_bytes(&mut key.0);
        key
    }

    /// The key from its bytes, e.g. a pointer's `key` field.
    pub fn from_bytes(bytes: [u8; ATTACHMENT_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key from a slice of exactly [`ATTACHMENT_KEY_LEN`] bytes, or [`Error::Malformed`].
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let bytes: &[u8; ATTACHMENT_KEY_LEN] =
            bytes.try_into().map_err(|_| Error::Malformed { what: "attachment key" })?;
        Ok(Self(*bytes))
    }

    /// The key's bytes (secret).
    pub fn as_bytes(&self) -> &[u8; ATTACHMENT_KEY_LEN] {
        &self.0
    }

    fn derive(&self) -> Result<DerivedKeys> {
        let okm = kdf::hkdf::<{ KEY_LEN + NONCE_PREFIX_LEN + COMMITMENT_LEN }>(None, &self.0, KDF_INFO)?;
        let (key, rest) = okm.split_first_chunk::<KEY_LEN>().ok_or(Error::Internal("attachment kdf"))?;
        let (prefix, rest) = rest.split_first_chunk::<NONCE_PREFIX_LEN>().ok_or(Error::Internal("attachment kdf"))?;
        let commitment: &[u8; COMMITMENT_LEN] = rest.try_into().map_err(|_| Error::Internal("attachment kdf"))?;
        let mut header = [0u8; HEADER_LEN];
        let (version, header_commitment) = header.split_at_mut(1);
        version.fill(BLOB_VERSION);
        header_commitment.copy_from_slice(commitment);
        Ok(DerivedKeys { key: Zeroizing::new(*key), nonce_prefix: *prefix, header })
    }
}

impl PartialEq for AttachmentKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for AttachmentKey {}

impl core::fmt::Debug for AttachmentKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AttachmentKey([redacted])")
    }
}

/// What [`encrypt`] returns and [`decrypt`] needs: the key, the SHA-256 digest of the encrypted
/// blob and the plaintext size. All three travel in the attachment pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentEncryption {
    /// The attachment's secret key.
    pub key: AttachmentKey,
    /// SHA-256 of the whole encrypted blob.
    pub digest: [u8; ATTACHMENT_DIGEST_LEN],
    /// Plaintext size in bytes.
    pub size: u64,
}

struct DerivedKeys {
    key: Zeroizing<[u8; KEY_LEN]>,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    /// The whole blob header (version and key commitment), also every chunk's associated data.
    header: [u8; HEADER_LEN],
}

impl DerivedKeys {
    fn nonce(&self, counter: u32, last: bool) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        let (prefix, rest) = nonce.split_at_mut(NONCE_PREFIX_LEN);
        prefix.copy_from_slice(&self.nonce_prefix);
        let (count, flag) = rest.split_at_mut(4);
        count.copy_from_slice(&counter.to_be_bytes());
        flag.fill(u8::from(last));
        nonce
    }
}

/// The number of chunks of a `size`-byte attachment (at least one: an empty attachment is one
/// empty last chunk).
fn chunk_count(size: u64) -> u64 {
    size.div_ceil(ATTACHMENT_CHUNK_BYTES as u64).max(1)
}

/// The blob length of a `size`-byte attachment, if it is within the format's bounds.
pub fn encrypted_len(size: u64) -> Option<u64> {
    if size > FORMAT_MAX_BYTES {
        return None;
    }
    size.checked_add(chunk_count(size).checked_mul(TAG_LEN as u64)?)?.checked_add(HEADER_LEN as u64)
}

fn io(e: std::io::Error) -> Error {
    Error::Io(e.kind())
}

/// Reads until `buf` is full or the reader ends; returns how many bytes were read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..) {
        if rest.is_empty() {
            break;
        }
        match reader.read(rest) {
            Ok(0) => break,
            // `min`: a reader claiming more than the buffer holds must not push us past it.
            Ok(n) => filled += n.min(rest.len()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(filled)
}

/// Encrypts everything `reader` yields into a blob written to `writer`, in constant memory. Fails
/// with [`Error::AttachmentTooLarge`] as soon as more than `cap` bytes were read; the writer then
/// holds a partial blob, which the caller discards.
pub fn encrypt<R: Read, W: Write>(
    rng: &mut impl CryptoRngCore,
    mut reader: R,
    mut writer: W,
    cap: u64,
) -> Result<AttachmentEncryption> {
    let cap = cap.min(FORMAT_MAX_BYTES);
    let key = AttachmentKey::generate(rng);
    let derived = key.derive()?;
    let mut hash = Sha256::new();
    writer.write_all(&derived.header).map_err(io)?;
    hash.update(derived.header);

    let mut size = 0u64;
    let mut read_chunk = |buf: &mut [u8]| -> Result<usize> {
        let n = read_full(&mut reader, buf)?;
        size = size.saturating_add(n as u64);
        if size > cap {
            return Err(Error::AttachmentTooLarge { size, max: cap });
        }
        Ok(n)
    };
    // Two chunk buffers: a full chunk is the last one only if nothing follows it.
    let mut current = Zeroizing::new(vec![0u8; ATTACHMENT_CHUNK_BYTES]);
    let mut next = Zeroizing::new(vec![0u8; ATTACHMENT_CHUNK_BYTES]);
    let mut current_len = read_chunk(&mut current)?;
    let mut counter = 0u32;
    loop {
        let next_len = if current_len < ATTACHMENT_CHUNK_BYTES { 0 } else { read_chunk(&mut next)? };
        let last = next_len == 0;
        let plaintext = current.get(..current_len).ok_or(Error::Internal("attachment chunk"))?;
        let sealed = aead::seal(&derived.key, &derived.nonce(counter, last), &derived.header, plaintext)?;
        writer.write_all(&sealed).map_err(io)?;
        hash.update(&sealed);
        if last {
            break;
        }
        core::mem::swap(&mut current, &mut next);
        current_len = next_len;
        // Unreachable: 2^32 full chunks reach FORMAT_MAX_BYTES, so one more byte fails the cap.
        counter = counter.checked_add(1).ok_or(Error::Internal("attachment chunk counter"))?;
    }
    writer.flush().map_err(io)?;
    Ok(AttachmentEncryption { key, digest: hash.finalize().into(), size })
}

/// Decrypts the blob `reader` yields (from its current position) into `writer`, in constant memory.
///
/// First pass: checks `encryption.size` against `cap`, the blob's version, its length against the
/// size and its SHA-256 against the digest, writing nothing. Second pass (after seeking back):
/// decrypts chunk by chunk, verifying each chunk's position and the last-chunk flag. Should the
/// blob change between the passes, a chunk fails to authenticate or the digest is checked again
/// at the end; the writer then holds partial output, which the caller discards on any error.
pub fn decrypt<R: Read + Seek, W: Write>(
    mut reader: R,
    mut writer: W,
    encryption: &AttachmentEncryption,
    cap: u64,
) -> Result<()> {
    let size = encryption.size;
    if size > cap.min(FORMAT_MAX_BYTES) {
        return Err(Error::AttachmentTooLarge { size, max: cap });
    }
    let blob_len = encrypted_len(size).ok_or(Error::AttachmentTooLarge { size, max: cap })?;
    let derived = encryption.key.derive()?;
    let start = reader.stream_position().map_err(io)?;

    // Pass 1: version, length and digest; nothing is written.
    let mut header = [0u8; HEADER_LEN];
    if read_full(&mut reader, &mut header[..1])? != 1 {
        return Err(Error::Malformed { what: "attachment blob" });
    }
    let version = header[0];
    if version != BLOB_VERSION {
        return Err(Error::UnsupportedVersion { what: "attachment blob", version: u32::from(version) });
    }
    let mut hash = Sha256::new();
    hash.update([version]);
    let mut seen = 1u64;
    let mut buf = Zeroizing::new(vec![0u8; SEALED_CHUNK_BYTES]);
    loop {
        let n = read_full(&mut reader, &mut buf)?;
        if n == 0 {
            break;
        }
        seen = seen.saturating_add(n as u64);
        // Stop reading as soon as the blob is longer than its size allows.
        if seen > blob_len {
            return Err(Error::Malformed { what: "attachment blob length" });
        }
        hash.update(buf.get(..n).ok_or(Error::Internal("attachment read"))?);
    }
    if seen != blob_len {
        return Err(Error::Malformed { what: "attachment blob length" });
    }
    if !bool::from(hash.finalize().as_slice().ct_eq(&encryption.digest)) {
        return Err(Error::AttachmentDigestMismatch);
    }

    // Pass 2: the blob is the one the pointer names; decrypt it.
    reader.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut hash = Sha256::new();
    if read_full(&mut reader, &mut header)? != HEADER_LEN {
        return Err(Error::Malformed { what: "attachment blob length" });
    }
    hash.update(header);
    // A wrong key shows here, before any chunk is opened.
    if !bool::from(header.ct_eq(&derived.header)) {
        return Err(Error::DecryptionFailed);
    }
    let chunks = chunk_count(size);
    let mut remaining = size;
    let mut written = 0u64;
    for index in 0..chunks {
        let counter = u32::try_from(index).map_err(|_| Error::AttachmentTooLarge { size, max: cap })?;
        let last = index + 1 == chunks;
        let plain_len = remaining.min(ATTACHMENT_CHUNK_BYTES as u64) as usize;
        let sealed = buf.get_mut(..plain_len + TAG_LEN).ok_or(Error::Internal("attachment chunk"))?;
        if read_full(&mut reader, sealed)? != sealed.len() {
            return Err(Error::Malformed { what: "attachment blob length" });
        }
        hash.update(&*sealed);
        let plaintext =
            Zeroizing::new(aead::open(&derived.key, &derived.nonce(counter, last), &derived.header, sealed)?);
        writer.write_all(&plaintext).map_err(io)?;
        written += plaintext.len() as u64;
        remaining -= plaintext.len() as u64;
    }
    let mut extra = [0u8; 1];
    if read_full(&mut reader, &mut extra)? != 0 {
        return Err(Error::Malformed { what: "attachment blob length" });
    }
    if !bool::from(hash.finalize().as_slice().ct_eq(&encryption.digest)) {
        return Err(Error::AttachmentDigestMismatch);
    }
    if written != size {
        return Err(Error::Internal("attachment size"));
    }
    writer.flush().map_err(io)?;
    Ok(())
}

/// [`encrypt`] for an attachment held in memory: returns the blob and its encryption parameters.
pub fn encrypt_bytes(
    rng: &mut impl CryptoRngCore,
    plaintext: &[u8],
    cap: u64,
) -> Result<(Vec<u8>, AttachmentEncryption)> {
    let mut blob = Vec::new();
    let encryption = encrypt(rng, plaintext, &mut blob, cap)?;
    Ok((blob, encryption))
}

/// [`decrypt`] for a blob held in memory: returns the plaintext only if everything verified.
pub fn decrypt_bytes(blob: &[u8], encryption: &AttachmentEncryption, cap: u64) -> Result<Vec<u8>> {
    let mut plaintext = Vec::new();
    decrypt(std::io::Cursor::new(blob), &mut plaintext, encryption, cap)?;
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::test_util::assert_no_secret;

    #[test]
    fn layout_follows_size() {
        let c = ATTACHMENT_CHUNK_BYTES as u64;
        assert_eq!(encrypted_len(0), Some(33 + 16));
        assert_eq!(encrypted_len(1), Some(33 + 1 + 16));
        assert_eq!(encrypted_len(c), Some(33 + c + 16));
        assert_eq!(encrypted_len(c + 1), Some(33 + c + 1 + 32));
        assert_eq!(encrypted_len(FORMAT_MAX_BYTES + 1), None);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for len in [0, 1, ATTACHMENT_CHUNK_BYTES, ATTACHMENT_CHUNK_BYTES + 1] {
            let (blob, enc) = encrypt_bytes(&mut rng, &vec![7u8; len], u64::MAX).unwrap();
            assert_eq!(Some(blob.len() as u64), encrypted_len(len as u64));
            assert_eq!(enc.size, len as u64);
            assert_eq!(blob[0], BLOB_VERSION);
        }
    }

    #[test]
    fn nonce_layout() {
        let derived = AttachmentKey::from_bytes([3u8; 64]).derive().unwrap();
        let n = derived.nonce(0x0102_0304, true);
        assert_eq!(n[..7], derived.nonce_prefix);
        assert_eq!(n[7..], [1, 2, 3, 4, 1]);
        assert_eq!(derived.nonce(5, false)[7..], [0, 0, 0, 5, 0]);
    }

    #[test]
    fn unknown_version_rejected_before_output() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let (mut blob, enc) = encrypt_bytes(&mut rng, b"hello", 1 << 20).unwrap();
        blob[0] = 2;
        let mut out = Vec::new();
        assert_eq!(
            decrypt(std::io::Cursor::new(&blob), &mut out, &enc, 1 << 20),
            Err(Error::UnsupportedVersion { what: "attachment blob", version: 2 })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn decrypts_from_the_reader_position() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (blob, enc) = encrypt_bytes(&mut rng, &[9u8; 70_000], 1 << 20).unwrap();
        let mut framed = b"prefix".to_vec();
        framed.extend_from_slice(&blob);
        let mut cursor = std::io::Cursor::new(&framed);
        cursor.set_position(6);
        let mut out = Vec::new();
        decrypt(cursor, &mut out, &enc, 1 << 20).unwrap();
        assert_eq!(out, vec![9u8; 70_000]);
    }

    #[test]
    fn debug_redacts_key() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let (_, enc) = encrypt_bytes(&mut rng, b"secret file", 1 << 20).unwrap();
        let text = format!("{enc:?} {:?}", enc.key);
        assert!(text.contains("redacted"));
        assert_no_secret(&text, enc.key.as_bytes());
    }
}
