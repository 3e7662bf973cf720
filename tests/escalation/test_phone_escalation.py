"""Phone escalation end to end: the API, a real Celery worker on the real broker, the live server
for webhooks, and the carrier simulator speaking Twilio's API over HTTP."""

from __future__ import annotations

import pytest

from incidents.models import Incident
from integrations.models import Integration
from orchestrator.models import CallAttempt
from simulator import Scenario
from tests import factories
from tests.helpers import wait_until
from tests.integrations.receivers import HTTPReceiver

pytestmark = pytest.mark.e2e


def post_alert(client, summary: str = "서버 A CPU 95%", **extra) -> int:
    response = client.post("/api/v1/alerts/generic", {"summary": summary, **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["incident_id"]


def incident_when(incident_id: int, predicate, what: str) -> Incident:
    return wait_until(
        lambda: (lambda incident: incident if predicate(incident) else None)(Incident.objects.get(pk=incident_id)),
        what=what,
    )


def kinds(incident: Incident) -> list[str]:
    return list(incident.events.values_list("kind", flat=True))


def test_primary_presses_1_and_the_incident_is_acknowledged(carrier, system_client):
    # given a policy whose primary presses 1
    primary = factories.contact("Kim", 0)
    secondary = factories.contact("Lee", 0)
    carrier.set_scenario(primary.phone, Scenario.PRESS_1)
    factories.policy(primary, secondary)

    # when an alert arrives
    incident_id = post_alert(system_client, tts_text="긴급 알림입니다. 서버 A CPU 95퍼센트입니다.")

    # then the primary's keypress acknowledges it, after exactly one call
    incident = incident_when(incident_id, lambda i: i.state == "acknowledged", "acknowledgement")
    carrier.wait_until_idle()
    assert [call.to for call in carrier.calls] == [primary.phone]
    assert incident.acknowledged_by.startswith("contact:Kim")
    attempt = CallAttempt.objects.get(incident=incident)
    assert (attempt.digits, attempt.answered_by, attempt.provider) == ("1", "human", "twilio")
    assert attempt.provider_call_id == carrier.calls[0].sid
    timeline = kinds(incident)
    for kind in ("created", "call_queued", "dialing", "ringing", "answered", "digit_pressed", "acknowledged"):
        assert kind in timeline, f"{kind} missing from {timeline}"
    assert timeline.index("digit_pressed") < timeline.index("acknowledged")
    spoken = " ".join(event for event in carrier.calls[0].events if event.startswith("say"))
    assert "서버 A CPU 95퍼센트" in spoken and "1번" in spoken


def test_primary_does_not_answer_and_the_secondary_presses_1(carrier, system_client):
    primary, secondary = factories.contact("Kim", 3), factories.contact("Lee", 1)  # 3: no answer, 1: presses 1
    factories.policy(primary, secondary)

    incident_id = post_alert(system_client)

    incident = incident_when(incident_id, lambda i: i.state == "acknowledged", "acknowledgement by the secondary")
    carrier.wait_until_idle()
    assert [call.to for call in carrier.calls] == [primary.phone, secondary.phone]
    assert incident.acknowledged_by.startswith("contact:Lee")
    statuses = list(CallAttempt.objects.filter(incident=incident).order_by("step").values_list("status", flat=True))
    assert statuses == ["no_answer", "completed"]
    assert "no_answer" in kinds(incident) and "escalated" in kinds(incident)


@pytest.fixture
def receiver():
    with HTTPReceiver() as server:
        yield server


def test_nobody_answers_max_attempts_calls_then_exhausted_and_the_fallback_goes_out(carrier, system_client, receiver):
    # given a policy nobody will answer, and a webhook integration subscribed to exhaustion
    factories.policy(factories.contact("Kim", 3), factories.contact("Lee", 4), max_attempts=3)  # no answer, busy
    Integration.objects.create(
        integration_id="ops",
        name="ops",
        type="webhook",
        provider="webhook",
        endpoint_url=receiver.url,
        events=["incident.exhausted"],
    )

    # when an alert arrives
    incident_id = post_alert(system_client)

    # then exactly max_attempts calls are placed, the incident is exhausted, and the fallback is delivered
    incident = incident_when(incident_id, lambda i: i.exhausted, "exhaustion")
    carrier.wait_until_idle()
    assert len(carrier.calls) == 3
    assert [call.scenario for call in carrier.calls] == [Scenario.NO_ANSWER, Scenario.BUSY, Scenario.NO_ANSWER]
    assert incident.state == "exhausted"
    assert incident.exhausted_reason == "nobody pressed 1 after 3 call(s): 2 not answered, 1 busy"
    assert CallAttempt.objects.filter(incident=incident).count() == 3
    assert kinds(incident)[-2:] == ["exhausted", "notified"]
    delivered = receiver.wait_for(1)
    assert [request.json()["event"] for request in delivered] == ["incident.exhausted"]
    assert delivered[0].json()["payload"]["incident_id"] == incident_id


def test_voicemail_never_acknowledges_and_the_escalation_moves_on(carrier, system_client):
    primary, secondary = factories.contact("Kim", 5), factories.contact("Lee", 1)  # 5: voicemail
    factories.policy(primary, secondary)

    incident_id = post_alert(system_client)

    incident = incident_when(incident_id, lambda i: i.state == "acknowledged", "acknowledgement after voicemail")
    carrier.wait_until_idle()
    first = CallAttempt.objects.get(incident=incident, step=1)
    assert first.answered_by == "machine"
    assert first.digits == ""
    assert incident.acknowledged_by.startswith("contact:Lee")
    assert "machine" in kinds(incident)


def test_pressing_2_passes_to_the_next_person_at_once(carrier, system_client):
    primary, secondary = factories.contact("Kim", 2), factories.contact("Lee", 1)
    factories.policy(primary, secondary)

    incident_id = post_alert(system_client)

    incident = incident_when(incident_id, lambda i: i.state == "acknowledged", "acknowledgement by the secondary")
    carrier.wait_until_idle()
    assert [call.to for call in carrier.calls] == [primary.phone, secondary.phone]
    assert CallAttempt.objects.get(incident=incident, step=1).digits == "2"


def test_acknowledged_through_the_api_no_further_call_is_placed(carrier, system_client):
    primary, secondary = factories.contact("Kim", 6), factories.contact("Lee", 1)  # 6: answers, stays silent
    factories.policy(primary, secondary, message_repeats=2)
    incident_id = post_alert(system_client)
    wait_until(lambda: carrier.calls, what="the first call")

    response = system_client.post(f"/api/v1/incidents/{incident_id}/acknowledge")

    assert response.status_code == 200
    assert response.json()["state"] == "acknowledged"
    carrier.wait_until_idle()
    assert [call.to for call in carrier.calls] == [primary.phone]
    assert Incident.objects.get(pk=incident_id).current_step == 1
