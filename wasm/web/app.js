// The hush demo web chat: plain DOM code over the HushClient of the hush-wasm package
// (js/hush-client.js), served by the relay at `/` (scripts/web.sh puts js/ and pkg/web/ beside it).

import { HushClient, relayUrlFor } from "./js/hush-client.js";
import qrcode from "./vendor/qrcode.mjs";

const $ = (id) => document.getElementById(id);
const HISTORY_PAGE = 200;
const TYPING_SEND_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const TYPING_SHOW_MS = 6000;
const REACTION = "👍";
/** The account this browser keeps: its store's name in IndexedDB (see hush-store.js). */
const STORE = "hush-demo";
/**
 * localStorage item naming the kept account: `{ name, key? }`, `key` (hex) only for an account
 * created without a passphrase. That key sits beside the store it opens, so it protects nothing
 * from someone who has this browser profile; a passphrase does (README, "The browser store").
 */
const ACCOUNT = "hush-demo-account";

let client;
let current = null; // the open conversation id
const typing = new Map(); // conversation -> Map(user -> timeout)
let typingSentAt = 0;
let typingIdle = null;

function showError(e) {
  const where = client ? $("app-error") : $("unlock").hidden ? $("register-error") : $("unlock-error");
  where.textContent = e ? `${e.code ? `[${e.code}] ` : ""}${e.message ?? e}` : "";
  if (e) console.error(e);
}

function guard(f) {
  return async (...args) => {
    try {
      showError(null);
      await f(...args);
    } catch (e) {
      showError(e);
    }
  };
}

function qrImage(img, text) {
  const qr = qrcode(0, "L");
  qr.addData(text, "Byte");
  qr.make();
  img.src = qr.createDataURL(3, 2);
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function unhex(s) {
  const clean = s.trim().toLowerCase();
  if (!/^([0-9a-f]{2})*$/.test(clean)) throw new Error("not hex");
  return new Uint8Array(clean.match(/../g)?.map((b) => parseInt(b, 16)) ?? []);
}

// ---- Names --------------------------------------------------------------------------------------

function contactNames() {
  const names = new Map();
  for (const c of client.contacts()) names.set(c.userId, c.name || c.userId.slice(0, 8));
  names.set(client.userId, "me");
  return names;
}

function currentConversation() {
  return client.conversations().find((c) => c.id === current);
}

// ---- Rendering ----------------------------------------------------------------------------------

function renderConversations() {
  const list = $("conversations");
  list.replaceChildren();
  for (const c of client.conversations()) {
    const li = document.createElement("li");
    li.dataset.conversation = c.id;
    li.dataset.testid = "conversation";
    if (c.id === current) li.classList.add("active");
    const name = document.createElement("span");
    name.textContent = `${c.isGroup ? "👥 " : ""}${c.name || c.peer.slice(0, 8)}`;
    li.append(name);
    if (c.unread > 0 && c.id !== current) {
      const badge = document.createElement("span");
      badge.className = "unread";
      badge.textContent = String(c.unread);
      li.append(badge);
    }
    li.addEventListener("click", () => openConversation(c.id));
    list.append(li);
  }
  renderGroupMembers();
}

function renderGroupMembers() {
  const box = $("group-members");
  const checked = new Set([...box.querySelectorAll("input:checked")].map((i) => i.value));
  box.replaceChildren();
  for (const c of client.contacts().filter((c) => c.state === "accepted")) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.value = c.userId;
    input.checked = checked.has(c.userId);
    label.append(input, ` ${c.name || c.userId.slice(0, 8)}`);
    box.append(label, document.createElement("br"));
  }
}

function statusMark(m) {
  switch (m.status) {
    case "sending":
      return ["…", "sending"];
    case "sent":
      return ["✓", "sent"];
    case "delivered":
      return ["✓✓", "delivered"];
    case "read":
      return ["✓✓", "read"];
    case "failed":
      return ["⚠", "failed"];
    default:
      return ["", ""];
  }
}

