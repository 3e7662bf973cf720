"""Alert rules end to end: the beat task on a real worker (the `timers` queue of the real broker), the
carrier simulator over HTTP for the calls, a local HTTP receiver for the integrations. The test plays
beat: it sends `monitoring.evaluate_rules` every quarter second."""

from __future__ import annotations

import pytest

from incidents.models import Incident, IncidentState
from monitoring.models import AlertRule
from monitoring.services import dedup_key
from monitoring.tasks import evaluate_rules
from simulator import Scenario
from tests import factories
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e


def beat_until(check, what: str):
    """Sends the evaluation task, as beat would, until `check` holds."""
    return wait_until(lambda: (evaluate_rules.delay(), check())[1], interval=0.25, timeout=20, what=what)


@pytest.fixture(autouse=True)
def short_interval(settings):
    """A clear holds for at least one evaluation interval before it resolves: half a second here."""
    settings.RULE_EVALUATION_SECONDS = 0.5


def rule(**fields) -> AlertRule:
    values = {"rule_name": "cpu", "metric": "test_gauge", "operator": ">", "threshold": 80, "for_seconds": 1}
    created = AlertRule(**{**values, **fields})
    created.full_clean()
    created.save()
    return created


def test_a_critical_rule_crossed_for_for_seconds_opens_one_incident_that_rings_and_clearing_resolves_it(carrier, gauge):
    # given: a critical rule "above 80 for 1 s" and an on-call person who presses 1
    kim = factories.contact("Kim")
    carrier.set_scenario(kim.phone, Scenario.PRESS_1)
    factories.policy(kim)
    cpu = rule()
    key = dedup_key(cpu)

    # when: the gauge goes to 92 and beat keeps evaluating
    gauge.set_value(92)
    incident = beat_until(lambda: Incident.objects.filter(dedup_key=key).first(), "the rule to open an incident")

    # then: Kim's phone rings with the alert in Korean, and Kim's keypress acknowledges it
    wait_until(lambda: carrier.calls, what="a call")
    carrier.wait_until_idle()
    assert [call.to for call in carrier.calls] == [kim.phone]
    spoken = " ".join(event for event in carrier.calls[0].events if event.startswith("say"))
    assert "CPU 사용률 92퍼센트" in spoken
    incident = wait_until(
        lambda: Incident.objects.filter(pk=incident.pk, state=IncidentState.ACKNOWLEDGED).first(), what="ack"
    )
    assert "CPU 사용률 92% (임계값 > 80%, 1초 이상)" in incident.summary
    # and more evaluations while it fires open nothing more
    beat_until(lambda: cpu.series.filter(state="firing").exists(), "the series to be firing")
    assert Incident.objects.filter(dedup_key=key).count() == 1

    # when: the gauge falls
    gauge.set_value(40)

    # then: once the clear has held, the incident resolves, and still only one call was placed
    beat_until(lambda: Incident.objects.filter(pk=incident.pk, state=IncidentState.RESOLVED).exists(), "resolved")
    assert Incident.objects.count() == 1
    assert len(carrier.calls) == 1


def test_a_warning_rule_notifies_the_integrations_and_calls_nobody(celery_worker, gauge, receiver, make_integration):
    # given: a webhook integration and a warning rule
    factories.policy(factories.contact("Kim"))
    make_integration("ops-webhook", target=f"{receiver.url}/hooks")
    rule(level="warning", rule_name="queue backlog")

    # when: the gauge crosses the threshold for long enough
    gauge.set_value(99)
    beat_until(lambda: receiver.requests, "a notification")

    # then: the integration heard "alert_rule.firing" with the rule's words, and nobody was called
    first = receiver.requests[0].json()
    assert first["event"] == "alert_rule.firing"
    assert first["payload"]["rule_name"] == "queue backlog"
    assert "CPU 사용률 99%" in first["payload"]["summary"]
    assert Incident.objects.count() == 0

    # when: it clears, the integration hears that too, once
    gauge.set_value(1)
    beat_until(lambda: len(receiver.requests) >= 2, "the resolved notification")
    assert [request.json()["event"] for request in receiver.wait_for(2)] == ["alert_rule.firing", "alert_rule.resolved"]
    assert Incident.objects.count() == 0
