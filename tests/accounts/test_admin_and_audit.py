"""The Django admin follows the roles; the audit log records who did what and never a secret."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import AuditEvent, Role
from tests.accounts.helpers import PASSWORD, enrol_mfa, person, signed_in, totp_code

pytestmark = pytest.mark.django_db


def admin_login(username: str, otp: str = "") -> Client:
    client = Client()
    client.post("/admin/login/", {"username": username, "password": PASSWORD, "otp_token": otp, "next": "/admin/"})
    return client


@pytest.mark.parametrize(("role", "status"), [(Role.AGENT, 302), (Role.SUPERVISOR, 302), (Role.ADMIN, 200)])
def test_only_admins_and_above_enter_the_admin(settings, role, status):
    settings.MFA_REQUIRED_ROLES = []
    person("someone", role)

    response = admin_login("someone").get("/admin/")

    assert response.status_code == status  # 302: sent back to the sign-in page


def test_an_admin_cannot_open_a_super_admin(settings):
    settings.MFA_REQUIRED_ROLES = []
    person("boss", Role.ADMIN)
    root = person("root", Role.SUPER_ADMIN)
    agent = person("agent", Role.AGENT)
    client = admin_login("boss")

    assert client.get(f"/admin/accounts/user/{agent.pk}/change/").status_code == 200
    assert client.get(f"/admin/accounts/user/{root.pk}/change/").status_code in (302, 403)


def test_the_admin_sign_in_asks_for_the_mfa_code(settings):
    settings.MFA_REQUIRED_ROLES = ["ADMIN", "SUPER_ADMIN"]
    person("boss", Role.ADMIN)

    # without MFA enrolled, the admin refuses a role that requires it
    assert admin_login("boss").get("/admin/").status_code == 302

    api = APIClient()
    api.credentials(
        HTTP_AUTHORIZATION="Bearer "
        + api.post("/api/v1/auth/login", {"username": "boss", "password": PASSWORD}, format="json").json()[
            "access_token"
        ]
    )
    secret, _ = enrol_mfa(api)

    assert admin_login("boss", otp="000000").get("/admin/").status_code == 302
    assert admin_login("boss", otp=totp_code(secret, steps_ahead=1)).get("/admin/").status_code == 200


def test_key_creation_revocation_and_role_changes_are_audited_without_secrets(settings):
    settings.MFA_REQUIRED_ROLES = []
    person("boss", Role.ADMIN)
    agent = person("agent", Role.AGENT)
    client = signed_in("boss")

    created = client.post("/api/v1/api-keys", {"name": "grafana", "scopes": ["alerts:write"]}, format="json").json()
    client.post(f"/api/v1/api-keys/{created['id']}/revoke")
    client.patch(f"/api/v1/users/{agent.pk}", {"role": "SUPERVISOR"}, format="json")

    actions = list(AuditEvent.objects.order_by("pk").values_list("action", "actor", "target"))
    assert ("api_key_created", "user:boss", "api-key:grafana") in actions
    assert ("api_key_revoked", "user:boss", "api-key:grafana") in actions
    role_change = AuditEvent.objects.get(action="role_changed")
    assert role_change.data == {"from": "AGENT", "to": "SUPERVISOR"}
    everything = json.dumps(list(AuditEvent.objects.values()), default=str)
    assert created["key"] not in everything and created["key"].split(".")[1] not in everything
    assert PASSWORD not in everything
    listed = client.get("/api/v1/audit-events", {"action": "role_changed"}).json()
    assert listed["count"] == 1 and listed["results"][0]["target"] == "user:agent"


def test_the_audit_writer_refuses_data_that_looks_like_a_secret():
    from accounts import audit

    with pytest.raises(ValueError, match="secrets"):
        audit.record("login_failed", data={"password": "hunter2"})
