//! The Rust client transport (what native bindings use): one WebSocket to a relay, authenticated
//! with the device key, reconnecting with exponential backoff and jitter. On every reconnect it
//! authenticates again and re-subscribes presence; the relay then re-sends every message not acked
//! yet, so delivery resumes where it stopped (at least once; the client dedupes by message id).
//!
//! It only moves frames: requests in, answers and pushed envelopes out. Driving hush-core's client
//! state machine on top of it is the bindings' job.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hush_core::DeviceIdentity;
use hush_core::wire::relay::{
    Ack, ClientFrame, Envelope, Presence, ServerFrame, SubscribePresence, client_frame::Body as Req,
    server_frame::Body as Resp,
};
use prost::Message as _;
use rand_core::{OsRng, RngCore};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use hush_core::limits::RELAY_PROTOCOL_VERSION as PROTOCOL_VERSION;

use crate::messenger::now_ms;

/// How a client connects.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The relay's WebSocket URL, e.g. `wss://relay.example/v1/ws`.
    pub url: String,
    /// Registration secret, for relays that require one from new devices.
    pub registration_secret: Option<String>,
    /// First reconnect delay; doubles up to `max_backoff`, with up to 50 % random jitter.
    pub min_backoff: Duration,
    /// Longest reconnect delay.
    pub max_backoff: Duration,
    /// How long a request waits for its answer (including time spent reconnecting).
    pub request_timeout: Duration,
    /// DER certificates trusted for `wss://` besides the webpki (Mozilla) roots: a self-hosted
    /// relay's own CA, or a test certificate.
    pub extra_root_certs: Vec<Vec<u8>>,
}

impl ClientConfig {
    /// Defaults for `url`: backoff 250 ms … 30 s, requests time out after 30 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            registration_secret: None,
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            extra_root_certs: Vec::new(),
        }
    }
}

/// What the transport reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// Connected and authenticated (again, after a reconnect).
    Connected,
    /// The socket closed; a reconnect is scheduled.
    Disconnected,
    /// A connection attempt failed (the relay cannot be reached, or is not a hush relay); the
    /// next attempt is in `retry_in`.
    Unreachable {
        /// Why the attempt failed.
        reason: String,
        /// When the next attempt starts.
        retry_in: Duration,
    },
    /// A message from the relay's queue (id > 0, ack it after your own commit) or live (id 0).
    Envelope(Envelope),
    /// A watched device went online or offline.
    Presence(Presence),
    /// The relay refused authentication; the transport stopped.
    AuthRefused(String),
    /// The relay refused the login of a device its user removed, answering with the user's
    /// current signed device list (docs/PROTOCOL.md §15.3); the transport stopped. Hand the list to
    /// `Client::handle_removal`, which checks it before the device wipes itself.
    Removed(Vec<u8>),
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The connection dropped before the answer came; the request may or may not have been applied.
    #[error("disconnected before the answer")]
    Disconnected,
    /// No answer within the request timeout.
    #[error("request timed out")]
    Timeout,
    /// The transport stopped (closed, or authentication refused).
    #[error("client stopped")]
    Stopped,
}

#[derive(Debug)]
enum Command {
    Request(Req, oneshot::Sender<Result<Resp, ClientError>>),
}

/// Sends requests over a running [`RelayClient`]; cheap to clone.
#[derive(Clone, Debug)]
pub struct Requester {
    commands: mpsc::Sender<Command>,
    request_timeout: Duration,
}

impl Requester {
    /// Sends a request and waits for the relay's answer (an `Error` frame is an answer too).
    pub async fn request(&self, body: Req) -> Result<Resp, ClientError> {
        self.start(body).await?.await
    }

    /// Queues a request and returns the wait for its answer. Requests queued one after the other
    /// reach the relay in that order, whatever order their answers are awaited in.
    pub async fn start(
        &self,
        body: Req,
    ) -> Result<impl Future<Output = Result<Resp, ClientError>> + Send + 'static, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Request(body, tx)).await.map_err(|_| ClientError::Stopped)?;
        let timeout = self.request_timeout;
        Ok(async move {
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => Err(ClientError::Stopped),
                Err(_) => Err(ClientError::Timeout),
            }
        })
    }
}

