//! The HTTP side: blobs up and down with upload tokens, size caps, health and metrics.

mod common;

use common::*;
use hush_core::DeviceIdentity;
use hush_core::wire::relay::{RequestUploadToken, client_frame::Body as Req, server_frame::Body as Resp};
use rand_core::OsRng;

async fn upload_token(c: &mut Client) -> String {
    match c.request(Req::RequestUploadToken(RequestUploadToken {})).await {
        Resp::UploadToken(t) => {
            assert!(t.expires_at > now());
            t.token
        }
        other => panic!("{other:?}"),
    }
}

fn blob_id(body: &[u8]) -> String {
    let text = String::from_utf8(body.to_vec()).unwrap();
    let start = text.find("\"id\":\"").unwrap() + 6;
    text[start..start + 64].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_up_and_down() {
    let relay = TestRelay::start_with(|c| c.max_blob_bytes = 100_000).await;
    let mut c = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    let blob: Vec<u8> = (0..80_000u32).map(|i| (i % 251) as u8).collect();

    let token = upload_token(&mut c).await;
    let auth = format!("Bearer {token}");
    let (status, body) = http("PUT", &relay.url("/v1/blobs"), &[("authorization", &auth)], blob.clone()).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let id = blob_id(&body);
    assert_eq!(hex::decode(&id).unwrap().len(), 32);

    let (status, down) = http("GET", &relay.url(&format!("/v1/blobs/{id}")), &[], vec![]).await;
    assert_eq!(status, 200);
    assert_eq!(down, blob);

    // A token is good for one upload.
    let (status, _) = http("PUT", &relay.url("/v1/blobs"), &[("authorization", &auth)], vec![1, 2, 3]).await;
    assert_eq!(status, 401);
    // No token, a made-up token, a malformed header.
    assert_eq!(http("PUT", &relay.url("/v1/blobs"), &[], vec![1]).await.0, 401);
    let fake = format!("Bearer {}", hex::encode([7u8; 32]));
    assert_eq!(http("PUT", &relay.url("/v1/blobs"), &[("authorization", &fake)], vec![1]).await.0, 401);
    assert_eq!(http("PUT", &relay.url("/v1/blobs"), &[("authorization", "Basic abc")], vec![1]).await.0, 401);

    // Over the cap: 413, whether declared up front or discovered while streaming.
    let token = upload_token(&mut c).await;
    let auth = format!("Bearer {token}");
    let (status, _) = http("PUT", &relay.url("/v1/blobs"), &[("authorization", &auth)], vec![0; 100_001]).await;
    assert_eq!(status, 413);
    let streamed =
        streamed_upload(&relay.url("/v1/blobs"), &format!("Bearer {}", upload_token(&mut c).await), 150_000).await;
    assert_eq!(streamed, 413);
    // No partial upload is left behind.
    let tmp = relay.dir.path().join("blobs").join("tmp");
    assert_eq!(std::fs::read_dir(tmp).unwrap().count(), 0);

    // Unknown and malformed ids.
    assert_eq!(http("GET", &relay.url(&format!("/v1/blobs/{}", hex::encode([9u8; 32]))), &[], vec![]).await.0, 404);
    assert_eq!(http("GET", &relay.url("/v1/blobs/../relay.sqlite"), &[], vec![]).await.0, 404);
    assert_eq!(http("GET", &relay.url("/v1/blobs/zz"), &[], vec![]).await.0, 404);
}

/// Uploads `len` bytes in chunks without a Content-Length, so the cap is found while streaming.
async fn streamed_upload(url: &str, auth: &str, len: usize) -> u16 {
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let chunks: Vec<Result<Frame<axum::body::Bytes>, std::convert::Infallible>> =
        (0..len / 10_000).map(|_| Ok(Frame::data(axum::body::Bytes::from(vec![1u8; 10_000])))).collect();
    let body = StreamBody::new(futures_util::stream::iter(chunks));
    let client = Client::builder(TokioExecutor::new()).build_http();
    let req = hyper::Request::put(url).header("authorization", auth).body(body).unwrap();
    match tokio::time::timeout(TIMEOUT, client.request(req)).await.unwrap() {
        Ok(resp) => resp.status().as_u16(),
        // The relay may answer and close before the client finished writing.
        Err(_) => 413,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_blobs_are_removed() {
    let relay = TestRelay::start_with(|c| {
        c.blob_ttl = std::time::Duration::ZERO;
        c.cleanup_interval = std::time::Duration::from_secs(1);
    })
    .await;
    let mut c = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    let auth = format!("Bearer {}", upload_token(&mut c).await);
    let (status, body) = http("PUT", &relay.url("/v1/blobs"), &[("authorization", &auth)], vec![5; 100]).await;
    assert_eq!(status, 201);
    let id = blob_id(&body);
    let file = relay.dir.path().join("blobs").join(&id);
    // Cleanup runs every second; wait generously for the file to go.
    let deadline = std::time::Instant::now() + TIMEOUT;
    while file.exists() {
        assert!(std::time::Instant::now() < deadline, "expired blob still on disk");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(http("GET", &relay.url(&format!("/v1/blobs/{id}")), &[], vec![]).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics() {
    let relay = TestRelay::start().await;
    let (status, body) = http("GET", &relay.url("/healthz"), &[], vec![]).await;
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));

    let mut bob = Device::new();
    let _b = bob.register(&relay, 1).await;
    let mut a = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    message_ids(a.request(send_to(&bob.key(), b"m")).await);
    a.send_raw(vec![0xff]).await;
    a.recv().await;

    let (status, body) = http("GET", &relay.url("/metrics"), &[], vec![]).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    for needle in [
        "hush_relay_connections ",
        "hush_relay_frames_in_total{type=\"send\"} 1",
        "hush_relay_frames_out_total{type=\"challenge\"}",
        "hush_relay_rejects_total{reason=\"malformed\"} 1",
        "hush_relay_queue_depth",
        "hush_relay_commit_latency_seconds_bucket",
        "hush_relay_delivery_latency_seconds_count",
        "# EOF",
    ] {
        assert!(text.contains(needle), "metrics lack {needle:?}:\n{text}");
    }
    assert!(relay.handle().render_metrics().contains("hush_relay_authenticated_connections 2"));
}
