"""Call metrics from a real escalation (real worker, live server, carrier simulator): calls by carrier
and outcome, alert-to-dial latency, exhaustion and time to acknowledge, all in one scrape."""

from __future__ import annotations

import pytest
from django.test import Client

from incidents.models import Incident
from incidents.services import open_incident
from simulator import Scenario
from tests import factories
from tests.helpers import wait_until
from tests.scrape import scrape, value

pytestmark = pytest.mark.e2e


def test_unanswered_and_answered_calls_are_counted_by_carrier_and_outcome(carrier, settings):
    web = Client()
    before = scrape(web, settings)
    # given one person who does not answer, alone on a policy of one call
    silent = factories.contact("Kim", 0)
    carrier.set_scenario(silent.phone, Scenario.NO_ANSWER)
    factories.policy(silent, max_attempts=1)

    # when an alert comes and nobody answers
    exhausted = open_incident(summary="디스크 가득 참").incident
    wait_until(lambda: Incident.objects.get(pk=exhausted.pk).state == "exhausted", timeout=60, what="exhaustion")
    carrier.wait_until_idle()
    # and another comes for someone who presses 1
    answering = factories.contact("Lee", 1)
    carrier.set_scenario(answering.phone, Scenario.PRESS_1)
    factories.policy(answering, max_attempts=1)
    acknowledged = open_incident(summary="결제 서버 다운").incident
    wait_until(lambda: Incident.objects.get(pk=acknowledged.pk).state == "acknowledged", timeout=60, what="ack")
    carrier.wait_until_idle()

    # then the scrape tells the story
    def grew(name: str, **labels: str) -> float:
        return wait_until(
            lambda: value(scrape(web, settings), name, **labels) - value(before, name, **labels),
            timeout=30,
            interval=0.2,
            what=f"{name} {labels}",
        )

    assert grew("aicc_calls_total", carrier="twilio", outcome="no_answer") == 1
    assert grew("aicc_calls_total", carrier="twilio", outcome="completed") == 1
    assert grew("aicc_incidents_exhausted_total", drill="false") == 1
    assert grew("aicc_alert_to_dial_seconds_count", carrier="twilio") == 2
    assert grew("aicc_incident_time_to_acknowledge_seconds_count", drill="false") == 1
