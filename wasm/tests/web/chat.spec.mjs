// Browser test of the demo web chat: a real relay (the hush-relay binary) serving wasm/web, and two
// headless Chromium contexts (Alice and Bob) driven by playwright-core. They register, Bob adds
// Alice's link, they chat both ways, Alice types, reacts and reads, Bob sends a file; each must see
// the other's messages in order with no duplicates, the reaction, the read receipt, the typing
// indicator, the file's exact bytes, and the same safety number; then Bob makes a group with Alice
// and both write in it. Last, both reload their page: the account comes back from its store in
// IndexedDB (Alice's under a key the page kept, Bob's under a passphrase, which a wrong guess does
// not open), with the same user id and history, and the chat goes on.
//
//   HUSH_RELAY_BIN=target/debug/hush-relay HUSH_WEB_DIR=wasm/web node wasm/tests/web/chat.spec.mjs
//
// scripts/web.sh test builds both and runs this.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const RELAY = process.env.HUSH_RELAY_BIN ?? "target/debug/hush-relay";
const WEB_DIR = process.env.HUSH_WEB_DIR ?? "wasm/web";
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const WAIT = { timeout: 30_000 };

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startRelay() {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "hush-web-test-"));
  const base = `http://127.0.0.1:${port}`;
  const relay = spawn(
    RELAY,
    ["--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--origin", base, "--web-dir", WEB_DIR, "--log", "warn"],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  const exited = new Promise((_, reject) => relay.once("exit", (code) => reject(new Error(`relay exited: ${code}`))));
  exited.catch(() => {});
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error("the relay did not start");
    await Promise.race([new Promise((r) => setTimeout(r, 100)), exited]);
  }
  return { base, relay, dataDir };
}

