//! Prometheus metrics (`GET /metrics`, text format): connections, frames by type, queue depth,
//! commit and delivery latencies, rejects by reason. Labels never carry keys or ids.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = [(&'static str, &'static str); 1];

/// The relay's metrics.
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// WebSocket connections accepted since start.
    pub connections_total: Counter,
    /// Authenticated devices' sockets open now.
    pub authenticated: Gauge,
    /// Client frames received, by body type.
    pub frames_in: Family<Labels, Counter>,
    /// Server frames sent, by body type.
    pub frames_out: Family<Labels, Counter>,
    /// Requests refused, by reason.
    pub rejects: Family<Labels, Counter>,
    /// Messages queued in all mailboxes (refreshed on scrape).
    pub queue_depth: Gauge,
    /// Time for a storage write to commit (send, ack), seconds.
    pub commit_latency: Histogram,
    /// From a message's arrival to its write to the recipient's socket, seconds.
    pub delivery_latency: Histogram,
    /// Push wake-ups attempted, by result.
    pub pushes: Family<Labels, Counter>,
    /// Blob uploads and downloads, by result.
    pub blobs: Family<Labels, Counter>,
    /// Sealed sends taken, by the socket they came on: `anonymous` or `authenticated` (a client
    /// that links its sealed sends to its device, §9.4).
    pub sealed_sends: Family<Labels, Counter>,
    /// Sealed sends taken, by envelope size (a size class, §9.4).
    pub sealed_sizes: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `hush_relay` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hush_relay");
        let m = Self {
            connections: Gauge::default(),
            connections_total: Counter::default(),
            authenticated: Gauge::default(),
            frames_in: Family::default(),
            frames_out: Family::default(),
            rejects: Family::default(),
            queue_depth: Gauge::default(),
            // 100 µs … ~100 s.
            commit_latency: Histogram::new(exponential_buckets(0.000_1, 2.0, 20)),
            delivery_latency: Histogram::new(exponential_buckets(0.000_1, 2.0, 24)),
            pushes: Family::default(),
            blobs: Family::default(),
            sealed_sends: Family::default(),
            sealed_sizes: Family::default(),
            registry: Registry::default(),
        };
        registry.register("connections", "Open WebSocket connections", m.connections.clone());
        registry.register("connections_accepted", "WebSocket connections accepted", m.connections_total.clone());
        registry.register("authenticated_connections", "Authenticated sockets open", m.authenticated.clone());
        registry.register("frames_in", "Client frames received, by type", m.frames_in.clone());
        registry.register("frames_out", "Server frames sent, by type", m.frames_out.clone());
        registry.register("rejects", "Requests refused, by reason", m.rejects.clone());
        registry.register("queue_depth", "Messages queued in all mailboxes", m.queue_depth.clone());
        registry.register("commit_latency_seconds", "Storage commit latency", m.commit_latency.clone());
        registry.register("delivery_latency_seconds", "Arrival to socket write latency", m.delivery_latency.clone());
        registry.register("push_wakeups", "Push wake-ups, by result", m.pushes.clone());
        registry.register("blob_requests", "Blob requests, by result", m.blobs.clone());
        registry.register("sealed_sends", "Sealed sends taken, by socket", m.sealed_sends.clone());
        registry.register("sealed_envelopes", "Sealed sends taken, by envelope size", m.sealed_sizes.clone());
        Self { registry, ..m }
    }

    /// Counts a refusal.
    pub fn reject(&self, reason: &'static str) {
        self.rejects.get_or_create(&[("reason", reason)]).inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