/// A running client transport.
pub struct RelayClient {
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<ClientEvent>,
    request_timeout: Duration,
    task: JoinHandle<()>,
}

impl RelayClient {
    /// Starts connecting in the background as `identity`.
    pub fn spawn(config: ClientConfig, identity: DeviceIdentity) -> Self {
        let (commands, command_rx) = mpsc::channel(64);
        let (event_tx, events) = mpsc::channel(1024);
        let request_timeout = config.request_timeout;
        let task = tokio::spawn(run(config, identity, command_rx, event_tx));
        Self { commands, events, request_timeout, task }
    }

    /// Sends a request and waits for the relay's answer (an `Error` frame is an answer too).
    pub async fn request(&self, body: Req) -> Result<Resp, ClientError> {
        self.requester().request(body).await
    }

    /// A handle that sends requests from other tasks (the event stream stays with `self`).
    pub fn requester(&self) -> Requester {
        Requester { commands: self.commands.clone(), request_timeout: self.request_timeout }
    }

    /// Acks queued messages after the caller's own transaction committed.
    pub async fn ack(&self, ids: Vec<u64>) -> Result<Resp, ClientError> {
        self.request(Req::Ack(Ack { ids })).await
    }

    /// The next event; `None` once the transport stopped.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        self.events.recv().await
    }

    /// The next event if one is already waiting, without waiting (to gather the envelopes that
    /// arrived together into one batch).
    pub fn try_next_event(&mut self) -> Option<ClientEvent> {
        self.events.try_recv().ok()
    }

    /// Stops the transport and closes the socket.
    pub async fn close(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Why a connection attempt or session ended.
enum End {
    /// Try again after a backoff (why).
    Retry(String),
    /// Stop for good: the owner went away.
    Stop,
    /// Stop for good: the relay refused authentication (the detail it gave).
    Refused(String),
    /// Stop for good: the relay refused a removed device, with the list that removed it.
    Removed(Vec<u8>),
}

async fn run(
    config: ClientConfig,
    identity: DeviceIdentity,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<ClientEvent>,
) {
    let mut backoff = config.min_backoff;
    let mut watched: Option<Vec<Vec<u8>>> = None;
    loop {
        // Why the attempt failed, when it did (a session that ended reported Disconnected).
        let failed = match connect(&config, &identity).await {
            Ok(ws) => {
                backoff = config.min_backoff;
                if events.send(ClientEvent::Connected).await.is_err() {
                    return;
                }
                match session(ws, &mut commands, &events, &mut watched).await {
                    End::Stop | End::Refused(_) | End::Removed(_) => return,
                    End::Retry(_) => {
                        if events.send(ClientEvent::Disconnected).await.is_err() {
                            return;
                        }
                    }
                }
                None
            }
            Err(End::Refused(detail)) => {
                let _ = events.send(ClientEvent::AuthRefused(detail)).await;
                return;
            }
            Err(End::Removed(list)) => {
                let _ = events.send(ClientEvent::Removed(list)).await;
                return;
            }
            Err(End::Stop) => return,
            Err(End::Retry(reason)) => Some(reason),
        };
        let retry_in = with_jitter(backoff);
        if let Some(reason) = failed
            && events.send(ClientEvent::Unreachable { reason, retry_in }).await.is_err()
        {
            return;
        }
        tokio::time::sleep(retry_in).await;
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

/// `backoff` plus up to 50 % of it at random (so clients do not reconnect in step).
fn with_jitter(backoff: Duration) -> Duration {
    backoff + Duration::from_millis(OsRng.next_u64() % (backoff.as_millis() as u64 / 2 + 1))
}

fn encode(request_id: u64, body: Req) -> Message {
    Message::Binary(ClientFrame { version: PROTOCOL_VERSION, request_id, body: Some(body) }.encode_to_vec().into())
}

async fn next_frame(ws: &mut Socket) -> Option<ServerFrame> {
    loop {
        match ws.next().await? {
            Ok(Message::Binary(b)) => return ServerFrame::decode(b.as_ref()).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Connects and authenticates; an auth refusal stops the transport (retrying cannot help).
async fn connect(config: &ClientConfig, identity: &DeviceIdentity) -> Result<Socket, End> {
    // wss:// goes through rustls with the webpki roots and the configured extra ones.
    let connector = if config.url.starts_with("wss://") {
        let tls = crate::tls::client_config(&config.extra_root_certs).map_err(|e| End::Refused(e.to_string()))?;
        Some(tokio_tungstenite::Connector::Rustls(tls))
    } else {
        None
    };
    // `true`: no Nagle (small frames would wait for the relay's delayed ACK).
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(config.url.as_str(), None, true, connector)
        .await
        .map_err(|e| {
            tracing::debug!(error = %e, "connecting to the relay failed");
            End::Retry(format!("cannot connect: {e}"))
        })?;
    let challenge = match next_frame(&mut ws).await.and_then(|f| f.body) {
        Some(Resp::Challenge(c)) => c,
        _ => return Err(End::Retry("no challenge from the relay (not a hush relay?)".into())),
    };
    let mut response = hush_core::client::answer_challenge(identity, &challenge, now_ms() / 1000, None);
    response.registration_secret = config.registration_secret.clone().unwrap_or_default();
    ws.send(encode(1, Req::Auth(response))).await.map_err(|e| End::Retry(format!("sending the auth failed: {e}")))?;
    match next_frame(&mut ws).await {
        Some(ServerFrame { request_id: 1, body: Some(Resp::Ok(_)), .. }) => Ok(ws),
        Some(ServerFrame { request_id: 1, body: Some(Resp::DeviceList(l)), .. }) => {
            tracing::warn!("the relay refused this device: its user removed it");
            Err(End::Removed(l.signed_device_list))
        }
        Some(ServerFrame { request_id: 1, body: Some(Resp::Error(e)), .. }) => {
            tracing::warn!(code = e.code, detail = %e.detail, "relay refused authentication");
            Err(End::Refused(e.detail))
        }
        _ => Err(End::Retry("no answer to the auth".into())),
    }
}

async fn session(
    mut ws: Socket,
    commands: &mut mpsc::Receiver<Command>,
    events: &mpsc::Sender<ClientEvent>,
    watched: &mut Option<Vec<Vec<u8>>>,
) -> End {
    // Ids 1 (auth) and 2 (presence resubscription) are the transport's own.
    let mut next_id = 3u64;
    let mut pending: HashMap<u64, oneshot::Sender<Result<Resp, ClientError>>> = HashMap::new();
    if let Some(keys) = watched.clone() {
        let resubscribe = Req::SubscribePresence(SubscribePresence { device_keys: keys });
        if ws.send(encode(2, resubscribe)).await.is_err() {
            return End::Retry("the connection closed".into());
        }
    }
    let end = loop {
        tokio::select! {
            frame = next_frame(&mut ws) => {
                let Some(frame) = frame else { break End::Retry("the connection closed".into()) };
                let event = match frame.body {
                    // The state machine takes envelopes in batches, not frames: the version is checked here.
                    Some(Resp::Envelope(e)) if frame.request_id == 0 && frame.version == PROTOCOL_VERSION => {
                        Some(ClientEvent::Envelope(e))
                    }
                    Some(Resp::Presence(p)) if frame.request_id == 0 => Some(ClientEvent::Presence(p)),
                    Some(body) => {
                        if let Some(reply) = pending.remove(&frame.request_id) {
                            let _ = reply.send(Ok(body));
                        }
                        None
                    }
                    None => None,
                };
                if let Some(event) = event
                    && events.send(event).await.is_err()
                {
                    break End::Stop;
                }
            }
            command = commands.recv() => {
                let Some(Command::Request(body, reply)) = command else { break End::Stop };
                if let Req::SubscribePresence(s) = &body {
                    *watched = Some(s.device_keys.clone());
                }
                let id = next_id;
                next_id += 1;
                if ws.send(encode(id, body)).await.is_err() {
                    let _ = reply.send(Err(ClientError::Disconnected));
                    break End::Retry("the connection closed".into());
                }
                pending.insert(id, reply);
            }
        }
    };
    for (_, reply) in pending.drain() {
        let _ = reply.send(Err(ClientError::Disconnected));
    }
    let _ = ws.close(None).await;
    end
}
