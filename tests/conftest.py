"""Shared fixtures: a real Celery worker on the real broker, API clients with real keys."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker
from rest_framework.test import APIClient

from accounts.models import Scope
from accounts.services import create_api_key
from config.celery import app as celery_app


@pytest.fixture
def celery_worker(transactional_db):
    """A real worker thread consuming every queue from the real broker (no eager mode).

    One per test: the queues are purged first, so messages left by an earlier test (a countdown
    restored at shutdown) cannot act on this test's rows. The data is committed
    (transactional_db), so the worker's own connections see it.
    """
    assert not celery_app.conf.task_always_eager
    celery_app.control.purge()
    with start_worker(
        celery_app,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        yield worker


@pytest.fixture(autouse=True)
def integrations_may_reach_loopback(settings):
    """Every local receiver in the tests listens on 127.0.0.1, which the SSRF guard refuses by
    default; the tests of the guard turn this off again."""
    settings.INTEGRATIONS_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Rate-limit counters live in Redis and outlive a test (a whole run signs in from 127.0.0.1 far
    more often than the per-address limit allows): each test starts with none."""
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)
    stale = list(client.scan_iter(match=cache.make_key("throttle:*")))
    if stale:
        client.delete(*stale)
    from config.redis import redis_client

    buckets = list(redis_client().scan_iter(match="oncall:alert-rate:*"))
    if buckets:
        redis_client().delete(*buckets)
    from config.ratelimit import forget_leases

    forget_leases()


@pytest.fixture(autouse=True)
def no_cached_keys_or_policies():
    """API keys and policy choices are cached per process for a few seconds; a test's rows are rolled
    back without the signals that clear those caches, so each test starts with none cached."""
    from accounts.selectors import API_KEYS
    from incidents.services import POLICY_CHOICES

    API_KEYS.clear()
    POLICY_CHOICES.clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_api_key(db):
    def _make(*scopes: str, name: str = "monitoring", **kwargs) -> str:
        _, raw_key = create_api_key(name=name, scopes=list(scopes), **kwargs)
        return raw_key

    return _make


@pytest.fixture
def system_client(make_api_key) -> APIClient:
    """A client authenticated as a monitoring system with every scope."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key(*Scope.values)}")
    return client


SIMULATED_ACCOUNT_SID = "AC" + "1" * 32
SIMULATED_AUTH_TOKEN = "test-auth-token"


@pytest.fixture
def simulator(live_server, settings):
    """The carrier simulator over real HTTP: our Twilio SDK calls go to it, and it plays each call
    against our webhooks on the live server, signed as Twilio signs them."""
    from simulator import CarrierSimulator

    simulator = CarrierSimulator(
        account_sid=SIMULATED_ACCOUNT_SID,
        auth_token=SIMULATED_AUTH_TOKEN,
        ring_seconds=0.2,
        step_seconds=0.02,
        api_timeout_seconds=3.0,
    )
    base_url = simulator.start()
    settings.VOICE_PROVIDER = "twilio"
    settings.TWILIO_ACCOUNT_SID = SIMULATED_ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = SIMULATED_AUTH_TOKEN
    settings.TWILIO_FROM_NUMBER = "+821000000000"
    settings.TWILIO_API_BASE_URL = base_url
    settings.PUBLIC_BASE_URL = live_server.url
    yield simulator
    simulator.wait_until_idle(timeout=15)
    simulator.stop()


@pytest.fixture
def carrier(simulator, celery_worker):
    """The whole product: the simulator and a real worker."""
    return simulator