function renderMessages() {
  if (!current) return;
  const names = contactNames();
  const conv = currentConversation();
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren();
  const page = client.history(current, undefined, HISTORY_PAGE);
  for (const m of page.messages.slice().reverse()) {
    const li = document.createElement("li");
    li.className = `msg ${m.outgoing ? "out" : "in"}${m.deleted ? " deleted" : ""}`;
    li.dataset.testid = "message";
    li.dataset.id = m.id;
    li.dataset.status = m.status;
    if (conv?.isGroup && !m.outgoing) {
      const from = document.createElement("div");
      from.className = "from";
      from.textContent = names.get(m.sender) ?? m.sender.slice(0, 8);
      li.append(from);
    }
    const body = document.createElement("div");
    body.className = "body";
    body.dataset.testid = "body";
    if (m.deleted) {
      body.textContent = "message deleted";
    } else if (m.attachment) {
      const a = document.createElement("button");
      a.type = "button";
      a.dataset.testid = "download";
      a.textContent = `📄 ${m.attachment.fileName ?? "file"} (${m.attachment.size} B)`;
      a.addEventListener("click", guard(() => download(m)));
      body.append(a);
    } else {
      body.textContent = m.text ?? "";
    }
    li.append(body);
    const reactions = document.createElement("div");
    reactions.className = "reactions";
    const counts = new Map();
    for (const r of m.reactions) counts.set(r.emoji, (counts.get(r.emoji) ?? 0) + 1);
    const shown = document.createElement("span");
    shown.dataset.testid = "reactions";
    shown.textContent = [...counts].map(([e, n]) => (n > 1 ? `${e}${n}` : e)).join(" ");
    reactions.append(shown);
    const mine = m.reactions.some((r) => r.user === client.userId && r.emoji === REACTION);
    if (!m.deleted) {
      const react = document.createElement("button");
      react.type = "button";
      react.className = "react";
      react.dataset.testid = "react";
      react.title = mine ? "Withdraw reaction" : "React";
      react.textContent = REACTION;
      react.addEventListener("click", guard(() => {
        client.react(current, m.id, REACTION, mine);
        renderMessages();
      }));
      reactions.append(" ", react);
    }
    li.append(reactions);
    const meta = document.createElement("div");
    meta.className = "meta";
    const [mark, label] = statusMark(m);
    const status = document.createElement("span");
    status.className = `status ${label}`;
    status.dataset.testid = "status";
    status.title = label;
    status.textContent = mark;
    meta.append(`${new Date(m.sentAtMs).toLocaleTimeString()}${m.edited ? " (edited)" : ""} `, status);
    li.append(meta);
    list.append(li);
  }
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function renderTyping() {
  const names = contactNames();
  const who = [...(typing.get(current)?.keys() ?? [])].map((u) => names.get(u) ?? u.slice(0, 8));
  $("typing").textContent = who.length ? `${who.join(", ")} ${who.length > 1 ? "are" : "is"} typing…` : "";
}

function renderChatHeader() {
  const conv = currentConversation();
  $("chat-title").textContent = conv ? `${conv.isGroup ? "👥 " : ""}${conv.name || conv.peer.slice(0, 8)}` : "";
  $("show-safety").hidden = !conv || conv.isGroup;
  const contact = conv && !conv.isGroup ? client.contacts().find((c) => c.userId === conv.peer) : undefined;
  $("request-bar").hidden = contact?.state !== "requested";
}

function openConversation(id) {
  current = id;
  $("chat").hidden = false;
  $("safety").hidden = true;
  renderChatHeader();
  renderMessages();
  renderTyping();
  markRead();
  renderConversations();
  $("text").focus();
}

function markRead() {
  if (!current || document.visibilityState !== "visible") return;
  const conv = currentConversation();
  if (conv && conv.unread > 0) client.markRead(current);
}

// ---- Actions ------------------------------------------------------------------------------------

async function download(m) {
  const bytes = await client.downloadAttachment(m.conversation, m.id);
  const url = URL.createObjectURL(new Blob([bytes], { type: m.attachment.mime }));
  const a = document.createElement("a");
  a.href = url;
  a.download = m.attachment.fileName ?? "attachment";
  a.dataset.testid = "downloaded";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function stopTyping() {
  clearTimeout(typingIdle);
  typingIdle = null;
  if (typingSentAt && current) {
    typingSentAt = 0;
    client.setTyping(current, false);
  }
}

function onTextInput() {
  if (!current) return;
  const now = Date.now();
  if (now - typingSentAt > TYPING_SEND_EVERY_MS) {
    typingSentAt = now;
    client.setTyping(current, true);
  }
  clearTimeout(typingIdle);
  typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function showSafety() {
  const conv = currentConversation();
  if (!conv || conv.isGroup) return;
  const n = client.safetyNumber(conv.peer);
  $("safety-digits").textContent = n.digits.match(/.{1,30}/g)?.join("\n") ?? n.digits;
  qrImage($("safety-qr"), hex(n.qr));
  $("safety-code").textContent = hex(n.qr);
  const contact = client.contacts().find((c) => c.userId === conv.peer);
  $("verify-result").textContent = contact?.verified ? "✔ verified" : "";
  $("safety").hidden = !$("safety").hidden;
}

// ---- Events -------------------------------------------------------------------------------------

function onEvent(e) {
  switch (e.type) {
    case "connection": {
      const el = $("connection");
      el.textContent = e.state === "connected" ? "online" : e.state;
      el.className = e.state === "connected" ? "online" : "offline";
      return;
    }
    case "typing": {
      let who = typing.get(e.conversation);
      if (!who) typing.set(e.conversation, (who = new Map()));
      clearTimeout(who.get(e.sender));
      if (e.started) {
        who.set(e.sender, setTimeout(() => (who.delete(e.sender), renderTyping()), TYPING_SHOW_MS));
      } else {
        who.delete(e.sender);
      }
      renderTyping();
      return;
    }
    case "message":
    case "messageRequest":
      typing.get(e.message.conversation)?.delete(e.message.sender);
      renderTyping();
      if (e.message.conversation === current) markRead();
      break;
    case "groupJoined":
      if (!current) current = e.conversation;
      break;
    case "identityChanged":
      showError({ code: "IdentityChanged", message: "a contact's safety number changed: compare it again" });
      break;
    default:
      break;
  }
  renderConversations();
  if (!current) return;
  if (current && $("chat").hidden) openConversation(current);
  renderChatHeader();
  renderMessages();
}

// ---- Start --------------------------------------------------------------------------------------

function savedAccount() {
  try {
    const a = JSON.parse(localStorage.getItem(ACCOUNT) ?? "null");
    return typeof a?.name === "string" ? a : null;
  } catch {
    return null;
  }
}

function show(c, name) {
  client = c;
  client.onEvent(onEvent);
  client.connect();
  window.hush = client; // for the console and the browser test
  $("register").hidden = true;
  $("unlock").hidden = true;
  $("app").hidden = false;
  $("forget").hidden = false;
  $("me").textContent = `${name} · ${client.userId.slice(0, 16)}…`;
  const link = client.contactLink();
  $("link").value = link;
  qrImage($("my-qr"), link);
  renderConversations();
}

async function register(name, passphrase) {
  const account = { name };
  let unlock = passphrase;
  if (!passphrase) {
    unlock = crypto.getRandomValues(new Uint8Array(32));
    account.key = hex(unlock);
  }
  // A store left without its account record cannot be opened by this page any more.
  await HushClient.deleteStore(STORE);
  const c = await HushClient.create(STORE, unlock, relayUrlFor(location), name);
  localStorage.setItem(ACCOUNT, JSON.stringify(account));
  show(c, name);
}

async function reopen(account, passphrase) {
  const unlock = account.key ? unhex(account.key) : passphrase;
  show(await HushClient.open(STORE, unlock, relayUrlFor(location), account.name), account.name);
}

/** Reopens the kept account (asking for its passphrase if it has one), or offers to create one. */
async function start() {
  const account = savedAccount();
  if (!account || !(await HushClient.storeExists(STORE))) {
    $("register").hidden = false;
    return;
  }
  if (account.key) {
    try {
      await reopen(account);
    } catch (e) {
      $("register").hidden = false; // creating an account replaces the one that does not open
      throw e;
    }
    return;
  }
  $("unlock-name").textContent = account.name;
  $("unlock").hidden = false;
  $("unlock-passphrase").focus();
}

function busy(form, f) {
  return guard(async (ev) => {
    ev.preventDefault();
    form.querySelector("button").disabled = true;
    try {
      await f();
    } finally {
      form.querySelector("button").disabled = false;
    }
  });
}

$("register-form").addEventListener(
  "submit",
  busy($("register-form"), () => register($("name").value.trim(), $("passphrase").value)),
);
$("unlock-form").addEventListener(
  "submit",
  busy($("unlock-form"), () => reopen(savedAccount(), $("unlock-passphrase").value)),
);
$("forget").addEventListener("click", guard(async () => {
  if (!confirm("Delete this account and its messages from this browser?")) return;
  await client?.close();
  await HushClient.deleteStore(STORE);
  localStorage.removeItem(ACCOUNT);
  location.reload();
}));

$("copy-link").addEventListener("click", guard(() => navigator.clipboard.writeText($("link").value)));

$("add-form").addEventListener("submit", guard((ev) => {
  ev.preventDefault();
  const user = client.addContact($("add-link").value.trim());
  $("add-link").value = "";
  openConversation(client.directConversation(user));
}));

$("group-form").addEventListener("submit", guard((ev) => {
  ev.preventDefault();
  const members = [...$("group-members").querySelectorAll("input:checked")].map((i) => i.value);
  const id = client.createGroup($("group-name").value.trim(), members);
  $("group-name").value = "";
  openConversation(id);
}));

$("send-form").addEventListener("submit", guard((ev) => {
  ev.preventDefault();
  const text = $("text").value;
  if (!current || !text.trim()) return;
  stopTyping();
  client.sendText(current, text);
  $("text").value = "";
  renderMessages();
  renderConversations();
}));

$("text").addEventListener("input", guard(onTextInput));
$("attach").addEventListener("click", () => $("file").click());
$("file").addEventListener("change", guard(async () => {
  const file = $("file").files?.[0];
  $("file").value = "";
  if (!file || !current) return;
  await client.sendAttachment(current, new Uint8Array(await file.arrayBuffer()), file.type || "application/octet-stream", file.name);
  renderMessages();
}));

$("show-safety").addEventListener("click", guard(showSafety));
$("verify-form").addEventListener("submit", guard((ev) => {
  ev.preventDefault();
  const conv = currentConversation();
  const ok = client.verify(conv.peer, unhex($("verify-input").value));
  $("verify-result").textContent = ok ? "✔ verified" : "✘ the codes do not match";
}));
$("accept").addEventListener("click", guard(() => {
  client.acceptContact(currentConversation().peer);
  renderChatHeader();
}));
$("block").addEventListener("click", guard(() => {
  client.block(currentConversation().peer);
  renderChatHeader();
}));
document.addEventListener("visibilitychange", guard(() => {
  markRead();
}));

guard(start)();
