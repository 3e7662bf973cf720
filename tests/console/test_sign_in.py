"""Signing in to the status page follows the API login's rules: lockout, MFA, rate limits, audit."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.test import Client

from accounts.models import AuditEvent, Role
from tests.accounts.helpers import PASSWORD, enrol_mfa, person, signed_in, totp_code

pytestmark = pytest.mark.django_db

ENROL_HINT = "POST /api/v1/auth/mfa/enrol"


def sign_in(client: Client, username: str, password: str = PASSWORD, code: str = "", **extra):
    return client.post("/status/login/", {"username": username, "password": password, "code": code, **extra})


def page_text(response) -> str:
    return response.content.decode()


def test_an_anonymous_visitor_is_sent_to_the_sign_in_page_which_asks_for_the_mfa_code():
    response = Client().get("/status/")

    assert response.status_code == 302
    assert response["Location"] == "/status/login/?next=%2Fstatus%2F"
    form = page_text(Client().get(response["Location"]))
    for field in ('name="username"', 'name="password"', 'name="code"', 'name="csrfmiddlewaretoken"'):
        assert field in form


def test_an_agent_signs_in_and_lands_where_they_were_going(settings):
    # given: an AGENT, on a site served over HTTPS (cookies are Secure there)
    settings.SESSION_COOKIE_SECURE = True
    person("agent", Role.AGENT)
    client = Client()

    # when: they sign in from a link to the list
    response = sign_in(client, "agent", next="/status/?refresh=30")

    # then: they are sent on, with a session cookie scripts cannot read and other sites do not get
    assert response.status_code == 302 and response["Location"] == "/status/?refresh=30"
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Lax"
    assert client.get("/status/").status_code == 200
    event = AuditEvent.objects.get(action="login_succeeded", actor="user:agent")
    assert event.data == {"via": "status page", "mfa": False}


def test_a_next_address_outside_the_status_pages_is_ignored():
    person("agent", Role.AGENT)

    for target in ("https://evil.example/status/", "//evil.example/", "/api/v1/users", "/admin/"):
        response = sign_in(Client(), "agent", next=target)
        assert response["Location"] == "/status/", target


def test_a_wrong_password_is_refused_and_counted():
    person("agent", Role.AGENT)

    response = sign_in(Client(), "agent", password="wrong-password-123")

    assert response.status_code == 200
    assert "Invalid username or password." in page_text(response)
    assert AccessAttempt.objects.get(username="agent").failures_since_start == 1
    assert AuditEvent.objects.filter(action="login_failed", data__via="status page").exists()


def test_an_account_with_mfa_needs_its_code_and_a_wrong_code_counts_as_a_failure():
    # given: an AGENT who turned MFA on
    person("agent", Role.AGENT)
    secret, _ = enrol_mfa(signed_in("agent"))

    # when: they sign in without a code, then with a wrong one
    without = sign_in(Client(), "agent")
    wrong = sign_in(Client(), "agent", code="000000")

    # then: both are refused, say what is missing, and count toward the lockout
    assert "enter the 6-digit code" in page_text(without)
    assert "The MFA code is wrong, expired or already used." in page_text(wrong)
    assert AccessAttempt.objects.get(username="agent").failures_since_start == 2

    # and with the code of their authenticator they are in
    client = Client()
    assert sign_in(client, "agent", code=totp_code(secret, steps_ahead=1)).status_code == 302
    assert client.get("/status/").status_code == 200
    assert AuditEvent.objects.filter(action="login_succeeded", actor="user:agent", data__mfa=True).exists()


def test_a_role_that_requires_mfa_without_enrolment_is_told_to_enrol_and_kept_out(settings):
    # given: supervisors must use MFA, and this one never enrolled
    settings.MFA_REQUIRED_ROLES = ["SUPERVISOR", "ADMIN", "SUPER_ADMIN"]
    person("lead", Role.SUPERVISOR)
    client = Client()

    # when: they sign in with the right password
    response = sign_in(client, "lead")

    # then: they are told where to enrol, and not let in
    assert response.status_code == 200
    assert ENROL_HINT in page_text(response)
    assert client.get("/status/").status_code == 302


def test_a_session_whose_role_now_requires_mfa_is_ended_until_they_enrol(settings):
    # given: a supervisor signed in before MFA became required for their role
    person("lead", Role.SUPERVISOR)
    client = Client()
    assert sign_in(client, "lead").status_code == 302
    settings.MFA_REQUIRED_ROLES = ["SUPERVISOR"]

    # when: they open the status page again
    response = client.get("/status/", follow=True)

    # then: they are signed out and told to enrol
    assert response.redirect_chain[-1][0] == "/status/login/"
    assert ENROL_HINT in page_text(response)
    assert client.get("/status/").status_code == 302


def test_repeated_failures_lock_the_account_and_the_page_says_so(settings):
    settings.AXES_FAILURE_LIMIT = 3
    person("agent", Role.AGENT)
    for _ in range(3):
        sign_in(Client(), "agent", password="wrong-password-123")

    # even the right password is refused while locked
    response = sign_in(Client(), "agent")

    assert response.status_code == 429
    assert "this account is locked" in page_text(response)
    assert AuditEvent.objects.filter(action="login_locked_out", data__via="status page").exists()


def test_sign_in_attempts_are_rate_limited_like_the_api_login(settings):
    # given: at most 2 sign-ins a minute per username
    settings.LOGIN_RATE_PER_USERNAME = "2/min"
    person("agent", Role.AGENT)
    sign_in(Client(), "agent", password="wrong-password-123")
    sign_in(Client(), "agent", password="wrong-password-123")

    # when: a third try comes within the minute (on the page or through the API: the same counter)
    response = sign_in(Client(), "agent")
    api = Client().post("/api/v1/auth/login", {"username": "agent", "password": PASSWORD}, "application/json")

    # then: refused with 429 and when to come back
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many sign-in attempts" in page_text(response)
    assert api.status_code == 429


def test_signing_out_ends_the_session():
    person("agent", Role.AGENT)
    client = Client()
    sign_in(client, "agent")

    response = client.post("/status/logout/")

    assert response.status_code == 302 and response["Location"] == "/status/login/"
    assert client.get("/status/").status_code == 302
    assert AuditEvent.objects.filter(action="logout", actor="user:agent").exists()


def test_an_api_key_cannot_open_the_status_pages(make_api_key):
    key = make_api_key("incidents:read", "incidents:write")

    for path in ("/status/", "/status/incidents/1/"):
        response = Client().get(path, HTTP_AUTHORIZATION=f"Api-Key {key}")
        assert response.status_code == 302 and response["Location"].startswith("/status/login/"), path
    assert Client().post("/status/incidents/1/acknowledge/", HTTP_AUTHORIZATION=f"Api-Key {key}").status_code == 302
