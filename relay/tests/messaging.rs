//! Messaging through a real relay: hush-core sessions end to end, offline queues, acks, quotas,
//! sealed sends, presence, online-only frames, push wake-ups, device lists, prekey bundles.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use hush_core::sealed_sender::{self, InnerKind};
use hush_core::wire::relay::{
    ErrorCode, FetchBundle, FetchDeviceList, GetPrekeyCounts, Outgoing, PublishDeviceList, PublishPrekeys,
    RegisterPush, SealedSend, Send, SetDeliveryToken, SubscribePresence, client_frame::Body as Req,
    server_frame::Body as Resp,
};
use hush_core::{DeliveryToken, DeviceIdentity, PrekeyBundle, SessionConfig, SessionRecord, SignedDeviceList};
use rand_core::OsRng;

async fn fetch_bundle(c: &mut Client, device: &[u8]) -> PrekeyBundle {
    match c.request(Req::FetchBundle(FetchBundle { device_key: device.to_vec() })).await {
        Resp::Bundle(b) => PrekeyBundle::from_bytes(&b.bundle).expect("bundle verifies"),
        other => panic!("expected a bundle, got {other:?}"),
    }
}

async fn counts(c: &mut Client) -> (u32, u32) {
    match c.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await {
        Resp::PrekeyCounts(p) => (p.one_time, p.kem_one_time),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_converse_end_to_end() {
    let relay = TestRelay::start().await;
    let mut alice = Device::new();
    let mut bob = Device::new();
    let mut a = alice.register(&relay, 3).await;
    let mut b = bob.register(&relay, 3).await;

    // Alice looks Bob up: his signed device list, then a bundle for his device.
    let list = match a
        .request(Req::FetchDeviceList(FetchDeviceList { user_key: bob.user.user_key().to_bytes().to_vec() }))
        .await
    {
        Resp::DeviceList(l) => SignedDeviceList::from_bytes(&l.signed_device_list).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(list.device(&bob.account.device_key()).is_ok());
    let bundle = fetch_bundle(&mut a, &bob.key()).await;
    assert!(bundle.one_time_prekey.is_some() && bundle.kem_prekey.as_ref().is_some_and(|k| !k.last_resort));
    assert_eq!(counts(&mut b).await, (2, 2));

    let mut a_to_b = SessionRecord::new();
    a_to_b.initiate(&mut OsRng, alice.identity(), &bundle, SessionConfig::default()).unwrap();
    let wire = a_to_b.encrypt(&mut OsRng, b"hello Bob, via the relay").unwrap();
    let ids = message_ids(a.request(send_to(&bob.key(), &wire)).await);
    assert_eq!(ids.len(), 1);
    assert!(ids[0] > 0);

    let env = b.next_envelope().await;
    assert_eq!(env.id, ids[0]);
    assert_eq!(env.sender_device, alice.key());
    assert!(!env.sealed);
    assert!(env.received_at > 0);
    let mut b_from_a = SessionRecord::new();
    let plain = b_from_a.decrypt(&mut OsRng, &mut bob.account, &env.payload, SessionConfig::default()).unwrap();
    assert_eq!(plain, b"hello Bob, via the relay");
    assert_eq!(relay.queue_depth().await, 1);
    b.ok(ack(vec![env.id])).await;
    assert_eq!(relay.queue_depth().await, 0, "an ack deletes");

    // And back.
    let reply = b_from_a.encrypt(&mut OsRng, b"hi Alice").unwrap();
    message_ids(b.request(send_to(&alice.key(), &reply)).await);
    let env = a.next_envelope().await;
    assert_eq!(env.sender_device, bob.key());
    assert_eq!(
        a_to_b.decrypt(&mut OsRng, &mut alice.account, &env.payload, SessionConfig::default()).unwrap(),
        b"hi Alice"
    );
    a.ok(ack(vec![env.id])).await;
    assert_eq!(relay.queue_depth().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_queue_is_delivered_on_connect_until_acked() {
    let mut relay = TestRelay::start().await;
    let mut bob = Device::new();
    bob.register(&relay, 1).await.close().await;
    let sender = DeviceIdentity::generate(&mut OsRng);
    let mut a = relay.login(&sender).await;
    let mut sent = Vec::new();
    for i in 0..5u8 {
        sent.extend(message_ids(a.request(send_to(&bob.key(), &[i; 10])).await));
    }
    assert_eq!(relay.queue_depth().await, 5);

    // On connect, in order.
    let mut b = relay.login(bob.identity()).await;
    for (i, id) in sent.iter().enumerate() {
        let env = b.next_envelope().await;
        assert_eq!(env.id, *id);
        assert_eq!(env.payload, vec![i as u8; 10]);
    }
    b.close().await;

    // Not acked: delivered again after a reconnect, and after a relay restart (durable).
    relay.restart().await;
    let mut b = relay.login(bob.identity()).await;
    let again: Vec<u64> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(b.next_envelope().await.id);
        }
        v
    };
    assert_eq!(again, sent);
    b.ok(ack(sent.clone())).await;
    assert_eq!(relay.queue_depth().await, 0);
    // Acking unknown or foreign ids is harmless.
    b.ok(ack(vec![999_999])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_fetches_hand_out_each_one_time_prekey_once() {
    let relay = Arc::new(TestRelay::start().await);
    let mut bob = Device::new();
    let mut b = bob.register(&relay, 10).await;
    assert_eq!(counts(&mut b).await, (10, 10));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let relay = relay.clone();
        let target = bob.key();
        tasks.push(tokio::spawn(async move {
            let mut c = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
            fetch_bundle(&mut c, &target).await
        }));
    }
    let mut one_time = Vec::new();
    let mut kem_one_time = Vec::new();
    let mut last_resort = 0;
    for t in tasks {
        let bundle = t.await.unwrap();
        if let Some(k) = bundle.one_time_prekey {
            one_time.push(k.id);
        }
        match bundle.kem_prekey {
            Some(k) if k.last_resort => last_resort += 1,
            Some(k) => kem_one_time.push(k.id),
            None => panic!("a bundle without any ML-KEM prekey"),
        }
    }
    let unique: HashSet<_> = one_time.iter().collect();
    assert_eq!(unique.len(), one_time.len(), "a one-time prekey was handed out twice");
    assert_eq!(one_time.len(), 10);
    let unique: HashSet<_> = kem_one_time.iter().collect();
    assert_eq!(unique.len(), kem_one_time.len(), "a one-time ML-KEM prekey was handed out twice");
    assert_eq!(kem_one_time.len(), 10);
    assert_eq!(last_resort, 40);
    assert_eq!(counts(&mut b).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_lists_only_move_forward() {
    let relay = TestRelay::start().await;
    let mut alice = Device::new();
    let mut c = alice.register(&relay, 1).await;
    let publish = |bytes: Vec<u8>| Req::PublishDeviceList(PublishDeviceList { signed_device_list: bytes });
    let v1 = alice.device_list(1).to_bytes();
    c.ok(publish(v1.clone())).await; // the same list again is fine
    let v3 = alice.device_list(3).to_bytes();
    c.ok(publish(v3.clone())).await;
    c.expect_error(publish(v1), ErrorCode::Rollback).await;
    // Same version, other content.
    let other_v3 = SignedDeviceList::sign(&alice.user, 3, &[alice.account.device_keys()], now() + 1).unwrap();
    c.expect_error(publish(other_v3.to_bytes()), ErrorCode::Rollback).await;
    // A list that does not name the publishing device.
    let stranger = DeviceIdentity::generate(&mut OsRng);
    let foreign = SignedDeviceList::sign(&alice.user, 9, &[stranger.keys()], now()).unwrap();
    c.expect_error(publish(foreign.to_bytes()), ErrorCode::Forbidden).await;
    // A tampered signature.
    let mut tampered = alice.device_list(10).to_bytes();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    c.expect_error(publish(tampered), ErrorCode::BadSignature).await;
    c.expect_error(publish(vec![1, 2, 3]), ErrorCode::Malformed).await;

    let fetch = |key: Vec<u8>| Req::FetchDeviceList(FetchDeviceList { user_key: key });
    match c.request(fetch(alice.user.user_key().to_bytes().to_vec())).await {
        Resp::DeviceList(l) => assert_eq!(l.signed_device_list, v3),
        other => panic!("{other:?}"),
    }
    c.expect_error(fetch(vec![5; 32]), ErrorCode::NotFound).await;
    c.expect_error(fetch(vec![5; 3]), ErrorCode::Malformed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prekey_uploads_are_verified() {
    let relay = TestRelay::start().await;
    let mut alice = Device::new();
    let mut c = relay.login(alice.identity()).await;
    let Req::PublishPrekeys(full) = alice.prekeys(2) else { unreachable!() };

    // The first upload must carry the device keys.
    c.expect_error(Req::PublishPrekeys(PublishPrekeys { device: None, ..full.clone() }), ErrorCode::NotFound).await;
    // Another device's keys.
    let other = DeviceIdentity::generate(&mut OsRng);
    c.expect_error(
        Req::PublishPrekeys(PublishPrekeys { device: Some(other.keys().to_proto()), ..full.clone() }),
        ErrorCode::Forbidden,
    )
    .await;
    // A signed prekey with a broken signature.
    let mut bad = full.clone();
    if let Some(sp) = bad.signed_prekey.as_mut() {
        sp.signature[0] ^= 1;
    }
    c.expect_error(Req::PublishPrekeys(bad), ErrorCode::BadSignature).await;
    // A one-time KEM key in the last-resort slot (signed as one-time).
    let mut swapped = full.clone();
    swapped.last_resort_kem_prekey = swapped.kem_prekeys.first().cloned();
    c.expect_error(Req::PublishPrekeys(swapped), ErrorCode::Malformed).await;
    // Nothing of the refused uploads was stored.
    assert_eq!(counts(&mut c).await, (0, 0));

    c.ok(Req::PublishPrekeys(full)).await;
    assert_eq!(counts(&mut c).await, (2, 2));
    // Later uploads may omit the device keys.
    let more = alice.account.generate_one_time_prekeys(&mut OsRng, 3).unwrap();
    c.ok(Req::PublishPrekeys(PublishPrekeys {
        one_time_prekeys: more.iter().map(|k| k.to_proto()).collect(),
        ..Default::default()
    }))
    .await;
    assert_eq!(counts(&mut c).await, (5, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_quota_is_enforced_per_recipient() {
    let relay = TestRelay::start_with(|c| c.mailbox_quota = 3).await;
    let mut bob = Device::new();
    let mut carol = Device::new();
    bob.register(&relay, 1).await.close().await;
    carol.register(&relay, 1).await.close().await;
    let mut a = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    for _ in 0..3 {
        message_ids(a.request(send_to(&bob.key(), b"x")).await);
    }
    // Refused with when to try again (the client re-encrypts then, with backoff).
    match a.request(send_to(&bob.key(), b"x")).await {
        Resp::Error(e) => assert_eq!(
            (e.code(), e.retry_after_ms),
            (ErrorCode::QuotaExceeded, hush_relay::limits::QUOTA_RETRY_AFTER_MS)
        ),
        other => panic!("expected QUOTA_EXCEEDED, got {other:?}"),
    }
    // A multi-recipient send with one full mailbox stores nothing.
    let both = Req::Send(Send {
        messages: vec![
            Outgoing { recipient_device: carol.key(), payload: b"c".to_vec(), online_only: false },
            Outgoing { recipient_device: bob.key(), payload: b"b".to_vec(), online_only: false },
        ],
    });
    let resp = a.request(both.clone()).await;
    assert_error(&resp, ErrorCode::QuotaExceeded);
    if let Resp::Error(e) = resp {
        assert!(e.detail.contains("#1"), "{}", e.detail);
    }
    assert_eq!(relay.queue_depth().await, 3);
    // Unknown recipients are refused.
    a.expect_error(send_to(&[9; 32], b"x"), ErrorCode::NotFound).await;
    a.expect_error(send_to(&[9; 31], b"x"), ErrorCode::Malformed).await;
    a.expect_error(send_to(&bob.key(), b""), ErrorCode::Malformed).await;

    // Bob drains his mailbox; then the multi-recipient send goes through.
    let mut b = relay.login(bob.identity()).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(b.next_envelope().await.id);
    }
    b.ok(ack(ids)).await;
    assert_eq!(message_ids(a.request(both).await).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_send_needs_the_right_delivery_token() {
    let relay = TestRelay::start().await;
    let alice = Device::new();
    let mut bob = Device::new();
    let mut b = bob.register(&relay, 1).await;
    let token = DeliveryToken::generate(&mut OsRng);
    let sealed = |token: Vec<u8>, envelope: Vec<u8>, online_only: bool| {
        Req::SealedSend(SealedSend { recipient_device: bob.key(), delivery_token: token, envelope, online_only })
    };
    let envelope = sealed_sender::seal(
        &mut OsRng,
        &alice.user.user_key(),
        &sealed_sender::SenderState::new(1, None),
        alice.identity(),
        &bob.account.device_keys(),
        InnerKind::Session,
        b"inner session message",
    )
    .unwrap();

    // Unauthenticated socket: no auth at all.
    let mut anon = relay.connect().await;
    // Before Bob set a token: refused.
    anon.expect_error(sealed(token.to_bytes().to_vec(), envelope.clone(), false), ErrorCode::Forbidden).await;
    b.ok(Req::SetDeliveryToken(SetDeliveryToken { token_hash: token.hash().to_vec() })).await;
    // Wrong token, malformed token.
    let wrong = DeliveryToken::generate(&mut OsRng);
    anon.expect_error(sealed(wrong.to_bytes().to_vec(), envelope.clone(), false), ErrorCode::Forbidden).await;
    anon.expect_error(sealed(vec![1; 5], envelope.clone(), false), ErrorCode::Malformed).await;
    // An envelope whose size is not a size class (§9.4) is refused, whatever the token: the relay
    // only ever holds and forwards the five sizes.
    let mut odd = envelope.clone();
    odd.push(0);
    anon.expect_error(sealed(token.to_bytes().to_vec(), odd, false), ErrorCode::Malformed).await;
    anon.expect_error(sealed(token.to_bytes().to_vec(), envelope[..1000].to_vec(), false), ErrorCode::Malformed).await;
    b.expect_error(Req::SetDeliveryToken(SetDeliveryToken { token_hash: vec![1; 5] }), ErrorCode::Malformed).await;
    // Right token.
    let ids = message_ids(anon.request(sealed(token.to_bytes().to_vec(), envelope.clone(), false)).await);
    let env = b.next_envelope().await;
    assert_eq!(env.id, ids[0]);
    assert!(env.sealed);
    assert!(env.sender_device.is_empty(), "the relay names no sender for sealed sends");
    let opened = sealed_sender::open(bob.identity(), &env.payload).unwrap();
    assert_eq!(opened.sender_device, alice.account.device_keys());
    assert_eq!(opened.inner, b"inner session message");
    b.ok(ack(vec![env.id])).await;
    // Online-only sealed: delivered live, never stored.
    assert_eq!(message_ids(anon.request(sealed(token.to_bytes().to_vec(), envelope.clone(), true)).await), vec![0]);
    let env = b.next_envelope().await;
    assert_eq!((env.id, env.sealed), (0, true));
    assert_eq!(relay.queue_depth().await, 0);
    // Clearing the token stops sealed sends.
    b.ok(Req::SetDeliveryToken(SetDeliveryToken { token_hash: vec![] })).await;
    anon.expect_error(sealed(token.to_bytes().to_vec(), envelope.clone(), false), ErrorCode::Forbidden).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_online_only_delivery() {
    let relay = TestRelay::start().await;
    let mut bob = Device::new();
    bob.register(&relay, 1).await.close().await;
    let alice = DeviceIdentity::generate(&mut OsRng);
    let mut a = relay.login(&alice).await;
    a.ok(Req::SubscribePresence(SubscribePresence { device_keys: vec![bob.key()] })).await;
    let presence = |f: hush_core::wire::relay::ServerFrame| match f.body {
        Some(Resp::Presence(p)) => (p.device_key, p.online),
        other => panic!("expected presence, got {other:?}"),
    };
    // Bob's close may not have reached the relay yet when Alice subscribes: then the first answer
    // says online and the next push, on his disconnect, says offline.
    let mut first = presence(a.next_push().await);
    if first == (bob.key(), true) {
        first = presence(a.next_push().await);
    }
    assert_eq!(first, (bob.key(), false));

    let typing = |online_only| {
        Req::Send(Send {
            messages: vec![Outgoing { recipient_device: bob.key(), payload: b"typing".to_vec(), online_only }],
        })
    };
    // Offline: accepted, dropped, never stored.
    assert_eq!(message_ids(a.request(typing(true)).await), vec![0]);
    assert_eq!(relay.queue_depth().await, 0);

    let mut b = relay.login(bob.identity()).await;
    assert_eq!(presence(a.next_push().await), (bob.key(), true));
    assert_eq!(message_ids(a.request(typing(true)).await), vec![0]);
    let env = b.next_envelope().await;
    assert_eq!(
        (env.id, env.payload.as_slice(), env.sender_device),
        (0, &b"typing"[..], alice.device_key().to_bytes().to_vec())
    );
    assert_eq!(relay.queue_depth().await, 0);

    b.close().await;
    assert_eq!(presence(a.next_push().await), (bob.key(), false));
    a.expect_error(Req::SubscribePresence(SubscribePresence { device_keys: vec![vec![1; 3]] }), ErrorCode::Malformed)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_device_gets_a_content_free_push() {
    use axum::routing::post;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<u8>)>();
    let app = axum::Router::new().route(
        "/up/{id}",
        post(move |axum::extract::Path(id): axum::extract::Path<String>, body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((id, body.to_vec()));
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let push_addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let relay = TestRelay::start().await;
    let mut bob = Device::new();
    let mut b = bob.register(&relay, 1).await;
    let register = |endpoint: String| Req::RegisterPush(RegisterPush { endpoint });
    b.expect_error(register("ftp://push.example/up/x".into()), ErrorCode::Malformed).await;
    b.expect_error(register("not a url".into()), ErrorCode::Malformed).await;
    b.ok(register(format!("http://{push_addr}/up/bob-1"))).await;
    // Online: no push (the socket is woken instead).
    let mut a = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    message_ids(a.request(send_to(&bob.key(), b"while online")).await);
    let env = b.next_envelope().await;
    b.ok(ack(vec![env.id])).await;
    b.close().await;

    message_ids(a.request(send_to(&bob.key(), b"secret ciphertext")).await);
    let (id, body) = tokio::time::timeout(TIMEOUT, rx.recv()).await.expect("no push within the timeout").unwrap();
    assert_eq!(id, "bob-1");
    assert!(body.is_empty(), "the wake-up carries no content");
    assert!(rx.try_recv().is_err(), "one push for one message while offline");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_closes_sockets_and_keeps_acknowledged_messages() {
    let mut relay = TestRelay::start().await;
    let mut bob = Device::new();
    bob.register(&relay, 1).await.close().await;
    let mut a = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    let ids = message_ids(a.request(send_to(&bob.key(), b"durable")).await);
    relay.stop().await;
    // The relay said goodbye to the open socket.
    assert!(a.recv().await.is_none());
    relay.restart().await;
    let mut b = relay.login(bob.identity()).await;
    let env = b.next_envelope().await;
    assert_eq!((env.id, env.payload.as_slice()), (ids[0], &b"durable"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_queue_flows_through_the_delivery_window_as_acks_come() {
    let relay = TestRelay::start().await;
    let mut bob = Device::new();
    bob.register(&relay, 1).await.close().await;
    let mut a = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    // 600 messages, more than twice the 256 a socket may have unacked, in one multi-message send.
    let messages = (0..600u32)
        .map(|i| Outgoing { recipient_device: bob.key(), payload: i.to_be_bytes().to_vec(), online_only: false })
        .collect();
    let ids = message_ids(a.request(Req::Send(Send { messages })).await);
    assert_eq!(ids.len(), 600);
    let mut b = relay.login(bob.identity()).await;
    let mut received = Vec::new();
    let mut unacked = Vec::new();
    while received.len() < 600 {
        let env = b.next_envelope().await;
        received.push(env.id);
        unacked.push(env.id);
        if unacked.len() == 100 {
            b.ok(ack(std::mem::take(&mut unacked))).await;
        }
    }
    assert_eq!(received, ids, "every message once, in order");
    b.ok(ack(unacked)).await;
    assert_eq!(relay.queue_depth().await, 0);
}
