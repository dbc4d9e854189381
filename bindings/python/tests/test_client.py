"""HushClient from Python through a real relay: a message request, a reply, receipts, typed
errors, and the example echo bot answering a message.

The relay binary comes from HUSH_RELAY_BIN (scripts/bindings.sh sets it) or target/debug/hush-relay;
the tests are skipped when it is missing (scripts/bindings.sh builds it; in CI it must be there).
"""

import asyncio
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pytest

from hush import HushClient, HushConnectionState, HushError, HushEvent, HushListener, HushMessageStatus

ROOT = pathlib.Path(__file__).resolve().parents[3]
TIMEOUT = 30.0


def relay_binary() -> pathlib.Path:
    return pathlib.Path(os.environ.get("HUSH_RELAY_BIN", ROOT / "target" / "debug" / "hush-relay"))


@pytest.fixture(scope="module")
def relay():
    binary = relay_binary()
    if not binary.exists():
        if os.environ.get("CI") in ("true", "1"):
            pytest.fail(f"no relay binary at {binary}")
        pytest.skip(f"no relay binary at {binary} (cargo build -p hush-relay)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tempfile.mkdtemp(prefix="hush-py-")
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(binary), "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--origin", base,
                             "--no-web", "--log", "warn"])
    deadline = time.time() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("the relay did not start")
            time.sleep(0.1)
    yield f"ws://127.0.0.1:{port}/v1/ws"
    proc.terminate()
    proc.wait(10)


class Events(HushListener):
    def __init__(self):
        self.cond = threading.Condition()
        self.events = []

    def on_event(self, event):
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait(self, predicate, what):
        with self.cond:
            if not self.cond.wait_for(lambda: any(predicate(e) for e in self.events), TIMEOUT):
                raise AssertionError(f"no {what} in {self.events}")
            return next(e for e in self.events if predicate(e))


def person(relay, name):
    client = HushClient.create(":memory:", os.urandom(32), None, relay, name)
    events = Events()
    client.set_listener(events)
    asyncio.run(client.connect())
    events.wait(lambda e: isinstance(e, HushEvent.CONNECTION), "connection")
    return client, events


def test_a_message_request_a_reply_and_receipts(relay):
    alice, alice_events = person(relay, "Alice")
    bob, bob_events = person(relay, "Bob")
    bob_id = alice.add_contact(bob.contact_link())
    assert bob_id == bob.user_id()
    to_bob = alice.direct_conversation(bob_id)
    sent = alice.send_text(to_bob, "hello from Python")

    request = bob_events.wait(lambda e: isinstance(e, HushEvent.MESSAGE_REQUEST), "message request").message
    assert (request.id, request.text, request.sender) == (sent, "hello from Python", alice.user_id())
    assert [c.state for c in bob.contacts()] == ["requested"]
    bob.accept_contact(alice.user_id())
    reply = bob.send_text(request.conversation, "hi Alice")
    got = alice_events.wait(lambda e: isinstance(e, HushEvent.MESSAGE), "reply").message
    assert got.text == "hi Alice"
    # Alice added Bob, so her client sent a delivery receipt; Bob's copy moves to Delivered.
    bob_events.wait(lambda e: isinstance(e, HushEvent.RECEIPT) and reply in e.message_ids, "receipt")
    assert bob.history(request.conversation, None, 10).messages[0].status == HushMessageStatus.DELIVERED
    assert [m.text for m in reversed(alice.history(to_bob, None, 10).messages)] == ["hello from Python", "hi Alice"]
    assert alice.safety_number(bob_id).digits == bob.safety_number(alice.user_id()).digits
    asyncio.run(alice.disconnect())
    asyncio.run(bob.disconnect())


class Raising(Events):
    """Records every event, then raises: a listener with a bug."""

    def on_event(self, event):
        super().on_event(event)
        raise RuntimeError("a bug in the application's listener")


