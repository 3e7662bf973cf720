"""In a real browser: an on-call lead uses the admin. They sign in with their TOTP code, read the
incident list and an incident's page (at 1400 px and at a phone's 390 px; screenshots go to
/tmp/shots/admin_*.png), acknowledge through the action and read what it did, create an API key and
see it once, drill a policy, and read the admin in Korean. On a failure the page is saved under
var/test-output/.

Runs Debian's Chromium (/usr/bin/chromium) through Playwright; Playwright's own browser downloads are
never used. The browser is opened after the rows are written and the database is read after it is
closed: Playwright runs an event loop in this thread, and Django refuses database work beside one.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import expect, sync_playwright

from accounts.models import APIKey, Role
from incidents.models import Incident
from incidents.services import open_incident
from orchestrator.services import apply_call_status
from tests import factories
from tests.accounts.helpers import PASSWORD, enrol_mfa, person, signed_in, totp_code

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/shots")
FAILURES = Path(django_settings.BASE_DIR) / "var" / "test-output"
WIDE, PHONE = {"width": 1400, "height": 900}, {"width": 390, "height": 844}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: apt-get install chromium fonts-noto-cjk"
)


@pytest.fixture
def lead(settings) -> str:
    """An ADMIN whose role requires MFA, enrolled; returns the TOTP secret. Plain-http cookies for the
    live server."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.MFA_REQUIRED_ROLES = ["ADMIN", "SUPER_ADMIN"]
    person("lead", Role.ADMIN)
    secret, _ = enrol_mfa(signed_in("lead"))
    return secret


@contextlib.contextmanager
def browser_page(name: str, viewport: dict, locale: str = "en-US"):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport=viewport, locale=locale)
        try:
            yield page
        except Exception:
            FAILURES.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(FAILURES / f"{name}.png"), full_page=True)
            raise
        finally:
            browser.close()


def sign_in(page, live_server, secret: str) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.fill("input[name=username]", "lead")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=otp_token]", totp_code(secret, steps_ahead=1))
    page.click("input[type=submit]")
    page.wait_for_load_state()


@contextlib.contextmanager
def admin_signed_in(name: str, live_server, settings, username: str = "officer"):
    """A wide page on which an ADMIN has signed in with a password only (no MFA asked of the role),
    on plain-http cookies for the live server."""
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    settings.MFA_REQUIRED_ROLES = []
    person(username, Role.ADMIN)
    with browser_page(name, WIDE) as page:
        page.goto(f"{live_server.url}/admin/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")
        yield page


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# One colour per state, the same on the admin and the status page (oncall/states.css).
STATE_COLOURS = {
    "triggered": "rgb(245, 158, 11)",  # amber
    "exhausted": "rgb(185, 28, 28)",  # solid red
    "drill": "rgb(107, 33, 168)",  # purple
}


def badge_colours(page) -> dict[str, str]:
    """The background colour each kind of badge is drawn with, as the browser computes it."""
    return {
        kind: page.locator(f".oc-badge.oc-{kind}").first.evaluate("badge => getComputedStyle(badge).backgroundColor")
        for kind in STATE_COLOURS
    }


def _incidents() -> dict[str, Incident]:
    """A ringing incident (its first call answered and hung up without a key), an exhausted one, an
    acknowledged one and a drill: every state a lead meets at night."""
    kim, lee = factories.contact("Kim"), factories.contact("Lee")
    factories.policy(kim, lee, name="payments")
    ringing = open_incident(summary="결제 API 5xx 급증 (payments-api)").incident
    apply_call_status(ringing.attempts.get().token, "in_progress")
    apply_call_status(ringing.attempts.get().token, "completed")
    one_call = factories.policy(factories.contact("Park"), name="one call", is_default=False, max_attempts=1)
    exhausted = open_incident(summary="디스크 95% (db-1)", policy=one_call).incident
    apply_call_status(exhausted.attempts.get().token, "no_answer")
    acknowledged = open_incident(summary="Redis 메모리 경고").incident
    from incidents.services import acknowledge

    acknowledge(acknowledged.pk, actor="user:lead", via="admin")
    from orchestrator.drills import start_drill

    drill = start_drill(one_call)
    return {"ringing": ringing, "exhausted": exhausted, "drill": drill}


