"""Notification providers through their real SDKs and protocols, each to a local server: Twilio SMS (the
twilio SDK, to a Messaging API server), AWS SNS and SES (boto3, to moto's server, asserting what moto
recorded), and Slack's chat.postMessage (to a Web API server). Registered and sent through our API;
async messages delivered by the service the worker runs (`deliver`), so retries are observable."""

from __future__ import annotations

import base64
import json
import socket
from datetime import timedelta
from urllib.parse import parse_qs

import boto3
import pytest
import requests
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from integrations.models import MessageStatus, OutboundMessage
from integrations.services import deliver, notify
from tests.accounts.helpers import person
from tests.integrations.conftest import EXHAUSTED_PAYLOAD
from tests.integrations.notify_servers import INVALID_NUMBER, SilentServer, SlackWebAPI, TwilioMessagingAPI

pytestmark = pytest.mark.django_db

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "twilio-auth-token-never-shown-71"
BOT_TOKEN = "xoxb-bot-token-never-shown-2f9"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "aws-secret-key-never-shown/K7MDENG"
TWILIO_NUMBER = "+15017122661"
ON_CALL_PHONE = "+821012345678"
SENDER = "oncall@example.com"
REGION = "ap-northeast-2"
SECRETS = (AUTH_TOKEN, BOT_TOKEN, AWS_SECRET)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def moto_url():
    """moto's server: SNS and SES on a loopback port, which boto3 talks to as to AWS."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url, monkeypatch) -> str:
    """The default credential chain finds keys in the environment (auth_type "none" uses it)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_url


def aws_admin(moto_url: str, service: str):
    """boto3 as an AWS administrator would use it, to prepare the account (a topic, a verified sender)."""
    return boto3.client(service, region_name=REGION, endpoint_url=moto_url)


def moto_recorded(moto_url: str, service: str, model: str) -> list[dict]:
    """What moto's server keeps of a service (its introspection endpoint)."""
    return requests.get(f"{moto_url}/moto-api/data.json", timeout=5).json()[service][model]


@pytest.fixture
def twilio():
    with TwilioMessagingAPI(ACCOUNT_SID, AUTH_TOKEN, numbers=(TWILIO_NUMBER,)) as server:
        yield server


@pytest.fixture
def slack():
    with SlackWebAPI(
        BOT_TOKEN, channels={"C0OPS00001": "ops", "C0SALES001": "sales"}, joined=("C0OPS00001",)
    ) as server:
        yield server


@pytest.fixture
def admin_api(settings) -> APIClient:
    settings.MFA_REQUIRED_ROLES = []
    client = APIClient()
    client.force_authenticate(person("notify-admin", Role.ADMIN))
    return client


def register(admin_api, integration_id: str, provider: str, **fields):
    body = {"integration_id": integration_id, "name": integration_id, "type": "notification", "provider": provider}
    return admin_api.post("/api/v1/integrations", {**body, **fields}, format="json")


def twilio_sms(admin_api, twilio, **options):
    return register(
        admin_api,
        "sms",
        "twilio_sms",
        endpoint_url=twilio.url,
        auth_type="basic",
        auth_config={"username": ACCOUNT_SID, "password": AUTH_TOKEN},
        options={"from": TWILIO_NUMBER, "to": ON_CALL_PHONE, **options},
    )


def sns(admin_api, moto_url, **options):
    return register(
        admin_api,
        "aws_sms",
        "sns",
        endpoint_url=moto_url,
        auth_type="basic",
        auth_config={"username": AWS_KEY_ID, "password": AWS_SECRET},
        options={"region": REGION, **options},
    )


def ses(admin_api, moto_url, **options):
    return register(
        admin_api,
        "aws_email",
        "ses",
        endpoint_url=moto_url,
        options={"from": SENDER, "to": ["ops@example.com"], "region": REGION, **options},
    )


def slack_api(admin_api, slack, **options):
    return register(
        admin_api,
        "slack_bot",
        "slack_api",
        endpoint_url=f"{slack.url}/api",
        auth_type="bearer",
        auth_config={"token": BOT_TOKEN},
        options={"channel": "C0OPS00001", **options},
    )


def register_working(provider: str, admin_api, twilio, slack, moto_url: str) -> str:
    """One working integration of `provider`; its integration_id."""
    if provider == "twilio_sms":
        response = twilio_sms(admin_api, twilio)
    elif provider == "sns":
        response = sns(admin_api, moto_url, to=ON_CALL_PHONE)
    elif provider == "ses":
        response = ses(admin_api, moto_url)
    else:
        response = slack_api(admin_api, slack)
    assert response.status_code == 201, response.content
    return response.json()["integration_id"]


