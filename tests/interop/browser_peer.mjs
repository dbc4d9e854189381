// The browser participant of the interop test: hush-wasm's HushClient in headless Chromium, on a
// page the relay serves, driven over stdin/stdout with the JSON-lines protocol of run.py.
//
//   node tests/interop/browser_peer.mjs <relay base url> <name>
//
// Needs playwright-core (resolved from wasm/tests/web/node_modules) and /usr/bin/chromium.

import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(join(root, "wasm", "tests", "web", "package.json"));
const { chromium } = require("playwright-core");

const [base, name] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-background-networking"],
});
const page = await (await browser.newContext()).newPage();
page.on("pageerror", (e) => console.error(`[${name}] page error:`, e));
await page.goto(base);
await page.evaluate(
  async ({ relay, name }) => {
    const { HushClient } = await import("/js/hush-client.js");
    const client = await HushClient.create(relay, name);
    window.peer = client;
    window.peerEvents = [];
    client.onEvent((e) => window.peerEvents.push(e));
    client.connect();
  },
  { relay: base.replace(/^http/, "ws") + "/v1/ws", name },
);

/** The protocol's normalized events from the wrapper's. */
function normalize(e) {
  switch (e.type) {
    case "message":
      return {
        type: "message",
        conversation: e.message.conversation,
        id: e.message.id,
        sender: e.message.sender,
        text: e.message.text ?? null,
        attachment: e.message.attachment !== undefined,
      };
    case "groupJoined":
      return { type: "group_joined", conversation: e.conversation };
    case "reaction":
      return { type: "reaction", conversation: e.conversation, id: e.messageId, from: e.sender, emoji: e.emoji, removed: e.removed };
    case "connection":
      return { type: "connection", state: e.state };
    default:
      return null;
  }
}

async function handle(cmd) {
  switch (cmd.op) {
    case "hello":
      return page.evaluate(() => ({ user: window.peer.userId, link: window.peer.contactLink() }));
    case "add_contact":
      return { user: await page.evaluate((l) => window.peer.addContact(l), cmd.link) };
    case "create_group":
      return { conversation: await page.evaluate(({ n, m }) => window.peer.createGroup(n, m), { n: cmd.name, m: cmd.members }) };
    case "send_text":
      return { id: await page.evaluate(({ c, t }) => window.peer.sendText(c, t), { c: cmd.conversation, t: cmd.text }) };
    case "react":
      await page.evaluate(({ c, i, e }) => window.peer.react(c, i, e, false), { c: cmd.conversation, i: cmd.id, e: cmd.emoji });
      return {};
    case "send_attachment":
      return {
        id: await page.evaluate(
          async ({ c, b, m }) => {
            const bytes = Uint8Array.from(atob(b), (ch) => ch.charCodeAt(0));
            return window.peer.sendAttachment(c, bytes, m, "interop.bin");
          },
          { c: cmd.conversation, b: cmd.bytes_b64, m: cmd.mime },
        ),
      };
    case "download":
      return {
        bytes_b64: await page.evaluate(
          async ({ c, i }) => {
            const bytes = await window.peer.downloadAttachment(c, i);
            let s = "";
            for (const b of bytes) s += String.fromCharCode(b);
            return btoa(s);
          },
          { c: cmd.conversation, i: cmd.id },
        ),
      };
    case "history":
      return {
        ids: await page.evaluate(
          ({ c }) => window.peer.history(c, undefined, 200).messages.map((m) => m.id).reverse(),
          { c: cmd.conversation },
        ),
      };
    case "events": {
      const raw = await page.evaluate(() => window.peerEvents.splice(0));
      return { events: raw.map(normalize).filter((e) => e !== null) };
    }
    case "quit":
      await browser.close();
      return {};
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line);
  try {
    process.stdout.write(JSON.stringify({ ok: true, ...(await handle(cmd)) }) + "\n");
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(e) }) + "\n");
  }
  if (cmd.op === "quit") break;
}
process.exit(0);
