"""Deadline countdowns on the broker: one per incident at a time, carried on when a deadline moves.

A ringing call moves its incident's deadline several times (the carrier took it, it was answered);
each move used to send one more countdown task, which the calls worker then received, held and ran
for nothing. Now a countdown already due before the new deadline carries on instead: when it finds
the deadline moved later, it sends itself again for the rest. A call's own deadlines (rung, answered)
send none at all: they are safety nets the sweep watches. These tests read the real broker's
`timers` queue (no worker runs here, so what is sent stays there).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from config.redis import redis_client
from incidents.models import Incident, IncidentState
from incidents.services import open_incident
from orchestrator import dialing, services, timers
from orchestrator.dialing import _claim
from orchestrator.models import AttemptStatus, CallAttempt
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_timers_queue():
    redis_client().delete("timers", "calls")


@pytest.fixture
def two_people():
    return factories.policy(factories.contact("Kim"), factories.contact("Lee"), max_attempts=3)


def countdowns_for(incident: Incident) -> list[tuple[int, datetime]]:
    """(step, when it fires) of each check_deadline task on the broker for this incident."""
    found = []
    for raw in redis_client().lrange("timers", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] != "orchestrator.check_deadline":
            continue
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        if args[0] == incident.pk:
            found.append((args[1], datetime.fromisoformat(message["headers"]["eta"])))
    return found


def fresh(incident: Incident) -> Incident:
    return Incident.objects.get(pk=incident.pk)


def opened_and_claimed(policy, capture) -> tuple[Incident, CallAttempt, datetime]:
    """An incident whose first call a worker claimed (its ring deadline set), and when it did."""
    with capture(execute=True):
        incident = open_incident(summary="disk full", policy=policy).incident
    attempt = CallAttempt.objects.get(incident=incident, step=1)
    with capture(execute=True):
        _request, _carriers, claimed_at = _claim(attempt.pk)
    return fresh(incident), attempt, claimed_at


def opened_and_answered(policy, capture) -> tuple[Incident, CallAttempt]:
    """An incident whose first call was claimed, placed, and answered: every callback ran and
    every transaction committed its follow-up work (as the worker and the webhooks would)."""
    with capture(execute=True):
        incident = open_incident(summary="disk full", policy=policy).incident
    attempt = CallAttempt.objects.get(incident=incident, step=1)
    with capture(execute=True):
        assert _claim(attempt.pk) is not None
    with capture(execute=True):
        services.apply_call_status(attempt.token, AttemptStatus.RINGING, provider_call_id="CA1")
    with capture(execute=True):
        services.apply_call_status(attempt.token, AttemptStatus.IN_PROGRESS)
    return fresh(incident), attempt


def test_a_ringing_and_answered_call_moves_its_deadline_without_sending_any_countdown(
    two_people, django_capture_on_commit_callbacks, settings
):
    settings.DIAL_RESEND_SECONDS = 60  # the dial's check comes after the ring deadline
    # given a call that was claimed (its ring deadline starts), then rang and was answered
    incident, _ = opened_and_answered(two_people, django_capture_on_commit_callbacks)

    # then no countdown went out: a call's deadlines are safety nets for news the carrier did not
    # send, watched by the sweep alone (the dial's check when it opened is the sweep's too)
    assert countdowns_for(incident) == []
    assert incident.countdown_at is None
    # and the answer moved the deadline past the ring deadline, to the end of the message rounds
    assert incident.next_action_at > timezone.now() + timedelta(seconds=65)


def test_a_call_whose_news_never_came_is_moved_on_by_the_sweep(two_people, django_capture_on_commit_callbacks):
    # given an answered call whose carrier then went silent (no keypress, no end of call)
    incident, _ = opened_and_answered(two_people, django_capture_on_commit_callbacks)
    assert countdowns_for(incident) == []

    # when its deadline passes and the sweep runs
    Incident.objects.filter(pk=incident.pk).update(next_action_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=False):
        assert timers.sweep_due() == 1

    # then the escalation moved on to the next person
    incident = fresh(incident)
    assert incident.current_step == 2 and incident.state == IncidentState.TRIGGERED
    assert CallAttempt.objects.get(incident=incident, step=2).contact.name == "Lee"


def test_a_carrier_that_takes_the_call_at_once_leaves_the_ring_deadline_as_it_was(
    two_people, django_capture_on_commit_callbacks
):
    # given a claimed call (its ring deadline set at the claim)
    incident, attempt, claimed_at = opened_and_claimed(two_people, django_capture_on_commit_callbacks)
    claimed_deadline = fresh(incident).next_action_at

    # when the carrier took it within the second
    with django_capture_on_commit_callbacks(execute=True):
        dialing._placed(attempt.pk, "twilio", "CA1", [], claimed_at)

    # then the deadline was not written again; a carrier that took long moves it to its own answer
    assert fresh(incident).next_action_at == claimed_deadline
    Incident.objects.filter(pk=incident.pk).update(next_action_at=claimed_deadline - timedelta(seconds=20))
    with django_capture_on_commit_callbacks(execute=True):
        dialing._placed(attempt.pk, "twilio", "CA1", [], claimed_at)
    moved = fresh(incident).next_action_at
    assert moved > claimed_deadline - timedelta(seconds=1)
    assert countdowns_for(incident) == []


def test_a_countdown_that_finds_the_deadline_moved_later_sends_itself_again_once(
    two_people, django_capture_on_commit_callbacks
):
    incident, _ = opened_and_answered(two_people, django_capture_on_commit_callbacks)
    before = len(countdowns_for(incident))

    # when the pending countdown's time comes (the deadline has moved later since it was sent)
    Incident.objects.filter(pk=incident.pk).update(countdown_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert timers.check_deadline(incident.pk, 1) is None

    # then it sends one countdown for the rest of the wait, and nothing else changed
    incident = fresh(incident)
    assert len(countdowns_for(incident)) == before + 1
    assert incident.countdown_at == incident.next_action_at
    assert incident.current_step == 1 and incident.state == IncidentState.TRIGGERED

    # and another countdown firing now (as a redelivered one would) sends none
    with django_capture_on_commit_callbacks(execute=True):
        assert timers.check_deadline(incident.pk, 1) is None
    assert len(countdowns_for(incident)) == before + 1


def test_a_deadline_beyond_the_cap_is_reached_in_countdowns_of_the_cap(
    two_people, django_capture_on_commit_callbacks, settings
):
    # given a wait of ten minutes and countdowns capped at one
    settings.MAX_COUNTDOWN_SECONDS = 60
    incident, attempt = opened_and_answered(two_people, django_capture_on_commit_callbacks)
    two_people.pause_seconds = 600
    two_people.save()
    with django_capture_on_commit_callbacks(execute=True):
        services.apply_call_status(attempt.token, AttemptStatus.COMPLETED)  # hung up without a keypress
    incident = fresh(incident)
    assert incident.next_action_at > timezone.now() + timedelta(seconds=590)

    # when the countdown of the cap fires, the wait is not over: it sends the next one, of the cap
    Incident.objects.filter(pk=incident.pk).update(countdown_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert timers.check_deadline(incident.pk, 1) is None
    incident = fresh(incident)
    assert incident.countdown_at < timezone.now() + timedelta(seconds=61)
    assert abs(max(when for _, when in countdowns_for(incident)) - incident.countdown_at) < timedelta(seconds=1)
    assert incident.current_step == 1


def test_a_countdown_sent_at_an_earlier_step_acts_on_the_current_steps_due_deadline(two_people):
    # given the second call is out, and its deadline has passed
    incident = open_incident(summary="disk full", policy=two_people).incident
    first = CallAttempt.objects.get(incident=incident, step=1)
    assert _claim(first.pk) is not None
    services.apply_call_status(first.token, AttemptStatus.NO_ANSWER)
    second = CallAttempt.objects.get(incident=incident, step=2)
    assert _claim(second.pk) is not None
    CallAttempt.objects.filter(pk=second.pk).update(provider_call_id="CA2")  # a carrier took it
    Incident.objects.filter(pk=incident.pk).update(next_action_at=timezone.now() - timedelta(seconds=1))

    # when the countdown that noticed it was sent during the first call (it carried the deadline on)
    timers.check_deadline(incident.pk, 1)

    # then the second call's deadline is acted on at once: no answer, the third call is queued
    incident = fresh(incident)
    assert incident.current_step == 3
    assert CallAttempt.objects.get(pk=second.pk).error == "no news of the call before the deadline"


def test_a_dial_whose_task_was_lost_is_sent_again_by_the_sweep_without_any_countdown(
    two_people, django_capture_on_commit_callbacks, settings
):
    # given an incident opened whose dial's message is then lost
    with django_capture_on_commit_callbacks(execute=True):
        incident = open_incident(summary="disk full", policy=two_people).incident
    attempt = CallAttempt.objects.get(incident=incident, step=1)
    assert dials_on_the_broker() == [attempt.pk]
    redis_client().delete("calls")
    # then its dial's check is a deadline in the database, and no countdown waits on the broker
    assert countdowns_for(incident) == []
    assert fresh(incident).next_action_at > timezone.now() + timedelta(seconds=settings.DIAL_RESEND_SECONDS - 5)

    # when the check is due and the sweep runs
    past = timezone.now() - timedelta(seconds=1)
    Incident.objects.filter(pk=incident.pk).update(next_action_at=past)
    CallAttempt.objects.filter(pk=attempt.pk).update(
        dial_sent_at=past - timedelta(seconds=settings.DIAL_RESEND_SECONDS)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert timers.sweep_due() == 1

    # then the dial is on the broker again, and the person is still the one to call
    assert dials_on_the_broker() == [attempt.pk]
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.QUEUED and fresh(incident).current_step == 1
    assert attempt.dial_sent_at > past


def dials_on_the_broker() -> list[int]:
    found = []
    for raw in redis_client().lrange("calls", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == "orchestrator.dial_attempt":
            found.append(json.loads(base64.b64decode(message["body"]))[0][0])
    return found


def test_a_dial_that_timed_out_waits_for_its_ring_deadline_with_a_countdown(
    two_people, django_capture_on_commit_callbacks
):
    # given a claimed call (its ring deadline the sweep's to watch)
    incident, attempt, claimed_at = opened_and_claimed(two_people, django_capture_on_commit_callbacks)
    assert countdowns_for(incident) == []

    # when the carrier timed out on it: the call may exist, so the deadline is now the way on
    timed_out = dialing.CarrierFailure("twilio", "timed out after 10 s; the call may exist", ambiguous=True)
    with django_capture_on_commit_callbacks(execute=True):
        dialing._no_carrier_placed(attempt.pk, [timed_out], claimed_at)

    # then a countdown looks at the ring deadline on time, rather than the sweep within seconds of it
    incident = fresh(incident)
    (step, when), *others = countdowns_for(incident)
    assert others == [] and step == 1
    assert abs(when - incident.next_action_at) < timedelta(seconds=1)
    assert abs(incident.countdown_at - incident.next_action_at) < timedelta(milliseconds=1)
