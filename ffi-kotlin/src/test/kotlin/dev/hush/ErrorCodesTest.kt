package dev.hush

import java.nio.file.Files
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlinx.coroutines.runBlocking

/**
 * Error codes: every failing call throws the [HushException] subclass of its kind, whose [code] is
 * the kind's stable name, the same in Python, Swift and TypeScript; the codes this binding has are
 * hush-core's ([hushErrorCodes]). Needs no relay.
 */
class ErrorCodesTest {
    private val relay = "ws://127.0.0.1:9/v1/ws" // never reached: nothing here connects

    private fun client(name: String) = HushClient.create(":memory:", ByteArray(32) { 5 }, null, relay, name)

    @Test
    fun theCodesAreCoresAndOneClassEach() {
        val codes = listOf(
            "bad_input", "decryption", "duplicate", "identity", "protocol",
            "storage", "wrong_key", "network", "not_found", "internal",
        )
        assertEquals(codes, hushErrorCodes())
        val classes = HushException::class.java.declaredClasses.filter {
            HushException::class.java.isAssignableFrom(it) && it != HushException::class.java
        }
        val mine = classes.map { (it.getConstructor(String::class.java).newInstance("x") as HushException).code }
        assertEquals(codes.sorted(), mine.sorted())
    }

    @Test
    fun aBadIdIsBadInput() {
        val e = assertFailsWith<HushException.BadInput> { client("Eve").sendText("zz", "hi") }
        assertEquals("bad_input", e.code)
    }

    @Test
    fun aConfigWhoseContactLinkNoOneCouldAddIsBadInput() {
        val refused = listOf(
            relay to "n".repeat(1024 * 1024) to "display name",
            "not a url" to "Eve" to "relay URL",
            "https://relay.example/v1/ws" to "Eve" to "relay URL",
        )
        for ((config, detail) in refused) {
            val e = assertFailsWith<HushException.BadInput> {
                HushClient.create(":memory:", ByteArray(32) { 5 }, null, config.first, config.second)
            }
            assertEquals("bad_input", e.code)
            kotlin.test.assertContains(e.message ?: "", detail)
        }
    }

    @Test
    fun aWrongStoreKeyIsWrongKey() {
        val path = Files.createTempDirectory("hush-kt-").resolve("eve.db").toString()
        // Closed first: an open store holds its file (a second open is "storage", in use).
        HushClient.create(path, ByteArray(32) { 1 }, null, relay, "Eve").close()
        val e = assertFailsWith<HushException> { HushClient.open(path, ByteArray(32) { 2 }, null, relay, "Eve") }
        assertEquals("wrong_key", e.code)
    }

    @Test
    fun aSecondOpenOfAnOpenStoreIsInUse() {
        val path = Files.createTempDirectory("hush-kt-").resolve("eve.db").toString()
        val first = HushClient.create(path, ByteArray(32) { 1 }, null, relay, "Eve")
        val e = assertFailsWith<HushException> { HushClient.open(path, ByteArray(32) { 1 }, null, relay, "Eve") }
        assertEquals("storage", e.code)
        kotlin.test.assertContains(e.message ?: "", "in use")
        first.close()
        HushClient.open(path, ByteArray(32) { 1 }, null, relay, "Eve").close()
    }

    @Test
    fun aStrangerHasNoSessionAProtocolError() {
        val stranger = client("Stranger").userId()
        val e = assertFailsWith<HushException> { client("Eve").safetyNumber(stranger) }
        assertEquals("protocol", e.code)
        assertEquals("no session", e.message)
    }

    @Test
    fun anUnknownMessageIsNotFound() {
        val eve = client("Eve")
        val conversation = eve.directConversation(client("Kim").userId())
        val e = assertFailsWith<HushException> { runBlocking { eve.downloadAttachment(conversation, "00".repeat(16)) } }
        assertEquals("not_found", e.code)
    }
}
