"""Every status page, walked anonymously and as each role: who gets in, who is refused, no crash."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role
from tests.accounts.test_permissions import missing_permission, routes
from tests.console.helpers import page_client, ringing_incident

pytestmark = pytest.mark.django_db

ACTIONS = ("acknowledge", "resolve", "escalate")


def status_paths(incident_id: int) -> dict[str, object]:
    """Every route under /status/, made concrete with a real incident id, with its view."""
    return {
        "/" + path.replace("<int:incident_id>", str(incident_id)): callback
        for path, callback in routes()
        if path.startswith("status/")
    }


def is_sign_in_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/status/login/")


def test_every_status_page_declares_its_permission():
    paths = status_paths(1)

    assert set(paths) == {
        "/status/",
        "/status/login/",
        "/status/logout/",
        "/status/incidents/1/",
        *(f"/status/incidents/1/{action}/" for action in ACTIONS),
    }
    assert {path: missing_permission(view) for path, view in paths.items() if missing_permission(view)} == {}
    assert status_paths(1)["/status/login/"].page_permission == "public"


def test_an_anonymous_visitor_is_sent_to_sign_in_from_every_page_whatever_the_method():
    incident = ringing_incident()
    client = Client()
    client.raise_request_exception = False

    answers = {
        f"{method.upper()} {path}": getattr(client, method)(path)
        for path in status_paths(incident.pk)
        if path != "/status/login/"
        for method in ("get", "post")
    }

    assert {op: r.status_code for op, r in answers.items() if not is_sign_in_redirect(r)} == {}
    incident.refresh_from_db()
    assert incident.state == "triggered"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.SUPER_ADMIN])
def test_each_role_reads_every_page_and_only_agents_and_above_act(role, settings):
    # given: an incident ringing, and a signed-in person of this role (MFA off for the walk)
    settings.MFA_REQUIRED_ROLES = []
    incident = ringing_incident()
    client = page_client(f"walker-{role.lower()}", role)

    # when: they open every page
    reads = {path: client.get(path).status_code for path in ("/status/", f"/status/incidents/{incident.pk}/")}
    # then: they read them all
    assert reads == {"/status/": 200, f"/status/incidents/{incident.pk}/": 200}
    # the sign-in page sends a signed-in person on to the list
    assert client.get("/status/login/")["Location"] == "/status/"

    # when: they press each button (escalate first, resolve last, so each one has something to do)
    acts = {
        action: client.post(f"/status/incidents/{incident.pk}/{action}/")
        for action in ("escalate", "acknowledge", "resolve")
    }
    # then: AGENT and above act (redirect back with a message); a VIEWER is refused with 403
    may_act = Role.rank(role) >= Role.rank(Role.AGENT)
    assert {action: r.status_code for action, r in acts.items()} == {a: 302 if may_act else 403 for a in acts}
    incident.refresh_from_db()
    assert incident.state == ("resolved" if may_act else "triggered")
    # and no page answered a GET on a button with anything but a refusal (405/403), never a 5xx
    for action in ACTIONS:
        assert client.get(f"/status/incidents/{incident.pk}/{action}/").status_code in (403, 405)


def test_people_whose_role_requires_mfa_but_never_enrolled_get_no_page(settings):
    # given: admins must use MFA (the default outside development); this admin never enrolled
    settings.MFA_REQUIRED_ROLES = ["ADMIN", "SUPER_ADMIN"]
    incident = ringing_incident()
    client = page_client("admin-no-mfa", Role.ADMIN)

    answers = [client.get(path) for path in ("/status/", f"/status/incidents/{incident.pk}/")]

    assert [is_sign_in_redirect(answer) for answer in answers] == [True, True]
