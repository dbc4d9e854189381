//! `relay-load`: a load generator for hush-relay, run as its own process (see README.md).
//!
//! It spawns the real `hush-relay` binary (temp data dir, SQLite, relaxed rate limits and quotas) and
//! a bare WebSocket forwarder (this binary, `relay-load forwarder ADDR`: no auth, no storage, routes
//! by a 32-byte device id at the start of each frame), then on 127.0.0.1 only:
//! 1. peak: N devices in a ring (device i sends to i+1), each with at most W messages in flight
//!    (a send's slot is freed when its recipient receives it), for both targets;
//! 2. half: the relay (and the forwarder) at half their own measured peak, open loop (paced sends);
//! 3. idle: RSS of a fresh relay (and forwarder) before/after opening 1k (and 10k) idle
//!    authenticated WebSockets, from /proc/PID/status VmRSS.
//!
//! Latency is send → recipient receives the message (relay: the `Envelope` push; the recipient then
//! acks it). Every loop is bounded in count and time; the tool stops by itself.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hush_core::DeviceIdentity;
use hush_core::wire::relay::{
    Ack, ClientFrame, Outgoing, Send, ServerFrame, SetDeliveryToken, client_frame, server_frame,
};
use prost::Message as _;
use rand_core::OsRng;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Res<T> = Result<T, String>;

/// Upper bound on any single wait (connect, auth, startup).
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes before the ciphertext filler in every payload: send time (ns) and sender index.
const HEADER: usize = 12;

#[derive(Clone, Debug)]
struct Opts {
    devices: usize,
    window: usize,
    warmup: Duration,
    secs: Duration,
    payload: usize,
    idle: Vec<usize>,
    relay_bin: PathBuf,
    forwarder_idle: bool,
}

fn usage() -> &'static str {
    "relay-load [--quick] [--devices N] [--window W] [--secs S] [--payload BYTES] [--idle 1000,10000]\n\
     \x20          [--relay-bin PATH] [--no-forwarder-idle]\n\
     defaults: 100 devices, window 16, 10 s per phase, 200-byte payloads, idle 1000,10000\n\
     --quick: 20 devices, 4 s per phase, idle 1000 (finishes in well under 60 s)"
}

