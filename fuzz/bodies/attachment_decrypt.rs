//! Attachment decryption of arbitrary blobs: never panics, and nothing is written unless the blob
//! is exactly the one the pointer names.
//!
//! Input: byte 0 selects the mode. Mode 0 takes a valid three-chunk blob and XORs the rest of the
//! input into it at the offset in bytes 1–3, with the digest recomputed over the patched blob so the
//! chunk authentication itself is exercised; mode 1 does the same with the original digest; other
//! modes decrypt the rest of the input as is against the fixed pointer and against a pointer whose
//! size and digest are recomputed for it.

use std::io::Cursor;
use std::sync::OnceLock;

use hush_core::attachment::{self, AttachmentEncryption, decrypt};
use hush_core::limits::ATTACHMENT_CHUNK_BYTES;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};

const CAP: u64 = 1 << 20;

struct Fixture {
    plaintext: Vec<u8>,
    blob: Vec<u8>,
    encryption: AttachmentEncryption,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let plaintext: Vec<u8> = (0..2 * ATTACHMENT_CHUNK_BYTES + 77).map(|i| (i % 251) as u8).collect();
        let (blob, encryption) =
            attachment::encrypt_bytes(&mut ChaCha20Rng::seed_from_u64(0xA77), &plaintext, CAP).unwrap();
        Fixture { plaintext, blob, encryption }
    })
}

/// Decrypts; on success the output must be what was encrypted (when the blob is the fixture's), and
/// on a failure before the digest verified nothing may have been written.
fn check(blob: &[u8], encryption: &AttachmentEncryption, unchanged: bool) {
    let mut out = Vec::new();
    match decrypt(Cursor::new(blob), &mut out, encryption, CAP) {
        Ok(()) => {
            assert_eq!(out.len() as u64, encryption.size);
            if unchanged {
                assert_eq!(out, fixture().plaintext);
            }
        }
        Err(hush_core::Error::AttachmentDigestMismatch)
        | Err(hush_core::Error::AttachmentTooLarge { .. })
        | Err(hush_core::Error::Malformed { .. })
        | Err(hush_core::Error::UnsupportedVersion { .. }) => assert!(out.is_empty()),
        Err(_) => {}
    }
}

/// The target's body: one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let f = fixture();
    match (mode % 3, rest) {
        (m @ 0..=1, [a, b, c, patch @ ..]) => {
            let mut blob = f.blob.clone();
            let offset = (usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c)) % blob.len();
            for (byte, x) in blob.iter_mut().skip(offset).zip(patch) {
                *byte ^= x;
            }
            let unchanged = blob == f.blob;
            if m == 0 {
                let encryption = AttachmentEncryption { digest: Sha256::digest(&blob).into(), ..f.encryption.clone() };
                check(&blob, &encryption, unchanged);
            } else {
                check(&blob, &f.encryption, unchanged);
            }
        }
        _ => {
            check(rest, &f.encryption, rest == f.blob.as_slice());
            // A pointer made for these bytes: size from the length, digest over them.
            let body = rest.len().saturating_sub(33) as u64;
            let chunks = body.div_ceil(ATTACHMENT_CHUNK_BYTES as u64 + 16).max(1);
            let size = body.saturating_sub(chunks * 16);
            let encryption = AttachmentEncryption { digest: Sha256::digest(rest).into(), size, ..f.encryption.clone() };
            check(rest, &encryption, rest == f.blob.as_slice());
        }
    }
}
