//! Multi-device: fan-out to every listed device and the sender's own other devices, ghost devices,
//! rollback, identity changes and verification, and device linking.

use hush_core::link::{self, LinkRequest};
use hush_core::{
    Account, Error, PeerEvent, PeerUser, SafetyNumber, SessionConfig, SignedDeviceList, SigningPublicKey, UserIdentity,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const CFG: SessionConfig = SessionConfig { allow_classical: false };

struct User {
    identity: UserIdentity,
    devices: Vec<Account>,
    list: SignedDeviceList,
}

fn user(rng: &mut ChaCha20Rng, devices: usize) -> User {
    let identity = UserIdentity::generate(rng);
    let devices: Vec<_> = (0..devices).map(|_| Account::new(rng)).collect();
    let keys: Vec<_> = devices.iter().map(Account::device_keys).collect();
    let list = SignedDeviceList::sign(&identity, 1, &keys, 0).unwrap();
    User { identity, devices, list }
}

/// A `PeerUser` for `of`, as seen from device `from`, with sessions to every listed device but `skip`.
fn peer(rng: &mut ChaCha20Rng, from: &Account, of: &User, skip: Option<SigningPublicKey>) -> PeerUser {
    let mut p = PeerUser::new(of.list.clone());
    for d in of.devices.iter().filter(|d| Some(d.device_key()) != skip) {
        p.add_session(rng, from.identity(), &d.prekey_bundle(None, None).unwrap(), CFG).unwrap();
    }
    p
}

#[test]
fn fan_out_reaches_every_device_and_own_devices() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut alice = user(&mut rng, 2);
    let mut bob = user(&mut rng, 3);
    let a0 = alice.devices[0].clone();
    let a0_key = a0.device_key();
    let mut bob_at_a0 = peer(&mut rng, &a0, &bob, None);
    let mut own_at_a0 = peer(&mut rng, &a0, &alice, Some(a0_key));
    assert_eq!(own_at_a0.devices_without_session(Some(&a0_key)), vec![]);

    let to_bob = bob_at_a0.encrypt(&mut rng, b"hi Bob", None).unwrap();
    let to_own = own_at_a0.encrypt(&mut rng, b"hi Bob", Some(&a0_key)).unwrap();
    assert_eq!((to_bob.len(), to_own.len()), (3, 1));

    for (i, m) in to_bob.iter().enumerate() {
        assert_eq!(m.device, bob.devices[i].device_key());
        let mut alice_at_bob = PeerUser::new(alice.list.clone());
        let pt = alice_at_bob.decrypt(&mut rng, &mut bob.devices[i], &a0_key, &m.message, CFG).unwrap();
        assert_eq!(pt, b"hi Bob");
    }
    let mut own_at_a1 = PeerUser::new(alice.list.clone());
    let pt = own_at_a1.decrypt(&mut rng, &mut alice.devices[1], &a0_key, &to_own[0].message, CFG).unwrap();
    assert_eq!(pt, b"hi Bob");
}

#[test]
fn unlisted_devices_are_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let alice = user(&mut rng, 1);
    let mut bob = user(&mut rng, 1);
    let ghost = Account::new(&mut rng);
    // A bundle for a device not on Bob's list (the relay adding a ghost) is refused.
    let mut bob_at_alice = PeerUser::new(bob.list.clone());
    let err =
        bob_at_alice.add_session(&mut rng, alice.devices[0].identity(), &ghost.prekey_bundle(None, None).unwrap(), CFG);
    assert_eq!(err, Err(Error::UnknownDevice));
    // A message from a device not on Alice's list is refused, and nothing is consumed.
    let mut ghost_peer = PeerUser::new(alice.list.clone());
    let mut rec = hush_core::SessionRecord::new();
    rec.initiate(&mut rng, ghost.identity(), &bob.devices[0].prekey_bundle(None, None).unwrap(), CFG).unwrap();
    let m = rec.encrypt(&mut rng, b"boo").unwrap();
    let before = bob.devices[0].to_bytes();
    let err = ghost_peer.decrypt(&mut rng, &mut bob.devices[0], &ghost.device_key(), &m, CFG);
    assert_eq!(err, Err(Error::UnknownDevice));
    // A ghost claiming to be Alice's listed device: the prekey message's keys don't match.
    let err = ghost_peer.decrypt(&mut rng, &mut bob.devices[0], &alice.devices[0].device_key(), &m, CFG);
    assert_eq!(err, Err(Error::PeerMismatch));
    assert_eq!(*bob.devices[0].to_bytes(), *before);
}

