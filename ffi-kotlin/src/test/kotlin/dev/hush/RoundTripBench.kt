package dev.hush

import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.runBlocking

/**
 * FFI overhead benchmark, Kotlin side: the calls of bindings/examples/roundtrip.rs through the
 * uniffi Kotlin binding on the JVM (bench/ffi.sh runs all three languages against one relay).
 *
 * Arguments: the relay's WebSocket URL and the number of round trips.
 */
fun main(args: Array<String>) {
    val relay = args.getOrElse(0) { "ws://127.0.0.1:8080/v1/ws" }
    val rounds = args.getOrElse(1) { "200" }.toInt()
    val (a, _) = benchClient(relay, "bench-a")
    val (b, bEvents) = benchClient(relay, "bench-b")
    runBlocking {
        a.connect()
        b.connect()
    }
    val toB = a.directConversation(a.addContact(b.contactLink()))
    repeat(20) {
        a.sendText(toB, "warm-up $it")
        waitMessage(bEvents)
    }
    // The JIT compiles the binding's hot paths first, as it would in a long-running app.
    repeat(2_000) { a.history(toB, null, 20u) }
    val calls = 2_000
    val start = System.nanoTime()
    repeat(calls) { check(a.history(toB, null, 20u).messages.size == 20) }
    val localUs = (System.nanoTime() - start) / 1e3 / calls

    val times = (0 until rounds).map { i ->
        val t = System.nanoTime()
        a.sendText(toB, "ping $i")
        check(waitMessage(bEvents) == "ping $i")
        (System.nanoTime() - t) / 1e3
    }.sorted()
    val mean = times.average()
    val p50 = times[times.size / 2]
    println(
        "{\"language\":\"kotlin\",\"history_call_us\":${"%.1f".format(localUs)}," +
            "\"roundtrip_mean_us\":${mean.toLong()},\"roundtrip_p50_us\":${p50.toLong()}}",
    )
    runBlocking {
        a.disconnect()
        b.disconnect()
    }
}

private fun benchClient(relay: String, name: String): Pair<HushClient, LinkedBlockingQueue<HushEvent>> {
    val client = HushClient.create(":memory:", ByteArray(32) { 7 }, null, relay, name)
    val events = LinkedBlockingQueue<HushEvent>()
    client.setListener(object : HushListener {
        override fun onEvent(event: HushEvent) {
            events.add(event)
        }
    })
    return client to events
}

private fun waitMessage(events: LinkedBlockingQueue<HushEvent>): String? {
    while (true) {
        when (val e = events.poll(30, TimeUnit.SECONDS) ?: error("no message")) {
            is HushEvent.Message -> return e.message.text
            is HushEvent.MessageRequest -> return e.message.text
            else -> {}
        }
    }
}
