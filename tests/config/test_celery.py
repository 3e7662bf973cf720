"""A real task travels through the real Redis broker and a real worker runs it."""

from __future__ import annotations

import time

from config.celery import app as celery_app
from config.redis import redis_client
from config.tasks import BEAT_HEARTBEAT_KEY, beat_heartbeat


def test_a_task_sent_through_the_broker_is_run_by_the_worker(celery_worker):
    # given no heartbeat recorded yet
    redis = redis_client()
    redis.delete(BEAT_HEARTBEAT_KEY)
    sent_at = time.time()

    # when the heartbeat task is sent to the broker (not run in this thread)
    beat_heartbeat.apply_async()

    # then the worker runs it and its effect appears in Redis
    deadline = time.monotonic() + 15
    while redis.get(BEAT_HEARTBEAT_KEY) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert float(redis.get(BEAT_HEARTBEAT_KEY)) >= sent_at


def test_celery_is_configured_for_at_least_once_delivery():
    conf = celery_app.conf
    assert conf.task_always_eager is False
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"]
    assert conf.broker_transport_options["visibility_timeout"] > 300 + conf.task_time_limit
    assert {queue.name for queue in conf.task_queues} == {"calls", "timers", "default", "recordings", "integrations"}


def test_the_sweep_has_a_queue_of_its_own(db):
    # the sweep never waits behind a backlog of dials
    assert celery_app.amqp.router.route({}, "orchestrator.sweep_escalations")["queue"].name == "timers"
    assert celery_app.amqp.router.route({}, "orchestrator.dial_attempt")["queue"].name == "calls"


def test_the_database_scheduler_sends_the_sweep_with_an_expiry(transactional_db):
    # given beat's DatabaseScheduler loading the schedule from code into the database, as at start
    from django_celery_beat.schedulers import DatabaseScheduler

    scheduler = DatabaseScheduler(app=celery_app)

    # then the sweep it sends carries an expiry: after an outage, stale sweeps are dropped, not replayed
    entry = scheduler.schedule["sweep-escalations"]
    assert entry.options.get("expires")
    assert 0 < entry.options["expires"] <= 10
