package dev.hush

import java.util.Base64
import java.util.concurrent.ConcurrentLinkedQueue
import kotlinx.coroutines.runBlocking
import org.json.JSONArray
import org.json.JSONObject

/**
 * The Kotlin participant of the interop test (tests/interop/run.py): a [HushClient] on the JVM,
 * driven over stdin/stdout with one JSON command per line and one JSON answer per line.
 *
 * Arguments: the relay's WebSocket URL and a display name.
 */
fun main(args: Array<String>) {
    val (relayUrl, name) = args
    val events = ConcurrentLinkedQueue<JSONObject>()
    val client = HushClient.create(":memory:", ByteArray(32) { (it * 7 + 1).toByte() }, null, relayUrl, name)
    client.setListener(object : HushListener {
        override fun onEvent(event: HushEvent) {
            normalize(event)?.let { events.add(it) }
        }
    })
    val out = System.out
    while (true) {
        val line = readlnOrNull() ?: break
        if (line.isBlank()) continue
        val cmd = JSONObject(line)
        val answer = try {
            runBlocking { handle(client, cmd, events) }.put("ok", true)
        } catch (e: Exception) {
            JSONObject().put("ok", false).put("error", e.toString())
        }
        out.println(answer.toString())
        out.flush()
        if (cmd.getString("op") == "quit") break
    }
}

private suspend fun handle(client: HushClient, cmd: JSONObject, events: ConcurrentLinkedQueue<JSONObject>): JSONObject {
    val o = JSONObject()
    when (cmd.getString("op")) {
        "hello" -> {
            client.connect()
            o.put("user", client.userId()).put("link", client.contactLink())
        }
        "add_contact" -> o.put("user", client.addContact(cmd.getString("link")))
        "create_group" -> {
            val members = cmd.getJSONArray("members").let { a -> List(a.length()) { a.getString(it) } }
            o.put("conversation", client.createGroup(cmd.getString("name"), members))
        }
        "send_text" -> o.put("id", client.sendText(cmd.getString("conversation"), cmd.getString("text")))
        "react" -> client.react(cmd.getString("conversation"), cmd.getString("id"), cmd.getString("emoji"), false)
        "send_attachment" -> {
            val bytes = Base64.getDecoder().decode(cmd.getString("bytes_b64"))
            o.put("id", client.sendAttachment(cmd.getString("conversation"), bytes, cmd.getString("mime"), "interop.bin"))
        }
        "download" -> {
            val bytes = client.downloadAttachment(cmd.getString("conversation"), cmd.getString("id"))
            o.put("bytes_b64", Base64.getEncoder().encodeToString(bytes))
        }
        "history" -> {
            val page = client.history(cmd.getString("conversation"), null, 200u)
            o.put("ids", JSONArray(page.messages.reversed().map { it.id }))
        }
        "events" -> {
            val taken = JSONArray()
            while (true) taken.put(events.poll() ?: break)
            o.put("events", taken)
        }
        "quit" -> client.disconnect()
        else -> throw IllegalArgumentException("unknown op ${cmd.getString("op")}")
    }
    return o
}

/** The interop protocol's normalized event, or null for events it does not use. */
private fun normalize(e: HushEvent): JSONObject? = when (e) {
    is HushEvent.Message -> JSONObject()
        .put("type", "message")
        .put("conversation", e.message.conversation)
        .put("id", e.message.id)
        .put("sender", e.message.sender)
        .put("text", e.message.text ?: JSONObject.NULL)
        .put("attachment", e.message.attachment != null)
    is HushEvent.GroupJoined -> JSONObject().put("type", "group_joined").put("conversation", e.conversation)
    is HushEvent.Reaction -> JSONObject()
        .put("type", "reaction")
        .put("conversation", e.conversation)
        .put("id", e.messageId)
        .put("from", e.sender)
        .put("emoji", e.emoji)
        .put("removed", e.removed)
    else -> null
}
