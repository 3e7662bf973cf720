"""Alert ingestion as a monitoring system sees it: status codes, bodies, what is stored."""

from __future__ import annotations

import pytest

from incidents.models import Alert, Incident, IncidentEvent
from orchestrator.models import CallAttempt
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def default_policy():
    return factories.policy(factories.contact("Kim", 1), factories.contact("Lee", 1))


def test_a_new_generic_alert_opens_an_incident_and_queues_the_first_call(system_client, default_policy):
    response = system_client.post(
        "/api/v1/alerts/generic",
        {"summary": "서버 A CPU 95%", "tts_text": "긴급 알림입니다. 서버 A CPU 95퍼센트.", "dedup_key": "cpu-a"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["state"] == "triggered" and body["deduplicated"] is False
    incident = Incident.objects.get(pk=body["incident_id"])
    assert incident.policy == default_policy
    attempt = CallAttempt.objects.get(incident=incident)
    assert (attempt.step, attempt.contact.name, attempt.status) == (1, "Kim", "queued")
    assert list(incident.events.values_list("kind", flat=True)) == ["created", "call_queued"]


def test_a_duplicate_joins_the_open_incident_and_places_no_call(system_client, default_policy):
    first = system_client.post("/api/v1/alerts/generic", {"summary": "disk full", "dedup_key": "disk"}, format="json")
    second = system_client.post("/api/v1/alerts/generic", {"summary": "disk full", "dedup_key": "disk"}, format="json")

    assert second.status_code == 200
    assert second.json()["deduplicated"] is True
    assert second.json()["incident_id"] == first.json()["incident_id"]
    assert Incident.objects.count() == 1
    assert CallAttempt.objects.count() == 1
    assert Alert.objects.count() == 2


def test_a_resolved_generic_alert_resolves_the_incident(system_client, default_policy):
    opened = system_client.post("/api/v1/alerts/generic", {"summary": "db down", "dedup_key": "db"}, format="json")

    response = system_client.post("/api/v1/alerts/generic", {"dedup_key": "db", "status": "resolved"}, format="json")

    assert response.status_code == 200
    assert response.json()["resolved"] is True
    assert Incident.objects.get(pk=opened.json()["incident_id"]).state == "resolved"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "summary"),
        ({"summary": ""}, "summary"),
        ({"summary": "x", "severity": "apocalyptic"}, "severity"),
        ({"status": "resolved"}, "dedup_key"),
        ({"summary": "x" * 501}, "summary"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(system_client, default_policy, body, field):
    response = system_client.post("/api/v1/alerts/generic", body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert field in error["fields"]
    assert field in error["message"]
    assert not Incident.objects.exists() and not Alert.objects.exists()


def test_malformed_json_is_a_400_that_says_so(system_client, default_policy):
    response = system_client.post("/api/v1/alerts/generic", data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert "Malformed JSON" in response.json()["error"]["message"]


def test_a_body_over_the_limit_is_a_413(system_client, default_policy, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = system_client.post("/api/v1/alerts/generic", {"summary": "x" * 2000}, format="json")

    assert response.status_code == 413
    assert "1000 bytes" in response.json()["error"]["message"]
    assert not Incident.objects.exists()


def test_without_any_policy_the_alert_is_refused_with_a_clear_message(system_client):
    response = system_client.post("/api/v1/alerts/generic", {"summary": "nobody to call"}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "no_escalation_policy"
    assert "No escalation policy" in response.json()["error"]["message"]
    assert not Incident.objects.exists()


def test_an_unknown_policy_pages_through_the_default_and_says_so(system_client, default_policy):
    # given: an alert naming a policy that does not exist
    body = {"summary": "payments down", "policy": "no-such-policy"}

    # when: it arrives
    response = system_client.post("/api/v1/alerts/generic", body, format="json")

    # then: the page is not dropped: the default policy calls, and the caller and the timeline are told
    assert response.status_code == 201
    warning = f"unknown escalation policy 'no-such-policy'; used the default policy '{default_policy.name}'"
    assert response.json()["warnings"] == [warning]
    incident = Incident.objects.get(pk=response.json()["incident_id"])
    assert incident.policy == default_policy
    assert CallAttempt.objects.filter(incident=incident).count() == 1
    assert incident.events.filter(message=f"Warning: {warning}").exists()


def test_an_alertmanager_label_naming_an_unknown_policy_still_pages(system_client, default_policy):
    body = {
        "version": "4",
        "groupKey": '{}:{alertname="DiskFull"}',
        "status": "firing",
        "commonLabels": {"alertname": "DiskFull", "escalation_policy": "db-team"},
        "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull"}, "annotations": {"summary": "disk"}}],
    }

    response = system_client.post("/api/v1/alerts/alertmanager", body, format="json")

    assert response.status_code == 201
    assert "unknown escalation policy 'db-team'" in response.json()["warnings"][0]
    assert Incident.objects.get().policy == default_policy


def test_a_duplicate_naming_an_unknown_policy_is_joined_and_the_warning_recorded(system_client, default_policy):
    body = {"summary": "disk full", "dedup_key": "disk", "policy": "nope"}
    system_client.post("/api/v1/alerts/generic", body, format="json")

    response = system_client.post("/api/v1/alerts/generic", body, format="json")

    assert response.status_code == 200 and response.json()["deduplicated"] is True
    assert response.json()["warnings"] == [
        f"unknown escalation policy 'nope'; used the default policy '{default_policy.name}'"
    ]
    assert Incident.objects.get().events.filter(message__startswith="Warning: unknown").count() == 2


def test_with_policies_but_no_default_an_unknown_policy_uses_the_oldest(system_client):
    # given: two policies, neither marked default
    oldest = factories.policy(factories.contact("Kim"), name="web", is_default=False)
    factories.policy(factories.contact("Lee"), name="db", is_default=False)

    response = system_client.post("/api/v1/alerts/generic", {"summary": "x", "policy": "mobile"}, format="json")

    assert response.status_code == 201
    assert Incident.objects.get().policy == oldest
    assert response.json()["warnings"] == [
        "unknown escalation policy 'mobile'; no default policy is marked, so used 'web', the oldest"
    ]


def test_a_known_policy_gives_no_warnings(system_client, default_policy):
    other = factories.policy(factories.contact("Park"), name="db", is_default=False)

    response = system_client.post("/api/v1/alerts/generic", {"summary": "x", "policy": "db"}, format="json")

    assert response.status_code == 201
    assert response.json()["warnings"] == []
    assert Incident.objects.get().policy == other


def test_the_seed_contacts_from_the_environment_make_a_default_policy(system_client, settings):
    settings.PRIMARY_CONTACT, settings.SECONDARY_CONTACT = "+821011112222", "+821033334444"

    response = system_client.post(
        "/webhook/start", {"incident_summary": "서버 A 다운", "tts_text": "서버 A 다운"}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["to"] == "+821011112222"
    assert body["role"] == "primary"
    assert body["call_id"].startswith("attempt-")
    incident = Incident.objects.get(pk=body["incident_id"])
    assert incident.source == "seed"
    assert incident.policy.max_attempts == settings.MAX_ATTEMPTS


def test_an_alert_key_without_the_scope_is_refused(api_client, make_api_key, default_policy):
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('incidents:read')}")

    response = api_client.post("/api/v1/alerts/generic", {"summary": "x"}, format="json")

    assert response.status_code == 403
    assert "alerts:write" in response.json()["error"]["message"]
    assert not IncidentEvent.objects.exists()


def test_escalate_with_the_step_seen_is_refused_the_second_time(system_client, default_policy):
    # given an incident on its first call
    incident_id = system_client.post("/api/v1/alerts/generic", {"summary": "API 5xx"}, format="json").json()[
        "incident_id"
    ]

    # when two callers escalate from the call they both saw
    first = system_client.post(f"/api/v1/incidents/{incident_id}/escalate", {"from_step": 1}, format="json")
    second = system_client.post(f"/api/v1/incidents/{incident_id}/escalate", {"from_step": 1}, format="json")

    # then the first escalates, the second is a 409 that says so and skips nobody
    assert first.status_code == 200 and first.json()["current_step"] == 2
    assert second.status_code == 409 and second.json()["error"]["code"] == "already_escalated"
    assert system_client.get(f"/api/v1/incidents/{incident_id}").json()["current_step"] == 2
