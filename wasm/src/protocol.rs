//! Protocol exports that need no store: the package version and safety numbers.

use hush_core::SigningPublicKey;
use wasm_bindgen::prelude::*;

use crate::error::HushError;

/// The version of the hush-wasm package (and of the hush-core it was built from).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// The safety number of two users: 60 digits and the QR payload, the same on every device of both
/// users whatever the argument order.
#[wasm_bindgen]
#[derive(Debug, Clone)]
pub struct SafetyNumber(hush_core::SafetyNumber);

#[wasm_bindgen]
impl SafetyNumber {
    /// The 60 digits.
    #[wasm_bindgen(getter)]
    pub fn digits(&self) -> String {
        self.0.digits().to_owned()
    }

    /// The digits in 12 groups of five, as shown to people.
    #[wasm_bindgen(getter)]
    pub fn display(&self) -> String {
        self.0.display()
    }

    /// The 65 bytes to show as a QR code.
    #[wasm_bindgen(getter, js_name = qrPayload)]
    pub fn qr_payload(&self) -> Vec<u8> {
        self.0.qr_payload().to_vec()
    }

    /// Compares a scanned QR payload with ours in constant time: `false` means the keys differ.
    /// A payload of the wrong size or version throws a `HushError`.
    #[wasm_bindgen(js_name = matchesScanned)]
    pub fn matches_scanned(&self, scanned: &[u8]) -> Result<bool, HushError> {
        Ok(self.0.matches_scanned(scanned)?)
    }
}

/// The safety number of two users from their 32-byte Ed25519 user keys. A key of the wrong size
/// or not a valid point throws a `HushError` with code `"bad_input"`.
#[wasm_bindgen(js_name = safetyNumber)]
pub fn safety_number(user_key_a: &[u8], user_key_b: &[u8]) -> Result<SafetyNumber, HushError> {
    let a = SigningPublicKey::from_slice(user_key_a, "user key")?;
    let b = SigningPublicKey::from_slice(user_key_b, "user key")?;
    Ok(SafetyNumber(hush_core::SafetyNumber::new(&a, &b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_short_keys_with_a_typed_error() {
        let err = safety_number(&[1; 31], &[2; 32]).unwrap_err();
        assert_eq!(err.code(), "bad_input");
    }
}
