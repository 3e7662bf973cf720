"""Envelope encryption for recordings: AES-256-GCM in authenticated chunks, streamed.

Each stored object gets a fresh 256-bit data key. The data key is wrapped (AES-256-GCM) by a master
key from the key ring in settings (RECORDINGS_MASTER_KEYS, "kid:base64key,...", newest first) and
the wrapped key lives in the database beside the key id, never in the object. Rotating master keys
re-wraps the data keys only (`manage.py rewrap_recording_keys`); the media is not touched. With
RECORDINGS_KMS_KEY_ID set, AWS KMS wraps the data keys instead (recordings.kms).

Object layout: a header (magic, chunk size, 8-byte random nonce prefix), then chunks of
`chunk_size` plaintext bytes, each sealed with its own nonce (prefix + 32-bit counter). The
associated data of every chunk is the header, the chunk index and a final-chunk flag, so a chunk
moved, dropped, swapped in from another object, or an object cut short fails authentication. The
last chunk is always shorter than `chunk_size` (possibly empty), which is how a reader knows it is
the last one; an object's plaintext size therefore fixes its number of chunks (size // chunk + 1).
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from config import keyring
from config.keyring import MasterKey
from recordings import kms

MAGIC = b"OCREC1"
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
_HEADER = struct.Struct(">6sI8s")  # magic, chunk size, nonce prefix
HEADER_SIZE = _HEADER.size
_WRAP_NONCE_SIZE = 12
DEVELOPMENT_KEY_ID = keyring.DEVELOPMENT_KEY_ID


class IntegrityError(Exception):
    """The stored object is not what was stored: tampered, truncated, reordered or the wrong key."""


@dataclass(frozen=True)
class WrappedKey:
    key_id: str
    blob: bytes  # nonce + AES-GCM(master, data key)


# --- the key ring -------------------------------------------------------------------------------


def parse_key_ring(text: str) -> list[MasterKey]:
    """'kid1:base64key,kid2:base64key' (newest first) -> master keys; see config.keyring."""
    return keyring.parse_key_ring(text, "RECORDINGS_MASTER_KEYS")


def key_ring() -> list[MasterKey]:
    """The configured ring (a development key under DEBUG when none is set; see config.keyring)."""
    return keyring.key_ring_from_settings("RECORDINGS_MASTER_KEYS", purpose="recordings")


def newest_master_key() -> MasterKey:
    return key_ring()[0]


def master_key(key_id: str) -> MasterKey:
    for key in key_ring():
        if key.key_id == key_id:
            return key
    raise IntegrityError(
        f"Master key '{key_id}' is not in RECORDINGS_MASTER_KEYS; keep retired keys in the ring until "
        "`manage.py rewrap_recording_keys` has moved every recording off them."
    )


# --- data keys ----------------------------------------------------------------------------------


def _wrap_aad(key_id: str) -> bytes:
    return b"recordings-data-key:" + key_id.encode()


def wrap(data_key: bytes, master: MasterKey) -> WrappedKey:
    nonce = os.urandom(_WRAP_NONCE_SIZE)
    sealed = AESGCM(master.secret).encrypt(nonce, data_key, _wrap_aad(master.key_id))
    return WrappedKey(master.key_id, nonce + sealed)


def unwrap(wrapped: WrappedKey) -> bytes:
    if kms.is_kms_key_id(wrapped.key_id):
        try:
            return kms.unwrap(wrapped.blob)
        except kms.KeyRefused as exc:
            raise IntegrityError(f"The data key does not open with {wrapped.key_id}: {exc}") from exc
    master = master_key(wrapped.key_id)
    nonce, sealed = wrapped.blob[:_WRAP_NONCE_SIZE], wrapped.blob[_WRAP_NONCE_SIZE:]
    try:
        return AESGCM(master.secret).decrypt(nonce, sealed, _wrap_aad(wrapped.key_id))
    except InvalidTag as exc:
        raise IntegrityError(f"The data key does not open with master key '{wrapped.key_id}'.") from exc


def new_data_key() -> tuple[bytes, WrappedKey]:
    """A fresh data key for one object, and that key wrapped by KMS when a KMS key is configured,
    else by the newest master key of the ring."""
    if kms.enabled():
        data_key, key_id, blob = kms.generate_data_key()
        return data_key, WrappedKey(key_id, blob)
    data_key = AESGCM.generate_key(bit_length=256)
    return data_key, wrap(data_key, newest_master_key())


def current_key_id() -> str:
    """The key new objects are wrapped by: what re-wrapping moves every recording to."""
    return kms.current_key_id() if kms.enabled() else newest_master_key().key_id


def rewrap(wrapped: WrappedKey) -> WrappedKey:
    """The same data key, wrapped by the current key (the object stays as it is)."""
    data_key = unwrap(wrapped)
    if kms.enabled():
        return WrappedKey(*kms.wrap(data_key))
    return wrap(data_key, newest_master_key())


# --- chunked encryption -------------------------------------------------------------------------


def read_full(source: BinaryIO, size: int) -> bytes:
    """Reads `size` bytes unless the stream ends first (network streams return short reads)."""
    parts, missing = [], size
    while missing > 0:
        part = source.read(missing)
        if not part:
            break
        parts.append(part)
        missing -= len(part)
    return b"".join(parts)


def _nonce(prefix: bytes, index: int) -> bytes:
    if index >= 2**32:
        raise ValueError("object too large for one data key (2**32 chunks)")
    return prefix + struct.pack(">I", index)


def _chunk_aad(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">Q?", index, final)


def chunk_count(plaintext_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    return plaintext_size // chunk_size + 1


def ciphertext_size(plaintext_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    return HEADER_SIZE + plaintext_size + chunk_count(plaintext_size, chunk_size) * TAG_SIZE


class EncryptingReader:
    """A file-like reader of the encrypted form of `source`: read(n) pulls and seals chunks as
    needed, so a storage client can stream it. After the last read, `plaintext_size` and `sha256`
    describe what was encrypted."""

    def __init__(self, source: BinaryIO, data_key: bytes, chunk_size: int = CHUNK_SIZE):
        self._source, self._aead, self._chunk_size = source, AESGCM(data_key), chunk_size
        self._header = _HEADER.pack(MAGIC, chunk_size, os.urandom(8))
        self._prefix = self._header[-8:]
        self._buffer, self._index, self._done = bytearray(self._header), 0, False
        self._digest = hashlib.sha256()
        self.plaintext_size = 0

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def _seal_next(self) -> None:
        plain = read_full(self._source, self._chunk_size)
        final = len(plain) < self._chunk_size
        self._digest.update(plain)
        self.plaintext_size += len(plain)
        aad = _chunk_aad(self._header, self._index, final)
        self._buffer += self._aead.encrypt(_nonce(self._prefix, self._index), plain, aad)
        self._index += 1
        self._done = final

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            self._seal_next()
        size = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    def readable(self) -> bool:
        return True


def parse_header(raw: bytes) -> tuple[bytes, int]:
    """-> (the header bytes, chunk size); refuses what is not one of our objects."""
    if len(raw) < HEADER_SIZE:
        raise IntegrityError("The stored object is truncated: its header is incomplete.")
    header = raw[:HEADER_SIZE]
    magic, chunk_size, _ = _HEADER.unpack(header)
    if magic != MAGIC or not 0 < chunk_size <= 16 * 1024 * 1024:
        raise IntegrityError("The stored object is not an encrypted recording (bad header).")
    return header, chunk_size


def decrypt_chunks(
    header: bytes, source: BinaryIO, data_key: bytes, *, first: int, last: int, total: int
) -> Iterator[bytes]:
    """Plaintext of chunks `first`..`last` from `source`, positioned at chunk `first`.

    `total` (from the recorded plaintext size) says which chunk must be the final one, so a
    truncated or extended object fails even when only a range is read."""
    _, chunk_size = parse_header(header)
    aead, prefix = AESGCM(data_key), header[-8:]
    for index in range(first, last + 1):
        final = index == total - 1
        sealed = read_full(source, chunk_size + TAG_SIZE)
        if len(sealed) < TAG_SIZE or (not final and len(sealed) < chunk_size + TAG_SIZE):
            raise IntegrityError(f"The stored object is truncated at chunk {index} of {total}.")
        try:
            yield aead.decrypt(_nonce(prefix, index), sealed, _chunk_aad(header, index, final))
        except InvalidTag as exc:
            raise IntegrityError(
                f"Chunk {index} of {total} failed authentication: the stored object was altered, "
                "truncated or reordered, or the data key is wrong."
            ) from exc
    if last == total - 1 and source.read(1):
        raise IntegrityError("The stored object has bytes after its final chunk.")


def decrypt_all(source: BinaryIO, data_key: bytes, *, plaintext_size: int, sha256: str) -> Iterator[bytes]:
    """The whole plaintext, streamed; the SHA-256 of the plaintext is checked at the end."""
    header = read_full(source, HEADER_SIZE)
    _, chunk_size = parse_header(header)
    total = chunk_count(plaintext_size, chunk_size)
    digest, seen = hashlib.sha256(), 0
    for plain in decrypt_chunks(header, source, data_key, first=0, last=total - 1, total=total):
        digest.update(plain)
        seen += len(plain)
        yield plain
    if seen != plaintext_size or digest.hexdigest() != sha256:
        raise IntegrityError("The decrypted recording does not match its recorded SHA-256.")
