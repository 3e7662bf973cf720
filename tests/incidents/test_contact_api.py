"""Contacts through the API: phone numbers must be E.164, and a bad one is refused by name."""

from __future__ import annotations

import pytest

from incidents.models import Contact

pytestmark = pytest.mark.django_db


def test_a_contact_is_created_with_an_e164_number(system_client):
    response = system_client.post("/api/v1/contacts", {"name": "김당직", "phone": "+821012345678"}, format="json")

    assert response.status_code == 201
    assert response.json()["language"] == "ko-KR"
    assert Contact.objects.get().phone == "+821012345678"


@pytest.mark.parametrize("phone", ["010-1234-5678", "821012345678", "+0101234", "+82 10 1234 5678", ""])
def test_a_number_that_is_not_e164_is_a_400_naming_the_phone(system_client, phone):
    response = system_client.post("/api/v1/contacts", {"name": "김당직", "phone": phone}, format="json")

    assert response.status_code == 400
    assert "phone" in response.json()["error"]["fields"]
    assert not Contact.objects.exists()


def test_a_bad_update_changes_nothing(system_client):
    created = system_client.post("/api/v1/contacts", {"name": "Lee", "phone": "+821011112222"}, format="json").json()

    response = system_client.patch(f"/api/v1/contacts/{created['id']}", {"phone": "12345"}, format="json")

    assert response.status_code == 400
    assert Contact.objects.get().phone == "+821011112222"


def test_a_read_only_key_cannot_create_contacts(api_client, make_api_key):
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('incidents:read')}")

    assert api_client.get("/api/v1/contacts").status_code == 200
    response = api_client.post("/api/v1/contacts", {"name": "x", "phone": "+821011112222"}, format="json")
    assert response.status_code == 403
    assert "policies:write" in response.json()["error"]["message"]


def test_an_unknown_contact_is_a_json_404(system_client):
    response = system_client.get("/api/v1/contacts/999")

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Contact 999 does not exist."
