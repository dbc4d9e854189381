//! Starting and stopping the relay: storage, the HTTP router (WebSocket, blobs, health, metrics),
//! the cleanup task, and graceful shutdown (stop accepting, let every socket finish its request).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::error::RelayError;
use crate::hub::Hub;
use crate::limits::{HARD_FRAME_FACTOR, SHUTDOWN_GRACE, WS_READ_BUFFER};
use crate::metrics::Metrics;
use crate::push::Pusher;
use crate::rate_limit::RateLimiter;
use crate::state::{RelayState, now_ms, now_secs};
use crate::storage::postgres::PostgresStorage;
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{Signal, Storage, Wake};
use crate::{blobs, connection};

/// A running relay.
pub struct RelayHandle {
    addr: SocketAddr,
    state: Arc<RelayState>,
    task: JoinHandle<Result<(), RelayError>>,
}

impl RelayHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its storage (tests read queue depths through it).
    pub fn storage(&self) -> Arc<dyn Storage> {
        self.state.storage.clone()
    }

    /// Its metrics, rendered.
    pub fn render_metrics(&self) -> String {
        self.state.metrics.render()
    }

    /// Stops accepting, tells every socket to finish its current request and close, and waits for
    /// them (at most [`SHUTDOWN_GRACE`]).
    pub async fn shutdown(self) -> Result<(), RelayError> {
        self.state.shutdown.cancel();
        self.task.await.map_err(|e| RelayError::Io(std::io::Error::other(e.to_string())))?
    }

    /// Waits until the relay stops (after [`shutdown`](Self::shutdown) was triggered elsewhere).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Waits for the relay to stop by itself (a signal handler cancelling [`shutdown_token`](Self::shutdown_token)).
    pub async fn wait(self) -> Result<(), RelayError> {
        self.task.await.map_err(|e| RelayError::Io(std::io::Error::other(e.to_string())))?
    }
}

/// Opens the storage named by the configuration.
pub async fn open_storage(config: &Config) -> Result<Arc<dyn Storage>, RelayError> {
    let path: PathBuf = match config.database_url.as_deref() {
        None => config.data_dir.join("relay.sqlite"),
        Some(url) if url.starts_with("sqlite:") => {
            let rest = url.trim_start_matches("sqlite:");
            PathBuf::from(rest.strip_prefix("//").unwrap_or(rest))
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            return Ok(Arc::new(PostgresStorage::open(url, &config.postgres_schema).await?));
        }
        Some(_) => return Err(RelayError::Config("--database-url must start with sqlite: or postgres://".into())),
    };
    Ok(Arc::new(SqliteStorage::open(path).await?))
}

/// Starts a relay with the configured storage, listening on `config.listen`.
pub async fn start(config: Config) -> Result<RelayHandle, RelayError> {
    std::fs::create_dir_all(&config.data_dir)?;
    let storage = open_storage(&config).await?;
    let listener = TcpListener::bind(config.listen).await?;
    start_with(config, storage, listener).await
}

/// Starts a relay on `storage` and an already bound `listener`.
pub async fn start_with(
    config: Config,
    storage: Arc<dyn Storage>,
    listener: TcpListener,
) -> Result<RelayHandle, RelayError> {
    if config.max_frame_bytes == 0 || config.origin.is_empty() {
        return Err(RelayError::Config("--max-frame-bytes must be positive and --origin non-empty".into()));
    }
    let blob_dir = config.data_dir.join("blobs");
    std::fs::create_dir_all(blobs::tmp_dir(&blob_dir))?;
    let addr = listener.local_addr()?;
    let extra_roots = match &config.push_ca_cert {
        Some(path) => {
            hush_net::tls::read_certificates(path).map_err(|e| RelayError::Config(format!("--push-ca-cert: {e}")))?
        }
        None => Vec::new(),
    };
    let push_tls =
        hush_net::tls::client_config(&extra_roots).map_err(|e| RelayError::Config(format!("--push-ca-cert: {e}")))?;
    let remote_wakeups = storage.remote_wakeups();
    let state = Arc::new(RelayState {
        device_limits: RateLimiter::new(config.rate_device, config.rate_device_burst),
        ip_limits: RateLimiter::new(config.rate_ip, config.rate_ip_burst),
        push: Pusher::new(config.push_interval, config.push_allow_private, push_tls),
        config,
        storage,
        hub: Hub::default(),
        metrics: Metrics::new(),
        shutdown: CancellationToken::new(),
        tracker: TaskTracker::new(),
        next_conn: AtomicU64::new(1),
        blob_dir,
    });
    if let Some(mut wakeups) = remote_wakeups {
        let s = state.clone();
        state.tracker.spawn(async move {
            loop {
                tokio::select! {
                    () = s.shutdown.cancelled() => return,
                    // Only local sockets are woken: the instance that committed sends any push.
                    next = wakeups.recv() => match next {
                        Some(Wake::Device(device)) => {
                            s.hub.wake(&device);
                        }
                        Some(Wake::All) => s.hub.wake_all(),
                        Some(Wake::Signal { from, signal }) => on_signal(&s, from, signal),
                        None => return,
                    },
                }
            }
        });
    }
    state.tracker.spawn(cleanup_loop(state.clone()));
    let app = router(state.clone());
    let s = state.clone();
    tracing::info!(%addr, "hush-relay listening");
    crate::webchat::announce(&state.config, addr);
    let task = tokio::spawn(async move {
        // No Nagle: frames are small and latency-bound; with it, a small write waits for the
        // peer's delayed ACK (40 ms on Linux).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(s.shutdown.clone().cancelled_owned())
            .await;
        s.shutdown.cancel();
        s.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, s.tracker.wait()).await.is_err() {
            tracing::warn!("some connections did not finish within the shutdown grace period");
        }
        tracing::info!("hush-relay stopped");
        served.map_err(RelayError::Io)
    });
    Ok(RelayHandle { addr, state, task })
}

