"""Project-wide tasks."""

from __future__ import annotations

import time

from celery import shared_task

from config.redis import redis_client

BEAT_HEARTBEAT_KEY = "oncall:beat:last_tick"


@shared_task(name="config.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> None:
    """Proves beat and a worker are alive: /readyz reports how long ago this last ran."""
    redis_client().set(BEAT_HEARTBEAT_KEY, str(time.time()), ex=3600)
