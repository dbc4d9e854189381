//! Privacy: after a conversation carrying a plaintext canary, and sealed sends from a device that
//! never registered here, neither the relay's files nor its logs (captured at TRACE level) hold the
//! canary, the sealed sender's keys, or the delivery token.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use hush_core::sealed_sender::{self, InnerKind};
use hush_core::wire::relay::{
    FetchBundle, SealedSend, SetDeliveryToken, client_frame::Body as Req, server_frame::Body as Resp,
};
use hush_core::{DeliveryToken, PrekeyBundle, SessionConfig, SessionRecord};
use rand_core::OsRng;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

async fn bundle(c: &mut Client, device: &[u8]) -> PrekeyBundle {
    match c.request(Req::FetchBundle(FetchBundle { device_key: device.to_vec() })).await {
        Resp::Bundle(b) => PrekeyBundle::from_bytes(&b.bundle).unwrap(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_sender_or_token_in_files_or_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let mut relay = TestRelay::start().await;
    let canary = b"CANARY-7f3a9c-the-plaintext-the-relay-must-never-see";

    // A normal conversation.
    let mut alice = Device::new();
    let mut bob = Device::new();
    let mut a = alice.register(&relay, 2).await;
    let mut b = bob.register(&relay, 2).await;
    let mut a_to_b = SessionRecord::new();
    a_to_b.initiate(&mut OsRng, alice.identity(), &bundle(&mut a, &bob.key()).await, SessionConfig::default()).unwrap();
    let mut b_from_a = SessionRecord::new();
    for _ in 0..3 {
        let wire = a_to_b.encrypt(&mut OsRng, canary).unwrap();
        message_ids(a.request(send_to(&bob.key(), &wire)).await);
        let env = b.next_envelope().await;
        assert_eq!(
            b_from_a.decrypt(&mut OsRng, &mut bob.account, &env.payload, SessionConfig::default()).unwrap(),
            canary
        );
        b.ok(ack(vec![env.id])).await;
    }
    // One more left queued, so the ciphertext sits in the database when we look.
    let wire = a_to_b.encrypt(&mut OsRng, canary).unwrap();
    message_ids(a.request(send_to(&bob.key(), &wire)).await);

    // Sealed sends from Carol, who only authenticates to fetch a bundle and never registers.
    let carol = Device::new();
    let token = DeliveryToken::generate(&mut OsRng);
    b.ok(Req::SetDeliveryToken(SetDeliveryToken { token_hash: token.hash().to_vec() })).await;
    let mut c = relay.login(carol.identity()).await;
    let mut c_to_b = SessionRecord::new();
    c_to_b.initiate(&mut OsRng, carol.identity(), &bundle(&mut c, &bob.key()).await, SessionConfig::default()).unwrap();
    c.close().await;
    let mut anon = relay.connect().await;
    for online_only in [false, true, false] {
        let inner = c_to_b.encrypt(&mut OsRng, canary).unwrap();
        let envelope = sealed_sender::seal(
            &mut OsRng,
            &carol.user.user_key(),
            &sealed_sender::SenderState::new(1, None),
            carol.identity(),
            &bob.account.device_keys(),
            InnerKind::Session,
            &inner,
        )
        .unwrap();
        let ids = message_ids(
            anon.request(Req::SealedSend(SealedSend {
                recipient_device: bob.key(),
                delivery_token: token.to_bytes().to_vec(),
                envelope,
                online_only,
            }))
            .await,
        );
        // Skip the queued message from Alice (it stays unacked).
        let env = loop {
            let env = b.next_envelope().await;
            if env.sealed {
                break env;
            }
        };
        assert!(env.sender_device.is_empty());
        let opened = sealed_sender::open(bob.identity(), &env.payload).unwrap();
        assert_eq!(opened.sender_device, carol.account.device_keys());
        if !online_only {
            assert_eq!(env.id, ids[0]);
        }
    }
    relay.stop().await;

    let carol_key = carol.account.device_key().to_bytes();
    let carol_identity = carol.account.device_keys().identity_key().to_bytes();
    let carol_user = carol.user.user_key().to_bytes();
    let token_bytes = token.to_bytes();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("canary", canary.to_vec()),
        ("sealed sender device key", carol_key.to_vec()),
        ("sealed sender device key (hex)", hex::encode(carol_key).into_bytes()),
        ("sealed sender identity key", carol_identity.to_vec()),
        ("sealed sender user key", carol_user.to_vec()),
        ("delivery token", token_bytes.to_vec()),
        ("delivery token (hex)", hex::encode(token_bytes.as_slice()).into_bytes()),
    ];

    // Everything stored: the database (its WAL and shared memory too), blobs; on Postgres the rows.
    let all = relay.stored_bytes().await;
    // Sanity: the search works on this data (Bob's device key is his mailbox address).
    let bob_key = bob.account.device_key().to_bytes();
    assert!(contains(&all, &bob_key) || contains(&all, hex::encode(bob_key).as_bytes()));
    for (what, secret) in &secrets {
        assert!(!contains(&all, secret), "the relay's storage contains the {what}");
        assert!(!contains(&all, hex::encode(secret).as_bytes()), "the relay's storage contains the {what} (hex)");
    }

    let logs = logs.0.lock().unwrap().clone();
    assert!(contains(&logs, b"device authenticated"), "logs were not captured");
    for (what, secret) in &secrets {
        assert!(!contains(&logs, secret), "the relay's logs contain the {what}");
    }
    for key in [alice.account.device_key().to_bytes(), bob.account.device_key().to_bytes()] {
        assert!(!contains(&logs, &hex::encode(key).into_bytes()), "a whole device key was logged");
        assert!(!contains(&logs, &key), "a raw device key was logged");
    }
}
