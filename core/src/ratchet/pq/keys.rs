//! The triple ratchet's key schedule (docs/PROTOCOL.md §7A.2): the epoch chain of post-quantum root
//! keys and epoch keys, from PQXDH's secret (or, for a session made before, its AD) and each epoch's
//! ML-KEM shared secret.

use crate::crypto::kdf;
use crate::error::Result;
use crate::ratchet::keys::Key32;

const INIT_INFO: &[u8] = b"hush/pqratchet/v1/init";
const UPGRADE_INFO: &[u8] = b"hush/pqratchet/v1/upgrade";
const EPOCH_INFO: &[u8] = b"hush/pqratchet/v1/epoch";

fn split(out: &[u8; 64]) -> (Key32, Key32) {
    let mut root = [0u8; 32];
    let mut key = [0u8; 32];
    root.copy_from_slice(&out[..32]);
    key.copy_from_slice(&out[32..]);
    (Key32(root), Key32(key))
}

/// Epoch 0 of a new session: `PR0 ‖ K0 = HKDF(0, SK, "hush/pqratchet/v1/init", 64)`.
pub(crate) fn initial(shared_secret: &[u8; 32]) -> Result<(Key32, Key32)> {
    Ok(split(&*kdf::hkdf::<64>(None, shared_secret, INIT_INFO)?))
}

/// Epoch 0 of a session made before the triple ratchet, which kept no PQXDH secret: from its AD,
/// which both sides know and the relay does not. Its post-quantum strength starts at epoch 1.
pub(crate) fn upgraded(ad: &[u8]) -> Result<(Key32, Key32)> {
    Ok(split(&*kdf::hkdf::<64>(None, ad, UPGRADE_INFO)?))
}

/// Epoch `e`: `PRe ‖ Ke = HKDF(PR(e−1), ss, "hush/pqratchet/v1/epoch" ‖ BE32(e), 64)`.
pub(crate) fn epoch_step(root: &Key32, shared_secret: &[u8; 32], epoch: u32) -> Result<(Key32, Key32)> {
    let mut info = Vec::with_capacity(EPOCH_INFO.len() + 4);
    info.extend_from_slice(EPOCH_INFO);
    info.extend_from_slice(&epoch.to_be_bytes());
    Ok(split(&*kdf::hkdf::<64>(Some(&root.0), shared_secret, &info)?))
}
