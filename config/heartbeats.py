"""Heartbeats that readiness reads: is any worker alive, and is beat ticking?

- Worker: Celery's own heartbeat (the `Heart` bootstep sends a worker-heartbeat event every 2 s while
  the worker is connected to the broker) also records the worker's hostname and the time in a Redis
  sorted set. A worker that died, or lost the broker and did not get it back, stops beating.
- Beat: beat sends `config.beat_heartbeat` every 10 s and a worker runs it, recording the time
  (config/tasks.py). A stale tick means beat is down (or no worker takes the `default` queue).

`/readyz` fails, naming `worker` or `beat`, when no worker beat within READINESS_WORKER_STALE_SECONDS
or beat's last tick is older than READINESS_BEAT_STALE_INTERVALS of its intervals.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery.signals import heartbeat_sent
from django.conf import settings

from config.redis import redis_client

logger = logging.getLogger(__name__)

WORKER_HEARTBEATS_KEY = "oncall:workers:heartbeat"  # sorted set: worker hostname -> time of its last heartbeat
BEAT_HEARTBEAT_KEY = "oncall:beat:last_tick"
FORGET_WORKERS_AFTER_SECONDS = 3600
STALE = "stale"


def beat_stale_after_seconds() -> float:
    interval = float(settings.CELERY_BEAT_SCHEDULE["beat-heartbeat"]["schedule"])
    return interval * settings.READINESS_BEAT_STALE_INTERVALS


@heartbeat_sent.connect
def record_worker_heartbeat(sender: Any, **_: Any) -> None:
    """Runs in the worker on every Celery heartbeat; a failed write only costs one beat."""
    hostname = sender.eventer.hostname
    now = time.time()
    try:
        client = redis_client(timeout=1.0)
        pipe = client.pipeline(transaction=False)
        pipe.zadd(WORKER_HEARTBEATS_KEY, {hostname: now})
        pipe.zremrangebyscore(WORKER_HEARTBEATS_KEY, "-inf", now - FORGET_WORKERS_AFTER_SECONDS)
        pipe.expire(WORKER_HEARTBEATS_KEY, FORGET_WORKERS_AFTER_SECONDS)
        pipe.execute()
    except redis.RedisError:
        logger.warning("could not record the worker heartbeat of %s", hostname, exc_info=True)


def record_beat_tick() -> None:
    redis_client().set(BEAT_HEARTBEAT_KEY, str(time.time()), ex=FORGET_WORKERS_AFTER_SECONDS)


def heartbeat_checks() -> tuple[dict[str, str], dict[str, float | None]]:
    """`worker` and `beat` readiness ("ok" or "stale") and how many seconds ago each last beat.

    Raises redis.RedisError when Redis cannot be asked; the caller reports that as the broker.
    """
    client = redis_client(timeout=1.0)
    now = time.time()
    newest_worker = client.zrevrange(WORKER_HEARTBEATS_KEY, 0, 0, withscores=True)
    last_tick = client.get(BEAT_HEARTBEAT_KEY)
    worker_age = round(now - newest_worker[0][1], 1) if newest_worker else None
    beat_age = round(now - float(last_tick), 1) if last_tick else None
    checks = {
        "worker": _fresh(worker_age, settings.READINESS_WORKER_STALE_SECONDS),
        "beat": _fresh(beat_age, beat_stale_after_seconds()),
    }
    return checks, {"worker_last_heartbeat_seconds_ago": worker_age, "beat_last_tick_seconds_ago": beat_age}


def _fresh(age: float | None, limit: float) -> str:
    return "ok" if age is not None and age <= limit else STALE
