"""Envelope encryption: streamed, chunk-authenticated, and the key ring rotates."""

from __future__ import annotations

import base64
import io
import os

import pytest
from django.core.exceptions import ImproperlyConfigured

from recordings import crypto

SMALL_CHUNK = 1024


def ring(*key_ids: str) -> str:
    return ",".join(f"{kid}:{base64.b64encode(kid.encode().ljust(32, b'k')).decode()}" for kid in key_ids)


def seal(plaintext: bytes, chunk_size: int = SMALL_CHUNK) -> tuple[bytes, bytes, crypto.WrappedKey, str]:
    data_key, wrapped = crypto.new_data_key()
    reader = crypto.EncryptingReader(io.BytesIO(plaintext), data_key, chunk_size=chunk_size)
    sealed = reader.read()
    return sealed, data_key, wrapped, reader.sha256


def open_all(sealed: bytes, data_key: bytes, plaintext_size: int, sha256: str) -> bytes:
    return b"".join(crypto.decrypt_all(io.BytesIO(sealed), data_key, plaintext_size=plaintext_size, sha256=sha256))


@pytest.mark.parametrize("size", [0, 1, SMALL_CHUNK - 1, SMALL_CHUNK, SMALL_CHUNK * 3, SMALL_CHUNK * 3 + 7])
def test_any_size_round_trips_and_the_sealed_form_has_the_predicted_size(settings, size):
    settings.RECORDINGS_MASTER_KEYS = ring("k1")
    plaintext = os.urandom(size)

    sealed, data_key, _, sha256 = seal(plaintext)

    assert len(sealed) == crypto.ciphertext_size(size, SMALL_CHUNK)
    assert open_all(sealed, data_key, size, sha256) == plaintext


def test_the_sealed_form_holds_no_plaintext(settings):
    settings.RECORDINGS_MASTER_KEYS = ring("k1")
    plaintext = b"CUSTOMER-CARD-4111-1111 " * 500

    sealed, *_ = seal(plaintext)

    assert b"CUSTOMER-CARD" not in sealed


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:], id="flipped byte"),
        pytest.param(lambda b: b[: crypto.HEADER_SIZE + 2 * (SMALL_CHUNK + 16)], id="cut at a chunk boundary"),
        pytest.param(lambda b: b[:-5], id="cut inside the last chunk"),
        pytest.param(
            lambda b: (
                b[: crypto.HEADER_SIZE]
                + b[crypto.HEADER_SIZE + SMALL_CHUNK + 16 : crypto.HEADER_SIZE + 2 * (SMALL_CHUNK + 16)]
                + b[crypto.HEADER_SIZE : crypto.HEADER_SIZE + SMALL_CHUNK + 16]
                + b[crypto.HEADER_SIZE + 2 * (SMALL_CHUNK + 16) :]
            ),
            id="two chunks swapped",
        ),
        pytest.param(lambda b: b + b"extra", id="bytes appended"),
    ],
)
def test_tampering_reordering_and_truncation_are_refused(settings, damage):
    settings.RECORDINGS_MASTER_KEYS = ring("k1")
    plaintext = os.urandom(SMALL_CHUNK * 4 + 10)
    sealed, data_key, _, sha256 = seal(plaintext)

    with pytest.raises(crypto.IntegrityError):
        open_all(damage(sealed), data_key, len(plaintext), sha256)


def test_a_rotated_ring_still_opens_old_keys_and_rewrap_moves_them_to_the_newest(settings):
    # given: a data key wrapped under k1
    settings.RECORDINGS_MASTER_KEYS = ring("k1")
    data_key, wrapped = crypto.new_data_key()
    # when: k2 becomes the newest key, k1 stays in the ring
    settings.RECORDINGS_MASTER_KEYS = ring("k2", "k1")
    # then: the old wrap opens, and rewrap moves it to k2 without changing the data key
    assert crypto.unwrap(wrapped) == data_key
    moved = crypto.rewrap(wrapped)
    assert moved.key_id == "k2"
    settings.RECORDINGS_MASTER_KEYS = ring("k2")
    assert crypto.unwrap(moved) == data_key
    with pytest.raises(crypto.IntegrityError, match="'k1' is not in RECORDINGS_MASTER_KEYS"):
        crypto.unwrap(wrapped)


def test_no_ring_outside_debug_is_a_clear_configuration_error(settings):
    settings.RECORDINGS_MASTER_KEYS = ""
    settings.DEBUG = False

    with pytest.raises(ImproperlyConfigured, match="RECORDINGS_MASTER_KEYS must be set"):
        crypto.newest_master_key()


def test_a_development_key_exists_under_debug_only(settings):
    settings.RECORDINGS_MASTER_KEYS = ""
    settings.DEBUG = True

    assert crypto.newest_master_key().key_id == crypto.DEVELOPMENT_KEY_ID


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("k1", "is not 'kid:base64key'"),
        ("k1:!!!", "not valid base64"),
        ("k1:" + base64.b64encode(b"x" * 16).decode(), "16 bytes"),
    ],
)
def test_a_malformed_ring_says_what_is_wrong(text, problem):
    with pytest.raises(ImproperlyConfigured, match=problem):
        crypto.parse_key_ring(text)
