package dev.hush

import kotlin.test.Test
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertTrue

/** The shared test vectors, checked through the Kotlin binding and the native library. */
class VectorsTest {
    @Test
    fun versionIsTheCrateVersion() {
        assertEquals("0.1.0", hushVersion())
    }

    @Test
    fun safetyNumbers() {
        for (c in TestVectors.cases("safety_number.json")) {
            val n = computeSafetyNumber(c.hex("user_a_key"), c.hex("user_b_key"))
            assertEquals(c.getString("digits"), n.digits, c.getString("name"))
            assertEquals(60, n.digits.length)
            assertEquals(c.getString("display"), n.display)
            assertContentEquals(c.hex("qr_payload"), n.qrPayload)
            val swapped = computeSafetyNumber(c.hex("user_b_key"), c.hex("user_a_key"))
            assertEquals(n.digits, swapped.digits)
            assertContentEquals(n.qrPayload, swapped.qrPayload)
        }
    }

    @Test
    fun shortUserKeyIsBadInput() {
        assertFailsWith<HushException.BadInput> { computeSafetyNumber(ByteArray(31), ByteArray(32)) }
    }

    @Test
    fun deviceLists() {
        for (c in TestVectors.cases("device_list.json")) {
            val list = verifyDeviceList(c.hex("signed_device_list"), c.hex("user_key"))
            assertContentEquals(c.hex("user_key"), list.userKey)
            assertEquals(c.getLong("list_version").toULong(), list.listVersion)
            assertEquals(c.getLong("created_at").toULong(), list.createdAt)
            val want = c.getJSONArray("devices").objects()
            assertEquals(want.size, list.devices.size)
            for ((got, w) in list.devices.zip(want)) {
                assertContentEquals(w.hex("device_key"), got.deviceKey)
                assertContentEquals(w.hex("identity_key"), got.identityKey)
                assertContentEquals(w.hex("identity_signature"), got.identitySignature)
            }
        }
    }

    @Test
    fun tamperedDeviceListIsATypedIdentityError() {
        val c = TestVectors.cases("device_list.json").first()
        val tampered = c.hex("signed_device_list")
        tampered[tampered.size - 1] = (tampered[tampered.size - 1].toInt() xor 1).toByte()
        val e = assertFailsWith<HushException> { verifyDeviceList(tampered, null) }
        assertIs<HushException.Identity>(e)
        assertTrue(e.message!!.contains("signature"), e.message)
    }

    @Test
    fun sealedEnvelopes() {
        for (c in TestVectors.cases("sealed_sender.json")) {
            val r = c.getJSONObject("recipient")
            val opened = openSealedEnvelope(r.hex("device_signing_secret"), r.hex("identity_secret"), c.hex("envelope"))
            assertContentEquals(c.hex("sender_user_key"), opened.senderUserKey)
            val s = c.getJSONObject("sender")
            assertContentEquals(s.hex("device_key"), opened.senderDevice.deviceKey)
            assertContentEquals(s.hex("identity_key"), opened.senderDevice.identityKey)
            val kind = if (c.getString("kind") == "session") SealedKind.SESSION else SealedKind.GROUP
            assertEquals(kind, opened.kind)
            assertContentEquals(c.hex("inner"), opened.inner)
            // The sender's own secrets do not open an envelope sealed to the recipient.
            assertFailsWith<HushException.Decryption> {
                openSealedEnvelope(s.hex("device_signing_secret"), s.hex("identity_secret"), c.hex("envelope"))
            }
        }
    }

    @Test
    fun deliveryTokenHashes() {
        for (t in TestVectors.load("sealed_sender.json").getJSONArray("delivery_tokens").objects()) {
            assertContentEquals(t.hex("hash"), deliveryTokenHash(t.hex("token")))
        }
        assertFailsWith<HushException.BadInput> { deliveryTokenHash(ByteArray(5)) }
    }
}
