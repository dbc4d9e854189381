//! One device's WebSocket: the challenge, auth, requests, and delivery of queued messages (on
//! connect and when new mail is committed), presence and online-only frames.
//!
//! Pipelining: when the backend queues writes in call order ([`Storage::submits_in_order`], SQLite),
//! sends and acks do not wait for their commit before the next request is read. Each one's write is
//! queued as it arrives (so a socket's writes are applied in arrival order) and its answer is written
//! once its own commit is done, answers in request order. At most [`MAX_PIPELINED`] are in flight; any
//! other request first waits for every answer before it (so it sees their writes), then runs alone.
//!
//! [`Storage::submits_in_order`]: crate::storage::Storage::submits_in_order

use std::collections::HashSet;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use hush_core::wire::relay::{
    Challenge, DeviceListResult, Envelope, ServerFrame, SubscribePresence, client_frame::Body as Req,
    server_frame::Body as Resp,
};
use tokio::sync::{Notify, mpsc};

use crate::auth::{self, fingerprint};
use crate::error::RequestError;
use crate::frame;
use crate::hub::ConnHandle;
use crate::limits::{AUTH_TIMEOUT, DELIVERY_WINDOW, LIVE_QUEUE, MAX_PRESENCE_SUBSCRIPTIONS};
use crate::requests;
use crate::state::{RelayState, now_ms, now_secs};
use crate::storage::DeviceId;

/// Most sends and acks of one socket in flight (queued writes not yet answered); the socket is not
/// read while this many wait.
pub const MAX_PIPELINED: usize = 32;

/// A pipelined request's answer, ready once its write committed.
struct Answered {
    request_id: u64,
    result: Result<Resp, RequestError>,
    /// For an ack: the ids it acknowledged, out of flight once it committed.
    acked: Option<Vec<u64>>,
}

type Answer = Pin<Box<dyn Future<Output = Answered> + Send>>;

/// Whether the socket stays open after a frame.
enum Flow {
    Continue,
    Close,
}

struct Connection {
    state: Arc<RelayState>,
    id: u64,
    ip: IpAddr,
    /// The challenge, until an auth response used it.
    challenge: Option<Challenge>,
    device: Option<DeviceId>,
    wake: Arc<Notify>,
    live_tx: mpsc::Sender<ServerFrame>,
    watched: HashSet<DeviceId>,
    /// Queued messages written to this socket and not acked yet.
    in_flight: HashSet<u64>,
    /// Whether the last mailbox read filled the delivery window (more may wait behind it).
    window_full: bool,
    /// Pipelined requests not answered yet, in arrival order.
    answers: FuturesOrdered<Answer>,
}

/// Serves one upgraded socket until it closes or the relay shuts down.
pub async fn run(state: Arc<RelayState>, mut socket: WebSocket, ip: IpAddr) {
    state.metrics.connections.inc();
    state.metrics.connections_total.inc();
    let (live_tx, mut live_rx) = mpsc::channel(LIVE_QUEUE);
    let challenge = auth::new_challenge(&state.config.origin, now_secs());
    let mut conn = Connection {
        id: state.next_conn.fetch_add(1, Ordering::Relaxed),
        state: state.clone(),
        ip,
        challenge: Some(challenge.clone()),
        device: None,
        wake: Arc::new(Notify::new()),
        live_tx,
        watched: HashSet::new(),
        in_flight: HashSet::new(),
        window_full: false,
        answers: FuturesOrdered::new(),
    };
    if conn.send(&mut socket, frame::server(0, Resp::Challenge(challenge))).await.is_ok() {
        conn.serve(&mut socket, &mut live_rx).await;
    }
    if let Some(device) = conn.device {
        if state.hub.disconnect(device, conn.id, &conn.watched) {
            state.announce_presence(device, false).await;
        }
        state.metrics.authenticated.dec();
        tracing::debug!(device = %fingerprint(&device), conn = conn.id, "device disconnected");
    }
    state.metrics.connections.dec();
}

