"""Reads for accounts."""

from __future__ import annotations

import hmac

from accounts.models import APIKey
from accounts.services import API_KEY_MARK, hash_api_key


class APIKeyRejected(Exception):
    """The key is not usable; the message says why, without revealing whether the prefix exists."""


def api_key_from_secret(raw_key: str) -> APIKey:
    if not raw_key.startswith(API_KEY_MARK) or "." not in raw_key:
        raise APIKeyRejected("Invalid API key.")
    prefix = raw_key[len(API_KEY_MARK) :].split(".", 1)[0]
    api_key = APIKey.objects.filter(prefix=prefix).first()
    if api_key is None or not hmac.compare_digest(api_key.hashed_key, hash_api_key(raw_key)):
        raise APIKeyRejected("Invalid API key.")
    if api_key.is_revoked:
        raise APIKeyRejected("This API key has been revoked.")
    if api_key.is_expired:
        raise APIKeyRejected(f"This API key expired at {api_key.expires_at.isoformat()}.")
    return api_key
