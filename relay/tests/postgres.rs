//! Several relay processes on one Postgres database (phase 2): a device connected to instance A
//! receives in real time what was sent through instance B, presence and online-only messages cross
//! instances (and are never stored), and one-time prekeys are handed out at most once across
//! instances. Skipped (passes with a note) unless `HUSH_RELAY_TEST_POSTGRES` names
//! a server; `.ci/run` starts a throw-away one.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use hush_core::wire::relay::{
    FetchBundle, Outgoing, Send, ServerFrame, SubscribePresence, client_frame::Body as Req, server_frame::Body as Resp,
};
use hush_core::{DeviceIdentity, PrekeyBundle};
use rand_core::OsRng;

/// Two relays sharing a fresh schema; the first owns (and drops) it.
async fn two_instances() -> Option<(TestRelay, TestRelay)> {
    let Some(url) = postgres_url() else {
        eprintln!("HUSH_RELAY_TEST_POSTGRES is not set: skipping the multi-instance Postgres test");
        return None;
    };
    let schema = fresh_schema();
    let a = instance(&url, &schema, true).await;
    let b = instance(&url, &schema, false).await;
    Some((a, b))
}

/// A relay on `schema`, dropping it at the end when `owner`.
async fn instance(url: &str, schema: &str, owner: bool) -> TestRelay {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.database_url = Some(url.to_owned());
    config.postgres_schema = schema.to_owned();
    TestRelay::start_config(config, dir, owner.then(|| schema.to_owned())).await
}

fn presence(f: ServerFrame) -> (Vec<u8>, bool) {
    match f.body {
        Some(Resp::Presence(p)) => (p.device_key, p.online),
        other => panic!("expected presence, got {other:?}"),
    }
}

fn typing(to: &[u8], payload: &[u8]) -> Req {
    Req::Send(Send {
        messages: vec![Outgoing { recipient_device: to.to_vec(), payload: payload.to_vec(), online_only: true }],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_on_instance_a_receives_what_was_sent_through_b() {
    let Some((a, b)) = two_instances().await else { return };
    let mut bob = Device::new();
    let mut bob_on_a = bob.register(&a, 1).await;
    let mut alice_on_b = b.login(&DeviceIdentity::generate(&mut OsRng)).await;
    for i in 0..3u8 {
        let ids = message_ids(alice_on_b.request(send_to(&bob.key(), &[i; 20])).await);
        // Live: Bob's socket on A is woken by B's NOTIFY.
        let env = bob_on_a.next_envelope().await;
        assert_eq!((env.id, env.payload), (ids[0], vec![i; 20]));
        bob_on_a.ok(ack(vec![env.id])).await;
    }
    assert_eq!(a.queue_depth().await, 0);
    assert_eq!(b.queue_depth().await, 0);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_prekeys_are_handed_out_once_across_instances() {
    let Some((a, b)) = two_instances().await else { return };
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut bob = Device::new();
    let _c = bob.register(&a, 10).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let relay = if i % 2 == 0 { a.clone() } else { b.clone() };
        let target = bob.key();
        tasks.push(tokio::spawn(async move {
            let mut c = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
            match c.request(Req::FetchBundle(FetchBundle { device_key: target })).await {
                Resp::Bundle(bundle) => PrekeyBundle::from_bytes(&bundle.bundle).unwrap(),
                other => panic!("{other:?}"),
            }
        }));
    }
    let mut one_time = Vec::new();
    let mut kem = Vec::new();
    for t in tasks {
        let bundle = t.await.unwrap();
        one_time.extend(bundle.one_time_prekey.map(|k| k.id));
        kem.extend(bundle.kem_prekey.filter(|k| !k.last_resort).map(|k| k.id));
    }
    assert_eq!(one_time.len(), 10);
    assert_eq!(one_time.iter().collect::<HashSet<_>>().len(), 10);
    assert_eq!(kem.len(), 10);
    assert_eq!(kem.iter().collect::<HashSet<_>>().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_online_only_messages_cross_instances() {
    let Some((a, b)) = two_instances().await else { return };
    let alice = DeviceIdentity::generate(&mut OsRng);
    let mut bob = Device::new();
    // Registered through A, so that A already knows he left when Alice subscribes.
    bob.register(&a, 1).await.close().await;
    let mut alice_on_a = a.login(&alice).await;
    alice_on_a.ok(Req::SubscribePresence(SubscribePresence { device_keys: vec![bob.key()] })).await;
    assert_eq!(presence(alice_on_a.next_push().await), (bob.key(), false));

    // Bob connects to B: Alice, on A, sees him come online.
    let mut bob_on_b = b.login(bob.identity()).await;
    assert_eq!(presence(alice_on_a.next_push().await), (bob.key(), true));

    // Typing through A reaches Bob on B, and typing through B reaches Alice on A; nothing is stored.
    assert_eq!(message_ids(alice_on_a.request(typing(&bob.key(), b"alice types")).await), vec![0]);
    let env = bob_on_b.next_envelope().await;
    assert_eq!(
        (env.id, env.payload.as_slice(), env.sender_device.as_slice()),
        (0, &b"alice types"[..], &alice.device_key().to_bytes()[..])
    );
    let alice_key = alice.device_key().to_bytes().to_vec();
    assert_eq!(message_ids(bob_on_b.request(typing(&alice_key, b"bob types")).await), vec![0]);
    let env = alice_on_a.next_envelope().await;
    assert_eq!((env.id, env.payload.as_slice(), env.sender_device), (0, &b"bob types"[..], bob.key()));
    assert_eq!(a.queue_depth().await, 0);
    assert_eq!(b.queue_depth().await, 0);

    // An instance started later learns who is online elsewhere (its Hello is answered).
    let schema = a.config.postgres_schema.clone();
    let c = instance(&postgres_url().unwrap(), &schema, false).await;
    let mut carol_on_c = c.login(&DeviceIdentity::generate(&mut OsRng)).await;
    carol_on_c.ok(Req::SubscribePresence(SubscribePresence { device_keys: vec![bob.key()] })).await;
    let mut seen = presence(carol_on_c.next_push().await);
    if seen == (bob.key(), false) {
        // Subscribed before B's answer arrived: the answer then flips it.
        seen = presence(carol_on_c.next_push().await);
    }
    assert_eq!(seen, (bob.key(), true));

    // Bob leaves B: watchers on A and C see him go offline.
    bob_on_b.close().await;
    assert_eq!(presence(alice_on_a.next_push().await), (bob.key(), false));
    assert_eq!(presence(carol_on_c.next_push().await), (bob.key(), false));
    drop(c);
    drop(b);
}
