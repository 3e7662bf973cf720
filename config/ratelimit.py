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

import redis

from config.redis import redis_client

logger = logging.getLogger(__name__)

_TAKE = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local state = redis.call('HMGET', key, 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', key, math.ceil(capacity / rate) + 60)
return tostring(wait)
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


def take(key: str, *, rate: float, capacity: float) -> float:
    """Takes a token from bucket `key`: 0.0 when the request may go now, else seconds to wait."""
    if rate <= 0:
        return 0.0
    try:
        client = redis_client()
        return float(_script(client)(keys=[key], args=[rate, max(1.0, capacity)]))
    except redis.RedisError:
        logger.warning("rate limit unreadable; letting the request through", extra={"bucket": key})
        return 0.0
