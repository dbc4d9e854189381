"""Error codes: every failing call raises the HushError subclass of its kind, whose ``code`` is the
kind's stable name, the same in Kotlin, Swift and TypeScript; the codes this binding has are
hush-core's (``hush_error_codes()``). Needs no relay.
"""

import asyncio
import os

import pytest

from hush import HushClient, HushError, hush_error_codes

RELAY = "ws://127.0.0.1:9/v1/ws"  # never reached: nothing here connects

CODES = ["bad_input", "decryption", "duplicate", "identity", "protocol", "storage", "wrong_key", "network",
         "not_found", "internal"]


def client(name="Eve"):
    return HushClient.create(":memory:", os.urandom(32), None, RELAY, name)


def test_the_codes_are_core_s_and_one_class_each():
    assert hush_error_codes() == CODES
    classes = [c for c in vars(HushError).values() if isinstance(c, type) and issubclass(c, HushError)]
    assert sorted(c("x").code for c in classes) == sorted(CODES)


def test_a_bad_id_is_bad_input():
    with pytest.raises(HushError) as e:
        client().send_text("zz", "not a conversation id")
    assert isinstance(e.value, HushError.BadInput)
    assert e.value.code == "bad_input"
    assert "malformed conversation id" in str(e.value)


def test_a_wrong_store_key_is_wrong_key(tmp_path):
    path = str(tmp_path / "eve.db")
    HushClient.create(path, os.urandom(32), None, RELAY, "Eve")
    with pytest.raises(HushError) as e:
        HushClient.open(path, os.urandom(32), None, RELAY, "Eve")
    assert e.value.code == "wrong_key"
    assert isinstance(e.value, HushError.WrongKey)


def test_a_second_open_of_an_open_store_is_a_storage_error_saying_it_is_in_use(tmp_path):
    path = str(tmp_path / "eve.db")
    key = os.urandom(32)
    first = HushClient.create(path, key, None, RELAY, "Eve")
    with pytest.raises(HushError.Storage) as e:
        HushClient.open(path, key, None, RELAY, "Eve")
    assert e.value.code == "storage"
    assert "in use" in str(e.value)
    del first  # closes the store
    HushClient.open(path, key, None, RELAY, "Eve")


def test_an_older_copy_of_the_store_put_back_is_refused(tmp_path):
    path = tmp_path / "eve.db"
    key = os.urandom(32)
    HushClient.create(str(path), key, None, RELAY, "Eve")  # dropped at once: the store closes
    copy = path.read_bytes()
    eve = HushClient.open(str(path), key, None, RELAY, "Eve")
    eve.create_group("written after the copy", [])
    del eve
    path.write_bytes(copy)
    with pytest.raises(HushError.Storage) as e:
        HushClient.open(str(path), key, None, RELAY, "Eve")
    assert "older copy" in str(e.value)


def test_a_stranger_has_no_session_a_protocol_error():
    eve, stranger = client(), client("Stranger")
    with pytest.raises(HushError) as e:
        eve.safety_number(stranger.user_id())
    assert (e.value.code, str(e.value)) == ("protocol", "no session")


def test_an_unknown_message_is_not_found():
    eve = client()
    conversation = eve.direct_conversation(client("Kim").user_id())
    with pytest.raises(HushError) as e:
        asyncio.run(eve.download_attachment(conversation, "00" * 16))
    assert e.value.code == "not_found"


def test_a_device_not_linked_yet_is_a_protocol_error():
    laptop = HushClient.create_for_link(":memory:", os.urandom(32), None, RELAY, "laptop")
    with pytest.raises(HushError) as e:
        laptop.user_id()
    assert e.value.code == "protocol"


@pytest.mark.parametrize("relay, name, detail", [
    (RELAY, "n" * (1024 * 1024), "display name"),
    ("not a url", "Eve", "relay URL"),
    ("https://relay.example/v1/ws", "Eve", "relay URL"),
])
def test_a_config_whose_contact_link_no_one_could_add_is_bad_input(relay, name, detail):
    with pytest.raises(HushError) as e:
        HushClient.create(":memory:", os.urandom(32), None, relay, name)
    assert e.value.code == "bad_input"
    assert detail in str(e.value)
