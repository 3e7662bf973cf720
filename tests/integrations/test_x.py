"""X (Twitter) as a social channel: posts and DMs through the messages API, signed with OAuth 1.0a or
authorized by an OAuth 2.0 user token that X rotates on every refresh, X's refusals and rate limits,
and the Account Activity webhook (its challenge, its signature, DMs becoming chat lines once). X is
the local stand-in in x_server.py, which checks every signature and token on its own side."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from rest_framework.test import APIClient

from integrations.models import DeliveryAttempt, Integration, MessageStatus, OutboundMessage
from integrations.providers.x import weighted_length
from integrations.services import deliver, notify, send_async
from recordings.models import ChatMessage, Recording
from tests.integrations.conftest import EXHAUSTED_PAYLOAD
from tests.integrations.x_server import XServer, dm_activity, sign_webhook

pytestmark = pytest.mark.django_db

CONSUMER_KEY = "xvz1evFS4wEEPTGEFPHBog"
CONSUMER_SECRET = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw"
ACCESS_TOKEN = "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"
ACCESS_TOKEN_SECRET = "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"
CLIENT_ID = "rG9n6402A3dbUJKzXTNX4oWHJ"
CLIENT_SECRET = "Qm9wVzNxT3J5X2NsaWVudF9zZWNyZXRfZm9yX3Rlc3Rz"
REFRESH_TOKEN = "bWRWa3gzdnk3WHRGU1o0bmRRcTJ5VUxWX1lZTDdJSUtmaWcxbTVxdEFXcW5tOjE2MjIxNDc3NDM5MTQ6MToxOnJ0OjE"
OUR_ACCOUNT = "4337869213"
CUSTOMER = "3001969357"


@pytest.fixture
def x():
    with XServer(
        consumer_key=CONSUMER_KEY,
        consumer_secret=CONSUMER_SECRET,
        access_token=ACCESS_TOKEN,
        access_token_secret=ACCESS_TOKEN_SECRET,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH_TOKEN,
    ) as server:
        yield server


def oauth1_config() -> dict:
    return {
        "consumer_key": CONSUMER_KEY,
        "consumer_secret": CONSUMER_SECRET,
        "access_token": ACCESS_TOKEN,
        "access_token_secret": ACCESS_TOKEN_SECRET,
    }


def oauth2_config(server: XServer) -> dict:
    return {
        "token_url": server.token_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
    }


def register_x(server: XServer, *, auth_type: str = "oauth1", config: dict | None = None, **options) -> Integration:
    """Our X account as an admin registers it: its credentials, where our events go, and the endpoint
    (here, the local stand-in for api.x.com)."""
    integration = Integration(
        integration_id="social_x",
        name="X support account",
        type="social",
        provider="x",
        endpoint_url=server.url,
        auth_type=auth_type,
        options=options or {"participant_id": CUSTOMER, "account_id": OUR_ACCOUNT},
    )
    integration.set_auth_config(config if config is not None else oauth1_config())
    integration.full_clean()
    integration.save()
    return integration


def send(client: APIClient, **body):
    return client.post("/api/v1/integrations/social_x/messages", body, format="json")


def test_a_post_signed_with_oauth1_goes_out_and_answers_its_id(system_client, x):
    # given our X account, its requests signed with OAuth 1.0a
    register_x(x)

    # when a system posts a reply through the messages API
    text = "db-1 장애는 복구되었습니다. 불편을 드려 죄송합니다."
    response = send(
        system_client, message_type="sync", payload={"method": "create_post", "text": text, "reply_to": "1445880548"}
    )

    # then X verified the signature and took the post as a reply; the caller gets X's id for it
    assert response.status_code == 200, response.content
    [post] = x.posts
    assert post.path == "/2/tweets"
    assert post.body == {"text": text, "reply": {"in_reply_to_tweet_id": "1445880548"}}
    assert post.authorization.startswith("OAuth ")
    answer = response.json()
    assert answer["status"] == "delivered"
    assert answer["result"] == {
        "id": "1445880548472328193",
        "text": text,
        "edit_history_tweet_ids": [answer["result"]["id"]],
    }
    assert DeliveryAttempt.objects.get().request_id == "1445880548472328193"


def test_a_request_signed_with_the_wrong_secret_is_refused_for_good(system_client, x):
    # given credentials whose token secret X does not know
    register_x(x, config={**oauth1_config(), "access_token_secret": "not-the-secret-x-issued-0000"})

    response = send(system_client, message_type="sync", payload={"method": "create_post", "text": "hello"})

    # then X answered 401 and the caller a 502 that says the credentials were refused
    assert response.status_code == 502
    assert "401" in response.json()["error"]["message"]
    assert x.posts == [] and [status for status, _ in x.refused] == [401]
    assert OutboundMessage.objects.get().status == MessageStatus.FAILED


def test_a_dm_reaches_the_participant(system_client, x):
    register_x(x)

    response = send(
        system_client,
        message_type="sync",
        payload={"method": "send_dm", "participant_id": CUSTOMER, "text": "안녕하세요, 상담원 김민지입니다."},
    )

    assert response.status_code == 200, response.content
    [dm] = x.dms
    assert dm.path == f"/2/dm_conversations/with/{CUSTOMER}/messages"
    assert dm.body == {"text": "안녕하세요, 상담원 김민지입니다."}
    result = response.json()["result"]
    assert result["dm_conversation_id"] == f"1346889436626259968-{CUSTOMER}"
    assert DeliveryAttempt.objects.get().request_id == result["dm_event_id"]


def test_an_oauth2_token_is_refreshed_once_on_a_401_and_the_rotated_refresh_token_is_kept_sealed(system_client, x):
    # given our account authorized with OAuth 2.0 (a confidential client) and its first post sent
    integration = register_x(x, auth_type="oauth2_refresh_token", config=oauth2_config(x))
    assert send(system_client, message_type="sync", payload={"method": "create_post", "text": "one"}).status_code == 200
    first_token = x.posts[0].authorization

    # when the access token has expired at X and the next post goes out
    x.expire_tokens()
    response = send(system_client, message_type="sync", payload={"method": "create_post", "text": "two"})

    # then X said 401 once, one refresh followed, and the post went out in the same attempt
    assert response.status_code == 200, response.content
    assert [status for status, _ in x.refused] == [401]
    assert x.posts[1].authorization.startswith("Bearer ") and x.posts[1].authorization != first_token
    assert response.json()["attempts"] == 1
    # and each refresh spent the refresh token the one before it got (the client's Basic auth checked)
    assert len(x.grants) == 2 and x.grants[0] == REFRESH_TOKEN
    integration.refresh_from_db()
    stored = integration.auth_config["refresh_token"]
    assert stored not in x.grants
    # X's newest refresh token is stored, sealed: neither it nor the spent ones are readable at rest
    for token in (stored, *x.grants):
        assert token not in integration.auth_config_sealed
    assert integration.auth_config["client_secret"] == CLIENT_SECRET


def test_the_token_endpoint_refusing_the_client_is_a_permanent_failure(system_client, x):
    register_x(x, auth_type="oauth2_refresh_token", config={**oauth2_config(x), "client_secret": "wrong-secret-123"})

    response = send(system_client, message_type="sync", payload={"method": "create_post", "text": "one"})

    assert response.status_code == 502
    assert "answered HTTP 401" in response.json()["error"]["message"]
    assert x.posts == [] and x.grants == []


@pytest.mark.django_db(transaction=True)
def test_two_workers_refreshing_at_once_spend_the_refresh_token_once(x):
    # given a slow token endpoint and two messages delivered at the same moment by two workers
    integration = register_x(x, auth_type="oauth2_refresh_token", config=oauth2_config(x))
    x.grant_delay = 0.5
    messages = [send_async(integration, {"method": "create_post", "text": f"post {n}"})[0] for n in (1, 2)]
    outcomes: dict[int, str] = {}

    def worker(message_id: int) -> None:
        try:
            outcomes[message_id] = deliver(message_id).status
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(message.pk,)) for message in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # then one refresh was made, the second worker used its token, and both posts went out
    assert outcomes == {message.pk: MessageStatus.DELIVERED for message in messages}
    assert x.grants == [REFRESH_TOKEN]
    assert len({post.authorization for post in x.posts}) == 1
    integration.refresh_from_db()
    assert integration.auth_config["refresh_token"] not in (REFRESH_TOKEN, "")


def test_a_post_x_would_count_too_long_is_a_400_naming_the_field(system_client, x):
    register_x(x)
    korean = "가" * 141  # 141 characters, which X counts as 282

    response = send(system_client, message_type="sync", payload={"method": "create_post", "text": korean})

    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert "282" in fields["payload.text"]
    assert x.posts == []
    assert weighted_length("a" * 280) == 280
    assert weighted_length("See https://status.example.com/incidents/42?tab=timeline now") == 4 + 23 + 4


def test_a_rate_limited_post_is_retried_no_earlier_than_xs_reset(system_client, x, settings):
    # given X's rate-limit window ending in a few seconds, and retries otherwise immediate
    settings.INTEGRATION_RETRY_BASE_SECONDS = 0.0
    register_x(x)
    reset = int(time.time()) + 3
    x.plan(("rate_limited", reset))

    # when a post is queued and delivered
    response = send(system_client, message_type="async", payload={"method": "create_post", "text": "status update"})
    assert response.status_code == 202
    message = deliver(response.json()["message_id"])

    # then it waits for the end of X's window, not earlier
    assert (message.status, message.attempts) == (MessageStatus.PENDING, 1)
    assert "429" in message.last_error and "Too Many Requests" in message.last_error
    assert message.next_attempt_at.timestamp() >= reset - 0.01
    assert deliver(message.pk).attempts == 1  # a task arriving early tries nothing
    # and after the reset the post goes out
    time.sleep(max(0.0, message.next_attempt_at.timestamp() - time.time()) + 0.1)
    message = deliver(message.pk)
    assert (message.status, message.attempts) == (MessageStatus.DELIVERED, 2)
    assert [post.body["text"] for post in x.posts] == ["status update"]


def test_x_being_down_is_worth_another_try(x):
    integration = register_x(x)
    x.plan(("unavailable",))

    message = deliver(send_async(integration, {"method": "send_dm", "participant_id": CUSTOMER, "text": "hi"})[0].pk)

    assert (message.status, message.attempts) == (MessageStatus.PENDING, 1)
    assert "X refused the direct message (HTTP 503): Service Unavailable" in message.last_error


def test_a_duplicate_post_is_refused_for_good_in_xs_words(system_client, x):
    register_x(x)
    assert (
        send(system_client, message_type="sync", payload={"method": "create_post", "text": "same"}).status_code == 200
    )

    response = send(system_client, message_type="sync", payload={"method": "create_post", "text": "same"})

    assert response.status_code == 502
    detail = response.json()["error"]["message"]
    assert (
        "X refused the post (HTTP 403): Forbidden: You are not allowed to create a Tweet with duplicate content."
        in detail
    )
    failed = OutboundMessage.objects.get(pk=response.json()["error"]["fields"]["message_id"])
    assert (failed.status, failed.attempts) == (MessageStatus.FAILED, 1)
    assert len(x.posts) == 1


def test_an_incident_reaches_the_participant_as_a_dm_in_korean(x):
    register_x(x)

    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    message = deliver(message.pk)

    assert message.status == MessageStatus.DELIVERED
    [dm] = x.dms
    assert dm.path == f"/2/dm_conversations/with/{CUSTOMER}/messages"
    title, body, link = dm.body["text"].split("\n")
    assert title == "[CRITICAL] 아무도 확인하지 않음"
    assert body.startswith("Disk full on db-1.") and "심각도: 치명." in body
    assert link == "http://127.0.0.1:8000/api/v1/incidents/42"
    assert x.posts == []


def test_an_integration_that_posts_events_publicly_keeps_them_within_280(x):
    register_x(x, post_events=True, language="en")
    long_summary = {**EXHAUSTED_PAYLOAD, "summary": "Disk full on db-1 " * 30}

    [message] = notify("incident.exhausted", long_summary, dedup_key="incident:42:exhausted")
    message = deliver(message.pk)

    assert message.status == MessageStatus.DELIVERED
    [post] = x.posts
    assert post.body["text"].startswith("[CRITICAL] Nobody acknowledged: Disk full on db-1")
    assert post.body["text"].endswith(" http://127.0.0.1:8000/api/v1/incidents/42")
    assert weighted_length(post.body["text"]) <= 280
    assert x.dms == []


def test_options_and_token_url_are_checked_when_saved(x, settings):
    with pytest.raises(ValidationError) as missing:
        register_x(x, account_id=OUR_ACCOUNT)
    assert "participant_id" in missing.value.message_dict["options"][0]

    settings.INTEGRATIONS_ALLOW_PRIVATE_TARGETS = False
    inside = {**oauth2_config(x), "token_url": "http://169.254.169.254/2/oauth2/token"}
    with pytest.raises(ValidationError) as refused:
        register_x(x, auth_type="oauth2_refresh_token", config=inside)
    assert "Token URL: Refused: 169.254.169.254 is a link-local address" in refused.value.message_dict["auth_config"][0]


def test_no_secret_is_stored_answered_or_logged_even_when_x_echoes_the_signature(system_client, x, caplog):
    # given X (or a gateway before it) echoing the Authorization header in its refusal
    caplog.set_level(logging.DEBUG)
    register_x(x)
    x.plan(("echo_authorization",))

    response = send(system_client, message_type="sync", payload={"method": "create_post", "text": "hello"})
    assert response.status_code == 502
    echoed = x.refused[0][1]["detail"]
    assert CONSUMER_KEY in echoed  # the stand-in did echo what we sent

    # then neither the answer, nor what is stored, nor a log line holds a credential or the signature
    message = OutboundMessage.objects.get()
    attempt = DeliveryAttempt.objects.get()
    signature = echoed.split('oauth_signature="')[1].split('"')[0]
    kept = "\n".join(
        [
            response.content.decode(),
            json.dumps(send(system_client, message_type="sync", payload={"method": "create_post", "text": "x"}).json()),
            message.last_error,
            json.dumps(message.result),
            attempt.error,
            attempt.excerpt,
            "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records),
        ]
    )
    for secret in (CONSUMER_KEY, CONSUMER_SECRET, ACCESS_TOKEN, ACCESS_TOKEN_SECRET, signature):
        assert secret not in kept
    assert "X refused the post (HTTP 400)" in message.last_error


# --- the Account Activity webhook ---------------------------------------------------------------------

INCOMING = "/api/v1/integrations/social_x/incoming"


def deliver_activity(body: bytes, signature: str | None):
    headers = {"HTTP_X_TWITTER_WEBHOOKS_SIGNATURE": signature} if signature is not None else {}
    return APIClient().post(INCOMING, data=body, content_type="application/json", **headers)


def a_dm(text: str = "결제가 두 번 됐어요. 환불 부탁드립니다.", *, sender: str = CUSTOMER) -> bytes:
    # a fresh event id each time: X's ids never repeat, and the redelivery memory outlives a test run
    event_id = str(1582838238324367364 + secrets.randbelow(10**12))
    return dm_activity(
        for_user_id=OUR_ACCOUNT, sender_id=sender, sender_name="Jordan Kim", text=text, event_id=event_id
    )


def test_xs_challenge_is_answered_with_the_hmac_of_its_token(x):
    register_x(x)
    token = "9b4507b3-9040-4669-9ca3-6b94edb50553"

    response = APIClient().get(INCOMING, {"crc_token": token})

    assert response.status_code == 200
    assert response.json() == {"response_token": sign_webhook(CONSUMER_SECRET, token.encode())}


@pytest.mark.parametrize(
    "query",
    [{}, {"crc_token": ""}, {"crc_token": '{"for_user_id":"4337869213","direct_message_events":[]}'}],
    ids=["no token", "empty token", "a body to be signed"],
)
def test_a_challenge_that_is_not_xs_is_refused(x, query):
    # a JSON body as crc_token would get us to sign a webhook anyone could then post
    register_x(x)

    assert APIClient().get(INCOMING, query).status_code == 403


FORGERIES = {
    "unsigned": lambda body: None,
    "empty": lambda body: "sha256=",
    "another secret": lambda body: sign_webhook("not-our-consumer-secret", body),
    "another body": lambda body: sign_webhook(CONSUMER_SECRET, body.replace(b"Jordan Kim", b"VIP Lee")),
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_forged_delivery_is_refused_and_records_nothing(x, forgery):
    register_x(x)
    body = a_dm()

    response = deliver_activity(body, FORGERIES[forgery](body))

    assert response.status_code == 403
    assert not ChatMessage.objects.exists()


def test_a_customers_dm_becomes_one_chat_line_even_when_x_delivers_it_twice(x):
    # given our X account taking webhooks, and a customer's DM that X delivers twice
    register_x(x)
    body = a_dm("결제가 두 번 됐어요. 환불 부탁드립니다.")
    signature = sign_webhook(CONSUMER_SECRET, body)

    first, again = deliver_activity(body, signature), deliver_activity(body, signature)

    # then both deliveries are acknowledged and the conversation's chat log holds the line once
    assert (first.status_code, again.status_code) == (200, 200)
    [line] = ChatMessage.objects.all()
    assert (line.sender, line.text) == ("Jordan Kim", "결제가 두 번 됐어요. 환불 부탁드립니다.")
    chat = Recording.objects.get()
    assert (chat.kind, chat.channel, chat.customer_id) == ("chat", "x", CUSTOMER)
    assert chat.session_id == f"x:{OUR_ACCOUNT}:{CUSTOMER}"


def test_our_own_dms_echoed_back_are_not_recorded(x):
    register_x(x)
    body = a_dm("안녕하세요, 상담원입니다.", sender=OUR_ACCOUNT)

    response = deliver_activity(body, sign_webhook(CONSUMER_SECRET, body))

    assert response.status_code == 200
    assert not ChatMessage.objects.exists()


def test_a_dm_with_only_media_adds_no_empty_line(x):
    register_x(x)
    body = a_dm("")

    response = deliver_activity(body, sign_webhook(CONSUMER_SECRET, body))

    assert response.status_code == 200
    assert not ChatMessage.objects.exists()


def test_an_oauth2_account_takes_webhooks_only_with_the_apps_consumer_secret(x):
    # given an OAuth 2.0 integration without the app's consumer secret: nothing can be verified
    integration = register_x(x, auth_type="oauth2_refresh_token", config=oauth2_config(x))
    body = a_dm()
    assert deliver_activity(body, sign_webhook(CONSUMER_SECRET, body)).status_code == 403

    # when the admin adds it, X's signed deliveries are taken
    integration.set_auth_config({**oauth2_config(x), "consumer_secret": CONSUMER_SECRET})
    integration.save()
    assert deliver_activity(body, sign_webhook(CONSUMER_SECRET, body)).status_code == 200
    assert ChatMessage.objects.count() == 1
