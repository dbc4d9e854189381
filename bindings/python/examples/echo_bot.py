#!/usr/bin/env python3
"""An echo bot: the shape an assistant bot takes on hush.

It keeps its account in an encrypted store file, prints its contact link, accepts every message
request, and answers each text with the same text (a real bot would call its model here). Run it,
open the printed link in the demo web chat (or any hush client) and write to it:

    python bindings/python/examples/echo_bot.py --relay ws://127.0.0.1:8080/v1/ws --store bot.db

The store is unlocked by a passphrase from HUSH_BOT_PASSPHRASE (Argon2id); a real deployment would
take a key from a secrets manager and pass it as ``store_key`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from hush import HushClient, HushError, HushEvent, HushListener


class Bot(HushListener):
    """Queues every event onto the asyncio loop; the loop answers them one at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[HushEvent] = asyncio.Queue()

    def on_event(self, event: HushEvent) -> None:  # called on a hush thread
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)


def open_or_create(path: str, passphrase: str, relay: str, name: str) -> HushClient:
    if os.path.exists(path):
        return HushClient.open(path, None, passphrase, relay, name)
    return HushClient.create(path, None, passphrase, relay, name)


async def run(client: HushClient, bot: Bot, stop: asyncio.Event) -> None:
    await client.connect()
    print(f"echo bot {client.user_id()[:16]}… is listening; its contact link:\n{client.contact_link()}", flush=True)
    while not stop.is_set():
        getter = asyncio.ensure_future(bot.queue.get())
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if getter not in done:
            getter.cancel()
            break
        event = getter.result()
        try:
            if isinstance(event, HushEvent.MESSAGE_REQUEST):
                # A bot talks to anyone who writes: accept, then answer like any message.
                client.accept_contact(event.message.sender)
            if isinstance(event, (HushEvent.MESSAGE, HushEvent.MESSAGE_REQUEST)) and event.message.text:
                message = event.message
                client.mark_read(message.conversation)
                client.send_text(message.conversation, f"echo: {message.text}")
            elif isinstance(event, HushEvent.CONNECTION):
                print(f"connection: {event.state}", flush=True)
        except HushError as e:  # typed: HushError.BadInput, HushError.Network, …
            print(f"could not answer: {e!r}", flush=True)
    await client.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--relay", default="ws://127.0.0.1:8080/v1/ws")
    parser.add_argument("--store", default="echo-bot.db")
    parser.add_argument("--name", default="Echo bot")
    args = parser.parse_args()
    passphrase = os.environ.get("HUSH_BOT_PASSPHRASE")
    if not passphrase:
        raise SystemExit("set HUSH_BOT_PASSPHRASE")

    loop = asyncio.new_event_loop()
    bot = Bot(loop)
    client = open_or_create(args.store, passphrase, args.relay, args.name)
    client.set_listener(bot)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(run(client, bot, stop))


if __name__ == "__main__":
    main()
