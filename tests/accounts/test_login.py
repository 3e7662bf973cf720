"""Signing in with JWTs, as a person and as an attacker would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import AuditEvent, LoginSession
from tests.accounts.helpers import PASSWORD, bearer, login, person

pytestmark = pytest.mark.django_db


def test_a_person_signs_in_and_the_access_token_identifies_them(api_client):
    person("kim", "AGENT")

    response = login(api_client, "kim")

    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == "kim" and body["user"]["role"] == "AGENT"
    assert body["mfa_pending"] is False
    me = bearer(body["access_token"]).get("/api/v1/auth/me").json()
    assert (me["kind"], me["username"], me["role"]) == ("user", "kim", "AGENT")
    success = AuditEvent.objects.get(action="login_succeeded")
    assert success.actor == "user:kim" and success.ip == "127.0.0.1"


def test_a_wrong_password_is_401_and_audited_without_the_password(api_client):
    person("kim")

    response = login(api_client, "kim", password="guess-123456", HTTP_USER_AGENT="curl/8")

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid username or password."
    failure = AuditEvent.objects.get(action="login_failed")
    assert failure.target == "user:kim" and failure.ip == "127.0.0.1"
    assert "guess-123456" not in str(AuditEvent.objects.values())


def test_an_expired_access_token_is_refused(api_client):
    kim = person("kim")
    login(api_client, "kim")
    # a token of a live session, correctly signed, whose lifetime has passed
    expired = AccessToken()
    expired["user_id"] = str(kim.pk)
    expired["sid"] = LoginSession.objects.get(user=kim).pk
    expired.set_exp(from_time=timezone.now() - timedelta(hours=1))

    response = bearer(str(expired)).get("/api/v1/auth/me")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"


def test_refresh_rotates_and_the_used_refresh_token_is_refused(api_client):
    person("kim")
    first = login(api_client, "kim").json()

    rotated = api_client.post("/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]}, format="json")
    replayed = api_client.post("/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]}, format="json")

    assert rotated.status_code == 200
    assert rotated.json()["refresh_token"] != first["refresh_token"]
    assert bearer(rotated.json()["access_token"]).get("/api/v1/auth/me").status_code == 200
    assert replayed.status_code == 401


def test_logout_ends_the_refresh_token_and_the_access_token(api_client):
    person("kim")
    tokens = login(api_client, "kim").json()
    client = bearer(tokens["access_token"])

    assert (
        client.post("/api/v1/auth/logout", {"refresh_token": tokens["refresh_token"]}, format="json").status_code == 204
    )

    refresh = api_client.post("/api/v1/auth/refresh", {"refresh_token": tokens["refresh_token"]}, format="json")
    assert refresh.status_code == 401
    assert client.get("/api/v1/auth/me").status_code == 401
    assert AuditEvent.objects.filter(action="logout", actor="user:kim").exists()


def test_a_person_lists_and_ends_their_own_sessions(api_client):
    person("kim")
    person("lee")
    laptop = bearer(login(api_client, "kim", HTTP_USER_AGENT="laptop").json()["access_token"])
    phone = bearer(login(APIClient(), "kim", HTTP_USER_AGENT="phone").json()["access_token"])
    others = bearer(login(APIClient(), "lee").json()["access_token"])

    sessions = laptop.get("/api/v1/auth/sessions").json()
    assert sorted(session["user_agent"] for session in sessions) == ["laptop", "phone"]
    phone_session = next(session for session in sessions if session["user_agent"] == "phone")
    assert others.delete(f"/api/v1/auth/sessions/{phone_session['id']}").status_code == 404

    assert laptop.delete(f"/api/v1/auth/sessions/{phone_session['id']}").status_code == 204

    assert phone.get("/api/v1/auth/me").status_code == 401
    assert laptop.get("/api/v1/auth/me").status_code == 200


def test_repeated_failures_lock_the_account_and_an_admin_unlocks_it(api_client, settings):
    person("kim")
    person("boss", "ADMIN")
    settings.MFA_REQUIRED_ROLES = []
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(api_client, "kim", password="wrong-password-1").status_code == 401
    assert login(api_client, "kim", password="wrong-password-1").status_code == 429  # the last straw

    locked = login(APIClient(REMOTE_ADDR="10.9.9.9"), "kim")  # even the right password, from elsewhere

    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "locked_out"
    assert "locked for 15 minutes" in locked.json()["error"]["message"]
    boss = bearer(login(APIClient(REMOTE_ADDR="10.1.1.1"), "boss").json()["access_token"])
    kim_id = boss.get("/api/v1/users").json()
    kim_id = next(user["id"] for user in kim_id if user["username"] == "kim")
    assert boss.post(f"/api/v1/users/{kim_id}/unlock").status_code == 204
    assert login(api_client, "kim").status_code == 200
    assert AuditEvent.objects.filter(action="lockout_cleared", target="user:kim").exists()


def test_a_disabled_account_cannot_sign_in(api_client):
    user = person("kim")
    user.is_active = False
    user.save()

    assert login(api_client, "kim", password=PASSWORD).status_code == 401
