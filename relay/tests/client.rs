//! The client transport: connects, authenticates, delivers envelopes, reconnects with backoff after
//! the relay restarts and resumes delivery of everything not acked.

mod common;

use std::time::Duration;

use common::*;
use hush_core::DeviceIdentity;
use hush_core::wire::relay::{
    GetPrekeyCounts, SubscribePresence, client_frame::Body as Req, server_frame::Body as Resp,
};
use hush_net::client::{ClientConfig, ClientEvent, RelayClient};
use rand_core::OsRng;

async fn event(c: &mut RelayClient) -> ClientEvent {
    tokio::time::timeout(TIMEOUT, c.next_event()).await.expect("no event within the timeout").expect("client stopped")
}

async fn envelope(c: &mut RelayClient) -> hush_core::wire::relay::Envelope {
    loop {
        if let ClientEvent::Envelope(e) = event(c).await {
            return e;
        }
    }
}

fn config(relay: &TestRelay) -> ClientConfig {
    let mut config = ClientConfig::new(format!("ws://{}/v1/ws", relay.addr));
    config.min_backoff = Duration::from_millis(50);
    config.max_backoff = Duration::from_millis(500);
    config.request_timeout = TIMEOUT;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_and_resumes_after_a_relay_restart() {
    let mut relay = TestRelay::start().await;
    let mut bob = Device::new();
    bob.register(&relay, 1).await.close().await;
    let mut a = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    let first = message_ids(a.request(send_to(&bob.key(), b"one")).await)[0];

    let mut client = RelayClient::spawn(config(&relay), bob.identity().clone());
    assert_eq!(event(&mut client).await, ClientEvent::Connected);
    let env = envelope(&mut client).await;
    assert_eq!((env.id, env.payload.as_slice()), (first, &b"one"[..]));
    let watched = DeviceIdentity::generate(&mut OsRng).device_key().to_bytes().to_vec();
    assert!(matches!(
        client.request(Req::SubscribePresence(SubscribePresence { device_keys: vec![watched.clone()] })).await,
        Ok(Resp::Ok(_))
    ));

    // The relay restarts; the unacked message comes again, then new mail.
    relay.restart_same_port().await;
    let mut seen_disconnect = false;
    let mut seen_presence = false;
    let again = loop {
        match event(&mut client).await {
            ClientEvent::Disconnected => seen_disconnect = true,
            ClientEvent::Presence(p) => seen_presence |= p.device_key == watched && !p.online,
            ClientEvent::Envelope(e) => break e,
            ClientEvent::Connected
            | ClientEvent::AuthRefused(_)
            | ClientEvent::Removed(_)
            | ClientEvent::Unreachable { .. } => {}
        }
    };
    assert!(seen_disconnect);
    assert_eq!(again.id, first);
    let mut a = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    let second = message_ids(a.request(send_to(&bob.key(), b"two")).await)[0];
    // The re-subscribed presence may answer while this envelope is on its way: note it, not skip it.
    let env = loop {
        match event(&mut client).await {
            ClientEvent::Presence(p) => seen_presence |= p.device_key == watched,
            ClientEvent::Envelope(e) => break e,
            ClientEvent::Connected
            | ClientEvent::Disconnected
            | ClientEvent::AuthRefused(_)
            | ClientEvent::Removed(_)
            | ClientEvent::Unreachable { .. } => {}
        }
    };
    assert_eq!((env.id, env.payload.as_slice()), (second, &b"two"[..]));
    assert!(matches!(client.ack(vec![first, second]).await, Ok(Resp::Ok(_))));
    assert!(matches!(client.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await, Ok(Resp::PrekeyCounts(_))));
    assert_eq!(relay.queue_depth().await, 0);
    // Presence was re-subscribed after the reconnect (its first answer may precede the envelope).
    if !seen_presence {
        loop {
            if let ClientEvent::Presence(p) = event(&mut client).await {
                assert_eq!(p.device_key, watched);
                break;
            }
        }
    }
    client.close().await;
}

/// The next `Unreachable` event: its reason and delay.
async fn unreachable(c: &mut RelayClient) -> (String, Duration) {
    match event(c).await {
        ClientEvent::Unreachable { reason, retry_in } => (reason, retry_in),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_relay_is_reported_with_the_reason_and_the_next_attempt() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config = ClientConfig::new(format!("ws://127.0.0.1:{port}/v1/ws"));
    config.min_backoff = Duration::from_millis(40);
    config.max_backoff = Duration::from_millis(100);
    let mut client = RelayClient::spawn(config, DeviceIdentity::generate(&mut OsRng));
    let (reason, first) = unreachable(&mut client).await;
    assert!(reason.starts_with("cannot connect"), "{reason}");
    assert!((40..=60).contains(&first.as_millis()), "{first:?}: the backoff plus at most half of it");
    let (_, second) = unreachable(&mut client).await;
    assert!((80..=120).contains(&second.as_millis()), "{second:?}: doubled");
    let (_, third) = unreachable(&mut client).await;
    assert!((100..=150).contains(&third.as_millis()), "{third:?}: capped at max_backoff");
    client.close().await;

    // A server that is not a hush relay (an HTTP path of the relay that is no WebSocket).
    let relay = TestRelay::start().await;
    let not_a_relay = ClientConfig::new(relay.url("/healthz").replace("http", "ws"));
    let mut client = RelayClient::spawn(not_a_relay, DeviceIdentity::generate(&mut OsRng));
    let (reason, _) = unreachable(&mut client).await;
    assert!(reason.starts_with("cannot connect"), "{reason}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_auth_stops_the_client() {
    let relay =
        TestRelay::start_with(|c| c.registration_secret = Some(hush_relay::config::RegistrationSecret("s".into())))
            .await;
    let mut client = RelayClient::spawn(config(&relay), DeviceIdentity::generate(&mut OsRng));
    assert!(matches!(event(&mut client).await, ClientEvent::AuthRefused(_)));
    assert_eq!(tokio::time::timeout(TIMEOUT, client.next_event()).await.unwrap(), None);
    assert_eq!(
        client.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await,
        Err(hush_net::client::ClientError::Stopped)
    );
}
