// hush-wasm from Node (node:test, no npm downloads): the shared test vectors through the wasm
// package, typed errors, and the web build loading too. Run by `scripts/wasm.sh test` after it
// built wasm/pkg (node and web targets).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const hush = require('../pkg/node/hush_wasm.js');
const pkg = JSON.parse(readFileSync(here('../package.json'), 'utf8'));
const vectors = JSON.parse(readFileSync(here('../../test-vectors/safety_number.json'), 'utf8'));

const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b) => Buffer.from(b).toString('hex');

test('version() is the package version', () => {
  assert.equal(hush.version(), pkg.version);
});

test('safety numbers match test-vectors/safety_number.json in both argument orders', () => {
  assert.equal(vectors.version, 1);
  assert.ok(vectors.cases.length >= 2);
  for (const c of vectors.cases) {
    const a = hex(c.user_a_key);
    const b = hex(c.user_b_key);
    for (const sn of [hush.safetyNumber(a, b), hush.safetyNumber(b, a)]) {
      assert.equal(sn.digits, c.digits, c.name);
      assert.equal(sn.display, c.display, c.name);
      assert.equal(toHex(sn.qrPayload), c.qr_payload, c.name);
      assert.equal(sn.matchesScanned(hex(c.qr_payload)), true, c.name);
      sn.free();
    }
  }
});

test('a different QR payload does not match; a malformed one throws a typed error', () => {
  const c = vectors.cases[0];
  const sn = hush.safetyNumber(hex(c.user_a_key), hex(c.user_b_key));
  const other = hex(vectors.cases[1].qr_payload);
  assert.equal(sn.matchesScanned(other), false);
  const flipped = hex(c.qr_payload);
  flipped[40] ^= 1;
  assert.equal(sn.matchesScanned(flipped), false);
  assert.throws(() => sn.matchesScanned(new Uint8Array(64)), { name: 'HushError', code: 'bad_input', message: /^malformed / });
  const badVersion = hex(c.qr_payload);
  badVersion[0] = 9;
  assert.throws(() => sn.matchesScanned(badVersion), (e) => e.code === 'bad_input' && /unsupported .* version 9/.test(e.message));
});

test('HushError is a class with a code, and an Error', () => {
  const c = vectors.cases[0];
  let caught;
  try {
    hush.safetyNumber(hex(c.user_a_key).subarray(1), hex(c.user_b_key));
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof hush.HushError);
  assert.ok(caught instanceof Error);
  assert.equal(caught.code, 'bad_input');
  assert.equal(caught.name, 'HushError');
  assert.match(caught.message, /malformed user key/);
  assert.equal(String(caught), 'HushError [bad_input]: malformed user key');
});

test('the encrypted store works in this runtime (checkStore)', { skip: !hush.checkStore && 'built without the store feature' }, () => {
  const version = hush.checkStore();
  assert.ok(Number.isInteger(version) && version >= 1, `schema version ${version}`);
});

test('the web build loads in Node with initSync and gives the same answers', async () => {
  const web = await import('../pkg/web/hush_wasm.js');
  web.initSync({ module: readFileSync(here('../pkg/web/hush_wasm_bg.wasm')) });
  const c = vectors.cases[1];
  assert.equal(web.safetyNumber(hex(c.user_a_key), hex(c.user_b_key)).digits, c.digits);
  assert.equal(web.version(), pkg.version);
  assert.throws(() => web.safetyNumber(new Uint8Array(1), new Uint8Array(1)), (e) => e instanceof web.HushError);
});
