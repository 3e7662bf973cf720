"""Facebook Messenger and Instagram through Meta's Graph API: replies sent through the messages API to
a local stand-in for the Send API (meta_server.py), Meta's errors judged by their codes, and Meta's
webhooks verified (subscription challenge, X-Hub-Signature-256) before they become chat lines."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from integrations.models import DeliveryAttempt, Integration, MessageStatus
from integrations.services import deliver, notify, send_test_notification
from recordings.models import ChatMessage, Recording
from tests.integrations.conftest import EXHAUSTED_PAYLOAD
from tests.integrations.meta_server import MetaGraphServer, customer_message, delivery, echo, read

pytestmark = pytest.mark.django_db

PAGE_ID = "104982345678901"
IG_ACCOUNT = "17841405822304914"
PAGE_TOKEN = "EAAGpage-token-never-shown-8c1f"
APP_SECRET = "meta-app-secret-never-shown-55"
VERIFY_TOKEN = "verify-me-please-31"
CUSTOMER = "6201234567890123"  # a PSID
IG_CUSTOMER = "1234567890123456"  # an IGSID
OPS = "7301234567890999"


@pytest.fixture
def messenger_api():
    with MetaGraphServer(page_id=PAGE_ID, token=PAGE_TOKEN, app_secret=APP_SECRET) as server:
        server.customers.update({CUSTOMER, OPS})
        yield server


@pytest.fixture
def instagram_api():
    with MetaGraphServer(page_id=PAGE_ID, token=PAGE_TOKEN, app_secret=APP_SECRET, platform="instagram") as server:
        server.customers.add(IG_CUSTOMER)
        yield server


def social_integration(
    server: MetaGraphServer,
    *,
    provider: str = "messenger",
    integration_id: str = "fb_page",
    token=PAGE_TOKEN,
    **options,
) -> Integration:
    """Meta as an admin registers it: the Page access token, the app secret and the verify token
    chosen in the App Dashboard, and the Graph API's address (here, the local stand-in)."""
    integration = Integration(
        integration_id=integration_id,
        name="Our Page",
        type="social",
        provider=provider,
        endpoint_url=server.url,
        auth_type="bearer",
        options=options,
    )
    integration.set_auth_config({"token": token, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN})
    integration.full_clean()
    integration.save()
    return integration


def send(client: APIClient, integration_id: str, message_type: str = "sync", **payload):
    body = {"message_type": message_type, "payload": {"method": "send_message", **payload}}
    return client.post(f"/api/v1/integrations/{integration_id}/messages", body, format="json")


def post_webhook(client: APIClient, integration_id: str, body: bytes, signature: str | None):
    headers = {"HTTP_X_HUB_SIGNATURE_256": signature} if signature is not None else {}
    return client.post(
        f"/api/v1/integrations/{integration_id}/incoming", data=body, content_type="application/json", **headers
    )


# --- sending ----------------------------------------------------------------------------------------


def test_a_reply_through_the_messages_api_reaches_the_customer_on_messenger(system_client, messenger_api):
    # given our Page, registered with its token and app secret
    social_integration(messenger_api, page_id=PAGE_ID)

    # when an agent's reply is sent through the messages API
    response = send(system_client, "fb_page", recipient_id=CUSTOMER, text="주문하신 상품이 오늘 발송됩니다.")

    # then Meta received it as its Send API documents, and the answer names Meta's message id
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["status"] == "delivered"
    [sent] = messenger_api.sent
    assert (sent.version, sent.account, sent.token_via) == ("v25.0", PAGE_ID, "header")
    assert sent.proof == hmac.new(APP_SECRET.encode(), PAGE_TOKEN.encode(), hashlib.sha256).hexdigest()
    assert sent.body == {
        "recipient": {"id": CUSTOMER},
        "messaging_type": "RESPONSE",
        "message": {"text": "주문하신 상품이 오늘 발송됩니다."},
    }
    assert answer["result"]["recipient_id"] == CUSTOMER
    assert answer["result"]["message_id"].startswith("m_")
    # and the attempt is known by Meta's message id
    attempt = DeliveryAttempt.objects.get(message_id=answer["message_id"])
    assert attempt.request_id == answer["result"]["message_id"]


