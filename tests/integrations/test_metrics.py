"""Outbound messages in a scrape, by integration id, provider (the kind label) and what became of each try."""

from __future__ import annotations

import pytest
from django.test import Client

from integrations.services import deliver, notify
from tests.integrations.conftest import EXHAUSTED_PAYLOAD
from tests.scrape import scrape, value

pytestmark = pytest.mark.django_db(transaction=True)  # counted once committed


def test_a_retried_then_delivered_and_a_dead_message_are_counted_by_integration(
    receiver, make_integration, fast_retries, settings
):
    web = Client()
    before = scrape(web, settings)
    # given a webhook that fails once then answers, and another that keeps failing with one try allowed
    receiver.plan(500, 200, 500)
    make_integration("ops-webhook", target=receiver.url)
    make_integration("crm-webhook", target=receiver.url, max_attempts=1)
    messages = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    by_name = {message.integration.name: message for message in messages}

    # when the first is tried twice and the second once
    deliver(by_name["ops-webhook"].pk)
    deliver(by_name["ops-webhook"].pk)
    deliver(by_name["crm-webhook"].pk)

    # then the scrape says so
    after = scrape(web, settings)

    def grew(**labels: str) -> float:
        name = "aicc_outbound_messages_total"
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew(integration="ops-webhook", kind="webhook", status="retrying") == 1
    assert grew(integration="ops-webhook", kind="webhook", status="delivered") == 1
    assert grew(integration="crm-webhook", kind="webhook", status="dead") == 1
