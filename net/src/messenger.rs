//! The native client: hush-core's sans-IO [`Client`] driven over the [`RelayClient`] transport
//! (docs/PROTOCOL.md §16). This is what the uniffi bindings wrap.
//!
//! One background task owns the transport's event stream. It feeds pushed envelopes, presence and
//! connection changes into the state machine, sends what the state machine wants sent — always
//! through one queue, so requests reach the relay in the order the state machine made them — and
//! feeds each answer back in. Application calls ([`Messenger::with_client`]) lock the state machine,
//! act, and queue its frames the same way. Events go out on a channel.
//!
//! Attachments: [`BlobClient::upload_attachment`] encrypts and PUTs a blob with an upload token
//! fetched over the socket; [`BlobClient::download_attachment`] GETs and decrypts one.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hush_core::attachment;
use hush_core::content::AttachmentPointer;
use hush_core::wire::relay::{RequestUploadToken, ServerFrame, client_frame::Body as Req, server_frame::Body as Resp};
use hush_core::{Client, Event};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::{ClientConfig, ClientError, ClientEvent, RelayClient, Requester};

/// How often the state machine's timers run (disappearing messages, send retries).
const TICK: Duration = Duration::from_secs(5);

/// Most envelopes handed to the state machine as one batch: the relay's delivery window (it never
/// has more than that unacked on one socket), so a backlog drains one window per commit.
const MAX_ENVELOPE_BATCH: usize = 256;

/// What the application hears.
// Events move once, through a channel; boxing the common variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessengerEvent {
    /// Something from the state machine (a message, a receipt, …).
    Client(Event),
    /// The connection changed.
    Connection(ConnectionState),
}

/// The state of the connection to the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Authenticated; messages flow.
    Connected,
    /// Lost; reconnecting with backoff.
    Disconnected,
    /// A connection attempt failed (why); the next one starts in `retry_in_ms`.
    Unreachable {
        /// Why the attempt failed (cannot connect, not a hush relay, …).
        reason: String,
        /// Milliseconds until the next attempt.
        retry_in_ms: u64,
    },
    /// The relay refused this device (the detail it gave); the transport stopped.
    Refused(String),
}

