//! Removing a device (docs/PROTOCOL.md §12.9, §16.7): the relay cuts it off, a contact that hears
//! from the user once fetches the newer list before reading on and stops encrypting to it, and the
//! removed device, shown the list, wipes its store; forged or old lists and bad arguments change
//! nothing.

use super::tests::{direct, linked_trio, texts};
use super::*;

const T1: u64 = 1_700_000_100_000;

/// The devices `viewer` pins for `user`.
fn pinned_devices(viewer: &mut Client, user: &SigningPublicKey) -> Vec<SigningPublicKey> {
    let tx = viewer.store_mut().transaction().unwrap();
    let peer = tx.peer(user).unwrap().unwrap();
    peer.device_list().devices().iter().map(|d| d.device_key()).collect()
}

#[test]
fn a_removed_device_is_cut_off_and_a_contact_stops_encrypting_to_it_after_one_message() {
    let (mut relay, mut alice, mut bob, mut laptop) = linked_trio();
    let user = alice.user_key().unwrap();
    let laptop_key = laptop.device_key();
    // Bob learns of the laptop from Alice's next message, which names the list that lists it.
    alice.send_text(&direct(&bob), "new laptop", T1).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut laptop], T1);
    assert_eq!(pinned_devices(&mut bob, &user).len(), 2);
    relay.disconnect(&mut laptop); // lost: it is somewhere else now

    alice.remove_device(&laptop_key, T1).unwrap();
    assert_eq!(alice.devices().unwrap().iter().map(|d| d.device_key()).collect::<Vec<_>>(), [alice.device_key()]);
    relay.pump(&mut [&mut alice, &mut bob], T1);
    assert!(relay.is_revoked(&laptop_key.to_bytes()));

    // Bob still pins the old list until he hears from Alice; her next message names the newer
    // version, so he fetches it before reading it, and from then on encrypts to her phone only.
    assert_eq!(pinned_devices(&mut bob, &user).len(), 2);
    alice.send_text(&direct(&bob), "the laptop is gone", T1 + 1).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T1 + 1);
    assert_eq!(texts(&events[1]), ["the laptop is gone"]);
    assert_eq!(pinned_devices(&mut bob, &user), [alice.device_key()]);
    bob.send_text(&direct(&alice), "noted", T1 + 2).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T1 + 2);
    assert_eq!(texts(&events[0]), ["noted"]);
    assert!(
        !events[1]
            .iter()
            .any(|e| matches!(e, Event::MessageStatus { status: crate::store::MessageStatus::Failed, .. })),
        "{events:?}"
    );

    // The laptop tries to log in: the relay answers with the list that removed it, and it wipes.
    let events = relay.login(&mut laptop, T1 + 3);
    assert_eq!(events, [Event::DeviceRemoved { user }]);
    assert!(!laptop.is_linked());
    assert!(laptop.take_outgoing().is_empty());
    assert!(laptop.conversations().unwrap().is_empty() && laptop.contacts().unwrap().is_empty());
    let tx = laptop.store_mut().transaction().unwrap();
    assert!(tx.account().unwrap().is_none() && tx.user().unwrap().is_none() && tx.peers().unwrap().is_empty());
}

#[test]
fn a_relay_serving_the_old_list_does_not_make_a_contact_read_on() {
    let (mut relay, mut alice, mut bob, laptop) = linked_trio();
    let user = alice.user_key().unwrap();
    let old = alice.own_device_list().unwrap();
    alice.remove_device(&laptop.device_key(), T1).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], T1);
    relay.serve_device_list(&old);
    alice.send_text(&direct(&bob), "after the removal", T1 + 1).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T1 + 1);
    assert!(texts(&events[1]).is_empty(), "read before the newer list: {events:?}");
    assert_eq!(pinned_devices(&mut bob, &user).len(), 2);
    // Asked once for that version on this connection, not again and again.
    let again = relay.pump(&mut [&mut alice, &mut bob], T1 + 2);
    assert!(again.iter().all(Vec::is_empty));

    // The relay serves the current list again: after a reconnect Bob reads on.
    relay.serve_device_list(&alice.own_device_list().unwrap());
    relay.disconnect(&mut bob);
    relay.connect(&mut bob, T1 + 3);
    let events = relay.pump(&mut [&mut alice, &mut bob], T1 + 3);
    assert_eq!(texts(&events[1]), ["after the removal"]);
    assert_eq!(pinned_devices(&mut bob, &user), [alice.device_key()]);
}

