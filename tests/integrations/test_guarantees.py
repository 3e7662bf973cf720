"""What the messages API promises under trouble: OAuth2 tokens fetched once and renewed once on a 401,
retries that end in a dead letter and a replay that delivers exactly once (real worker), the circuit
breaker and the per-integration rate limit."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from integrations.models import Integration, MessageStatus, OutboundMessage
from integrations.services import deliver, retry_delay, send_async
from tests.integrations.conftest import build_integration

CLIENT_SECRET = "cs-oauth-never-shown"
EVENT = {"method": "post_event", "event": "crm.case", "payload": {"subject": "Disk full"}}


def token_answer(token: str, expires_in: int = 3600) -> tuple[int, dict, bytes]:
    body = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def send(client, integration_id: str, **body):
    return client.post(f"/api/v1/integrations/{integration_id}/messages", body, format="json")


@pytest.mark.django_db
def test_oauth2_client_credentials_token_is_fetched_once_cached_and_renewed_once_on_a_401(system_client, receiver):
    # given a CRM behind OAuth2 client credentials, token endpoint and API on one local server
    build_integration(
        "crm",
        target=f"{receiver.url}/api",
        type="crm",
        auth_type="oauth2_client_credentials",
        auth_config={"client_id": "cid", "client_secret": CLIENT_SECRET, "token_url": f"{receiver.url}/token"},
    )
    receiver.plan(token_answer("tok-1"), 200, 200, 401, token_answer("tok-2"), 200)

    # when three messages are sent, the third meeting an expired token
    answers = [send(system_client, "crm", message_type="sync", payload=EVENT).status_code for _ in range(3)]

    # then all went through; the token was fetched with the client's credentials, reused, and renewed once
    assert answers == [200, 200, 200]
    paths = [request.path for request in receiver.requests]
    assert paths == ["/token", "/api", "/api", "/api", "/token", "/api"]
    token_request = receiver.requests[0].body.decode()
    assert "grant_type=client_credentials" in token_request and f"client_secret={CLIENT_SECRET}" in token_request
    auth = [request.headers.get("Authorization") for request in receiver.requests if request.path == "/api"]
    assert auth == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


@pytest.mark.django_db
def test_a_second_401_is_a_permanent_error_not_a_loop(system_client, receiver):
    build_integration(
        "crm",
        target=f"{receiver.url}/api",
        type="crm",
        auth_type="oauth2_client_credentials",
        auth_config={"client_id": "cid", "client_secret": CLIENT_SECRET, "token_url": f"{receiver.url}/token"},
    )
    receiver.plan(token_answer("tok-1"), 401, token_answer("tok-2"), 401)

    response = send(system_client, "crm", message_type="sync", payload=EVENT)

    assert response.status_code == 502
    assert "401" in response.json()["error"]["message"]
    assert len(receiver.requests) == 4


@pytest.mark.django_db
def test_oauth2_jwt_bearer_signs_an_rs256_assertion_the_token_endpoint_can_verify(system_client, receiver):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    build_integration(
        "sf",
        target=f"{receiver.url}/api",
        type="crm",
        auth_type="oauth2_jwt_bearer",
        auth_config={
            "client_id": "consumer-key",
            "subject": "integration@example.com",
            "token_url": f"{receiver.url}/token",
            "audience": "https://login.salesforce.com",
            "private_key": pem,
        },
    )
    receiver.plan(token_answer("jwt-tok"), 200)

    assert send(system_client, "sf", message_type="sync", payload=EVENT).status_code == 200

    form = dict(part.split("=", 1) for part in receiver.requests[0].body.decode().split("&"))
    assert form["grant_type"] == "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
    claims = jwt.decode(
        form["assertion"], key.public_key(), algorithms=["RS256"], audience="https://login.salesforce.com"
    )
    assert (claims["iss"], claims["sub"]) == ("consumer-key", "integration@example.com")
    assert receiver.requests[1].headers["Authorization"] == "Bearer jwt-tok"
    assert "PRIVATE KEY" not in Integration.objects.values_list("auth_config_sealed", flat=True)[0]


def _wait_for_status(message_id: int, status: str, timeout: float = 20.0) -> OutboundMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = OutboundMessage.objects.get(pk=message_id)
        if message.status == status:
            return message
        time.sleep(0.05)
    raise AssertionError(f"message {message_id} is {message.status}, not {status}")


def test_async_to_a_failing_receiver_retries_dead_letters_and_a_replay_delivers_exactly_once(
    celery_worker, system_client, receiver, fast_retries
):
    # given a receiver that fails three times, and an integration allowed three tries
    build_integration("ops_hook", target=receiver.url, max_attempts=3)
    receiver.plan(500, 502, 503)

    # when a message is sent async
    queued = send(system_client, "ops_hook", message_type="async", payload=EVENT, idempotency_key="case-7")
    assert queued.status_code == 202
    message_id = queued.json()["message_id"]

    # then the worker tries three times and dead-letters it
    dead = _wait_for_status(message_id, MessageStatus.DEAD)
    assert dead.attempts == 3
    assert dead.last_error.startswith("Gave up after 3 attempts. Last error: HTTP 503")
    # and a caller retrying with the same key gets the same message back, nothing new is sent
    again = send(system_client, "ops_hook", message_type="async", payload=EVENT, idempotency_key="case-7")
    assert (again.status_code, again.json()["message_id"], again.json()["status"]) == (200, message_id, "dead")

    # when it is replayed (the receiver is back), twice in a row
    first = system_client.post(f"/api/v1/integrations/ops_hook/messages/{message_id}/replay")
    _wait_for_status(message_id, MessageStatus.DELIVERED)
    second = system_client.post(f"/api/v1/integrations/ops_hook/messages/{message_id}/replay")

    # then it is delivered exactly once, and a second replay of a delivered message is refused
    assert first.status_code == 202
    assert second.status_code == 409
    time.sleep(0.5)  # room for a duplicate delivery to show up, were there one
    assert len(receiver.requests) == 4
    detail = system_client.get(f"/api/v1/integrations/ops_hook/messages/{message_id}").json()
    assert [attempt["outcome"] for attempt in detail["delivery_attempts"]] == ["failed"] * 3 + ["ok"]


@pytest.mark.django_db
def test_the_breaker_opens_after_repeated_failures_and_sync_callers_get_a_503(system_client, receiver, settings):
    settings.INTEGRATION_BREAKER_FAILURE_THRESHOLD = 2
    build_integration("ops_hook", target=receiver.url)
    receiver.plan(500, 500)

    answers = [send(system_client, "ops_hook", message_type="sync", payload=EVENT) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [502, 502, 503]
    assert answers[2].json()["error"]["code"] == "circuit_open"
    assert int(answers[2]["Retry-After"]) >= 1
    assert len(receiver.requests) == 2  # the third was never sent


@pytest.mark.django_db
def test_an_async_message_waits_for_an_open_breaker_without_spending_an_attempt(receiver, settings):
    settings.INTEGRATION_BREAKER_FAILURE_THRESHOLD = 1
    integration = build_integration("ops_hook", target=receiver.url)
    receiver.plan(500)
    first, _ = send_async(integration, EVENT)
    second, _ = send_async(integration, EVENT)

    deliver(first.pk)  # fails: the breaker opens
    waiting = deliver(second.pk)

    assert (waiting.status, waiting.attempts) == (MessageStatus.PENDING, 0)
    assert waiting.next_attempt_at is not None
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_the_rate_limit_is_shared_and_a_sync_caller_over_it_gets_a_429(system_client, receiver):
    build_integration("slow_crm", target=receiver.url, rate_limit_per_second=0.05)

    first = send(system_client, "slow_crm", message_type="sync", payload=EVENT)
    second = send(system_client, "slow_crm", message_type="sync", payload=EVENT)
    queued, _ = send_async(Integration.objects.get(), EVENT)
    put_off = deliver(queued.pk)

    assert first.status_code == 200
    assert second.status_code == 429
    assert int(second["Retry-After"]) >= 10
    assert (put_off.status, put_off.attempts) == (MessageStatus.PENDING, 0)
    assert len(receiver.requests) == 1


def test_a_long_retry_after_is_waited_for_in_full_up_to_an_hour(settings):
    # given X's 15-minute rate-limit window, and a receiver asking for a whole day
    settings.INTEGRATION_RETRY_AFTER_MAX_SECONDS = 3600

    # then the next try waits for the window to reopen (not the 5-minute backoff cap) but not a day
    assert retry_delay(1, retry_after=900) == 900
    assert retry_delay(1, retry_after=86400) == 3600
    # and without one, the backoff stays under its cap
    assert retry_delay(30) <= 300
