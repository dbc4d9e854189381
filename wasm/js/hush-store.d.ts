// Types of hush-store.js: where HushClient keeps store images between page loads.

/** Keeps store images (a store's SQLite file, values encrypted) by name. */
export interface HushStorage {
  /** The image named `name`, or undefined. */
  load(name: string): Promise<Uint8Array | undefined>;
  /** Keeps `bytes` as the image named `name`; resolves once they are durable. */
  save(name: string, bytes: Uint8Array): Promise<void>;
  /** Deletes the image named `name`. */
  remove(name: string): Promise<void>;
}

/** A failure to keep or find a store image; `code` is "not_found" for reason NotFound, else "storage". */
export class HushStorageError extends Error {
  readonly name: "HushStorageError";
  readonly code: "not_found" | "storage";
  readonly reason: "NotFound" | "StoreExists" | "Storage";
}

/** Images in IndexedDB (database "hush", object store "stores" unless told otherwise). */
export class IndexedDbStorage implements HushStorage {
  constructor(indexedDB?: IDBFactory, dbName?: string);
  load(name: string): Promise<Uint8Array | undefined>;
  save(name: string, bytes: Uint8Array): Promise<void>;
  remove(name: string): Promise<void>;
}

/** Images in a Map (tests, Node): nothing survives the process. */
export class MemoryStorage implements HushStorage {
  readonly images: Map<string, Uint8Array>;
  load(name: string): Promise<Uint8Array | undefined>;
  save(name: string, bytes: Uint8Array): Promise<void>;
  remove(name: string): Promise<void>;
}

/** The storage HushClient uses by default (IndexedDB). */
export function defaultHushStorage(): HushStorage;
