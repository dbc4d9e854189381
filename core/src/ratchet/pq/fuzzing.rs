//! The triple ratchet's chunk path as a malicious peer drives it (docs/PROTOCOL.md §7A.5, §7A.7), for
//! the fuzz target `pq_chunk` (`fuzz/bodies/pq_chunk.rs`): a chunk sits inside the message AEAD, so
//! decrypting arbitrary messages never reaches it; this feeds bodies straight to the epoch state.

use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::pickle::{pq_from_storage, pq_to_storage};
use super::{Exchange, PqRatchet, chunk, keys};
use crate::limits::MAX_PQ_EPOCH_KEYS;

/// Epoch states to start from: both sides fresh, and both in the middle of epoch 1's exchange (the
/// key side's key out, the ciphertext side encapsulated with some shards each way).
fn fixture() -> &'static [PqRatchet; 4] {
    static FIXTURE: OnceLock<[PqRatchet; 4]> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(0x90C4);
        let start = keys::initial(&[7; 32]).unwrap_or_else(|_| unreachable!("HKDF of 64 bytes"));
        let mut a = PqRatchet::new(true, start.clone());
        let mut b = PqRatchet::new(false, start);
        let fresh = [a.clone(), b.clone()];
        for _ in 0..4 {
            if let Ok((epoch, _, shard)) = b.prepare_send(&mut rng) {
                let _ = a.receive(epoch, shard);
            }
            if let Ok((epoch, _, shard)) = a.prepare_send(&mut rng) {
                let _ = b.receive(epoch, shard);
            }
        }
        let [x, y] = fresh;
        [x, y, a, b]
    })
}

/// Input: byte 0 picks the starting state; then records of `epoch byte ‖ length ‖ body` (the epoch
/// byte: 0 the state's sending epoch, 1 the next, else itself minus 2). Each body is parsed as a
/// message body and given to the state on a copy, kept when accepted. After each accepted one the
/// state keeps its bounds and survives its storage format unchanged.
#[doc(hidden)]
pub fn pq_chunks(input: &[u8]) {
    let Some((&pick, mut rest)) = input.split_first() else { return };
    let states = fixture();
    let Some(start) = states.get(usize::from(pick) % states.len()) else { return };
    let mut state = start.clone();
    while let [epoch, len, tail @ ..] = rest {
        let (body, next) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = next;
        let epoch = match epoch {
            0 => state.sending_epoch,
            1 => state.sending_epoch.saturating_add(1),
            e => u32::from(*e) - 2,
        };
        let Ok((shard, _)) = chunk::decode(body) else { continue };
        let mut copy = state.clone();
        if copy.receive(epoch, shard).is_err() {
            continue;
        }
        state = copy;
        assert!(state.keys.len() <= MAX_PQ_EPOCH_KEYS);
        let shards = match &state.exchange {
            Exchange::Ek(side) => side.ct.shards.len(),
            Exchange::Ct(side) => side.ek.shards.len(),
        };
        assert!(shards < 19);
        let stored = pq_to_storage(&state);
        // (Storage types print no secrets, so no Debug: compare without it.)
        assert!(pq_from_storage(&stored).map(|s| pq_to_storage(&s)) == Ok(stored), "a state that does not reload");
    }
}
