//! Push wake-ups: when mail arrives for a device with no open socket, the relay POSTs an empty body
//! to the device's registered UnifiedPush-style endpoint. The POST carries nothing: no sender, no
//! size, no content; the device connects and fetches. `https://` endpoints are reached over rustls
//! (webpki roots plus `--push-ca-cert`), with the endpoint's host name checked against its certificate.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::Empty;
use hyper::{Request, Uri, header};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::auth::fingerprint;
use crate::limits::{MAX_PUSH_ENDPOINT_BYTES, PUSH_TIMEOUT};
use crate::state::RelayState;
use crate::storage::DeviceId;

/// Why a push endpoint is refused or a wake-up failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Not an `http://` or `https://` URL of acceptable length.
    #[error("push endpoint must be an http(s):// URL of at most {MAX_PUSH_ENDPOINT_BYTES} bytes")]
    BadEndpoint,
    /// The host resolves to a loopback, private or link-local address, which the operator did not allow.
    #[error("push endpoint resolves to a non-public address")]
    PrivateAddress,
    /// Resolution or the request failed.
    #[error("push request failed: {0}")]
    Request(String),
}

/// The push client and its per-device coalescing.
pub struct Pusher {
    tls: TlsConnector,
    last: Mutex<HashMap<DeviceId, Instant>>,
    interval: Duration,
    allow_private: bool,
}

/// Checks the shape of an endpoint at registration.
pub fn check_endpoint(endpoint: &str) -> Result<Uri, PushError> {
    if endpoint.len() > MAX_PUSH_ENDPOINT_BYTES {
        return Err(PushError::BadEndpoint);
    }
    let uri: Uri = endpoint.parse().map_err(|_| PushError::BadEndpoint)?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(PushError::BadEndpoint),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(PushError::BadEndpoint);
    }
    Ok(uri)
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

impl Pusher {
    /// A push client; `tls` is used for `https://` endpoints.
    pub fn new(interval: Duration, allow_private: bool, tls: Arc<rustls::ClientConfig>) -> Self {
        Self { tls: TlsConnector::from(tls), last: Mutex::new(HashMap::new()), interval, allow_private }
    }

    /// Whether a wake-up for `device` is due (at most one per interval), recording it if so.
    fn due(&self, device: DeviceId) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match last.get(&device) {
            Some(t) if now.saturating_duration_since(*t) < self.interval => false,
            _ => {
                last.insert(device, now);
                true
            }
        }
    }

    /// Forgets coalescing entries older than the interval.
    pub fn prune(&self) {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        last.retain(|_, t| now.saturating_duration_since(*t) < self.interval);
    }

    /// POSTs an empty body to `endpoint`, connecting to the address it resolved to (so a second
    /// resolution cannot point elsewhere), with the original `Host` header; over TLS for `https://`,
    /// where the certificate must be valid for the endpoint's host name.
    pub async fn post(&self, endpoint: &str) -> Result<u16, PushError> {
        tokio::time::timeout(PUSH_TIMEOUT, self.post_inner(endpoint))
            .await
            .map_err(|_| PushError::Request("timed out".into()))?
    }

    async fn post_inner(&self, endpoint: &str) -> Result<u16, PushError> {
        let uri = check_endpoint(endpoint)?;
        let tls = uri.scheme_str() == Some("https");
        let host = uri.host().ok_or(PushError::BadEndpoint)?;
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare_host, port))
            .await
            .map_err(|e| PushError::Request(e.kind().to_string()))?
            .collect();
        let addr = *addrs.first().ok_or_else(|| PushError::Request("no address".into()))?;
        if !self.allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(PushError::PrivateAddress);
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let authority = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or_default();
        let request = Request::post(path)
            .header(header::HOST, authority)
            .header(header::CONTENT_LENGTH, "0")
            .body(Empty::<Bytes>::new())
            .map_err(|_| PushError::BadEndpoint)?;
        let tcp = TcpStream::connect(addr).await.map_err(|e| PushError::Request(e.kind().to_string()))?;
        if tls {
            let name = ServerName::try_from(bare_host.to_owned()).map_err(|_| PushError::BadEndpoint)?;
            let stream = self.tls.connect(name, tcp).await.map_err(|e| PushError::Request(format!("TLS: {e}")))?;
            send(TokioIo::new(stream), request).await
        } else {
            send(TokioIo::new(tcp), request).await
        }
    }
}

/// Sends one request on a fresh HTTP/1.1 connection and returns the response status.
async fn send<S>(io: TokioIo<S>, request: Request<Empty<Bytes>>) -> Result<u16, PushError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| PushError::Request(e.to_string()))?;
    // The connection task ends when `sender` is dropped (after the response) or the peer closes.
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(|e| PushError::Request(e.to_string()));
    drop(sender);
    let _ = driver.await;
    Ok(response?.status().as_u16())
}

/// Sends a wake-up to `device` in the background, if it registered an endpoint and none was sent
/// within the interval.
pub fn wake_offline(state: &Arc<RelayState>, device: DeviceId) {
    if !state.push.due(device) {
        return;
    }
    let state = state.clone();
    state.tracker.clone().spawn(async move {
        let endpoint = match state.storage.push_endpoint(device).await {
            Ok(Some(e)) => e,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "push endpoint lookup failed");
                return;
            }
        };
        let result = match state.push.post(&endpoint).await {
            Ok(status) if (200..300).contains(&status) => "ok",
            Ok(status) => {
                tracing::debug!(device = %fingerprint(&device), status, "push endpoint refused the wake-up");
                "refused"
            }
            Err(e) => {
                tracing::debug!(device = %fingerprint(&device), error = %e, "push wake-up failed");
                "failed"
            }
        };
        state.metrics.pushes.get_or_create(&[("result", result)]).inc();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert!(check_endpoint("http://push.example/up/abc").is_ok());
        assert!(check_endpoint("https://push.example/x").is_ok());
        assert!(matches!(check_endpoint("ftp://push.example/x"), Err(PushError::BadEndpoint)));
        assert!(matches!(check_endpoint("not a url"), Err(PushError::BadEndpoint)));
        assert!(matches!(check_endpoint(&format!("http://a/{}", "x".repeat(2000))), Err(PushError::BadEndpoint)));
    }

    #[test]
    fn public_addresses() {
        for private in
            ["127.0.0.1", "10.1.2.3", "192.168.1.1", "169.254.1.1", "100.64.0.1", "::1", "fd00::1", "fe80::1"]
        {
            assert!(private.parse().is_ok_and(|ip| !is_public(ip)), "{private}");
        }
        for public in ["1.1.1.1", "2606:4700::1111"] {
            assert!(public.parse().is_ok_and(is_public), "{public}");
        }
    }
}