/// Why a messenger call failed.
#[derive(Debug, thiserror::Error)]
pub enum MessengerError {
    /// The state machine refused (bad input, no session, …).
    #[error(transparent)]
    Core(#[from] hush_core::Error),
    /// The relay could not be reached or did not answer.
    #[error("relay unreachable: {0}")]
    Transport(#[from] ClientError),
    /// The relay answered with an error.
    #[error("relay refused: {0}")]
    Relay(String),
    /// A blob upload or download failed.
    #[error("blob transfer failed: {0}")]
    Http(String),
    /// The messenger was stopped.
    #[error("stopped")]
    Stopped,
}

enum Command {
    /// Frames the state machine produced, to send in order.
    Frames(Vec<hush_core::wire::relay::ClientFrame>),
    /// The answer (or the loss) of one request.
    Answer(u64, Result<Resp, ClientError>),
}

/// A running native client. Dropping it stops the background task and closes the socket.
pub struct Messenger {
    client: Arc<Mutex<Client>>,
    commands: mpsc::UnboundedSender<Command>,
    requester: Requester,
    blob_url: String,
    task: JoinHandle<()>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Messenger {
    /// Starts connecting `client` to the relay at `config.url`; events arrive on the returned
    /// receiver until the messenger is dropped.
    pub fn start(client: Client, config: ClientConfig) -> (Self, mpsc::UnboundedReceiver<MessengerEvent>) {
        Self::start_shared(Arc::new(Mutex::new(client)), config)
    }

    /// [`start`](Self::start) for a state machine the caller keeps a handle to (to read history
    /// while offline, and to go on after [`stop`](Self::stop)).
    pub fn start_shared(
        client: Arc<Mutex<Client>>,
        config: ClientConfig,
    ) -> (Self, mpsc::UnboundedReceiver<MessengerEvent>) {
        let blob_url = blob_url(&config.url);
        let identity = lock(&client).device_identity().clone();
        let transport = RelayClient::spawn(config, identity);
        let requester = transport.requester();
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(client.clone(), transport, commands.clone(), command_rx, event_tx));
        (Self { client, commands, requester, blob_url, task }, events)
    }

    /// Runs `f` on the state machine with the current time, then sends what it queued.
    pub fn with_client<T>(
        &self,
        f: impl FnOnce(&mut Client, u64) -> hush_core::Result<T>,
    ) -> Result<T, MessengerError> {
        let mut client = lock(&self.client);
        let out = f(&mut client, now_ms());
        // Queued under the lock, so frames keep the state machine's order.
        let frames = client.take_outgoing();
        if !frames.is_empty() {
            self.commands.send(Command::Frames(frames)).map_err(|_| MessengerError::Stopped)?;
        }
        Ok(out?)
    }

    /// Uploads and downloads attachments over this messenger's relay.
    pub fn blob_client(&self) -> BlobClient {
        BlobClient { requester: self.requester.clone(), blob_url: self.blob_url.clone() }
    }

    /// Stops the background task, closes the socket and waits until both are gone. The state
    /// machine is told it is offline (its sends stay in the outbox).
    pub async fn stop(mut self) {
        self.task.abort();
        let task = core::mem::replace(&mut self.task, tokio::spawn(async {}));
        let _ = task.await;
        lock(&self.client).on_disconnected();
    }
}

impl Drop for Messenger {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Attachment transfers: an upload token over the socket, then HTTP to the relay's blob store.
#[derive(Clone, Debug)]
pub struct BlobClient {
    requester: Requester,
    blob_url: String,
}

impl BlobClient {
    /// Encrypts `bytes`, uploads the blob and returns the pointer to send.
    pub async fn upload_attachment(
        &self,
        bytes: &[u8],
        mime: &str,
        file_name: Option<String>,
    ) -> Result<AttachmentPointer, MessengerError> {
        let (blob, encryption) =
            attachment::encrypt_bytes(&mut rand_core::OsRng, bytes, hush_core::limits::DEFAULT_MAX_ATTACHMENT_BYTES)?;
        let token = match self.requester.request(Req::RequestUploadToken(RequestUploadToken {})).await? {
            Resp::UploadToken(t) => t.token,
            Resp::Error(e) => return Err(MessengerError::Relay(e.detail)),
            _ => return Err(MessengerError::Relay("unexpected answer".into())),
        };
        let id = http_put(&self.blob_url, &token, blob).await?;
        Ok(AttachmentPointer {
            blob_id: id.into_bytes(),
            encryption,
            mime: mime.to_owned(),
            thumbnail: None,
            file_name,
        })
    }

    /// Downloads and decrypts an attachment (at most `cap` bytes of plaintext).
    pub async fn download_attachment(&self, pointer: &AttachmentPointer, cap: u64) -> Result<Vec<u8>, MessengerError> {
        let id = String::from_utf8(pointer.blob_id.clone()).map_err(|_| MessengerError::Http("bad blob id".into()))?;
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(MessengerError::Http("bad blob id".into()));
        }
        let blob = http_get(&format!("{}/{id}", self.blob_url)).await?;
        Ok(attachment::decrypt_bytes(&blob, &pointer.encryption, cap)?)
    }
}

/// Locks the state machine (a poisoned lock is taken as it is; see the comment inside).
pub fn lock(client: &Mutex<Client>) -> MutexGuard<'_, Client> {
    // A panic while holding the lock leaves the state machine as the last commit left it: its
    // in-memory state is rebuilt from the store on every call that matters, so go on.
    client.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn run(
    client: Arc<Mutex<Client>>,
    mut transport: RelayClient,
    commands: mpsc::UnboundedSender<Command>,
    mut command_rx: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<MessengerEvent>,
) {
    let requester = transport.requester();
    let mut tick = tokio::time::interval(TICK);
    // Runs `f` on the state machine, reports its events and queues its frames.
    let drive = |f: &mut dyn FnMut(&mut Client, u64) -> hush_core::Result<Vec<Event>>| {
        let mut c = lock(&client);
        match f(&mut c, now_ms()) {
            Ok(list) => {
                for e in list {
                    let _ = events.send(MessengerEvent::Client(e));
                }
            }
            Err(e) => tracing::warn!(error = %e, "client state machine error"),
        }
        let frames = c.take_outgoing();
        if !frames.is_empty() {
            let _ = commands.send(Command::Frames(frames));
        }
    };
    // An event taken while gathering a batch of envelopes, handled next.
    let mut held: Option<ClientEvent> = None;
    loop {
        let event = match held.take() {
            Some(event) => event,
            None => tokio::select! {
                event = transport.next_event() => {
                    let Some(event) = event else { return };
                    event
                }
                command = command_rx.recv() => {
                    let Some(command) = command else { return };
                    match command {
                        Command::Frames(frames) => {
                            for frame in frames {
                                let (id, Some(body)) = (frame.request_id, frame.body) else { continue };
                                match requester.start(body).await {
                                    Ok(answer) => {
                                        let commands = commands.clone();
                                        tokio::spawn(async move {
                                            let _ = commands.send(Command::Answer(id, answer.await));
                                        });
                                    }
                                    Err(_) => drive(&mut |c, _| {
                                        c.request_failed(id);
                                        Ok(Vec::new())
                                    }),
                                }
                            }
                        }
                        Command::Answer(id, Ok(body)) => {
                            let mut frame = Some(ServerFrame { version: hush_core::limits::RELAY_PROTOCOL_VERSION, request_id: id, body: Some(body) });
                            drive(&mut |c, now| frame.take().map_or(Ok(Vec::new()), |f| c.handle_frame(f, now)));
                        }
                        Command::Answer(id, Err(_)) => drive(&mut |c, _| {
                            c.request_failed(id);
                            Ok(Vec::new())
                        }),
                    }
                    continue;
                }
                _ = tick.tick() => {
                    drive(&mut |c, now| c.tick(now));
                    continue;
                }
            },
        };
        match event {
            ClientEvent::Connected => {
                drive(&mut |c, now| c.on_connected(now).map(|()| Vec::new()));
                let _ = events.send(MessengerEvent::Connection(ConnectionState::Connected));
            }
            ClientEvent::Disconnected => {
                drive(&mut |c, _| {
                    c.on_disconnected();
                    Ok(Vec::new())
                });
                let _ = events.send(MessengerEvent::Connection(ConnectionState::Disconnected));
            }
            ClientEvent::Envelope(e) => {
                // Every envelope already waiting goes in one batch: one store transaction (one
                // fsync) and one ack frame for all of them (docs/PROTOCOL.md §16.3).
                let mut batch = vec![e];
                while batch.len() < MAX_ENVELOPE_BATCH {
                    match transport.try_next_event() {
                        Some(ClientEvent::Envelope(e)) => batch.push(e),
                        other => {
                            held = other;
                            break;
                        }
                    }
                }
                let mut batch = Some(batch);
                drive(&mut |c, now| batch.take().map_or(Ok(Vec::new()), |b| c.handle_envelopes(b, now)));
            }
            ClientEvent::Presence(p) => {
                let mut frame = Some(ServerFrame {
                    version: hush_core::limits::RELAY_PROTOCOL_VERSION,
                    request_id: 0,
                    body: Some(Resp::Presence(p)),
                });
                drive(&mut |c, now| frame.take().map_or(Ok(Vec::new()), |f| c.handle_frame(f, now)));
            }
            ClientEvent::Unreachable { reason, retry_in } => {
                let retry_in_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX);
                let state = ConnectionState::Unreachable { reason, retry_in_ms };
                let _ = events.send(MessengerEvent::Connection(state));
            }
            ClientEvent::AuthRefused(detail) => {
                let _ = events.send(MessengerEvent::Connection(ConnectionState::Refused(detail)));
                return;
            }
            ClientEvent::Removed(list) => {
                // Event::DeviceRemoved (and a wiped store) if the list proves the removal.
                drive(&mut |c, _| c.handle_removal(&list));
                let refused = ConnectionState::Refused("this device was removed by its user".into());
                let _ = events.send(MessengerEvent::Connection(refused));
                return;
            }
        }
    }
}

/// `ws://host:port/v1/ws` → `http://host:port/v1/blobs` (and wss → https).
fn blob_url(ws_url: &str) -> String {
    let base = ws_url.strip_suffix("/v1/ws").unwrap_or(ws_url).trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = base.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        base.to_owned()
    };
    format!("{base}/v1/blobs")
}