def send(client, integration_id: str, payload: dict, message_type: str = "sync"):
    body = {"message_type": message_type, "payload": payload}
    return client.post(f"/api/v1/integrations/{integration_id}/messages", body, format="json")


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


# --- Twilio SMS ---------------------------------------------------------------------------------------


def test_twilio_sms_reaches_the_messaging_api_as_the_account(admin_api, system_client, twilio):
    # given an SMS integration with the account's SID and auth token
    registered = twilio_sms(admin_api, twilio)
    assert registered.status_code == 201, registered.content
    assert registered.json()["auth_config"] == {"password": "••••", "username": ACCOUNT_SID}

    # when a message is sent now, to a number written the way people write it
    response = send(system_client, "sms", {"method": "send_sms", "to": "+82 10-1234-5678", "text": "디스크 가득 참"})

    # then Twilio got the form the SDK sends, authenticated as the account, and its answer comes back
    assert response.status_code == 200, response.content
    result = response.json()["result"]
    assert result["sid"].startswith("SM") and result["status"] == "queued"
    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert (
        request.headers["Authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    )
    form = parse_qs(request.body.decode())
    assert (form["To"], form["From"], form["Body"]) == ([ON_CALL_PHONE], [TWILIO_NUMBER], ["디스크 가득 참"])
    assert [message["sid"] for message in twilio.messages] == [result["sid"]]
    assert_no_secret(registered.content.decode(), response.content.decode())


def test_twilio_sms_can_send_through_a_messaging_service(admin_api, system_client, twilio):
    service = "MG" + "a" * 32
    assert (
        register(
            admin_api,
            "sms",
            "twilio_sms",
            endpoint_url=twilio.url,
            auth_type="basic",
            auth_config={"username": ACCOUNT_SID, "password": AUTH_TOKEN},
            options={"messaging_service_sid": service, "to": ON_CALL_PHONE},
        ).status_code
        == 201
    )

    response = send(system_client, "sms", {"method": "send_sms", "to": ON_CALL_PHONE, "text": "hi"})

    assert response.status_code == 200, response.content
    form = parse_qs(twilio.requests[0].body.decode())
    assert form["MessagingServiceSid"] == [service] and "From" not in form


def test_our_event_becomes_a_short_sms_to_the_on_call_number(admin_api, twilio):
    assert twilio_sms(admin_api, twilio).status_code == 201

    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    message = deliver(message.pk)

    assert message.status == MessageStatus.DELIVERED, message.last_error
    [sms] = twilio.messages
    assert sms["to"] == ON_CALL_PHONE
    # in Korean, the default, with the link since it fits
    assert sms["body"] == (
        "[CRITICAL] 아무도 확인하지 않음: Disk full on db-1. 상태: 호출 중. 인시던트: #42. "
        "http://127.0.0.1:8000/api/v1/incidents/42"
    )


def test_twilio_refusing_the_number_is_permanent_and_not_retried(admin_api, system_client, twilio, fast_retries):
    assert twilio_sms(admin_api, twilio).status_code == 201

    # when an async message goes to a number Twilio says is not valid
    queued = send(system_client, "sms", {"method": "send_sms", "to": INVALID_NUMBER, "text": "x"}, "async")
    assert queued.status_code == 202
    message_id = queued.json()["message_id"]
    first = deliver(message_id)
    again = deliver(message_id)

    # then it failed at once with Twilio's code and message, and was sent once
    assert (first.status, again.attempts) == (MessageStatus.FAILED, 1)
    assert "error 21211" in first.last_error and "is not a valid phone number" in first.last_error
    assert len(twilio.requests) == 1
    detail = system_client.get(f"/api/v1/integrations/sms/messages/{message_id}").json()
    [attempt] = detail["delivery_attempts"]
    assert (attempt["outcome"], attempt["http_status"]) == ("failed", 400)
    assert_no_secret(json.dumps(detail))


def test_a_wrong_auth_token_is_a_502_naming_twilios_code_but_not_the_token(admin_api, system_client, twilio):
    wrong = "wrong-token-never-shown-3c"
    twilio_sms(admin_api, twilio)
    patched = admin_api.patch("/api/v1/integrations/sms", {"auth_config": {"password": wrong}}, format="json")
    assert patched.status_code == 200

    response = send(system_client, "sms", {"method": "send_sms", "to": ON_CALL_PHONE, "text": "x"})

    assert response.status_code == 502
    assert "HTTP 401, error 20003" in response.json()["error"]["message"]
    assert wrong not in response.content.decode() and wrong not in patched.content.decode()
    assert twilio.messages == []


def test_twilio_throttling_is_retried_after_its_retry_after(admin_api, system_client, twilio):
    assert twilio_sms(admin_api, twilio).status_code == 201
    twilio.fail_next(("too_many", 40))
    queued = send(system_client, "sms", {"method": "send_sms", "to": ON_CALL_PHONE, "text": "retry me"}, "async")
    message_id = queued.json()["message_id"]

    # when the first try meets a 429 with Retry-After: 40
    before = timezone.now()
    first = deliver(message_id)
    early = deliver(message_id)

    # then the message waits at least 40 s (the default backoff alone is 2-2.5 s), and an early task sends nothing
    assert first.status == MessageStatus.PENDING
    assert "HTTP 429, error 20429" in first.last_error
    assert first.next_attempt_at - before >= timedelta(seconds=40)
    assert (early.attempts, len(twilio.requests)) == (1, 1)
    # and once the wait is over, the retry delivers it exactly once
    OutboundMessage.objects.filter(pk=message_id).update(next_attempt_at=timezone.now())
    delivered = deliver(message_id)
    assert delivered.status == MessageStatus.DELIVERED
    assert [message["body"] for message in twilio.messages] == ["retry me"]


# --- AWS SNS --------------------------------------------------------------------------------------------


def test_sns_sends_an_sms_that_moto_records(admin_api, system_client, aws):
    registered = sns(admin_api, aws, to=ON_CALL_PHONE)
    assert registered.status_code == 201, registered.content
    assert registered.json()["auth_config"] == {"password": "••••", "username": AWS_KEY_ID}

    response = send(system_client, "aws_sms", {"method": "send_sms", "to": "+821098765432", "text": "DB 디스크 경보"})

    assert response.status_code == 200, response.content
    result = response.json()["result"]
    recorded = [sms for sms in moto_recorded(aws, "sns", "SMS") if sms["message_id"] == result["message_id"]]
    assert recorded == [
        {"message_id": result["message_id"], "phone_number": "+821098765432", "message": "DB 디스크 경보"}
    ]
    assert_no_secret(registered.content.decode(), response.content.decode())


def test_our_event_is_published_to_the_sns_topic_in_english_when_asked(admin_api, aws):
    topic = aws_admin(aws, "sns").create_topic(Name="oncall-alerts")["TopicArn"]
    assert sns(admin_api, aws, topic_arn=topic, language="en").status_code == 201

    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    message = deliver(message.pk)

    assert message.status == MessageStatus.DELIVERED, message.last_error
    [recorded] = [item for item in moto_recorded(aws, "sns", "Topic") if item["arn"] == topic]
    [(_message_id, text, subject, _attributes, _group)] = recorded["sent_notifications"]
    assert text.startswith("[CRITICAL] Nobody acknowledged: Disk full on db-1. State: triggered. Incident: #42.")
    assert subject == "[CRITICAL] Disk full on db-1 — Nobody acknowledged"
    assert message.delivery_attempts.get().ok


def test_sns_to_a_topic_that_does_not_exist_is_permanent(admin_api, system_client, aws, fast_retries):
    missing = f"arn:aws:sns:{REGION}:123456789012:no-such-topic"
    assert sns(admin_api, aws, topic_arn=missing).status_code == 201

    queued = send(system_client, "aws_sms", {"method": "send_sms", "text": "x"}, "async")
    first = deliver(queued.json()["message_id"])
    again = deliver(first.pk)

    assert (first.status, again.attempts) == (MessageStatus.FAILED, 1)
    assert "AWS SNS refused Publish (HTTP 404, NotFound)" in first.last_error


def test_an_aws_endpoint_that_is_down_is_retried(admin_api, system_client, aws):
    down = f"http://127.0.0.1:{free_port()}"
    assert sns(admin_api, down, to=ON_CALL_PHONE).status_code == 201

    queued = send(system_client, "aws_sms", {"method": "send_sms", "text": "x"}, "async")
    message = deliver(queued.json()["message_id"])

    assert message.status == MessageStatus.PENDING
    assert "connection failed" in message.last_error and "Connection refused" in message.last_error


# --- AWS SES --------------------------------------------------------------------------------------------


def test_ses_sends_an_email_that_moto_records(admin_api, system_client, aws):
    # given a verified sender and an integration on the worker's own credentials (auth_type none)
    aws_admin(aws, "sesv2").create_email_identity(EmailIdentity=SENDER)
    assert ses(admin_api, aws).status_code == 201
    payload = {
        "method": "send_email",
        "to": "kim@example.com, lee@example.com",
        "subject": "주간 점검",
        "text": "Plain",
        "html": "<p>점검</p>",
    }

    response = send(system_client, "aws_email", payload)

    assert response.status_code == 200, response.content
    result = response.json()["result"]
    assert result["accepted"] == ["kim@example.com", "lee@example.com"]
    [email] = [item for item in moto_recorded(aws, "ses", "Message") if item["id"] == result["message_id"]]
    assert (email["source"], email["subject"]) == (SENDER, "주간 점검")
    assert email["destinations"]["ToAddresses"] == ["kim@example.com", "lee@example.com"]
    assert email["body"] == "<p>점검</p>"  # moto keeps one body: the HTML part when there is one


def test_our_event_is_emailed_through_ses(admin_api, aws):
    aws_admin(aws, "sesv2").create_email_identity(EmailIdentity=SENDER)
    assert ses(admin_api, aws).status_code == 201

    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    message = deliver(message.pk)

    assert message.status == MessageStatus.DELIVERED, message.last_error
    [sent] = [item for item in moto_recorded(aws, "ses", "Message") if f"알림 #{message.pk}입니다" in item["body"]]
    assert sent["subject"] == "[CRITICAL] Disk full on db-1 — 아무도 확인하지 않음"
    assert sent["destinations"]["ToAddresses"] == ["ops@example.com"]


def test_an_unverified_sender_is_a_502_and_not_retried(admin_api, system_client, aws, fast_retries):
    assert ses(admin_api, aws, **{"from": "not-verified@example.org"}).status_code == 201
    payload = {"method": "send_email", "to": "kim@example.com", "subject": "s", "text": "t"}

    now = send(system_client, "aws_email", payload)
    queued = send(system_client, "aws_email", payload, "async")
    later = deliver(queued.json()["message_id"])
    again = deliver(later.pk)

    assert now.status_code == 502
    assert "AWS SES refused SendEmail (HTTP 400, MessageRejected)" in now.json()["error"]["message"]
    assert (later.status, again.attempts) == (MessageStatus.FAILED, 1)


# --- Slack Web API --------------------------------------------------------------------------------------


def test_slack_chat_post_message_with_the_bot_token(admin_api, system_client, slack):
    registered = slack_api(admin_api, slack)
    assert registered.status_code == 201, registered.content

    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Disk full*"}}]
    response = send(system_client, "slack_bot", {"method": "post_message", "text": "Disk full", "blocks": blocks})

    assert response.status_code == 200, response.content
    [request] = slack.requests
    assert request.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert request.headers["Content-Type"].startswith("application/json")
    assert json.loads(request.body) == {"channel": "C0OPS00001", "text": "Disk full", "blocks": blocks}
    [posted] = slack.messages
    assert response.json()["result"] == {"channel": "C0OPS00001", "ts": posted["ts"]}
    assert_no_secret(registered.content.decode(), response.content.decode())


def test_our_event_is_posted_to_the_default_channel(admin_api, slack):
    assert slack_api(admin_api, slack).status_code == 201

    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    message = deliver(message.pk)

    assert message.status == MessageStatus.DELIVERED, message.last_error
    [posted] = slack.messages
    assert posted["channel"] == "C0OPS00001"
    assert posted["text"].startswith("*아무도 확인하지 않음:* Disk full on db-1. 심각도: 치명.")


@pytest.mark.parametrize(("channel", "error"), [("#sales", "not_in_channel"), ("#nowhere", "channel_not_found")])
def test_slack_ok_false_is_a_permanent_error_and_not_retried(
    admin_api, system_client, slack, fast_retries, channel, error
):
    assert slack_api(admin_api, slack).status_code == 201

    now = send(system_client, "slack_bot", {"method": "post_message", "channel": channel, "text": "x"})
    queued = send(system_client, "slack_bot", {"method": "post_message", "channel": channel, "text": "x"}, "async")
    later = deliver(queued.json()["message_id"])
    again = deliver(later.pk)

    assert now.status_code == 502
    assert now.json()["error"]["message"].endswith(f"Slack refused chat.postMessage: {error}")
    assert (later.status, again.attempts) == (MessageStatus.FAILED, 1)
    assert len(slack.requests) == 2 and slack.messages == []


def test_a_bad_bot_token_is_invalid_auth_without_the_token(admin_api, system_client, slack):
    slack_api(admin_api, slack)
    admin_api.patch(
        "/api/v1/integrations/slack_bot", {"auth_config": {"token": "xoxb-revoked-never-shown"}}, format="json"
    )

    response = send(system_client, "slack_bot", {"method": "post_message", "text": "x"})

    assert response.status_code == 502
    assert "invalid_auth" in response.json()["error"]["message"]
    assert "xoxb-revoked-never-shown" not in response.content.decode()


def test_slack_rate_limit_is_retried_after_its_retry_after(admin_api, system_client, slack):
    assert slack_api(admin_api, slack).status_code == 201
    slack.fail_next(("ratelimited", 30))
    queued = send(system_client, "slack_bot", {"method": "post_message", "text": "once"}, "async")
    message_id = queued.json()["message_id"]

    before = timezone.now()
    first = deliver(message_id)

    assert first.status == MessageStatus.PENDING
    assert "HTTP 429" in first.last_error and "ratelimited" in first.last_error
    assert first.next_attempt_at - before >= timedelta(seconds=30)
    OutboundMessage.objects.filter(pk=message_id).update(next_attempt_at=timezone.now())
    assert deliver(message_id).status == MessageStatus.DELIVERED
    assert [posted["text"] for posted in slack.messages] == ["once"]


# --- What every provider shares -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "payload", "field"),
    [
        ("twilio_sms", {"method": "send_sms", "to": "010-1234", "text": "x"}, "payload.to"),
        ("twilio_sms", {"method": "send_sms", "to": ON_CALL_PHONE, "text": "x" * 1601}, "payload.text"),
        ("sns", {"method": "send_sms", "to": "+1", "text": "x"}, "payload.to"),
        ("ses", {"method": "send_email", "to": "not-an-address", "subject": "s", "text": "t"}, "payload.to"),
        ("ses", {"method": "send_email", "to": "kim@example.com", "text": "t"}, "payload.subject"),
        ("slack_api", {"method": "post_message", "blocks": []}, "payload.text"),
    ],
)
def test_a_bad_payload_is_a_400_naming_the_field_and_sends_nothing(
    admin_api, system_client, twilio, slack, aws, provider, payload, field
):
    integration_id = register_working(provider, admin_api, twilio, slack, aws)

    response = send(system_client, integration_id, payload)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert twilio.requests == [] and slack.requests == []
    assert not OutboundMessage.objects.exists()


@pytest.mark.parametrize("provider", ["twilio_sms", "sns", "ses", "slack_api"])
def test_a_service_that_never_answers_is_a_504_within_our_timeout(admin_api, system_client, settings, aws, provider):
    # given a provider whose service takes the connection and never answers
    settings.INTEGRATION_SYNC_TIMEOUT = (0.5, 0.5)
    with SilentServer() as silent:
        integration_id = register_working(provider, admin_api, silent, silent, silent.url)
        payload = {
            "twilio_sms": {"method": "send_sms", "to": ON_CALL_PHONE, "text": "x"},
            "sns": {"method": "send_sms", "text": "x"},
            "ses": {"method": "send_email", "to": "kim@example.com", "subject": "s", "text": "t"},
            "slack_api": {"method": "post_message", "text": "x"},
        }[provider]

        # when a message is sent now
        response = send(system_client, integration_id, payload)

    # then the SDK gave up at our read timeout, and the caller hears it was a timeout
    assert response.status_code == 504, response.content
    assert response.json()["error"]["code"] == "provider_timeout"


def test_an_unknown_method_lists_the_providers_methods(admin_api, system_client, twilio):
    twilio_sms(admin_api, twilio)

    response = send(system_client, "sms", {"method": "send_email", "to": "a@example.com"})

    assert response.status_code == 400
    assert "its methods are: send_sms" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("provider", "fields", "field", "says"),
    [
        ("twilio_sms", {"auth_type": "basic", "auth_config": {"username": ACCOUNT_SID}}, "auth_config", "password"),
        ("twilio_sms", {"auth_type": "bearer", "auth_config": {"token": "t"}}, "auth_type", "basic"),
        ("twilio_sms", {"auth_type": "basic", "options": {"to": ON_CALL_PHONE}}, "options", "options.from"),
        ("sns", {"options": {"region": "seoul"}}, "options", "options.region"),
        ("sns", {"options": {}}, "options", "options.topic_arn"),
        ("ses", {"options": {"to": ["ops@example.com"]}}, "options", "options.from"),
        ("ses", {"options": {"from": SENDER}}, "options", "at least one email address"),
        ("slack_api", {"auth_type": "bearer", "auth_config": {"token": "t"}}, "options", "options.channel"),
        ("slack_api", {"auth_type": "none"}, "auth_type", "bearer"),
    ],
)
def test_an_integration_that_cannot_work_is_refused_naming_the_field(admin_api, provider, fields, field, says):
    auth = {"auth_config": {"username": ACCOUNT_SID, "password": AUTH_TOKEN}} if provider == "twilio_sms" else {}

    response = register(admin_api, "broken", provider, **{**auth, **fields})

    assert response.status_code == 400, response.content
    assert says in response.json()["error"]["fields"][field]
    assert_no_secret(response.content.decode())


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest", "http://10.0.0.1/api"])
@pytest.mark.parametrize("provider", ["twilio_sms", "sns", "ses", "slack_api"])
def test_an_endpoint_inside_our_network_is_refused_when_saved(admin_api, settings, provider, target):
    settings.INTEGRATIONS_ALLOW_PRIVATE_TARGETS = False

    response = register(admin_api, "inside", provider, endpoint_url=target)

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["endpoint_url"].startswith("Refused: ")


