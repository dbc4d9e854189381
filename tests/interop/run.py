#!/usr/bin/env python3
"""Interop test (issue 6): clients in different languages, through one real relay, in one group.

Participants: Python (the uniffi binding, in this process), Kotlin (the uniffi binding on the JVM,
a subprocess) and the browser (hush-wasm in headless Chromium, a subprocess). The subprocesses speak
JSON lines on stdin/stdout: one command per line ({"op": ..., ...}), one answer per line
({"ok": true, ...} or {"ok": false, "error": ...}). Every participant reports the same normalized
events (see ``browser_peer.mjs``).

The Python client creates the group; everyone writes in turn, each message waited for by every other
participant before the next; a reaction and an attachment cross languages; at the end every
participant has seen every other participant's messages in the order they were written, each once,
and its history of the group holds every message exactly once.

Usage (scripts/interop.sh sets this up):
    python tests/interop/run.py --relay target/debug/hush-relay --web-dir wasm/web \
        [--kotlin "java -cp ... dev.hush.InteropPeerKt"] [--browser "node tests/interop/browser_peer.mjs"]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from hush import HushClient, HushEvent, HushListener

TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_relay(binary: str, web_dir: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    data = tempfile.mkdtemp(prefix="hush-interop-")
    base = f"http://127.0.0.1:{port}"
    relay = subprocess.Popen(
        [binary, "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--origin", base, "--web-dir", web_dir,
         "--log", "warn"],
    )
    deadline = time.time() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as r:
                if r.status == 200:
                    return relay, base
        except OSError:
            pass
        if relay.poll() is not None or time.time() > deadline:
            raise RuntimeError("the relay did not start")
        time.sleep(0.1)


class Peer:
    """One participant: `call` runs a command, `seen` collects its normalized events."""

    name: str

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[dict] = []

    async def call(self, op: str, **args) -> dict:
        raise NotImplementedError

    async def poll(self) -> None:
        self.seen.extend((await self.call("events"))["events"])

    async def wait_for(self, want, what: str) -> dict:
        deadline = time.time() + TIMEOUT
        while True:
            for e in self.seen:
                if want(e):
                    return e
            if time.time() > deadline:
                raise AssertionError(f"{self.name} never saw {what}; saw {self.seen}")
            await asyncio.sleep(0.1)
            await self.poll()


class SubprocessPeer(Peer):
    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        super().__init__(name)
        self.proc = proc

    @classmethod
    async def start(cls, name: str, command: list[str]) -> "SubprocessPeer":
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=16 * 1024 * 1024)
        return cls(name, proc)

    async def call(self, op: str, **args) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), TIMEOUT)
        if not line:
            raise RuntimeError(f"{self.name} exited")
        answer = json.loads(line)
        if not answer.pop("ok"):
            raise RuntimeError(f"{self.name}: {op} failed: {answer.get('error')}")
        return answer


class Listener(HushListener):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[HushEvent] = []

    def on_event(self, event: HushEvent) -> None:
        with self.lock:
            self.events.append(event)

    def take(self) -> list[HushEvent]:
        with self.lock:
            taken, self.events = self.events, []
            return taken


def normalize(e: HushEvent) -> dict | None:
    if isinstance(e, HushEvent.MESSAGE):
        m = e.message
        return {"type": "message", "conversation": m.conversation, "id": m.id, "sender": m.sender,
                "text": m.text, "attachment": m.attachment is not None}
    if isinstance(e, HushEvent.GROUP_JOINED):
        return {"type": "group_joined", "conversation": e.conversation}
    if isinstance(e, HushEvent.REACTION):
        return {"type": "reaction", "conversation": e.conversation, "id": e.message_id, "from": e.sender,
                "emoji": e.emoji, "removed": e.removed}
    return None


class PythonPeer(Peer):
    def __init__(self, name: str, relay_url: str) -> None:
        super().__init__(name)
        self.client = HushClient.create(":memory:", os.urandom(32), None, relay_url, name)
        self.listener = Listener()
        self.client.set_listener(self.listener)

    async def call(self, op: str, **a) -> dict:
        c = self.client
        if op == "hello":
            await c.connect()
            return {"user": c.user_id(), "link": c.contact_link()}
        if op == "add_contact":
            return {"user": c.add_contact(a["link"])}
        if op == "create_group":
            return {"conversation": c.create_group(a["name"], a["members"])}
        if op == "send_text":
            return {"id": c.send_text(a["conversation"], a["text"])}
        if op == "react":
            c.react(a["conversation"], a["id"], a["emoji"], False)
            return {}
        if op == "send_attachment":
            data = base64.b64decode(a["bytes_b64"])
            return {"id": await c.send_attachment(a["conversation"], data, a["mime"], "interop.bin")}
        if op == "download":
            data = await c.download_attachment(a["conversation"], a["id"])
            return {"bytes_b64": base64.b64encode(bytes(data)).decode()}
        if op == "history":
            page = c.history(a["conversation"], None, 200)
            return {"ids": [m.id for m in reversed(page.messages)]}
        if op == "events":
            return {"events": [n for n in map(normalize, self.listener.take()) if n is not None]}
        if op == "quit":
            await c.disconnect()
            return {}
        raise ValueError(op)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--relay", required=True)
    parser.add_argument("--web-dir", required=True)
    parser.add_argument("--kotlin", help="command line of the Kotlin peer")
    parser.add_argument("--browser", help="command line of the browser peer")
    args = parser.parse_args()

    relay, base = start_relay(args.relay, args.web_dir)
    ws = base.replace("http", "ws", 1) + "/v1/ws"
    peers: list[Peer] = [PythonPeer("python", ws)]
    try:
        if args.kotlin:
            peers.append(await SubprocessPeer.start("kotlin", shlex.split(args.kotlin) + [ws, "kotlin"]))
        if args.browser:
            peers.append(await SubprocessPeer.start("browser", shlex.split(args.browser) + [base, "browser"]))
        assert len(peers) >= 2, "give at least one other participant"
        hello = [await p.call("hello") for p in peers]
        users = [h["user"] for h in hello]
        py = peers[0]
        # Python and each other participant add each other; the others meet in the group only.
        for p, h in zip(peers[1:], hello[1:]):
            await py.call("add_contact", link=h["link"])
            await p.call("add_contact", link=hello[0]["link"])
        group = (await py.call("create_group", name="interop", members=users[1:]))["conversation"]
        for p in peers[1:]:
            await p.wait_for(lambda e: e["type"] == "group_joined" and e["conversation"] == group, "the group")
        print(f"interop: {len(peers)} participants in the group", flush=True)

        # Everyone writes in turn; each message is seen by all others before the next one.
        written: list[tuple[int, str, str]] = []
        for round_ in range(3):
            for i, p in enumerate(peers):
                text = f"{p.name} says {round_}"
                mid = (await p.call("send_text", conversation=group, text=text))["id"]
                written.append((i, mid, text))
                for j, q in enumerate(peers):
                    if j != i:
                        e = await q.wait_for(lambda e, mid=mid: e["type"] == "message" and e["id"] == mid, text)
                        assert e["text"] == text and e["sender"] == users[i], e
        print(f"interop: {len(written)} messages crossed", flush=True)

        # A reaction from the last participant to the first message.
        first = written[0][1]
        await peers[-1].call("react", conversation=group, id=first, emoji="👍")
        for q in peers[:-1]:
            await q.wait_for(lambda e: e["type"] == "reaction" and e["id"] == first and e["emoji"] == "👍",
                             "the reaction")

        # An attachment from the second participant, downloaded by everyone else.
        payload = os.urandom(100_000)
        sender = peers[1]
        aid = (await sender.call("send_attachment", conversation=group,
                                 bytes_b64=base64.b64encode(payload).decode(), mime="application/octet-stream"))["id"]
        written.append((1, aid, None))
        for q in peers:
            if q is not sender:
                await q.wait_for(lambda e: e["type"] == "message" and e["id"] == aid and e["attachment"],
                                 "the attachment")
                got = base64.b64decode((await q.call("download", conversation=group, id=aid))["bytes_b64"])
                assert got == payload, f"{q.name} downloaded other bytes"
        print("interop: reaction and attachment crossed", flush=True)

        # Order and uniqueness: the messages each saw from others, and each one's history.
        for j, q in enumerate(peers):
            await q.poll()
            seen = [e["id"] for e in q.seen if e["type"] == "message" and e["conversation"] == group]
            expected = [mid for (i, mid, _) in written if i != j]
            assert seen == expected, f"{q.name} saw {seen}, expected {expected}"
            history = (await q.call("history", conversation=group))["ids"]
            assert history == [mid for (_, mid, _) in written], f"{q.name}'s history is {history}"
        print(f"interop: passed ({', '.join(p.name for p in peers)})", flush=True)
    finally:
        for p in peers:
            try:
                await asyncio.wait_for(p.call("quit"), 10)
            except Exception as e:  # noqa: BLE001 - best effort at shutdown
                print(f"interop: {p.name} did not quit cleanly: {e}", file=sys.stderr)
        relay.terminate()
        relay.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
