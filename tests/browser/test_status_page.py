"""In a real browser: responders use the status page at /status/.

An AGENT (with MFA) signs in, sees the open incidents and who is being called, acknowledges one and
sees the message and the new state; a VIEWER sees no buttons. Screenshots at 1400 px and 390 px go to
/tmp/shots/status_*.png; on a failure the page is saved under var/test-output/.

Runs Debian's Chromium (/usr/bin/chromium) through Playwright; Playwright's own browser downloads are
never used.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import expect, sync_playwright

from accounts.models import Role
from orchestrator.drills import start_drill
from tests import factories
from tests.accounts.helpers import PASSWORD, enrol_mfa, person, signed_in, totp_code
from tests.browser.test_admin_incidents import STATE_COLOURS, badge_colours
from tests.console.helpers import exhausted_incident, ringing_incident

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/shots")
FAILURES = Path(django_settings.BASE_DIR) / "var" / "test-output"
WIDE, PHONE = {"width": 1400, "height": 900}, {"width": 390, "height": 844}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: apt-get install chromium fonts-noto-cjk"
)


@pytest.fixture
def plain_http_cookies(settings):
    """The live server speaks plain http; production's secure-only cookies would not be sent back."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


@contextlib.contextmanager
def chromium():
    """Debian's Chromium. Opened after the test's rows are written: Playwright runs an event loop in
    this thread, and Django refuses database work from a thread with a running loop."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def saved_on_failure(page, name: str):
    """A failing step leaves a screenshot of what the browser showed."""
    try:
        yield
    except Exception:
        FAILURES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(FAILURES / f"{name}.png"), full_page=True)
        raise


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, base_url: str, username: str, code: str = "") -> None:
    page.goto(f"{base_url}/status/")
    expect(page).to_have_url(f"{base_url}/status/login/?next=%2Fstatus%2F")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=code]", code)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base_url}/status/")


def test_an_agent_acknowledges_from_the_status_page(live_server, settings, plain_http_cookies):
    # given: an AGENT who uses MFA; an incident ringing Kim, an exhausted one and a drill
    settings.MFA_REQUIRED_ROLES = ["ADMIN", "SUPER_ADMIN"]
    person("agent", Role.AGENT)
    secret, _ = enrol_mfa(signed_in("agent"))
    exhausted = exhausted_incident("Disk full on backup-2")
    start_drill(factories.policy(factories.contact("Choi", 1), name="night drill", is_default=False))
    incident = ringing_incident("DB down on db-1: replication stopped", contact_name="Kim")
    row = f"tr[data-incident='{incident.pk}']"

    code = totp_code(secret, steps_ahead=1)

    with chromium() as browser, saved_on_failure(page := browser.new_page(viewport=WIDE), "status_agent"):
        # when: they sign in with username, password and the code of their authenticator
        sign_in(page, live_server.url, "agent", code=code)

        # then: the list shows the ringing incident and who is being called; the exhausted one stands out
        expect(page.locator(f"{row} .calling-now")).to_contain_text("Kim (+8210")
        expect(page.locator(f"{row} .calling-now")).to_contain_text("ringing")
        expect(page.locator(f"tr[data-incident='{exhausted.pk}'] .oc-badge.oc-exhausted")).to_have_text(
            "Exhausted: nobody answered"
        )
        expect(page.locator(".oc-badge.oc-drill")).to_have_text("DRILL")
        # in the admin's colours: calling amber, exhausted solid red, a drill purple
        assert badge_colours(page) == STATE_COLOURS
        shoot(page, "status_list_1400")
        shoot(page, "polish_status_list_1400")
        page.set_viewport_size(PHONE)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shoot(page, "status_list_390")
        shoot(page, "polish_status_list_390")
        page.set_viewport_size(WIDE)

        # when: they open the incident and press Acknowledge
        page.click(f"{row} a >> nth=0")
        expect(page.locator("h1")).to_contain_text("DB down on db-1")
        page.click("button:has-text('Acknowledge')")

        # then: the page says what happened, and the incident reads acknowledged, by them
        expect(page.locator(".msg.success")).to_have_text(f"Acknowledged #{incident.pk}.")
        expect(page.locator("h1 .oc-badge")).to_have_text("Acknowledged")
        expect(page.locator("dl.facts")).to_contain_text("agent")
        expect(page.locator("table.timeline")).to_contain_text("acknowledged through the status page")
        expect(page.locator("button:has-text('Acknowledge')")).to_have_count(0)
        shoot(page, "status_detail_1400")
        page.set_viewport_size(PHONE)
        shoot(page, "status_detail_390")

    incident.refresh_from_db()
    assert (incident.state, incident.acknowledged_by) == ("acknowledged", "user:agent")


def test_a_viewer_sees_the_incidents_but_no_buttons_in_korean(live_server, settings, plain_http_cookies):
    # given: a VIEWER whose phone asks for Korean, and an incident ringing Kim
    person("watcher", Role.VIEWER)
    incident = ringing_incident("DB down on db-1", contact_name="Kim")

    with (
        chromium() as browser,
        saved_on_failure(page := browser.new_page(viewport=PHONE, locale="ko-KR"), "status_viewer"),
    ):
        # when: they sign in and open the list, then the incident
        sign_in(page, live_server.url, "watcher")
        # then: they see who is being called, in Korean, and no button anywhere
        expect(page.locator("h1")).to_contain_text("열린 장애")
        expect(page.locator(f"tr[data-incident='{incident.pk}'] .calling-now")).to_contain_text("Kim")
        expect(page.locator("main button")).to_have_count(0)
        page.goto(f"{live_server.url}/status/incidents/{incident.pk}/")
        expect(page.locator("table.timeline")).to_contain_text("벨 울리는 중")
        expect(page.locator("main button")).to_have_count(0)
        shoot(page, "status_viewer_ko_390")
