//! The triple ratchet's chunks (docs/PROTOCOL.md §7A.5, §7A.7) as a malicious peer sends them,
//! straight into the epoch state (the chunk is inside the message AEAD, out of reach of the decrypt
//! targets): never panics, keeps its bounds, and every accepted state survives its storage format.

/// The target's body: one input.
pub fn run(data: &[u8]) {
    hush_core::fuzzing::pq_chunks(data);
}
