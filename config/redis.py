"""A Redis client for locks, rate limits and heartbeats (never the only copy of anything).

One connection pool per URL and timeout for the whole process: a breaker check on every dial must
not open a new pool (and a new TCP connection) each time.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_clients: dict[tuple[str, float], redis.Redis] = {}
_lock = threading.Lock()


def redis_client(url: str | None = None, timeout: float = 2.0) -> redis.Redis:
    key = (url or settings.REDIS_URL, timeout)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = redis.Redis.from_url(
                    key[0],
                    socket_connect_timeout=timeout,
                    socket_timeout=timeout,
                    decode_responses=True,
                    health_check_interval=30,
                )
    return client