def test_an_instagram_reply_goes_out_async_and_its_text_is_counted_in_bytes(system_client, instagram_api):
    social_integration(instagram_api, provider="instagram", integration_id="ig_account")

    # when a reply is queued, and delivered
    queued = send(system_client, "ig_account", "async", recipient_id=IG_CUSTOMER, text="문의 감사합니다!")
    assert queued.status_code == 202, queued.content
    message = deliver(queued.json()["message_id"])

    # then it went to the token's own account ("me"), and is delivered
    assert message.status == MessageStatus.DELIVERED
    [sent] = instagram_api.sent
    assert sent.account == "me"
    assert sent.body["message"] == {"text": "문의 감사합니다!"}
    # and a Korean text over Instagram's 1000 bytes is refused before anything is sent (400 characters:
    # 1200 bytes)
    too_long = send(system_client, "ig_account", recipient_id=IG_CUSTOMER, text="가" * 400)
    assert too_long.status_code == 400
    assert "1000 bytes" in too_long.json()["error"]["fields"]["payload.text"]
    assert len(instagram_api.sent) == 1


@pytest.mark.parametrize(
    ("situation", "code", "permanent", "words"),
    [
        ("rate_limited", "613", False, "the Send API's rate limit is reached"),
        ("meta_down", "2", False, "Meta's service is temporarily down"),
        ("unavailable", "551/1545041", True, "this person isn't available right now"),
        ("unknown", "100/2018001", True, "no such recipient"),
        ("window_closed", "10/2018278", True, "the message is outside the 24-hour window"),
    ],
)
def test_metas_errors_are_judged_by_their_code(system_client, messenger_api, situation, code, permanent, words):
    # given a send Meta will refuse
    social_integration(messenger_api)
    recipient = CUSTOMER
    if situation == "rate_limited":
        messenger_api.plan(613)
    elif situation == "meta_down":
        messenger_api.plan(2)
    elif situation == "unavailable":
        messenger_api.unavailable.add(CUSTOMER)
    elif situation == "unknown":
        recipient = "9999999999999999"
    else:
        messenger_api.window_closed.add(CUSTOMER)

    # when it is sent now
    response = send(system_client, "fb_page", recipient_id=recipient, text="안녕하세요")

    # then the caller gets a 502 in Meta's words, judged permanent or worth another try by the code
    assert response.status_code == 502
    said = response.json()["error"]["message"]
    assert f"Meta Graph error {code}: {words}" in said
    assert said.startswith("Permanent failure:") is permanent
    # and the attempt keeps Meta's fbtrace_id, for Meta's support
    attempt = DeliveryAttempt.objects.get(message_id=response.json()["error"]["fields"]["message_id"])
    assert attempt.request_id == messenger_api.refused[-1][1]["error"]["fbtrace_id"]
    assert messenger_api.sent == []


def test_a_rate_limited_message_is_tried_again_after_a_minute(system_client, messenger_api):
    social_integration(messenger_api)
    messenger_api.plan(613)
    queued = send(system_client, "fb_page", "async", recipient_id=CUSTOMER, text="안녕하세요")

    before = timezone.now()
    message = deliver(queued.json()["message_id"])

    assert (message.status, message.attempts) == (MessageStatus.PENDING, 1)
    assert message.next_attempt_at - before >= timedelta(seconds=59)
    assert "Meta Graph error 613" in message.last_error


def test_an_unavailable_person_is_not_tried_again(system_client, messenger_api, fast_retries):
    social_integration(messenger_api)
    messenger_api.unavailable.add(CUSTOMER)
    queued = send(system_client, "fb_page", "async", recipient_id=CUSTOMER, text="안녕하세요")

    message = deliver(queued.json()["message_id"])
    again = deliver(message.pk)

    assert (message.status, message.attempts) == (MessageStatus.FAILED, 1)
    assert (again.status, again.attempts) == (MessageStatus.FAILED, 1)
    assert len(messenger_api.refused) == 1


