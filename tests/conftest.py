"""Shared fixtures: a real Celery worker on the real broker, API clients with real keys."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker
from rest_framework.test import APIClient

from accounts.models import Scope
from accounts.services import create_api_key
from config.celery import app as celery_app


@pytest.fixture(scope="session")
def celery_session_worker(django_db_setup):
    """A real worker thread consuming every queue from the real broker (no eager mode).

    Stale messages from an earlier run are purged first so they cannot act on this run's data.
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


@pytest.fixture
def celery_worker(celery_session_worker, transactional_db):
    """Use in tests that enqueue work: the data is committed, so the worker thread can see it."""
    return celery_session_worker


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
