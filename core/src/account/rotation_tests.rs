//! The prekey schedule of docs/PROTOCOL.md §5.5 and the replay memory's overflow rule of §6.6: a
//! peer holding an old bundle opens a session inside the grace period and is refused after it.

use super::*;
use crate::SessionRecord;
use crate::test_util::{PQ, rng};

const T0: u64 = 1_700_000_000_000;

/// A first message from a new peer made from `bundle`.
fn first_message(rng: &mut rand_chacha::ChaCha20Rng, bundle: &PrekeyBundle) -> Vec<u8> {
    let peer = Account::new(rng);
    let mut session = SessionRecord::new();
    session.initiate(rng, peer.identity(), bundle, PQ).unwrap();
    session.encrypt(rng, b"hello").unwrap()
}

fn signed_ids(a: &Account) -> Vec<u32> {
    a.signed_prekeys.iter().map(|k| k.public.id).collect()
}

#[test]
fn a_new_account_is_dated_then_rotated_every_two_days_and_keeps_old_keys_for_their_grace() {
    let mut rng = rng(1);
    let mut a = Account::new(&mut rng);
    let nothing = PrekeyRotation::default();
    assert_eq!(a.rotate_due_prekeys(&mut rng, T0), PrekeyRotation { rotated: false, changed: true }, "dated");
    assert_eq!(a.rotate_due_prekeys(&mut rng, T0), nothing);
    assert_eq!(a.rotate_due_prekeys(&mut rng, T0 + PREKEY_ROTATION_MS - 1), nothing);
    let first = (a.signed_prekey().unwrap(), a.last_resort_kem_prekey().unwrap());
    assert_eq!(
        a.rotate_due_prekeys(&mut rng, T0 + PREKEY_ROTATION_MS),
        PrekeyRotation { rotated: true, changed: true }
    );
    assert_ne!(a.signed_prekey().unwrap(), first.0);
    assert_ne!(a.last_resort_kem_prekey().unwrap(), first.1);
    assert_eq!((a.signed_prekeys.len(), a.last_resort_ids.len()), (2, 2));

    // Every two days for a year: the old keys are the ones retired in the last 30 days, 15 of them.
    for n in 2..=183 {
        assert!(a.rotate_due_prekeys(&mut rng, T0 + n * PREKEY_ROTATION_MS).rotated);
        assert!(a.signed_prekeys.len() <= 16 && a.last_resort_ids.len() == a.signed_prekeys.len());
    }
    assert_eq!(a.signed_prekeys.len(), 16);
    let now = T0 + 183 * PREKEY_ROTATION_MS;
    for (old, next) in a.signed_prekeys.iter().zip(a.signed_prekeys.iter().skip(1)) {
        assert!(next.created_at_ms + OLD_PREKEY_GRACE_MS > now, "a key past its grace is kept");
        assert!(old.created_at_ms < next.created_at_ms);
    }
    let reloaded = Account::from_bytes(&a.to_bytes()).unwrap();
    assert_eq!(*reloaded.to_bytes(), *a.to_bytes(), "the dates are stored");
}

#[test]
fn a_peer_with_an_old_bundle_opens_a_session_inside_the_grace_and_is_refused_after() {
    let mut rng = rng(2);
    let mut bob = Account::new(&mut rng);
    bob.rotate_due_prekeys(&mut rng, T0);
    // A bundle the relay hands out (or a peer keeps) from before the rotation: its signed prekey
    // and last-resort ML-KEM key, no one-time key.
    let old = bob.prekey_bundle(None, None).unwrap();
    let old_kem = bob.last_resort_kem_prekey().unwrap().id;
    assert!(bob.rotate_due_prekeys(&mut rng, T0 + PREKEY_ROTATION_MS).rotated);
    let retired = T0 + PREKEY_ROTATION_MS;

    // The last moment of the grace: another rotation, and the old keys still open sessions.
    let last = retired + OLD_PREKEY_GRACE_MS - 1;
    assert!(bob.rotate_due_prekeys(&mut rng, last).rotated);
    let m = first_message(&mut rng, &old);
    assert_eq!(SessionRecord::new().decrypt(&mut rng, &mut bob, &m, PQ).unwrap(), b"hello");
    // A bundle with today's signed prekey but the old last-resort key.
    let mixed = bob.prekey_bundle(None, Some(old_kem)).unwrap();
    let late_old = first_message(&mut rng, &old);
    let late_mixed = first_message(&mut rng, &mixed);

    // Past it, both old keys are gone: the same bundles' first messages fail, changing nothing.
    assert_eq!(
        bob.rotate_due_prekeys(&mut rng, retired + OLD_PREKEY_GRACE_MS),
        PrekeyRotation { rotated: false, changed: true }
    );
    let before = bob.to_bytes();
    let unknown = |kind, id| Err(Error::UnknownPrekey { kind, id });
    let old_signed = old.signed_prekey.id;
    assert_eq!(
        SessionRecord::new().decrypt(&mut rng, &mut bob, &late_old, PQ),
        unknown(crate::PrekeyKind::Signed, old_signed)
    );
    assert_eq!(
        SessionRecord::new().decrypt(&mut rng, &mut bob, &late_mixed, PQ),
        unknown(crate::PrekeyKind::Kem, old_kem)
    );
    assert_eq!(*bob.to_bytes(), *before);
    assert!(!signed_ids(&bob).contains(&old_signed));
}

/// `test-vectors/store/account_v1.json`: an account pickle in the format from before rotation (no
/// `created_at_ms`), used for a while: three signed and three last-resort prekeys, one-time prekeys
/// of both kinds and a remembered base key.
const ACCOUNT_V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/store/account_v1.json");

