//! Authentication and hostile input: every bad frame gets its typed error, and the relay keeps
//! serving everyone else.

mod common;

use common::*;
use hush_core::DeviceIdentity;
use hush_core::wire::relay::{
    ClientFrame, ErrorCode, FetchBundle, GetPrekeyCounts, client_frame::Body as Req, server_frame::Body as Resp,
};
use prost::Message as _;
use rand_core::OsRng;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_ok_then_requests_work() {
    let relay = TestRelay::start().await;
    let device = DeviceIdentity::generate(&mut OsRng);
    let mut c = relay.login(&device).await;
    assert_eq!(c.challenge.nonce.len(), 32);
    assert_eq!(c.challenge.origin, "http://relay.test");
    assert!(c.challenge.server_time.abs_diff(now()) < 3600);
    match c.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await {
        Resp::PrekeyCounts(p) => assert_eq!((p.one_time, p.kem_one_time), (0, 0)),
        other => panic!("{other:?}"),
    }
    // A second auth on the same socket is refused, and the socket stays usable.
    let again = c.auth_response(&device);
    c.expect_error(Req::Auth(again), ErrorCode::Forbidden).await;
    assert!(matches!(c.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await, Resp::PrekeyCounts(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_auth_is_refused_and_closes() {
    let relay = TestRelay::start().await;
    let device = DeviceIdentity::generate(&mut OsRng);
    let other = DeviceIdentity::generate(&mut OsRng);

    // Signed by another key than the one claimed.
    let mut c = relay.connect().await;
    let mut r = c.auth_response(&other);
    r.device_key = device.device_key().to_bytes().to_vec();
    c.expect_error(Req::Auth(r), ErrorCode::BadSignature).await;
    assert!(c.recv().await.is_none(), "a failed auth closes the socket");

    // Stale time (signed correctly, 10 minutes old).
    let mut c = relay.connect().await;
    let stale = hush_relay::auth::answer(&device, &c.challenge, now() - 600);
    c.expect_error(Req::Auth(stale), ErrorCode::Unauthenticated).await;
    assert!(c.recv().await.is_none());

    // Future time beyond the skew.
    let mut c = relay.connect().await;
    let future = hush_relay::auth::answer(&device, &c.challenge, now() + 600);
    c.expect_error(Req::Auth(future), ErrorCode::Unauthenticated).await;

    // A response to one socket's challenge replayed on another socket.
    let mut first = relay.connect().await;
    let captured = first.auth_response(&device);
    first.ok(Req::Auth(captured.clone())).await;
    let mut second = relay.connect().await;
    second.expect_error(Req::Auth(captured), ErrorCode::BadSignature).await;
    assert!(second.recv().await.is_none());

    // Wrong origin in the signed message.
    let mut c = relay.connect().await;
    let mut challenge = c.challenge.clone();
    challenge.origin = "http://evil.test".into();
    let wrong = hush_relay::auth::answer(&device, &challenge, now());
    c.expect_error(Req::Auth(wrong), ErrorCode::BadSignature).await;

    // The relay still serves: the first socket works, a new one authenticates.
    assert!(matches!(first.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await, Resp::PrekeyCounts(_)));
    relay.login(&other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_secret_gates_new_devices_only() {
    let relay = TestRelay::start_with(|c| {
        c.registration_secret = Some(hush_relay::config::RegistrationSecret("s3cret".into()))
    })
    .await;
    let mut device = Device::new();
    // Without the secret: refused.
    let mut c = relay.connect().await;
    let r = c.auth_response(device.identity());
    c.expect_error(Req::Auth(r), ErrorCode::Forbidden).await;
    // With it: accepted; publishing prekeys registers the device.
    let mut c = relay.connect().await;
    let mut r = c.auth_response(device.identity());
    r.registration_secret = "s3cret".into();
    c.ok(Req::Auth(r)).await;
    let prekeys = device.prekeys(1);
    c.ok(prekeys).await;
    // Known devices need no secret.
    relay.login(device.identity()).await;
}

/// One row of the bad-input table: what to send, what must come back.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    authenticate_first: bool,
    expect: ErrorCode,
}

/// The protocol version this relay speaks.
const V: u32 = hush_core::limits::RELAY_PROTOCOL_VERSION;

fn frame(version: u32, request_id: u64, body: Option<Req>) -> Vec<u8> {
    ClientFrame { version, request_id, body }.encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_table() {
    let relay = TestRelay::start_with(|c| c.max_frame_bytes = 4096).await;
    let device = DeviceIdentity::generate(&mut OsRng);
    let counts = Some(Req::GetPrekeyCounts(GetPrekeyCounts {}));
    let good = frame(V, 5, counts.clone());
    let mut padded = good.clone();
    // Same frame with the version as a two-byte (non-minimal) varint: not canonical.
    padded.splice(0..2, [0x08, 0x80 | V as u8, 0x00]);
    let mut unknown_field = good.clone();
    unknown_field.extend_from_slice(&[0xf8, 0x07, 0x01]);
    let oversized = frame(V, 6, Some(Req::FetchBundle(FetchBundle { device_key: vec![7; 5000] })));
    let cases = vec![
        Case {
            name: "garbage",
            bytes: vec![0xff, 0xff, 0xff, 0xff],
            authenticate_first: false,
            expect: ErrorCode::Malformed,
        },
        Case {
            name: "empty frame (version 0)",
            bytes: vec![],
            authenticate_first: true,
            expect: ErrorCode::UnsupportedVersion,
        },
        Case {
            name: "truncated",
            bytes: good[..good.len() - 1].to_vec(),
            authenticate_first: true,
            expect: ErrorCode::Malformed,
        },
        Case { name: "non-canonical varint", bytes: padded, authenticate_first: true, expect: ErrorCode::Malformed },
        Case { name: "unknown field", bytes: unknown_field, authenticate_first: true, expect: ErrorCode::Malformed },
        Case { name: "oversized", bytes: oversized, authenticate_first: true, expect: ErrorCode::TooLarge },
        Case {
            name: "unknown version",
            bytes: frame(V + 1, 7, counts.clone()),
            authenticate_first: true,
            expect: ErrorCode::UnsupportedVersion,
        },
        Case {
            // A client of the protocol before group logs: told clearly, never half-served.
            name: "previous version",
            bytes: frame(V - 1, 13, counts.clone()),
            authenticate_first: true,
            expect: ErrorCode::UnsupportedVersion,
        },
        Case { name: "no body", bytes: frame(V, 8, None), authenticate_first: true, expect: ErrorCode::Malformed },
        Case {
            name: "unauthenticated op",
            bytes: frame(V, 9, counts.clone()),
            authenticate_first: false,
            expect: ErrorCode::Unauthenticated,
        },
        Case {
            name: "unauthenticated fetch",
            bytes: frame(V, 10, Some(Req::FetchBundle(FetchBundle { device_key: vec![1; 32] }))),
            authenticate_first: false,
            expect: ErrorCode::Unauthenticated,
        },
        Case {
            name: "bad device key length",
            bytes: frame(V, 11, Some(Req::FetchBundle(FetchBundle { device_key: vec![1; 31] }))),
            authenticate_first: true,
            expect: ErrorCode::Malformed,
        },
        Case {
            name: "fetch unknown device",
            bytes: frame(V, 12, Some(Req::FetchBundle(FetchBundle { device_key: vec![1; 32] }))),
            authenticate_first: true,
            expect: ErrorCode::NotFound,
        },
    ];
    // A bystander stays connected through all of it.
    let bystander_id = DeviceIdentity::generate(&mut OsRng);
    let mut bystander = relay.login(&bystander_id).await;
    for case in cases {
        let mut c = relay.connect().await;
        if case.authenticate_first {
            c.auth(&device).await;
        }
        c.send_raw(case.bytes).await;
        let answer = c.recv().await.unwrap_or_else(|| panic!("{}: socket closed without an error frame", case.name));
        let body = answer.body.unwrap_or_else(|| panic!("{}: empty answer", case.name));
        match &body {
            Resp::Error(e) => assert_eq!(e.code(), case.expect, "{}: {}", case.name, e.detail),
            other => panic!("{}: expected {:?}, got {other:?}", case.name, case.expect),
        }
        // The same socket still answers a good request afterwards.
        let expect_counts = case.authenticate_first;
        let resp = c.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await;
        if expect_counts {
            assert!(matches!(resp, Resp::PrekeyCounts(_)), "{}: socket unusable after the error: {resp:?}", case.name);
        } else {
            assert_error(&resp, ErrorCode::Unauthenticated);
        }
    }
    // Text frames are refused too.
    let mut c = relay.connect().await;
    c.send_text("hello").await;
    match c.recv().await.and_then(|f| f.body) {
        Some(Resp::Error(e)) => assert_eq!(e.code(), ErrorCode::Malformed),
        other => panic!("{other:?}"),
    }
    // Far beyond the cap: the WebSocket layer drops that socket, nothing else.
    let mut c = relay.connect().await;
    c.send_raw(vec![0u8; 64 * 1024]).await;
    while c.recv().await.is_some() {}
    assert!(matches!(bystander.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await, Resp::PrekeyCounts(_)));
    relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_per_device() {
    // Five frames of burst and practically no refill: the sixth frame must be refused.
    let relay = TestRelay::start_with(|c| {
        c.rate_device = 0.001;
        c.rate_device_burst = 5.0;
    })
    .await;
    let device = DeviceIdentity::generate(&mut OsRng);
    let mut c = relay.login(&device).await;
    for _ in 0..5 {
        assert!(matches!(c.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await, Resp::PrekeyCounts(_)));
    }
    c.expect_error(Req::GetPrekeyCounts(GetPrekeyCounts {}), ErrorCode::RateLimited).await;
    // Another device has its own bucket.
    let mut other = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    assert!(matches!(other.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await, Resp::PrekeyCounts(_)));
    assert!(relay.handle().render_metrics().contains("rate_limited"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_refusal_says_when_to_retry_and_a_retry_then_is_taken() {
    // 10 frames a second, burst 2: the third request right away waits at most 100 ms.
    let relay = TestRelay::start_with(|c| {
        c.rate_device = 10.0;
        c.rate_device_burst = 2.0;
    })
    .await;
    let mut c = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    let refused = loop {
        match c.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await {
            Resp::PrekeyCounts(_) => continue,
            Resp::Error(e) => break e,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(refused.code(), ErrorCode::RateLimited);
    assert!((1..=100).contains(&refused.retry_after_ms), "retry after {} ms", refused.retry_after_ms);
    assert!(refused.detail.contains("retry after"), "{}", refused.detail);
    tokio::time::sleep(std::time::Duration::from_millis(refused.retry_after_ms)).await;
    assert!(matches!(c.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await, Resp::PrekeyCounts(_)));
    // Other refusals say nothing about retrying (after the bucket refilled).
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    match c.request(Req::FetchDeviceList(hush_core::wire::relay::FetchDeviceList { user_key: vec![1; 31] })).await {
        Resp::Error(e) => assert_eq!((e.code(), e.retry_after_ms), (ErrorCode::Malformed, 0)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_per_ip() {
    let relay = TestRelay::start_with(|c| {
        c.rate_ip = 0.001;
        c.rate_ip_burst = 4.0;
    })
    .await;
    // Upgrade (1) + auth (2) + one request (3) + one more (4), then refused.
    let device = DeviceIdentity::generate(&mut OsRng);
    let mut c = relay.login(&device).await;
    assert!(matches!(c.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await, Resp::PrekeyCounts(_)));
    assert!(matches!(c.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await, Resp::PrekeyCounts(_)));
    c.expect_error(Req::GetPrekeyCounts(GetPrekeyCounts {}), ErrorCode::RateLimited).await;
}

/// Sends `n` requests pipelined (in chunks, reading the answers between them); how many were
/// refused for the rate.
async fn rate_limited_of(c: &mut Client, n: usize) -> usize {
    let mut refused = 0;
    for chunk in 0..n.div_ceil(500) {
        let mut ids = Vec::new();
        for _ in 0..500.min(n - chunk * 500) {
            let (id, frame) = c.frame(Req::GetPrekeyCounts(GetPrekeyCounts {}));
            c.send_raw(frame.encode_to_vec()).await;
            ids.push(id);
        }
        for id in ids {
            match c.answer(id).await {
                Resp::PrekeyCounts(_) => {}
                Resp::Error(e) if e.code() == ErrorCode::RateLimited => refused += 1,
                other => panic!("{other:?}"),
            }
        }
    }
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_limits_take_a_large_group_send_at_once_and_stop_a_flood() {
    // The first message to a 1,000-member group is about 4,500 frames at once (relay/README.md):
    // none refused. A device that keeps sending as fast as it can is refused once its burst is spent.
    let relay = TestRelay::start().await;
    let mut c = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    assert_eq!(rate_limited_of(&mut c, 5_000).await, 0);
    let refused = rate_limited_of(&mut c, 20_000).await;
    assert!(refused > 5_000, "a flood of 25,000 frames had only {refused} refused");
}