#[test]
fn only_a_newer_list_signed_by_the_user_key_makes_a_device_wipe() {
    let (_relay, mut alice, _bob, mut laptop) = linked_trio();
    let phone =
        alice.own_device_list().unwrap().devices().iter().find(|d| d.device_key() == alice.device_key()).copied();
    let phone = [phone.unwrap()];
    let mut rng = crate::test_util::rng(9);
    let mallory = crate::identity::UserIdentity::generate(&mut rng);
    let user = alice.user_identity.clone().unwrap();
    let forged = SignedDeviceList::sign(&mallory, 99, &phone, 0).unwrap();
    let old = SignedDeviceList::sign(&user, 2, &phone, 0).unwrap(); // not above the pinned version 2
    for list in [forged, old] {
        let mut events = Vec::new();
        laptop.on_list_without_this_device(&list.to_bytes(), &mut events).unwrap();
        assert!(events.is_empty());
        assert!(laptop.is_linked());
        assert_eq!(laptop.contacts().unwrap().len(), 1);
    }
    let mut events = Vec::new();
    laptop.on_list_without_this_device(b"garbage", &mut events).unwrap();
    assert!(events.is_empty() && laptop.is_linked());
}

#[test]
fn removing_this_device_or_an_unlisted_one_changes_nothing() {
    let (_relay, mut alice, bob, _laptop) = linked_trio();
    let before = alice.own_device_list().unwrap();
    assert_eq!(
        alice.remove_device(&alice.device_key(), T1),
        Err(Error::Malformed { what: "device to remove: this device" })
    );
    assert_eq!(alice.remove_device(&bob.device_key(), T1), Err(Error::UnknownDevice));
    assert_eq!(alice.own_device_list().unwrap(), before);
    assert!(alice.take_outgoing().is_empty());
}

/// A list claiming `user` and naming `devices`, signed by `signer` (not `user`'s key): what a thief
/// holding `signer` could make.
fn forged_list(
    user: &SigningPublicKey,
    signer: &crate::identity::UserIdentity,
    devices: &[crate::crypto::DeviceKeys],
) -> Vec<u8> {
    use crate::wire::proto;
    use prost::Message as _;
    let real = SignedDeviceList::sign(signer, 99, devices, 0).unwrap();
    let mut signed = proto::SignedDeviceList::decode(real.to_bytes().as_slice()).unwrap();
    let mut inner = proto::DeviceList::decode(signed.device_list.as_slice()).unwrap();
    inner.user_key = user.to_bytes().to_vec();
    signed.device_list = inner.encode_to_vec();
    signed.signature = signer.signing.sign(b"hush/device-list/v1", &signed.device_list).to_vec();
    signed.encode_to_vec()
}

