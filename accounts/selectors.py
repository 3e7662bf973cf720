"""Reads for accounts."""

from __future__ import annotations

import hmac

from accounts.models import APIKey
from accounts.services import API_KEY_MARK, hash_api_key
from config.ttlcache import TTLCache

# Every alert is authenticated by its key: the row is read at most once per API_KEY_CACHE_SECONDS
# per process. A revocation made here clears it at once (accounts.apps), elsewhere within seconds.
# The secret is still checked against the hash on every request; unknown prefixes are not cached.
API_KEYS = TTLCache("API_KEY_CACHE_SECONDS")


class APIKeyRejected(Exception):
    """The key is not usable; the message says why, without revealing whether the prefix exists."""


def api_key_from_secret(raw_key: str) -> APIKey:
    if not raw_key.startswith(API_KEY_MARK) or "." not in raw_key:
        raise APIKeyRejected("Invalid API key.")
    prefix = raw_key[len(API_KEY_MARK) :].split(".", 1)[0]
    api_key = API_KEYS.get_or_load(prefix, lambda: APIKey.objects.filter(prefix=prefix).first())
    if api_key is None or not hmac.compare_digest(api_key.hashed_key, hash_api_key(raw_key)):
        raise APIKeyRejected("Invalid API key.")
    if api_key.is_revoked:
        raise APIKeyRejected("This API key has been revoked.")
    if api_key.is_expired:
        raise APIKeyRejected(f"This API key expired at {api_key.expires_at.isoformat()}.")
    return api_key
