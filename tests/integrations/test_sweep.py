"""The beat sweep: nothing is left behind when a task is lost or a worker dies mid-send.

In these tests the test's transaction never commits, so the delivery tasks `notify` queues on commit
are never sent: exactly the state a lost task leaves behind.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import MessageStatus, OutboundMessage
from integrations.services import ABANDONED_ATTEMPT_ERROR, deliver, notify, retry_due_messages
from tests.integrations.conftest import EXHAUSTED_PAYLOAD

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_grace(settings):
    settings.INTEGRATION_SWEEP_GRACE_SECONDS = 0


def _died_while_sending(message: OutboundMessage, minutes_ago: int) -> None:
    """The state a worker leaves when it dies mid-send: claimed, one attempt started, never finished."""
    started = timezone.now() - timedelta(minutes=minutes_ago)
    OutboundMessage.objects.filter(pk=message.pk).update(status=MessageStatus.SENDING, attempts=1, claimed_at=started)
    message.delivery_attempts.create(number=1, started_at=started)


def test_a_message_whose_task_was_lost_is_queued_again_once(make_integration, settings, no_grace):
    # given two messages whose delivery tasks never reached a worker
    make_integration("a", target="https://a.example.com")
    make_integration("b", target="https://b.example.com")
    notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when the sweep runs
    queued = retry_due_messages()

    # then both are queued again, still pending
    assert queued == 2
    assert set(OutboundMessage.objects.values_list("status", flat=True)) == {MessageStatus.PENDING}
    # and the next sweep, within the grace, leaves them to the tasks just queued
    settings.INTEGRATION_SWEEP_GRACE_SECONDS = 30
    assert retry_due_messages() == 0


def test_the_sweep_only_takes_messages_overdue_by_more_than_the_grace(make_integration, settings):
    # given a message created just now (its task is on its way), one whose retry is a minute away,
    # and one that fell due 40 seconds ago
    settings.INTEGRATION_SWEEP_GRACE_SECONDS = 30
    make_integration(target="https://a.example.com")
    now = timezone.now()
    notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:1:exhausted")
    [later] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:2:exhausted")
    [overdue] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:3:exhausted")
    OutboundMessage.objects.filter(pk=later.pk).update(next_attempt_at=now + timedelta(minutes=1))
    OutboundMessage.objects.filter(pk=overdue.pk).update(next_attempt_at=now - timedelta(seconds=40))

    # when the sweep runs
    # then it takes only the overdue one
    assert retry_due_messages() == 1
    assert OutboundMessage.objects.get(pk=overdue.pk).next_attempt_at >= now


def test_the_sweep_takes_no_more_than_its_limit_oldest_first(make_integration, no_grace):
    make_integration(target="https://a.example.com")
    created = [notify("incident.exhausted", {}, dedup_key=f"incident:{n}:exhausted")[0] for n in range(3)]

    assert retry_due_messages(limit=2) == 2

    # the two oldest were re-stamped by the sweep; the third still has its creation time
    oldest, middle, newest = (OutboundMessage.objects.get(pk=message.pk) for message in created)
    assert oldest.next_attempt_at > created[0].next_attempt_at
    assert middle.next_attempt_at > created[1].next_attempt_at
    assert newest.next_attempt_at == created[2].next_attempt_at


def test_a_message_a_dead_worker_left_sending_is_recovered_and_delivered(receiver, make_integration, no_grace):
    # given a message stuck in "sending" for ten minutes
    make_integration(target=receiver.url)
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    _died_while_sending(message, minutes_ago=10)

    # when the sweep runs, and the queued task then delivers it
    assert retry_due_messages() == 1
    message = deliver(message.pk)

    # then the dead attempt is closed with an explanation, and the second attempt delivered it
    assert message.status == MessageStatus.DELIVERED
    dead, delivered = message.delivery_attempts.all()
    assert (dead.ok, dead.error) == (False, ABANDONED_ATTEMPT_ERROR)
    assert dead.finished_at is not None
    assert (delivered.number, delivered.ok) == (2, True)
    assert len(receiver.requests) == 1


def test_a_message_another_worker_is_sending_right_now_is_left_alone(receiver, make_integration, no_grace):
    make_integration(target=receiver.url)
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    _died_while_sending(message, minutes_ago=0)

    assert retry_due_messages() == 0
    message = deliver(message.pk)  # a duplicate task

    assert message.status == MessageStatus.SENDING
    assert receiver.requests == []


def test_a_dead_worker_on_the_last_attempt_dead_letters_the_message(make_integration, no_grace):
    make_integration(target="https://a.example.com", max_attempts=1)
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    _died_while_sending(message, minutes_ago=10)

    assert retry_due_messages() == 0

    message.refresh_from_db()
    assert message.status == MessageStatus.DEAD
    assert message.last_error == f"Gave up after 1 attempts. Last error: {ABANDONED_ATTEMPT_ERROR}"
