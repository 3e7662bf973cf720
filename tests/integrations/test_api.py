"""The integrations API: the seed's registry and messages, who may use it, and what it never shows."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Role
from integrations.models import Integration, MessageStatus
from tests.accounts.helpers import person
from tests.integrations.receivers import HANG

pytestmark = pytest.mark.django_db

CLIENT_SECRET = "cs-4b1d-never-shown-9f"
SIGNING_SECRET = "whsec-a8c7-never-shown"


@pytest.fixture
def admin_api(settings) -> APIClient:
    settings.MFA_REQUIRED_ROLES = []
    client = APIClient()
    client.force_authenticate(person("integrations-admin", Role.ADMIN))
    return client


@pytest.fixture
def sender(make_api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('integrations:write', name='crm-bridge')}")
    return client


def register(admin_api, **fields) -> dict:
    body = {"integration_id": "ops_hook", "name": "Ops hook", "type": "webhook", "provider": "webhook", **fields}
    response = admin_api.post("/api/v1/integrations", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def send(client, integration_id: str = "ops_hook", **body):
    return client.post(f"/api/v1/integrations/{integration_id}/messages", body, format="json")


def test_an_admin_registers_an_integration_and_its_credentials_come_back_masked(admin_api, receiver):
    # when an admin registers an OAuth2 integration in the seed's shape (auth_type "oauth2" as the seed says)
    created = register(
        admin_api,
        integration_id="crm_salesforce",
        name="Salesforce CRM",
        type="crm",
        endpoint_url=f"{receiver.url}/services/data/v60.0",
        auth_type="oauth2",
        auth_config={"client_id": "my-client", "client_secret": CLIENT_SECRET, "token_url": f"{receiver.url}/token"},
        events=["incident.exhausted"],
    )

    # then the answer names what is set, shows public values, and masks the secret
    assert created["integration_id"] == "crm_salesforce"
    assert created["auth_type"] == "oauth2_client_credentials"
    assert created["auth_config"]["client_secret"] == "••••"
    assert created["auth_config"]["client_id"] == "my-client"
    assert created["methods"] == ["post_event", "request"]
    # and reading it back, alone or in the list, shows no more
    for response in (admin_api.get("/api/v1/integrations"), admin_api.get("/api/v1/integrations/crm_salesforce")):
        assert response.status_code == 200
        assert CLIENT_SECRET not in response.content.decode()


def test_a_credential_is_in_no_column_no_page_and_no_log_line_in_clear(admin_api, admin_client, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    # given an integration with a signing secret and an OAuth2 client secret, and a message sent to it
    register(
        admin_api,
        endpoint_url=receiver.url,
        auth_config={"signing_secret": SIGNING_SECRET, "api_key": CLIENT_SECRET},
        auth_type="api_key",
    )
    receiver.plan((500, {}, f"echo {CLIENT_SECRET} {SIGNING_SECRET}".encode()))
    sent = send(admin_api, message_type="sync", payload={"method": "post_event", "event": "crm.test", "payload": {}})
    assert sent.status_code == 502
    integration = Integration.objects.get()

    # when every integrations table is dumped with raw SQL
    dump = []
    with connection.cursor() as cursor:
        for table in ("integrations_integration", "integrations_outboundmessage", "integrations_deliveryattempt"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 (our own table names)
            dump.append(repr(cursor.fetchall()))
    pages = [
        admin_client.get("/admin/integrations/integration/").content.decode(),
        admin_client.get(f"/admin/integrations/integration/{integration.pk}/change/").content.decode(),
        admin_client.get("/admin/integrations/outboundmessage/").content.decode(),
    ]
    logged = "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records)

    # then neither secret appears anywhere: not stored, not shown, not logged, not in the 502
    for text in (*dump, *pages, logged, sent.content.decode()):
        assert CLIENT_SECRET not in text
        assert SIGNING_SECRET not in text
    # while the receiver got the key it needed, and the admin sees which keys are set
    assert receiver.requests[0].headers["X-API-Key"] == CLIENT_SECRET
    assert "api_key: ••••" in pages[0]


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/hook"])
def test_an_integration_aimed_inside_our_network_is_refused(admin_api, settings, target):
    settings.INTEGRATIONS_ALLOW_PRIVATE_TARGETS = False

    response = admin_api.post(
        "/api/v1/integrations",
        {
            "integration_id": "inside",
            "name": "inside",
            "type": "webhook",
            "provider": "webhook",
            "endpoint_url": target,
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["endpoint_url"].startswith("Refused: ")
    assert not Integration.objects.exists()


def test_a_token_url_aimed_at_the_metadata_service_is_refused(admin_api, settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_TARGETS = False
    config = {"client_id": "c", "client_secret": CLIENT_SECRET, "token_url": "http://169.254.169.254/token"}

    response = admin_api.post(
        "/api/v1/integrations",
        {
            "integration_id": "crm",
            "name": "crm",
            "type": "crm",
            "provider": "webhook",
            "endpoint_url": "https://93.184.215.14/api",
            "auth_type": "oauth2_client_credentials",
            "auth_config": config,
        },
        format="json",
    )

    assert response.status_code == 400
    assert "link-local" in response.json()["error"]["fields"]["auth_config"]
    assert CLIENT_SECRET not in response.content.decode()


def test_missing_credentials_are_named_and_a_duplicate_id_is_a_409(admin_api, receiver):
    missing = admin_api.post(
        "/api/v1/integrations",
        {
            "integration_id": "crm",
            "name": "crm",
            "type": "crm",
            "provider": "webhook",
            "endpoint_url": receiver.url,
            "auth_type": "basic",
            "auth_config": {"username": "u"},
        },
        format="json",
    )
    register(admin_api, endpoint_url=receiver.url)
    duplicate = admin_api.post(
        "/api/v1/integrations",
        {
            "integration_id": "ops_hook",
            "name": "again",
            "type": "webhook",
            "provider": "webhook",
            "endpoint_url": receiver.url,
        },
        format="json",
    )

    assert missing.status_code == 400
    assert missing.json()["error"]["fields"]["auth_config"] == "auth_type basic needs auth_config keys: password."
    assert duplicate.status_code == 409


def test_patch_merges_credentials_and_delete_deactivates(admin_api, receiver, sender):
    register(admin_api, endpoint_url=receiver.url, auth_type="basic", auth_config={"username": "u", "password": "p1"})

    # when the password alone is rotated
    patched = admin_api.patch("/api/v1/integrations/ops_hook", {"auth_config": {"password": "p2"}}, format="json")

    # then the username is kept and the new password used
    assert patched.status_code == 200
    assert Integration.objects.get().auth_config == {"username": "u", "password": "p2"}
    # and when it is deleted, it is only deactivated: no new messages, its record kept
    deleted = admin_api.delete("/api/v1/integrations/ops_hook")
    assert (deleted.status_code, deleted.json()["active"]) == (200, False)
    refused = send(sender, message_type="async", payload={"method": "post_event", "event": "crm.test"})
    assert refused.status_code == 409
    assert "inactive" in refused.json()["error"]["message"]


def test_sync_returns_the_receivers_answer(admin_api, sender, receiver):
    register(admin_api, endpoint_url=receiver.url)
    answer = {"customer": {"id": "12345", "name": "김민수"}}
    receiver.plan((200, {"Content-Type": "application/json"}, json.dumps(answer).encode()))

    response = send(
        sender, message_type="sync", payload={"method": "request", "path": "/customers/12345", "body": {"q": 1}}
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["result"]) == ("delivered", answer)
    [request] = receiver.requests
    assert request.path == "/customers/12345"
    assert request.json() == {"q": 1}


def test_a_provider_error_is_a_502_and_a_timeout_a_504(admin_api, sender, receiver, settings):
    register(admin_api, endpoint_url=receiver.url)
    settings.INTEGRATION_SYNC_TIMEOUT = (0.5, 0.3)
    receiver.plan((503, {}, b"maintenance until 04:00"), HANG)
    payload = {"method": "post_event", "event": "crm.lookup"}

    error = send(sender, message_type="sync", payload=payload)
    timeout = send(sender, message_type="sync", payload=payload)

    assert error.status_code == 502
    assert error.json()["error"]["code"] == "provider_error"
    assert "HTTP 503 Service Unavailable: maintenance until 04:00" in error.json()["error"]["message"]
    assert timeout.status_code == 504
    assert timeout.json()["error"]["code"] == "provider_timeout"


def test_an_unknown_method_lists_the_methods_and_a_bad_field_is_named(admin_api, sender, receiver):
    register(admin_api, endpoint_url=receiver.url)

    unknown = send(sender, message_type="sync", payload={"method": "get_customer_info", "customer_id": "1"})
    bad = send(sender, message_type="async", payload={"method": "request", "path": "no-slash"})

    assert unknown.status_code == 400
    assert "its methods are: post_event, request" in unknown.json()["error"]["message"]
    assert bad.status_code == 400
    assert "payload.path" in bad.json()["error"]["fields"]
    assert receiver.requests == []


def test_an_idempotency_key_sends_once_and_returns_the_same_message(admin_api, sender, receiver):
    register(admin_api, endpoint_url=receiver.url)
    body = {"message_type": "sync", "payload": {"method": "post_event", "event": "crm.note"}, "idempotency_key": "k-1"}

    first = sender.post("/api/v1/integrations/ops_hook/messages", body, format="json")
    again = sender.post("/api/v1/integrations/ops_hook/messages", body, format="json")

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["message_id"] == again.json()["message_id"]
    assert len(receiver.requests) == 1


def test_the_role_matrix(admin_api, sender, make_api_key, settings, receiver):
    register(admin_api, endpoint_url=receiver.url)
    supervisor = APIClient()
    supervisor.force_authenticate(person("sup", Role.SUPERVISOR))
    other_key = APIClient()
    other_key.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('incidents:read', name='ro')}")
    message = {"message_type": "async", "payload": {"method": "post_event", "event": "crm.x"}}

    # the registry: ADMIN people only, never an API key
    assert admin_api.get("/api/v1/integrations").status_code == 200
    assert sender.get("/api/v1/integrations").status_code == 403
    assert sender.post("/api/v1/integrations", {}, format="json").status_code == 403
    assert supervisor.get("/api/v1/integrations/ops_hook").status_code == 403
    assert APIClient().get("/api/v1/integrations").status_code == 401
    # messages: an API key with integrations:write, or ADMIN
    assert sender.post("/api/v1/integrations/ops_hook/messages", message, format="json").status_code == 202
    assert admin_api.get("/api/v1/integrations/ops_hook/messages").status_code == 200
    assert other_key.post("/api/v1/integrations/ops_hook/messages", message, format="json").status_code == 403
    assert supervisor.get("/api/v1/integrations/ops_hook/messages").status_code == 403
    assert sender.get("/api/v1/integrations/nope/messages").status_code == 404


def test_messages_are_listed_by_status_with_every_attempt(admin_api, sender, receiver):
    register(admin_api, endpoint_url=receiver.url)
    receiver.plan((404, {}, b"no such hook"))
    failed = send(sender, message_type="sync", payload={"method": "post_event", "event": "crm.a"})
    delivered = send(sender, message_type="sync", payload={"method": "post_event", "event": "crm.b"})
    failed_id = failed.json()["error"]["fields"]["message_id"]

    listed = sender.get("/api/v1/integrations/ops_hook/messages", {"status": "failed"}).json()
    detail = sender.get(f"/api/v1/integrations/ops_hook/messages/{failed_id}").json()

    assert [row["message_id"] for row in listed["results"]] == [failed_id]
    assert delivered.json()["status"] == MessageStatus.DELIVERED
    [attempt] = detail["delivery_attempts"]
    assert (attempt["outcome"], attempt["http_status"]) == ("failed", 404)
    assert "no such hook" in attempt["error"]
