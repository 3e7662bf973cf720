"""TOTP MFA: enrolment, sign-in with a code, replay refused, recovery codes, required for admins."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent, MFADevice
from tests.accounts.helpers import bearer, enrol_mfa, login, person, signed_in, totp_code

pytestmark = pytest.mark.django_db


def test_enrolment_gives_an_authenticator_uri_and_recovery_codes():
    person("kim", "AGENT")
    client = signed_in("kim")

    enrolment = client.post("/api/v1/auth/mfa/enrol").json()
    assert enrolment["provisioning_uri"].startswith("otpauth://totp/")
    assert "kim" in enrolment["provisioning_uri"]
    codes = client.post("/api/v1/auth/mfa/confirm", {"token": totp_code(enrolment["secret"])}, format="json")

    assert codes.status_code == 200 and len(codes.json()["recovery_codes"]) == 10
    assert client.get("/api/v1/auth/me").json()["mfa_enabled"] is True
    assert enrolment["secret"] not in MFADevice.objects.get().encrypted_secret  # encrypted at rest
    assert AuditEvent.objects.filter(action="mfa_enrolled", actor="user:kim").exists()


def test_a_wrong_confirmation_code_does_not_turn_mfa_on():
    person("kim")
    client = signed_in("kim")
    client.post("/api/v1/auth/mfa/enrol")

    response = client.post("/api/v1/auth/mfa/confirm", {"token": "000000"}, format="json")

    assert response.status_code == 400 and "token" in response.json()["error"]["fields"]
    assert client.get("/api/v1/auth/me").json()["mfa_enabled"] is False


def test_with_mfa_on_sign_in_needs_a_right_code_and_each_code_works_once(api_client):
    person("kim")
    secret, _ = enrol_mfa(signed_in("kim"))

    without = login(api_client, "kim")
    wrong = login(api_client, "kim", mfa_token="123456")
    right = login(api_client, "kim", mfa_token=totp_code(secret, steps_ahead=1))
    replayed = login(api_client, "kim", mfa_token=totp_code(secret, steps_ahead=1))

    assert without.status_code == 401 and without.json()["error"]["code"] == "mfa_required"
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "mfa_invalid"
    assert right.status_code == 200
    assert replayed.status_code == 401 and replayed.json()["error"]["code"] == "mfa_invalid"


def test_a_recovery_code_signs_in_once(api_client):
    person("kim")
    _, recovery_codes = enrol_mfa(signed_in("kim"))

    first = login(api_client, "kim", mfa_token=recovery_codes[0])
    again = login(api_client, "kim", mfa_token=recovery_codes[0])

    assert first.status_code == 200
    assert again.status_code == 401
    assert AuditEvent.objects.filter(action="recovery_code_used").count() == 1


def test_disabling_mfa_needs_a_code(api_client):
    person("kim")
    client = signed_in("kim")
    secret, _ = enrol_mfa(client)

    refused = client.post("/api/v1/auth/mfa/disable", {"token": "999999"}, format="json")
    disabled = client.post("/api/v1/auth/mfa/disable", {"token": totp_code(secret, steps_ahead=1)}, format="json")

    assert refused.status_code == 400
    assert disabled.status_code == 204
    assert login(api_client, "kim").status_code == 200
    assert AuditEvent.objects.filter(action="mfa_disabled").exists()


def test_an_admin_without_mfa_can_only_enrol_until_they_prove_it(settings):
    settings.MFA_REQUIRED_ROLES = ["ADMIN", "SUPER_ADMIN"]
    person("boss", "ADMIN")
    signin = login(APIClient(), "boss").json()
    client = bearer(signin["access_token"])

    assert signin["mfa_pending"] is True
    refused = client.get("/api/v1/users")
    assert refused.status_code == 403
    assert "requires MFA" in refused.json()["error"]["message"]
    assert client.get("/api/v1/incidents").status_code == 403

    enrol_mfa(client)  # proving possession in this session lifts the restriction

    assert client.get("/api/v1/users").status_code == 200


def test_an_admin_with_mfa_signs_in_with_a_code_and_works(settings):
    settings.MFA_REQUIRED_ROLES = ["ADMIN", "SUPER_ADMIN"]
    person("boss", "ADMIN")
    secret, _ = enrol_mfa(bearer(login(APIClient(), "boss").json()["access_token"]))

    client = signed_in("boss", mfa_token=totp_code(secret, steps_ahead=1))

    assert client.get("/api/v1/users").status_code == 200
