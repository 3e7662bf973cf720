"""In a real browser: an admin signs into the Django admin with username, password and TOTP code.

Runs Debian's Chromium (/usr/bin/chromium, `apt-get install chromium fonts-noto-cjk`) through
Playwright; Playwright's own browser downloads are never used.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from accounts.models import AuditEvent, Role
from tests.accounts.helpers import PASSWORD, enrol_mfa, person, signed_in, totp_code

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path("/tmp")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: apt-get install chromium fonts-noto-cjk"
)


@pytest.fixture
def plain_http_cookies(settings):
    """The live server speaks plain http; production's secure-only cookies would not be sent back."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


def test_an_admin_signs_into_the_admin_with_a_totp_code(live_server, settings, plain_http_cookies):
    # given: an ADMIN whose role requires MFA, enrolled with an authenticator
    settings.MFA_REQUIRED_ROLES = ["ADMIN", "SUPER_ADMIN"]
    person("boss", Role.ADMIN)
    secret, _ = enrol_mfa(signed_in("boss"))
    code = totp_code(secret, steps_ahead=1)  # the code the app shows (the next step is accepted too)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        # when: they open the admin, and type their username, password and the code into the page
        page.goto(f"{live_server.url}/admin/")
        page.fill("input[name=username]", "boss")
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=otp_token]", code)
        page.screenshot(path=str(SCREENSHOTS / "admin_login.png"), full_page=True)
        page.click("input[type=submit]")
        page.wait_for_load_state()
        # then: they are in: the admin index greets them and lists their models
        heading = page.text_content("#site-name")
        welcome = page.text_content("#user-tools")
        has_users_link = page.locator("a[href='/admin/accounts/user/']").count() > 0
        page.screenshot(path=str(SCREENSHOTS / "admin_signed_in.png"), full_page=True)
        browser.close()

    assert "On-call escalation" in heading
    assert "boss" in welcome.lower()
    assert has_users_link
    assert AuditEvent.objects.filter(action="login_succeeded", actor="user:boss", data__via="admin").exists()


def test_the_sign_in_page_asks_for_the_code_in_korean(live_server):
    # when a Korean browser opens the admin's sign-in page
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(locale="ko-KR")
        page.goto(f"{live_server.url}/admin/login/")
        code_label = page.text_content("label[for=id_otp_token]")
        code_help = page.text_content("#login-form")
        page.screenshot(path=str(SCREENSHOTS / "admin_login_ko.png"), full_page=True)
        browser.close()

    # then the code field reads in Korean like the rest of the page
    assert "MFA 코드" in code_label
    assert "인증 앱의 6자리 코드" in code_help
    assert "authenticator" not in code_help
