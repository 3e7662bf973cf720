"""The status page as responders use it: what they see, and what the buttons do."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client

from accounts.models import AuditEvent, Role
from incidents.models import IncidentEvent
from incidents.services import open_incident, resolve
from orchestrator.drills import start_drill
from tests import factories
from tests.accounts.helpers import PASSWORD, person
from tests.console.helpers import exhausted_incident, page_client, ringing_incident

pytestmark = pytest.mark.django_db


def text_of(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_the_list_shows_open_incidents_newest_first_with_who_is_being_called():
    # given: an exhausted incident, then a ringing one, then one that was resolved
    exhausted = exhausted_incident("Disk full")
    ringing = ringing_incident("DB down", contact_name="Kim")
    gone = ringing_incident("Old news", contact_name="Choi")
    resolve(gone.pk, actor="system")
    client = page_client("viewer", Role.VIEWER)

    # when: a VIEWER opens the status page
    response = client.get("/status/")

    # then: the open ones, newest first; the resolved one is not listed
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [row.incident.pk for row in rows] == [ringing.pk, exhausted.pk]
    # who is being called now, and when the next call comes if nobody presses 1
    assert rows[0].calling_now.startswith("Kim (+8210") and rows[0].calling_now.endswith(": ringing")
    assert rows[0].next_call_at == ringing.next_action_at
    page = text_of(response)
    assert "Old news" not in page
    # the exhausted incident reads as such, with its own badge, never as "calling"
    assert 'class="oc-badge oc-exhausted" data-state="exhausted">Exhausted: nobody answered<' in page
    assert 'class="oc-badge oc-triggered" data-state="triggered">Calling<' in page
    assert rows[1].calling_now == ""


def test_a_drill_is_marked_drill():
    # given: a drill of a policy
    policy = factories.policy(factories.contact("Kim", 1))
    drill = start_drill(policy, actor=person("lead", Role.SUPERVISOR))

    # when: an AGENT looks at the list
    response = page_client("agent", Role.AGENT).get("/status/")

    # then: its row carries the DRILL badge
    page = text_of(response)
    row = page[page.index(f'data-incident="{drill.pk}"') :]
    assert 'class="oc-badge oc-drill">DRILL<' in row[: row.index("</tr>")]


def test_the_incident_page_tells_the_story_in_words_with_times_in_seoul(settings):
    # given: an incident whose first call rang Kim, who answered and hung up without pressing a key
    incident = ringing_incident("DB down", contact_name="Kim")
    from orchestrator.services import apply_call_status

    token = incident.attempts.get(step=1).token
    apply_call_status(token, "in_progress")
    apply_call_status(token, "completed")

    # when: a VIEWER opens the incident
    response = page_client("viewer", Role.VIEWER).get(f"/status/incidents/{incident.pk}/")

    # then: the timeline speaks plainly, in the configured time zone
    assert response.status_code == 200
    rows = response.context["view"].timeline
    assert [row["what"] for row in rows][:5] == [
        "Opened",
        "Call queued",
        "Ringing",
        "Answered",
        "Call ended: answered, pressed nothing",
    ]
    assert settings.TIME_ZONE == "Asia/Seoul"
    page = text_of(response)
    assert "KST" in page and "Times are in Asia/Seoul." in page
    assert "answered, pressed nothing" in page and "(completed)" not in page
    # the calls placed: Kim's first call, and how it ended
    first = response.context["view"].calls[0]
    assert (first.step, first.contact.name, first.words) == (1, "Kim", "answered, pressed nothing")


def test_an_agent_acknowledges_and_is_told_exactly_what_happened():
    # given: an incident ringing Kim, and an AGENT on its page
    incident = ringing_incident("DB down")
    client = page_client("agent", Role.AGENT)
    page = text_of(client.get(f"/status/incidents/{incident.pk}/"))
    assert f'action="/status/incidents/{incident.pk}/acknowledge/"' in page

    # when: they press Acknowledge
    response = client.post(f"/status/incidents/{incident.pk}/acknowledge/", follow=True)

    # then: the page says so, the incident is acknowledged by them, through the status page
    assert messages_of(response) == [f"Acknowledged #{incident.pk}."]
    incident.refresh_from_db()
    assert (incident.state, incident.acknowledged_by) == ("acknowledged", "user:agent")
    event = IncidentEvent.objects.get(incident=incident, kind="acknowledged")
    assert (event.actor, event.message) == ("user:agent", "acknowledged through the status page")
    assert AuditEvent.objects.filter(action="incident_acknowledged", actor="user:agent").exists()
    assert 'class="oc-badge oc-acknowledged" data-state="acknowledged">Acknowledged<' in text_of(response)

    # and pressing it again (a second tab) does nothing, and says so
    again = client.post(f"/status/incidents/{incident.pk}/acknowledge/", follow=True)
    assert messages_of(again) == [f"#{incident.pk} was already acknowledged: nothing done."]
    assert IncidentEvent.objects.filter(incident=incident, kind="acknowledged").count() == 1


def test_resolving_a_resolved_incident_does_nothing_and_says_so():
    # given: an incident someone else resolved a moment ago
    incident = ringing_incident("DB down")
    client = page_client("supervisor", Role.SUPERVISOR)
    first = client.post(f"/status/incidents/{incident.pk}/resolve/", follow=True)
    assert messages_of(first) == [f"Resolved #{incident.pk}."]

    # when: they press Resolve (or Acknowledge) on a page opened before that
    resolved_again = client.post(f"/status/incidents/{incident.pk}/resolve/", follow=True)
    acknowledged_late = client.post(f"/status/incidents/{incident.pk}/acknowledge/", follow=True)

    # then: nothing changes, and the message says why
    assert messages_of(resolved_again) == [f"#{incident.pk} was already resolved: nothing done."]
    assert messages_of(acknowledged_late) == [f"#{incident.pk} was already resolved: nothing done."]
    assert IncidentEvent.objects.filter(incident=incident, kind="resolved").count() == 1


def test_escalate_now_calls_the_next_person_and_names_them():
    # given: an incident ringing Kim (then Lee in the policy)
    incident = ringing_incident("DB down", contact_name="Kim")
    client = page_client("agent", Role.AGENT)

    # when: the AGENT presses Escalate now on the list
    response = client.post(f"/status/incidents/{incident.pk}/escalate/", {"next": "/status/"}, follow=True)

    # then: Lee is called now (call 2), and the list shows it
    assert response.redirect_chain[-1][0] == "/status/"
    assert messages_of(response) == [f"Escalated #{incident.pk}: calling Lee now (call 2)."]
    assert "Lee (+8210" in response.context["rows"][0].calling_now


def test_escalating_an_exhausted_incident_starts_a_new_round():
    incident = exhausted_incident("Disk full")
    client = page_client("agent", Role.AGENT)

    response = client.post(f"/status/incidents/{incident.pk}/escalate/", follow=True)

    assert messages_of(response) == [f"#{incident.pk}: a new round of calls started; calling Park now (call 2)."]
    incident.refresh_from_db()
    assert incident.state == "triggered"


def test_an_acknowledged_incident_cannot_be_escalated_and_the_page_says_why():
    incident = ringing_incident("DB down")
    client = page_client("agent", Role.AGENT)
    client.post(f"/status/incidents/{incident.pk}/acknowledge/", follow=True)

    response = client.post(f"/status/incidents/{incident.pk}/escalate/", follow=True)

    assert messages_of(response) == [
        f"#{incident.pk} is acknowledged: only a calling or exhausted incident can be escalated; nothing done."
    ]


def test_a_viewer_sees_no_buttons_and_a_forged_post_is_refused():
    # given: a ringing incident and a VIEWER
    incident = ringing_incident("DB down")
    client = page_client("viewer", Role.VIEWER)

    # when: they open the list and the incident
    pages = text_of(client.get("/status/")) + text_of(client.get(f"/status/incidents/{incident.pk}/"))

    # then: no button to act with
    for action in ("acknowledge", "resolve", "escalate"):
        assert f"/{action}/" not in pages
    assert ">Acknowledge<" not in pages

    # and a hand-made POST is refused with 403, the incident untouched
    for action in ("acknowledge", "resolve", "escalate"):
        response = client.post(f"/status/incidents/{incident.pk}/{action}/")
        assert response.status_code == 403
        assert "This needs the AGENT role or higher; you are VIEWER." in text_of(response)
    incident.refresh_from_db()
    assert incident.state == "triggered"


def test_a_button_press_without_the_csrf_token_is_refused():
    # given: an AGENT whose browser was lured into posting from another site (no CSRF token)
    incident = ringing_incident("DB down")
    client = Client(enforce_csrf_checks=True)
    client.force_login(person("agent", Role.AGENT))

    response = client.post(f"/status/incidents/{incident.pk}/acknowledge/")

    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.state == "triggered"


def test_an_unknown_incident_is_a_404_page():
    response = page_client("viewer", Role.VIEWER).get("/status/incidents/999999/")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_the_list_refreshes_itself_only_when_asked():
    client = page_client("viewer", Role.VIEWER)

    assert 'http-equiv="refresh"' not in text_of(client.get("/status/"))
    assert '<meta http-equiv="refresh" content="30">' in text_of(client.get("/status/?refresh=30"))
    assert 'http-equiv="refresh"' not in text_of(client.get("/status/?refresh=1"))  # not a choice offered


def test_the_admin_view_site_link_leads_to_the_status_page(settings):
    settings.MFA_REQUIRED_ROLES = []
    person("ops", Role.ADMIN)
    client = Client()
    client.post("/admin/login/", {"username": "ops", "password": PASSWORD, "next": "/admin/"})

    assert admin.site.site_url == "/status/"
    assert 'href="/status/"' in text_of(client.get("/admin/"))


def test_one_place_decides_where_view_site_leads():
    # the link is set once, by the status page's app; no other module sets it and relies on load order
    from pathlib import Path

    from django.conf import settings

    root = Path(settings.BASE_DIR)
    setters = sorted(
        str(path.relative_to(root))
        for app in ("accounts", "console", "incidents", "integrations", "orchestrator", "config")
        for path in (root / app).rglob("*.py")
        if "site.site_url =" in path.read_text(encoding="utf-8")
    )
    assert setters == ["console/apps.py"]


def test_an_open_incident_with_no_call_yet_shows_nobody_called():
    factories.policy(factories.contact("Kim", 1), factories.contact("Lee", 2))
    incident = open_incident(summary="just opened").incident

    row = page_client("viewer", Role.VIEWER).get("/status/").context["rows"][0]

    assert row.incident.pk == incident.pk
    assert row.calling_now.endswith(": waiting to be dialed")
    assert row.next_call_at is None  # nobody is ringing yet, so no next call time is promised


def test_the_page_speaks_korean_when_the_browser_asks():
    # given: a ringing incident, and a VIEWER whose browser prefers Korean
    incident = ringing_incident("DB down", contact_name="Kim")
    client = page_client("viewer", Role.VIEWER)

    # when: they open the list and the incident
    listing = text_of(client.get("/status/", HTTP_ACCEPT_LANGUAGE="ko-KR,ko;q=0.9"))
    story = text_of(client.get(f"/status/incidents/{incident.pk}/", HTTP_ACCEPT_LANGUAGE="ko"))

    # then: our words are Korean, the times still Seoul's
    assert "열린 장애" in listing and "호출 중" in listing and "Kim (+8210" in listing
    assert "벨 울리는 중" in story and "타임라인" in story and "KST" in story


def test_a_double_click_on_escalate_now_escalates_once():
    # given: the page shows Kim being rung (call 1), and the AGENT clicks Escalate now twice
    incident = ringing_incident("DB down", contact_name="Kim")
    client = page_client("agent", Role.AGENT)
    page = client.get(f"/status/incidents/{incident.pk}/").content.decode()
    assert 'name="step" value="1"' in page

    first = client.post(f"/status/incidents/{incident.pk}/escalate/", {"step": "1"}, follow=True)
    second = client.post(f"/status/incidents/{incident.pk}/escalate/", {"step": "1"}, follow=True)

    # then: Lee is called (call 2), and the second click skips nobody
    assert messages_of(first) == [f"Escalated #{incident.pk}: calling Lee now (call 2)."]
    assert "already escalated" in messages_of(second)[0] and "Nothing done" in messages_of(second)[0]
    incident.refresh_from_db()
    assert incident.current_step == 2
