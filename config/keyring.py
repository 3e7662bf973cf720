"""Key rings from settings: "kid1:base64key,kid2:base64key" (newest first), AES-256 keys with ids.

One format and one parser for every ring we keep (recordings' master keys, integrations' credential
keys): the newest key seals, any key in the ring opens what it sealed, so a key is rotated by putting
a new one first and retiring the old one once nothing sealed by it is left.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEVELOPMENT_KEY_ID = "dev"
GENERATE_HINT = "python -c 'import os,base64; print(base64.b64encode(os.urandom(32)).decode())'"


@dataclass(frozen=True)
class MasterKey:
    key_id: str
    secret: bytes

    def __repr__(self) -> str:  # never the key itself, in a traceback or a log line
        return f"MasterKey(key_id={self.key_id!r})"


def parse_key_ring(text: str, setting: str) -> list[MasterKey]:
    """'kid1:base64key,kid2:base64key' (newest first) -> keys; each key must be 32 bytes.

    Errors name the setting and the key id, never the key."""
    ring, seen = [], set()
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id:
            raise ImproperlyConfigured(f"{setting}: '{key_id or entry[:8]}…' is not 'kid:base64key'.")
        try:
            secret = base64.b64decode(encoded.strip(), validate=True)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{setting}: key '{key_id}' is not valid base64.") from exc
        if len(secret) != 32:
            raise ImproperlyConfigured(
                f"{setting}: key '{key_id}' is {len(secret)} bytes; AES-256 needs 32 ({GENERATE_HINT})."
            )
        if key_id in seen:
            raise ImproperlyConfigured(f"{setting}: key id '{key_id}' appears twice.")
        seen.add(key_id)
        ring.append(MasterKey(key_id, secret))
    return ring


def key_ring_from_settings(setting: str, *, purpose: str) -> list[MasterKey]:
    """The ring in `setting`; under DEBUG with none configured, one development key derived from
    SECRET_KEY and `purpose` (so a laptop works with nothing set, and two rings never share a key).
    Outside DEBUG a missing ring is an error the moment it is used, not when the product starts."""
    ring = parse_key_ring(getattr(settings, setting, "") or "", setting)
    if ring:
        return ring
    if settings.DEBUG:
        secret = hashlib.sha256(f"{purpose}-development-master-key:".encode() + settings.SECRET_KEY.encode()).digest()
        return [MasterKey(DEVELOPMENT_KEY_ID, secret)]
    raise ImproperlyConfigured(
        f'{setting} must be set when DEBUG is off ("kid:base64 of 32 random bytes", newest first; {GENERATE_HINT}).'
    )


def find_key(ring: list[MasterKey], key_id: str) -> MasterKey | None:
    return next((key for key in ring if key.key_id == key_id), None)
