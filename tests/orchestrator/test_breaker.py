"""The carrier circuit breaker, its state in the real Redis (shared by every worker)."""

from __future__ import annotations

import time

import pytest

from config.redis import redis_client
from orchestrator.voice import breaker


@pytest.fixture(autouse=True)
def quick_breaker(settings):
    settings.BREAKER_FAILURE_THRESHOLD = 3
    settings.BREAKER_WINDOW_SECONDS = 60
    settings.BREAKER_COOLDOWN_SECONDS = 0.5
    client = redis_client()
    client.delete(*breaker._keys("twilio"), *breaker._keys("vonage"))
    yield
    client.delete(*breaker._keys("twilio"), *breaker._keys("vonage"))


def test_the_breaker_opens_after_repeated_failures_and_closes_after_the_cooldown():
    assert breaker.record_failure("twilio") is False
    assert breaker.record_failure("twilio") is False
    assert not breaker.is_open("twilio")

    assert breaker.record_failure("twilio") is True  # the third failure opens it

    assert breaker.is_open("twilio")
    assert not breaker.is_open("vonage")  # one carrier's trouble is not the other's
    time.sleep(0.6)
    assert not breaker.is_open("twilio")  # after the cooldown it is tried again


def test_a_success_clears_the_failure_count():
    breaker.record_failure("twilio")
    breaker.record_failure("twilio")
    breaker.record_success("twilio")

    assert breaker.record_failure("twilio") is False
    assert not breaker.is_open("twilio")


def test_an_unreachable_redis_never_blocks_a_call(settings):
    from tests.embedded_services import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    assert breaker.record_failure("twilio") is False
    assert breaker.is_open("twilio") is False
