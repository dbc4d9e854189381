// Error codes from Node (node:test): every HushError's `code` is the kind of the failure, the same
// in Python, Kotlin and Swift; the codes this package declares (`HushErrorCode` in its .d.ts) are
// hush-core's (`errorCodes()`). Needs no relay: nothing here connects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const hush = require('../pkg/node/hush_wasm.js');
const { WasmClient, HushError } = hush;
const RELAY = 'ws://127.0.0.1:9/v1/ws';
const CODES = ['bad_input', 'decryption', 'duplicate', 'identity', 'protocol', 'storage', 'wrong_key', 'network',
  'not_found', 'internal'];

/** The HushError that `f` throws. */
function thrown(f) {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof HushError && e instanceof Error, `not a HushError: ${e}`);
    return e;
  }
  assert.fail('nothing thrown');
}

test('the codes are hush-core\'s, and the TypeScript type declares exactly them', () => {
  assert.deepEqual(hush.errorCodes(), CODES);
  const dts = readFileSync(here('../pkg/node/hush_wasm.d.ts'), 'utf8');
  const declared = dts.match(/export type HushErrorCode =([^;]*);/);
  assert.ok(declared, 'no HushErrorCode in the .d.ts');
  assert.deepEqual([...declared[1].matchAll(/"([a-z_]+)"/g)].map((m) => m[1]), CODES);
});

test('a bad id is bad_input', { skip: !WasmClient && 'built without the store feature' }, () => {
  const eve = WasmClient.create(RELAY, 'Eve');
  const e = thrown(() => eve.sendText('zz', 'hi'));
  assert.equal(e.code, 'bad_input');
  assert.match(e.message, /malformed conversation id/);
  assert.equal(String(e), `HushError [bad_input]: ${e.message}`);
  assert.equal(thrown(() => hush.safetyNumber(new Uint8Array(31), new Uint8Array(32))).code, 'bad_input');
});

test('a wrong store key is wrong_key', { skip: !WasmClient && 'built without the store feature' }, () => {
  const key = new Uint8Array(32).fill(1);
  const eve = WasmClient.createStore(key, undefined, RELAY, 'Eve');
  const image = eve.takeStoreImage();
  const e = thrown(() => WasmClient.open(image, new Uint8Array(32).fill(2), undefined, RELAY, 'Eve'));
  assert.equal(e.code, 'wrong_key');
  assert.ok(CODES.includes(thrown(() => WasmClient.open(new Uint8Array(10), key, undefined, RELAY, 'Eve')).code));
});

test('a stranger has no session: protocol', { skip: !WasmClient && 'built without the store feature' }, () => {
  const eve = WasmClient.create(RELAY, 'Eve');
  const stranger = WasmClient.create(RELAY, 'Stranger');
  const e = thrown(() => eve.safetyNumber(stranger.userId));
  assert.equal(e.code, 'protocol');
  assert.equal(e.message, 'no session');
  assert.equal(thrown(() => WasmClient.createForLink(RELAY, 'laptop').userId).code, 'protocol');
});

test('an unknown message is not_found', { skip: !WasmClient && 'built without the store feature' }, () => {
  const eve = WasmClient.create(RELAY, 'Eve');
  const chat = eve.directConversation(WasmClient.create(RELAY, 'Kim').userId);
  assert.equal(thrown(() => eve.attachmentBlobId(chat, '00'.repeat(16))).code, 'not_found');
});

test('a config whose contact link no one could add is bad_input', { skip: !WasmClient && 'built without the store feature' }, () => {
  for (const [relay, name, detail] of [
    [RELAY, 'n'.repeat(1024 * 1024), /display name/],
    ['not a url', 'Eve', /relay URL/],
    ['https://relay.example/v1/ws', 'Eve', /relay URL/],
  ]) {
    const e = thrown(() => WasmClient.create(relay, name));
    assert.equal(e.code, 'bad_input');
    assert.match(e.message, detail);
  }
});
