"""In a real browser (Debian's Chromium through Playwright): an ADMIN finds the response-times report
on the admin index, opens it for a night of incidents and reads the numbers, the two bar charts and who
acknowledged. The screenshot goes to /tmp/shots/report_1400.png; on a failure the page is saved under
var/test-output/."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Role
from tests import factories
from tests.accounts.helpers import PASSWORD, person
from tests.browser.test_admin_incidents import CHROMIUM, WIDE, browser_page, shoot
from tests.incidents.test_reports import incident

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")
DAY = "2025-03-10"


def at(hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.fromisoformat(f"{DAY}T{hour:02d}:{minute:02d}:00"))


def test_an_admin_reads_the_response_times_report_with_its_charts(live_server, settings):
    # given: plain-http cookies for the live server, an ADMIN, and a night of incidents on the 'db' policy
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    settings.MFA_REQUIRED_ROLES = []
    person("ops", Role.ADMIN)
    policy = factories.policy(factories.contact("Kim"), name="db")
    for minute, by in ((1, "Kim"), (2, "Kim"), (4, "Lee"), (12, "Park"), (40, "Kim")):
        incident(policy, opened=at(minute % 5), acknowledged=at(minute % 5, minute), resolved=at(3 + minute % 5), by=by)
    incident(policy, opened=at(6), calls=6, exhausted=True)
    incident(policy, opened=at(7), acknowledged=at(9), by="Drill", drill=True)

    with browser_page("report_1400", WIDE) as page:
        # when: the ADMIN signs in and follows the report's link on the index
        page.goto(f"{live_server.url}/admin/")
        page.fill("input[name=username]", "ops")
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")
        page.get_by_role("link", name="Response times report (MTTA / MTTR)").click()
        # ... and asks for that night and that policy
        page.fill("#oc-from", DAY)
        page.fill("#oc-to", DAY)
        page.select_option("#oc-policy", label="db")
        page.get_by_role("button", name="Show").click()

        # then: the numbers, two charts with their bars, and who acknowledged; the drill is left out
        expect(page.locator("#oc-opened")).to_have_text("6")
        expect(page.locator("#oc-acknowledged")).to_have_text("5")
        expect(page.locator("#oc-exhausted")).to_have_text("1")
        expect(page.locator("#oc-mtta")).to_have_text("4 min / 28 min 48 s")  # p90: 12 + 0.6 * (40 - 12) min
        expect(page.locator("svg.oc-chart")).to_have_count(2)
        expect(page.locator('svg.oc-chart >> nth=0 >> g[data-label="1-5 min"]')).to_have_attribute("data-count", "3")
        expect(page.locator("#oc-people tbody tr").first).to_contain_text("Kim")
        expect(page.locator("#oc-people")).not_to_contain_text("Drill")
        shoot(page, "report_1400")
