//! Challenge–signature authentication (docs/PROTOCOL.md §15): the relay sends a fresh nonce, its
//! origin and its time; the device signs `"hush/relay-auth/v1" || nonce || origin || time (u64 BE)`
//! with its Ed25519 device key. No passwords; a nonce answers one auth attempt only.

use hush_core::SigningPublicKey;
use hush_core::wire::relay::{AuthResponse, Challenge};
use rand_core::{OsRng, RngCore};
use subtle::ConstantTimeEq;

use crate::error::RequestError;
use crate::limits::{AUTH_CONTEXT, AUTH_TIME_SKEW_SECS, CHALLENGE_NONCE_LEN};
use crate::storage::DeviceId;

/// A fresh challenge for a new socket.
pub fn new_challenge(origin: &str, now: u64) -> Challenge {
    let mut nonce = vec![0u8; CHALLENGE_NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    Challenge { nonce, origin: origin.to_owned(), server_time: now }
}

/// Signs a challenge as a device (what clients do: hush-core's state machine does the same, and
/// tests and the client transport call this).
pub fn answer(identity: &hush_core::DeviceIdentity, challenge: &Challenge, time: u64) -> AuthResponse {
    hush_core::client::answer_challenge(identity, challenge, time, None)
}

/// Verifies an auth response to `challenge` at the relay's time `now`; returns the device id.
pub fn verify(challenge: &Challenge, response: &AuthResponse, now: u64) -> Result<DeviceId, RequestError> {
    let key = SigningPublicKey::from_slice(&response.device_key, "device key")
        .map_err(|_| RequestError::Malformed("device key"))?;
    if response.time.abs_diff(now) > AUTH_TIME_SKEW_SECS {
        return Err(RequestError::Unauthenticated("auth time is too far from the relay's clock"));
    }
    let message = hush_core::client::challenge_message(challenge, response.time);
    key.verify(AUTH_CONTEXT, &message, &response.signature, "auth response")
        .map_err(|_| RequestError::BadSignature("auth response"))?;
    Ok(key.to_bytes())
}

/// Compares a presented registration secret with the operator's, in constant time (lengths, which
/// say little, are compared first).
pub fn registration_secret_matches(presented: &str, expected: &str) -> bool {
    presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

/// A short fingerprint of a device key for logs: the first 4 bytes, hex. Never log whole keys.
pub fn fingerprint(device: &DeviceId) -> String {
    hex::encode(&device[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let id = hush_core::DeviceIdentity::generate(&mut OsRng);
        let ch = new_challenge("https://relay.example:443", 1_000);
        let ok = answer(&id, &ch, 1_010);
        assert_eq!(verify(&ch, &ok, 1_000), Ok(id.device_key().to_bytes()));
        assert_eq!(verify(&ch, &ok, 1_010 + AUTH_TIME_SKEW_SECS + 1).map_err(|e| e.reason()), Err("unauthenticated"));
        let other = new_challenge("https://relay.example:443", 1_000);
        assert_eq!(verify(&other, &ok, 1_000), Err(RequestError::BadSignature("auth response")));
        let mut wrong_origin = ch.clone();
        wrong_origin.origin = "https://evil.example".into();
        assert!(verify(&wrong_origin, &ok, 1_000).is_err());
        let mut bad = ok.clone();
        bad.device_key = vec![1; 5];
        assert_eq!(verify(&ch, &bad, 1_000), Err(RequestError::Malformed("device key")));
    }

    #[test]
    fn secrets_compare() {
        assert!(registration_secret_matches("abc", "abc"));
        assert!(!registration_secret_matches("abd", "abc"));
        assert!(!registration_secret_matches("ab", "abc"));
    }
}