#[test]
fn ghost_device_lists_and_rollback_rejected() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let bob = user(&mut rng, 2);
    let mut p = PeerUser::new(bob.list.clone());
    // Signed by someone else's key: that is an identity change, not a silent update.
    let mallory = UserIdentity::generate(&mut rng);
    let keys: Vec<_> = bob.devices.iter().map(Account::device_keys).collect();
    let forged = SignedDeviceList::sign(&mallory, 9, &keys, 0).unwrap();
    assert!(matches!(p.update_device_list(forged).unwrap(), Some(PeerEvent::IdentityChanged { .. })));
    assert_eq!(p.user_key(), bob.identity.user_key());
    // Bytes of Bob's list with an extra device fail to parse at all (signature covers them).
    let mut bytes = bob.list.to_bytes();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    assert!(SignedDeviceList::from_bytes(&bytes).is_err());
    // Rollback.
    let v2 = SignedDeviceList::sign(&bob.identity, 2, &keys[..1], 0).unwrap();
    let mut p = PeerUser::new(bob.list.clone());
    let ev = p.update_device_list(v2.clone()).unwrap();
    assert_eq!(ev, Some(PeerEvent::DevicesChanged { added: vec![], removed: vec![keys[1].device_key()] }));
    assert_eq!(p.update_device_list(bob.list.clone()), Err(Error::DeviceListRollback { pinned: 2, received: 1 }));
    assert_eq!(p.update_device_list(v2).unwrap(), None);
}

#[test]
fn identity_change_blocks_sending_until_accepted_or_verified() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let alice = user(&mut rng, 1);
    let bob = user(&mut rng, 1);
    let a0 = &alice.devices[0];
    let mut p = peer(&mut rng, a0, &bob, None);
    p.encrypt(&mut rng, b"ok", None).unwrap();
    // Bob reinstalls: new user key, new device.
    let bob2 = user(&mut rng, 1);
    let ev = p.update_device_list(bob2.list.clone()).unwrap();
    assert_eq!(
        ev,
        Some(PeerEvent::IdentityChanged { previous: bob.identity.user_key(), new: bob2.identity.user_key() })
    );
    assert_eq!(p.encrypt(&mut rng, b"blocked", None), Err(Error::IdentityChangePending));
    // A wrong safety number (of the old key) does not unblock.
    let old_qr = SafetyNumber::new(&bob.identity.user_key(), &alice.identity.user_key()).qr_payload();
    assert!(!p.verify(&alice.identity.user_key(), &old_qr).unwrap());
    assert_eq!(p.encrypt(&mut rng, b"blocked", None), Err(Error::IdentityChangePending));
    // Scanning Bob's new safety number accepts the change and marks him verified.
    let new_qr = SafetyNumber::new(&bob2.identity.user_key(), &alice.identity.user_key()).qr_payload();
    assert!(p.verify(&alice.identity.user_key(), &new_qr).unwrap());
    assert!(p.is_verified());
    assert_eq!(p.user_key(), bob2.identity.user_key());
    // Sessions were with the old identity's devices: they must be set up again.
    assert_eq!(p.encrypt(&mut rng, b"x", None), Err(Error::NoSession));
    p.add_session(&mut rng, a0.identity(), &bob2.devices[0].prekey_bundle(None, None).unwrap(), CFG).unwrap();
    assert_eq!(p.encrypt(&mut rng, b"x", None).unwrap().len(), 1);
    // An accepted change without verification clears the mark.
    let bob3 = user(&mut rng, 1);
    p.update_device_list(bob3.list.clone()).unwrap();
    p.accept_identity_change().unwrap();
    assert!(!p.is_verified());
}

#[test]
fn device_linking() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let alice = user(&mut rng, 1);
    let mut new_device = Account::new(&mut rng);
    let request = LinkRequest::new(&mut rng, &new_device).unwrap();
    let scanned = LinkRequest::from_bytes(&request.to_bytes()).unwrap();
    assert!(request.to_bytes().len() < 2_900, "fits a QR code");

    let out =
        link::approve(&mut rng, &alice.identity, alice.devices[0].identity(), &alice.list, &scanned, b"contacts", 7)
            .unwrap();
    assert_eq!(out.device_list.list_version(), 2);
    assert_eq!(out.device_list.devices().len(), 2);

    // Someone who saw only the new device's bundle (not the QR code) cannot link it to their account.
    let mallory = user(&mut rng, 1);
    let fake_request = LinkRequest::from_bytes(&LinkRequest::new(&mut rng, &new_device).unwrap().to_bytes()).unwrap();
    let forged =
        link::approve(&mut rng, &mallory.identity, mallory.devices[0].identity(), &mallory.list, &fake_request, b"", 7)
            .unwrap();
    let before = new_device.to_bytes();
    assert!(link::complete(&mut rng, &mut new_device, &request, &forged.message).is_err());
    assert_eq!(*new_device.to_bytes(), *before);

    let linked = link::complete(&mut rng, &mut new_device, &request, &out.message).unwrap();
    assert_eq!(linked.user_key, alice.identity.user_key());
    assert_eq!(linked.contacts, b"contacts");
    assert_eq!(linked.device_list, out.device_list);
    // The new list supersedes the old one for peers.
    out.device_list.check_supersedes(Some(&alice.list)).unwrap();
    // The session works both ways.
    let (mut approver_session, mut new_session) = (out.session, linked.session);
    let m = new_session.encrypt(&mut rng, b"linked!").unwrap();
    let mut approver = alice.devices[0].clone();
    assert_eq!(approver_session.decrypt(&mut rng, &mut approver, &m, CFG).unwrap(), b"linked!");
    // Linking the same device twice is refused.
    assert_eq!(
        link::approve(&mut rng, &alice.identity, alice.devices[0].identity(), &out.device_list, &scanned, b"", 8)
            .unwrap_err(),
        Error::DuplicateDevice
    );
}
