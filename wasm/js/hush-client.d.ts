// Types of hush-client.js: the browser HushClient over hush-wasm's WasmClient.
import type {
  WasmClient,
  HushEvent,
  HushContact,
  HushConversation,
  HushHistoryPage,
  HushMessage,
  HushSafetyNumber,
} from "../pkg/web/hush_wasm.js";

export type {
  HushEvent,
  HushContact,
  HushConversation,
  HushHistoryPage,
  HushMessage,
  HushSafetyNumber,
  HushMessageStatus,
  HushAttachment,
  HushReaction,
} from "../pkg/web/hush_wasm.js";
export { HushError, WasmClient } from "../pkg/web/hush_wasm.js";
export { HushStorageError, IndexedDbStorage, MemoryStorage } from "./hush-store.js";
import type { HushStorage } from "./hush-store.js";
export type { HushStorage } from "./hush-store.js";

/** Loads the WebAssembly module once (`HushClient.create` calls it). */
export function initHush(input?: RequestInfo | URL | Response | BufferSource | WebAssembly.Module): Promise<unknown>;

/** `ws://host/v1/ws` → `http://host` (and wss → https). */
export function httpBase(relayUrl: string): string;

/** The relay's WebSocket URL for a page it serves. */
export function relayUrlFor(location: { protocol: string; host: string }): string;

/** A failure of the wrapper's transport: code "network" (as in every binding), and which one. */
export class HushTransportError extends Error {
  readonly name: "HushTransportError";
  readonly code: "network";
  readonly reason: "Network" | "Timeout" | "Http" | "Refused";
}

export interface HushClientOptions {
  /** A WebSocket constructor (e.g. the `ws` package in Node); the global one by default. */
  WebSocket?: unknown;
  /** A fetch function; the global one by default. */
  fetch?: typeof fetch;
  /** Where the `.wasm` file is (see initHush). */
  wasm?: RequestInfo | URL | Response | BufferSource | WebAssembly.Module;
  /** Where kept stores go: IndexedDB by default (a MemoryStorage in Node, where there is none). */
  storage?: HushStorage;
}

/** What unlocks a kept store: a 32-byte key (e.g. from a platform keystore) or a passphrase (Argon2id). */
export type HushUnlock = Uint8Array | string;

export class HushClient {
  /** Creates a new account (in memory) on the relay at `relayUrl` (its WebSocket URL). */
  static create(relayUrl: string, displayName: string, options?: HushClientOptions): Promise<HushClient>;
  /**
   * Creates a new account whose store is kept under `storeName` (":memory:": not kept).
   * Throws HushStorageError "storage" (reason "StoreExists") if that name is taken, HushError "bad_input" for a bad unlock.
   */
  static create(
    storeName: string,
    unlock: HushUnlock,
    relayUrl: string,
    displayName: string,
    options?: HushClientOptions,
  ): Promise<HushClient>;
  /**
   * Opens the account kept under `storeName`. Throws HushError "wrong_key" for a wrong key or
   * passphrase, HushStorageError "not_found" when there is no such store.
   */
  static open(
    storeName: string,
    unlock: HushUnlock,
    relayUrl: string,
    displayName: string,
    options?: HushClientOptions,
  ): Promise<HushClient>;
  /** Whether a store named `storeName` is kept. */
  static storeExists(storeName: string, options?: HushClientOptions): Promise<boolean>;
  /** Deletes the store named `storeName` (its account is gone for good). */
  static deleteStore(storeName: string, options?: HushClientOptions): Promise<void>;
  /** Creates a device that waits to be linked to an existing user (see `linkRequest`). */
  static createForLink(relayUrl: string, displayName: string, options?: HushClientOptions): Promise<HushClient>;
  constructor(wasm: WasmClient, options?: HushClientOptions);
  readonly wasm: WasmClient;
  readonly relayUrl: string;
  readonly userId: string;
  readonly deviceId: string;
  readonly isConnected: boolean;
  contactLink(): string;
  readonly isLinked: boolean;
  /** The `hush://link/…` URI a `createForLink` device shows until it is linked. */
  linkRequest(): string;
  /** Approves a new device of this user; returns its device id. */
  linkDevice(uri: string): string;
  /** The device ids on this user's signed device list, this device's included. */
  devices(): string[];
  /** Removes a lost or stolen device of this user (it wipes itself when it next connects). */
  removeDevice(deviceId: string): void;

  onEvent(listener: (event: HushEvent) => void): () => void;
  connect(): void;
  disconnect(): void;
  /** Resolves once every change so far is saved (at once for an in-memory store). */
  saved(): Promise<void>;
  /** Disconnects and waits until every change is saved. */
  close(): Promise<void>;

  addContact(link: string): string;
  acceptContact(userId: string): void;
  block(userId: string): void;
  contacts(): HushContact[];
  safetyNumber(userId: string): HushSafetyNumber;
  verify(userId: string, scannedQr: Uint8Array): boolean;
  directConversation(userId: string): string;

  sendText(conversation: string, text: string): string;
  edit(conversation: string, messageId: string, text: string): void;
  delete(conversation: string, messageId: string): void;
  react(conversation: string, messageId: string, emoji: string, remove?: boolean): void;
  markRead(conversation: string): void;
  setTyping(conversation: string, typing: boolean): void;
  setDisappearing(conversation: string, seconds: number): void;
  sendAttachment(conversation: string, bytes: Uint8Array, mime: string, fileName?: string): Promise<string>;
  downloadAttachment(conversation: string, messageId: string): Promise<Uint8Array>;

  createGroup(name: string, members: string[]): string;
  addMembers(conversation: string, members: string[]): void;
  removeMember(conversation: string, userId: string): void;
  leaveGroup(conversation: string): void;
  renameGroup(conversation: string, name: string): void;

  conversations(): HushConversation[];
  history(conversation: string, before?: string, limit?: number): HushHistoryPage;
  message(conversation: string, messageId: string): HushMessage | undefined;
  search(query: string): HushMessage[];
}
