"""Project-wide tasks."""

from __future__ import annotations

from celery import shared_task

# Importing the heartbeats connects the worker heartbeat recorder in every worker process.
from config.heartbeats import BEAT_HEARTBEAT_KEY, record_beat_tick

__all__ = ["BEAT_HEARTBEAT_KEY", "beat_heartbeat"]


@shared_task(name="config.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> None:
    """Proves beat and a worker are alive: /readyz reports how long ago this last ran."""
    record_beat_tick()
