"""A test run never touches the Redis database a running product uses."""

from __future__ import annotations

import os

from django.conf import settings

from config.celery import app as celery_app
from tests import embedded_services


def test_a_configured_redis_is_used_on_a_database_number_of_the_tests_own(monkeypatch):
    monkeypatch.delenv("TEST_REDIS_URL", raising=False)
    monkeypatch.delenv("TEST_REDIS_DB", raising=False)

    assert embedded_services._test_redis_url("redis://:secret@127.0.0.1:6379/0") == "redis://:secret@127.0.0.1:6379/15"
    assert embedded_services._test_redis_url("redis://127.0.0.1:6379") == "redis://127.0.0.1:6379/15"


def test_the_broker_the_results_and_the_cache_all_follow_the_tests_redis():
    assert celery_app.conf.broker_url == settings.REDIS_URL
    assert settings.CACHES["default"]["LOCATION"] == settings.REDIS_URL
    configured = embedded_services._configured
    if configured and not os.environ.get("TEST_REDIS_URL"):  # a local Redis: never the product's database
        assert configured != settings.REDIS_URL
