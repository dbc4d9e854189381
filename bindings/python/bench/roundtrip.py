#!/usr/bin/env python3
"""FFI overhead benchmark, Python side: the calls of bindings/examples/roundtrip.rs through the
uniffi Python binding (bench/ffi.sh runs all three languages against one relay).

    python bindings/python/bench/roundtrip.py <relay ws url> [round trips]
"""

import asyncio
import json
import queue
import statistics
import sys
import time

from hush import HushClient, HushEvent, HushListener


class Channel(HushListener):
    def __init__(self):
        self.q = queue.Queue()

    def on_event(self, event):
        self.q.put(event)


def client(relay, name):
    c = HushClient.create(":memory:", bytes([7] * 32), None, relay, name)
    ch = Channel()
    c.set_listener(ch)
    return c, ch


def wait_message(ch):
    while True:
        e = ch.q.get(timeout=30)
        if isinstance(e, (HushEvent.MESSAGE, HushEvent.MESSAGE_REQUEST)):
            return e.message.text


def main():
    relay = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8080/v1/ws"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    a, _ = client(relay, "bench-a")
    b, b_events = client(relay, "bench-b")

    async def connect():
        await a.connect()
        await b.connect()

    asyncio.run(connect())
    to_b = a.direct_conversation(a.add_contact(b.contact_link()))
    for i in range(20):
        a.send_text(to_b, f"warm-up {i}")
        wait_message(b_events)

    calls = 2000
    start = time.perf_counter()
    for _ in range(calls):
        assert len(a.history(to_b, None, 20).messages) == 20
    local_us = (time.perf_counter() - start) * 1e6 / calls

    times = []
    for i in range(rounds):
        t = time.perf_counter()
        a.send_text(to_b, f"ping {i}")
        assert wait_message(b_events) == f"ping {i}"
        times.append((time.perf_counter() - t) * 1e6)
    print(json.dumps({"language": "python", "history_call_us": round(local_us, 1),
                      "roundtrip_mean_us": round(statistics.mean(times)),
                      "roundtrip_p50_us": round(statistics.median(times))}))

    async def disconnect():
        await a.disconnect()
        await b.disconnect()

    asyncio.run(disconnect())


if __name__ == "__main__":
    main()
