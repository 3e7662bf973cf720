"""Key rings from settings: "kid1:base64key,kid2:base64key" (newest first), AES-256 keys with ids.

One format and one parser for every ring we keep (recordings' master keys, integrations' credential
keys): the newest key seals, any key in the ring opens what it sealed, so a key is rotated by putting
a new one first and retiring the old one once nothing sealed by it is left.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEVELOPMENT_KEY_ID = "dev"
# A key id we may print in an error: short, and not the shape of a base64 key pasted before a colon.
_PRINTABLE_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,16}")
GENERATE_HINT = "python -c 'import os,base64; print(base64.b64encode(os.urandom(32)).decode())'"


@dataclass(frozen=True)
class MasterKey:
    key_id: str
    secret: bytes

    def __repr__(self) -> str:  # never the key itself, in a traceback or a log line
        return f"MasterKey(key_id={self.key_id!r})"


def parse_key_ring(text: str, setting: str) -> list[MasterKey]:
    """'kid1:base64key,kid2:base64key' (newest first) -> keys; each key must be 32 bytes.

    Errors name the setting and the entry's position, never any part of an entry: a missing colon
    makes the whole entry the key, and error text ends up in logs. A key id is named only when it
    came from a well-formed `kid:` prefix and looks like an id (short), not like a pasted key."""
    ring, seen = [], set()
    entries = [part.strip() for part in text.split(",")]
    for number, entry in enumerate((entry for entry in entries if entry), start=1):
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id:
            raise ImproperlyConfigured(f"Entry #{number} of {setting} is not 'kid:base64key'.")
        which = _describe(number, setting, key_id)
        try:
            secret = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            # no exception chaining: binascii's message is harmless, but a chained frame may carry the text
            raise ImproperlyConfigured(f"{which}: the key is not valid base64.") from None
        if len(secret) != 32:
            raise ImproperlyConfigured(f"{which}: the key is {len(secret)} bytes; AES-256 needs 32 ({GENERATE_HINT}).")
        if key_id in seen:
            raise ImproperlyConfigured(f"{which}: the key id appears twice; each key needs its own id.")
        seen.add(key_id)
        ring.append(MasterKey(key_id, secret))
    return ring


def _describe(number: int, setting: str, key_id: str) -> str:
    """'entry #N of SETTING', plus the key id when it is safe to print (short, id characters only)."""
    if _PRINTABLE_KEY_ID.fullmatch(key_id):
        return f"Entry #{number} of {setting} (key id '{key_id}')"
    return f"Entry #{number} of {setting}"


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