async fn http_put(url: &str, token: &str, body: Vec<u8>) -> Result<String, MessengerError> {
    let request = hyper::Request::put(url)
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
        .map_err(|e| MessengerError::Http(e.to_string()))?;
    // The relay answers `{"id":"<hex>","size":N}`.
    let bytes = send(request).await?;
    let text = String::from_utf8(bytes).map_err(|_| MessengerError::Http("bad upload answer".into()))?;
    text.split_once("\"id\":\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(id, _)| id.to_owned())
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| MessengerError::Http("bad upload answer".into()))
}

async fn http_get(url: &str) -> Result<Vec<u8>, MessengerError> {
    let request = hyper::Request::get(url)
        .body(http_body_util::Full::new(hyper::body::Bytes::new()))
        .map_err(|e| MessengerError::Http(e.to_string()))?;
    send(request).await
}

async fn send(request: hyper::Request<http_body_util::Full<hyper::body::Bytes>>) -> Result<Vec<u8>, MessengerError> {
    use http_body_util::BodyExt as _;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let response = client.request(request).await.map_err(|e| MessengerError::Http(e.to_string()))?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| MessengerError::Http(e.to_string()))?.to_bytes();
    if !status.is_success() {
        return Err(MessengerError::Http(format!("HTTP {status}")));
    }
    Ok(body.to_vec())
}

#[cfg(test)]
mod tests {
    use super::blob_url;

    #[test]
    fn blob_urls_follow_the_socket_url() {
        assert_eq!(blob_url("ws://127.0.0.1:8080/v1/ws"), "http://127.0.0.1:8080/v1/blobs");
        assert_eq!(blob_url("wss://relay.example/v1/ws"), "https://relay.example/v1/blobs");
    }
}
