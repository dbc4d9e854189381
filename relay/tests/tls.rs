//! TLS where the crate is the client: the client transport reaches a relay behind a TLS terminator at
//! a `wss://` URL, and the relay POSTs push wake-ups to `https://` endpoints. Both against local TLS
//! servers whose self-signed certificate is made here (rcgen) and trusted only through the
//! extra-root options; without them the connection is refused.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use hush_core::DeviceIdentity;
use hush_core::wire::relay::{GetPrekeyCounts, RegisterPush, client_frame::Body as Req, server_frame::Body as Resp};
use hush_net::client::{ClientConfig, ClientEvent, RelayClient};
use rand_core::OsRng;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// How long a refused connection is given to (wrongly) succeed.
const REFUSAL_WAIT: Duration = Duration::from_secs(2);

struct TestCert {
    der: Vec<u8>,
    pem: String,
    acceptor: TlsAcceptor,
}

/// A self-signed certificate for `localhost` and a TLS acceptor serving it.
fn self_signed() -> TestCert {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let der = certified.cert.der().to_vec();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(der.clone())], key)
        .unwrap();
    TestCert { der, pem: certified.cert.pem(), acceptor: TlsAcceptor::from(Arc::new(config)) }
}

/// A TLS terminator on 127.0.0.1 in front of `backend`, as a reverse proxy would be.
async fn tls_proxy(acceptor: TlsAcceptor, backend: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut upstream) = TcpStream::connect(backend).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    addr
}

fn client_config(url: &str, extra_root_certs: Vec<Vec<u8>>) -> ClientConfig {
    let mut config = ClientConfig::new(url);
    config.min_backoff = Duration::from_millis(50);
    config.max_backoff = Duration::from_millis(200);
    config.request_timeout = TIMEOUT;
    config.extra_root_certs = extra_root_certs;
    config
}

async fn event(c: &mut RelayClient) -> ClientEvent {
    tokio::time::timeout(TIMEOUT, c.next_event()).await.expect("no event within the timeout").expect("client stopped")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_transport_connects_to_a_wss_relay() {
    let relay = TestRelay::start().await;
    let cert = self_signed();
    let proxy = tls_proxy(cert.acceptor.clone(), relay.addr).await;
    let url = format!("wss://localhost:{}/v1/ws", proxy.port());
    let mut bob = Device::new();
    bob.register(&relay, 1).await.close().await;
    let mut alice = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    let id = message_ids(alice.request(send_to(&bob.key(), b"over tls")).await)[0];

    // The self-signed certificate is not among the webpki roots: no connection, only failed
    // attempts whose reason names the certificate.
    let mut untrusted = RelayClient::spawn(client_config(&url, Vec::new()), bob.identity().clone());
    let mut attempts = 0;
    let deadline = tokio::time::Instant::now() + REFUSAL_WAIT;
    while let Ok(event) = tokio::time::timeout_at(deadline, untrusted.next_event()).await {
        match event {
            Some(ClientEvent::Unreachable { reason, .. }) => {
                assert!(reason.contains("certificate"), "{reason}");
                attempts += 1;
            }
            other => panic!("connected through an untrusted certificate: {other:?}"),
        }
    }
    assert!(attempts >= 1, "no failed attempt reported");
    drop(untrusted);

    // Trusted as an extra root: connects, authenticates and receives the queued message over TLS.
    let mut client = RelayClient::spawn(client_config(&url, vec![cert.der.clone()]), bob.identity().clone());
    assert_eq!(event(&mut client).await, ClientEvent::Connected);
    let env = loop {
        if let ClientEvent::Envelope(e) = event(&mut client).await {
            break e;
        }
    };
    assert_eq!((env.id, env.payload.as_slice()), (id, &b"over tls"[..]));
    assert!(matches!(client.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await, Ok(Resp::PrekeyCounts(_))));

    // A certificate that does not parse stops the transport with a reason instead of retrying.
    let mut broken = RelayClient::spawn(client_config(&url, vec![vec![1, 2, 3]]), bob.identity().clone());
    assert!(matches!(event(&mut broken).await, ClientEvent::AuthRefused(detail) if detail.contains("certificate")));
}

/// An HTTPS push endpoint on 127.0.0.1: sends the head of each request it gets (lowercased) to the
/// channel and answers 202.
async fn https_push_server(acceptor: TlsAcceptor) -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&head).to_lowercase());
                let _ = tls.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_wake_ups_reach_https_endpoints() {
    let cert = self_signed();
    let (port, mut heads) = https_push_server(cert.acceptor.clone()).await;
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = ca_dir.path().join("push-ca.pem");
    std::fs::write(&ca_file, &cert.pem).unwrap();

    for trusted in [false, true] {
        let relay = TestRelay::start_with(|c| c.push_ca_cert = trusted.then(|| ca_file.clone())).await;
        let mut bob = Device::new();
        let mut b = bob.register(&relay, 1).await;
        let endpoint = format!("https://localhost:{port}/up/bob-{trusted}");
        b.ok(Req::RegisterPush(RegisterPush { endpoint })).await;
        b.close().await;
        let mut alice = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
        message_ids(alice.request(send_to(&bob.key(), b"secret ciphertext")).await);
        if trusted {
            let head = tokio::time::timeout(TIMEOUT, heads.recv()).await.expect("no push within the timeout").unwrap();
            assert!(head.starts_with("post /up/bob-true http/1.1\r\n"), "{head}");
            assert!(head.contains(&format!("\r\nhost: localhost:{port}\r\n")), "{head}");
            assert!(head.contains("\r\ncontent-length: 0\r\n"), "the wake-up carries no content: {head}");
        } else {
            // Without --push-ca-cert the relay refuses the certificate: the request never arrives.
            assert!(tokio::time::timeout(REFUSAL_WAIT, heads.recv()).await.is_err(), "pushed to an untrusted server");
        }
    }
}
