"""Liveness and readiness as a load balancer or an operator sees them."""

from __future__ import annotations

import pytest

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