fn router(state: Arc<RelayState>) -> Router {
    let app = Router::new()
        .route("/v1/ws", get(websocket))
        .route("/v1/blobs", put(blobs::put_blob))
        .route("/v1/blobs/{id}", get(blobs::get_blob))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state.clone());
    match crate::webchat::web_dir(&state.config) {
        Some(dir) => app.fallback_service(crate::webchat::router(dir)),
        None => app,
    }
}

async fn websocket(
    State(state): State<Arc<RelayState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    if !state.ip_limits.check(&peer.ip()) {
        state.metrics.reject("rate_limited");
        return (StatusCode::TOO_MANY_REQUESTS, "rate limited").into_response();
    }
    // Frames up to the relay's cap (and some beyond, to answer TOO_LARGE) are read; beyond that the
    // WebSocket layer drops the connection. Small buffers keep idle sockets cheap.
    let hard_cap = state.config.max_frame_bytes.saturating_mul(HARD_FRAME_FACTOR);
    let tracker = state.tracker.clone();
    upgrade
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(hard_cap)
        .max_frame_size(hard_cap)
        .on_upgrade(move |socket| tracker.track_future(connection::run(state, socket, peer.ip())))
}

async fn healthz(State(state): State<Arc<RelayState>>) -> Response {
    match state.storage.queue_depth().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: storage failed");
            (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable\n").into_response()
        }
    }
}

async fn metrics(State(state): State<Arc<RelayState>>) -> Response {
    if let Ok(depth) = state.storage.queue_depth().await {
        state.metrics.queue_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}

/// Removes expired messages, blobs and upload tokens, and prunes idle rate-limit buckets.
async fn cleanup_loop(state: Arc<RelayState>) {
    let mut tick = tokio::time::interval(state.config.cleanup_interval.max(std::time::Duration::from_secs(1)));
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        cleanup_once(&state).await;
    }
}

/// One cleanup pass.
pub(crate) async fn cleanup_once(state: &RelayState) {
    let now = now_secs();
    let messages_before = now_ms().saturating_sub(state.config.message_ttl.as_millis() as u64);
    let blobs_before = now.saturating_sub(state.config.blob_ttl.as_secs());
    match state.storage.expire(messages_before, blobs_before, now).await {
        Ok(expired) => {
            blobs::remove_files(&state.blob_dir, &expired.blobs).await;
            if expired.messages > 0 || !expired.blobs.is_empty() {
                tracing::info!(messages = expired.messages, blobs = expired.blobs.len(), "expired");
            }
        }
        Err(e) => tracing::error!(error = %e, "cleanup failed"),
    }
    state.device_limits.prune();
    state.ip_limits.prune();
    state.push.prune();
}

/// A presence change or online-only message from another relay process on the same database.
fn on_signal(state: &Arc<RelayState>, from: u64, signal: Signal) {
    match signal {
        Signal::Presence { device, online } => state.hub.remote_presence(from, device, online),
        Signal::Live { recipient, sender, payload } => {
            state.hub.deliver_live(&recipient, &crate::requests::live_envelope(sender, payload));
        }
        Signal::Hello => {
            // A new instance: tell it (and everyone) which devices are connected here.
            let s = state.clone();
            state.tracker.spawn(async move {
                for device in s.hub.local_devices() {
                    s.announce_presence(device, true).await;
                }
            });
        }
    }
}
