"""The incident in the Django admin: read-only (the engine owns a live row), changed only through
actions that call the services, so the timeline and the audit log say an admin did it."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditEvent, Role
from incidents.models import Incident
from incidents.services import open_incident
from tests import factories
from tests.accounts.helpers import PASSWORD, person

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(settings) -> Client:
    settings.MFA_REQUIRED_ROLES = []
    person("ops", Role.ADMIN)
    client = Client()
    client.post("/admin/login/", {"username": "ops", "password": PASSWORD, "next": "/admin/"})
    return client


@pytest.fixture
def incident() -> Incident:
    factories.policy(factories.contact("Kim"), factories.contact("Lee"))
    return open_incident(summary="결제 장애").incident


def test_an_incident_cannot_be_added_in_the_admin_it_never_would_ring(admin_client):
    assert admin_client.get("/admin/incidents/incident/add/").status_code == 403


def test_a_full_row_save_from_the_admin_cannot_revert_what_the_engine_wrote(admin_client, incident):
    # given the engine is at call 1; an admin posts a stale form of the whole row
    before = Incident.objects.values("state", "current_step", "policy_id", "is_drill").get(pk=incident.pk)
    form = {"summary": "x", "state": "resolved", "current_step": "0", "is_drill": "on", "policy": incident.policy_id}

    response = admin_client.post(f"/admin/incidents/incident/{incident.pk}/change/", form)

    # then nothing of the live row changed
    assert response.status_code == 403
    after = Incident.objects.values("state", "current_step", "policy_id", "is_drill").get(pk=incident.pk)
    assert after == before


def test_the_acknowledge_action_goes_through_the_service_and_names_the_admin(admin_client, incident):
    response = admin_client.post(
        "/admin/incidents/incident/",
        {"action": "acknowledge_selected", "_selected_action": [incident.pk]},
        follow=True,
    )

    assert response.status_code == 200
    incident = Incident.objects.get(pk=incident.pk)
    assert incident.state == "acknowledged" and "ops" in incident.acknowledged_by
    assert AuditEvent.objects.filter(action="incident_acknowledged", target=f"incident:{incident.pk}").exists()
    assert incident.events.filter(kind="acknowledged", actor__contains="ops").exists()
