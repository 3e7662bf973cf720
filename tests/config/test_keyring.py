"""A malformed key ring is reported without any part of a key: the error text reaches logs and
consoles, so it names the setting and the entry's position (and a key id only when it looks like one)."""

from __future__ import annotations

import base64
import hashlib
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import keyring

SETTING = "RECORDINGS_MASTER_KEYS"
# 32 fixed "random" bytes, so a test run never depends on chance
SECRET = base64.b64encode(hashlib.sha256(b"a master key that must never be printed").digest()).decode()
OTHER_SECRET = base64.b64encode(hashlib.sha256(b"another master key").digest()).decode()
GOOD_ENTRY = f"k1:{OTHER_SECRET}"
HALF_SECRET = base64.b64encode(base64.b64decode(SECRET)[:16]).decode()


def pieces_of(secret: str, size: int = 5) -> set[str]:
    """Every run of `size` characters of the secret: none of them may show up anywhere."""
    return {secret[start : start + size] for start in range(len(secret) - size + 1)}


def assert_nothing_of(secret: str, text: str) -> None:
    leaked = sorted(piece for piece in pieces_of(secret) if piece in text)
    assert not leaked, f"parts of the secret are in the text: {leaked}"


def error_for(text: str) -> ImproperlyConfigured:
    with pytest.raises(ImproperlyConfigured) as raised:
        keyring.parse_key_ring(text, SETTING)
    return raised.value


@pytest.mark.parametrize(
    ("text", "secret", "message"),
    [
        # the key pasted without its id: the whole entry is the key
        (SECRET, SECRET, f"Entry #1 of {SETTING} is not 'kid:base64key'."),
        (f"{GOOD_ENTRY}, {SECRET}", SECRET, f"Entry #2 of {SETTING} is not 'kid:base64key'."),
        (f":{SECRET}", SECRET, f"Entry #1 of {SETTING} is not 'kid:base64key'."),
        # the key before the colon, so it parses as the key id, and nothing after it
        (f"{SECRET}:", SECRET, f"Entry #1 of {SETTING}: the key is 0 bytes; AES-256 needs 32"),
        # a well-formed id with a broken key
        (f"k1:{SECRET[:-4]}!!!!", SECRET, f"Entry #1 of {SETTING} (key id 'k1'): the key is not valid base64."),
        (f"k1:{HALF_SECRET}", HALF_SECRET, f"Entry #1 of {SETTING} (key id 'k1'): the key is 16 bytes"),
        # the same id twice
        (f"k1:{SECRET},k1:{SECRET}", SECRET, f"Entry #2 of {SETTING} (key id 'k1'): the key id appears twice"),
    ],
)
def test_a_malformed_ring_names_the_entry_never_the_key(text, secret, message):
    # given a ring whose mistake would put a key into an error, when it is parsed
    error = error_for(text)

    # then the error says which entry is wrong and how, and carries no part of the key
    assert str(error).startswith(message)
    assert_nothing_of(secret, str(error))
    assert error.__cause__ is None


def test_a_key_pasted_before_the_colon_is_reported_without_its_id():
    # given a second key where the id should be (the whole ring is well-formed otherwise)
    error = error_for(f"{SECRET}:{OTHER_SECRET},{SECRET}:{OTHER_SECRET}")

    # then the duplicate is reported by position, and neither key is printed
    assert str(error) == f"Entry #2 of {SETTING}: the key id appears twice; each key needs its own id."
    assert_nothing_of(SECRET, str(error))
    assert_nothing_of(OTHER_SECRET, str(error))


def test_the_logged_error_and_its_traceback_carry_no_part_of_the_key(settings, caplog):
    # given the master key set without its id
    settings.RECORDINGS_MASTER_KEYS = SECRET

    # when the ring is used and the failure is logged with its traceback, as a failed request is
    with caplog.at_level(logging.ERROR):
        try:
            keyring.key_ring_from_settings(SETTING, purpose="recordings")
        except ImproperlyConfigured:
            logging.getLogger("django.request").exception("Internal Server Error: /api/v1/recordings/1/download")

    # then the log says what is wrong, and nothing of the key is in it
    assert f"Entry #1 of {SETTING} is not 'kid:base64key'." in caplog.text
    assert_nothing_of(SECRET, caplog.text)


def test_a_well_formed_ring_still_parses_newest_first():
    ring = keyring.parse_key_ring(f"k2:{SECRET}, {GOOD_ENTRY}", SETTING)

    assert [key.key_id for key in ring] == ["k2", "k1"]
    assert ring[0].secret == base64.b64decode(SECRET)
    assert SECRET not in repr(ring)