impl Connection {
    async fn serve(&mut self, socket: &mut WebSocket, live_rx: &mut mpsc::Receiver<ServerFrame>) {
        let mut idle_deadline = tokio::time::Instant::now() + AUTH_TIMEOUT;
        let shutdown = self.state.shutdown.clone();
        loop {
            let authed = self.device.is_some();
            let answering = !self.answers.is_empty();
            let room = self.answers.len() < MAX_PIPELINED;
            let wake = self.wake.clone();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    // Writes already queued commit regardless; their senders get the answers.
                    let _ = self.drain(socket).await;
                    let close = CloseFrame { code: 1001, reason: "relay shutting down".into() };
                    let _ = socket.send(Message::Close(Some(close))).await;
                    return;
                }
                // Only unauthenticated sockets (sealed senders) time out when silent.
                () = tokio::time::sleep_until(idle_deadline), if !authed => return,
                Some(answer) = self.answers.next(), if answering => {
                    if self.finish(socket, answer).await.is_err() {
                        return;
                    }
                }
                msg = socket.recv(), if room => {
                    idle_deadline = tokio::time::Instant::now() + AUTH_TIMEOUT;
                    let flow = match msg {
                        Some(Ok(Message::Binary(bytes))) => self.on_frame(socket, &bytes).await,
                        Some(Ok(Message::Text(_))) => {
                            self.refuse(socket, 0, &RequestError::Malformed("frame (text; frames are binary)")).await
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(Flow::Continue),
                        Some(Ok(Message::Close(_))) | None => return,
                        Some(Err(e)) => {
                            tracing::debug!(conn = self.id, error = %e, "socket error");
                            return;
                        }
                    };
                    match flow {
                        Ok(Flow::Continue) => {}
                        Ok(Flow::Close) | Err(()) => {
                            let _ = socket.send(Message::Close(None)).await;
                            return;
                        }
                    }
                }
                () = wake.notified(), if authed => {
                    if self.deliver_pending(socket).await.is_err() {
                        return;
                    }
                }
                Some(frame) = live_rx.recv() => {
                    if self.send(socket, frame).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Writes a frame; `Err` when the socket is gone.
    async fn send(&mut self, socket: &mut WebSocket, frame: ServerFrame) -> Result<(), ()> {
        self.state.metrics.frames_out.get_or_create(&[("type", frame::server_type(&frame))]).inc();
        socket.send(Message::Binary(frame::encode(&frame).into())).await.map_err(|_| ())
    }

    async fn refuse(&mut self, socket: &mut WebSocket, request_id: u64, error: &RequestError) -> Result<Flow, ()> {
        self.state.metrics.reject(error.reason());
        self.send(socket, frame::error(request_id, error)).await?;
        Ok(Flow::Continue)
    }

    /// Writes the answers of every pipelined request, in order.
    async fn drain(&mut self, socket: &mut WebSocket) -> Result<(), ()> {
        while let Some(answer) = self.answers.next().await {
            self.finish(socket, answer).await?;
        }
        Ok(())
    }

    /// Writes a pipelined request's answer; an ack's ids leave flight now that their deletes committed.
    async fn finish(&mut self, socket: &mut WebSocket, answer: Answered) -> Result<(), ()> {
        if let Some(ids) = answer.acked {
            ids.iter().for_each(|id| {
                self.in_flight.remove(id);
            });
            if self.window_full {
                // More mail may wait behind the window that just opened.
                self.wake.notify_one();
            }
        }
        match answer.result {
            Ok(body) => self.send(socket, frame::server(answer.request_id, body)).await,
            Err(e) => self.refuse(socket, answer.request_id, &e).await.map(|_| ()),
        }
    }

    fn pipeline(&mut self, request_id: u64, pending: requests::Pending, acked: Option<Vec<u64>>) {
        self.answers.push_back(Box::pin(async move { Answered { request_id, result: pending.await, acked } }));
    }

    async fn on_frame(&mut self, socket: &mut WebSocket, bytes: &[u8]) -> Result<Flow, ()> {
        let (request_id, body) = match frame::decode_client(bytes, self.state.config.max_frame_bytes) {
            Ok(decoded) => decoded,
            Err((request_id, e)) => {
                self.state.metrics.frames_in.get_or_create(&[("type", "invalid")]).inc();
                self.drain(socket).await?;
                return self.refuse(socket, request_id, &e).await;
            }
        };
        self.state.metrics.frames_in.get_or_create(&[("type", frame::client_type(&body))]).inc();
        let limited = self
            .state
            .ip_limits
            .take(&self.ip)
            .err()
            .or_else(|| self.device.and_then(|d| self.state.device_limits.take(&d).err()));
        if let Some(wait) = limited {
            self.drain(socket).await?;
            let retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            return self.refuse(socket, request_id, &RequestError::RateLimited { retry_after_ms }).await;
        }
        if let Some(device) = self.device.filter(|_| self.state.storage.submits_in_order()) {
            match body {
                Req::Send(m) => {
                    let pending = requests::submit_send(&self.state, device, m);
                    self.pipeline(request_id, pending, None);
                    return Ok(Flow::Continue);
                }
                Req::Ack(m) => {
                    let ids = m.ids.clone();
                    let pending = requests::submit_ack(&self.state, device, m);
                    self.pipeline(request_id, pending, Some(ids));
                    return Ok(Flow::Continue);
                }
                other => {
                    // Anything else sees the writes of the requests before it, and runs alone.
                    self.drain(socket).await?;
                    return self.dispatch(socket, request_id, other).await;
                }
            }
        }
        self.dispatch(socket, request_id, body).await
    }

    /// Runs one request to its answer before the next is read.
    async fn dispatch(&mut self, socket: &mut WebSocket, request_id: u64, body: Req) -> Result<Flow, ()> {
        let result = match body {
            Req::Auth(response) => return self.authenticate(socket, request_id, &response).await,
            Req::SealedSend(send) => requests::sealed_send(&self.state, send, self.device.is_some()).await,
            Req::GroupLogAppend(append) => requests::group_log_append(&self.state, self.device, append).await,
            Req::GroupLogFetch(fetch) => requests::group_log_fetch(&self.state, fetch).await,
            Req::SubscribePresence(sub) => self.require_auth().and_then(|_| self.subscribe(sub)),
            Req::Ack(ack) => match self.require_auth() {
                Ok(device) => {
                    ack.ids.iter().for_each(|id| {
                        self.in_flight.remove(id);
                    });
                    let result = requests::ack(&self.state, device, ack).await;
                    if self.window_full {
                        // More mail may wait behind the window that just opened.
                        self.wake.notify_one();
                    }
                    result
                }
                Err(e) => Err(e),
            },
            other => match self.require_auth() {
                Ok(device) => requests::handle(&self.state, device, other).await,
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(body) => {
                self.send(socket, frame::server(request_id, body)).await?;
                Ok(Flow::Continue)
            }
            Err(e) => self.refuse(socket, request_id, &e).await,
        }
    }

    fn require_auth(&self) -> Result<DeviceId, RequestError> {
        self.device.ok_or(RequestError::Unauthenticated("authenticate first"))
    }

    /// Answers an auth response; a failed attempt closes the socket (its challenge is spent).
    async fn authenticate(
        &mut self,
        socket: &mut WebSocket,
        request_id: u64,
        response: &hush_core::wire::relay::AuthResponse,
    ) -> Result<Flow, ()> {
        if self.device.is_some() {
            self.refuse(socket, request_id, &RequestError::Forbidden("already authenticated")).await?;
            return Ok(Flow::Continue);
        }
        let Some(challenge) = self.challenge.take() else {
            self.refuse(socket, request_id, &RequestError::Unauthenticated("challenge already used")).await?;
            return Ok(Flow::Close);
        };
        let device = match auth::verify(&challenge, response, now_secs()) {
            Ok(d) => d,
            Err(e) => {
                self.refuse(socket, request_id, &e).await?;
                return Ok(Flow::Close);
            }
        };
        // A device a newer list of its user left out (§15.5): no login; its answer is that list,
        // which the device verifies against its user key before it wipes itself.
        match self.state.storage.revoked_user(device).await {
            Ok(None) => {}
            Ok(Some(user)) => {
                let answer = match self.state.storage.device_list(user).await {
                    Ok(Some(signed_device_list)) => {
                        frame::server(request_id, Resp::DeviceList(DeviceListResult { signed_device_list }))
                    }
                    _ => frame::error(request_id, &RequestError::Forbidden("this device was removed")),
                };
                self.state.metrics.reject("removed");
                self.send(socket, answer).await?;
                return Ok(Flow::Close);
            }
            Err(e) => {
                self.refuse(socket, request_id, &RequestError::from(e)).await?;
                return Ok(Flow::Close);
            }
        }
        if let Err(e) = self.check_registration(device, &response.registration_secret).await {
            self.refuse(socket, request_id, &e).await?;
            return Ok(Flow::Close);
        }
        self.device = Some(device);
        self.state.metrics.authenticated.inc();
        let handle = ConnHandle { id: self.id, wake: self.wake.clone(), live: self.live_tx.clone() };
        if self.state.hub.connect(device, handle) {
            self.state.announce_presence(device, true).await;
        }
        tracing::debug!(device = %fingerprint(&device), conn = self.id, "device authenticated");
        self.send(socket, frame::server(request_id, Resp::Ok(Default::default()))).await?;
        // Queued mail goes out right after the auth answer.
        self.wake.notify_one();
        Ok(Flow::Continue)
    }

    async fn check_registration(&mut self, device: DeviceId, presented: &str) -> Result<(), RequestError> {
        let Some(secret) = &self.state.config.registration_secret else { return Ok(()) };
        if self.state.storage.is_registered(device).await.map_err(RequestError::from)? {
            return Ok(());
        }
        if auth::registration_secret_matches(presented, &secret.0) {
            Ok(())
        } else {
            Err(RequestError::Forbidden("this relay requires a registration secret for new devices"))
        }
    }

    fn subscribe(&mut self, sub: SubscribePresence) -> Result<Resp, RequestError> {
        if sub.device_keys.len() > MAX_PRESENCE_SUBSCRIPTIONS {
            return Err(RequestError::TooLarge {
                what: "presence subscription",
                size: sub.device_keys.len() as u64,
                max: MAX_PRESENCE_SUBSCRIPTIONS as u64,
            });
        }
        let new = sub
            .device_keys
            .iter()
            .map(|k| DeviceId::try_from(k.as_slice()).map_err(|_| RequestError::Malformed("device key")))
            .collect::<Result<HashSet<_>, _>>()?;
        self.state.hub.watch(self.id, &self.live_tx, &self.watched, &new);
        self.watched = new;
        Ok(Resp::Ok(Default::default()))
    }

    /// Writes queued messages not yet in flight, oldest first, up to the delivery window.
    async fn deliver_pending(&mut self, socket: &mut WebSocket) -> Result<(), ()> {
        let Some(device) = self.device else { return Ok(()) };
        if self.in_flight.len() >= DELIVERY_WINDOW as usize {
            // Nothing more may go out until acks open the window (an ack wakes this socket again).
            self.window_full = true;
            return Ok(());
        }
        let rows = match self.state.storage.pending(device, DELIVERY_WINDOW).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "reading a mailbox failed");
                return Ok(());
            }
        };
        self.window_full = rows.len() >= DELIVERY_WINDOW as usize;
        // Ids no longer queued were acked or expired.
        let queued: HashSet<u64> = rows.iter().map(|m| m.id).collect();
        self.in_flight.retain(|id| queued.contains(id));
        for m in rows {
            if !self.in_flight.insert(m.id) {
                continue;
            }
            let received_at = m.received_at_ms;
            let envelope = Envelope {
                id: m.id,
                sealed: m.sender.is_none(),
                sender_device: m.sender.map(|s| s.to_vec()).unwrap_or_default(),
                payload: m.payload,
                received_at,
            };
            self.send(socket, frame::server(0, Resp::Envelope(envelope))).await?;
            let latency_ms = now_ms().saturating_sub(received_at);
            self.state.metrics.delivery_latency.observe(latency_ms as f64 / 1000.0);
        }
        Ok(())
    }
}

/// Times a storage commit into the `commit_latency` histogram.
pub fn observe_commit(state: &RelayState, started: Instant) {
    state.metrics.commit_latency.observe(started.elapsed().as_secs_f64());
}
