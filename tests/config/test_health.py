"""Liveness and readiness as a load balancer or an operator sees them."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app as celery_app
from config.heartbeats import BEAT_HEARTBEAT_KEY, WORKER_HEARTBEATS_KEY
from config.redis import redis_client
from config.tasks import beat_heartbeat
from tests.embedded_services import free_port
from tests.helpers import wait_until

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok(api_client):
    response = api_client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.fixture
def beating_worker(transactional_db):
    """A real worker that sends Celery's heartbeats (the shared `celery_worker` fixture turns them off)."""
    with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False, without_heartbeat=False):
        yield


def test_readyz_is_ready_when_database_broker_a_worker_and_beat_answer(api_client, beating_worker):
    # given a live worker, and beat's heartbeat task sent and run by it
    beat_heartbeat.apply_async()

    # when a load balancer asks, once the worker's heartbeat and beat's tick are recorded
    response = wait_until(lambda: (r := api_client.get("/readyz")).status_code == 200 and r, timeout=30)

    # then every dependency is ready
    assert response.json()["checks"] == {"database": "ok", "broker": "ok", "worker": "ok", "beat": "ok"}


def test_readyz_fails_naming_the_worker_and_beat_when_neither_beats(api_client):
    # given no worker heartbeat and no beat tick recorded (every worker and beat are down)
    redis_client().delete(WORKER_HEARTBEATS_KEY, BEAT_HEARTBEAT_KEY)

    response = api_client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"database": "ok", "broker": "ok", "worker": "stale", "beat": "stale"}
    assert body["failed"] == ["worker", "beat"]
    assert body["message"] == "worker unavailable; beat unavailable"
    assert body["worker_last_heartbeat_seconds_ago"] is None and body["beat_last_tick_seconds_ago"] is None


def test_readyz_fails_naming_beat_when_its_last_tick_is_older_than_three_intervals(api_client, beating_worker):
    # given a live worker, but beat's last tick 31 s ago (it ticks every 10 s)
    redis_client().set(BEAT_HEARTBEAT_KEY, str(time.time() - 31))

    response = wait_until(lambda: (r := api_client.get("/readyz")).json()["checks"].get("worker") == "ok" and r)

    assert response.status_code == 503
    assert response.json()["failed"] == ["beat"] and response.json()["beat_last_tick_seconds_ago"] >= 31


def test_readyz_names_the_broker_when_it_is_unreachable_and_nothing_more(api_client, settings, caplog):
    # given a broker address where nothing listens, with a password in it as real URLs have
    port = free_port()
    settings.CELERY_BROKER_URL = f"redis://:hunter2-broker-password@127.0.0.1:{port}/0"

    # when a load balancer (or anyone: the endpoint is public) asks whether we are ready
    response = api_client.get("/readyz")

    # then it hears 503 and which dependency failed, but no exception text, address or password
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["broker"]
    assert body["checks"] == {"database": "ok", "broker": "unavailable"}
    assert body["message"] == "broker unavailable"
    raw = response.content.decode()
    for leak in ("Error", "Errno", "refused", str(port), "127.0.0.1", "hunter2"):
        assert leak not in raw
    # and the operator finds the reason in the log
    [record] = [record for record in caplog.records if record.getMessage() == "readiness check failed: broker"]
    assert record.exc_info is not None
