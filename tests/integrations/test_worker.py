"""End to end: committed data, the real Redis broker, a real Celery worker, a local receiver."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from integrations.models import MessageStatus, OutboundMessage
from integrations.services import deliver, notify
from integrations.tasks import retry_due_messages
from tests.integrations.conftest import EXHAUSTED_PAYLOAD
from tests.integrations.receivers import HANG

pytestmark = pytest.mark.e2e


def wait_until(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not (result := predicate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result


def delivered(message_id: int) -> OutboundMessage | None:
    message = OutboundMessage.objects.get(pk=message_id)
    return message if message.status in (MessageStatus.DELIVERED, MessageStatus.FAILED) else None


def test_a_notification_made_inside_a_transaction_is_delivered_after_commit(celery_worker, receiver, make_integration):
    # given a signed webhook integration
    make_integration(target=f"{receiver.url}/hooks/oncall", secret="shared-secret")

    # when an incident is exhausted inside a transaction
    with transaction.atomic():
        [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
        time.sleep(0.3)
        # then nothing is sent before the transaction commits
        assert receiver.requests == []

    # and after the commit the worker delivers it, signed
    [request] = receiver.wait_for(1)
    expected = "sha256=" + hmac.new(b"shared-secret", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Oncall-Signature"] == expected
    assert request.json()["payload"]["summary"] == "Disk full on db-1"
    message = wait_until(lambda: delivered(message.pk))
    assert message.status == MessageStatus.DELIVERED
    assert list(message.delivery_attempts.values_list("number", "ok", "http_status")) == [(1, True, 200)]


def test_a_rolled_back_transaction_sends_nothing(celery_worker, receiver, make_integration):
    make_integration(target=receiver.url)

    with pytest.raises(RuntimeError), transaction.atomic():
        notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
        raise RuntimeError("the caller failed after notifying")

    time.sleep(0.5)
    assert receiver.requests == []
    assert not OutboundMessage.objects.exists()


def test_the_worker_retries_a_failing_receiver_until_it_answers(
    celery_worker, receiver, make_integration, fast_retries
):
    # given a receiver that answers 500 twice
    receiver.plan(500, 500)
    make_integration(target=receiver.url)

    # when a notification goes out
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # then the worker's scheduled retries deliver it on the third attempt
    assert len(receiver.wait_for(3)) == 3
    message = wait_until(lambda: delivered(message.pk))
    assert (message.status, message.attempts) == (MessageStatus.DELIVERED, 3)
    assert list(message.delivery_attempts.values_list("ok", "http_status")) == [
        (False, 500),
        (False, 500),
        (True, 200),
    ]


def test_the_beat_sweep_delivers_a_message_whose_task_was_lost(celery_worker, receiver, make_integration, settings):
    # given a pending message that no task will ever deliver (as after a broker outage)
    settings.INTEGRATION_SWEEP_GRACE_SECONDS = 0
    integration = make_integration(target=receiver.url)
    message = OutboundMessage.objects.create(
        integration=integration,
        event="incident.exhausted",
        dedup_key="incident:42:exhausted",
        payload=EXHAUSTED_PAYLOAD,
        next_attempt_at=timezone.now() - timedelta(minutes=1),
    )

    # when beat sends the sweep task
    retry_due_messages.delay()

    # then the worker runs the sweep, which queues the delivery, which reaches the receiver
    assert len(receiver.wait_for(1)) == 1
    assert wait_until(lambda: delivered(message.pk)).status == MessageStatus.DELIVERED


def test_an_admin_sends_a_test_notification(celery_worker, receiver, make_integration, admin_client):
    # given an integration not yet switched on
    integration = make_integration("new-crm", target=receiver.url, active=False)

    # when an admin sends it a test notification from the integrations list
    response = admin_client.post(
        "/admin/integrations/integration/",
        {"action": "send_test_notification", "_selected_action": [integration.pk]},
        follow=True,
    )

    # then the admin is told, and the receiver gets a test event
    assert "Queued a test notification for 1 integration(s)" in response.content.decode()
    [request] = receiver.wait_for(1)
    assert request.json()["event"] == "integration.test"
    assert request.json()["payload"]["summary"] == "Test notification for new-crm"


def test_two_workers_delivering_the_same_message_send_it_once(transactional_db, receiver, make_integration):
    # given a pending message (created directly: no task is queued for it) and a slow receiver
    receiver.plan(HANG)
    integration = make_integration(target=receiver.url)
    message = OutboundMessage.objects.create(
        integration=integration,
        event="incident.exhausted",
        dedup_key="incident:42:exhausted",
        payload=EXHAUSTED_PAYLOAD,
        next_attempt_at=timezone.now(),
    )

    # when two workers run its delivery at the same moment (a redelivered task, a sweep)
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            deliver(message.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    # then the receiver got it once, and there is one attempt
    message.refresh_from_db()
    assert len(receiver.requests) == 1
    assert message.status == MessageStatus.DELIVERED
    assert message.delivery_attempts.count() == 1
