"""A Redis restart does not kill the worker: real redis-server and celery worker processes.

The worker runs as the `calls` worker runs in production (`--pool threads`), busy with tasks that
are delivered and not yet acknowledged, while Redis is killed and started again on the same port
five times. Before config/broker.py, kombu crashed the worker at such a restart with
`Unrecoverable error: AttributeError("'NoneType' object has no attribute 'hostname'")`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kombu.exceptions import OperationalError

from config.celery import app as celery_app
from config.heartbeats import BEAT_HEARTBEAT_KEY, WORKER_HEARTBEATS_KEY
from tests.config.broker_load import DONE_KEY
from tests.helpers import wait_until
from tests.processes import PrivateRedis, start, worker_command, worker_environment

pytestmark = pytest.mark.e2e

RESTARTS = 5


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.kill()


def start_worker_process(broker: PrivateRedis, log_path: Path) -> subprocess.Popen:
    """As the `calls` worker runs in production: the threads pool, here with a test-only slow task."""
    command = worker_command(pool="threads", concurrency=8)
    command += ["--include", "tests.config.broker_load", "--hostname", f"restart-test-{os.getpid()}@%h"]
    return start(command, worker_environment(broker_url=broker.url), log_path)


class SteadyLoad:
    """Sends a short `tests.hold` task every 100 ms to the private broker, through its restarts: about
    five in flight on eight threads, so the worker waits in BRPOP while holding unacknowledged messages."""

    def __init__(self, broker: PrivateRedis) -> None:
        self.broker = broker
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopping.wait(0.1):
            try:
                with celery_app.connection_for_write(self.broker.url) as connection:
                    celery_app.send_task("tests.hold", args=[0.5], queue="default", connection=connection)
            except (OperationalError, OSError, redis.RedisError):
                pass  # Redis is down right now: the next send tries again

    def __enter__(self) -> SteadyLoad:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)


def worker_consumes_again(broker: PrivateRedis, worker: subprocess.Popen, since: float) -> bool:
    """True once the worker beat and finished tasks after `since`; stops waiting if it died."""
    if worker.poll() is not None:
        return True
    try:
        client = broker.client()
        newest = client.zrevrange(WORKER_HEARTBEATS_KEY, 0, 0, withscores=True)
        return bool(newest) and newest[0][1] > since and int(client.get(DONE_KEY) or 0) >= 3
    except redis.RedisError:
        return False


def test_the_worker_survives_redis_restarts_and_still_runs_tasks(private_redis, transactional_db, tmp_path):
    # given a threads-pool worker process on a private Redis, kept busy by a steady stream of tasks
    log_path = tmp_path / "worker.log"
    worker = start_worker_process(private_redis, log_path)
    try:
        with SteadyLoad(private_redis):
            wait_until(lambda: worker_consumes_again(private_redis, worker, 0), timeout=60, what="the worker to start")

            for restart in range(1, RESTARTS + 1):
                # when Redis dies with tasks delivered and unacknowledged, and comes back on the same port
                private_redis.kill()
                restarted_at = time.time()
                private_redis.start()

                # then the worker reconnects and goes on consuming, rather than exiting
                wait_until(
                    lambda since=restarted_at: worker_consumes_again(private_redis, worker, since),
                    timeout=90,
                    what=f"the worker to consume again after restart {restart}",
                )
                assert worker.poll() is None, f"worker died at restart {restart}:\n{log_path.read_text()[-3000:]}"

        # and a task sent after the last restart runs: beat's heartbeat task, which readiness reads
        private_redis.client().delete(BEAT_HEARTBEAT_KEY)
        with celery_app.connection_for_write(private_redis.url) as connection:
            celery_app.send_task("config.beat_heartbeat", queue="default", connection=connection)
        wait_until(lambda: private_redis.client().get(BEAT_HEARTBEAT_KEY), timeout=30, what="the heartbeat task")
        assert worker.poll() is None
        assert "Unrecoverable error" not in log_path.read_text()
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
