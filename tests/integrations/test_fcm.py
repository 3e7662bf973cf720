"""Push notifications through Firebase Cloud Messaging (HTTP v1), authenticated by a Google service
account: google-auth gets the token from the account's token_uri (a local stand-in for Google, see
fcm_server.py), every message shares it until it expires, and FCM's verdicts decide what is retried."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from config.redis import redis_client
from integrations.models import DeliveryAttempt, Integration, MessageStatus
from integrations.providers.fcm import ERROR_HINTS
from integrations.services import deliver, notify
from tests.accounts.helpers import person
from tests.integrations.conftest import EXHAUSTED_PAYLOAD
from tests.integrations.fcm_server import MESSAGING_SCOPE, FCMServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def fcm():
    with FCMServer(project_id="oncall-alerts") as server:
        yield server


@pytest.fixture
def admin_api(settings) -> APIClient:
    settings.MFA_REQUIRED_ROLES = []
    client = APIClient()
    client.force_authenticate(person("push-admin", Role.ADMIN))
    return client


def push_integration(server: FCMServer, *, integration_id: str = "oncall_push", **options) -> Integration:
    """FCM as an admin registers it: the service account's key file as the credentials, the topic
    the on-call app subscribes to, and the endpoint (here, the local stand-in)."""
    integration = Integration(
        integration_id=integration_id,
        name="On-call app",
        type="notification",
        provider="fcm",
        endpoint_url=server.url,
        auth_type="service_account",
        options=options or {"topic": "oncall"},
    )
    integration.set_auth_config(server.service_account())
    integration.full_clean()
    integration.save()
    return integration


def send(client: APIClient, integration_id: str, **body):
    return client.post(f"/api/v1/integrations/{integration_id}/messages", body, format="json")


def test_an_exhausted_incident_reaches_the_topic_as_an_fcm_message_in_korean(fcm):
    # given the on-call app's topic, reached through FCM with a service account
    push_integration(fcm)

    # when nobody acknowledged an incident and the notification is delivered
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    message = deliver(message.pk)

    # then FCM received one message for the topic, in Korean, with data the app can open the incident with
    [push] = fcm.pushes
    assert push.project == "oncall-alerts"
    assert push.message["topic"] == "oncall"
    assert push.message["notification"]["title"] == "[CRITICAL] 아무도 확인하지 않음"
    body = push.message["notification"]["body"]
    assert body.startswith("Disk full on db-1.")
    for fact in ("심각도: 치명.", "상태: 호출 중.", "인시던트: #42.", "통화 시도: 5회.", "사유: nobody pressed 1"):
        assert fact in body
    assert push.message["data"] == {
        "event": "incident.exhausted",
        "incident_id": "42",
        "severity": "critical",
        "state": "triggered",
        "url": "http://127.0.0.1:8000/api/v1/incidents/42",
    }
    # and the token came from a grant signed by the service account, for FCM's scope only
    [grant] = fcm.grants
    assert grant["iss"] == "fcm-sender@oncall-alerts.iam.gserviceaccount.com"
    assert grant["scope"] == MESSAGING_SCOPE
    assert message.status == MessageStatus.DELIVERED


def test_english_texts_when_the_integration_asks_for_them(fcm):
    push_integration(fcm, topic="oncall", language="en")

    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    deliver(message.pk)

    [push] = fcm.pushes
    assert push.message["notification"]["title"] == "[CRITICAL] Nobody acknowledged"
    assert "Call attempts: 5." in push.message["notification"]["body"]


def test_a_sync_push_to_one_device_returns_the_name_fcm_gave_it(system_client, fcm):
    push_integration(fcm)

    response = send(
        system_client,
        "oncall_push",
        message_type="sync",
        payload={
            "method": "send_push",
            "token": "device-token-kim",
            "title": "DB 응답 지연",
            "body": "db-1 p99 2.4초",
            "data": {"incident_id": "42", "action": "open"},
        },
    )

    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["status"] == "delivered"
    assert answer["result"]["name"].startswith("projects/oncall-alerts/messages/")
    [push] = fcm.pushes
    assert push.message == {
        "token": "device-token-kim",
        "notification": {"title": "DB 응답 지연", "body": "db-1 p99 2.4초"},
        "data": {"incident_id": "42", "action": "open"},
    }


def test_the_token_is_fetched_once_and_every_later_message_reuses_it(fcm):
    # given three incidents to push
    push_integration(fcm)
    messages = [
        notify("incident.triggered", {**EXHAUSTED_PAYLOAD, "incident_id": n}, dedup_key=f"incident:{n}:triggered")[0]
        for n in (1, 2, 3)
    ]

    # when each is delivered
    for message in messages:
        assert deliver(message.pk).status == MessageStatus.DELIVERED

    # then Google was asked for a token once, and all three pushes carried it
    assert len(fcm.grants) == 1
    assert len({push.access_token for push in fcm.pushes}) == 1
    assert len(fcm.pushes) == 3
    # and the token every worker shares is kept in Redis sealed, never in clear
    [key] = redis_client().keys("oncall:integration-token:oncall_push:*")
    sealed = redis_client().get(key)
    assert fcm.pushes[0].access_token not in (sealed.decode("latin-1") if isinstance(sealed, bytes) else sealed)


def test_an_expired_token_is_renewed_once_and_the_push_still_goes_out(fcm):
    push_integration(fcm)
    [first] = notify("incident.triggered", EXHAUSTED_PAYLOAD, dedup_key="incident:42:triggered")
    deliver(first.pk)

    # given the token's hour has run out at Google, while our cache still holds it
    fcm.expire_tokens()
    [second] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when the next push goes out
    second = deliver(second.pk)

    # then FCM said 401 once, a new token was fetched, and the push went out in the same attempt
    assert [status for status, _ in fcm.refused] == [401]
    assert len(fcm.grants) == 2
    assert (second.status, second.attempts) == (MessageStatus.DELIVERED, 1)
    assert fcm.pushes[1].access_token != fcm.pushes[0].access_token


def test_an_unregistered_device_fails_at_once_and_is_not_tried_again(fcm, fast_retries):
    # given a device whose app was removed
    push_integration(fcm, token="device-token-gone")
    fcm.unregister("device-token-gone")
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when delivery is tried, and the task runs again
    message = deliver(message.pk)
    again = deliver(message.pk)

    # then the message failed for good after one attempt, saying why in FCM's words
    assert (message.status, message.attempts) == (MessageStatus.FAILED, 1)
    assert "UNREGISTERED" in message.last_error
    assert "stop sending to it" in message.last_error
    assert (again.status, again.attempts) == (MessageStatus.FAILED, 1)
    assert [status for status, _ in fcm.refused] == [404]
    assert fcm.pushes == []


@pytest.mark.parametrize(("code", "status"), [("UNREGISTERED", 404), ("SENDER_ID_MISMATCH", 403)])
def test_fcms_error_code_is_read_from_its_details_even_after_a_long_message(fcm, fast_retries, code, status):
    # given FCM refusing the push with a long message, its FcmError code in the details after it
    push_integration(fcm, token="device-token-kim")
    long_message = "The registration token is not valid for this project: " + "device-token-kim " * 40
    fcm.plan((code, None, long_message))
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when delivery is tried
    message = deliver(message.pk)

    # then FCM's own code names the failure (not a guess from the HTTP status), with what to do about it
    # and FCM's message read from its answer (not a cut excerpt of its JSON)
    assert (message.status, message.attempts) == (MessageStatus.FAILED, 1)
    assert message.last_error.startswith(f"Permanent failure: FCM {code}: {ERROR_HINTS[code]}.")
    assert f"(HTTP {status}: The registration token is not valid for this project: device-token" in message.last_error
    assert [refused for refused, _ in fcm.refused] == [status]


@pytest.mark.parametrize(("code", "retry_after"), [("QUOTA_EXCEEDED", 30), ("UNAVAILABLE", 45)])
def test_quota_and_outages_are_retried_after_fcms_retry_after(fcm, code, retry_after):
    push_integration(fcm)
    fcm.plan((code, retry_after))
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    before = timezone.now()
    message = deliver(message.pk)

    assert (message.status, message.attempts) == (MessageStatus.PENDING, 1)
    assert code in message.last_error
    wait = message.next_attempt_at - before
    assert timedelta(seconds=retry_after - 1) <= wait <= timedelta(seconds=retry_after * 1.25 + 2)


def test_google_down_is_worth_another_try_and_is_asked_only_once(fcm):
    # given Google's token endpoint answering 503
    push_integration(fcm)
    fcm.fail_next_grants(503)
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    message = deliver(message.pk)

    # then the message waits for a retry of ours (google-auth's own sleep-and-retry loop never ran)
    assert (message.status, message.attempts) == (MessageStatus.PENDING, 1)
    assert "answered HTTP 503" in message.last_error
    assert [status for status, _ in fcm.refused] == [503]
    assert fcm.pushes == []


def test_push_input_fcm_would_refuse_is_a_400_naming_the_field(system_client, fcm):
    push_integration(fcm)
    base = {"method": "send_push", "title": "t", "body": "b"}

    both = send(system_client, "oncall_push", message_type="sync", payload={**base, "token": "d", "topic": "oncall"})
    neither = send(system_client, "oncall_push", message_type="sync", payload=base)
    reserved = send(
        system_client, "oncall_push", message_type="sync", payload={**base, "topic": "oncall", "data": {"from": "x"}}
    )
    bad_topic = send(system_client, "oncall_push", message_type="sync", payload={**base, "topic": "/topics/oncall"})
    no_title = send(system_client, "oncall_push", message_type="sync", payload={"method": "send_push", "topic": "a"})

    for response, field in (
        (both, "payload.token"),
        (neither, "payload.token"),
        (reserved, "payload.data"),
        (bad_topic, "payload.topic"),
        (no_title, "payload.title"),
    ):
        assert response.status_code == 400, response.content
        assert field in response.json()["error"]["fields"]
    assert "from" in reserved.json()["error"]["fields"]["payload.data"]
    assert fcm.grants == [] and fcm.pushes == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"auth_type": "bearer"}, "auth_type"),
        ({"options": {}}, "options"),
        ({"options": {"topic": "oncall", "token": "device"}}, "options"),
        ({"options": {"topic": "oncall", "language": "fr"}}, "options"),
        ({"options": {"topic": "oncall", "project_id": "Not A Project"}}, "options"),
    ],
)
def test_an_fcm_integration_needs_a_service_account_a_target_and_a_known_language(fcm, change, field):
    integration = Integration(
        integration_id="push", name="push", type="notification", provider="fcm", auth_type="service_account"
    )
    integration.options = {"topic": "oncall"}
    integration.set_auth_config(fcm.service_account())
    for name, value in change.items():
        setattr(integration, name, value)
    if change.get("auth_type") == "bearer":
        integration.set_auth_config({"token": "t"})

    with pytest.raises(ValidationError) as error:
        integration.full_clean()

    assert field in error.value.message_dict


def test_the_private_key_is_in_no_answer_no_error_no_column_and_no_log_line(admin_api, system_client, fcm, caplog):
    caplog.set_level(logging.DEBUG)
    account = fcm.service_account()
    key_body = "".join(account["private_key"].splitlines()[1:-1])  # the base64 between the PEM lines

    # when an admin registers FCM with the key file, and a push goes out
    created = admin_api.post(
        "/api/v1/integrations",
        {
            "integration_id": "oncall_push",
            "name": "On-call app",
            "type": "notification",
            "provider": "fcm",
            "endpoint_url": fcm.url,
            "auth_type": "service_account",
            "auth_config": account,
            "options": {"topic": "oncall"},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    push = {"method": "send_push", "topic": "a", "title": "t", "body": "b"}
    sent = send(system_client, "oncall_push", message_type="sync", payload=push)
    assert sent.status_code == 200, sent.content

    # and the key is swapped for one Google does not know (a rotated key left in place)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stale_pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    stale_body = "".join(stale_pem.splitlines()[1:-1])
    patched = admin_api.patch(
        "/api/v1/integrations/oncall_push", {"auth_config": {"private_key": stale_pem}}, format="json"
    )
    assert patched.status_code == 200, patched.content
    refused = send(system_client, "oncall_push", message_type="sync", payload=push)

    # then the refusal says what Google answered, and is not retried
    assert refused.status_code == 502
    assert "invalid_grant" in refused.json()["error"]["message"]
    assert fcm.refused[-1][0] == 400
    # and neither key, nor the access token, is in any answer, stored error, column or log line
    answers = [created, sent, patched, refused]
    answers += [admin_api.get("/api/v1/integrations/oncall_push"), admin_api.get("/api/v1/integrations")]
    answers += [system_client.get("/api/v1/integrations/oncall_push/messages")]
    assert created.json()["auth_config"]["private_key"] == "••••"
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM integrations_integration")
        columns = json.dumps(cursor.fetchall(), default=str)
    errors = " ".join(DeliveryAttempt.objects.values_list("error", flat=True))
    access_token = fcm.pushes[0].access_token
    for secret in (key_body[200:264], stale_body[200:264], "PRIVATE KEY", access_token):
        for answer in answers:
            assert secret not in answer.content.decode()
        assert secret not in errors
        assert secret not in columns
        assert secret not in caplog.text


def test_the_token_request_goes_through_the_ssrf_guard(fcm, settings):
    # given a service account whose token_uri is an inside address (saved while such targets were allowed)
    push_integration(fcm)
    settings.INTEGRATIONS_ALLOW_PRIVATE_TARGETS = False
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when the push is delivered
    message = deliver(message.pk)

    # then google-auth's request was refused before it connected, and that will not change by retrying
    assert message.status == MessageStatus.FAILED
    assert "Token endpoint" in message.last_error
    assert "loopback" in message.last_error
    assert fcm.grants == [] and fcm.refused == [] and fcm.pushes == []
