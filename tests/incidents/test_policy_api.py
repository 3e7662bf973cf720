"""Escalation policies through the API: contacts in call order, each once; viewers read, supervisors
and `policies:write` keys change them; every change lands in the audit log."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditAction, AuditEvent, Role
from incidents.models import EscalationPolicy
from incidents.services import open_incident
from orchestrator.models import CallAttempt
from tests import factories
from tests.accounts.helpers import person

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    return [factories.contact(name) for name in ("Kim", "Lee", "Park")]


def ids(*contacts) -> list[int]:
    return [contact.pk for contact in contacts]


def call_order(body: dict) -> list[tuple[int, str]]:
    return [(member["position"], member["name"]) for member in body["contacts"]]


def test_a_policy_is_created_with_its_contacts_in_the_order_given(system_client, people):
    kim, _, park = people

    response = system_client.post(
        "/api/v1/escalation-policies",
        {"name": "db on-call", "contacts": ids(park, kim), "max_attempts": 4, "ring_timeout_seconds": 20},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert call_order(body) == [(1, "Park"), (2, "Kim")]
    assert (body["max_attempts"], body["ring_timeout_seconds"], body["is_default"]) == (4, 20, False)
    assert system_client.get(f"/api/v1/escalation-policies/{body['id']}").json() == body
    assert AuditEvent.objects.filter(action=AuditAction.POLICY_CHANGED, target="policy:db on-call").exists()


def test_the_order_of_the_list_is_the_order_the_phones_ring(system_client, people):
    # given: a default policy created through the API with Lee first
    kim, lee, _ = people
    created = system_client.post(
        "/api/v1/escalation-policies",
        {"name": "ring order", "contacts": ids(lee, kim), "is_default": True, "max_attempts": 2},
        format="json",
    )
    assert created.status_code == 201, created.content

    # when: an alert opens an incident with it
    incident = open_incident(summary="disk full").incident

    # then: the first call goes to Lee
    assert CallAttempt.objects.get(incident=incident, step=1).contact == lee


def test_patch_reorders_the_contacts_and_changes_settings(system_client, people):
    kim, lee, park = people
    policy = factories.policy(kim, lee, name="web")

    response = system_client.patch(
        f"/api/v1/escalation-policies/{policy.pk}",
        {"contacts": ids(park, lee, kim), "pause_seconds": 10, "message_repeats": 2},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert call_order(body) == [(1, "Park"), (2, "Lee"), (3, "Kim")]
    assert (body["pause_seconds"], body["message_repeats"], body["name"]) == (10, 2, "web")
    audit = AuditEvent.objects.filter(action=AuditAction.POLICY_CHANGED, target="policy:web").latest("at")
    assert audit.data == {"fields": ["contacts", "message_repeats", "pause_seconds"]}


def test_patch_without_contacts_keeps_the_call_order(system_client, people):
    kim, lee, _ = people
    policy = factories.policy(kim, lee, name="keep")

    response = system_client.patch(f"/api/v1/escalation-policies/{policy.pk}", {"max_attempts": 7}, format="json")

    assert response.status_code == 200
    assert call_order(response.json()) == [(1, "Kim"), (2, "Lee")]


def test_making_a_policy_default_unmarks_the_old_default(system_client, people):
    kim, lee, _ = people
    old = factories.policy(kim, name="old", is_default=True)
    new = factories.policy(lee, name="new", is_default=False)

    response = system_client.patch(f"/api/v1/escalation-policies/{new.pk}", {"is_default": True}, format="json")

    assert response.status_code == 200, response.content
    assert list(EscalationPolicy.objects.filter(is_default=True)) == [new]
    old.refresh_from_db()
    assert not old.is_default


def test_a_contact_listed_twice_is_a_400_and_changes_nothing(system_client, people):
    kim, lee, _ = people
    policy = factories.policy(kim, lee, name="twice")

    created = system_client.post(
        "/api/v1/escalation-policies", {"name": "dup", "contacts": ids(kim, lee, kim)}, format="json"
    )
    patched = system_client.patch(
        f"/api/v1/escalation-policies/{policy.pk}", {"contacts": ids(lee, lee)}, format="json"
    )

    for response in (created, patched):
        assert response.status_code == 400
        assert "listed more than once" in str(response.json()["error"]["fields"]["contacts"])
    assert not EscalationPolicy.objects.filter(name="dup").exists()
    assert call_order(system_client.get(f"/api/v1/escalation-policies/{policy.pk}").json()) == [
        (1, "Kim"),
        (2, "Lee"),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "no one", "contacts": []}, "contacts"),
        ({"name": "ghost", "contacts": [999999]}, "contacts"),
        ({"name": "short ring", "contacts": "KIM", "ring_timeout_seconds": 1}, "ring_timeout_seconds"),
        ({"contacts": "KIM"}, "name"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(system_client, people, body, field):
    body = {**body, "contacts": ids(people[0])} if body.get("contacts") == "KIM" else body

    response = system_client.post("/api/v1/escalation-policies", body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not EscalationPolicy.objects.exists()


def test_a_taken_name_is_a_400(system_client, people):
    factories.policy(people[0], name="taken")

    response = system_client.post(
        "/api/v1/escalation-policies", {"name": "taken", "contacts": ids(people[1])}, format="json"
    )

    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_an_unknown_policy_is_a_json_404(system_client):
    response = system_client.get("/api/v1/escalation-policies/424242")

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Escalation policy 424242 does not exist."


def test_the_drill_route_still_lives_under_the_policy(system_client, people):
    policy = factories.policy(people[0], name="drill me")

    response = system_client.post(f"/api/v1/escalation-policies/{policy.pk}/drill")

    assert response.status_code == 202, response.content


def test_a_read_only_key_reads_but_cannot_change(api_client, make_api_key, people):
    policy = factories.policy(people[0], name="read only")
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('incidents:read')}")

    assert api_client.get("/api/v1/escalation-policies").status_code == 200
    response = api_client.patch(f"/api/v1/escalation-policies/{policy.pk}", {"max_attempts": 9}, format="json")
    assert response.status_code == 403
    assert "policies:write" in response.json()["error"]["message"]


ROLES = [Role.VIEWER, Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.SUPER_ADMIN]


@pytest.mark.parametrize("role", ROLES)
def test_the_role_matrix_for_policies(role, settings, people):
    # given: a person of each role (README: read = VIEWER and up, change = SUPERVISOR and up)
    settings.MFA_REQUIRED_ROLES = []
    policy = factories.policy(people[0], name="matrix")
    client = APIClient()
    client.force_authenticate(person(f"policy-{role.lower()}", role))
    may_write = Role.rank(role) >= Role.rank(Role.SUPERVISOR)

    # when: they read, create and change policies
    listed = client.get("/api/v1/escalation-policies")
    read = client.get(f"/api/v1/escalation-policies/{policy.pk}")
    created = client.post(
        "/api/v1/escalation-policies", {"name": f"by {role}", "contacts": ids(people[1])}, format="json"
    )
    patched = client.patch(f"/api/v1/escalation-policies/{policy.pk}", {"contacts": ids(people[2])}, format="json")

    # then: everyone reads; only supervisors and above write
    assert (listed.status_code, read.status_code) == (200, 200)
    assert (created.status_code, patched.status_code) == ((201, 200) if may_write else (403, 403))
    if not may_write:
        assert "SUPERVISOR" in created.json()["error"]["message"]


def test_a_policy_can_be_set_to_record_its_calls_through_the_api(system_client, people):
    kim, lee, _ = people
    policy = factories.policy(kim, lee, name="payments")
    assert system_client.get(f"/api/v1/escalation-policies/{policy.pk}").json()["record_calls"] is False

    response = system_client.patch(f"/api/v1/escalation-policies/{policy.pk}", {"record_calls": True}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["record_calls"] is True
    policy.refresh_from_db()
    assert policy.record_calls is True
