"""Incident metrics in a scrape: opened, acknowledged and resolved totals, time to acknowledge and to
resolve, and the open incidents by state; a transition that rolls back is never counted."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client

from incidents.services import acknowledge, open_incident, resolve
from tests import factories
from tests.scrape import scrape, value

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_calls_left_behind():
    """Opening an incident queues its first call; nobody consumes it here, so it is purged after."""
    from config.celery import app as celery_app

    yield
    celery_app.control.purge()


def test_an_incident_opened_acknowledged_and_resolved_is_counted_with_its_response_times(settings):
    web = Client()
    factories.policy(factories.contact("Kim", 0))
    before = scrape(web, settings)

    # when an incident is opened, then acknowledged, then resolved
    incident = open_incident(summary="결제 서버 다운").incident
    opened = scrape(web, settings)
    acknowledge(incident.pk, actor="user:kim")
    acknowledged = scrape(web, settings)
    resolve(incident.pk, actor="user:kim")
    after = scrape(web, settings)

    def grew(samples, name: str, **labels: str) -> float:
        return value(samples, name, **labels) - value(before, name, **labels)

    # then each step is in the next scrape
    assert grew(opened, "aicc_incidents_opened_total", severity="critical", drill="false") == 1
    assert grew(opened, "aicc_incidents_open", state="triggered") == 1
    assert grew(acknowledged, "aicc_incidents_acknowledged_total", drill="false") == 1
    assert grew(acknowledged, "aicc_incident_time_to_acknowledge_seconds_count", drill="false") == 1
    assert grew(acknowledged, "aicc_incidents_open", state="acknowledged") == 1
    assert grew(after, "aicc_incidents_resolved_total", drill="false") == 1
    assert grew(after, "aicc_incident_time_to_resolve_seconds_count", drill="false") == 1
    assert grew(after, "aicc_incidents_open", state="acknowledged") == 0


def test_an_opening_that_rolls_back_is_not_counted(settings):
    web = Client()
    factories.policy(factories.contact("Kim", 0))
    before = scrape(web, settings)

    with pytest.raises(RuntimeError), transaction.atomic():
        open_incident(summary="never happened")
        raise RuntimeError("the caller's transaction fails after the incident was written")

    after = scrape(web, settings)
    name, opened = "aicc_incidents_opened_total", {"severity": "critical", "drill": "false"}
    assert value(after, name, **opened) == value(before, name, **opened)
