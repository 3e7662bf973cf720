"""The one way to enqueue work from a transaction: after it commits, by task name."""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task_name: str, *args, countdown: float | None = None) -> None:
    """Sends the task once the surrounding transaction commits (at once outside of one).

    A broker error is logged, not raised: the database already holds the state, and the beat
    sweeps pick up anything whose task never left (a queued attempt, a passed deadline).
    """

    def send() -> None:
        from config.celery import app

        try:
            app.send_task(task_name, args=args, countdown=countdown)
        except Exception:
            logger.exception("could not enqueue task; the sweep will recover it", extra={"task": task_name})

    transaction.on_commit(send)
