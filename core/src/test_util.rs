//! Helpers shared by unit tests.

/// Asserts that `text` (typically `Debug` output) shows `secret` in none of the usual encodings:
/// lower/upper hex, decimal byte lists, or any 4-byte window of either.
pub(crate) fn assert_no_secret(text: &str, secret: &[u8]) {
    let hex_lower: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let decimal = format!("{secret:?}");
    assert!(!text.to_lowercase().contains(&hex_lower), "hex secret in {text}");
    assert!(!text.contains(decimal.trim_start_matches('[').trim_end_matches(']')), "decimal secret in {text}");
    for window in secret.windows(4) {
        let w: String = window.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.to_lowercase().contains(&w), "secret fragment {w} in {text}");
    }
}

/// Classical X3DH refused: the configuration tests use unless they test the classical option.
pub(crate) const PQ: crate::SessionConfig = crate::SessionConfig { allow_classical: false };

/// A deterministic RNG per test.
pub(crate) fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(seed)
}
