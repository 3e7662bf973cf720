"""A worker keeps its database connection from one task to the next, as Django keeps one between
requests (CONN_MAX_AGE). Celery's Django fix-up closed every connection around every task, so each
dial paid for a new PostgreSQL backend: that was most of the slowdown of alert -> dial."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from config.celery import app as celery_app
from config.redis import redis_client
from tests.processes import start, stop, worker_command, worker_environment

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="counts PostgreSQL sessions (pg_stat_database)"
)


def sessions_opened() -> int:
    """Sessions PostgreSQL has opened on the test database so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


SWEEP = "orchestrator.sweep_escalations"


def run_sweeps(count: int) -> None:
    """Sends `count` escalation sweeps (each one reads the database) and waits until the worker has
    finished them all: the timers queue empty and no sweep left unacknowledged. Only sweeps are
    looked for among the unacknowledged messages: a countdown another test left behind is held
    unacknowledged by the worker until it is due, for minutes."""
    for _ in range(count):
        celery_app.send_task(SWEEP)
    broker = redis_client()
    deadline = time.monotonic() + 60
    while broker.llen("timers") or any(SWEEP in held for held in broker.hvals("unacked")):
        assert time.monotonic() < deadline, "the worker did not finish the sweeps"
        time.sleep(0.1)


@pytest.mark.parametrize("pool", ["threads", "prefork"])  # the Procfile's calls worker, and its other one
def test_a_worker_runs_many_tasks_on_one_database_connection(transactional_db, pool):
    # given a real worker process on the test database
    celery_app.control.purge()
    worker = start(worker_command(pool=pool, concurrency=1, queues="timers"), worker_environment())
    try:
        run_sweeps(1)  # the worker is up and has its connection
        time.sleep(1)
        before = sessions_opened()

        # when it runs twenty tasks that each use the database
        run_sweeps(20)
        time.sleep(1)

        # then it opened no new session for them (at most one, should its connection be recycled)
        assert sessions_opened() - before <= 1
    finally:
        stop(worker)
