//! What every connection and HTTP handler shares: configuration, storage, the hub, metrics, limits.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::push::Pusher;
use crate::rate_limit::RateLimiter;
use crate::storage::{DeviceId, Quota, Signal, Storage};

/// Shared relay state.
pub struct RelayState {
    /// The configuration.
    pub config: Config,
    /// The storage backend.
    pub storage: Arc<dyn Storage>,
    /// Connected devices.
    pub hub: Hub,
    /// Metrics.
    pub metrics: Metrics,
    /// Per-device frame limits.
    pub device_limits: RateLimiter<DeviceId>,
    /// Per-IP frame and request limits.
    pub ip_limits: RateLimiter<IpAddr>,
    /// Push wake-ups.
    pub push: Pusher,
    /// Cancelled when the relay shuts down.
    pub shutdown: CancellationToken,
    /// Connection tasks, awaited on shutdown.
    pub tracker: TaskTracker,
    /// Next socket id.
    pub next_conn: AtomicU64,
    /// Where blobs live.
    pub blob_dir: PathBuf,
}

impl RelayState {
    /// The mailbox quota.
    pub fn quota(&self) -> Quota {
        Quota { messages: self.config.mailbox_quota, bytes: self.config.mailbox_quota_bytes }
    }

    /// After a commit queued mail for `recipients`: wake their sockets, or push-wake the offline ones.
    pub fn mail_committed(self: &Arc<Self>, recipients: impl IntoIterator<Item = DeviceId>) {
        let mut seen = std::collections::HashSet::new();
        for r in recipients {
            if seen.insert(r) && !self.hub.wake(&r) {
                crate::push::wake_offline(self, r);
            }
        }
    }

    /// Hands an online-only message to the recipient's sockets here and, when it is connected to
    /// other relay processes, to those (best effort; never stored).
    pub async fn deliver_live(&self, recipient: DeviceId, sender: Option<DeviceId>, payload: Vec<u8>) {
        if self.hub.online_elsewhere(&recipient) {
            let signal = Signal::Live { recipient, sender, payload: payload.clone() };
            if let Err(e) = self.storage.broadcast(signal).await {
                tracing::debug!(error = %e, "an online-only message did not reach the other instances");
            }
        }
        self.hub.deliver_live(&recipient, &crate::requests::live_envelope(sender, payload));
    }

    /// Tells the other relay processes that `device` connected here (its first socket) or left.
    pub async fn announce_presence(&self, device: DeviceId, online: bool) {
        if let Err(e) = self.storage.broadcast(Signal::Presence { device, online }).await {
            tracing::debug!(error = %e, "a presence change did not reach the other instances");
        }
    }
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
