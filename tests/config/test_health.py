"""Liveness and readiness as a load balancer or an operator sees them."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tests.embedded_services import free_port

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok(api_client):
    response = api_client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_when_database_and_broker_answer(api_client):
    response = api_client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_names_the_broker_when_it_is_unreachable(api_client):
    # given a broker address where nothing listens
    with override_settings(CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0"):
        # when a load balancer asks whether we are ready
        response = api_client.get("/readyz")

    # then it hears 503 and which dependency failed
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["broker"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error: ConnectionError")
