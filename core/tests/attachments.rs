//! Attachment encryption end to end: round trips at the chunk edges and at 10 MB, and every way a
//! blob can be cut, padded, reordered, flipped or mis-keyed is refused, with no output written
//! before the digest verified.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Cursor;

use hush_core::Error;
use hush_core::attachment::{
    self, AttachmentEncryption, AttachmentKey, decrypt, decrypt_bytes, encrypt, encrypt_bytes,
};
use hush_core::limits::ATTACHMENT_CHUNK_BYTES;
use sha2::{Digest, Sha256};

const CAP: u64 = 16 * 1024 * 1024;
const HEADER: usize = 33;
const TAG: usize = 16;
const CHUNK: usize = ATTACHMENT_CHUNK_BYTES;

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0]).collect()
}

fn sealed(len: usize, seed: u64) -> (Vec<u8>, Vec<u8>, AttachmentEncryption) {
    let plaintext = data(len);
    let (blob, enc) = encrypt_bytes(&mut common::rng(seed), &plaintext, CAP).unwrap();
    (plaintext, blob, enc)
}

/// Decrypts into a writer the test can inspect afterwards.
fn try_decrypt(blob: &[u8], enc: &AttachmentEncryption) -> (Result<(), Error>, Vec<u8>) {
    let mut out = Vec::new();
    let result = decrypt(Cursor::new(blob), &mut out, enc, CAP);
    (result, out)
}

/// The same pointer, with the digest recomputed over `blob`: gets past the digest check so the
/// AEAD itself must refuse the change.
fn redigest(enc: &AttachmentEncryption, blob: &[u8], size: u64) -> AttachmentEncryption {
    AttachmentEncryption { key: enc.key.clone(), digest: Sha256::digest(blob).into(), size }
}

#[test]
fn round_trips_at_every_edge() {
    for (seed, len) in [0usize, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7].into_iter().enumerate() {
        let (plaintext, blob, enc) = sealed(len, seed as u64);
        assert_eq!(enc.size, len as u64);
        assert_eq!(Some(blob.len() as u64), attachment::encrypted_len(len as u64));
        assert_eq!(decrypt_bytes(&blob, &enc, CAP).unwrap(), plaintext, "len {len}");
    }
    // Exactly one chunk is one (full, last) chunk; one more byte makes a second chunk.
    assert_eq!(sealed(CHUNK, 9).1.len(), HEADER + CHUNK + TAG);
    assert_eq!(sealed(CHUNK + 1, 9).1.len(), HEADER + CHUNK + 1 + 2 * TAG);
    assert_eq!(sealed(0, 9).1.len(), HEADER + TAG);
}

#[test]
fn ten_megabytes_streaming() {
    let plaintext = data(10_000_000);
    let mut blob = Vec::new();
    // A reader that hands out odd-sized pieces, as sockets and files do.
    struct Trickle<'a>(&'a [u8]);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(12_345);
            let (head, tail) = self.0.split_at(n);
            buf[..n].copy_from_slice(head);
            self.0 = tail;
            Ok(n)
        }
    }
    let enc = encrypt(&mut common::rng(10), Trickle(&plaintext), &mut blob, CAP).unwrap();
    assert_eq!(enc.size, 10_000_000);
    assert_eq!(enc.digest, <[u8; 32]>::from(Sha256::digest(&blob)));
    let mut out = Vec::new();
    decrypt(Cursor::new(&blob), &mut out, &enc, CAP).unwrap();
    assert!(out == plaintext);
}

#[test]
fn truncated_blob_rejected() {
    let (_, blob, enc) = sealed(3 * CHUNK + 100, 11);
    let boundary = HEADER + 2 * (CHUNK + TAG);
    for cut in [boundary, HEADER + CHUNK + TAG, boundary + 1000, HEADER + 10, HEADER, 1, 0, blob.len() - 1] {
        let short = &blob[..cut];
        let (result, out) = try_decrypt(short, &enc);
        assert!(result.is_err(), "cut at {cut}");
        assert!(out.is_empty());
        // Even with a matching digest and size, the last-chunk flag refuses a cut at a boundary,
        // and the tag a cut inside a chunk.
        let body = cut.saturating_sub(HEADER);
        let chunks = body.div_ceil(CHUNK + TAG);
        if chunks > 0 && body - (chunks - 1) * (CHUNK + TAG) >= TAG {
            let forged = redigest(&enc, short, (body - chunks * TAG) as u64);
            assert_eq!(decrypt_bytes(short, &forged, CAP), Err(Error::DecryptionFailed), "cut at {cut}");
        }
    }
}

#[test]
fn extended_blob_rejected() {
    let (_, blob, enc) = sealed(2 * CHUNK, 12);
    // Append a copy of the first chunk, a valid chunk under this key, but at the wrong position.
    let mut long = blob.clone();
    long.extend_from_slice(&blob[HEADER..HEADER + CHUNK + TAG]);
    let (result, out) = try_decrypt(&long, &enc);
    assert_eq!(result, Err(Error::Malformed { what: "attachment blob length" }));
    assert!(out.is_empty());
    let forged = redigest(&enc, &long, 3 * CHUNK as u64);
    assert_eq!(decrypt_bytes(&long, &forged, CAP), Err(Error::DecryptionFailed));
    // One stray byte is refused too.
    let mut one_more = blob.clone();
    one_more.push(0);
    assert!(decrypt_bytes(&one_more, &enc, CAP).is_err());
}

