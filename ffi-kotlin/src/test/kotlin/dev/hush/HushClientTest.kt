package dev.hush

import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertTrue
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.runBlocking

/**
 * HushClient on the JVM without a relay: accounts, links, typed errors, and what works offline
 * (a message waits in the outbox, in history as Sending). Talking through a relay is the interop
 * test's part (tests/interop, with Python and the browser).
 */
class HushClientTest {
    private fun client(name: String) = HushClient.create(":memory:", ByteArray(32) { 3 }, null, "ws://127.0.0.1:9/v1/ws", name)

    @Test
    fun anAccountHasIdsAndALink() {
        val c = client("Kim")
        assertEquals(64, c.userId().length)
        assertEquals(64, c.deviceId().length)
        assertTrue(c.contactLink().startsWith("hush://contact/"))
    }

    @Test
    fun errorsAreTyped() {
        val c = client("Kim")
        assertFailsWith<HushException.BadInput> { c.addContact("https://example.com") }
        assertFailsWith<HushException.BadInput> { c.sendText("zz", "hi") }
        assertFailsWith<HushException.BadInput> { HushClient.create(":memory:", ByteArray(5), null, "ws://x", "x") }
        assertFailsWith<HushException.BadInput> { HushClient.create(":memory:", null, null, "ws://x", "x") }
    }

    @Test
    fun aListenerThatThrowsStillGetsTheNextEventsAndAnUnreachableRelayIsOne() {
        val c = client("Kim") // nothing listens on port 9
        val calls = AtomicInteger()
        val states = ConcurrentLinkedQueue<HushConnectionState>()
        c.setListener(object : HushListener {
            override fun onEvent(event: HushEvent) {
                calls.incrementAndGet()
                if (event is HushEvent.Connection) states.add(event.state)
                throw IllegalStateException("a bug in the application's listener")
            }
        })
        runBlocking { c.connect() }
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20)
        while (calls.get() < 2 && System.nanoTime() < deadline) Thread.sleep(20)
        runBlocking { c.disconnect() }
        assertTrue(calls.get() >= 2, "delivery stopped after the listener threw (${calls.get()} events)")
        val first = assertIs<HushConnectionState.Unreachable>(states.first())
        assertTrue(first.reason.startsWith("cannot connect"), first.reason)
        assertTrue(first.retryInMs in 250uL..375uL, "${first.retryInMs}")
    }

    @Test
    fun aMessageWrittenOfflineWaitsInHistory() {
        val kim = client("Kim")
        val lee = client("Lee")
        val leeId = kim.addContact(lee.contactLink())
        val conversation = kim.directConversation(leeId)
        val id = kim.sendText(conversation, "see you at eight")
        val page = kim.history(conversation, null, 10u)
        assertEquals(listOf(id), page.messages.map { it.id })
        assertEquals(HushMessageStatus.SENDING, page.messages[0].status)
        assertEquals(listOf("see you at eight"), kim.search("eight").map { it.text })
        assertEquals(listOf(conversation), kim.conversations().map { it.id })
        assertEquals(listOf("accepted"), kim.contacts().map { it.state })
    }
}
