// The HushClient wrapper in Node (node:test): two clients, Alice and Bob, through a real relay, with
// the `ws` package as their WebSocket and Node's fetch for attachments. Uses the staged web build
// (scripts/web.sh build puts it in wasm/web). Node has no IndexedDB: its stores live in memory, and
// the kept-store test below hands HushClient a MemoryStorage (the browser test uses IndexedDB).
//
//   HUSH_RELAY_BIN=target/debug/hush-relay HUSH_WEB_DIR=wasm/web node --test wasm/tests/web/client.test.mjs

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";

const RELAY = process.env.HUSH_RELAY_BIN ?? "target/debug/hush-relay";
const WEB_DIR = resolve(process.env.HUSH_WEB_DIR ?? "wasm/web");
const { HushClient, HushError, HushStorageError, MemoryStorage, initHush } = await import(
  join(WEB_DIR, "js/hush-client.js")
);

let relay;
let dataDir;
let relayUrl;

function freePort() {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => done(port));
    });
  });
}

/** Resolves with the first event matching `pred` (rejects after 20 s). */
function nextEvent(client, pred) {
  return new Promise((done, fail) => {
    const timer = setTimeout(() => (off(), fail(new Error("no such event within 20 s"))), 20_000);
    const off = client.onEvent((e) => {
      if (pred(e)) {
        clearTimeout(timer);
        off();
        done(e);
      }
    });
  });
}

async function connected(name) {
  const client = await HushClient.create(relayUrl, name, { WebSocket });
  const up = nextEvent(client, (e) => e.type === "connection" && e.state === "connected");
  client.connect();
  await up;
  return client;
}

