"""The admin and the status page say the same thing about the same incident: one word and one colour per
state, the same call outcomes and timeline rows, in English and in Korean (orchestrator/words.py and
oncall/states.css, used by both)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import Role
from orchestrator.services import apply_call_status
from tests.accounts.helpers import PASSWORD, person
from tests.console.helpers import exhausted_incident, page_client, ringing_incident

pytestmark = pytest.mark.django_db

STATES_CSS = Path(settings.BASE_DIR) / "orchestrator" / "static" / "oncall" / "states.css"


@pytest.fixture
def admin_client(settings) -> Client:
    settings.MFA_REQUIRED_ROLES = []
    person("ops", Role.ADMIN)
    client = Client()
    client.post("/admin/login/", {"username": "ops", "password": PASSWORD, "next": "/admin/"})
    return client


def _badges(page: str) -> set[str]:
    return set(re.findall(r'<span class="oc-badge oc-\w+"[^>]*>[^<]*</span>', page))


@pytest.mark.parametrize(
    ("language", "exhausted_words", "calling_words"),
    [("en", "Exhausted: nobody answered", "Calling"), ("ko", "소진: 아무도 받지 않음", "호출 중")],
)
def test_both_pages_show_the_same_badges_in_the_same_words(admin_client, language, exhausted_words, calling_words):
    # given one incident still calling and one whose every call went unanswered
    ringing_incident("DB down")
    exhausted_incident("Disk full")
    status_page = page_client("agent", Role.AGENT)

    # when the lead opens the admin list and a responder the status page, in the same language
    admin = admin_client.get("/admin/incidents/incident/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    status = status_page.get("/status/", HTTP_ACCEPT_LANGUAGE=language).content.decode()

    # then both show exactly the same two badges
    expected = {
        f'<span class="oc-badge oc-exhausted" data-state="exhausted">{exhausted_words}</span>',
        f'<span class="oc-badge oc-triggered" data-state="triggered">{calling_words}</span>',
    }
    assert expected <= _badges(admin)
    assert _badges(status) == expected
    # and the admin's state filter offers the same words
    assert f"{exhausted_words}</a>" in admin


def test_both_pages_tell_a_calls_end_in_the_same_words_never_the_carriers_raw_status(admin_client):
    # given Kim answered the first call and hung up without pressing a key
    incident = ringing_incident("DB down", contact_name="Kim")
    token = incident.attempts.get(step=1).token
    apply_call_status(token, "in_progress")
    apply_call_status(token, "completed")

    admin = admin_client.get(f"/admin/incidents/incident/{incident.pk}/change/").content.decode()
    status = page_client("viewer", Role.VIEWER).get(f"/status/incidents/{incident.pk}/").content.decode()

    for page in (admin, status):
        assert "Call ended: answered, pressed nothing" in page  # the timeline row
        assert "Ringing" in page and "Answered" in page and "Opened" in page  # the rows before it
        assert "ended: completed" not in page


def test_both_pages_take_their_state_colours_from_one_stylesheet(admin_client):
    # given an incident on each page
    incident = ringing_incident("DB down")

    admin = admin_client.get("/admin/incidents/incident/").content.decode()
    status = page_client("agent", Role.AGENT).get("/status/").content.decode()
    detail = admin_client.get(f"/admin/incidents/incident/{incident.pk}/change/").content.decode()

    # then every page links the same stylesheet, and it sets the agreed scheme
    for page in (admin, status, detail):
        assert "oncall/states.css" in page
    css = STATES_CSS.read_text()
    rules = dict(re.findall(r"\.oc-(\w+) \{ background: (#[0-9a-f]{6})", css))
    assert rules == {
        "triggered": "#f59e0b",  # amber: phones are ringing
        "exhausted": "#b91c1c",  # solid red: open, silent, nobody answered
        "acknowledged": "#1d4ed8",  # blue: someone is on it
        "resolved": "#6b7280",  # grey: done
        "drill": "#6b21a8",  # purple
    }