def test_the_sdks_connect_only_through_our_guard(admin_api, system_client, settings, twilio, aws):
    # given integrations saved while loopback targets were allowed (a local test receiver) ...
    assert twilio_sms(admin_api, twilio).status_code == 201
    assert sns(admin_api, aws, to=ON_CALL_PHONE).status_code == 201
    before = len(moto_recorded(aws, "sns", "SMS"))
    # ... when the guard is back on, the twilio SDK and boto3 both meet it at connect time
    settings.INTEGRATIONS_ALLOW_PRIVATE_TARGETS = False

    answers = [
        send(system_client, "sms", {"method": "send_sms", "to": ON_CALL_PHONE, "text": "x"}),
        send(system_client, "aws_sms", {"method": "send_sms", "text": "x"}),
    ]

    for answer in answers:
        assert answer.status_code == 502
        assert "Refused: 127.0.0.1 is a loopback address" in answer.json()["error"]["message"]
    assert twilio.requests == []
    assert len(moto_recorded(aws, "sns", "SMS")) == before


def test_no_secret_in_any_answer_of_the_api(admin_api, system_client, twilio, slack, aws):
    # given all four providers registered with their secrets, and a failing message for each
    twilio_sms(admin_api, twilio)
    sns(admin_api, aws, topic_arn=f"arn:aws:sns:{REGION}:123456789012:missing")
    ses(admin_api, aws, **{"from": "unverified@example.net"})
    slack_api(admin_api, slack)
    twilio.fail_next("server_error")
    failures = [
        send(system_client, "sms", {"method": "send_sms", "to": ON_CALL_PHONE, "text": "x"}),
        send(system_client, "aws_sms", {"method": "send_sms", "text": "x"}),
        send(system_client, "aws_email", {"method": "send_email", "to": "a@example.com", "subject": "s", "text": "t"}),
        send(system_client, "slack_bot", {"method": "post_message", "channel": "#nowhere", "text": "x"}),
    ]
    assert [failure.status_code for failure in failures] == [502, 502, 502, 502]

    # when everything the API shows is read back
    pages = [admin_api.get("/api/v1/integrations")]
    for integration_id in ("sms", "aws_sms", "aws_email", "slack_bot"):
        pages.append(admin_api.get(f"/api/v1/integrations/{integration_id}"))
        for row in system_client.get(f"/api/v1/integrations/{integration_id}/messages").json()["results"]:
            pages.append(system_client.get(f"/api/v1/integrations/{integration_id}/messages/{row['message_id']}"))

    # then no secret is in any of it, while the errors still say what went wrong
    assert_no_secret(*(page.content.decode() for page in pages + failures))
    assert "error 20500" in failures[0].json()["error"]["message"]
