"""A token bucket in Redis, shared by every process: integrations' sends and alert ingestion.

The bucket holds up to `capacity` tokens and refills at `rate` per second; each request takes one.
`take()` answers how long to wait when the bucket is empty (0.0 when the request may go now), so a
caller can say Retry-After or reschedule instead of sleeping. One Lua script does read-refill-take
atomically (Redis runs scripts one at a time), with Redis's own clock so hosts agree, in one round
trip. If Redis cannot be reached the request goes ahead: a limit protects a receiver or the engine,
and is never the reason an alert or a message is lost.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from config.redis import redis_client

logger = logging.getLogger(__name__)

_TAKE = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local want = tonumber(ARGV[3]) or 1
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local state = redis.call('HMGET', key, 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local result
if tokens >= 1 then
  local granted = math.min(want, math.floor(tokens))
  tokens = tokens - granted
  result = 'granted ' .. granted
else
  result = tostring((1 - tokens) / rate)
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', key, math.ceil(capacity / rate) + 60)
return result
"""
_scripts: dict[int, object] = {}
_lock = threading.Lock()


def _script(client: redis.Redis):
    """The script registered once per client (EVALSHA afterwards: the body is not resent each time)."""
    script = _scripts.get(id(client))
    if script is None:
        with _lock:
            script = _scripts.setdefault(id(client), client.register_script(_TAKE))
    return script


def take(key: str, *, rate: float, capacity: float, lease: int = 1) -> float:
    """Takes a token from bucket `key`: 0.0 when the request may go now, else seconds to wait.

    `lease` > 1 takes up to that many tokens in one round trip and hands them out from this process
    for at most LEASE_SECONDS (what is not used by then is spent). For a bucket that refills fast (the
    alert rate per key, 1,000 a second), this saves a Redis round trip on almost every request, and
    a process holds back at most `lease` tokens; a slow bucket must use 1, which is exact."""
    if rate <= 0:
        return 0.0
    if lease > 1 and _leases.take_local(key):
        return 0.0
    try:
        client = redis_client()
        answer = _script(client)(keys=[key], args=[rate, max(1.0, capacity), max(1, lease)])
    except redis.RedisError:
        logger.warning("rate limit unreadable; letting the request through", extra={"bucket": key})
        return 0.0
    answer = answer.decode() if isinstance(answer, bytes) else str(answer)
    if not answer.startswith("granted "):
        return float(answer)
    granted = int(answer.removeprefix("granted "))
    if granted > 1:
        _leases.keep(key, granted - 1)
    return 0.0


# Tokens leased but not yet used are given up after this long, so a quiet process holds none.
LEASE_SECONDS = 1.0


class _Leases:
    """Tokens this process took ahead of need, per bucket, with the moment they lapse."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def take_local(self, key: str) -> bool:
        with self._lock:
            count, lapses_at = self._held.get(key, (0, 0.0))
            if count <= 0 or time.monotonic() >= lapses_at:
                self._held.pop(key, None)
                return False
            self._held[key] = (count - 1, lapses_at)
            return True

    def forget(self) -> None:
        with self._lock:
            self._held.clear()

    def keep(self, key: str, count: int) -> None:
        with self._lock:
            if len(self._held) > 10_000:
                self._held.clear()
            self._held[key] = (count, time.monotonic() + LEASE_SECONDS)


_leases = _Leases()


def forget_leases() -> None:
    """Gives up every token this process holds (tests start each case with none)."""
    _leases.forget()
