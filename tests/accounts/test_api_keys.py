"""API keys as a monitoring system uses them: created once by a command, sent on every request."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import APIKey
from accounts.services import create_api_key, revoke_api_key

pytestmark = pytest.mark.django_db


def _create_with_command(*args: str) -> tuple[str, str]:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    text = out.getvalue()
    return text, text.strip().splitlines()[-1]


def test_a_key_created_with_the_command_authenticates(api_client):
    # given a key made by the management command
    _, raw_key = _create_with_command("alertmanager", "--scopes", "alerts:write,incidents:read")

    # when a system calls the API with it
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    response = api_client.get("/api/v1/auth/me")

    # then it is recognised with its scopes
    assert response.status_code == 200
    assert response.json() == {
        "kind": "api_key",
        "username": "api-key:alertmanager",
        "role": None,
        "scopes": ["alerts:write", "incidents:read"],
        "mfa_enabled": False,
        "mfa_pending": False,
    }
    assert raw_key.startswith("ock_")
    assert APIKey.objects.get().last_used_at is not None


def test_the_key_is_never_stored_in_clear():
    _, raw_key = _create_with_command("grafana", "--scopes", "alerts:write")

    api_key = APIKey.objects.get()
    stored = " ".join(str(value) for value in APIKey.objects.values_list().get())
    assert raw_key not in stored
    assert raw_key.split(".", 1)[1] not in stored
    assert api_key.hashed_key != raw_key


def test_unknown_scope_is_refused_by_the_command():
    with pytest.raises(CommandError, match="Unknown scope"):
        _create_with_command("typo", "--scopes", "alerts:wirte")
    assert not APIKey.objects.exists()


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Api-Key ock_000000000000.not-a-real-secret", "Invalid API key."),
        ("Api-Key garbage", "Invalid API key."),
        ("Api-Key", "Malformed Authorization header"),
    ],
)
def test_a_wrong_key_gets_401_with_a_clear_message(api_client, header, message):
    create_api_key(name="real", scopes=["alerts:write"])
    api_client.credentials(HTTP_AUTHORIZATION=header)

    response = api_client.get("/api/v1/auth/me")

    assert response.status_code == 401
    assert message in response.json()["error"]["message"]
    assert response["WWW-Authenticate"].startswith("Api-Key")


def test_a_right_prefix_with_a_wrong_secret_is_refused(api_client):
    _, raw_key = create_api_key(name="real", scopes=["alerts:write"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key[:-2]}xx")

    response = api_client.get("/api/v1/auth/me")

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid API key."


def test_a_revoked_key_gets_401(api_client):
    api_key, raw_key = create_api_key(name="old", scopes=["alerts:write"])
    revoke_api_key(api_key)
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")

    response = api_client.get("/api/v1/auth/me")

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This API key has been revoked."


def test_an_expired_key_gets_401(api_client):
    api_key, raw_key = create_api_key(
        name="temp", scopes=["alerts:write"], expires_at=timezone.now() + timedelta(days=1)
    )
    # a day later: the key's expiry has passed
    APIKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")

    response = api_client.get("/api/v1/auth/me")

    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_no_credentials_gets_401(api_client):
    response = api_client.get("/api/v1/auth/me")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
