"""test-vectors/pq_ratchet.json re-derived from docs/PROTOCOL.md §7A with the standard library alone
(hashlib, hmac): no hush code, native or Python. The epoch keys (HKDF), the encapsulation key's header
(pk1 = rho || SHA3-256(t || rho)), every erasure-code shard (the Reed-Solomon code of §7A.4, written
here from its matrix definition), recovery from parity shards alone, and the version-2 message's
header layout, hybrid message key, chunk body and padding. ML-KEM itself and the AEAD are re-derived
by the Rust independent check (core/src/vectors/pq_ratchet.rs)."""

import hashlib
import hmac

from conftest import load_vectors


def h(s):
    return bytes.fromhex(s)


def hkdf(salt, ikm, info, length):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def gf_mul(a, b):
    """GF(2^8) with x^8 + x^4 + x^3 + x^2 + 1 (0x11D)."""
    out = 0
    while b:
        if b & 1:
            out ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11D
        b >>= 1
    return out


def gf_pow(a, e):
    out = 1
    for _ in range(e):
        out = gf_mul(out, a)
    return out


def gf_inv(a):
    return next(x for x in range(1, 256) if gf_mul(a, x) == 1)


def invert(m):
    k = len(m)
    a = [row[:] + [int(r == c) for c in range(k)] for r, row in enumerate(m)]
    for col in range(k):
        pivot = next(r for r in range(col, k) if a[r][col])
        a[col], a[pivot] = a[pivot], a[col]
        f = gf_inv(a[col][col])
        a[col] = [gf_mul(x, f) for x in a[col]]
        for r in range(k):
            if r != col and a[r][col]:
                f = a[r][col]
                a[r] = [x ^ gf_mul(f, y) for x, y in zip(a[r], a[col])]
    return [row[k:] for row in a]


def matmul(a, b):
    return [[_dot(row, [b[i][c] for i in range(len(b))]) for c in range(len(b[0]))] for row in a]


def _dot(xs, ys):
    out = 0
    for x, y in zip(xs, ys):
        out ^= gf_mul(x, y)
    return out


def encoding_matrix(k):
    """G = V * inverse(V[0..k]), V[r][c] = r^c, 2k rows."""
    v = [[gf_pow(r, c) for c in range(k)] for r in range(2 * k)]
    return matmul(v, invert(v[:k]))


def shards(data, k):
    pieces = [data[i * 64:(i + 1) * 64] for i in range(k)]
    return [bytes(_dot(row, [p[j] for p in pieces]) for j in range(64)) for row in encoding_matrix(k)]


def recover(indexed, k):
    """The object from any k (index, shard) pairs."""
    g = encoding_matrix(k)
    inv = invert([g[i] for i, _ in indexed])
    pieces = [s for _, s in indexed]
    return b"".join(bytes(_dot(row, [p[j] for p in pieces]) for j in range(64)) for row in inv)


def pad(body):
    length = max(len(body) + 1, 64)
    e = length.bit_length() - 1
    s = e.bit_length()
    mask = (1 << (e - s)) - 1
    return body + b"\x80" + b"\x00" * (((length + mask) & ~mask) - len(body) - 1)


def test_epoch_keys():
    f = load_vectors("pq_ratchet.json")
    k0 = hkdf(b"\x00" * 32, h(f["sk"]), b"hush/pqratchet/v1/init", 64)
    assert (k0[:32].hex(), k0[32:].hex()) == (f["pr0"], f["k0"])
    k1 = hkdf(h(f["pr0"]), h(f["shared_secret"]), b"hush/pqratchet/v1/epoch" + (1).to_bytes(4, "big"), 64)
    assert (k1[:32].hex(), k1[32:].hex()) == (f["pr1"], f["k1"])


def test_key_header_and_shards():
    f = load_vectors("pq_ratchet.json")
    pk1, pk2 = h(f["pk1"]), h(f["pk2"])
    assert (len(pk1), len(pk2)) == (64, 1152)
    # pk1 = rho || SHA3-256(ek) with ek = t || rho, t = pk2.
    assert pk1[32:] == hashlib.sha3_256(pk2 + pk1[:32]).digest()
    key = shards(pk1 + pk2, 19)
    assert [s.hex() for s in key] == f["key_shards"]
    assert key[0] == pk1
    ct = shards(h(f["ct1"]) + h(f["ct2"]), 17)
    assert [s.hex() for s in ct] == f["ciphertext_shards"]
    # Any k distinct shards rebuild the object: here the parity shards alone.
    assert recover(list(enumerate(key))[19:], 19) == pk1 + pk2
    assert recover(list(enumerate(ct))[17:], 17) == h(f["ct1"]) + h(f["ct2"])


def test_version_2_message():
    f = load_vectors("pq_ratchet.json")
    m = f["message"]
    header = h(m["header_plaintext"])
    assert len(header) == 45 and header[0] == 2 and header[41:] == (1).to_bytes(4, "big")
    assert m["epoch_key"] == f["k1"]
    okm = hkdf(h(m["epoch_key"]), h(m["message_key"]), b"hush/ratchet/v2/message", 44)
    assert (okm[:32].hex(), okm[32:].hex()) == (m["aead_key"], m["aead_nonce"])
    body = h(m["body"])
    # The chunk: tag 0x01, index 0, the first shard of epoch 2's key, then the plaintext.
    assert body[:2] == b"\x01\x00" and body[66:] == h(m["plaintext"])
    assert pad(body).hex() == m["padded_body"]
    # Chunks ride in order: the key's shards 0, 1, 2, ... in epoch 0.
    key_indices = [x["shard"] for x in f["messages"] if x["sender"] == "responder" and x["shard"] is not None]
    assert key_indices == list(range(len(key_indices)))
