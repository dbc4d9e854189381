// HushClient: the hush client API for browsers, over hush-wasm's WasmClient (the sans-IO state
// machine compiled to WebAssembly) and the browser WebSocket.
//
// The same names as the native HushClient of hush-ffi (Kotlin, Swift, Python), in camelCase, with
// the same hex-string ids. The WasmClient owns no socket: this wrapper moves its frames to and from
// the relay, runs its timer, reconnects with backoff, and does the HTTP of attachments.
//
//   const client = await HushClient.create("wss://relay.example/v1/ws", "Alice"); // in memory
//   const kept = await HushClient.create("alice", passphrase, "wss://relay.example/v1/ws", "Alice");
//   const again = await HushClient.open("alice", passphrase, "wss://relay.example/v1/ws", "Alice");
//   client.onEvent((e) => console.log(e));
//   client.connect();
//   const bob = client.addContact(link);
//   client.sendText(client.directConversation(bob), "hi");

import init, { WasmClient } from "../pkg/web/hush_wasm.js";
import { HushStorageError, defaultHushStorage } from "./hush-store.js";

export { HushError, WasmClient } from "../pkg/web/hush_wasm.js";
export { HushStorageError, IndexedDbStorage, MemoryStorage } from "./hush-store.js";

/** How often the state machine's timers run (ms). */
const TICK_MS = 5000;
/** Reconnect backoff: first delay, cap (ms). */
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30000;
/** How long to wait for an upload token (ms). */
const UPLOAD_TOKEN_TIMEOUT_MS = 15000;

let ready;

/**
 * Loads the WebAssembly module once (`HushClient.create` calls it). `input` is what wasm-bindgen's
 * `init` takes (a URL, a Response, bytes or a compiled module); by default the `.wasm` file next to
 * the module's JavaScript.
 */
export function initHush(input) {
  ready ??= init(input === undefined ? undefined : { module_or_path: input });
  return ready;
}

/**
 * A failure of the wrapper's own transport; the state machine throws HushError. `code` is "network",
 * the shared code every hush binding gives a transport failure; `reason` says which: "Network"
 * (not connected), "Timeout", "Http" (an attachment upload or download) or "Refused" (by the relay).
 */
export class HushTransportError extends Error {
  constructor(reason, message) {
    super(message);
    this.name = "HushTransportError";
    this.code = "network";
    this.reason = reason;
  }
}

/** `ws://host/v1/ws` → `http://host` (and wss → https). */
export function httpBase(relayUrl) {
  const url = new URL(relayUrl);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.pathname = url.pathname.replace(/\/v1\/ws\/?$/, "");
  url.search = "";
  url.hash = "";
  return url.toString().replace(/\/$/, "");
}

