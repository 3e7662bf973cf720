"""A drill closes itself when it is done: acknowledged (by phone or by a person) or exhausted, it is resolved
right then with a timeline row "drill finished: …", and its report still tells what it proved.

These call the services directly on real rows (no worker); the end-to-end drills on the carrier simulator
are in tests/escalation/test_drills.py."""

from __future__ import annotations

import pytest

from incidents.models import EventKind, Incident, IncidentState
from incidents.services import acknowledge, open_incident
from orchestrator import services
from orchestrator.drills import drill_report, start_drill
from orchestrator.models import AttemptStatus, CallAttempt
from orchestrator.services import KeypressOutcome
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy():
    return factories.policy(factories.contact("Kim"), factories.contact("Lee"), max_attempts=2, name="db-oncall")


def fresh(incident: Incident) -> Incident:
    return Incident.objects.get(pk=incident.pk)


def ring_out(attempt: CallAttempt) -> None:
    """The dial task claims the call, and the carrier reports it rang and nobody picked up."""
    from orchestrator.dialing import _claim

    assert _claim(attempt.pk) is not None
    services.apply_call_status(attempt.token, AttemptStatus.RINGING)
    services.apply_call_status(attempt.token, AttemptStatus.NO_ANSWER)


def test_a_drill_acknowledged_on_the_phone_is_resolved_right_then(policy):
    # given a drill ringing Kim
    drill = start_drill(policy)
    first = CallAttempt.objects.get(incident=drill, step=1)

    # when Kim presses 1
    assert services.apply_keypress(first.token, "1") is KeypressOutcome.ACKNOWLEDGED

    # then the drill is over: resolved, after the acknowledgement, by the engine, saying why
    drill = fresh(drill)
    assert drill.state == IncidentState.RESOLVED and drill.acknowledged_at is not None
    last_two = list(drill.events.order_by("-at", "-pk")[:2])[::-1]
    assert [event.kind for event in last_two] == [EventKind.ACKNOWLEDGED, EventKind.RESOLVED]
    assert last_two[1].message.startswith("drill finished: acknowledged by Kim")
    assert last_two[1].actor == "system"
    # and its report still says what it proved
    report = drill_report(drill.pk)
    assert (report["outcome"], report["acknowledged_by"], report["digit"]) == ("acknowledged", "Kim", "1")


def test_a_drill_acknowledged_by_a_person_is_resolved_too(policy):
    drill = start_drill(policy)

    acknowledge(drill.pk, actor="user:ops", via="admin")

    drill = fresh(drill)
    assert drill.state == IncidentState.RESOLVED and drill.acknowledged_by == "user:ops"
    assert drill.events.get(kind=EventKind.RESOLVED).message == "drill finished: acknowledged by ops"
    assert drill_report(drill.pk)["outcome"] == "acknowledged"


def test_an_exhausted_drill_is_resolved_and_reports_exhausted(policy):
    # given a drill whose every call goes unanswered
    drill = start_drill(policy)
    for step in (1, 2):
        ring_out(CallAttempt.objects.get(incident=drill, step=step))

    # then it was exhausted and closed in the same moment
    drill = fresh(drill)
    assert drill.state == IncidentState.RESOLVED and drill.exhausted_reason
    kinds = list(drill.events.values_list("kind", flat=True))
    assert kinds[-2:] == [EventKind.EXHAUSTED, EventKind.RESOLVED]
    assert drill.events.get(kind=EventKind.RESOLVED).message.startswith("drill finished: nobody pressed 1")
    assert drill_report(drill.pk)["outcome"] == "exhausted"


def test_a_real_incident_stays_acknowledged_and_stays_exhausted(policy):
    # given two real incidents: one acknowledged, one whose calls all went unanswered
    acknowledged = open_incident(summary="DB down", policy=policy).incident
    acknowledge(acknowledged.pk, actor="user:ops")
    exhausted = open_incident(summary="Disk full", policy=policy).incident
    for step in (1, 2):
        ring_out(CallAttempt.objects.get(incident=exhausted, step=step))

    # then neither closed itself: only a drill does
    assert fresh(acknowledged).state == IncidentState.ACKNOWLEDGED
    assert fresh(exhausted).state == IncidentState.EXHAUSTED
