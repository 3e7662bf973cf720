"""A Redis client for locks, rate limits and heartbeats (never the only copy of anything)."""

from __future__ import annotations

import redis
from django.conf import settings


def redis_client(url: str | None = None, timeout: float = 2.0) -> redis.Redis:
    return redis.Redis.from_url(
        url or settings.REDIS_URL,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        decode_responses=True,
    )