def test_a_revoked_token_fails_for_good_and_is_never_shown(system_client, messenger_api):
    revoked = "EAAGrevoked-token-never-shown-77"
    social_integration(messenger_api, token=revoked)

    response = send(system_client, "fb_page", recipient_id=CUSTOMER, text="안녕하세요")

    assert response.status_code == 502
    said = response.json()["error"]["message"]
    assert said.startswith("Permanent failure: Meta Graph error 190: the access token is invalid or expired")
    listed = system_client.get("/api/v1/integrations/fb_page/messages")
    for text in (response.content.decode(), listed.content.decode()):
        assert revoked not in text and APP_SECRET not in text


def test_our_events_reach_the_ops_person_in_korean_with_a_message_tag(messenger_api):
    # given an ops person who last wrote to the Page days ago (only a tagged message reaches them)
    social_integration(messenger_api, recipient_id=OPS, tag="ACCOUNT_UPDATE")
    messenger_api.window_closed.add(OPS)

    # when nobody acknowledged an incident
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    message = deliver(message.pk)

    # then the ops person got it in Korean, tagged, with the link
    assert message.status == MessageStatus.DELIVERED
    [sent] = messenger_api.sent
    assert (sent.body["messaging_type"], sent.body["tag"], sent.body["recipient"]) == (
        "MESSAGE_TAG",
        "ACCOUNT_UPDATE",
        {"id": OPS},
    )
    text = sent.body["message"]["text"]
    assert text.startswith("[CRITICAL] 아무도 확인하지 않음\nDisk full on db-1.")
    assert "통화 시도: 5회." in text
    assert text.endswith("http://127.0.0.1:8000/api/v1/incidents/42")


def test_an_integration_with_nobody_to_tell_hears_none_of_our_events(messenger_api):
    # given a Page registered for its inbox only: no options.recipient_id
    integration = social_integration(messenger_api)

    # when nobody acknowledged an incident, then no message is made for it at all
    assert notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted") == []

    # and the admin's test notification, sent to it anyway, fails at once saying why
    message = deliver(send_test_notification(integration).pk)
    assert (message.status, message.attempts) == (MessageStatus.FAILED, 1)
    assert "fb_page has no options.recipient_id" in message.last_error
    assert messenger_api.sent == [] and messenger_api.refused == []


# --- webhooks ---------------------------------------------------------------------------------------


def test_the_subscription_challenge_is_answered_when_the_verify_token_matches(api_client, messenger_api):
    social_integration(messenger_api)

    response = api_client.get(
        "/api/v1/integrations/fb_page/incoming",
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )

    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "guessed", "hub.challenge": "1158201444"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
        {"hub.mode": "subscribe", "hub.challenge": "1158201444"},
    ],
)
def test_a_challenge_without_the_verify_token_is_a_403(api_client, messenger_api, query):
    social_integration(messenger_api)

    response = api_client.get("/api/v1/integrations/fb_page/incoming", query)

    assert response.status_code == 403
    assert b"1158201444" not in response.content


@pytest.mark.parametrize("forgery", ["wrong_secret", "unsigned", "altered_body"])
def test_a_forged_webhook_is_a_403_and_records_nothing(api_client, messenger_api, forgery):
    social_integration(messenger_api)
    update = messenger_api.messenger_update(customer_message(CUSTOMER, PAGE_ID, "환불해 주세요", "m_forged"))
    body, signature = messenger_api.signed(update, secret="not-the-app-secret" if forgery == "wrong_secret" else None)
    if forgery == "altered_body":
        body = body.replace("환불해".encode(), "송금해".encode())

    response = post_webhook(api_client, "fb_page", body, None if forgery == "unsigned" else signature)

    assert response.status_code == 403
    assert not ChatMessage.objects.exists() and not Recording.objects.exists()


