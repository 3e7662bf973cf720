"""No usable token is kept anywhere: sessions store the refresh token's jti, never the token."""

from __future__ import annotations

import json

import pytest
from django.apps import apps
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import LoginSession
from tests.accounts.helpers import bearer, login, person

pytestmark = pytest.mark.django_db


def every_row_as_text() -> str:
    rows = {model._meta.label: list(model.objects.values()) for model in apps.get_models()}
    return json.dumps(rows, default=str)


def test_no_table_holds_an_access_or_refresh_token_after_login_refresh_and_logout():
    # given: a person signed in on two devices, refreshed on one and signed out on the other
    person("kim")
    laptop = login(APIClient(), "kim").json()
    phone = login(APIClient(), "kim").json()
    rotated = APIClient().post("/api/v1/auth/refresh", {"refresh_token": laptop["refresh_token"]}, format="json")
    assert rotated.status_code == 200
    logout = bearer(phone["access_token"]).post(
        "/api/v1/auth/logout", {"refresh_token": phone["refresh_token"]}, format="json"
    )
    assert logout.status_code == 204

    # when: every row of every table is read
    stored = every_row_as_text()

    # then: no token, nor a token's signature, is in any of them; the sessions know only jtis
    issued = [
        laptop["access_token"],
        laptop["refresh_token"],
        phone["access_token"],
        phone["refresh_token"],
        rotated.json()["access_token"],
        rotated.json()["refresh_token"],
    ]
    assert [token[:16] for token in issued if token in stored or token.rsplit(".", 1)[1] in stored] == []
    assert LoginSession.objects.filter(refresh_jti__gt="").count() == 2
    assert not {"token_blacklist_outstandingtoken", "token_blacklist_blacklistedtoken"} & set(
        connection.introspection.table_names()
    )


def test_rotation_and_logout_still_refuse_old_refresh_tokens():
    person("kim")
    first = login(APIClient(), "kim").json()
    client = APIClient()
    second = client.post("/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]}, format="json").json()

    reused = client.post("/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]}, format="json")
    bearer(second["access_token"]).post(
        "/api/v1/auth/logout", {"refresh_token": second["refresh_token"]}, format="json"
    )
    after_logout = client.post("/api/v1/auth/refresh", {"refresh_token": second["refresh_token"]}, format="json")

    assert reused.status_code == 401 and reused.json()["error"]["code"] == "session_ended"
    assert after_logout.status_code == 401 and after_logout.json()["error"]["code"] == "session_ended"