before(async () => {
  await initHush(readFileSync(join(WEB_DIR, "pkg/web/hush_wasm_bg.wasm")));
  const port = await freePort();
  dataDir = mkdtempSync(join(tmpdir(), "hush-client-test-"));
  relayUrl = `ws://127.0.0.1:${port}/v1/ws`;
  relay = spawn(RELAY, ["--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--no-web", "--log", "warn"], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
    } catch {
      if (i > 300) throw new Error("the relay did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

after(() => {
  relay?.kill("SIGTERM");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("an unreachable relay is an event with the reason and the next attempt, and a throwing listener stops nothing", async () => {
  const port = await freePort(); // nothing listens there
  const client = await HushClient.create(`ws://127.0.0.1:${port}/v1/ws`, "Eve", { WebSocket });
  let calls = 0;
  const off = client.onEvent(() => {
    calls++;
    throw new Error("a bug in the application's listener");
  });
  const errors = [];
  const consoleError = console.error;
  console.error = (...args) => errors.push(args);
  try {
    const first = nextEvent(client, (e) => e.type === "connection" && e.state === "unreachable");
    client.connect();
    const e = await first;
    assert.match(e.reason, /^cannot connect/);
    assert.ok(e.retryInMs >= 250 && e.retryInMs <= 500, `first retry in ${e.retryInMs} ms`);
    const second = await nextEvent(client, (e) => e.type === "connection" && e.state === "unreachable");
    assert.ok(second.retryInMs >= 500 && second.retryInMs <= 1000, `then ${second.retryInMs} ms: doubled`);
  } finally {
    console.error = consoleError;
    client.disconnect();
    off();
  }
  assert.ok(calls >= 4, `the throwing listener got ${calls} events`); // connecting, unreachable, twice
  assert.ok(errors.some((a) => String(a[0]).includes("listener failed")), "the listener's exception is logged");
});

test("two clients chat and share a file through the relay", async () => {
  const alice = await connected("Alice");
  const bob = await connected("Bob");
  try {
    assert.match(alice.userId, /^[0-9a-f]{64}$/);
    assert.ok(alice.contactLink().startsWith("hush://"));

    const aliceId = bob.addContact(alice.contactLink());
    assert.equal(aliceId, alice.userId);
    const chat = bob.directConversation(aliceId);
    const request = nextEvent(alice, (e) => e.type === "messageRequest");
    const hiId = bob.sendText(chat, "hi Alice");
    const { message } = await request;
    assert.equal(message.text, "hi Alice");
    assert.equal(message.id, hiId);
    assert.equal(message.sender, bob.userId);
    assert.equal(message.outgoing, false);

    alice.acceptContact(bob.userId);
    const back = alice.directConversation(bob.userId);
    assert.equal(message.conversation, back);
    const reply = nextEvent(bob, (e) => e.type === "message");
    alice.sendText(back, "hi Bob");
    assert.equal((await reply).message.text, "hi Bob");

    // Read receipt for Alice's message once Bob reads.
    const receipt = nextEvent(alice, (e) => e.type === "receipt" && e.read);
    bob.markRead(chat);
    assert.equal((await receipt).sender, bob.userId);

    // A file: encrypted, uploaded, sent; downloaded and decrypted on the other side.
    const bytes = new Uint8Array(70_000).map((_, i) => (i * 31) % 251);
    const got = nextEvent(alice, (e) => e.type === "message" && e.message.attachment);
    const fileId = await bob.sendAttachment(chat, bytes, "application/octet-stream", "data.bin");
    const { message: m } = await got;
    assert.equal(m.id, fileId);
    assert.deepEqual(m.attachment, { mime: "application/octet-stream", size: 70_000, fileName: "data.bin" });
    assert.deepEqual(await alice.downloadAttachment(back, fileId), bytes);

    // History: oldest last, each message once.
    const page = alice.history(back);
    assert.deepEqual(
      page.messages.map((x) => x.text ?? x.attachment?.fileName),
      ["data.bin", "hi Bob", "hi Alice"],
    );

    // Typed errors.
    assert.throws(() => alice.sendText("zz", "x"), (e) => e instanceof HushError && e.code === "bad_input");
    assert.throws(() => alice.addContact("hush://nonsense"), (e) => e instanceof Error && typeof e.code === "string");
  } finally {
    alice.disconnect();
    bob.disconnect();
  }
});

test("a kept store reopens with its key, history included, and refuses a wrong one", async () => {
  const storage = new MemoryStorage();
  const key = new Uint8Array(32).map((_, i) => i + 1);
  const carol = await HushClient.create("carol", key, relayUrl, "Carol", { WebSocket, storage });
  await assert.rejects(
    HushClient.create("carol", key, relayUrl, "Carol", { WebSocket, storage }),
    (e) => e instanceof HushStorageError && e.code === "storage" && e.reason === "StoreExists",
  );
  const dave = await connected("Dave");
  let up = nextEvent(carol, (e) => e.type === "connection" && e.state === "connected");
  carol.connect();
  await up;
  const carolId = carol.userId;
  const chat = dave.directConversation(dave.addContact(carol.contactLink()));
  const request = nextEvent(carol, (e) => e.type === "messageRequest");
  dave.sendText(chat, "kept?");
  const { message } = await request;
  carol.acceptContact(dave.userId);
  await carol.close();
  dave.disconnect();

  await assert.rejects(
    HushClient.open("carol", new Uint8Array(32), relayUrl, "Carol", { WebSocket, storage }),
    (e) => e instanceof HushError && e.code === "wrong_key",
  );
  await assert.rejects(
    HushClient.open("nobody", key, relayUrl, "Carol", { WebSocket, storage }),
    (e) => e instanceof HushStorageError && e.code === "not_found" && e.reason === "NotFound",
  );
  const again = await HushClient.open("carol", key, relayUrl, "Carol", { WebSocket, storage });
  try {
    assert.equal(again.userId, carolId);
    assert.deepEqual(
      again.history(message.conversation).messages.map((m) => m.text),
      ["kept?"],
    );
    assert.equal(again.contacts().find((c) => c.userId === dave.userId)?.state, "accepted");
    // The reopened account is the same one on the relay: it connects and receives.
    up = nextEvent(again, (e) => e.type === "connection" && e.state === "connected");
    again.connect();
    await up;
    dave.connect();
    const next = nextEvent(again, (e) => e.type === "message");
    dave.sendText(chat, "still here");
    assert.equal((await next).message.text, "still here");
  } finally {
    await again.close();
    dave.disconnect();
  }
  await HushClient.deleteStore("carol", { storage });
  assert.equal(await HushClient.storeExists("carol", { storage }), false);
});

test("a second device is linked, and both devices show one history", async () => {
  const alice = await connected("Alice");
  const bob = await connected("Bob");
  alice.addContact(bob.contactLink());
  bob.addContact(alice.contactLink());

  const laptop = await HushClient.createForLink(relayUrl, "Alice's laptop", { WebSocket });
  assert.equal(laptop.isLinked, false);
  assert.throws(() => laptop.userId, (e) => e instanceof HushError && e.code === "protocol" && /not linked/.test(e.message));
  const up = nextEvent(laptop, (e) => e.type === "connection" && e.state === "connected");
  laptop.connect();
  await up;
  const uri = laptop.linkRequest();
  assert.ok(uri.startsWith("hush://link/"));
  assert.throws(() => alice.linkDevice("hush://link/AAAA"), (e) => e instanceof HushError && e.code === "bad_input" && /^malformed/.test(e.message));
  const linked = nextEvent(laptop, (e) => e.type === "deviceLinked");
  assert.equal(alice.linkDevice(uri), laptop.deviceId);
  assert.equal((await linked).user, alice.userId);
  assert.equal(laptop.userId, alice.userId);
  assert.throws(() => alice.linkDevice(uri), (e) => e instanceof HushError && e.code === "identity" && /names a device twice/.test(e.message));
  assert.throws(() => laptop.linkRequest(), (e) => e instanceof HushError && e.code === "protocol" && /already linked/.test(e.message));

  const chat = alice.directConversation(bob.userId);
  const isText = (text) => (e) => (e.type === "message" || e.type === "messageRequest") && e.message.text === text;
  // Sent on the phone: Bob gets it, the laptop shows it as sent by Alice.
  let synced = nextEvent(laptop, isText("from the phone"));
  let atBob = nextEvent(bob, isText("from the phone"));
  alice.sendText(chat, "from the phone");
  assert.equal((await synced).message.outgoing, true);
  await atBob;
  // Sent on the laptop: Bob learns the new device from the message, the phone gets the sync.
  synced = nextEvent(alice, isText("from the laptop"));
  atBob = nextEvent(bob, isText("from the laptop"));
  laptop.sendText(chat, "from the laptop");
  await Promise.all([synced, atBob]);
  // Bob's reply reaches both devices.
  const both = [nextEvent(alice, isText("hi both")), nextEvent(laptop, isText("hi both"))];
  bob.sendText(bob.directConversation(alice.userId), "hi both");
  await Promise.all(both);
  const texts = (c) => c.history(chat).messages.map((m) => m.text).reverse();
  assert.deepEqual(texts(laptop), ["from the phone", "from the laptop", "hi both"]);
  assert.deepEqual(texts(alice), texts(laptop));
  for (const c of [alice, bob, laptop]) c.disconnect();
});
