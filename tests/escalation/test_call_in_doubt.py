"""A call in doubt: a worker claimed it (queued → dialing) and then nothing, no carrier id, no
callback, until the deadline. The engine asks the carrier whether the call exists before it moves
on: it dials the person again only when no carrier has the call, and never places a call twice.

The carrier is the simulator over real HTTP, speaking Twilio's and Vonage's list APIs; the engine's
steps are called one at a time (the deadline, then the check the deadline sends), as a worker would.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from incidents.models import EventKind, Incident
from incidents.services import open_incident
from orchestrator import dialing, doubt, timers
from orchestrator.dialing import _claim
from orchestrator.models import AttemptStatus, CallAttempt
from orchestrator.voice import CallRequest, get_provider
from tests import factories

pytestmark = pytest.mark.e2e

BOTH = pytest.mark.parametrize("carrier", ["twilio", "vonage"])


@pytest.fixture
def carriers(both_carriers, settings):
    """No worker: what the engine enqueues is left on the broker and purged afterwards."""
    settings.VOICE_FAILOVER_PROVIDER = ""
    yield both_carriers
    celery_app.control.purge()


@pytest.fixture
def team(transactional_db):
    primary, secondary = factories.contact("Kim", 3), factories.contact("Lee", 3)
    factories.policy(primary, secondary, max_attempts=4)
    return primary, secondary


def fresh(attempt: CallAttempt) -> CallAttempt:
    return CallAttempt.objects.get(pk=attempt.pk)


def claimed_and_abandoned(*, seconds_ago: float | None = None) -> CallAttempt:
    """An incident whose first call a worker claimed and then died with (nothing sent), its deadline
    passed; by default claimed longer ago than any dial can take."""
    incident = open_incident(summary="DB 응답 없음").incident
    attempt = CallAttempt.objects.get(incident=incident, step=1)
    assert _claim(attempt.pk) is not None
    ago = doubt.longest_dial_seconds() + 1 if seconds_ago is None else seconds_ago
    CallAttempt.objects.filter(pk=attempt.pk).update(dial_started_at=timezone.now() - timedelta(seconds=ago))
    Incident.objects.filter(pk=incident.pk).update(next_action_at=timezone.now() - timedelta(seconds=1))
    return fresh(attempt)


def deadline_passes(attempt: CallAttempt) -> None:
    Incident.objects.filter(pk=attempt.incident_id).update(next_action_at=timezone.now() - timedelta(seconds=1))
    timers.check_deadline(attempt.incident_id, attempt.step)


def the_check_runs(attempt: CallAttempt) -> None:
    """The task the deadline sent, with the claim it named."""
    asked = attempt.incident.events.filter(kind=EventKind.DIAL_DELAYED, attempt_id=attempt.pk).exclude(data={})
    claim = asked.filter(data__has_key="check").latest("pk").data["check"]
    doubt.check(attempt.pk, claim)


def timeline(attempt: CallAttempt) -> list[str]:
    return list(attempt.incident.events.order_by("pk").values_list("message", flat=True))


def placed_to(simulator, number: str) -> list[str]:
    return [call.sid for call in simulator.calls if call.sid and call.to.lstrip("+") == number.lstrip("+")]


@BOTH
def test_a_claimed_call_no_carrier_has_is_dialed_again_and_rings_once(carriers, team, settings, carrier):
    # given a first call a worker claimed and died with before the carrier had it
    settings.VOICE_PROVIDER = carrier
    primary, _ = team
    attempt = claimed_and_abandoned()

    # when its deadline passes: the engine asks the carrier instead of moving on
    deadline_passes(attempt)
    assert fresh(attempt).incident.current_step == 1
    assert any("asking the carriers whether it exists" in line for line in timeline(attempt))

    # and the carrier says it has no such call
    the_check_runs(attempt)

    # then the attempt is queued again for the same person, and said so
    again = fresh(attempt)
    assert (again.status, again.redials, again.incident.current_step) == (AttemptStatus.QUEUED, 1, 1)
    assert any("it was never placed; dialing again" in line for line in timeline(attempt))

    # and the dial sent again rings the primary: exactly one call placed to them
    dialing.dial(attempt.pk)
    assert fresh(attempt).provider_call_id
    assert placed_to(carriers, primary.phone) == [fresh(attempt).provider_call_id]


@BOTH
def test_a_claimed_call_the_carrier_has_is_kept_and_never_placed_again(carriers, team, settings, carrier):
    # given a claimed call the carrier did place: the worker died before it wrote the carrier's id
    settings.VOICE_PROVIDER = carrier
    primary, secondary = team
    attempt = claimed_and_abandoned()
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # and none of its callbacks ever reach us
    request = CallRequest(to=attempt.to_number, token=attempt.token, ring_timeout_seconds=5, language="ko")
    call_id = get_provider(carrier).place_call(request)

    # when its deadline passes and the carrier is asked
    deadline_passes(attempt)
    the_check_runs(attempt)

    # then the call is recognised as this attempt's, and the escalation moves on to the secondary
    kept = fresh(attempt)
    assert (kept.provider_call_id, kept.redials) == (call_id, 0)
    assert kept.incident.current_step == 2
    assert CallAttempt.objects.get(incident=kept.incident, step=2).to_number == secondary.phone
    assert any(f"has call {call_id}" in line and "its news never reached us" in line for line in timeline(attempt))
    # and the primary was never called a second time
    assert placed_to(carriers, primary.phone) == [call_id]


def test_another_incidents_call_to_the_same_person_is_not_taken_for_this_one(carriers, team, settings):
    # given the primary was just called for another incident (that call is known and owned)
    settings.VOICE_PROVIDER = "twilio"
    primary, _ = team
    other = open_incident(summary="다른 장애", dedup_key="other").incident
    dialing.dial(CallAttempt.objects.get(incident=other, step=1).pk)
    assert len(placed_to(carriers, primary.phone)) == 1
    # and this incident's first call to the same person was claimed and abandoned
    attempt = claimed_and_abandoned()

    # when the deadline passes and the carrier is asked
    deadline_passes(attempt)
    the_check_runs(attempt)

    # then the other incident's call is not mistaken for this one: the primary is dialed again
    assert (fresh(attempt).status, fresh(attempt).redials) == (AttemptStatus.QUEUED, 1)


def test_when_the_carrier_cannot_be_asked_the_escalation_moves_on_without_a_second_call(carriers, team, settings):
    # given a claimed and abandoned call, and a carrier that cannot be reached any more
    settings.VOICE_PROVIDER = "twilio"
    primary, _ = team
    attempt = claimed_and_abandoned()
    carriers.stop()

    # when the deadline passes and the check runs
    deadline_passes(attempt)
    the_check_runs(attempt)

    # then the engine cannot tell, so it never dials the primary twice: it calls the secondary
    moved = fresh(attempt)
    assert moved.incident.current_step == 2 and moved.redials == 0
    assert "the carriers could not tell" in moved.error and "twilio" in moved.error
    assert placed_to(carriers, primary.phone) == []


def test_a_dial_that_may_still_be_sending_is_waited_for_before_anyone_asks(carriers, team, settings):
    # given a call claimed 2 s ago whose ring deadline already passed (a very short ring)
    settings.VOICE_PROVIDER = "twilio"
    attempt = claimed_and_abandoned(seconds_ago=2)

    # when the deadline passes
    deadline_passes(attempt)

    # then nothing is asked yet: a live worker may still be talking to the carrier
    incident = fresh(attempt).incident
    assert not any("asking the carriers" in line for line in timeline(attempt))
    expected = fresh(attempt).dial_started_at + timedelta(seconds=doubt.longest_dial_seconds())
    assert abs((incident.next_action_at - expected).total_seconds()) < 1
    assert incident.current_step == 1


def test_a_check_lost_with_its_worker_is_sent_once_more_then_the_escalation_moves_on(carriers, team, settings):
    # given a claimed and abandoned call
    settings.VOICE_PROVIDER = "twilio"
    attempt = claimed_and_abandoned()

    # when its deadline passes twice and each check is lost (its worker died too)
    deadline_passes(attempt)
    deadline_passes(attempt)
    asks = [line for line in timeline(attempt) if "asking the carriers" in line]
    assert len(asks) == doubt.CHECKS_PER_CLAIM

    # and the deadline passes once more
    deadline_passes(attempt)

    # then the engine stops asking and calls the next person
    moved = fresh(attempt)
    assert moved.incident.current_step == 2
    assert moved.error == "no news of the call before the deadline, and the carriers could not be asked"


def test_dialing_again_stops_at_the_limit(carriers, team, settings):
    # given a call already dialed again as often as allowed, claimed and abandoned once more
    settings.VOICE_PROVIDER = "twilio"
    settings.DIAL_REDIAL_LIMIT = 2
    attempt = claimed_and_abandoned()
    CallAttempt.objects.filter(pk=attempt.pk).update(redials=2)

    # when its deadline passes
    deadline_passes(attempt)

    # then it is not tried a third time: the next person is called, and the attempt says why
    moved = fresh(attempt)
    assert moved.incident.current_step == 2
    assert moved.error == "no news of the call before the deadline (already dialed again 2 times)"


def test_a_dial_that_lands_after_its_attempt_was_queued_again_keeps_it_and_the_resent_dial_places_nothing(
    carriers, team, settings
):
    # given a claimed call that no carrier had when asked, so it was queued again
    settings.VOICE_PROVIDER = "twilio"
    primary, _ = team
    attempt = claimed_and_abandoned()
    claimed_at = attempt.dial_started_at
    deadline_passes(attempt)
    the_check_runs(attempt)
    assert fresh(attempt).status == AttemptStatus.QUEUED

    # when the first dial, frozen until now, gets the carrier's answer after all
    dialing._placed(attempt.pk, "twilio", "CA" + "f" * 32, [], claimed_at)

    # then that call is the attempt's, and the dial sent again finds it taken and places nothing
    assert (fresh(attempt).status, fresh(attempt).provider_call_id) == (AttemptStatus.DIALING, "CA" + "f" * 32)
    dialing.dial(attempt.pk)
    assert placed_to(carriers, primary.phone) == []


def test_a_call_dialed_again_that_waits_for_a_worker_still_says_so_in_the_timeline(carriers, team, settings):
    # given a claimed call no carrier had, queued again
    settings.VOICE_PROVIDER = "twilio"
    attempt = claimed_and_abandoned()
    deadline_passes(attempt)
    the_check_runs(attempt)
    # when no worker takes the dial sent again before the next deadline
    CallAttempt.objects.filter(pk=attempt.pk).update(dial_sent_at=timezone.now() - timedelta(minutes=5))
    deadline_passes(attempt)
    # then the timeline says the call is waiting for a worker, and it is sent again, not skipped
    assert any("not dialed after" in line and "sent again" in line for line in timeline(attempt))
    assert fresh(attempt).status == AttemptStatus.QUEUED and fresh(attempt).incident.current_step == 1
