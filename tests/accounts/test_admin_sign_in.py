"""Signing into the Django admin: the page asks for the MFA code, and wrong codes count toward the
lockout just like wrong passwords."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditEvent, Role
from tests.accounts.helpers import PASSWORD, enrol_mfa, person, signed_in, totp_code

pytestmark = pytest.mark.django_db


def admin_sign_in(client: Client, username: str, otp: str):
    return client.post(
        "/admin/login/", {"username": username, "password": PASSWORD, "otp_token": otp, "next": "/admin/"}
    )


def test_the_admin_sign_in_page_has_a_field_for_the_mfa_code():
    # when: someone opens the admin sign-in page
    page = Client().get("/admin/login/")

    # then: it asks for the username, the password and the MFA code
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="username"' in html and 'name="password"' in html
    assert 'name="otp_token"' in html
    assert "MFA code" in html


def test_an_admin_with_mfa_signs_in_with_the_code_typed_into_the_page(settings):
    settings.MFA_REQUIRED_ROLES = ["ADMIN", "SUPER_ADMIN"]
    person("boss", Role.ADMIN)
    secret, _ = enrol_mfa(signed_in("boss"))
    browser = Client()

    answer = admin_sign_in(browser, "boss", totp_code(secret, steps_ahead=1))

    assert answer.status_code == 302 and answer["Location"] == "/admin/"
    assert browser.get("/admin/").status_code == 200


def test_wrong_mfa_codes_in_the_admin_lock_the_account_so_the_right_code_no_longer_works(settings):
    # given: an admin with MFA, and someone who knows the password but not the authenticator
    settings.MFA_REQUIRED_ROLES = ["ADMIN", "SUPER_ADMIN"]
    person("boss", Role.ADMIN)
    secret, _ = enrol_mfa(signed_in("boss"))
    attacker = Client()

    # when: they try LOGIN_FAILURE_LIMIT wrong codes with the right password
    for wrong in range(settings.AXES_FAILURE_LIMIT):
        page = admin_sign_in(attacker, "boss", f"{wrong:06d}")
        assert page.status_code == 200  # the sign-in page again, with an error

    # then: the account is locked: even the right code does not sign in, and the page says why
    browser = Client()
    page = admin_sign_in(browser, "boss", totp_code(secret, steps_ahead=1))
    assert page.status_code == 200
    assert "locked" in page.content.decode()
    assert browser.get("/admin/").status_code == 302
    failures = AuditEvent.objects.filter(action="login_failed", target="user:boss", data__reason="mfa")
    assert failures.count() == settings.AXES_FAILURE_LIMIT
    assert all(event.data["via"] == "admin" for event in failures)