def test_a_genuine_webhook_becomes_one_chat_line_even_when_delivered_twice(api_client, messenger_api):
    # given our Page, and Meta's update: a customer's message, our own reply echoed, a delivery, a read
    social_integration(messenger_api)
    update = messenger_api.messenger_update(
        customer_message(CUSTOMER, PAGE_ID, "배송이 언제 되나요?", "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM"),
        echo(PAGE_ID, CUSTOMER, "오늘 발송됩니다.", "m_echo1"),
        delivery(CUSTOMER, PAGE_ID, "m_echo1"),
        read(CUSTOMER, PAGE_ID),
    )
    body, signature = messenger_api.signed(update)

    # when Meta delivers it, and delivers it again
    first = post_webhook(api_client, "fb_page", body, signature)
    second = post_webhook(api_client, "fb_page", body, signature)

    # then both are acknowledged as Meta expects, and the conversation's chat log holds the one line
    for response in (first, second):
        assert (response.status_code, response.content) == (200, b"EVENT_RECEIVED")
    [chat] = Recording.objects.all()
    assert (chat.kind, chat.status, chat.channel) == ("chat", "recording", "messenger")
    assert (chat.session_id, chat.customer_id, chat.agent_id) == (
        f"messenger:{PAGE_ID}:{CUSTOMER}",
        CUSTOMER,
        "integration:fb_page",
    )
    assert list(chat.messages.values_list("sender", "text")) == [("customer", "배송이 언제 되나요?")]
    assert chat.messages.get().sent_at == datetime(2025, 11, 30, 10, 53, 20, tzinfo=UTC)  # Meta's timestamp


def test_instagram_messages_are_recorded_on_their_own_channel(api_client, instagram_api):
    social_integration(instagram_api, provider="instagram", integration_id="ig_account")
    update = instagram_api.instagram_update(
        IG_ACCOUNT,
        customer_message(IG_CUSTOMER, IG_ACCOUNT, "사이즈 교환 가능한가요?", "aWdfZAG1faXRlbToxOklHTWVzc2FnZAU"),
        echo(IG_ACCOUNT, IG_CUSTOMER, "네 가능합니다", "aWdfZAG1echo"),
    )
    body, signature = instagram_api.signed(update)

    response = post_webhook(api_client, "ig_account", body, signature)

    assert response.status_code == 200
    [chat] = Recording.objects.all()
    assert (chat.channel, chat.session_id) == ("instagram", f"instagram:{IG_ACCOUNT}:{IG_CUSTOMER}")
    assert list(chat.messages.values_list("text", flat=True)) == ["사이즈 교환 가능한가요?"]


# --- registering ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"auth_config": {"token": PAGE_TOKEN}}, "auth_config", "app_secret"),
        ({"options": {"version": "25"}}, "options", "options.version"),
        ({"options": {"recipient_id": 7301234567890999}}, "options", "options.recipient_id"),
        ({"options": {"incident_rules": [{"policy": "vip"}]}}, "options", "needs keywords or senders"),
        ({"options": {"incident_rules": [{"senders": [123]}]}}, "options", "write ids as strings"),
        ({"options": {"incident_rules": [{"keywords": ["환불"], "policy": "nope"}]}}, "options", "'nope'"),
        ({"options": {"incident_rules": [{"keywords": ["환불"], "severity": "doom"}]}}, "options", "severity"),
    ],
)
def test_a_messenger_integration_is_refused_with_a_clear_reason(admin_api, messenger_api, change, field, words):
    body = {
        "integration_id": "fb_page",
        "name": "Our Page",
        "type": "social",
        "provider": "messenger",
        "endpoint_url": messenger_api.url,
        "auth_type": "bearer",
        "auth_config": {"token": PAGE_TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN},
        **change,
    }

    response = admin_api.post("/api/v1/integrations", body, format="json")

    assert response.status_code == 400, response.content
    assert words in response.json()["error"]["fields"][field]
    assert not Integration.objects.exists()


def test_a_flood_of_webhooks_is_cut_at_the_integrations_rate_before_any_check(api_client, messenger_api, settings):
    # given an integration that takes 2 webhooks a second
    settings.INCOMING_WEBHOOK_RATE_PER_SECOND = 2
    social_integration(messenger_api)
    body, signature = messenger_api.signed(
        messenger_api.messenger_update(customer_message(CUSTOMER, PAGE_ID, "안녕하세요", "m_flood"))
    )

    # when five arrive at once (forged or not)
    answers = [post_webhook(api_client, "fb_page", body, signature).status_code for _ in range(5)]

    # then the first two are taken, the rest are told to come back later, and the line is kept once
    assert answers[:2] == [200, 200] and answers[2:] == [429, 429, 429]
    assert ChatMessage.objects.count() == 1