fn parse_opts(args: &[String]) -> Res<Opts> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut o = Opts {
        devices: 100,
        window: 16,
        warmup: Duration::from_secs(1),
        secs: Duration::from_secs(10),
        payload: 200,
        idle: vec![1_000, 10_000],
        relay_bin: exe.with_file_name("hush-relay"),
        forwarder_idle: true,
    };
    let mut it = args.iter();
    let num = |v: Option<&String>, what: &str| -> Res<usize> {
        v.ok_or(format!("{what} needs a value"))?.parse().map_err(|_| format!("{what}: not a number"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => {
                o.devices = 20;
                o.secs = Duration::from_secs(4);
                o.idle = vec![1_000];
            }
            "--devices" => o.devices = num(it.next(), "--devices")?.clamp(2, 5_000),
            "--window" => o.window = num(it.next(), "--window")?.clamp(1, 200),
            "--secs" => o.secs = Duration::from_secs(num(it.next(), "--secs")?.clamp(1, 300) as u64),
            "--payload" => o.payload = num(it.next(), "--payload")?.clamp(HEADER, 64 * 1024),
            "--idle" => {
                let v = it.next().ok_or("--idle needs a value")?;
                o.idle = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse::<usize>().map(|n| n.min(50_000)).map_err(|_| format!("--idle: {s:?}")))
                    .collect::<Res<_>>()?;
                o.idle.sort_unstable();
            }
            "--relay-bin" => o.relay_bin = PathBuf::from(it.next().ok_or("--relay-bin needs a value")?),
            "--no-forwarder-idle" => o.forwarder_idle = false,
            "-h" | "--help" => return Err(usage().into()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    Ok(o)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Two workers each, like the machine's two cores (the relay uses tokio's default: one per core).
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("relay-load: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = if args.first().map(String::as_str) == Some("forwarder") {
        match args.get(1).and_then(|a| a.parse::<SocketAddr>().ok()) {
            Some(addr) if addr.ip().is_loopback() => rt.block_on(forwarder(addr)),
            _ => Err("usage: relay-load forwarder 127.0.0.1:PORT".into()),
        }
    } else {
        parse_opts(&args).and_then(|o| rt.block_on(run(o)))
    };
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A child process killed (SIGKILL) when dropped; its stderr goes to a file in `dir`.
struct Proc {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn free_port() -> Res<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map_err(|e| e.to_string())
}

async fn wait_listening(addr: SocketAddr, child: &mut Child) -> Res<()> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while Instant::now() < deadline {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("child exited early: {status}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("nothing listening on {addr} after {STEP_TIMEOUT:?}"))
}

async fn spawn_relay(bin: &PathBuf) -> Res<Proc> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let addr = free_port()?;
    let log = std::fs::File::create(dir.path().join("relay.log")).map_err(|e| e.to_string())?;
    let big = "1000000000";
    let mut child = Command::new(bin)
        .args(["--listen", &addr.to_string(), "--origin", &format!("http://{addr}")])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--rate-device", big, "--rate-device-burst", big, "--rate-ip", big, "--rate-ip-burst", big])
        .args(["--mailbox-quota", big, "--log", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {} ({e}); build it: cargo build --release -p hush-relay", bin.display()))?;
    wait_listening(addr, &mut child).await?;
    Ok(Proc { child, addr, _dir: dir })
}

async fn spawn_forwarder() -> Res<Proc> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let addr = free_port()?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(["forwarder", &addr.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    wait_listening(addr, &mut child).await?;
    Ok(Proc { child, addr, _dir: dir })
}

/// VmRSS of `pid`, KiB.
fn rss_kib(pid: u32) -> Res<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

/// Raises this process's open-file soft limit to its hard limit (children inherit it); returns it.
fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if let Some(hard) = lim.maximum
        && lim.current.is_none_or(|c| c < hard)
    {
        lim.current = Some(hard);
        let _ = setrlimit(Resource::Nofile, lim);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The relay's `/metrics` text (plain HTTP/1.0 GET on loopback).
async fn relay_metrics(addr: SocketAddr) -> Res<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetch = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut body = Vec::new();
        s.take(16 << 20).read_to_end(&mut body).await.map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    };
    tokio::time::timeout(STEP_TIMEOUT, fetch).await.map_err(|_| "metrics timed out".to_string())?
}

/// The sum and count of a histogram in Prometheus text (0, 0 when absent).
fn histogram(text: &str, name: &str) -> (f64, f64) {
    let value = |suffix: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{suffix}")))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (value("_sum"), value("_count"))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The forwarder: the upper bound (no auth, no storage, no acks)

type Routes = Arc<Mutex<HashMap<[u8; 32], mpsc::UnboundedSender<Message>>>>;

fn small_buffers() -> WebSocketConfig {
    // The relay's own settings (4 KiB read buffer, no write buffering), so idle memory compares.
    WebSocketConfig::default().read_buffer_size(4 * 1024).write_buffer_size(0)
}

async fn forwarder(addr: SocketAddr) -> Res<()> {
    let listener = TcpListener::bind(addr).await.map_err(|e| e.to_string())?;
    let routes: Routes = Arc::default();
    // Bounded in time: the generator kills it, and it exits by itself after an hour at the latest.
    let deadline = tokio::time::sleep(Duration::from_secs(3_600));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return Ok(()),
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                tokio::spawn(forward_conn(stream, routes.clone()));
            }
        }
    }
}

async fn forward_conn(stream: TcpStream, routes: Routes) {
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(small_buffers())).await else { return };
    let (sink, mut stream) = ws.split();
    // First frame: the device's 32-byte id; answered with an empty frame once routable.
    let id: [u8; 32] = match stream.next().await {
        Some(Ok(Message::Binary(b))) if b.len() == 32 => b.as_ref().try_into().unwrap_or([0; 32]),
        _ => return,
    };
    let (tx, rx) = mpsc::unbounded_channel::<Message>();
    if let Ok(mut r) = routes.lock() {
        r.insert(id, tx.clone());
    }
    let _ = tx.send(Message::Binary(Vec::new().into()));
    let writer = tokio::spawn(write_loop(sink, rx));
    while let Some(Ok(msg)) = stream.next().await {
        if let Message::Binary(b) = msg {
            if b.len() < 32 {
                continue;
            }
            let dest = routes.lock().ok().and_then(|r| r.get(&b[..32]).cloned());
            if let Some(dest) = dest {
                let _ = dest.send(Message::Binary(b.slice(32..)));
            }
        }
    }
    if let Ok(mut r) = routes.lock() {
        r.remove(&id);
    }
    writer.abort();
}

// ---------------------------------------------------------------------------------------------
// Clients

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Relay,
    Forwarder,
}

