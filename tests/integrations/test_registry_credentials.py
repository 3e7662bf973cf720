"""Changing an integration never writes back credentials older than the stored ones: a worker may
rotate a token (X's refresh token) between the moment a page or the API read the integration and the
moment the change is saved."""

from __future__ import annotations

import pytest

from integrations import registry
from integrations.models import Integration

pytestmark = pytest.mark.django_db


def x_integration() -> Integration:
    integration = Integration(
        integration_id="x_ops",
        name="X ops",
        type="social",
        provider="x",
        auth_type="oauth2_refresh_token",
        options={"participant_id": "1234567890"},
    )
    integration.set_auth_config(
        {"token_url": "https://api.x.com/2/oauth2/token", "client_id": "client", "refresh_token": "rt-1"}
    )
    integration.save()
    return integration


def rotate_refresh_token(to: str) -> None:
    """What a worker does after a refresh: the new refresh token stored at once."""
    fresh = Integration.objects.get(integration_id="x_ops")
    fresh.set_auth_config({**fresh.auth_config, "refresh_token": to})
    fresh.save(update_fields=["auth_config_sealed", "auth_config_keys"])


def test_a_change_of_name_keeps_a_token_rotated_after_the_integration_was_read():
    # given an integration read by the API, and a worker rotating its refresh token just after
    read_earlier = x_integration()
    rotate_refresh_token("rt-2")

    # when the earlier read is used to rename it
    registry.update_integration(read_earlier, {"name": "X operations"})

    # then the new name is stored and the rotated token survives
    stored = Integration.objects.get(integration_id="x_ops")
    assert stored.name == "X operations"
    assert stored.auth_config["refresh_token"] == "rt-2"


def test_a_change_of_one_credential_is_applied_to_the_stored_ones_not_to_the_earlier_read():
    read_earlier = x_integration()
    rotate_refresh_token("rt-3")

    # when a person replaces the client id (and only it) through the API's merge
    registry.update_integration(read_earlier, {"auth_config": {"client_id": "client-2"}})

    stored = Integration.objects.get(integration_id="x_ops").auth_config
    assert (stored["client_id"], stored["refresh_token"]) == ("client-2", "rt-3")
