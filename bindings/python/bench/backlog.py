#!/usr/bin/env python3
"""Backlog throughput through the Python binding (issue 16 part 4; bench/backlog.sh runs it).

Alice sends N texts to Bob while Bob is offline (send rate: first send_text until the relay took the
last one), then Bob connects and receives the backlog (receive rate: connect until the last message
event). Both stores are files (SQLite WAL, synchronous = FULL), as on a phone. The peer in the same
run is the storage floor: Python's sqlite3 inserting N rows of the same size into a file with the
same settings, committing every 256 rows (the batch hush commits per relay delivery window).

Peak RSS (VmHWM) of this process (both clients) and of the relay are printed per phase, so a run with
a larger N shows whether memory stays flat.

    python backlog.py <relay ws url> <relay pid> <work dir> [N]
"""

import asyncio
import json
import os
import sqlite3
import sys
import threading
import time

from hush import HushClient, HushEvent, HushListener, HushMessageStatus

KEY = bytes([7] * 32)
BATCH = 256


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Counter(HushListener):
    """Counts events instead of keeping them, so a long backlog costs this process no memory."""

    def __init__(self):
        self.cond = threading.Condition()
        self.messages = 0
        self.sent = 0
        self.other = {}

    def on_event(self, event):
        with self.cond:
            if isinstance(event, (HushEvent.MESSAGE, HushEvent.MESSAGE_REQUEST)):
                self.messages += 1
            elif isinstance(event, HushEvent.MESSAGE_STATUS) and event.status == HushMessageStatus.SENT:
                self.sent += 1
            else:
                name = type(event).__name__
                self.other[name] = self.other.get(name, 0) + 1
            self.cond.notify_all()

    def wait(self, what, n, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while getattr(self, what) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{what}: {getattr(self, what)} of {n} (other events: {self.other})")
                self.cond.wait(left)


class Sampler(threading.Thread):
    """Samples the relay's RSS every 50 ms (its VmHWM covers the whole run, not one phase)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, False

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, rss_kib(self.pid, "VmRSS"))
            time.sleep(0.05)

    def take(self):
        peak, self.peak = self.peak, rss_kib(self.pid, "VmRSS")
        return peak


def sqlite_floor(path, n, size):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, lookup BLOB UNIQUE, value BLOB)")
    row = os.urandom(size)
    start = time.perf_counter()
    for first in range(0, n, BATCH):
        db.execute("BEGIN IMMEDIATE")
        for i in range(first, min(first + BATCH, n)):
            db.execute("INSERT INTO m (lookup, value) VALUES (?, ?)", (os.urandom(32), row))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return n / elapsed


def main():
    relay, relay_pid, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 20_000
    sampler = Sampler(relay_pid)
    sampler.start()
    a = HushClient.create(f"{work}/alice.db", KEY, None, relay, "alice")
    b = HushClient.create(f"{work}/bob.db", KEY, None, relay, "bob")
    a_events, b_events = Counter(), Counter()
    a.set_listener(a_events)
    b.set_listener(b_events)

    asyncio.run(a.connect())
    asyncio.run(b.connect())
    to_b = a.direct_conversation(a.add_contact(b.contact_link()))
    to_a = b.direct_conversation(b.add_contact(a.contact_link()))
    # Sessions both ways before the clock starts.
    a.send_text(to_b, "warm-up")
    b_events.wait("messages", 1, 30)
    b.send_text(to_a, "warm-up")
    a_events.wait("messages", 1, 30)
    asyncio.run(b.disconnect())
    a_sent0 = a_events.sent
    rss0 = rss_kib("self", "VmRSS")
    sampler.take()

    start = time.perf_counter()
    for i in range(n):
        a.send_text(to_b, f"backlog message {i}")
    queued = time.perf_counter() - start
    a_events.wait("sent", a_sent0 + n, 600)
    send_s = time.perf_counter() - start
    send_relay_peak = sampler.take()

    received0 = b_events.messages
    start = time.perf_counter()
    asyncio.run(b.connect())
    b_events.wait("messages", received0 + n, 600)
    receive_s = time.perf_counter() - start
    receive_relay_peak = sampler.take()
    sampler.stop = True

    floor = sqlite_floor(f"{work}/floor.db", n, 400)
    print(json.dumps({
        "messages": n,
        "send_msgs_per_s": round(n / send_s),
        "send_calls_s": round(queued, 2),
        "receive_msgs_per_s": round(n / receive_s),
        "sqlite_floor_rows_per_s": round(floor),
        "client_rss_start_mib": round(rss0 / 1024, 1),
        "client_peak_rss_mib": round(rss_kib("self", "VmHWM") / 1024, 1),
        "relay_peak_rss_send_mib": round(send_relay_peak / 1024, 1),
        "relay_peak_rss_receive_mib": round(receive_relay_peak / 1024, 1),
        "bob_other_events": b_events.other,
    }))
    asyncio.run(a.disconnect())
    asyncio.run(b.disconnect())


if __name__ == "__main__":
    main()
