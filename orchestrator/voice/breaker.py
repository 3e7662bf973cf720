"""A circuit breaker per carrier, its state in Redis so every worker shares it.

After BREAKER_FAILURE_THRESHOLD failures within BREAKER_WINDOW_SECONDS a carrier is skipped for
BREAKER_COOLDOWN_SECONDS; then it is tried again, and one success closes the breaker. Redis is never
the only copy of anything here: if Redis cannot be reached the breaker stays closed (we would
rather try a carrier than skip one for lack of a counter).
"""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings

from config.redis import redis_client

logger = logging.getLogger(__name__)


def _keys(carrier: str) -> tuple[str, str]:
    return f"oncall:breaker:{carrier}:failures", f"oncall:breaker:{carrier}:open_until"


def is_open(carrier: str) -> bool:
    try:
        open_until = redis_client().get(_keys(carrier)[1])
    except redis.RedisError:
        logger.warning("breaker state unreadable; treating the carrier as available", extra={"carrier": carrier})
        return False
    return open_until is not None and float(open_until) > time.time()


def open_until(carrier: str) -> float | None:
    try:
        value = redis_client().get(_keys(carrier)[1])
    except redis.RedisError:
        return None
    return float(value) if value is not None and float(value) > time.time() else None


def record_failure(carrier: str) -> bool:
    """Counts a failure; returns True when this one opened the breaker."""
    failures_key, open_key = _keys(carrier)
    try:
        client = redis_client()
        with client.pipeline() as pipe:
            pipe.incr(failures_key)
            pipe.expire(failures_key, settings.BREAKER_WINDOW_SECONDS)
            failures = pipe.execute()[0]
        if failures >= settings.BREAKER_FAILURE_THRESHOLD:
            cooldown = settings.BREAKER_COOLDOWN_SECONDS
            client.set(open_key, str(time.time() + cooldown), ex=int(cooldown) + 60)
            client.delete(failures_key)
            logger.warning("carrier breaker opened", extra={"carrier": carrier, "cooldown_seconds": cooldown})
            return True
    except redis.RedisError:
        logger.warning("breaker failure not recorded", extra={"carrier": carrier})
    return False


def record_success(carrier: str) -> None:
    try:
        redis_client().delete(*_keys(carrier))
    except redis.RedisError:
        logger.warning("breaker success not recorded", extra={"carrier": carrier})
