// test-vectors/pq_ratchet.json re-derived from docs/PROTOCOL.md §7A in plain JavaScript (node:crypto
// for HKDF and SHA3-256, a Reed-Solomon code over GF(2^8) written here from §7A.4's matrix
// definition): the epoch keys, the key's header, every shard, recovery from parity shards alone, and
// the version-2 message's header, hybrid message key and chunk body. No hush code; run by
// `scripts/wasm.sh test` with the other Node tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const f = JSON.parse(readFileSync(fileURLToPath(new URL('../../test-vectors/pq_ratchet.json', import.meta.url)), 'utf8'));
const hex = (s) => Buffer.from(s, 'hex');
const hkdf = (salt, ikm, info, len) => Buffer.from(hkdfSync('sha256', ikm, salt, info, len));
const be32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };

// GF(2^8) with x^8 + x^4 + x^3 + x^2 + 1.
const mul = (a, b) => {
  let out = 0;
  while (b) {
    if (b & 1) out ^= a;
    a <<= 1;
    if (a & 0x100) a ^= 0x11d;
    b >>= 1;
  }
  return out;
};
const pow = (a, e) => { let out = 1; for (let i = 0; i < e; i++) out = mul(out, a); return out; };
const inv = (a) => { for (let x = 1; x < 256; x++) if (mul(a, x) === 1) return x; throw new Error('0'); };
const dot = (xs, ys) => xs.reduce((acc, x, i) => acc ^ mul(x, ys[i]), 0);

function invert(m) {
  const k = m.length;
  const a = m.map((row, r) => [...row, ...Array.from({ length: k }, (_, c) => (r === c ? 1 : 0))]);
  for (let col = 0; col < k; col++) {
    let p = col;
    while (!a[p][col]) p++;
    [a[col], a[p]] = [a[p], a[col]];
    const f = inv(a[col][col]);
    a[col] = a[col].map((x) => mul(x, f));
    for (let r = 0; r < k; r++) {
      if (r !== col && a[r][col]) {
        const g = a[r][col];
        a[r] = a[r].map((x, i) => x ^ mul(g, a[col][i]));
      }
    }
  }
  return a.map((row) => row.slice(k));
}

// G = V · V[0..k]⁻¹ with V[r][c] = r^c, 2k rows.
function encodingMatrix(k) {
  const v = Array.from({ length: 2 * k }, (_, r) => Array.from({ length: k }, (_, c) => pow(r, c)));
  const t = invert(v.slice(0, k));
  return v.map((row) => Array.from({ length: k }, (_, c) => dot(row, t.map((tr) => tr[c]))));
}

const pieces = (data, k) => Array.from({ length: k }, (_, i) => data.subarray(i * 64, (i + 1) * 64));
const apply = (rows, ps) => rows.map((row) => Buffer.from(Array.from({ length: 64 }, (_, j) => dot(row, ps.map((p) => p[j])))));

test('epoch keys: PQ_INIT and PQ_EPOCH', () => {
  const k0 = hkdf(Buffer.alloc(32), hex(f.sk), 'hush/pqratchet/v1/init', 64);
  assert.deepEqual([k0.subarray(0, 32).toString('hex'), k0.subarray(32).toString('hex')], [f.pr0, f.k0]);
  const info = Buffer.concat([Buffer.from('hush/pqratchet/v1/epoch'), be32(1)]);
  const k1 = hkdf(hex(f.pr0), hex(f.shared_secret), info, 64);
  assert.deepEqual([k1.subarray(0, 32).toString('hex'), k1.subarray(32).toString('hex')], [f.pr1, f.k1]);
});

test('the key header, every shard, and recovery from parity alone', () => {
  const pk1 = hex(f.pk1);
  const pk2 = hex(f.pk2);
  // pk1 = rho || SHA3-256(ek), ek = t || rho.
  const digest = createHash('sha3-256').update(Buffer.concat([pk2, pk1.subarray(0, 32)])).digest();
  assert.equal(pk1.subarray(32).toString('hex'), digest.toString('hex'));
  for (const [object, k, expected] of [
    [Buffer.concat([pk1, pk2]), 19, f.key_shards],
    [Buffer.concat([hex(f.ct1), hex(f.ct2)]), 17, f.ciphertext_shards],
  ]) {
    const g = encodingMatrix(k);
    const all = apply(g, pieces(object, k));
    assert.deepEqual(all.map((s) => s.toString('hex')), expected);
    const parity = all.slice(k);
    const recovered = Buffer.concat(apply(invert(g.slice(k)), parity));
    assert.equal(recovered.toString('hex'), object.toString('hex'));
  }
});

test('a version-2 message: header, hybrid message key, chunk body', () => {
  const m = f.message;
  const header = hex(m.header_plaintext);
  assert.equal(header.length, 45);
  assert.equal(header[0], 2);
  assert.equal(header.readUInt32BE(41), 1);
  assert.equal(m.epoch_key, f.k1);
  const okm = hkdf(hex(m.epoch_key), hex(m.message_key), 'hush/ratchet/v2/message', 44);
  assert.deepEqual([okm.subarray(0, 32).toString('hex'), okm.subarray(32).toString('hex')], [m.aead_key, m.aead_nonce]);
  const body = hex(m.body);
  assert.deepEqual([body[0], body[1]], [1, 0]);
  assert.equal(body.subarray(66).toString('hex'), m.plaintext);
  const padded = hex(m.padded_body);
  assert.equal(padded.subarray(0, body.length).toString('hex'), m.body);
  assert.equal(padded[body.length], 0x80);
});
