"""Integration credentials sealed at rest: AES-256-GCM under a key ring (INTEGRATIONS_CREDENTIAL_KEYS,
"kid:base64key,..." newest first, parsed by config.keyring).

A sealed value is "v1:<key id>:<base64 of nonce + ciphertext>", so a value sealed under an older key
still opens after a new key is put first; `manage.py reseal_integration_credentials` seals every
integration's credentials again under the newest key, after which the old key can leave the ring.
The associated data names what is sealed ("integrations:auth_config", "integrations:token"), so a
sealed token cannot pass for a config.

Nothing here logs, and no error text carries a value: only key ids and what went wrong.
"""

from __future__ import annotations

import base64
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from config import keyring

SETTING = "INTEGRATIONS_CREDENTIAL_KEYS"
VERSION = "v1"
NONCE_SIZE = 12
MASK = "••••"
# auth_config keys that are not secret: shown as they are in the API and the admin; everything else
# (client_secret, api_key, password, token, private_key, signing_secret, ...) is masked.
PUBLIC_KEYS = frozenset(
    {
        "client_id",
        "token_url",
        "token_uri",
        "scope",
        "audience",
        "issuer",
        "subject",
        "username",
        "header_name",
        "client_email",
        "key_id",
        "project_id",
    }
)


class CredentialError(Exception):
    """A sealed value that does not open: a key missing from the ring, or altered data."""


def _ring() -> list[keyring.MasterKey]:
    return keyring.key_ring_from_settings(SETTING, purpose="integrations")


def seal_bytes(plain: bytes, purpose: str) -> str:
    key = _ring()[0]
    nonce = os.urandom(NONCE_SIZE)
    sealed = AESGCM(key.secret).encrypt(nonce, plain, f"integrations:{purpose}".encode())
    return f"{VERSION}:{key.key_id}:{base64.b64encode(nonce + sealed).decode()}"


def open_bytes(text: str, purpose: str) -> bytes:
    version, _, rest = text.partition(":")
    key_id, _, encoded = rest.partition(":")
    if version != VERSION or not key_id or not encoded:
        raise CredentialError("The stored credentials are not in a format this version reads.")
    key = keyring.find_key(_ring(), key_id)
    if key is None:
        raise CredentialError(f"Credential key '{key_id}' is not in {SETTING}; keep retired keys in the ring.")
    try:
        raw = base64.b64decode(encoded, validate=True)
        return AESGCM(key.secret).decrypt(raw[:NONCE_SIZE], raw[NONCE_SIZE:], f"integrations:{purpose}".encode())
    except (ValueError, InvalidTag) as exc:
        raise CredentialError(
            f"The stored credentials do not open with key '{key_id}' (altered or wrong key)."
        ) from exc


def newest_key_id() -> str:
    return _ring()[0].key_id


def sealed_key_id(text: str) -> str:
    """The key id a sealed value names ("" for an empty or unreadable value)."""
    version, _, rest = text.partition(":")
    return rest.partition(":")[0] if version == VERSION else ""


def seal_config(config: dict) -> str:
    if not config:
        return ""
    return seal_bytes(json.dumps(config, separators=(",", ":")).encode(), "auth_config")


def open_config(text: str) -> dict:
    if not text:
        return {}
    return json.loads(open_bytes(text, "auth_config"))


def masked(config_keys: list[str], public: dict | None = None) -> dict:
    """What the API and the admin show: public values as they are, every secret as "••••"."""
    public = public or {}
    return {key: public.get(key, MASK) if key in PUBLIC_KEYS else MASK for key in sorted(config_keys)}


def public_part(config: dict) -> dict:
    return {key: value for key, value in config.items() if key in PUBLIC_KEYS}


def secret_values(config: dict) -> list[str]:
    """The secret strings of a config, for scrubbing texts that might echo one back."""
    values = []
    for key, value in config.items():
        if key in PUBLIC_KEYS:
            continue
        if isinstance(value, str) and len(value) >= 4:
            values.append(value)
            values.extend(line for line in value.splitlines() if len(line) >= 16)  # a PEM's lines
    return values


def scrub_secrets(text: str, config: dict) -> str:
    for value in sorted(secret_values(config), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
