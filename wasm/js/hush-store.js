// Where HushClient keeps its store between page loads: the store's image (its SQLite file, every
// value encrypted by hush) under a name, in IndexedDB by default.
//
// A storage is any object with `load(name)` (a Uint8Array, or undefined when there is none),
// `save(name, bytes)` (resolves once the bytes are durable) and `remove(name)`. HushClient writes
// the image after every change and waits for `save` before it sends what the change caused, so
// the relay never deletes a message (on the client's acknowledgement) that the store has not kept.

/** The IndexedDB database and object store the images go to. */
const DB_NAME = "hush";
const OBJECT_STORE = "stores";

/**
 * A failure to keep or find a store image. `reason` is "NotFound", "StoreExists" or "Storage"
 * (IndexedDB failed); `code` is the shared code of every hush binding: "not_found" for NotFound,
 * else "storage".
 */
export class HushStorageError extends Error {
  constructor(reason, message) {
    super(message);
    this.name = "HushStorageError";
    this.code = reason === "NotFound" ? "not_found" : "storage";
    this.reason = reason;
  }
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new HushStorageError("Storage", `IndexedDB: ${req.error?.message ?? "failed"}`));
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = tx.onerror = () =>
      reject(new HushStorageError("Storage", `IndexedDB: ${tx.error?.message ?? "transaction aborted"}`));
  });
}

/** Store images in IndexedDB (the browser's default). */
export class IndexedDbStorage {
  /** `indexedDB`: the factory (the global one by default); `dbName`: the database's name. */
  constructor(indexedDB = globalThis.indexedDB, dbName = DB_NAME) {
    if (!indexedDB) throw new HushStorageError("Storage", "IndexedDB is not available here (give options.storage)");
    this._factory = indexedDB;
    this._dbName = dbName;
    this._db = null;
  }

  _open() {
    this._db ??= (async () => {
      const req = this._factory.open(this._dbName, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(OBJECT_STORE);
      return request(req);
    })();
    return this._db;
  }

  async _tx(mode, f) {
    const db = await this._open();
    // "strict": complete only once the data reached the disk (Chromium's default is relaxed).
    const tx = db.transaction(OBJECT_STORE, mode, { durability: "strict" });
    f(tx.objectStore(OBJECT_STORE));
    await done(tx);
  }

  /** The image named `name`, or undefined. */
  async load(name) {
    const db = await this._open();
    const value = await request(db.transaction(OBJECT_STORE, "readonly").objectStore(OBJECT_STORE).get(name));
    return value === undefined ? undefined : new Uint8Array(value);
  }

  /** Keeps `bytes` as the image named `name`; resolves once the transaction committed. */
  async save(name, bytes) {
    await this._tx("readwrite", (s) => s.put(bytes, name));
  }

  /** Deletes the image named `name` (nothing if there is none). */
  async remove(name) {
    await this._tx("readwrite", (s) => s.delete(name));
  }
}

/** Store images in a Map: for tests and for runtimes without IndexedDB (Node). Nothing survives the process. */
export class MemoryStorage {
  constructor() {
    this.images = new Map();
  }
  async load(name) {
    const v = this.images.get(name);
    return v === undefined ? undefined : new Uint8Array(v);
  }
  async save(name, bytes) {
    this.images.set(name, new Uint8Array(bytes));
  }
  async remove(name) {
    this.images.delete(name);
  }
}

let defaultStorage;

/** The storage HushClient uses when `options.storage` is not given: IndexedDB, opened once. */
export function defaultHushStorage() {
  defaultStorage ??= new IndexedDbStorage();
  return defaultStorage;
}
