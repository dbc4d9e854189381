package dev.hush

import java.security.MessageDigest
import javax.crypto.Mac
import javax.crypto.spec.SecretKeySpec
import kotlin.test.Test
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals

/**
 * `test-vectors/pq_ratchet.json` re-derived from docs/PROTOCOL.md §7A on the JVM alone (HmacSHA256,
 * SHA3-256, and a Reed-Solomon code over GF(2^8) written here from §7A.4's matrix definition): the
 * epoch keys, the key's header, every shard, recovery from parity shards alone, and the version-2
 * message's hybrid message key and chunk body. No hush code, native or generated.
 */
class PqRatchetVectorTest {
    private val f = TestVectors.load("pq_ratchet.json")

    private fun hmac(key: ByteArray, data: ByteArray): ByteArray =
        Mac.getInstance("HmacSHA256").run {
            init(SecretKeySpec(key, "HmacSHA256"))
            doFinal(data)
        }

    private fun hkdf(salt: ByteArray, ikm: ByteArray, info: ByteArray, length: Int): ByteArray {
        val prk = hmac(salt, ikm)
        var out = ByteArray(0)
        var block = ByteArray(0)
        var i = 1
        while (out.size < length) {
            block = hmac(prk, block + info + byteArrayOf(i.toByte()))
            out += block
            i++
        }
        return out.copyOf(length)
    }

    private fun mul(x: Int, y: Int): Int {
        var a = x
        var b = y
        var out = 0
        while (b != 0) {
            if (b and 1 == 1) out = out xor a
            a = a shl 1
            if (a and 0x100 != 0) a = a xor 0x11d
            b = b shr 1
        }
        return out
    }

    private fun pow(a: Int, e: Int): Int = (0 until e).fold(1) { acc, _ -> mul(acc, a) }

    private fun inv(a: Int): Int = (1..255).first { mul(a, it) == 1 }

    private fun dot(xs: IntArray, ys: IntArray): Int = xs.indices.fold(0) { acc, i -> acc xor mul(xs[i], ys[i]) }

    private fun invert(m: List<IntArray>): List<IntArray> {
        val k = m.size
        val a = m.mapIndexed { r, row -> IntArray(2 * k) { c -> if (c < k) row[c] else if (c - k == r) 1 else 0 } }
            .toMutableList()
        for (col in 0 until k) {
            val p = (col until k).first { a[it][col] != 0 }
            a[col] = a[p].also { a[p] = a[col] }
            val f = inv(a[col][col])
            a[col] = IntArray(2 * k) { mul(a[col][it], f) }
            for (r in 0 until k) {
                if (r != col && a[r][col] != 0) {
                    val g = a[r][col]
                    a[r] = IntArray(2 * k) { a[r][it] xor mul(g, a[col][it]) }
                }
            }
        }
        return a.map { it.copyOfRange(k, 2 * k) }
    }

    /** G = V · V[0..k]⁻¹ with V[r][c] = r^c, 2k rows. */
    private fun encodingMatrix(k: Int): List<IntArray> {
        val v = (0 until 2 * k).map { r -> IntArray(k) { c -> pow(r, c) } }
        val t = invert(v.subList(0, k))
        return v.map { row -> IntArray(k) { c -> dot(row, IntArray(k) { t[it][c] }) } }
    }

    private fun apply(rows: List<IntArray>, pieces: List<ByteArray>): List<ByteArray> =
        rows.map { row -> ByteArray(64) { j -> dot(row, IntArray(pieces.size) { pieces[it][j].toInt() and 0xff }).toByte() } }

    private fun pieces(data: ByteArray, k: Int) = (0 until k).map { data.copyOfRange(64 * it, 64 * it + 64) }

    private fun ByteArray.hex(): String = joinToString("") { "%02x".format(it) }

    @Test
    fun epochKeys() {
        val k0 = hkdf(ByteArray(32), f.hex("sk"), "hush/pqratchet/v1/init".toByteArray(), 64)
        assertEquals(f.getString("pr0"), k0.copyOfRange(0, 32).hex())
        assertEquals(f.getString("k0"), k0.copyOfRange(32, 64).hex())
        val info = "hush/pqratchet/v1/epoch".toByteArray() + byteArrayOf(0, 0, 0, 1)
        val k1 = hkdf(f.hex("pr0"), f.hex("shared_secret"), info, 64)
        assertEquals(f.getString("pr1"), k1.copyOfRange(0, 32).hex())
        assertEquals(f.getString("k1"), k1.copyOfRange(32, 64).hex())
    }

    @Test
    fun keyHeaderShardsAndRecovery() {
        val pk1 = f.hex("pk1")
        val pk2 = f.hex("pk2")
        val digest = MessageDigest.getInstance("SHA3-256").digest(pk2 + pk1.copyOfRange(0, 32))
        assertContentEquals(digest, pk1.copyOfRange(32, 64))
        for ((obj, k, key) in listOf(Triple(pk1 + pk2, 19, "key_shards"), Triple(f.hex("ct1") + f.hex("ct2"), 17, "ciphertext_shards"))) {
            val g = encodingMatrix(k)
            val all = apply(g, pieces(obj, k))
            val expected = f.getJSONArray(key)
            assertEquals(2 * k, expected.length())
            all.forEachIndexed { i, s -> assertEquals(expected.getString(i), s.hex(), "$key[$i]") }
            val recovered = apply(invert(g.subList(k, 2 * k)), all.subList(k, 2 * k)).reduce { a, b -> a + b }
            assertContentEquals(obj, recovered)
        }
    }

    @Test
    fun version2Message() {
        val m = f.getJSONObject("message")
        val header = m.hex("header_plaintext")
        assertEquals(45, header.size)
        assertEquals(2, header[0].toInt())
        assertContentEquals(byteArrayOf(0, 0, 0, 1), header.copyOfRange(41, 45))
        assertEquals(f.getString("k1"), m.getString("epoch_key"))
        val okm = hkdf(m.hex("epoch_key"), m.hex("message_key"), "hush/ratchet/v2/message".toByteArray(), 44)
        assertEquals(m.getString("aead_key"), okm.copyOfRange(0, 32).hex())
        assertEquals(m.getString("aead_nonce"), okm.copyOfRange(32, 44).hex())
        val body = m.hex("body")
        assertContentEquals(byteArrayOf(1, 0), body.copyOfRange(0, 2))
        assertContentEquals(m.hex("plaintext"), body.copyOfRange(66, body.size))
    }
}