def test_a_listener_that_raises_is_logged_and_still_gets_every_event(relay, caplog):
    alice, _ = person(relay, "Alice")
    bob = HushClient.create(":memory:", os.urandom(32), None, relay, "Bob")
    bob_events = Raising()
    bob.set_listener(bob_events)
    asyncio.run(bob.connect())
    bob_events.wait(lambda e: isinstance(e, HushEvent.CONNECTION), "connection")
    to_bob = alice.direct_conversation(alice.add_contact(bob.contact_link()))
    first, second = alice.send_text(to_bob, "one"), alice.send_text(to_bob, "two")
    for sent in (first, second):
        bob_events.wait(lambda e: isinstance(e, (HushEvent.MESSAGE, HushEvent.MESSAGE_REQUEST))
                        and e.message.id == sent, "message")

    def raised():
        return [r for r in caplog.records if r.name == "hush" and "listener raised" in r.getMessage()]

    # The last event is logged right after the listener recorded it: give the log that moment.
    deadline = time.time() + TIMEOUT
    while len(raised()) < 3 and time.time() < deadline:
        time.sleep(0.01)
    assert len(raised()) >= 3, caplog.text  # the connection and both messages at least
    assert all(r.exc_info and "a bug in the application's listener" in str(r.exc_info[1]) for r in raised())
    asyncio.run(alice.disconnect())
    asyncio.run(bob.disconnect())


def test_an_unreachable_relay_is_an_event_with_the_reason_and_the_next_attempt():
    client = HushClient.create(":memory:", os.urandom(32), None, "ws://127.0.0.1:9/v1/ws", "Eve")  # nothing there
    events = Events()
    client.set_listener(events)
    asyncio.run(client.connect())
    unreachable = [events.wait(lambda e: isinstance(e, HushEvent.CONNECTION)
                               and isinstance(e.state, HushConnectionState.UNREACHABLE), "unreachable").state]
    assert unreachable[0].reason.startswith("cannot connect"), unreachable[0].reason
    assert 250 <= unreachable[0].retry_in_ms <= 375  # the first backoff, with up to 50 % jitter
    # It keeps trying, and says so each time.
    events.wait(lambda e: isinstance(e, HushEvent.CONNECTION) and isinstance(e.state, HushConnectionState.UNREACHABLE)
                and e.state.retry_in_ms >= 500, "second attempt")
    asyncio.run(client.disconnect())


def test_errors_are_typed(relay):
    client = HushClient.create(":memory:", os.urandom(32), None, relay, "Eve")
    with pytest.raises(HushError.BadInput):
        client.add_contact("https://example.com/not-a-hush-link")
    with pytest.raises(HushError.BadInput):
        client.send_text("zz", "not a conversation id")
    with pytest.raises(HushError.BadInput):
        HushClient.create(":memory:", b"short", None, relay, "Eve")
    with pytest.raises(HushError.Network):
        asyncio.run(client.send_attachment(client.direct_conversation(client.user_id()), b"x", "text/plain", None))


def test_the_echo_bot_answers(relay, tmp_path):
    env = dict(os.environ, HUSH_BOT_PASSPHRASE="echo bot test passphrase",
               PYTHONPATH=os.pathsep.join(sys.path))
    bot = subprocess.Popen(
        [sys.executable, str(ROOT / "bindings" / "python" / "examples" / "echo_bot.py"), "--relay", relay,
         "--store", str(tmp_path / "bot.db")],
        stdout=subprocess.PIPE, text=True, env=env)
    try:
        link = None
        deadline = time.time() + TIMEOUT
        while link is None and time.time() < deadline:
            line = bot.stdout.readline()
            if line.startswith("hush://"):
                link = line.strip()
        assert link, "the bot printed no contact link"
        carol, events = person(relay, "Carol")
        bot_id = carol.add_contact(link)
        carol.send_text(carol.direct_conversation(bot_id), "ping")
        answer = events.wait(lambda e: isinstance(e, HushEvent.MESSAGE), "the bot's answer").message
        assert answer.text == "echo: ping" and answer.sender == bot_id
        asyncio.run(carol.disconnect())
    finally:
        bot.terminate()
        bot.wait(10)


