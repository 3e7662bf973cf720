"""Drills end to end on the simulator: a marked test incident, a report, and no fallback."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from incidents.models import Incident
from integrations.models import Integration, OutboundMessage
from tests import factories
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e


def test_a_drill_through_the_api_reports_who_answered_with_which_digit_on_which_carrier(carrier, system_client):
    policy = factories.policy(factories.contact("Kim", 3), factories.contact("Lee", 1), name="db-oncall")

    started = system_client.post(f"/api/v1/escalation-policies/{policy.pk}/drill")

    assert started.status_code == 202
    assert started.json()["is_drill"] is True and started.json()["outcome"] == "in_progress"
    report_url = started["Location"]
    wait_until(lambda: system_client.get(report_url).json()["outcome"] != "in_progress", what="the outcome")
    carrier.wait_until_idle()
    report = system_client.get(report_url).json()
    assert report["outcome"] == "acknowledged"
    assert (report["acknowledged_by"], report["digit"], report["carrier"]) == ("Lee", "1", "twilio")
    assert [attempt["status"] for attempt in report["attempts"]] == ["no_answer", "completed"]
    assert 0 < report["timings_ms"]["to_first_dial"] <= report["timings_ms"]["to_acknowledge"]
    incident = Incident.objects.get(pk=report["incident_id"])
    assert incident.is_drill and incident.summary == "[DRILL] db-oncall"
    # and the drill closed itself once Lee pressed 1: resolved, with the timeline saying why
    assert incident.state == "resolved"
    finished = incident.events.get(kind="resolved")
    assert finished.message.startswith("drill finished: acknowledged by Lee")
    assert finished.actor == "system" and finished.data == {"drill_outcome": "acknowledged"}
    listed = system_client.get("/api/v1/incidents").json()["results"][0]
    assert listed["is_drill"] is True


def test_an_exhausted_drill_sends_no_fallback_notification(carrier, system_client):
    policy = factories.policy(factories.contact("Kim", 3), max_attempts=2, name="nobody-home")
    Integration.objects.create(
        integration_id="ops",
        name="ops",
        type="webhook",
        provider="webhook",
        endpoint_url="http://127.0.0.1:9/",
        events=[],
    )

    drill = system_client.post(f"/api/v1/escalation-policies/{policy.pk}/drill").json()

    wait_until(lambda: Incident.objects.get(pk=drill["incident_id"]).state == "resolved", what="the drill's end")
    carrier.wait_until_idle()
    assert not OutboundMessage.objects.exists()
    # the drill closed itself when nobody answered, and its report still says "exhausted"
    incident = Incident.objects.get(pk=drill["incident_id"])
    kinds = list(incident.events.values_list("kind", flat=True))
    assert kinds[-2:] == ["exhausted", "resolved"]
    assert incident.events.get(kind="resolved").message.startswith("drill finished: nobody pressed 1")
    report = system_client.get(f"/api/v1/drills/{incident.pk}").json()
    assert report["outcome"] == "exhausted" and report["exhausted_reason"]


def test_the_drill_command_prints_the_report(carrier):
    factories.policy(factories.contact("Kim", 1), name="payments")
    out = StringIO()

    call_command("drill", "--policy", "payments", "--timeout", "30", stdout=out, stderr=StringIO())

    report = json.loads(out.getvalue())
    assert report["outcome"] == "acknowledged" and report["acknowledged_by"] == "Kim"
    assert Incident.objects.get(pk=report["incident_id"]).state == "resolved"


def test_a_drill_for_an_unknown_policy_is_a_404(system_client, db):
    response = system_client.post("/api/v1/escalation-policies/999/drill")

    assert response.status_code == 404
    assert "999" in response.json()["error"]["message"]


def test_a_viewer_cannot_start_a_drill(api_client, make_api_key, db):
    policy = factories.policy(factories.contact("Kim"))
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('incidents:read')}")

    assert api_client.post(f"/api/v1/escalation-policies/{policy.pk}/drill").status_code == 403
