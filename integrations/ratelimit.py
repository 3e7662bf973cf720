"""A token bucket per integration in Redis, shared by every worker and web process.

The bucket holds up to `rate` tokens (one second's worth) and refills at `rate` per second; each send
takes one. `take()` answers how long to wait when the bucket is empty, so a worker reschedules the
message instead of sleeping. One Lua script does read-refill-take atomically (Redis runs scripts one
at a time), with Redis's own clock so workers on different hosts agree. If Redis cannot be reached
the send goes ahead: the limit protects the provider, and is never a reason to lose a message.
"""

from __future__ import annotations

import logging

import redis
from django.conf import settings

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


def rate_for(integration) -> float:
    return float(integration.rate_limit_per_second or getattr(settings, "INTEGRATION_RATE_LIMIT_PER_SECOND", 10.0))


def take(integration) -> float:
    """Takes a token: 0.0 when the send may go now, else the seconds until a token is there."""
    rate = rate_for(integration)
    if rate <= 0:
        return 0.0
    capacity = max(1.0, rate)
    try:
        client = redis_client()
        wait = client.eval(_TAKE, 1, f"oncall:integration-rate:{integration.integration_id}", rate, capacity)
    except redis.RedisError:
        logger.warning("rate limit unreadable; sending", extra={"integration": integration.integration_id})
        return 0.0
    return float(wait)
