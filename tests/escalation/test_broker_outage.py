"""The broker (Redis) down while an alert arrives: the page is stored and answered at once, and
the call goes out when the broker is back. Real broker, real worker, the simulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from config.celery import app as celery_app
from config.celery_utils import send_now
from incidents.models import Incident
from orchestrator import timers
from orchestrator.models import AttemptStatus, CallAttempt
from tests import factories
from tests.embedded_services import free_port
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def broker_down(settings):
    settings.BROKER_DOWN_BACKOFF_SECONDS = 0
    real = celery_app.conf.broker_url
    celery_app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    yield
    celery_app.conf.broker_url = real


def test_an_alert_while_the_broker_is_down_is_stored_and_called_once_it_is_back(carrier, system_client, broker_down):
    # given the broker does not answer, and a primary who presses 1
    factories.policy(factories.contact("Kim", 1))
    assert send_now("config.beat_heartbeat") is False

    # when an alert arrives
    response = system_client.post("/api/v1/alerts/generic", {"summary": "Redis 장애"}, format="json")

    # then it is accepted and stored with its first call waiting, though nothing could be queued
    assert response.status_code == 201
    incident = Incident.objects.get(pk=response.json()["incident_id"])
    attempt = CallAttempt.objects.get(incident=incident)
    assert attempt.status == AttemptStatus.QUEUED and carrier.calls == []

    # when the broker is back and the sweep finds the call still waiting at its deadline
    celery_app.conf.broker_url = django_settings.CELERY_BROKER_URL
    past = timezone.now() - timedelta(seconds=django_settings.DIAL_RESEND_SECONDS + 1)
    CallAttempt.objects.filter(pk=attempt.pk).update(dial_sent_at=past)
    Incident.objects.filter(pk=incident.pk).update(next_action_at=past)
    timers.sweep_due()

    # then the same person is called and acknowledges
    wait_until(lambda: Incident.objects.get(pk=incident.pk).state == "acknowledged", what="acknowledgement")
    assert [call.to for call in carrier.calls] == [attempt.to_number]
