"""One circuit breaker mechanism for everything we call out to, its state in Redis so every worker
shares it. A breaker is named by what it guards: "carrier:twilio", "integration:crm_salesforce".

After `threshold` failures within `window` seconds the name is open (skipped) for `cooldown` seconds;
then it is tried again, and one success closes it. The defaults are BREAKER_FAILURE_THRESHOLD,
BREAKER_WINDOW_SECONDS and BREAKER_COOLDOWN_SECONDS; a caller may pass its own. Redis is never the
only copy of anything here: if Redis cannot be reached the breaker stays closed (we would rather try
than skip for lack of a counter).
"""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings

from config.redis import redis_client

logger = logging.getLogger(__name__)
PREFIX = "oncall:breaker"


def keys(name: str) -> tuple[str, str]:
    """(the failure counter, the open-until timestamp) of breaker `name`."""
    return f"{PREFIX}:{name}:failures", f"{PREFIX}:{name}:open_until"


def is_open(name: str) -> bool:
    return open_until(name) is not None


def open_until(name: str) -> float | None:
    """When the open breaker closes again (epoch seconds), or None while it is closed."""
    try:
        value = redis_client().get(keys(name)[1])
    except redis.RedisError:
        logger.warning("breaker state unreadable; treating it as closed", extra={"breaker": name})
        return None
    return float(value) if value is not None and float(value) > time.time() else None


def record_failure(
    name: str, *, threshold: int | None = None, window: float | None = None, cooldown: float | None = None
) -> bool:
    """Counts a failure; returns True when this one opened the breaker."""
    threshold = threshold or settings.BREAKER_FAILURE_THRESHOLD
    window = window or settings.BREAKER_WINDOW_SECONDS
    cooldown = cooldown or settings.BREAKER_COOLDOWN_SECONDS
    failures_key, open_key = keys(name)
    try:
        client = redis_client()
        with client.pipeline() as pipe:
            pipe.incr(failures_key)
            pipe.expire(failures_key, max(1, int(window)))
            failures = pipe.execute()[0]
        if failures >= threshold:
            client.set(open_key, str(time.time() + cooldown), ex=int(cooldown) + 60)
            client.delete(failures_key)
            logger.warning("circuit breaker opened", extra={"breaker": name, "cooldown_seconds": cooldown})
            return True
    except redis.RedisError:
        logger.warning("breaker failure not recorded", extra={"breaker": name})
    return False


def record_success(name: str) -> None:
    try:
        redis_client().delete(*keys(name))
    except redis.RedisError:
        logger.warning("breaker success not recorded", extra={"breaker": name})
