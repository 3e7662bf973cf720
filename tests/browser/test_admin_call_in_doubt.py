"""In a real browser: a lead reads an incident whose first call a worker claimed and died with. The
timeline says the engine asked the carrier, found no such call and dialed the person again; the
call's own page counts the redial, in English and in Korean. Screenshots: /tmp/shots/doubt_*.png.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from config.celery import app as celery_app
from incidents.models import EventKind, Incident
from incidents.services import open_incident
from orchestrator import doubt, timers
from orchestrator.dialing import _claim
from orchestrator.models import CallAttempt
from tests import factories
from tests.browser.test_admin_incidents import WIDE, browser_page, lead, pytestmark, shoot, sign_in  # noqa: F401


def redialed_incident() -> CallAttempt:
    """The first call claimed long ago and never sent; its deadline passed, the carrier was asked."""
    factories.policy(factories.contact("Kim", 3), factories.contact("Lee", 3), name="payments")
    incident = open_incident(summary="결제 API 응답 없음 (payments-api)").incident
    attempt = CallAttempt.objects.get(incident=incident, step=1)
    _claim(attempt.pk)
    claimed = timezone.now() - timedelta(seconds=doubt.longest_dial_seconds() + 1)
    CallAttempt.objects.filter(pk=attempt.pk).update(dial_started_at=claimed)
    Incident.objects.filter(pk=incident.pk).update(next_action_at=timezone.now() - timedelta(seconds=1))
    timers.check_deadline(incident.pk, 1)
    asked = incident.events.filter(kind=EventKind.DIAL_DELAYED, attempt_id=attempt.pk).latest("pk")
    doubt.check(attempt.pk, asked.data["check"])
    return CallAttempt.objects.get(pk=attempt.pk)


@pytest.fixture
def no_tasks_left_behind():
    """The engine's steps enqueue dials and countdowns; no worker runs here, so they are purged."""
    yield
    celery_app.control.purge()


def test_a_lead_reads_that_a_call_no_carrier_had_was_dialed_again(
    live_server,
    simulator,
    lead,  # noqa: F811
    no_tasks_left_behind,
):
    attempt = redialed_incident()
    assert attempt.redials == 1

    with browser_page("doubt_incident", WIDE) as page:
        sign_in(page, live_server, lead)
        page.goto(f"{live_server.url}/admin/incidents/incident/{attempt.incident_id}/change/")
        timeline = page.locator(".oc-timeline")
        expect(timeline).to_contain_text("asking the carriers whether it exists")
        expect(timeline).to_contain_text("it was never placed; dialing again")
        shoot(page, "doubt_incident_page_1400")

        page.goto(f"{live_server.url}/admin/orchestrator/callattempt/{attempt.pk}/change/")
        expect(page.locator(".field-redials")).to_contain_text("Redials")
        expect(page.locator(".field-redials .readonly")).to_have_text("1")
        expect(page.locator(".field-status .readonly")).to_have_text("Queued")
        expect(page.locator(".field-answered_by .readonly")).to_have_text("Unknown")
        shoot(page, "doubt_attempt_page_1400")

        # the same page in a browser that asks for Korean, on the same session (a TOTP code works once)
        korean = page.context.browser.new_context(
            locale="ko-KR", viewport=WIDE, storage_state=page.context.storage_state()
        ).new_page()
        korean.goto(f"{live_server.url}/admin/orchestrator/callattempt/{attempt.pk}/change/")
        expect(korean.locator(".field-redials")).to_contain_text("재발신 횟수")
        # and the call's status and who answered are in Korean too, as every other word on the page
        expect(korean.locator(".field-status .readonly")).to_have_text("대기 중")
        expect(korean.locator(".field-answered_by .readonly")).to_have_text("알 수 없음")
        shoot(korean, "doubt_attempt_page_ko_1400")
