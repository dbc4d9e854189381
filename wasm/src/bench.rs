//! Benchmark support (the `bench` feature, never in the package): one established 1:1 session,
//! driven from JS by `wasm/bench/session.mjs` and natively by `examples/session_native.rs`, so
//! both measure the same Rust code.

use hush_core::{Account, SessionConfig, SessionRecord};
use rand_core::OsRng;
use wasm_bindgen::prelude::*;

use crate::error::HushError;

const PQ: SessionConfig = SessionConfig { allow_classical: false };

/// Alice and Bob with a PQXDH session established both ways (one message each way).
#[wasm_bindgen]
pub struct BenchSession {
    bob: Account,
    alice_to_bob: SessionRecord,
    bob_from_alice: SessionRecord,
}

#[wasm_bindgen]
impl BenchSession {
    /// Sets up the session (PQXDH with one-time X25519 and ML-KEM prekeys) and answers once, so the
    /// next messages are plain ratchet messages on an established chain.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Result<BenchSession, HushError> {
        let mut alice = Account::new(&mut OsRng);
        let mut bob = Account::new(&mut OsRng);
        let one_time = bob.generate_one_time_prekeys(&mut OsRng, 1)?;
        let kem = bob.generate_kem_prekeys(&mut OsRng, 1)?;
        let first = one_time.first().map(|k| k.id);
        let bundle = bob.prekey_bundle(first, kem.first().map(|k| k.id))?;
        let mut alice_to_bob = SessionRecord::new();
        alice_to_bob.initiate(&mut OsRng, alice.identity(), &bundle, PQ)?;
        let mut bob_from_alice = SessionRecord::new();
        let hello = alice_to_bob.encrypt(&mut OsRng, b"hello")?;
        bob_from_alice.decrypt(&mut OsRng, &mut bob, &hello, PQ)?;
        let reply = bob_from_alice.encrypt(&mut OsRng, b"hi")?;
        alice_to_bob.decrypt(&mut OsRng, &mut alice, &reply, PQ)?;
        Ok(Self { bob, alice_to_bob, bob_from_alice })
    }

    /// Alice encrypts `plaintext` and Bob decrypts it, `rounds` times; returns the total of the
    /// decrypted lengths (so nothing is optimised away and the caller can check it).
    #[wasm_bindgen(js_name = roundTrips)]
    pub fn round_trips(&mut self, plaintext: &[u8], rounds: u32) -> Result<f64, HushError> {
        let mut total = 0u64;
        for _ in 0..rounds {
            let wire = self.alice_to_bob.encrypt(&mut OsRng, plaintext)?;
            let out = self.bob_from_alice.decrypt(&mut OsRng, &mut self.bob, &wire, PQ)?;
            if out != plaintext {
                return Err(HushError::new(hush_core::ErrorKind::Internal, "decrypted text differs"));
            }
            total += out.len() as u64;
        }
        Ok(total as f64)
    }
}
