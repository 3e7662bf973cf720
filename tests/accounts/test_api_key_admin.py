"""API keys are created in the admin: scopes ticked from a list, the key shown once, never again."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import APIKey, Role
from accounts.selectors import api_key_from_secret
from tests.accounts.helpers import PASSWORD, person

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(settings) -> Client:
    settings.MFA_REQUIRED_ROLES = []
    person("ops", Role.ADMIN)
    client = Client()
    client.post("/admin/login/", {"username": "ops", "password": PASSWORD, "next": "/admin/"})
    return client


def test_an_admin_creates_a_key_with_scopes_from_a_list_and_sees_it_once(admin_client):
    # given the add form lists the scopes as checkboxes
    form = admin_client.get("/admin/accounts/apikey/add/").content.decode()
    assert 'type="checkbox" name="scope_choices" value="alerts:write"' in form

    # when the admin names the key and ticks two scopes
    response = admin_client.post(
        "/admin/accounts/apikey/add/",
        {"name": "grafana", "scope_choices": ["alerts:write", "incidents:read"], "expires_at_0": ""},
        follow=True,
    )

    # then the next page shows the key, which works, and reloading never shows it again
    page = response.content.decode()
    key = APIKey.objects.get(name="grafana")
    assert key.scopes == ["alerts:write", "incidents:read"] and key.created_by.username == "ops"
    shown = page.split('<code class="oc-new-key">')[1].split("</code>")[0]
    assert api_key_from_secret(shown).pk == key.pk
    assert shown not in admin_client.get(f"/admin/accounts/apikey/{key.pk}/change/").content.decode()


def test_the_new_key_never_travels_in_a_cookie(admin_client):
    # when a key is created: the answer redirects to the page that shows it once
    created = admin_client.post(
        "/admin/accounts/apikey/add/", {"name": "prometheus", "scope_choices": ["alerts:write"], "expires_at_0": ""}
    )
    page = admin_client.get(created["Location"]).content.decode()
    shown = page.split('<code class="oc-new-key">')[1].split("</code>")[0]

    # then the redirect set no cookie holding it: the message waited on the server, not in the browser
    assert "messages" not in created.cookies
    assert shown not in " ".join(morsel.value for morsel in created.cookies.values())


def test_a_key_needs_a_scope_and_a_future_expiry(admin_client):
    response = admin_client.post(
        "/admin/accounts/apikey/add/",
        {"name": "late", "scope_choices": [], "expires_at_0": "2001-01-01", "expires_at_1": "00:00:00"},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "This field is required." in page and "has already passed" in page
    assert not APIKey.objects.filter(name="late").exists()
