"""The incident in the Django admin: read-only (the engine owns a live row), changed only through
actions that call the services, so the timeline and the audit log say an admin did it."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import AuditEvent, Role
from incidents.models import EscalationPolicy, Incident
from incidents.services import acknowledge, open_incident, resolve
from orchestrator.drills import start_drill
from orchestrator.models import CallAttempt
from orchestrator.services import advance, apply_call_status
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


# --- what a lead sees: the list ---------------------------------------------------------------------


def _exhausted_incident() -> Incident:
    """One call allowed, and it went unanswered: the engine marks the incident exhausted."""
    factories.policy(factories.contact("Park"), name="one call", is_default=False, max_attempts=1)
    incident = open_incident(summary="디스크 가득", policy=EscalationPolicy.objects.get(name="one call")).incident
    advance(incident.pk, from_step=1, reason="no keypress before the deadline")
    return Incident.objects.get(pk=incident.pk)


def test_an_exhausted_incident_reads_exhausted_in_orange_not_triggered_with_a_green_tick(admin_client):
    # given an incident whose every call went unanswered
    exhausted = _exhausted_incident()
    assert exhausted.state == "exhausted"

    # when the lead opens the incident list
    page = admin_client.get("/admin/incidents/incident/").content.decode()

    # then its state is an orange "Exhausted" badge; no yes/no icon stands in for a state
    assert 'class="oc-badge oc-exhausted" data-state="exhausted"' in page
    assert ">Exhausted: nobody answered<" in page
    assert "icon-yes.svg" not in page and "icon-no.svg" not in page


def test_the_list_says_who_is_being_called_by_which_policy_and_when_the_next_call_goes(admin_client, incident):
    page = admin_client.get("/admin/incidents/incident/").content.decode()

    assert incident.policy.name in page
    assert "Kim (call 1)" in page  # calling now
    assert 'class="oc-badge oc-triggered"' in page
    assert " ago" in page or "in " in page  # next call at, with a relative time
    assert "Refresh" in page and 'id="oc-autorefresh"' in page  # a clear refresh and an opt-in auto-refresh


def test_a_drill_is_marked_drill_in_the_list(admin_client):
    policy = factories.policy(factories.contact("Kim"))
    start_drill(policy)

    page = admin_client.get("/admin/incidents/incident/").content.decode()

    assert '<span class="oc-badge oc-drill">DRILL</span>' in page


def test_the_list_shows_who_acknowledged_and_how_long_it_took(admin_client, incident):
    admin_client.post(
        "/admin/incidents/incident/", {"action": "acknowledge_selected", "_selected_action": [incident.pk]}
    )

    page = admin_client.get("/admin/incidents/incident/").content.decode()

    assert 'class="oc-badge oc-acknowledged"' in page
    assert re.search(
        r'<td class="field-acknowledged"><span class="oc-label">Acknowledged by: </span>ops · \d+ s</td>', page
    )


# --- the actions say what they did, per incident ----------------------------------------------------


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_each_action_says_exactly_what_happened_to_each_incident(admin_client, incident):
    # given one incident already resolved and one still calling
    other = open_incident(summary="second").incident
    resolve(other.pk, actor="ops")

    # when the lead acknowledges both
    response = admin_client.post(
        "/admin/incidents/incident/",
        {"action": "acknowledge_selected", "_selected_action": [incident.pk, other.pk]},
        follow=True,
    )

    # then the page says which was acknowledged and which was left alone, and no count
    assert _messages(response) == [
        f"#{incident.pk} acknowledged: calls stopped",
        f"#{other.pk} was already resolved: nothing done",
    ]


def test_escalate_now_names_who_is_called_next_and_never_says_escalated_zero(admin_client, incident):
    response = admin_client.post(
        "/admin/incidents/incident/", {"action": "escalate_selected", "_selected_action": [incident.pk]}, follow=True
    )

    assert _messages(response) == [f"#{incident.pk} escalated: calling Lee now (call 2)"]

    resolve(incident.pk, actor="ops")
    response = admin_client.post(
        "/admin/incidents/incident/", {"action": "escalate_selected", "_selected_action": [incident.pk]}, follow=True
    )
    assert _messages(response) == [
        f"#{incident.pk} is resolved: only a calling or exhausted incident escalates; nothing done"
    ]


def test_the_incident_page_has_the_actions_as_buttons(admin_client, incident):
    page = admin_client.get(f"/admin/incidents/incident/{incident.pk}/change/").content.decode()
    assert f'action="/admin/incidents/incident/{incident.pk}/do/acknowledge/"' in page

    response = admin_client.post(f"/admin/incidents/incident/{incident.pk}/do/resolve/", follow=True)

    assert _messages(response) == [f"#{incident.pk} resolved"]
    assert Incident.objects.get(pk=incident.pk).state == "resolved"
    assert admin_client.get(f"/admin/incidents/incident/{incident.pk}/do/resolve/").status_code == 405


# --- the incident page: the timeline in words ---------------------------------------------------------


def test_the_timeline_says_admin_not_api_and_answered_pressed_nothing_not_completed(admin_client, incident):
    # given the first call was answered and hung up without a key, and the lead acknowledged in the admin
    attempt = CallAttempt.objects.get(incident=incident, step=1)
    apply_call_status(attempt.token, "in_progress")
    apply_call_status(attempt.token, "completed")
    admin_client.post(f"/admin/incidents/incident/{incident.pk}/do/acknowledge/")

    page = admin_client.get(f"/admin/incidents/incident/{incident.pk}/change/").content.decode()

    # then the timeline and the calls say it in words, with the admin as the channel
    assert "answered, pressed nothing" in page
    assert "ended: completed" not in page and ">Completed<" not in page
    assert "acknowledged through the admin" in page and "through the API" not in page
    acknowledged = incident.events.get(kind="acknowledged")
    assert acknowledged.actor == "user:ops" and acknowledged.data == {"via": "admin"}
    # with seconds and a relative time: "12:03:05 · 2 s ago"
    assert re.search(r"\d\d:\d\d:\d\d · \d+\s+s\s+ago", page)


def test_the_api_still_records_its_own_channel(incident):
    acknowledge(incident.pk, actor="api-key:monitoring")

    event = incident.events.get(kind="acknowledged")
    assert event.message == "acknowledged through the API" and event.data == {"via": "API"}


def test_the_admin_speaks_korean_when_the_browser_asks(admin_client, incident):
    page = admin_client.get("/admin/incidents/incident/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()

    assert 'lang="ko"' in page
    assert "호출 중" in page  # the state badge
    assert "지금 호출 중" in page and "다음 호출 시각" in page  # our columns
    assert "새로 고침" in page  # the refresh link
    assert "Calling now" not in page

    english = admin_client.get("/admin/incidents/incident/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Calling now" in english


def test_a_double_click_on_the_pages_escalate_button_escalates_once(admin_client, incident):
    # given the incident page, showing call 1, with its Escalate now button
    page = admin_client.get(f"/admin/incidents/incident/{incident.pk}/change/").content.decode()
    assert 'name="step" value="1"' in page
    act = f"/admin/incidents/incident/{incident.pk}/do/escalate/"

    # when the button is pressed twice from that page
    first = admin_client.post(act, {"step": "1"}, follow=True)
    second = admin_client.post(act, {"step": "1"}, follow=True)

    # then one escalation: Lee is called, and the second press says it did nothing
    assert _messages(first) == [f"#{incident.pk} escalated: calling Lee now (call 2)"]
    assert "nothing done" in _messages(second)[0]
    assert Incident.objects.get(pk=incident.pk).current_step == 2
