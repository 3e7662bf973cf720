"""Who gets a notification, and that the same notification is never created twice."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from config.errors import InvalidInput
from integrations.models import MessageStatus, OutboundMessage
from integrations.selectors import messages_for, status_counts
from integrations.services import notify
from tests.integrations.conftest import EXHAUSTED_PAYLOAD, build_integration

pytestmark = pytest.mark.django_db


def test_notifying_twice_with_the_same_key_creates_one_message_per_integration(make_integration):
    # given two integrations that take the event
    make_integration("ops-webhook", target="https://hooks.example.com/oncall")
    make_integration("ops-email", kind="email", target="ops@example.com")

    # when the same notification is sent twice (a retried task, a repeated alert)
    first = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    second = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # then there is one pending message per integration, and the second call returned the same ones
    assert sorted(message.integration.name for message in first) == ["ops-email", "ops-webhook"]
    assert {message.pk for message in second} == {message.pk for message in first}
    assert OutboundMessage.objects.count() == 2
    assert status_counts(dedup_key="incident:42:exhausted") == {MessageStatus.PENDING: 2}
    assert [m.integration.name for m in messages_for(dedup_key="incident:42:exhausted")] == ["ops-email", "ops-webhook"]


def test_inactive_and_unsubscribed_integrations_get_nothing(make_integration):
    # given one integration per case
    make_integration("exhausted-only", target="https://a.example.com", events=["incident.exhausted"])
    make_integration("resolved-only", target="https://b.example.com", events=["incident.resolved"])
    make_integration("everything", target="https://c.example.com", events=[])
    make_integration("switched-off", target="https://d.example.com", active=False)

    # when an incident is exhausted
    messages = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # then only the subscribed, active ones get a message
    assert sorted(message.integration.name for message in messages) == ["everything", "exhausted-only"]
    assert set(OutboundMessage.objects.values_list("integration__name", flat=True)) == {"everything", "exhausted-only"}


def test_an_event_nobody_takes_creates_nothing(make_integration):
    make_integration("exhausted-only", target="https://a.example.com", events=["incident.exhausted"])

    assert notify("drill.completed", {"summary": "Drill done"}, dedup_key="drill:7") == []
    assert not OutboundMessage.objects.exists()


def test_a_notification_records_what_to_send(make_integration):
    make_integration(target="https://hooks.example.com/oncall")

    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    message.refresh_from_db()
    assert (message.event, message.payload, message.status, message.attempts) == (
        "incident.exhausted",
        EXHAUSTED_PAYLOAD,
        MessageStatus.PENDING,
        0,
    )
    assert message.next_attempt_at is not None  # the sweep can find it if its task is lost


@pytest.mark.parametrize("dedup_key", ["", "x" * 201])
def test_a_notification_needs_a_usable_dedup_key(make_integration, dedup_key):
    make_integration(target="https://hooks.example.com/oncall")

    with pytest.raises(InvalidInput):
        notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key=dedup_key)


@pytest.mark.parametrize(
    ("kind", "target", "events", "field"),
    [
        ("webhook", "not a url", [], "endpoint_url"),
        ("slack", "ftp://hooks.slack.com/x", [], "endpoint_url"),
        ("email", "ops@example.com, not-an-address", [], "options"),
        ("email", " , ", [], "options"),
        ("webhook", "https://hooks.example.com", "incident.exhausted", "events"),
        ("webhook", "https://hooks.example.com", ["Incident Exhausted"], "events"),
    ],
)
def test_an_integration_with_a_bad_target_or_event_list_is_refused(kind, target, events, field):
    with pytest.raises(ValidationError) as error:
        build_integration("bad", kind=kind, target=target, events=events)

    assert field in error.value.message_dict
