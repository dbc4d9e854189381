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
    let user = alice.user.clone().unwrap();
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