def test_a_second_device_is_linked_and_shares_the_history(relay):
    alice, alice_events = person(relay, "Alice")
    bob, bob_events = person(relay, "Bob")
    alice.add_contact(bob.contact_link())
    bob.add_contact(alice.contact_link())

    laptop = HushClient.create_for_link(":memory:", os.urandom(32), None, relay, "Alice's laptop")
    laptop_events = Events()
    laptop.set_listener(laptop_events)
    assert not laptop.is_linked()
    with pytest.raises(HushError.Protocol):
        laptop.user_id()
    asyncio.run(laptop.connect())
    laptop_events.wait(lambda e: isinstance(e, HushEvent.CONNECTION), "connection")
    uri = laptop.link_request()
    assert uri.startswith("hush://link/")
    with pytest.raises(HushError.BadInput):
        alice.link_device("hush://link/AAAA")
    assert alice.link_device(uri) == laptop.device_id()
    linked = laptop_events.wait(lambda e: isinstance(e, HushEvent.DEVICE_LINKED), "device linked")
    assert linked.user == alice.user_id() == laptop.user_id()
    with pytest.raises(HushError.Identity):
        alice.link_device(uri)  # the same device again
    with pytest.raises(HushError.Protocol):
        laptop.link_request()  # already linked

    def text(t):
        return lambda e: isinstance(e, (HushEvent.MESSAGE, HushEvent.MESSAGE_REQUEST)) and e.message.text == t

    chat = alice.direct_conversation(bob.user_id())
    alice.send_text(chat, "from the phone")
    bob_events.wait(text("from the phone"), "the phone's message at Bob")
    synced = laptop_events.wait(text("from the phone"), "the sent sync").message
    assert synced.sender == alice.user_id()
    laptop.send_text(chat, "from the laptop")
    bob_events.wait(text("from the laptop"), "the laptop's message at Bob")
    alice_events.wait(text("from the laptop"), "the laptop's sync at the phone")
    bob.send_text(bob.direct_conversation(alice.user_id()), "hi both")
    alice_events.wait(text("hi both"), "Bob's reply at the phone")
    laptop_events.wait(text("hi both"), "Bob's reply at the laptop")
    expected = ["from the phone", "from the laptop", "hi both"]
    for device in (alice, laptop):
        assert [m.text for m in reversed(device.history(chat, None, 10).messages)] == expected
    for c in (alice, bob, laptop):
        asyncio.run(c.disconnect())


def test_a_removed_device_wipes_itself_and_contacts_stop_encrypting_to_it(relay):
    alice, alice_events = person(relay, "Alice")
    bob, bob_events = person(relay, "Bob")
    alice.add_contact(bob.contact_link())
    bob.add_contact(alice.contact_link())
    laptop = HushClient.create_for_link(":memory:", os.urandom(32), None, relay, "Alice's laptop")
    laptop_events = Events()
    laptop.set_listener(laptop_events)
    asyncio.run(laptop.connect())
    laptop_events.wait(lambda e: isinstance(e, HushEvent.CONNECTION), "connection")
    laptop_id = alice.link_device(laptop.link_request())
    laptop_events.wait(lambda e: isinstance(e, HushEvent.DEVICE_LINKED), "device linked")
    assert sorted(alice.devices()) == sorted([alice.device_id(), laptop_id])

    with pytest.raises(HushError.BadInput):
        alice.remove_device(alice.device_id())
    with pytest.raises(HushError.Identity):
        alice.remove_device(bob.device_id())
    alice.remove_device(laptop_id)
    assert alice.devices() == [alice.device_id()]

    def text(t):
        return lambda e: isinstance(e, (HushEvent.MESSAGE, HushEvent.MESSAGE_REQUEST)) and e.message.text == t

    alice.send_text(alice.direct_conversation(bob.user_id()), "the laptop is gone")
    bob_events.wait(text("the laptop is gone"), "Alice's message at Bob")
    # The laptop reconnects: the relay refuses it with the list that removed it, and it wipes itself.
    asyncio.run(laptop.disconnect())
    try:
        asyncio.run(laptop.connect())
    except HushError:
        pass
    removed = laptop_events.wait(lambda e: isinstance(e, HushEvent.DEVICE_REMOVED), "device removed")
    assert removed.user == alice.user_id()
    assert not laptop.is_linked()
    assert laptop.conversations() == []
    for c in (alice, bob):
        asyncio.run(c.disconnect())
