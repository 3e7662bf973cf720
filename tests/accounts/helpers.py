"""People for account tests, made the way production makes them."""

from __future__ import annotations

import time

import pyotp
from rest_framework.test import APIClient

from accounts.services import register_user

PASSWORD = "correct-horse-battery-staple"


def person(username: str, role: str = "VIEWER"):
    return register_user(username=username, password=PASSWORD, role=role)


def login(client: APIClient, username: str, password: str = PASSWORD, mfa_token: str | None = None, **headers):
    body = {"username": username, "password": password}
    if mfa_token is not None:
        body["mfa_token"] = mfa_token
    return client.post("/api/v1/auth/login", body, format="json", **headers)


def bearer(access_token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token}")
    return client


def signed_in(username: str, mfa_token: str | None = None) -> APIClient:
    response = login(APIClient(), username, mfa_token=mfa_token)
    assert response.status_code == 200, response.content
    return bearer(response.json()["access_token"])


def totp_code(secret: str, steps_ahead: int = 0) -> str:
    """The code an authenticator shows now (or for the next 30-second step, still accepted)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def enrol_mfa(client: APIClient) -> tuple[str, list[str]]:
    secret = client.post("/api/v1/auth/mfa/enrol").json()["secret"]
    confirmed = client.post("/api/v1/auth/mfa/confirm", {"token": totp_code(secret)}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    return secret, confirmed.json()["recovery_codes"]
