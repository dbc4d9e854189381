//! A relay started in-process on 127.0.0.1:0 with a temporary data dir, and a small WebSocket test
//! client that authenticates with a `DeviceIdentity` and speaks relay.proto frames.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use hush_core::wire::relay::{
    AuthResponse, Challenge, ClientFrame, ErrorCode, ServerFrame, client_frame::Body as Req, server_frame::Body as Resp,
};
use hush_core::{Account, DeviceIdentity, SignedDeviceList, UserIdentity};
use hush_relay::{Config, RelayHandle};
use prost::Message as _;
use rand_core::OsRng;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous: CI machines are small and busy.
pub const TIMEOUT: Duration = Duration::from_secs(60);

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

pub struct TestRelay {
    pub handle: Option<RelayHandle>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config: Config,
    /// The Postgres schema this relay owns (dropped with it), when testing on Postgres.
    owned_schema: Option<String>,
}

/// `HUSH_RELAY_TEST_POSTGRES=postgres://user@127.0.0.1:port/db` runs every relay test on Postgres
/// (a fresh schema per relay) instead of SQLite.
pub fn postgres_url() -> Option<String> {
    std::env::var("HUSH_RELAY_TEST_POSTGRES").ok().filter(|s| !s.is_empty())
}

pub fn fresh_schema() -> String {
    let mut bytes = [0u8; 6];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut bytes);
    format!("hush_test_{}", hex::encode(bytes))
}

/// Drops a test schema, from any context (a thread with its own runtime, so Drop can call it).
pub fn drop_schema(url: &str, schema: &str) {
    let (url, schema) = (url.to_owned(), schema.to_owned());
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            if let Ok((client, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                tokio::spawn(conn);
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
            }
        });
    })
    .join();
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let (Some(url), Some(schema)) = (postgres_url(), &self.owned_schema) {
            drop_schema(&url, schema);
        }
    }
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config::with_data_dir(dir);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.origin = "http://relay.test".into();
    config.push_allow_private = true;
    config.push_interval = Duration::ZERO;
    config
}

