"""Rotating the credential key: after a new key is put first, the re-seal command moves every
integration's credentials under it, and the retired key can leave the ring."""

from __future__ import annotations

import base64
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import AuditAction, AuditEvent
from integrations.models import Integration
from tests.integrations.conftest import build_integration

pytestmark = pytest.mark.django_db

OLD = "old-1:" + base64.b64encode(b"o" * 32).decode()
NEW = "new-2:" + base64.b64encode(b"n" * 32).decode()


def test_resealing_moves_credentials_to_the_new_key_so_the_old_one_can_go(settings):
    # given two integrations sealed under the old key, and one with no credentials
    settings.INTEGRATIONS_CREDENTIAL_KEYS = OLD
    build_integration("crm-hook", target="https://crm.example.com/hook", secret="s3cret-signing-key")
    build_integration("ops-hook", target="https://ops.example.com/hook", auth_config={"api_key": "k-123456789"})
    build_integration("plain-hook", target="https://plain.example.com/hook")

    # when a new key is put first and the command runs
    settings.INTEGRATIONS_CREDENTIAL_KEYS = f"{NEW},{OLD}"
    out = StringIO()
    call_command("reseal_integration_credentials", stdout=out)

    # then both are sealed under the new key, and open without the old one
    assert "2 integration(s) re-sealed under credential key 'new-2'" in out.getvalue()
    settings.INTEGRATIONS_CREDENTIAL_KEYS = NEW
    crm = Integration.objects.get(integration_id="crm-hook")
    assert crm.auth_config_sealed.startswith("v1:new-2:")
    assert crm.auth_config == {"signing_secret": "s3cret-signing-key"}
    assert Integration.objects.get(integration_id="ops-hook").auth_config == {"api_key": "k-123456789"}
    assert Integration.objects.get(integration_id="plain-hook").auth_config == {}
    # and each move is in the audit log, without the secret
    moves = AuditEvent.objects.filter(action=AuditAction.INTEGRATION_CHANGED, data__resealed=True)
    assert moves.count() == 2
    assert all(event.data["now_under"] == "new-2" for event in moves)
    assert not any("s3cret" in str(event.data) for event in moves)

    # and a second run has nothing to do
    again = StringIO()
    call_command("reseal_integration_credentials", stdout=again)
    assert again.getvalue().startswith("0 integration(s)")


def test_resealing_without_the_key_a_value_was_sealed_under_stops_and_says_so(settings):
    settings.INTEGRATIONS_CREDENTIAL_KEYS = OLD
    build_integration("crm-hook", target="https://crm.example.com/hook", secret="s3cret-signing-key")
    settings.INTEGRATIONS_CREDENTIAL_KEYS = NEW  # the old key was removed before re-sealing

    with pytest.raises(Exception, match="'old-1' is not in INTEGRATIONS_CREDENTIAL_KEYS") as raised:
        call_command("reseal_integration_credentials")

    assert "s3cret" not in str(raised.value)
    assert Integration.objects.get(integration_id="crm-hook").auth_config_sealed.startswith("v1:old-1:")
