//! Two devices talk through hush-core, with the relay played by a `Vec` of in-flight messages:
//! device lists, a PQXDH session, a few ratchet turns, and the safety number both users compare.
//!
//! Run it with `cargo run -p hush-core --example two_devices`.

use hush_core::{Account, PrekeyBundle, SafetyNumber, SessionConfig, SessionRecord, SignedDeviceList, UserIdentity};
use rand_core::OsRng;

fn main() -> Result<(), hush_core::Error> {
    let cfg = SessionConfig::default();

    // Each user has a user key and one device; the user key signs the device list.
    let (alice_user, mut alice) = (UserIdentity::generate(&mut OsRng), Account::new(&mut OsRng));
    let (bob_user, mut bob) = (UserIdentity::generate(&mut OsRng), Account::new(&mut OsRng));
    let bob_list = SignedDeviceList::sign(&bob_user, 1, &[bob.device_keys()], 1_763_900_000)?;

    // Bob publishes prekeys; the relay would hand Alice one bundle, consuming one-time keys.
    let one_time = bob.generate_one_time_prekeys(&mut OsRng, 10)?;
    let kem = bob.generate_kem_prekeys(&mut OsRng, 10)?;
    let bundle_bytes = bob.prekey_bundle(Some(one_time[0].id), Some(kem[0].id))?.to_bytes();

    // Alice checks the device list and the bundle's signatures, then opens a PQXDH session.
    let list = SignedDeviceList::from_bytes(&bob_list.to_bytes())?;
    let bundle = PrekeyBundle::from_bytes(&bundle_bytes)?;
    list.device(&bundle.device.device_key())?;
    let mut alice_to_bob = SessionRecord::new();
    alice_to_bob.initiate(&mut OsRng, alice.identity(), &bundle, cfg)?;

    let mut bob_from_alice = SessionRecord::new();
    let lines = [("alice", "hi Bob, this session is post-quantum"), ("bob", "hi Alice!"), ("alice", "ratchet turn")];
    for (who, text) in lines {
        let (sender, receiver, receiver_account) = match who {
            "alice" => (&mut alice_to_bob, &mut bob_from_alice, &mut bob),
            _ => (&mut bob_from_alice, &mut alice_to_bob, &mut alice),
        };
        let wire = sender.encrypt(&mut OsRng, text.as_bytes())?;
        let plaintext = receiver.decrypt(&mut OsRng, receiver_account, &wire, cfg)?;
        println!("{who:>5}: {} ({} bytes on the wire)", String::from_utf8_lossy(&plaintext), wire.len());
    }
    println!("post-quantum: {}", alice_to_bob.is_post_quantum());

    let safety = SafetyNumber::new(&alice_user.user_key(), &bob_user.user_key());
    println!("safety number: {}", safety.display());
    Ok(())
}