async function register(browser, base, name, passphrase = "") {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${name}] page error:`, e));
  page.on("console", (m) => m.type() === "error" && console.error(`[${name}]`, m.text()));
  await page.goto(base);
  await page.getByTestId("name").fill(name);
  await page.getByTestId("passphrase").fill(passphrase);
  await page.getByTestId("create").click();
  await page.waitForFunction(() => document.getElementById("link").value.startsWith("hush://"), null, WAIT);
  await page.waitForSelector("#connection.online", WAIT);
  return page;
}

/** The message texts shown in the open conversation, oldest first. */
function bodies(page) {
  return page.$$eval('[data-testid="message"] [data-testid="body"]', (els) => els.map((e) => e.textContent));
}

async function waitForBodies(page, expected) {
  try {
    await page.waitForFunction(
      (want) => {
        const got = [...document.querySelectorAll('[data-testid="message"] [data-testid="body"]')].map((e) => e.textContent);
        return JSON.stringify(got) === JSON.stringify(want);
      },
      expected,
      WAIT,
    );
  } catch (e) {
    assert.deepEqual(await bodies(page), expected, "messages in order, no duplicates");
    throw e;
  }
}

async function send(page, text) {
  await page.getByTestId("text").fill(text);
  await page.getByTestId("send").click();
}

async function main() {
  const { base, relay, dataDir } = await startRelay();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"],
  });
  const started = Date.now();
  try {
    // The relay serves the page and the module with the right types.
    const wasm = await fetch(`${base}/pkg/web/hush_wasm_bg.wasm`);
    assert.equal(wasm.headers.get("content-type"), "application/wasm");
    assert.equal((await fetch(`${base}/../Cargo.toml`)).status, 404);

    const alice = await register(browser, base, "Alice");
    const bob = await register(browser, base, "Bob", "bob's long passphrase");
    const aliceLink = await alice.getByTestId("link").inputValue();

    // Bob adds Alice by her link and writes first.
    await bob.getByTestId("add-link").fill(aliceLink);
    await bob.getByTestId("add").click();
    await bob.waitForFunction(() => document.getElementById("chat-title").textContent.includes("Alice"), null, WAIT);
    await send(bob, "hi Alice");
    await waitForBodies(bob, ["hi Alice"]);

    // Alice sees a message request from Bob, opens it and accepts.
    await alice.waitForSelector('[data-testid="conversation"]', WAIT);
    await alice.locator('[data-testid="conversation"]').first().click();
    await waitForBodies(alice, ["hi Alice"]);
    await alice.getByTestId("accept").click();
    await alice.waitForSelector("#request-bar[hidden]", { ...WAIT, state: "attached" });

    // Typing: Alice types, Bob sees it.
    await alice.getByTestId("text").pressSequentially("he", { delay: 50 });
    await bob.waitForFunction(() => document.getElementById("typing").textContent.includes("is typing"), null, WAIT);
    await alice.getByTestId("text").fill("");

    // Both ways, in turn.
    const expected = ["hi Alice"];
    const turns = [
      [alice, "hello Bob"],
      [bob, "how are you?"],
      [alice, "fine, and you?"],
      [bob, "great 🎉"],
      [alice, "see you"],
    ];
    for (const [page, text] of turns) {
      await send(page, text);
      expected.push(text);
      await waitForBodies(alice, expected);
      await waitForBodies(bob, expected);
    }
    // The typing indicator went away with Alice's message.
    await bob.waitForFunction(() => document.getElementById("typing").textContent === "", null, WAIT);

    // Receipts: Alice has the chat open, so Bob's messages since she accepted him end up read (✓✓
    // in blue); the first one came as a message request, which is not acknowledged.
    await bob.waitForFunction(
      () => [...document.querySelectorAll(".msg.out")].slice(1).every((m) => m.dataset.status === "read"),
      null,
      WAIT,
    );
    // Alice's are at least delivered.
    await alice.waitForFunction(
      () => [...document.querySelectorAll(".msg.out")].every((m) => ["delivered", "read"].includes(m.dataset.status)),
      null,
      WAIT,
    );

    // A reaction from Alice on Bob's first message.
    await alice.locator('[data-testid="message"]').first().getByTestId("react").click();
    await bob.waitForFunction(
      () => document.querySelector('[data-testid="message"] [data-testid="reactions"]')?.textContent === "👍",
      null,
      WAIT,
    );

    // An attachment from Bob, downloaded and decrypted by Alice.
    const file = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256));
    await bob.getByTestId("file").setInputFiles({ name: "notes.bin", mimeType: "application/octet-stream", buffer: file });
    await alice.waitForSelector('[data-testid="download"]', WAIT);
    const [download] = await Promise.all([alice.waitForEvent("download", WAIT), alice.getByTestId("download").click()]);
    assert.equal(download.suggestedFilename(), "notes.bin");
    const got = [];
    for await (const chunk of await download.createReadStream()) got.push(chunk);
    assert.deepEqual(Buffer.concat(got), file, "the attachment's bytes");

    // The same safety number on both sides.
    await alice.getByTestId("show-safety").click();
    await bob.getByTestId("show-safety").click();
    const aliceDigits = await alice.getByTestId("safety-digits").textContent();
    const bobDigits = await bob.getByTestId("safety-digits").textContent();
    assert.match(aliceDigits.replace(/\s/g, ""), /^\d{60}$/);
    assert.equal(aliceDigits, bobDigits);

    // No duplicates, nothing else: the final histories.
    const aliceDirect = await bodies(alice);
    assert.equal(aliceDirect.length, expected.length + 1);
    assert.deepEqual((await bodies(bob)).slice(0, expected.length), expected);

    // A group: Bob creates it with Alice; both write in it.
    await bob.locator("#new-group summary").click();
    await bob.getByTestId("group-name").fill("Friends");
    await bob.locator("#group-members input").check();
    await bob.getByTestId("create-group").click();
    await bob.waitForFunction(() => document.getElementById("chat-title").textContent.includes("Friends"), null, WAIT);
    await send(bob, "hello group");
    const group = alice.locator('[data-testid="conversation"]', { hasText: "Friends" });
    await group.waitFor(WAIT);
    await group.click();
    await waitForBodies(alice, ["hello group"]);
    await send(alice, "hi all");
    await waitForBodies(bob, ["hello group", "hi all"]);
    await waitForBodies(alice, ["hello group", "hi all"]);

    // Reloads. Alice's page reopens her account by itself (its key is in localStorage), with the
    // same id and history.
    const aliceId = await alice.evaluate(() => window.hush.userId);
    const bobId = await bob.evaluate(() => window.hush.userId);
    await alice.evaluate(() => window.hush.saved());
    await alice.reload();
    await alice.waitForSelector("#connection.online", WAIT);
    assert.equal(await alice.evaluate(() => window.hush.userId), aliceId);
    await alice.locator('[data-testid="conversation"]', { hasNotText: "Friends" }).click();
    await waitForBodies(alice, aliceDirect);
    // Bob's asks for his passphrase: a wrong one is refused with a typed error, the right one opens.
    await bob.evaluate(() => window.hush.saved());
    await bob.reload();
    await bob.getByTestId("unlock-passphrase").fill("not it");
    await bob.getByTestId("unlock").click();
    await bob.waitForFunction(
      () => document.getElementById("unlock-error").textContent.includes("[wrong_key]"),
      null,
      WAIT,
    );
    await bob.getByTestId("unlock-passphrase").fill("bob's long passphrase");
    await bob.getByTestId("unlock").click();
    await bob.waitForSelector("#connection.online", WAIT);
    assert.equal(await bob.evaluate(() => window.hush.userId), bobId);
    await bob.locator('[data-testid="conversation"]', { hasText: "Friends" }).click();
    await waitForBodies(bob, ["hello group", "hi all"]);
    // The sessions came back too: the chat goes on both ways.
    await send(alice, "back after a reload");
    await bob.locator('[data-testid="conversation"]', { hasText: "Alice" }).click();
    await bob.waitForFunction(
      () => [...document.querySelectorAll('[data-testid="body"]')].some((e) => e.textContent === "back after a reload"),
      null,
      WAIT,
    );
    await send(bob, "welcome back");
    await waitForBodies(alice, [...aliceDirect, "back after a reload", "welcome back"]);
    console.log(`web chat test passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await browser.close();
    relay.kill("SIGTERM");
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
