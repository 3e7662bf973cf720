"""Delivering one message: what the receiver gets, and what the admin sees after each outcome.

These tests run `deliver` in the test's thread against local servers; the tests in test_worker.py
do the same through the real broker and worker.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import DeliveryAttempt, MessageStatus
from integrations.services import deliver, notify
from tests.integrations.conftest import EXHAUSTED_PAYLOAD
from tests.integrations.receivers import HANG

pytestmark = pytest.mark.django_db


def test_webhook_is_signed_so_the_receiver_can_verify_it(receiver, make_integration):
    # given a webhook integration with a signing secret
    make_integration(target=f"{receiver.url}/hooks/oncall", secret="s3cret-shared-with-the-receiver")
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when it is delivered
    message = deliver(message.pk)

    # then the receiver got the event as JSON, and the signature matches the raw body
    [request] = receiver.requests
    assert request.path == "/hooks/oncall"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.headers["X-Oncall-Event"] == "incident.exhausted"
    expected = hmac.new(b"s3cret-shared-with-the-receiver", request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Oncall-Signature"], f"sha256={expected}")
    body = request.json()
    assert body["event"] == "incident.exhausted"
    assert body["payload"] == EXHAUSTED_PAYLOAD
    assert body["message_id"] == message.pk
    assert abs(timezone.now() - timezone.datetime.fromisoformat(body["sent_at"])) < timedelta(minutes=1)
    # and the message shows as delivered after one successful attempt
    assert message.status == MessageStatus.DELIVERED
    assert message.delivered_at is not None
    [attempt] = message.delivery_attempts.all()
    assert (attempt.number, attempt.ok, attempt.http_status, attempt.error) == (1, True, 200, "")
    assert attempt.finished_at >= attempt.started_at


def test_webhook_without_a_secret_is_sent_unsigned(receiver, make_integration):
    make_integration(target=receiver.url)
    [message] = notify("incident.triggered", EXHAUSTED_PAYLOAD, dedup_key="incident:42:triggered")

    deliver(message.pk)

    [request] = receiver.requests
    assert "X-Oncall-Signature" not in request.headers
    assert request.json()["event"] == "incident.triggered"


def test_slack_gets_a_readable_summary_in_korean(receiver, make_integration):
    # given a Slack incoming webhook (no language set: Korean)
    make_integration("ops-slack", kind="slack", target=f"{receiver.url}/services/T0/B0/XYZ")
    payload = {**EXHAUSTED_PAYLOAD, "summary": "Disk full on db-1 <prod> & replica"}
    [message] = notify("incident.exhausted", payload, dedup_key="incident:42:exhausted")

    # when it is delivered
    message = deliver(message.pk)

    # then Slack received one paragraph with the summary and the facts, its markup characters escaped
    [request] = receiver.requests
    text = request.json()["text"]
    assert "Disk full on db-1 &lt;prod&gt; &amp; replica" in text
    assert text.startswith("*아무도 확인하지 않음:*")
    for fact in ("심각도: 치명.", "상태: 호출 중.", "인시던트: #42.", "통화 시도: 5회.", "사유: nobody pressed 1"):
        assert fact in text
    assert "\n" not in text
    assert text.endswith("<http://127.0.0.1:8000/api/v1/incidents/42|인시던트 열기>")
    assert message.status == MessageStatus.DELIVERED


def test_slack_in_english_when_the_integration_asks_for_it(receiver, make_integration):
    make_integration("ops-slack", kind="slack", target=f"{receiver.url}/services/T0/B0/XYZ", options={"language": "en"})
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    deliver(message.pk)

    text = receiver.requests[0].json()["text"]
    assert text.startswith("*Nobody acknowledged:* Disk full on db-1.")
    for fact in ("Severity: critical.", "State: triggered.", "Incident: #42.", "Call attempts: 5.", "nobody pressed 1"):
        assert fact in text
    assert text.endswith("<http://127.0.0.1:8000/api/v1/incidents/42|Open the incident>")


def test_email_reaches_the_smtp_server_with_the_summary_as_subject(smtp_server, make_integration, settings):
    # given an email integration for two people who read English
    settings.INTEGRATION_EMAIL_FROM = "oncall@example.com"
    make_integration("ops-email", kind="email", target="kim@example.com, lee@example.com", options={"language": "en"})
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when it is delivered
    message = deliver(message.pk)

    # then the SMTP server received one mail for both, with the summary in the subject
    [mail] = smtp_server.mails
    assert mail.mail_from == "oncall@example.com"
    assert mail.rcpt_tos == ["kim@example.com", "lee@example.com"]
    # (a mail client unfolds the encoded header and drops the folding whitespace)
    assert mail.message["Subject"].strip() == "[CRITICAL] Disk full on db-1 — Nobody acknowledged"
    assert mail.message["X-Oncall-Event"] == "incident.exhausted"
    body = mail.message.get_content()
    assert body.startswith("Disk full on db-1\n")
    assert "Incident: #42" in body
    assert "Reason: nobody pressed 1 after 5 calls" in body
    assert message.status == MessageStatus.DELIVERED


def test_email_is_in_korean_unless_the_integration_says_otherwise(smtp_server, make_integration):
    make_integration("ops-email", kind="email", target="kim@example.com")
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    message = deliver(message.pk)

    [mail] = smtp_server.mails
    assert mail.message["Subject"].strip() == "[CRITICAL] Disk full on db-1 — 아무도 확인하지 않음"
    body = mail.message.get_content()
    assert body.startswith("Disk full on db-1\n\n아무도 확인하지 않음.\n")
    for line in ("심각도: 치명", "인시던트: #42", "통화 시도: 5회", "사유: nobody pressed 1 after 5 calls"):
        assert f"\n{line}\n" in body
    assert body.endswith(f"이벤트: incident.exhausted\n온콜 에스컬레이션 서비스의 알림 #{message.pk}입니다.\n")


def test_an_address_the_smtp_server_refuses_fails_at_once(smtp_server, make_integration):
    make_integration("ops-email", kind="email", target="nobody@example.com")
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    message = deliver(message.pk)

    assert message.status == MessageStatus.FAILED
    assert "550" in message.last_error
    assert "nobody@example.com" in message.last_error
    assert smtp_server.mails == []


def test_server_errors_are_retried_until_delivered(receiver, make_integration, fast_retries):
    # given a receiver that fails twice before it recovers
    receiver.plan(500, 502)
    make_integration(target=receiver.url)
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when delivery is tried, and tried again each time a retry falls due
    first = deliver(message.pk)
    second = deliver(message.pk)
    third = deliver(message.pk)

    # then the first two tries left it pending with the error shown, and the third delivered it
    assert (first.status, first.attempts) == (MessageStatus.PENDING, 1)
    assert first.last_error.startswith("HTTP 500")
    assert (second.status, second.attempts) == (MessageStatus.PENDING, 2)
    assert (third.status, third.attempts, third.last_error) == (MessageStatus.DELIVERED, 3, "")
    attempts = list(DeliveryAttempt.objects.filter(message=message).values_list("number", "ok", "http_status"))
    assert attempts == [(1, False, 500), (2, False, 502), (3, True, 200)]
    assert len(receiver.requests) == 3


def test_a_client_error_fails_at_once_with_the_reason(receiver, make_integration, fast_retries):
    # given a receiver that rejects our request
    receiver.plan((400, {"Content-Type": "text/plain"}, b"unknown field 'payload'"))
    make_integration(target=receiver.url)
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when it is delivered, and a duplicate task arrives later
    message = deliver(message.pk)
    again = deliver(message.pk)

    # then it failed at once, the reason is shown, and nothing was sent a second time
    assert message.status == MessageStatus.FAILED
    assert message.last_error == "Permanent failure: HTTP 400 Bad Request: unknown field 'payload'"
    assert again.status == MessageStatus.FAILED
    assert len(receiver.requests) == 1
    assert message.delivery_attempts.count() == 1


@pytest.mark.parametrize("status", [408, 429])
def test_request_timeout_and_too_many_requests_are_retried(receiver, make_integration, status):
    receiver.plan(status)
    make_integration(target=receiver.url)
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    message = deliver(message.pk)

    assert message.status == MessageStatus.PENDING
    assert message.last_error.startswith(f"HTTP {status}")


def test_a_receiver_that_does_not_answer_in_time_is_retried(receiver, make_integration, settings, fast_retries):
    # given a receiver that hangs past our read timeout once
    settings.INTEGRATION_HTTP_TIMEOUT = (1.0, 0.2)
    receiver.plan(HANG)
    make_integration(target=receiver.url)
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when delivery is tried twice
    first = deliver(message.pk)
    second = deliver(message.pk)

    # then the first try timed out and was retried, and the second delivered it
    assert first.status == MessageStatus.PENDING
    assert "timed out" in first.last_error
    assert second.status == MessageStatus.DELIVERED
    timed_out, delivered = message.delivery_attempts.all()
    assert (timed_out.ok, timed_out.http_status) == (False, None)
    assert "timed out" in timed_out.error
    assert delivered.ok


def test_a_receiver_that_is_down_is_retried(make_integration):
    # given a webhook pointing at a port where nothing listens
    from tests.embedded_services import free_port

    make_integration(target=f"http://127.0.0.1:{free_port()}/hook")
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    message = deliver(message.pk)

    assert message.status == MessageStatus.PENDING
    assert "connection failed" in message.last_error


def test_retries_back_off_and_an_early_task_sends_nothing(receiver, make_integration):
    # given the default backoff and a receiver that fails
    receiver.plan(503, 503)
    make_integration(target=receiver.url)
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when delivery fails, and a second task for the same message runs straight away
    before = timezone.now()
    message = deliver(message.pk)
    early = deliver(message.pk)

    # then the retry is due in about two seconds, and the early task sent nothing
    assert timedelta(seconds=1.9) <= message.next_attempt_at - before <= timedelta(seconds=3)
    assert early.attempts == 1
    assert len(receiver.requests) == 1


def test_retry_after_is_honoured_but_never_beyond_an_hour(receiver, make_integration):
    # (X's rate-limit windows are 15 minutes: a try before the window reopens only spends an attempt)
    receiver.plan((429, {"Retry-After": "900"}, b"slow down"), (503, {"Retry-After": "7200"}, b"maintenance"))
    integration = make_integration(target=receiver.url)
    [first] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:1:exhausted")
    [second] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:2:exhausted")
    assert first.integration == second.integration == integration

    before = timezone.now()
    first = deliver(first.pk)
    second = deliver(second.pk)

    assert timedelta(seconds=899) <= first.next_attempt_at - before <= timedelta(seconds=905)
    assert timedelta(seconds=3599) <= second.next_attempt_at - before <= timedelta(seconds=3601)


def test_gives_up_after_max_attempts_and_dead_letters_it(receiver, make_integration, fast_retries):
    # given an integration allowed two tries and a receiver that keeps failing
    receiver.plan(500, 500, 500)
    make_integration(target=receiver.url, max_attempts=2)
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when delivery is tried three times
    deliver(message.pk)
    deliver(message.pk)
    message = deliver(message.pk)

    # then it was dead-lettered after the second, saying so, and the third task sent nothing
    assert message.status == MessageStatus.DEAD
    assert message.last_error.startswith("Gave up after 2 attempts. Last error: HTTP 500")
    assert len(receiver.requests) == 2
    assert message.delivery_attempts.count() == 2


def test_a_message_for_an_integration_deactivated_since_is_not_sent(receiver, make_integration):
    integration = make_integration(target=receiver.url)
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    integration.active = False
    integration.save()

    message = deliver(message.pk)

    assert message.status == MessageStatus.FAILED
    assert message.last_error == "Not sent: integration 'ops-webhook' is inactive."
    assert receiver.requests == []
