"""The shared test vectors (test-vectors/*.json), checked through the Python binding."""

import pytest

import hush
from hush import HushError

from conftest import load_vectors


def h(s):
    return bytes.fromhex(s)


def test_version_is_the_crate_version(native_library):
    assert hush.hush_version() == "0.1.0"
    assert hush.__version__ == hush.hush_version()
    assert native_library.exists()


@pytest.mark.parametrize("case", load_vectors("safety_number.json")["cases"], ids=lambda c: c["name"])
def test_safety_number(case):
    n = hush.compute_safety_number(h(case["user_a_key"]), h(case["user_b_key"]))
    assert n.digits == case["digits"]
    assert len(n.digits) == 60
    assert n.display == case["display"]
    assert n.qr_payload == h(case["qr_payload"])
    # The order of the two users does not matter.
    assert hush.compute_safety_number(h(case["user_b_key"]), h(case["user_a_key"])) == n


def test_safety_number_rejects_a_short_key():
    with pytest.raises(HushError.BadInput):
        hush.compute_safety_number(b"\x01" * 31, b"\x02" * 32)


@pytest.mark.parametrize("case", load_vectors("device_list.json")["cases"], ids=lambda c: c["name"])
def test_device_list(case):
    signed = h(case["signed_device_list"])
    got = hush.verify_device_list(signed, h(case["user_key"]))
    assert got.user_key == h(case["user_key"])
    assert got.list_version == case["list_version"]
    assert got.created_at == case["created_at"]
    assert [(d.device_key, d.identity_key, d.identity_signature) for d in got.devices] == [
        (h(d["device_key"]), h(d["identity_key"]), h(d["identity_signature"])) for d in case["devices"]
    ]


def test_tampered_device_list_is_an_identity_error():
    case = load_vectors("device_list.json")["cases"][0]
    tampered = bytearray(h(case["signed_device_list"]))
    tampered[-1] ^= 1  # the last byte belongs to the user key's signature
    with pytest.raises(HushError.Identity) as e:
        hush.verify_device_list(bytes(tampered), None)
    assert isinstance(e.value, HushError)
    assert "signature" in str(e.value)


def test_device_list_signed_by_another_user_is_refused():
    case = load_vectors("device_list.json")["cases"][0]
    other = h(case["devices"][0]["device_key"])
    with pytest.raises(HushError.Identity):
        hush.verify_device_list(h(case["signed_device_list"]), other)


def test_garbage_device_list_is_bad_input():
    with pytest.raises(HushError.BadInput):
        hush.verify_device_list(b"\xff\xff\xff", None)


@pytest.mark.parametrize("case", load_vectors("sealed_sender.json")["cases"], ids=lambda c: c["name"])
def test_sealed_envelope_opens(case):
    r = case["recipient"]
    opened = hush.open_sealed_envelope(h(r["device_signing_secret"]), h(r["identity_secret"]), h(case["envelope"]))
    assert opened.sender_user_key == h(case["sender_user_key"])
    assert opened.sender_device.device_key == h(case["sender"]["device_key"])
    assert opened.sender_device.identity_key == h(case["sender"]["identity_key"])
    assert opened.sender_device.identity_signature == h(case["sender"]["identity_signature"])
    assert opened.kind == (hush.SealedKind.SESSION if case["kind"] == "session" else hush.SealedKind.GROUP)
    assert opened.inner == h(case["inner"])


def test_sealed_envelope_for_another_recipient_fails_to_decrypt():
    case = load_vectors("sealed_sender.json")["cases"][0]
    s = case["sender"]  # the sender's own secrets do not open an envelope sealed to the recipient
    with pytest.raises(HushError.Decryption):
        hush.open_sealed_envelope(h(s["device_signing_secret"]), h(s["identity_secret"]), h(case["envelope"]))


def test_delivery_token_hashes():
    for t in load_vectors("sealed_sender.json")["delivery_tokens"]:
        assert hush.delivery_token_hash(h(t["token"])) == h(t["hash"])
    with pytest.raises(HushError.BadInput):
        hush.delivery_token_hash(b"short")
