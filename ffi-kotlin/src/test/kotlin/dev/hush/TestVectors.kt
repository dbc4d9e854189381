package dev.hush

import java.io.File
import org.json.JSONArray
import org.json.JSONObject

/** Reads the shared test vectors (`test-vectors/`, passed by Maven as `hush.vectors.dir`). */
object TestVectors {
    private val dir: File = File(System.getProperty("hush.vectors.dir") ?: "../test-vectors")

    fun load(name: String): JSONObject = JSONObject(File(dir, name).readText())

    fun cases(name: String): List<JSONObject> = load(name).getJSONArray("cases").objects()
}

fun JSONArray.objects(): List<JSONObject> = (0 until length()).map { getJSONObject(it) }

/** Lowercase hex (as in the vector files) to bytes. */
fun String.hex(): ByteArray {
    require(length % 2 == 0) { "odd-length hex" }
    return ByteArray(length / 2) { i -> substring(2 * i, 2 * i + 2).toInt(16).toByte() }
}

fun JSONObject.hex(key: String): ByteArray = getString(key).hex()
