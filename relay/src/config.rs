//! Configuration: command-line flags, each also readable from a `HUSH_RELAY_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::limits::*;

/// The relay's configuration.
#[derive(Clone, Debug, Parser)]
#[command(name = "hush-relay", version, about = "The hush blind relay: stores and forwards ciphertext only")]
pub struct Config {
    /// Address to listen on (HTTP and WebSocket).
    #[arg(long, env = "HUSH_RELAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory for the SQLite database and blobs.
    #[arg(long, env = "HUSH_RELAY_DATA_DIR", default_value = "./hush-relay-data")]
    pub data_dir: PathBuf,
    /// `sqlite:PATH` or `postgres://…` (Postgres arrives in phase 2). Default: `DATA_DIR/relay.sqlite`.
    #[arg(long, env = "HUSH_RELAY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Postgres schema holding the relay's tables (relays sharing a database use the same one).
    #[arg(long, env = "HUSH_RELAY_POSTGRES_SCHEMA", default_value = "hush")]
    pub postgres_schema: String,
    /// The origin devices sign in their auth response, e.g. `https://relay.example:443`.
    #[arg(long, env = "HUSH_RELAY_ORIGIN", default_value = "http://127.0.0.1:8080")]
    pub origin: String,
    /// Largest client frame, in bytes.
    #[arg(long, env = "HUSH_RELAY_MAX_FRAME_BYTES", default_value_t = DEFAULT_MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,
    /// Most messages queued per device.
    #[arg(long, env = "HUSH_RELAY_MAILBOX_QUOTA", default_value_t = DEFAULT_MAILBOX_QUOTA)]
    pub mailbox_quota: u64,
    /// Most bytes queued per device.
    #[arg(long, env = "HUSH_RELAY_MAILBOX_QUOTA_BYTES", default_value_t = DEFAULT_MAILBOX_QUOTA_BYTES)]
    pub mailbox_quota_bytes: u64,
    /// Largest blob, in bytes.
    #[arg(long, env = "HUSH_RELAY_MAX_BLOB_BYTES", default_value_t = DEFAULT_MAX_BLOB_BYTES)]
    pub max_blob_bytes: u64,
    /// How long queued messages are kept (e.g. `30d`, `12h`, `90s`).
    #[arg(long, env = "HUSH_RELAY_MESSAGE_TTL", default_value = "30d", value_parser = parse_duration)]
    pub message_ttl: Duration,
    /// How long blobs are kept.
    #[arg(long, env = "HUSH_RELAY_BLOB_TTL", default_value = "30d", value_parser = parse_duration)]
    pub blob_ttl: Duration,
    /// How long an upload token stays valid.
    #[arg(long, env = "HUSH_RELAY_UPLOAD_TOKEN_TTL", default_value = "10m", value_parser = parse_duration)]
    pub upload_token_ttl: Duration,
    /// How often expired messages, blobs and tokens are removed.
    #[arg(long, env = "HUSH_RELAY_CLEANUP_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub cleanup_interval: Duration,
    /// Frames per second per device (token bucket refill).
    #[arg(long, env = "HUSH_RELAY_RATE_DEVICE", default_value_t = DEFAULT_DEVICE_RATE)]
    pub rate_device: f64,
    /// Burst size of the per-device bucket.
    #[arg(long, env = "HUSH_RELAY_RATE_DEVICE_BURST", default_value_t = DEFAULT_DEVICE_BURST)]
    pub rate_device_burst: f64,
    /// Frames and HTTP requests per second per client IP address.
    #[arg(long, env = "HUSH_RELAY_RATE_IP", default_value_t = DEFAULT_IP_RATE)]
    pub rate_ip: f64,
    /// Burst size of the per-IP bucket.
    #[arg(long, env = "HUSH_RELAY_RATE_IP_BURST", default_value_t = DEFAULT_IP_BURST)]
    pub rate_ip_burst: f64,
    /// When set, a device the relay does not know yet must present this secret in its auth response.
    #[arg(long, env = "HUSH_RELAY_REGISTRATION_SECRET", hide_env_values = true)]
    pub registration_secret: Option<RegistrationSecret>,
    /// Least time between two push wake-ups for the same device.
    #[arg(long, env = "HUSH_RELAY_PUSH_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub push_interval: Duration,
    /// Allow push endpoints on loopback and private addresses (for tests and closed networks; off by
    /// default so a client cannot make the relay POST into the operator's network).
    #[arg(long, env = "HUSH_RELAY_PUSH_ALLOW_PRIVATE", default_value_t = false)]
    pub push_allow_private: bool,
    /// A PEM (or DER) file of extra CA certificates trusted for `https://` push endpoints, besides
    /// the webpki (Mozilla) roots: for push servers with a private CA, and tests.
    #[arg(long, env = "HUSH_RELAY_PUSH_CA_CERT")]
    pub push_ca_cert: Option<PathBuf>,
    /// Log filter (tracing-subscriber EnvFilter syntax), e.g. `info` or `hush_relay=debug`.
    #[arg(long, env = "HUSH_RELAY_LOG", default_value = "info")]
    pub log: String,
    /// Do not serve the demo web chat at `/`.
    #[arg(long, env = "HUSH_RELAY_NO_WEB", default_value_t = false)]
    pub no_web: bool,
    /// The built demo web chat to serve at `/` (`scripts/web.sh build`). Default: `wasm/web` of the
    /// source tree the relay was built from, when it was built.
    #[arg(long, env = "HUSH_RELAY_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
}

impl Config {
    /// The defaults, with `data_dir` (what tests and embedders start from).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: data_dir.into(),
            database_url: None,
            postgres_schema: "hush".into(),
            origin: "http://127.0.0.1:8080".into(),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            mailbox_quota: DEFAULT_MAILBOX_QUOTA,
            mailbox_quota_bytes: DEFAULT_MAILBOX_QUOTA_BYTES,
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
            message_ttl: DEFAULT_MESSAGE_TTL,
            blob_ttl: DEFAULT_BLOB_TTL,
            upload_token_ttl: DEFAULT_UPLOAD_TOKEN_TTL,
            cleanup_interval: DEFAULT_CLEANUP_INTERVAL,
            rate_device: DEFAULT_DEVICE_RATE,
            rate_device_burst: DEFAULT_DEVICE_BURST,
            rate_ip: DEFAULT_IP_RATE,
            rate_ip_burst: DEFAULT_IP_BURST,
            registration_secret: None,
            push_interval: DEFAULT_PUSH_INTERVAL,
            push_allow_private: false,
            push_ca_cert: None,
            log: "info".into(),
            no_web: false,
            web_dir: None,
        }
    }
}

/// The operator's registration secret; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistrationSecret(pub String);

impl std::str::FromStr for RegistrationSecret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Debug for RegistrationSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistrationSecret([redacted])")
    }
}

/// Parses `90`, `90s`, `15m`, `12h` or `30d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("not a duration: {s:?} (use e.g. 90s, 15m, 12h, 30d)"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("unknown duration unit {unit:?} (use s, m, h or d)")),
    };
    n.checked_mul(factor).map(Duration::from_secs).ok_or_else(|| format!("duration too large: {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert!(parse_duration("3w").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn defaults_match_flags() {
        let parsed = Config::try_parse_from(["hush-relay"]).map_err(|e| e.to_string());
        let Ok(parsed) = parsed else { return };
        // Skip when the environment sets HUSH_RELAY_* (the operator's own defaults).
        if std::env::vars().any(|(k, _)| k.starts_with("HUSH_RELAY_")) {
            return;
        }
        let built = Config::with_data_dir("./hush-relay-data");
        assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
    }
}