@pytest.mark.parametrize("width", ["wide", "phone"])
def test_a_lead_reads_the_incidents_and_acknowledges_one(live_server, lead, width):
    incidents = _incidents()
    ringing = incidents["ringing"]
    viewport = WIDE if width == "wide" else PHONE
    size = "1400" if width == "wide" else "390"

    with browser_page(f"admin_incidents_{size}", viewport) as page:
        sign_in(page, live_server, lead)
        # the list: states in colour, the exhausted one solid red, the drill marked
        page.goto(f"{live_server.url}/admin/incidents/incident/")
        expect(page.locator(".oc-badge.oc-exhausted")).to_have_text("Exhausted: nobody answered")
        expect(page.locator(".oc-badge.oc-drill")).to_have_text("DRILL")
        expect(page.get_by_role("link", name="Refresh")).to_be_visible()
        # the status page's colours: calling amber, exhausted solid red, a drill purple
        assert badge_colours(page) == STATE_COLOURS
        # every column fits: the list never needs a sideways scroll
        assert page.evaluate(
            "(results => results.scrollWidth <= results.clientWidth)(document.querySelector('.results'))"
        )
        if width == "phone":
            # a phone shows who is being called and when the next call goes without scrolling sideways
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            row = page.locator(f"#result_list tr:has(input[value='{ringing.pk}'])")
            for cell in ("td.field-calling_now", "td.field-next_call", "td.field-state_badge"):
                box = row.locator(cell).bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], cell
            expect(row.locator("td.field-calling_now")).to_contain_text(re.compile(r"Calling now: \w+ \(call \d\)"))
            expect(row.locator("td.field-next_call")).to_contain_text("Next call at: ")
            expect(row.locator("td.field-policy")).to_be_hidden()
        shoot(page, f"admin_incident_list_{size}")
        shoot(page, f"polish_admin_list_{size}")

        # the incident's page: the timeline in words, with seconds
        page.goto(f"{live_server.url}/admin/incidents/incident/{ringing.pk}/change/")
        expect(page.locator(".oc-timeline")).to_contain_text("Call ended: answered, pressed nothing")
        if width == "phone":
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shoot(page, f"admin_incident_page_{size}")
        shoot(page, f"polish_admin_page_{size}")

        # acknowledge through the action on the list, and read what it did
        page.goto(f"{live_server.url}/admin/incidents/incident/")
        page.check(f"input[name=_selected_action][value='{ringing.pk}']")
        page.select_option("select[name=action]", "acknowledge_selected")
        page.click("button[name=index]")
        page.wait_for_load_state()
        expect(page.locator("ul.messagelist")).to_contain_text(f"#{ringing.pk} acknowledged: calls stopped")
        if width == "wide":
            shoot(page, "admin_incident_acknowledged_1400")

    ringing.refresh_from_db()
    assert ringing.state == "acknowledged" and ringing.acknowledged_by == "user:lead"
    assert ringing.events.get(kind="acknowledged").data == {"via": "admin"}


def test_a_lead_creates_an_api_key_and_sees_it_once(live_server, lead):
    with browser_page("admin_api_key", WIDE) as page:
        sign_in(page, live_server, lead)
        page.goto(f"{live_server.url}/admin/accounts/apikey/add/")
        page.fill("input[name=name]", "grafana")
        page.check("input[name=scope_choices][value='alerts:write']")
        page.click("input[name=_save]")
        page.wait_for_load_state()
        shown = page.locator("code.oc-new-key").inner_text()
        shoot(page, "admin_api_key_created_1400")
        page.reload()
        shown_again = page.locator("code.oc-new-key").count()

    key = APIKey.objects.get(name="grafana")
    assert shown.startswith(f"oc_{key.prefix}.") or key.prefix in shown
    assert key.scopes == ["alerts:write"]
    assert shown_again == 0


def test_a_lead_drills_a_policy_from_the_admin(live_server, lead):
    policy = factories.policy(factories.contact("Kim"), name="payments")

    with browser_page("admin_drill", WIDE) as page:
        sign_in(page, live_server, lead)
        page.goto(f"{live_server.url}/admin/incidents/escalationpolicy/")
        page.check(f"input[name=_selected_action][value='{policy.pk}']")
        page.select_option("select[name=action]", "drill_selected")
        page.click("button[name=index]")
        page.wait_for_load_state()
        expect(page.locator("ul.messagelist")).to_contain_text(re.compile("payments: drill", re.IGNORECASE))
        page.locator("ul.messagelist a").click()
        page.wait_for_load_state()
        expect(page.locator(".oc-badge.oc-drill")).to_have_text("DRILL")

    drill = Incident.objects.get(policy=policy)
    assert drill.is_drill and drill.summary == "[DRILL] payments"


def test_the_admin_is_in_korean_when_the_browser_asks(live_server, lead):
    _incidents()

    with browser_page("admin_korean", WIDE, locale="ko-KR") as page:
        sign_in(page, live_server, lead)
        page.goto(f"{live_server.url}/admin/incidents/incident/")
        expect(page.locator("#site-name")).to_contain_text("당직 호출")
        expect(page.locator(".oc-badge.oc-exhausted")).to_have_text("소진: 아무도 받지 않음")
        expect(page.get_by_role("link", name="새로 고침")).to_be_visible()
        shoot(page, "admin_incident_list_ko_1400")