/** The relay's WebSocket URL for a page it serves (`http://host/` → `ws://host/v1/ws`). */
export function relayUrlFor(location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/v1/ws`;
}

/** `unlock` → the store key or passphrase arguments of WasmClient (it throws BadInput for neither). */
function unlockArgs(unlock) {
  if (unlock instanceof Uint8Array) return [unlock, undefined];
  if (typeof unlock === "string") return [undefined, unlock];
  return [undefined, undefined];
}

export class HushClient {
  /**
   * Creates a new account on the relay at `relayUrl` (its WebSocket URL), named `displayName` in
   * the contact link. Two forms:
   *
   * - `create(relayUrl, displayName, options)`: the store lives in memory (a reload starts a new
   *   account); the form for Node and tests.
   * - `create(storeName, unlock, relayUrl, displayName, options)`: the store is kept under
   *   `storeName` (in IndexedDB, or `options.storage`) and `open` opens it again. `unlock` is a
   *   32-byte `Uint8Array` key or a passphrase string (Argon2id). `storeName` ":memory:" keeps it
   *   in memory. An existing store of that name throws HushStorageError "storage" (reason "StoreExists").
   *
   * `options.WebSocket` replaces the global WebSocket (e.g. the `ws` package in Node).
   */
  static async create(...args) {
    if (typeof args[2] !== "string") {
      const [relayUrl, displayName, options = {}] = args;
      await initHush(options.wasm);
      return new HushClient(WasmClient.create(relayUrl, displayName), options);
    }
    const [storeName, unlock, relayUrl, displayName, options = {}] = args;
    await initHush(options.wasm);
    if (storeName === ":memory:") {
      return new HushClient(WasmClient.createStore(...unlockArgs(unlock), relayUrl, displayName), options);
    }
    const storage = options.storage ?? defaultHushStorage();
    if ((await storage.load(storeName)) !== undefined) {
      throw new HushStorageError("StoreExists", `a store named ${JSON.stringify(storeName)} exists already`);
    }
    const wasm = WasmClient.createStore(...unlockArgs(unlock), relayUrl, displayName);
    await storage.save(storeName, wasm.takeStoreImage());
    return new HushClient(wasm, { ...options, storage, storeName });
  }

  /**
   * Opens the account kept under `storeName` (see `create`), unlocked by its key or passphrase. A
   * wrong one throws HushError "wrong_key"; no store of that name, HushStorageError "not_found".
   */
  static async open(storeName, unlock, relayUrl, displayName, options = {}) {
    await initHush(options.wasm);
    const storage = options.storage ?? defaultHushStorage();
    const image = await storage.load(storeName);
    if (image === undefined) {
      throw new HushStorageError("NotFound", `no store named ${JSON.stringify(storeName)}`);
    }
    const wasm = WasmClient.open(image, ...unlockArgs(unlock), relayUrl, displayName);
    return new HushClient(wasm, { ...options, storage, storeName });
  }

  /** Whether a store named `storeName` is kept (in IndexedDB, or `options.storage`). */
  static async storeExists(storeName, options = {}) {
    return (await (options.storage ?? defaultHushStorage()).load(storeName)) !== undefined;
  }

  /** Deletes the store named `storeName`: its account is gone for good. */
  static async deleteStore(storeName, options = {}) {
    await (options.storage ?? defaultHushStorage()).remove(storeName);
  }

  /**
   * Creates a device that waits to be linked to an existing user (in memory, like `create`).
   * Show `linkRequest()` to one of the user's devices, which calls `linkDevice(uri)`, and
   * `connect()`: a `deviceLinked` event says when this device belongs to the user.
   */
  static async createForLink(relayUrl, displayName, options = {}) {
    await initHush(options.wasm);
    return new HushClient(WasmClient.createForLink(relayUrl, displayName), options);
  }

  constructor(wasm, options = {}) {
    this.wasm = wasm;
    // A kept store: images go to `storage` under `storeName`, in order, before the frames they cover.
    this._storage = options.storeName === undefined ? null : options.storage;
    this._storeName = options.storeName;
    this._saving = Promise.resolve();
    this.relayUrl = wasm.relayUrl;
    this.blobUrl = `${httpBase(wasm.relayUrl)}/v1/blobs`;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this._fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this._listeners = new Set();
    this._socket = null;
    this._wanted = false;
    this._connected = false;
    this._backoff = BACKOFF_MIN_MS;
    this._reconnectTimer = null;
    this._tickTimer = null;
    this._tokenWaiters = new Map();
  }

  // ---- Identity ------------------------------------------------------------------------------

  /** This user's id (hex user key); throws HushError "protocol" (not linked) while a `createForLink` device waits. */
  get userId() {
    return this.wasm.userId;
  }

  /** This device's id (hex device key). */
  get deviceId() {
    return this.wasm.deviceId;
  }

  /** Whether the relay accepted this device on the current connection. */
  get isConnected() {
    return this._connected;
  }

  /** The `hush://contact/…` link others open to add this user (also the QR code's text). */
  contactLink() {
    return this.wasm.contactLink();
  }

  // ---- Devices -------------------------------------------------------------------------------

  /** Whether this device belongs to a user (false only while a `createForLink` device waits). */
  get isLinked() {
    return this.wasm.isLinked;
  }

  /** The `hush://link/…` URI a `createForLink` device shows (a secret: show it to the user only). */
  linkRequest() {
    return this.wasm.linkRequest();
  }

  /** Approves a new device of this user from the URI it shows; returns its device id. */
  linkDevice(uri) {
    return this._act((w) => w.linkDevice(uri));
  }

  /** The device ids on this user's signed device list, this device's included. */
  devices() {
    return this.wasm.devices();
  }

  /**
   * Removes a lost or stolen device of this user: signs and publishes the list without it. It wipes
   * itself when it next connects (its `deviceRemoved` event); contacts stop encrypting to it after
   * the next message.
   */
  removeDevice(deviceId) {
    return this._act((w) => w.removeDevice(deviceId));
  }

  // ---- Events and connection -------------------------------------------------------------------

  /** Registers a listener for every event; returns a function that removes it. */
  onEvent(listener) {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  /** Connects to the relay and keeps reconnecting (with backoff) until `disconnect()`. */
  connect() {
    this._wanted = true;
    if (this._socket) return;
    this._open();
    this._tickTimer ??= setInterval(() => this._tick(), TICK_MS);
  }

  /** Closes the connection. Sends the relay did not take stay queued for the next `connect()`. */
  disconnect() {
    this._wanted = false;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    clearInterval(this._tickTimer);
    this._tickTimer = null;
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onclose = socket.onmessage = socket.onerror = null;
      socket.close();
      this._closed();
    }
  }

  _open() {
    this._emit({ type: "connection", state: "connecting" });
    let socket;
    try {
      socket = new this._WebSocket(this.relayUrl);
    } catch (e) {
      this._unreachable(`cannot connect: ${e?.message ?? e}`);
      return;
    }
    socket.binaryType = "arraybuffer";
    this._socket = socket;
    socket.onmessage = (m) => {
      if (typeof m.data === "string") return;
      this._frame(new Uint8Array(m.data));
    };
    socket.onclose = (event) => {
      if (this._socket !== socket) return;
      this._socket = null;
      const wasConnected = this._connected;
      this._closed();
      if (wasConnected) {
        this._scheduleReconnect();
      } else {
        // The attempt failed before the relay accepted this device.
        const code = event?.code ?? 1006;
        this._unreachable(`cannot connect (the WebSocket closed with code ${code} before authentication)`);
      }
    };
    socket.onerror = () => {}; // onclose follows
  }

  _closed() {
    this.wasm.onDisconnected();
    for (const [, waiter] of this._tokenWaiters) waiter.reject(new HushTransportError("Network", "disconnected"));
    this._tokenWaiters.clear();
    if (this._connected) {
      this._connected = false;
      this._emit({ type: "connection", state: "disconnected" });
    }
  }

  /** Schedules the next attempt; returns its delay in ms (null when none is scheduled). */
  _scheduleReconnect() {
    if (!this._wanted || this._reconnectTimer) return null;
    const delay = Math.round(this._backoff * (0.5 + Math.random() / 2));
    this._backoff = Math.min(this._backoff * 2, BACKOFF_MAX_MS);
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      if (this._wanted && !this._socket) this._open();
    }, delay);
    return delay;
  }

  /** A failed attempt: schedules the next and says so, with why and when (as hush-net does natively). */
  _unreachable(reason) {
    const retryInMs = this._scheduleReconnect();
    if (retryInMs !== null) this._emit({ type: "connection", state: "unreachable", reason, retryInMs });
  }

  _frame(bytes) {
    let events;
    try {
      events = this.wasm.handleFrame(bytes);
    } catch (e) {
      // A frame the state machine refused (malformed): drop the connection and start over.
      this._flush();
      this._socket?.close();
      return;
    }
    this._flush();
    if (!this._connected && this.wasm.isConnected) {
      this._connected = true;
      this._backoff = BACKOFF_MIN_MS;
      this._emit({ type: "connection", state: "connected" });
    }
    for (const e of events) this._emit(e);
  }

  _tick() {
    try {
      const events = this.wasm.tick();
      this._flush();
      for (const e of events) this._emit(e);
    } catch (e) {
      console.warn("hush: tick failed", e);
    }
  }

  /**
   * Sends what the state machine queued. Without an open socket nothing is in flight. With a kept
   * store, the store's image is saved first and the frames go once it is durable: the relay deletes
   * what the client acknowledged, and an outgoing message must be in the outbox before it leaves.
   */
  _flush() {
    const frames = this.wasm.takeOutgoing();
    let image;
    try {
      image = this._storage ? this.wasm.takeStoreImage() : undefined;
    } catch (e) {
      // The change cannot be kept: send nothing of it (the relay delivers again after a reconnect).
      console.error("hush: reading the store image failed", e);
      this.wasm.onDisconnected();
      this._socket?.close();
      return;
    }
    if (frames.length === 0 && image === undefined) return;
    const socket = this._socket;
    const open = socket && socket.readyState === 1;
    if (frames.length > 0 && !open) {
      // Forget the requests (the outbox keeps the sends; they go after the next connect).
      this.wasm.onDisconnected();
    }
    if (!this._storage) {
      if (open) for (const f of frames) socket.send(f);
      return;
    }
    this._saving = this._saving
      .then(async () => {
        if (image !== undefined) await this._storage.save(this._storeName, image);
        if (open && this._socket === socket && socket.readyState === 1) for (const f of frames) socket.send(f);
      })
      .catch((e) => {
        // Not kept: send nothing of it. Closing the connection makes the relay deliver again.
        console.error("hush: saving the store failed", e);
        if (this._socket === socket) socket?.close();
      });
  }

  /** Resolves once every change so far is saved (at once for an in-memory store). */
  saved() {
    return this._saving;
  }

  /** Disconnects and waits until every change is saved. The object is not used after this. */
  async close() {
    this.disconnect();
    this._flush();
    await this._saving;
  }

  _emit(e) {
    if (e.type === "uploadToken") {
      const waiter = this._tokenWaiters.get(e.request);
      if (waiter) {
        this._tokenWaiters.delete(e.request);
        if (e.token) waiter.resolve(e.token);
        else waiter.reject(new HushTransportError("Refused", "the relay refused an upload token"));
        return;
      }
    }
    for (const l of this._listeners) {
      try {
        l(e);
      } catch (err) {
        console.error("hush: event listener failed", err);
      }
    }
  }

  /** Runs an action of the state machine, then sends what it queued. */
  _act(f) {
    try {
      return f(this.wasm);
    } finally {
      this._flush();
    }
  }

  // ---- Contacts ------------------------------------------------------------------------------

  /** Adds the user behind a contact link; returns their user id. */
  addContact(link) {
    return this._act((w) => w.addContact(link));
  }
  /** Accepts a message request. */
  acceptContact(userId) {
    return this._act((w) => w.acceptContact(userId));
  }
  /** Blocks a user. */
  block(userId) {
    return this._act((w) => w.block(userId));
  }
  /** Every contact. */
  contacts() {
    return this.wasm.contacts();
  }
  /** The safety number with a contact: `{ digits, qr }`. */
  safetyNumber(userId) {
    return this.wasm.safetyNumber(userId);
  }
  /** Marks a contact verified if `scannedQr` matches their safety number's QR payload. */
  verify(userId, scannedQr) {
    return this._act((w) => w.verify(userId, scannedQr));
  }
  /** The conversation id of the 1:1 chat with a user. */
  directConversation(userId) {
    return this.wasm.directConversation(userId);
  }

  // ---- Messages ------------------------------------------------------------------------------

  /** Sends a text; returns its message id. */
  sendText(conversation, text) {
    return this._act((w) => w.sendText(conversation, text));
  }
  /** Replaces the text of one of this user's messages. */
  edit(conversation, messageId, text) {
    return this._act((w) => w.edit(conversation, messageId, text));
  }
  /** Deletes one of this user's messages for everyone. */
  delete(conversation, messageId) {
    return this._act((w) => w.delete(conversation, messageId));
  }
  /** Adds (or, with `remove`, withdraws) a reaction. */
  react(conversation, messageId, emoji, remove = false) {
    return this._act((w) => w.react(conversation, messageId, emoji, remove));
  }
  /** Marks a conversation read (sends read receipts). */
  markRead(conversation) {
    return this._act((w) => w.markRead(conversation));
  }
  /** Tells the conversation this user is typing (or stopped). */
  setTyping(conversation, typing) {
    return this._act((w) => w.setTyping(conversation, typing));
  }
  /** Sets the disappearing-message timer (seconds, 0 = off). */
  setDisappearing(conversation, seconds) {
    return this._act((w) => w.setDisappearing(conversation, seconds));
  }

  /** Encrypts, uploads and sends an attachment; resolves to its message id. */
  async sendAttachment(conversation, bytes, mime, fileName) {
    const token = await this._uploadToken();
    const { blob, handle } = this.wasm.encryptAttachment(bytes);
    let id;
    try {
      const res = await this._fetch(this.blobUrl, {
        method: "PUT",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/octet-stream" },
        body: blob,
      });
      if (!res.ok) throw new HushTransportError("Http", `upload failed: HTTP ${res.status}`);
      ({ id } = await res.json());
      if (typeof id !== "string") throw new HushTransportError("Http", "upload answer without an id");
    } catch (e) {
      this.wasm.discardAttachment(handle);
      throw e;
    }
    return this._act((w) => w.sendAttachment(conversation, handle, id, mime, fileName ?? undefined));
  }

  /** Downloads and decrypts the attachment of a message; resolves to its bytes. */
  async downloadAttachment(conversation, messageId) {
    const id = this.wasm.attachmentBlobId(conversation, messageId);
    const res = await this._fetch(`${this.blobUrl}/${id}`);
    if (!res.ok) throw new HushTransportError("Http", `download failed: HTTP ${res.status}`);
    const blob = new Uint8Array(await res.arrayBuffer());
    return this.wasm.decryptAttachment(conversation, messageId, blob);
  }

  _uploadToken() {
    if (!this._connected) return Promise.reject(new HushTransportError("Network", "not connected"));
    return new Promise((resolve, reject) => {
      const request = this._act((w) => w.requestUploadToken());
      const timer = setTimeout(() => {
        this._tokenWaiters.delete(request);
        reject(new HushTransportError("Timeout", "no upload token from the relay"));
      }, UPLOAD_TOKEN_TIMEOUT_MS);
      this._tokenWaiters.set(request, {
        resolve: (t) => (clearTimeout(timer), resolve(t)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  // ---- Groups --------------------------------------------------------------------------------

  /** Creates a group with these members (user ids); returns its conversation id. */
  createGroup(name, members) {
    return this._act((w) => w.createGroup(name, members));
  }
  /** Adds members to a group (admins only). */
  addMembers(conversation, members) {
    return this._act((w) => w.addMembers(conversation, members));
  }
  /** Removes a member (admins only). */
  removeMember(conversation, userId) {
    return this._act((w) => w.removeMember(conversation, userId));
  }
  /** Leaves a group. */
  leaveGroup(conversation) {
    return this._act((w) => w.leaveGroup(conversation));
  }
  /** Renames a group (admins only). */
  renameGroup(conversation, name) {
    return this._act((w) => w.renameGroup(conversation, name));
  }

  // ---- Reading -------------------------------------------------------------------------------

  /** The chat list, most recent first. */
  conversations() {
    return this.wasm.conversations();
  }
  /** A page of history, newest first, older than `before` (a previous page's `next`). */
  history(conversation, before = undefined, limit = 50) {
    return this.wasm.history(conversation, before ?? undefined, limit);
  }
  /** One message, or undefined. */
  message(conversation, messageId) {
    return this.wasm.message(conversation, messageId);
  }
  /** Messages containing every word of `query`. */
  search(query) {
    return this.wasm.search(query);
  }
}