/// The fixture's account, from a fixed seed: undated keys, as every account was before rotation.
fn account_v1_contents() -> Account {
    let mut rng = rng(0xACC1);
    let mut bob = Account::new(&mut rng);
    for _ in 0..2 {
        bob.rotate_signed_prekey(&mut rng, 0);
        bob.rotate_last_resort_kem_prekey(&mut rng, 0);
    }
    bob.generate_one_time_prekeys(&mut rng, 3).unwrap();
    bob.generate_kem_prekeys(&mut rng, 2).unwrap();
    let first = first_message(&mut rng, &bob.prekey_bundle(None, None).unwrap());
    SessionRecord::new().decrypt(&mut rng, &mut bob, &first, PQ).unwrap();
    bob
}

/// Writes the fixture. History once written: run only to recreate it for the format before rotation.
#[test]
#[ignore = "writes test-vectors/store/account_v1.json"]
fn write_account_v1_fixture() {
    let pickle = hex::encode(account_v1_contents().to_bytes().as_slice());
    let json = serde_json::json!({
        "description": "A storage::Account pickle in the format before prekey rotation (no created_at_ms fields: proto3 omits them at 0, so an undated account encodes exactly as the code before rotation wrote it): Account::new from a fixed seed, two signed and two last-resort rotations, three one-time X25519 and two one-time ML-KEM prekeys, and one accepted first message without one-time prekeys (a remembered base key). Opened by an_account_of_the_format_before_rotation_is_dated_at_its_first_check (core/src/account/rotation_tests.rs).",
        "pickle": pickle,
    });
    std::fs::write(ACCOUNT_V1, serde_json::to_string_pretty(&json).unwrap() + "\n").unwrap();
}

#[test]
fn an_account_of_the_format_before_rotation_is_dated_at_its_first_check() {
    let f: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(ACCOUNT_V1).unwrap()).unwrap();
    let v1 = hex::decode(f["pickle"].as_str().unwrap()).unwrap();
    let p = <crate::wire::storage::Account as prost::Message>::decode(v1.as_slice()).unwrap();
    assert_eq!((p.signed_prekeys.len(), p.last_resort_ids.len(), p.seen_base_keys.len()), (3, 3, 1));
    assert!(
        p.signed_prekeys.iter().all(|k| k.created_at_ms == 0) && p.kem_prekeys.iter().all(|k| k.created_at_ms == 0)
    );
    let mut rng = rng(3);
    let mut bob = Account::from_bytes(&v1).unwrap();
    assert_eq!(*bob.to_bytes(), *v1, "it loads and encodes as it was");
    assert_eq!(*account_v1_contents().to_bytes(), *v1, "the fixture is its seed's account");

    let current = bob.signed_prekey().unwrap();
    assert_eq!(bob.rotate_due_prekeys(&mut rng, T0), PrekeyRotation { rotated: false, changed: true });
    assert_eq!(bob.signed_prekey().unwrap(), current, "dated, not rotated");
    // Of the old keys, of unknown age, the one the current key replaced keeps the grace from now;
    // the older one (whose successor is undated too) goes. Its remembered base key stays only if
    // its signed prekey does.
    assert_eq!((bob.signed_prekeys.len(), bob.last_resort_ids.len()), (2, 2));
    let m = first_message(&mut rng, &bob.prekey_bundle(None, None).unwrap());
    assert_eq!(SessionRecord::new().decrypt(&mut rng, &mut bob, &m, PQ).unwrap(), b"hello");
    assert!(bob.rotate_due_prekeys(&mut rng, T0 + PREKEY_ROTATION_MS).rotated);
}

/// §6.6: when the memory of base keys is full, the signed prekey of the oldest is deleted (the
/// current one replaced first), so no replay outlives its base key's memory.
#[test]
fn a_full_base_key_memory_deletes_the_oldest_entrys_signed_prekey() {
    let mut rng = rng(4);
    let mut bob = Account::new(&mut rng);
    bob.rotate_due_prekeys(&mut rng, T0);
    let bundle = bob.prekey_bundle(None, None).unwrap();
    let spk = bundle.signed_prekey.id;
    let first = first_message(&mut rng, &bundle);
    SessionRecord::new().decrypt(&mut rng, &mut bob, &first, PQ).unwrap();
    assert_eq!(SessionRecord::new().decrypt(&mut rng, &mut bob, &first, PQ), Err(Error::DuplicateMessage));
    // Fill the memory (as MAX_SEEN_BASE_KEYS later first messages would), then one more arrives.
    while bob.seen_base_keys.len() < MAX_SEEN_BASE_KEYS {
        bob.seen_base_keys.push_back((spk, KeyPair::generate(&mut rng).public()));
    }
    let one_more = first_message(&mut rng, &bundle);
    SessionRecord::new().decrypt(&mut rng, &mut bob, &one_more, PQ).unwrap();

    assert!(!signed_ids(&bob).contains(&spk), "the full prekey is gone");
    assert!(bob.seen_base_keys.is_empty(), "with its base keys");
    let current = bob.signed_prekeys.last().unwrap();
    assert_eq!(current.created_at_ms, T0, "the replacement keeps the schedule");
    let before = bob.to_bytes();
    assert_eq!(
        SessionRecord::new().decrypt(&mut rng, &mut bob, &first, PQ),
        Err(Error::UnknownPrekey { kind: crate::PrekeyKind::Signed, id: spk })
    );
    assert_eq!(*bob.to_bytes(), *before);
    // New first messages use the new prekey.
    let fresh = first_message(&mut rng, &bob.prekey_bundle(None, None).unwrap());
    SessionRecord::new().decrypt(&mut rng, &mut bob, &fresh, PQ).unwrap();
}