#[test]
fn a_stolen_linked_device_cannot_sign_a_device_list_that_peers_accept() {
    let (mut relay, mut alice, mut bob, mut laptop) = linked_trio();
    let user = alice.user_key().unwrap();
    alice.send_text(&direct(&bob), "laptop linked", T1).unwrap();
    relay.pump(&mut [&mut alice, &mut bob, &mut laptop], T1);
    assert_eq!(pinned_devices(&mut bob, &user).len(), 2);

    // The thief copies the laptop's store: it holds no user key, only the laptop's own secrets.
    assert!(alice.is_primary() && !laptop.is_primary());
    let tx = laptop.store_mut().transaction().unwrap();
    assert!(tx.user().unwrap().is_none(), "the approval handed out the user key");
    let account = tx.account().unwrap().unwrap();
    tx.commit().unwrap();

    // Through the API the laptop can neither add, remove nor sign anything as the user.
    let thief_device = crate::identity::DeviceIdentity::generate(&mut crate::test_util::rng(5)).keys();
    assert_eq!(laptop.remove_device(&alice.device_key(), T1), Err(Error::NotPrimary));
    assert_eq!(laptop.create_group("g", &[bob.user_key().unwrap()], T1).map(|_| ()), Err(Error::NotPrimary));
    assert!(laptop.take_outgoing().is_empty(), "nothing queued");

    // The best it can do: sign a list naming a device of the thief's with the laptop's device key
    // and have the relay serve it as Alice's, then write to Bob naming that list's version.
    let signer = crate::identity::UserIdentity::from_secret_bytes(&account.identity().signing.secret_bytes());
    let devices = [alice.own_device_list().unwrap().devices(), &[thief_device][..]].concat();
    let forged = forged_list(&user, &signer, &devices);
    assert_eq!(SignedDeviceList::from_bytes(&forged), Err(Error::BadSignature { what: "device list" }));
    relay.serve_device_list_bytes(&user, forged);
    laptop.own_list_version = 99;
    laptop.send_text(&direct(&bob), "trust my new device", T1 + 1).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob, &mut laptop], T1 + 1);
    assert!(texts(&events[1]).is_empty(), "read on without the list it names: {events:?}");
    assert_eq!(pinned_devices(&mut bob, &user), devices[..2].iter().map(|d| d.device_key()).collect::<Vec<_>>());
    // A list signed by the laptop under its own key is another user's: pending, never pinned.
    let own_key = SignedDeviceList::sign(&signer, 99, &devices, 0).unwrap();
    let tx = bob.store_mut().transaction().unwrap();
    let mut peer = tx.peer(&user).unwrap().unwrap();
    assert!(peer.update_device_list(own_key).is_ok());
    assert_eq!(peer.device_list().user_key(), user);
    assert_eq!(peer.device_list().devices().len(), 2);
}

/// `test-vectors/store/linked_v3/`: a phone and a laptop linked by the code from before §12.10
/// (commit a24c9d0), when every linked device got the user key. Opened with the current code, the
/// laptop deletes its copy and is a linked device; the phone, first on the list, stays primary.
#[test]
fn a_device_linked_before_the_primary_rule_deletes_its_copy_of_the_user_key() {
    use crate::store::{Store, Unlock};
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors/store/linked_v3");
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| {
        for suffix in ["", "-anchor"] {
            let file = format!("{name}.sqlite{suffix}");
            std::fs::copy(fixture.join(&file), dir.path().join(&file)).unwrap();
        }
        let store = Store::open(dir.path().join(format!("{name}.sqlite")), Unlock::Key([0x61; 32].into())).unwrap();
        Client::open(store, ClientConfig::new("ws://relay.test/v1/ws", name)).unwrap()
    };
    let held = |c: &mut Client| {
        let tx = c.store_mut().transaction().unwrap();
        let user = tx.user().unwrap().map(|u| u.user_key());
        tx.commit().unwrap();
        user
    };
    let mut phone = open("phone");
    let mut laptop = open("laptop");
    let user = phone.user_key().unwrap();
    assert_eq!(laptop.user_key().unwrap(), user);
    assert!(phone.is_primary() && !laptop.is_primary());
    assert_eq!(held(&mut phone), Some(user));
    assert_eq!(held(&mut laptop), None, "the laptop's copy is deleted at its first open");
    assert_eq!(laptop.remove_device(&phone.device_key(), T1), Err(Error::NotPrimary));
    assert_eq!(laptop.devices().unwrap().len(), 2);
    phone.remove_device(&laptop.device_key(), T1).unwrap();
}
