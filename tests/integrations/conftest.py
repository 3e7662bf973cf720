"""Fixtures for integrations: the local receivers and a quick way to make integrations."""

from __future__ import annotations

import pytest

from integrations.models import Integration
from tests.integrations.receivers import HTTPReceiver, SMTPServer

EXHAUSTED_PAYLOAD = {
    "incident_id": 42,
    "summary": "Disk full on db-1",
    "severity": "critical",
    "state": "triggered",
    "attempts": 5,
    "reason": "nobody pressed 1 after 5 calls",
    "url": "http://127.0.0.1:8000/api/v1/incidents/42",
}


@pytest.fixture
def receiver():
    with HTTPReceiver() as server:
        yield server


@pytest.fixture
def smtp_server(settings):
    with SMTPServer(refuse=("nobody@example.com",)) as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = server.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        yield server


@pytest.fixture
def fast_retries(settings):
    """Retries fall due at once, so a test can try again without waiting."""
    settings.INTEGRATION_RETRY_BASE_SECONDS = 0.0


@pytest.fixture
def make_integration(db):
    def _make(name: str = "ops-webhook", *, kind: str = "webhook", target: str, **fields) -> Integration:
        integration = Integration(name=name, kind=kind, target=target, **fields)
        integration.full_clean()
        integration.save()
        return integration

    return _make
