"""Each notification provider speaks its service's protocol, through its real SDK, to a local server:
Twilio SMS (the twilio SDK, to a Messaging API server), AWS SNS and SES (boto3, to moto's server,
asserting what moto recorded), and Slack's chat.postMessage (to a Web API server). Registered and sent
through our API; async messages delivered by the service the worker runs (`deliver`), so retries are
observable. What every provider shares (bad input, timeouts, the SSRF guard, secrets) is in
test_notification_safeguards.py."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.utils import timezone

from integrations.models import MessageStatus, OutboundMessage
from integrations.services import deliver, notify
from tests.integrations.conftest import EXHAUSTED_PAYLOAD
from tests.integrations.notify_helpers import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    AWS_KEY_ID,
    BOT_TOKEN,
    ON_CALL_PHONE,
    REGION,
    SENDER,
    TWILIO_NUMBER,
    assert_no_secret,
    aws_admin,
    free_port,
    moto_recorded,
    register,
    send,
    ses,
    slack_api,
    sns,
    twilio_sms,
)
from tests.integrations.notify_servers import INVALID_NUMBER

pytestmark = pytest.mark.django_db


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


def test_a_stored_recording_becomes_an_sms_of_its_facts(admin_api, twilio):
    # given an SMS integration for every event, and a call recording stored (its event has no summary)
    assert twilio_sms(admin_api, twilio).status_code == 201
    stored = {
        "recording_id": 77,
        "kind": "voice",
        "session_id": "sess-9",
        "agent_id": "agent-3",
        "customer_id": "C-1009",
        "incident_id": None,
        "duration_seconds": 125.4,
        "format": "wav",
        "started_at": "2024-05-01T09:30:00+00:00",
        "url": "https://oncall.example.com/api/v1/recordings/77",
    }

    # when its event is delivered
    [message] = notify("recording.stored", stored, dedup_key="recording:77:stored")
    message = deliver(message.pk)

    # then the SMS says what was stored, not the event's title twice
    assert message.status == MessageStatus.DELIVERED, message.last_error
    [sms] = twilio.messages
    assert sms["body"] == (
        "녹음 저장됨. 녹음: #77. 종류: 음성 통화. 길이: 2분 5초. 고객: C-1009. 상담원: agent-3. 세션: sess-9. "
        "형식: wav. 시작 시각: 2024-05-01 18:30 KST. https://oncall.example.com/api/v1/recordings/77"
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