#[test]
fn reordered_chunks_rejected() {
    let (_, blob, enc) = sealed(3 * CHUNK, 13);
    let mut swapped = blob.clone();
    let (a, b) = (HEADER, HEADER + CHUNK + TAG);
    let first = blob[a..b].to_vec();
    swapped.copy_within(b..b + CHUNK + TAG, a);
    swapped[b..b + CHUNK + TAG].copy_from_slice(&first);
    assert_eq!(decrypt_bytes(&swapped, &enc, CAP), Err(Error::AttachmentDigestMismatch));
    let forged = redigest(&enc, &swapped, enc.size);
    assert_eq!(decrypt_bytes(&swapped, &forged, CAP), Err(Error::DecryptionFailed));
}

#[test]
fn wrong_digest_rejected_before_any_output() {
    let (_, blob, mut enc) = sealed(2 * CHUNK + 5, 14);
    enc.digest[31] ^= 1;
    let (result, out) = try_decrypt(&blob, &enc);
    assert_eq!(result, Err(Error::AttachmentDigestMismatch));
    assert!(out.is_empty(), "{} bytes written before the digest check", out.len());
}

#[test]
fn wrong_key_rejected() {
    let (_, blob, enc) = sealed(CHUNK + 5, 15);
    let wrong = AttachmentEncryption { key: AttachmentKey::generate(&mut common::rng(99)), ..enc.clone() };
    let (result, out) = try_decrypt(&blob, &wrong);
    assert_eq!(result, Err(Error::DecryptionFailed));
    assert!(out.is_empty());
    // Another attachment's key, digest and size refuse this blob as well.
    let (_, _, other) = sealed(CHUNK + 5, 16);
    assert_eq!(decrypt_bytes(&blob, &other, CAP), Err(Error::AttachmentDigestMismatch));
}

#[test]
fn flipped_byte_rejected() {
    let (_, blob, enc) = sealed(2 * CHUNK + 300, 17);
    for pos in [0, 1, HEADER - 1, HEADER, HEADER + CHUNK, HEADER + CHUNK + TAG + 7, blob.len() - 1] {
        let mut bad = blob.clone();
        bad[pos] ^= 0x40;
        let (result, out) = try_decrypt(&bad, &enc);
        assert!(matches!(result, Err(Error::AttachmentDigestMismatch | Error::UnsupportedVersion { .. })), "{pos}");
        assert!(out.is_empty());
        // Past the digest, the key commitment (header) or the chunk tag refuses it.
        if pos > 0 {
            let forged = redigest(&enc, &bad, enc.size);
            assert_eq!(decrypt_bytes(&bad, &forged, CAP), Err(Error::DecryptionFailed), "{pos}");
        }
    }
}

#[test]
fn cap_enforced_on_encrypt_and_decrypt() {
    let plaintext = data(1000);
    assert_eq!(
        encrypt_bytes(&mut common::rng(18), &plaintext, 999).map(|_| ()),
        Err(Error::AttachmentTooLarge { size: 1000, max: 999 })
    );
    assert!(encrypt_bytes(&mut common::rng(18), &plaintext, 1000).is_ok());
    // A stream far over the cap stops being read soon after the cap.
    let mut endless = std::io::Read::take(std::io::repeat(7), u64::MAX);
    let mut sink = Vec::new();
    let result = encrypt(&mut common::rng(18), &mut endless, &mut sink, 3 * CHUNK as u64);
    assert!(matches!(result, Err(Error::AttachmentTooLarge { max, .. }) if max == 3 * CHUNK as u64));
    assert!(sink.len() <= HEADER + 3 * (CHUNK + TAG));

    let (_, blob, enc) = sealed(1000, 19);
    let mut out = Vec::new();
    assert_eq!(
        decrypt(Cursor::new(&blob), &mut out, &enc, 999),
        Err(Error::AttachmentTooLarge { size: 1000, max: 999 })
    );
    assert!(out.is_empty());
    assert!(decrypt(Cursor::new(&blob), &mut out, &enc, 1000).is_ok());
    // A pointer that claims more than the format can hold.
    let huge = AttachmentEncryption { size: u64::MAX, ..enc };
    assert!(matches!(decrypt_bytes(&blob, &huge, u64::MAX), Err(Error::AttachmentTooLarge { .. })));
}

#[test]
fn size_mismatch_rejected() {
    let (_, blob, enc) = sealed(CHUNK + 10, 20);
    for size in [0, enc.size - 1, enc.size + 1, 2 * CHUNK as u64] {
        let lying = AttachmentEncryption { size, ..enc.clone() };
        let (result, out) = try_decrypt(&blob, &lying);
        assert_eq!(result, Err(Error::Malformed { what: "attachment blob length" }), "size {size}");
        assert!(out.is_empty());
    }
}
