//! The client runs the prekey schedule (docs/PROTOCOL.md §5.5, §16.9): it dates a new account's
//! prekeys, rotates them at `tick` and publishes the new ones; a relay that keeps handing out the
//! old bundle reaches the device inside the grace period and not after it.

use super::test_relay::TestRelay;
use super::tests::{new_client, texts};
use super::*;
use crate::limits::{OLD_PREKEY_GRACE_MS, PREKEY_ROTATION_MS};
use crate::store::ConversationId;

const T0: u64 = 1_700_000_000_000;
const DAY: u64 = 24 * 60 * 60 * 1000;

/// A new user who adds `bob` from his contact link and writes to him at `now`; Bob's events.
fn newcomer_writes(relay: &mut TestRelay, bob: &mut Client, name: &str, now: u64) -> Vec<Event> {
    let mut peer = new_client(name);
    relay.connect(&mut peer, now);
    peer.add_contact(&bob.contact_link().unwrap(), now).unwrap();
    peer.send_text(&ConversationId::Direct(bob.user_key().unwrap()), name, now).unwrap();
    relay.pump(&mut [bob, &mut peer], now).swap_remove(0)
}

#[test]
fn prekeys_rotate_at_tick_and_a_stale_bundle_reaches_the_device_inside_the_grace_only() {
    let mut relay = TestRelay::default();
    let mut bob = new_client("Bob");
    let device = bob.device_key().to_bytes().to_vec();
    relay.connect(&mut bob, T0);
    relay.pump(&mut [&mut bob], T0);
    let first = relay.published_prekeys(&device);
    assert!(first.0.is_some() && first.1.is_some());

    bob.tick(T0 + DAY).unwrap();
    relay.pump(&mut [&mut bob], T0 + DAY);
    assert_eq!(relay.published_prekeys(&device), first, "not due after a day");
    let rotated_at = T0 + PREKEY_ROTATION_MS;
    bob.tick(rotated_at).unwrap();
    relay.pump(&mut [&mut bob], rotated_at);
    let second = relay.published_prekeys(&device);
    assert_ne!(second.0, first.0, "a new signed prekey is published");
    assert_ne!(second.1, first.1, "and a new last-resort ML-KEM prekey");

    // The relay goes on handing out the first bundle: a newcomer still gets through in the grace.
    relay.serve_prekeys(&device, first.clone());
    let inside = rotated_at + OLD_PREKEY_GRACE_MS - DAY;
    let mut now = rotated_at;
    while now < inside {
        now += DAY;
        bob.tick(now).unwrap();
        relay.pump(&mut [&mut bob], now);
        relay.serve_prekeys(&device, first.clone());
    }
    assert_eq!(texts(&newcomer_writes(&mut relay, &mut bob, "Carol", inside)), ["Carol"]);

    // Past it the old keys are gone: the stale bundle's first message does not open.
    let past = rotated_at + OLD_PREKEY_GRACE_MS;
    bob.tick(past).unwrap();
    relay.pump(&mut [&mut bob], past);
    relay.serve_prekeys(&device, first);
    let events = newcomer_writes(&mut relay, &mut bob, "Dave", past);
    assert!(texts(&events).is_empty(), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::Undecryptable { .. })), "{events:?}");
    // The relay serving the current bundle again: newcomers get through.
    bob.on_disconnected();
    relay.connect(&mut bob, past);
    relay.pump(&mut [&mut bob], past);
    assert_eq!(texts(&newcomer_writes(&mut relay, &mut bob, "Erin", past)), ["Erin"]);
}
