"""The one way to enqueue work from a transaction: after it commits, by task name."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

_broker_down_until = 0.0
_lock = threading.Lock()
_local = threading.local()
PUBLISH_CONNECT_TIMEOUT_SECONDS = 1.0


def _publish_connection():
    """A broker connection of this thread's own that tries once and never waits out kombu's
    reconnect loop (the worker's consuming connection keeps its patient retries)."""
    from config.celery import app

    connection = getattr(_local, "connection", None)
    if connection is not None and getattr(_local, "broker_url", None) != app.conf.broker_url:
        _drop_publish_connection()  # the broker was reconfigured: never publish to the old one
        connection = None
    if connection is None:
        connection = app.connection_for_write(
            connect_timeout=PUBLISH_CONNECT_TIMEOUT_SECONDS,
            transport_options={**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "max_retries": 0},
        )
        _local.connection, _local.broker_url = connection, app.conf.broker_url
    return connection


def _drop_publish_connection() -> None:
    connection = getattr(_local, "connection", None)
    _local.connection = None
    if connection is not None:
        try:
            connection.release()
        except Exception:  # a broken connection may fail to close; it is dropped either way
            logger.debug("broken publish connection dropped")


def broker_marked_down() -> bool:
    return time.monotonic() < _broker_down_until


def _mark_broker_down() -> None:
    global _broker_down_until
    with _lock:
        _broker_down_until = time.monotonic() + settings.BROKER_DOWN_BACKOFF_SECONDS


def send_now(task_name: str, *args, countdown: float | None = None) -> bool:
    """Publishes one task, once, without Celery's publish retries: a caller (an alert POST) never
    waits on a broker that is down. Returns False when it was not sent; the state is in the
    database and the beat sweep sends what is due once the broker is back."""
    from config.celery import app

    if broker_marked_down():
        logger.warning("broker marked down; task left for the sweep", extra={"task": task_name})
        return False
    try:
        app.send_task(
            task_name,
            args=args,
            countdown=countdown,
            retry=False,
            ignore_result=True,
            connection=_publish_connection(),
        )
    except Exception:
        _drop_publish_connection()
        _mark_broker_down()
        logger.exception("could not enqueue task; the sweep will recover it", extra={"task": task_name})
        return False
    return True


def enqueue_on_commit(task_name: str, *args, countdown: float | None = None) -> None:
    """Sends the task once the surrounding transaction commits (at once outside of one).

    A broker error is logged, not raised: the database already holds the state, and the beat
    sweeps pick up anything whose task never left (a queued attempt, a passed deadline).
    """
    transaction.on_commit(lambda: send_now(task_name, *args, countdown=countdown))
