"""Carrier failover: when one carrier errors, refuses or times out, the same attempt goes out on the
other at once; a breaker skips a carrier that keeps failing; both down still ends the escalation."""

from __future__ import annotations

import time

import pytest

from config.redis import redis_client
from incidents.models import Incident
from orchestrator.models import CallAttempt
from orchestrator.voice import breaker
from simulator import Scenario
from tests import factories
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def carriers(both_carriers, settings, celery_worker):
    """Twilio first, Vonage as the failover, both on the simulator; breakers start closed."""
    settings.VOICE_PROVIDER = "twilio"
    settings.VOICE_FAILOVER_PROVIDER = "vonage"
    settings.PROVIDER_HTTP_TIMEOUT_SECONDS = 1.0
    settings.BREAKER_FAILURE_THRESHOLD = 2
    settings.BREAKER_COOLDOWN_SECONDS = 1.0
    client = redis_client()
    client.delete(*breaker._keys("twilio"), *breaker._keys("vonage"))
    yield both_carriers
    client.delete(*breaker._keys("twilio"), *breaker._keys("vonage"))


def alert(client) -> Incident:
    response = client.post("/api/v1/alerts/generic", {"summary": "결제 API 5xx 급증"}, format="json")
    assert response.status_code == 201
    return Incident.objects.get(pk=response.json()["incident_id"])


def acknowledged(incident: Incident) -> Incident:
    return wait_until(
        lambda: (fresh := Incident.objects.get(pk=incident.pk)).state == "acknowledged" and fresh, what="ack"
    )


def carriers_asked(simulator) -> list[tuple[str, int]]:
    return [(call.carrier, call.api_status) for call in simulator.calls]


@pytest.mark.parametrize(("outage", "why"), [(Scenario.API_ERROR, "500"), (Scenario.API_TIMEOUT, "did not answer")])
def test_when_twilio_fails_vonage_places_the_same_attempt(carriers, system_client, outage, why):
    # given Twilio failing and a primary who presses 1
    carriers.set_outage("twilio", outage)
    factories.policy(factories.contact("Kim", 1))

    # when an alert arrives
    incident = acknowledged(alert(system_client))

    # then the one attempt was placed on Vonage, and the timeline says why not on Twilio
    carriers.wait_until_idle()
    placed = [call for call in carriers.calls if call.sid]
    assert [call.carrier for call in placed] == ["vonage"]
    assert carriers_asked(carriers)[0][0] == "twilio"
    attempt = CallAttempt.objects.get(incident=incident)
    assert attempt.provider == "vonage" and attempt.digits == "1"
    assert why in attempt.error and attempt.error.startswith("twilio")
    messages = list(incident.events.values_list("kind", "message"))
    assert any(kind == "dial_failed" and "trying the next carrier" in text for kind, text in messages)
    assert any(kind == "dialing" and text.startswith("vonage accepted") and "twilio" in text for kind, text in messages)


def test_both_carriers_down_the_escalation_ends_exhausted_with_the_reason(carriers, system_client):
    carriers.set_outage("twilio", Scenario.API_ERROR)
    carriers.set_outage("vonage", Scenario.API_ERROR)
    factories.policy(factories.contact("Kim", 1), factories.contact("Lee", 1), max_attempts=2)

    incident = alert(system_client)

    incident = wait_until(
        lambda: (fresh := Incident.objects.get(pk=incident.pk)).exhausted and fresh, what="exhaustion"
    )
    assert incident.exhausted_reason.startswith("no carrier could place any of the 2 call(s)")
    assert "twilio" in incident.exhausted_reason and "vonage" in incident.exhausted_reason
    assert list(CallAttempt.objects.filter(incident=incident).values_list("status", flat=True)) == ["failed", "failed"]


def test_the_breaker_skips_a_failing_carrier_and_tries_it_again_after_the_cooldown(carriers, system_client, settings):
    settings.BREAKER_COOLDOWN_SECONDS = 600  # open until the test says the cooldown has passed
    carriers.set_outage("twilio", Scenario.API_ERROR)
    factories.policy(factories.contact("Kim", 1))

    for _ in range(2):  # two failures open Twilio's breaker
        acknowledged(alert(system_client))
    carriers.wait_until_idle()
    assert breaker.is_open("twilio")
    asked_before = len(carriers.calls)

    acknowledged(alert(system_client))  # while open, Twilio is not even asked
    carriers.wait_until_idle()
    assert [call.carrier for call in carriers.calls[asked_before:]] == ["vonage"]

    carriers.set_outage("twilio", None)
    # the cooldown passes (its end moved to the past in Redis rather than waited for, so the test
    # never races the clock): Twilio is tried again, and its success closes the breaker
    redis_client().set(breaker._keys("twilio")[1], str(time.time() - 1))
    asked_before = len(carriers.calls)
    acknowledged(alert(system_client))
    carriers.wait_until_idle()
    assert [call.carrier for call in carriers.calls[asked_before:]] == ["twilio"]
    assert not breaker.is_open("twilio")


def test_a_contact_who_prefers_vonage_is_called_on_vonage_first(carriers, system_client):
    factories.policy(factories.contact("Kim", 1, preferred_provider="vonage"))

    incident = acknowledged(alert(system_client))

    carriers.wait_until_idle()
    assert carriers_asked(carriers) == [("vonage", 201)]
    assert CallAttempt.objects.get(incident=incident).provider == "vonage"


def test_with_every_breaker_open_the_carriers_are_still_tried(carriers, system_client, settings):
    # given a single carrier whose breaker is open: skipping it would leave nobody to ring
    settings.VOICE_FAILOVER_PROVIDER = ""
    settings.BREAKER_COOLDOWN_SECONDS = 60
    for _ in range(2):
        breaker.record_failure("twilio")
    assert breaker.is_open("twilio")
    factories.policy(factories.contact("Kim", 1))

    acknowledged(alert(system_client))

    carriers.wait_until_idle()
    assert carriers_asked(carriers) == [("twilio", 201)]
    assert not breaker.is_open("twilio")  # and its success closed the breaker