impl TestRelay {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        let mut owned_schema = None;
        if let Some(url) = postgres_url() {
            config.database_url = Some(url);
            config.postgres_schema = fresh_schema();
            owned_schema = Some(config.postgres_schema.clone());
        }
        tweak(&mut config);
        Self::start_config(config, dir, owned_schema).await
    }

    /// A relay on `config` (tests sharing one database across relays pass the same schema and let
    /// only one of them own it).
    pub async fn start_config(config: Config, dir: tempfile::TempDir, owned_schema: Option<String>) -> Self {
        let handle = hush_relay::start(config.clone()).await.unwrap();
        let addr = handle.local_addr();
        Self { handle: Some(handle), addr, dir, config, owned_schema }
    }

    /// Everything the storage holds, for privacy checks: the bytes of every file under the data dir
    /// and, on Postgres, every row of the relay's tables as text (bytea shows as hex there).
    pub async fn stored_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.extend(std::fs::read(&path).unwrap());
                }
            }
        }
        if let Some(url) = &self.config.database_url {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            let schema = &self.config.postgres_schema;
            let tables = client
                .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1", &[schema])
                .await
                .unwrap();
            for t in tables {
                let table: String = t.get(0);
                for row in client.query(&format!("SELECT t::text FROM {schema}.{table} t"), &[]).await.unwrap() {
                    out.extend(row.get::<_, String>(0).into_bytes());
                }
            }
        }
        out
    }

    pub fn handle(&self) -> &RelayHandle {
        self.handle.as_ref().unwrap()
    }

    pub async fn queue_depth(&self) -> u64 {
        self.handle().storage().queue_depth().await.unwrap()
    }

    pub async fn connect(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Connects and authenticates as `identity`.
    pub async fn login(&self, identity: &DeviceIdentity) -> Client {
        let mut c = self.connect().await;
        c.auth(identity).await;
        c
    }

    pub async fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(TIMEOUT, h.shutdown()).await.unwrap().unwrap();
        }
    }

    /// Restarts on the same data dir and the same port (for clients that reconnect).
    pub async fn restart_same_port(&mut self) {
        self.stop().await;
        let mut config = self.config.clone();
        config.listen = self.addr;
        let handle = hush_relay::start(config).await.unwrap();
        self.handle = Some(handle);
    }

    /// Restarts on the same data dir (a new port).
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        let handle = hush_relay::start(config).await.unwrap();
        self.addr = handle.local_addr();
        self.handle = Some(handle);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub challenge: Challenge,
    next_id: u64,
    /// Frames the relay pushed (request id 0) while we waited for an answer.
    pushed: VecDeque<ServerFrame>,
    /// Answers that arrived while we waited for something else (a push or another answer), by
    /// request id: an ack's answer may come between two envelopes.
    early: HashMap<u64, ServerFrame>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let (ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws")))
            .await
            .expect("connect timed out")
            .expect("connect");
        let mut c =
            Self { ws, challenge: Challenge::default(), next_id: 1, pushed: VecDeque::new(), early: HashMap::new() };
        let first = c.recv().await.expect("challenge");
        match first.body {
            Some(Resp::Challenge(ch)) => c.challenge = ch,
            other => panic!("expected a challenge, got {other:?}"),
        }
        c
    }

    /// The next frame, or `None` when the socket closed.
    pub async fn recv(&mut self) -> Option<ServerFrame> {
        loop {
            let msg = tokio::time::timeout(TIMEOUT, self.ws.next()).await.expect("no frame within the timeout");
            match msg {
                Some(Ok(Message::Binary(b))) => return Some(ServerFrame::decode(b.as_ref()).expect("server frame")),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).await.expect("send");
    }

    /// Sends bytes; false when the socket is gone.
    pub async fn try_send_raw(&mut self, bytes: Vec<u8>) -> bool {
        self.ws.send(Message::Binary(bytes.into())).await.is_ok()
    }

    /// The answer to request `id`, or `None` when the socket closed first.
    pub async fn try_answer(&mut self, id: u64) -> Option<Resp> {
        if let Some(f) = self.early.remove(&id).filter(|_| id != 0) {
            return f.body;
        }
        loop {
            let f = self.recv().await?;
            if f.request_id == id && id != 0 {
                return f.body;
            }
            self.keep(f);
        }
    }

    /// Keeps a frame that is not the one waited for: a push for `next_push`, an answer for `answer`.
    fn keep(&mut self, f: ServerFrame) {
        if f.request_id == 0 {
            self.pushed.push_back(f);
        } else {
            self.early.insert(f.request_id, f);
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.expect("send");
    }

    pub fn frame(&mut self, body: Req) -> (u64, ClientFrame) {
        let id = self.next_id;
        self.next_id += 1;
        (id, ClientFrame { version: hush_core::limits::RELAY_PROTOCOL_VERSION, request_id: id, body: Some(body) })
    }

    /// Sends a request and waits for its answer; pushed frames meanwhile are kept for `next_push`.
    pub async fn request(&mut self, body: Req) -> Resp {
        let (id, frame) = self.frame(body);
        self.send_raw(frame.encode_to_vec()).await;
        self.answer(id).await
    }

    /// Waits for the answer to request `id`.
    pub async fn answer(&mut self, id: u64) -> Resp {
        self.try_answer(id).await.expect("socket closed before the answer (or an answer without a body)")
    }

    /// Sends a request that must succeed with `Ok`.
    pub async fn ok(&mut self, body: Req) {
        match self.request(body).await {
            Resp::Ok(_) => {}
            other => panic!("expected Ok, got {other:?}"),
        }
    }

    /// Sends a request that must fail with `code`.
    pub async fn expect_error(&mut self, body: Req, code: ErrorCode) {
        let resp = self.request(body).await;
        assert_error(&resp, code);
    }

    /// Whether no pushed frame and no early answer is kept unread.
    pub fn pushed_is_empty(&self) -> bool {
        self.pushed.is_empty() && self.early.is_empty()
    }

    /// The next pushed frame (envelope or presence).
    pub async fn next_push(&mut self) -> ServerFrame {
        if let Some(f) = self.pushed.pop_front() {
            return f;
        }
        loop {
            let f = self.recv().await.expect("socket closed while waiting for a push");
            if f.request_id == 0 {
                return f;
            }
            self.keep(f);
        }
    }

    /// The next pushed envelope (skipping presence frames).
    pub async fn next_envelope(&mut self) -> hush_core::wire::relay::Envelope {
        loop {
            if let Some(Resp::Envelope(e)) = self.next_push().await.body {
                return e;
            }
        }
    }

    pub fn auth_response(&self, identity: &DeviceIdentity) -> AuthResponse {
        hush_relay::auth::answer(identity, &self.challenge, now())
    }

    pub async fn auth(&mut self, identity: &DeviceIdentity) {
        let response = self.auth_response(identity);
        self.ok(Req::Auth(response)).await;
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

pub fn assert_error(resp: &Resp, code: ErrorCode) {
    match resp {
        Resp::Error(e) => assert_eq!(e.code(), code, "error detail: {}", e.detail),
        other => panic!("expected error {code:?}, got {other:?}"),
    }
}

/// A device with its account, user identity and a published device list + prekeys.
pub struct Device {
    pub account: Account,
    pub user: UserIdentity,
}

impl Device {
    pub fn new() -> Self {
        Self { account: Account::new(&mut OsRng), user: UserIdentity::generate(&mut OsRng) }
    }

    pub fn identity(&self) -> &DeviceIdentity {
        self.account.identity()
    }

    pub fn key(&self) -> Vec<u8> {
        self.account.device_key().to_bytes().to_vec()
    }

    pub fn device_list(&self, version: u64) -> SignedDeviceList {
        SignedDeviceList::sign(&self.user, version, &[self.account.device_keys()], now()).unwrap()
    }

    /// A full prekey upload: device keys, signed prekey, `n` one-time keys of each kind, last resort.
    pub fn prekeys(&mut self, n: usize) -> Req {
        let one_time = self.account.generate_one_time_prekeys(&mut OsRng, n).unwrap();
        let kem = self.account.generate_kem_prekeys(&mut OsRng, n).unwrap();
        Req::PublishPrekeys(hush_core::wire::relay::PublishPrekeys {
            signed_prekey: Some(self.account.signed_prekey().unwrap().to_proto()),
            one_time_prekeys: one_time.iter().map(|k| k.to_proto()).collect(),
            kem_prekeys: kem.iter().map(|k| k.to_proto()).collect(),
            last_resort_kem_prekey: Some(self.account.last_resort_kem_prekey().unwrap().to_proto()),
            device: Some(self.account.device_keys().to_proto()),
        })
    }

    /// Connects, authenticates, publishes the device list and `n` prekeys of each kind.
    pub async fn register(&mut self, relay: &TestRelay, n: usize) -> Client {
        let mut c = relay.login(self.identity()).await;
        let list = self.device_list(1).to_bytes();
        c.ok(Req::PublishDeviceList(hush_core::wire::relay::PublishDeviceList { signed_device_list: list })).await;
        let prekeys = self.prekeys(n);
        c.ok(prekeys).await;
        c
    }
}

pub fn send_to(recipient: &[u8], payload: &[u8]) -> Req {
    Req::Send(hush_core::wire::relay::Send {
        messages: vec![hush_core::wire::relay::Outgoing {
            recipient_device: recipient.to_vec(),
            payload: payload.to_vec(),
            online_only: false,
        }],
    })
}

pub fn ack(ids: Vec<u64>) -> Req {
    Req::Ack(hush_core::wire::relay::Ack { ids })
}

pub fn message_ids(resp: Resp) -> Vec<u64> {
    match resp {
        Resp::SendResult(r) => r.message_ids,
        other => panic!("expected a send result, got {other:?}"),
    }
}

/// A minimal HTTP/1.1 client for the blob and ops endpoints.
pub async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Vec<u8>) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Full<axum::body::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(axum::body::Bytes::from(body))).unwrap();
    let resp = tokio::time::timeout(TIMEOUT, client.request(req)).await.expect("http timed out").expect("http");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    (status, body)
}