fn frame(request_id: u64, body: client_frame::Body) -> Message {
    Message::Binary(
        ClientFrame { version: hush_core::limits::RELAY_PROTOCOL_VERSION, request_id, body: Some(body) }
            .encode_to_vec()
            .into(),
    )
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

async fn next_binary(ws: &mut Ws) -> Res<Vec<u8>> {
    loop {
        match tokio::time::timeout(STEP_TIMEOUT, ws.next()).await {
            Err(_) => return Err("no frame within the timeout".into()),
            Ok(Some(Ok(Message::Binary(b)))) => return Ok(b.to_vec()),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) => return Err("closed".into()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

async fn expect_ok(ws: &mut Ws, request_id: u64) -> Res<()> {
    loop {
        let f = ServerFrame::decode(next_binary(ws).await?.as_slice()).map_err(|e| e.to_string())?;
        match f.body {
            Some(server_frame::Body::Ok(_)) if f.request_id == request_id => return Ok(()),
            Some(server_frame::Body::Error(e)) => return Err(format!("refused: {}", e.detail)),
            _ => continue,
        }
    }
}

/// Connects and authenticates (relay) or registers (forwarder) as `identity`. With `register`, a
/// relay device also sets a delivery token hash, which registers it so that others can send to it.
async fn open(target: Target, addr: SocketAddr, identity: &DeviceIdentity, register: bool) -> Res<Ws> {
    let url = format!("ws://{addr}/v1/ws");
    let (mut ws, _) = tokio::time::timeout(
        STEP_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(url, Some(small_buffers()), true),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| format!("connect: {e}"))?;
    let key = identity.device_key().to_bytes();
    match target {
        Target::Forwarder => {
            ws.send(Message::Binary(key.to_vec().into())).await.map_err(|e| e.to_string())?;
            next_binary(&mut ws).await?;
        }
        Target::Relay => {
            let first = ServerFrame::decode(next_binary(&mut ws).await?.as_slice()).map_err(|e| e.to_string())?;
            let Some(server_frame::Body::Challenge(ch)) = first.body else {
                return Err("expected a challenge".into());
            };
            let auth = hush_relay::auth::answer(identity, &ch, unix_now());
            ws.send(frame(1, client_frame::Body::Auth(auth))).await.map_err(|e| e.to_string())?;
            expect_ok(&mut ws, 1).await?;
            if register {
                let mut token_hash = vec![0u8; 32];
                rand_core::RngCore::fill_bytes(&mut OsRng, &mut token_hash);
                let body = client_frame::Body::SetDeliveryToken(SetDeliveryToken { token_hash });
                ws.send(frame(2, body)).await.map_err(|e| e.to_string())?;
                expect_ok(&mut ws, 2).await?;
            }
        }
    }
    Ok(ws)
}

/// Opens `n` connections, at most `parallel` at a time. Stops early (and says why) on an error.
async fn open_many(
    target: Target,
    addr: SocketAddr,
    n: usize,
    parallel: usize,
    register: bool,
) -> (Vec<(DeviceIdentity, Ws)>, Option<String>) {
    let mut out = Vec::with_capacity(n);
    let mut pending = futures_util::stream::iter((0..n).map(|_| {
        let id = DeviceIdentity::generate(&mut OsRng);
        async move { open(target, addr, &id, register).await.map(|ws| (id, ws)) }
    }))
    .buffer_unordered(parallel);
    while let Some(r) = pending.next().await {
        match r {
            Ok(c) => out.push(c),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

// ---------------------------------------------------------------------------------------------
// Load phases

#[derive(Clone, Copy, Debug)]
enum Pace {
    /// At most `window` messages in flight per sender.
    Closed,
    /// `rate` messages/s in total, spread evenly over the senders (still capped by the window).
    Open { rate: f64 },
}

#[derive(Default)]
struct Shared {
    measuring: AtomicBool,
    received: AtomicU64,
    errors: AtomicU64,
    skipped: AtomicU64,
    first_error: Mutex<Option<String>>,
    latencies_us: Mutex<Vec<u32>>,
}

struct PhaseResult {
    msgs_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: u64,
    skipped: u64,
    first_error: Option<String>,
}

fn payload(base: Instant, sender: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0xA5u8; len];
    let t = base.elapsed().as_nanos() as u64;
    p[..8].copy_from_slice(&t.to_le_bytes());
    p[8..12].copy_from_slice(&sender.to_le_bytes());
    p
}

fn on_delivery(shared: &Shared, sems: &[Arc<Semaphore>], base: Instant, p: &[u8]) {
    if p.len() < HEADER {
        return;
    }
    let sent = u64::from_le_bytes(p[..8].try_into().unwrap_or([0; 8]));
    let sender = u32::from_le_bytes(p[8..12].try_into().unwrap_or([0; 4])) as usize;
    if let Some(s) = sems.get(sender) {
        s.add_permits(1);
    }
    if shared.measuring.load(Ordering::Relaxed) {
        let lat_us = (base.elapsed().as_nanos() as u64).saturating_sub(sent) / 1_000;
        shared.received.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut l) = shared.latencies_us.lock() {
            l.push(lat_us.min(u32::MAX as u64) as u32);
        }
    }
}

fn note_error(shared: &Shared, e: String) {
    shared.errors.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut f) = shared.first_error.lock() {
        f.get_or_insert(e);
    }
}

/// Writes queued frames, flushing once per burst; for client sockets and the forwarder's alike.
async fn write_loop<S>(mut sink: SplitSink<S, Message>, mut rx: mpsc::UnboundedReceiver<Message>)
where
    SplitSink<S, Message>: futures_util::Sink<Message> + Unpin,
{
    while let Some(m) = rx.recv().await {
        if sink.feed(m).await.is_err() {
            return;
        }
        while let Ok(m) = rx.try_recv() {
            if sink.feed(m).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

async fn read_loop(
    target: Target,
    mut stream: SplitStream<Ws>,
    tx: mpsc::UnboundedSender<Message>,
    shared: Arc<Shared>,
    sems: Arc<Vec<Arc<Semaphore>>>,
    base: Instant,
) {
    let mut next_ack_id = 1u64 << 40;
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Binary(b) = msg else { continue };
        match target {
            Target::Forwarder => on_delivery(&shared, &sems, base, &b),
            Target::Relay => {
                let Ok(f) = ServerFrame::decode(b.as_ref()) else {
                    note_error(&shared, "undecodable server frame".into());
                    continue;
                };
                match f.body {
                    Some(server_frame::Body::Envelope(e)) => {
                        on_delivery(&shared, &sems, base, &e.payload);
                        next_ack_id += 1;
                        let _ = tx.send(frame(next_ack_id, client_frame::Body::Ack(Ack { ids: vec![e.id] })));
                    }
                    Some(server_frame::Body::Error(e)) => note_error(&shared, format!("{:?}: {}", e.code(), e.detail)),
                    _ => {}
                }
            }
        }
    }
}

/// One sender: device `me` of `n` sending to `to` until `until`.
struct Sender {
    target: Target,
    me: u32,
    to: [u8; 32],
    tx: mpsc::UnboundedSender<Message>,
    shared: Arc<Shared>,
    sem: Arc<Semaphore>,
    pace: Pace,
    n: usize,
    len: usize,
    base: Instant,
    until: Instant,
}

async fn send_loop(s: Sender) {
    let Sender { target, me, to, tx, shared, sem, pace, n, len, base, until } = s;
    let mut interval = match pace {
        Pace::Open { rate } => {
            let period = Duration::from_secs_f64((n as f64 / rate.max(1.0)).clamp(1e-5, 10.0));
            let mut i = tokio::time::interval_at(
                tokio::time::Instant::now() + period.mul_f64(f64::from(me) / n as f64),
                period,
            );
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            Some(i)
        }
        Pace::Closed => None,
    };
    let mut request_id = 1u64;
    while Instant::now() < until {
        match &mut interval {
            Some(i) => {
                i.tick().await;
                match sem.try_acquire() {
                    Ok(p) => p.forget(),
                    Err(_) => {
                        shared.skipped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            }
            None => match tokio::time::timeout_at(until.into(), sem.acquire()).await {
                Ok(Ok(p)) => p.forget(),
                _ => return,
            },
        }
        let p = payload(base, me, len);
        request_id += 1;
        let m = match target {
            Target::Forwarder => {
                let mut b = Vec::with_capacity(32 + p.len());
                b.extend_from_slice(&to);
                b.extend_from_slice(&p);
                Message::Binary(b.into())
            }
            Target::Relay => frame(
                request_id,
                client_frame::Body::Send(Send {
                    messages: vec![Outgoing { recipient_device: to.to_vec(), payload: p, online_only: false }],
                }),
            ),
        };
        if tx.send(m).is_err() {
            return;
        }
    }
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1_000.0
}

async fn phase(target: Target, addr: SocketAddr, o: &Opts, pace: Pace) -> Res<PhaseResult> {
    let (conns, err) = open_many(target, addr, o.devices, 32, true).await;
    if let Some(e) = err {
        return Err(format!("opening {} devices on the {target:?}: {e}", o.devices));
    }
    let n = conns.len();
    let keys: Vec<[u8; 32]> = conns.iter().map(|(id, _)| id.device_key().to_bytes()).collect();
    let sems: Arc<Vec<Arc<Semaphore>>> = Arc::new((0..n).map(|_| Arc::new(Semaphore::new(o.window))).collect());
    let shared = Arc::new(Shared::default());
    let base = Instant::now();
    let until = base + o.warmup + o.secs;
    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    let mut senders = Vec::new();
    for (i, (_, ws)) in conns.into_iter().enumerate() {
        let (sink, stream) = ws.split();
        let (tx, rx) = mpsc::unbounded_channel();
        tasks.push(tokio::spawn(write_loop(sink, rx)));
        tasks.push(tokio::spawn(read_loop(target, stream, tx.clone(), shared.clone(), sems.clone(), base)));
        senders.push(tokio::spawn(send_loop(Sender {
            target,
            me: i as u32,
            to: keys[(i + 1) % n],
            tx,
            shared: shared.clone(),
            sem: sems[i].clone(),
            pace,
            n,
            len: o.payload,
            base,
            until,
        })));
    }
    tokio::time::sleep(o.warmup).await;
    shared.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep_until(until.into()).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for s in senders {
        let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
    }
    // Let in-flight messages drain (acks reach the relay) before closing the sockets.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for t in tasks {
        t.abort();
    }
    let mut lat = shared.latencies_us.lock().map(|l| l.clone()).unwrap_or_default();
    lat.sort_unstable();
    Ok(PhaseResult {
        msgs_per_s: shared.received.load(Ordering::Relaxed) as f64 / elapsed,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().map_or(f64::NAN, |m| f64::from(*m) / 1_000.0),
        errors: shared.errors.load(Ordering::Relaxed),
        skipped: shared.skipped.load(Ordering::Relaxed),
        first_error: shared.first_error.lock().ok().and_then(|f| f.clone()),
    })
}

fn print_phase(name: &str, r: &PhaseResult) {
    println!(
        "{name:<34} {:>10.0} msg/s   p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms   errors {}   skipped {}",
        r.msgs_per_s, r.p50_ms, r.p99_ms, r.max_ms, r.errors, r.skipped
    );
    if let Some(e) = &r.first_error {
        println!("{:<34} first error: {e}", "");
    }
}

// ---------------------------------------------------------------------------------------------
// Idle connections

/// Opens idle connections in steps (`counts`, cumulative) to a fresh process and prints RSS per
/// connection at each step. Returns (count reached, KiB per connection) for each step reached.
async fn idle(target: Target, proc: &Proc, counts: &[usize], fd_limit: u64) -> Res<Vec<(usize, f64)>> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(proc.pid())?;
    println!("  {target:?} RSS before: {before} KiB");
    let mut held: Vec<(DeviceIdentity, Ws)> = Vec::new();
    let mut out = Vec::new();
    for &want in counts {
        // Every client socket is an fd here, plus a few for the runtime and the children.
        let cap = (fd_limit.saturating_sub(64)) as usize;
        let target_n = want.min(cap);
        if target_n < want {
            println!("  only {target_n} of {want}: this process's open-file limit is {fd_limit}");
        }
        let t0 = Instant::now();
        let (more, err) = open_many(target, proc.addr, target_n.saturating_sub(held.len()), 64, false).await;
        held.extend(more);
        if let Some(e) = err {
            println!("  stopped at {} connections: {e}", held.len());
        }
        let opened = t0.elapsed();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = rss_kib(proc.pid())?;
        let n = held.len();
        let per = (after.saturating_sub(before)) as f64 / n.max(1) as f64;
        println!(
            "  {target:?} {n:>6} idle connections: RSS {after} KiB (+{} KiB) = {per:.1} KiB/connection (opened in {:.1} s)",
            after.saturating_sub(before),
            opened.as_secs_f64()
        );
        out.push((n, per));
        if n < target_n {
            break;
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------

async fn run(o: Opts) -> Res<()> {
    let started = Instant::now();
    let fd_limit = raise_fd_limit();
    println!(
        "relay-load: {} devices, window {}, {} B payloads, {} s per phase (+{} s warm-up), idle {:?}",
        o.devices,
        o.window,
        o.payload,
        o.secs.as_secs(),
        o.warmup.as_secs(),
        o.idle
    );
    println!("open-file limit {fd_limit}, load average at start {}", load_average());

    let relay = spawn_relay(&o.relay_bin).await?;
    let fwd = spawn_forwarder().await?;
    let f_peak = phase(Target::Forwarder, fwd.addr, &o, Pace::Closed).await?;
    print_phase("forwarder, peak (closed loop)", &f_peak);
    let m0 = relay_metrics(relay.addr).await.unwrap_or_else(|e| format!("# {e}"));
    let r_peak = phase(Target::Relay, relay.addr, &o, Pace::Closed).await?;
    print_phase("relay SQLite, peak (closed loop)", &r_peak);
    let m1 = relay_metrics(relay.addr).await.unwrap_or_default();
    let ((s0, c0), (s1, c1)) =
        (histogram(&m0, "hush_relay_commit_latency_seconds"), histogram(&m1, "hush_relay_commit_latency_seconds"));
    let ((d0, e0), (d1, e1)) =
        (histogram(&m0, "hush_relay_delivery_latency_seconds"), histogram(&m1, "hush_relay_delivery_latency_seconds"));
    println!(
        "{:<34} relay /metrics during peak: {:.0} commits (sends + acks), mean {:.2} ms; {:.0} deliveries, mean arrival→write {:.2} ms",
        "",
        c1 - c0,
        (s1 - s0) / (c1 - c0).max(1.0) * 1e3,
        e1 - e0,
        (d1 - d0) / (e1 - e0).max(1.0) * 1e3
    );
    let r_half = phase(Target::Relay, relay.addr, &o, Pace::Open { rate: r_peak.msgs_per_s / 2.0 }).await?;
    print_phase(&format!("relay, half peak ({:.0}/s offered)", r_peak.msgs_per_s / 2.0), &r_half);
    let f_half = phase(Target::Forwarder, fwd.addr, &o, Pace::Open { rate: f_peak.msgs_per_s / 2.0 }).await?;
    print_phase(&format!("forwarder, half peak ({:.0}/s offered)", f_peak.msgs_per_s / 2.0), &f_half);
    let same = phase(Target::Forwarder, fwd.addr, &o, Pace::Open { rate: r_peak.msgs_per_s / 2.0 }).await?;
    print_phase(&format!("forwarder at the relay's half ({:.0}/s)", r_peak.msgs_per_s / 2.0), &same);
    let relay_rss_loaded = rss_kib(relay.pid())?;
    drop(relay);
    drop(fwd);
    println!("relay RSS after the load phases: {relay_rss_loaded} KiB; load average {}", load_average());

    println!("idle connections (fresh processes):");
    let relay = spawn_relay(&o.relay_bin).await?;
    let r_idle = idle(Target::Relay, &relay, &o.idle, fd_limit).await?;
    drop(relay);
    let f_idle = if o.forwarder_idle {
        let fwd = spawn_forwarder().await?;
        let r = idle(Target::Forwarder, &fwd, &o.idle, fd_limit).await?;
        drop(fwd);
        r
    } else {
        Vec::new()
    };

    println!();
    println!("summary (load average {}, {:.0} s total)", load_average(), started.elapsed().as_secs_f64());
    let ratio = r_peak.msgs_per_s / f_peak.msgs_per_s.max(1.0);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!("  relay/forwarder throughput      {ratio:.2}x  (goal >= 0.5x: {})", verdict(ratio >= 0.5));
    println!(
        "  relay p99 at half peak          {:.2} ms  (goal < 10 ms: {})",
        r_half.p99_ms,
        verdict(r_half.p99_ms < 10.0)
    );
    for (n, per) in &r_idle {
        println!(
            "  relay RSS per idle connection   {per:.1} KiB at {n}  (goal <= 30 KB: {})",
            verdict(per * 1.024 <= 30.0)
        );
    }
    for (n, per) in &f_idle {
        println!("  forwarder RSS per idle conn.    {per:.1} KiB at {n}");
    }
    Ok(())
}
