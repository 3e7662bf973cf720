"""The engine's services, one edge case at a time: deadlines, the sweep, the auditor, the claim.

These call the services directly on real rows (no worker): enqueued tasks are not sent inside the
test's transaction, so each step happens only when the test calls it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from config.errors import DomainError
from incidents.models import EventKind, Incident, IncidentState
from incidents.services import acknowledge, open_incident
from orchestrator import services, timers
from orchestrator.models import AttemptStatus, CallAttempt
from orchestrator.services import KeypressOutcome
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_people():
    return factories.policy(factories.contact("Kim"), factories.contact("Lee"), max_attempts=3)


def fresh(incident: Incident) -> Incident:
    return Incident.objects.get(pk=incident.pk)


def make_due(incident: Incident, seconds_ago: float = 1) -> None:
    Incident.objects.filter(pk=incident.pk).update(next_action_at=timezone.now() - timedelta(seconds=seconds_ago))


def claim(attempt: CallAttempt) -> None:
    """What the dial task does before calling a carrier (queued → dialing, the ring deadline starts)."""
    from orchestrator.dialing import _claim

    assert _claim(attempt.pk) is not None


def place(attempt: CallAttempt) -> None:
    """The dial task, whole: claimed, and a carrier took the call (it has the carrier's id)."""
    claim(attempt)
    CallAttempt.objects.filter(pk=attempt.pk).update(provider_call_id=f"CA{attempt.pk:032d}")


def end_call(attempt: CallAttempt, status: str = AttemptStatus.NO_ANSWER) -> None:
    services.apply_call_status(attempt.token, status)


def exhaust(incident: Incident) -> Incident:
    """Every call of the round goes unanswered."""
    while fresh(incident).state == IncidentState.TRIGGERED:
        attempt = CallAttempt.objects.get(incident=incident, step=fresh(incident).current_step)
        claim(attempt)
        end_call(attempt)
    return fresh(incident)


# --- item 11: a late callback after exhaustion, and a sweep that always progresses -----------------


def test_a_late_answer_on_an_exhausted_incident_sets_no_deadline(two_people):
    incident = exhaust(open_incident(summary="db down").incident)
    assert incident.state == IncidentState.EXHAUSTED and incident.next_action_at is None
    last = CallAttempt.objects.get(incident=incident, step=3)
    CallAttempt.objects.filter(pk=last.pk).update(status=AttemptStatus.RINGING)

    # when the carrier's late "answered" arrives for the last call
    services.apply_call_status(last.token, AttemptStatus.IN_PROGRESS)

    # then the attempt records it, and nothing is scheduled for the exhausted incident
    assert CallAttempt.objects.get(pk=last.pk).status == AttemptStatus.IN_PROGRESS
    assert fresh(incident).next_action_at is None


def test_the_sweep_visits_each_due_incident_once_and_clears_deadlines_that_need_nothing(two_people):
    # given an acknowledged incident left with a stale due deadline, and two incidents really due
    stale = open_incident(summary="stale", dedup_key="a").incident
    acknowledge(stale.pk, actor="ops")
    make_due(stale)
    due = [open_incident(summary=f"due {n}", dedup_key=f"due-{n}").incident for n in range(2)]
    for incident in due:
        place(CallAttempt.objects.get(incident=incident, step=1))
        make_due(incident)

    # when the sweep runs with a limit that the stale row alone could have used up before
    handled = timers.sweep_due(limit=3)

    # then every due row was handled once: the stale deadline is cleared, the others moved on
    assert handled == 3
    assert fresh(stale).next_action_at is None
    assert [fresh(incident).current_step for incident in due] == [2, 2]


def test_the_sweep_respects_its_limit_and_the_next_run_takes_the_rest(two_people):
    incidents = [open_incident(summary=f"n{n}", dedup_key=f"k{n}").incident for n in range(3)]
    for incident in incidents:
        place(CallAttempt.objects.get(incident=incident, step=1))
        make_due(incident)

    assert timers.sweep_due(limit=2) == 2
    assert sorted(fresh(incident).current_step for incident in incidents) == [1, 2, 2]
    assert timers.sweep_due(limit=2) == 1
    assert [fresh(incident).current_step for incident in incidents] == [2, 2, 2]


def test_a_deadline_beyond_the_countdown_cap_is_kept_for_the_sweep(two_people, settings):
    # given a policy that pauses longer than any countdown we put on the broker
    settings.MAX_COUNTDOWN_SECONDS = 60
    two_people.pause_seconds = 600
    two_people.save()
    incident = open_incident(summary="slow").incident
    first = CallAttempt.objects.get(incident=incident, step=1)
    claim(first)

    end_call(first)

    # then the deadline is 10 minutes away (not cut to the cap), and an early check changes nothing
    incident = fresh(incident)
    assert incident.next_action_at > timezone.now() + timedelta(seconds=590)
    assert timers.check_deadline(incident.pk, 1) is None and fresh(incident).current_step == 1


# --- item 12: deadlines start at the dial; a call never dialed is dialed late, not skipped ----------


def test_a_call_still_queued_at_its_deadline_is_sent_again_and_never_skipped(two_people, settings):
    settings.DIAL_RESEND_SECONDS = 20
    incident = open_incident(summary="backlog").incident
    first = CallAttempt.objects.get(incident=incident, step=1)
    CallAttempt.objects.filter(pk=first.pk).update(dial_sent_at=timezone.now() - timedelta(seconds=25))
    make_due(incident)

    # when the deadline passes while no worker has taken the call (the workers are down)
    assert timers.check_deadline(incident.pk, 1) is None

    # then the same person is still next: the dial is sent again, once, and a new deadline is set
    incident = fresh(incident)
    first = CallAttempt.objects.get(pk=first.pk)
    assert incident.current_step == 1 and first.status == AttemptStatus.QUEUED
    assert first.dial_sent_at > timezone.now() - timedelta(seconds=5)
    assert incident.next_action_at > timezone.now() + timedelta(seconds=15)
    assert incident.events.filter(kind=EventKind.DIAL_DELAYED).count() == 1

    # and a second check right away neither re-sends nor repeats the timeline row
    make_due(incident)
    timers.check_deadline(incident.pk, 1)
    assert CallAttempt.objects.get(pk=first.pk).dial_sent_at == first.dial_sent_at
    assert incident.events.filter(kind=EventKind.DIAL_DELAYED).count() == 1


def test_the_ring_deadline_starts_when_the_call_is_claimed(two_people, settings):
    settings.DIAL_GRACE_SECONDS = 30
    incident = open_incident(summary="late worker").incident
    first = CallAttempt.objects.get(incident=incident, step=1)
    # given the call waited 10 minutes for a worker
    Incident.objects.filter(pk=incident.pk).update(next_action_at=timezone.now() - timedelta(minutes=9))

    claim(first)

    # then the person still gets the whole ring and grace from now
    ring = two_people.ring_timeout_seconds + 30
    assert fresh(incident).next_action_at > timezone.now() + timedelta(seconds=ring - 5)


def test_a_call_left_queued_when_the_incident_is_acknowledged_is_never_dialed(two_people):
    incident = open_incident(summary="acked first").incident
    first = CallAttempt.objects.get(incident=incident, step=1)
    acknowledge(incident.pk, actor="ops")

    from orchestrator.dialing import _claim

    assert _claim(first.pk) is None
    first = CallAttempt.objects.get(pk=first.pk)
    assert first.status == AttemptStatus.CANCELED
    assert first.error == "not dialed: the incident was acknowledged first"


def test_escalating_past_a_queued_call_says_so_on_it_and_it_is_never_dialed(two_people):
    incident = open_incident(summary="skip").incident
    first = CallAttempt.objects.get(incident=incident, step=1)

    services.escalate_now(incident.pk, actor="user:lead")

    first = CallAttempt.objects.get(pk=first.pk)
    assert first.status == AttemptStatus.CANCELED and first.error.startswith("not dialed: escalated by user:lead")
    assert fresh(incident).current_step == 2
    from orchestrator.dialing import _claim

    assert _claim(first.pk) is None


def test_the_exhaustion_reason_blames_no_carrier_that_was_never_asked(two_people):
    incident = exhaust(open_incident(summary="nobody").incident)

    assert incident.exhausted_reason == "nobody pressed 1 after 3 call(s): 3 not answered"
    assert not incident.exhausted_reason.startswith("no carrier")


def test_after_the_last_call_nothing_is_dialed_for_an_exhausted_incident(two_people):
    incident = exhaust(open_incident(summary="done").incident)
    assert incident.state == IncidentState.EXHAUSTED
    assert not CallAttempt.objects.filter(incident=incident, status=AttemptStatus.QUEUED).exists()
    assert CallAttempt.objects.filter(incident=incident).count() == 3


# --- pause, the auditor --------------------------------------------------------------------------


def test_a_policy_pause_waits_before_the_next_call(two_people):
    two_people.pause_seconds = 30
    two_people.save()
    incident = open_incident(summary="pause").incident
    first = CallAttempt.objects.get(incident=incident, step=1)
    claim(first)

    end_call(first, AttemptStatus.BUSY)

    incident = fresh(incident)
    assert incident.current_step == 1
    assert timezone.now() + timedelta(seconds=25) < incident.next_action_at < timezone.now() + timedelta(seconds=35)
    make_due(incident)
    timers.check_deadline(incident.pk, 1)
    assert fresh(incident).current_step == 2


def test_the_auditor_repairs_a_triggered_incident_that_lost_its_deadline(two_people, caplog):
    incident = open_incident(summary="stranded").incident
    Incident.objects.filter(pk=incident.pk).update(next_action_at=None)

    timers.sweep_due()

    assert fresh(incident).next_action_at is not None
    assert any("had no deadline" in record.getMessage() for record in caplog.records)


# --- items 15 and 19: the last digit 2, and re-triggering ------------------------------------------


def test_pressing_2_on_the_last_call_is_told_nobody_is_left(two_people):
    incident = open_incident(summary="last").incident
    for step in (1, 2):
        attempt = CallAttempt.objects.get(incident=incident, step=step)
        claim(attempt)
        end_call(attempt)
    last = CallAttempt.objects.get(incident=incident, step=3)
    claim(last)

    assert services.apply_keypress(last.token, "2") is KeypressOutcome.NOBODY_LEFT
    assert fresh(incident).state == IncidentState.EXHAUSTED


def test_pressing_2_with_someone_next_passes_it_on(two_people):
    incident = open_incident(summary="pass").incident
    first = CallAttempt.objects.get(incident=incident, step=1)
    claim(first)

    assert services.apply_keypress(first.token, "2") is KeypressOutcome.ESCALATED
    assert CallAttempt.objects.get(incident=incident, step=2).contact.name == "Lee"


def test_a_late_press_1_after_exhaustion_acknowledges(two_people):
    incident = exhaust(open_incident(summary="late").incident)
    last = CallAttempt.objects.get(incident=incident, step=3)

    assert services.apply_keypress(last.token, "1") is KeypressOutcome.ACKNOWLEDGED
    assert fresh(incident).state == IncidentState.ACKNOWLEDGED


def test_a_firing_alert_after_exhaustion_starts_a_new_round_from_the_first_contact(two_people):
    incident = exhaust(open_incident(summary="still broken", dedup_key="k").incident)

    result = open_incident(summary="still broken", dedup_key="k")

    incident = fresh(incident)
    assert result.retriggered and result.incident.pk == incident.pk
    assert incident.state == IncidentState.TRIGGERED and incident.round_started_step == 3
    fourth = CallAttempt.objects.get(incident=incident, step=4)
    assert fourth.contact.name == "Kim"
    assert incident.events.filter(kind=EventKind.RETRIGGERED).count() == 1
    # and the new round has its own max_attempts: three more calls, then exhausted again
    assert exhaust(incident).current_step == 6


def test_a_duplicate_soon_after_an_acknowledgement_rings_nobody(two_people):
    incident = open_incident(summary="acked", dedup_key="k").incident
    acknowledge(incident.pk, actor="ops")

    result = open_incident(summary="acked", dedup_key="k")

    assert result.deduplicated and fresh(incident).state == IncidentState.ACKNOWLEDGED


def test_an_alert_still_firing_long_after_the_acknowledgement_rings_again(two_people, settings):
    settings.ALERT_RETRIGGER_AFTER_ACK_MINUTES = 60
    incident = open_incident(summary="acked long ago", dedup_key="k").incident
    acknowledge(incident.pk, actor="ops")
    Incident.objects.filter(pk=incident.pk).update(acknowledged_at=timezone.now() - timedelta(minutes=61))

    result = open_incident(summary="acked long ago", dedup_key="k")

    incident = fresh(incident)
    assert result.retriggered and incident.state == IncidentState.TRIGGERED
    assert incident.acknowledged_by == "" and incident.current_step == 2


def test_the_retrigger_after_an_acknowledgement_can_be_turned_off(two_people, settings):
    settings.ALERT_RETRIGGER_AFTER_ACK_MINUTES = 0
    incident = open_incident(summary="acked", dedup_key="k").incident
    acknowledge(incident.pk, actor="ops")
    Incident.objects.filter(pk=incident.pk).update(acknowledged_at=timezone.now() - timedelta(days=3))

    assert open_incident(summary="acked", dedup_key="k").deduplicated


def test_escalating_an_exhausted_incident_calls_the_round_again(two_people):
    incident = exhaust(open_incident(summary="again").incident)

    attempt = services.escalate_now(incident.pk, actor="user:lead")

    assert attempt.step == 4 and attempt.contact.name == "Kim"
    assert fresh(incident).state == IncidentState.TRIGGERED


def test_a_second_escalation_from_the_same_page_does_nothing(two_people):
    # given two people looking at call 1 of an incident, and the first one escalates
    incident = open_incident(summary="double click").incident
    services.escalate_now(incident.pk, actor="user:kim", from_step=1)

    # when the second (or a second click) escalates from the same call 1
    with pytest.raises(DomainError) as refused:
        services.escalate_now(incident.pk, actor="user:lee", from_step=1)

    # then nobody more is skipped: one escalation, call 2 is the current one
    assert refused.value.code == "already_escalated"
    assert fresh(incident).current_step == 2
    assert incident.events.filter(kind=EventKind.ESCALATED).count() == 1


# --- every dial and carrier callback starts by locking its incident, then its call ------------------


def test_a_carrier_callback_locks_its_incident_then_its_call_in_two_statements(two_people):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    incident = open_incident(summary="disk full").incident
    attempt = CallAttempt.objects.get(incident=incident, step=1)

    # when a callback names the call by its token (as every carrier webhook does)
    with CaptureQueriesContext(connection) as queries:
        locked = services._lock_attempt_by_token(attempt.token)

    # then the incident is locked first, found through the call, then the call: two statements
    assert locked[0].pk == incident.pk and locked[1].pk == attempt.pk
    sql = [query["sql"].upper() for query in queries.captured_queries]
    assert len(sql) == 2, sql
    if connection.features.has_select_for_update:  # (SQLite has no row locks: one writer at a time)
        assert '"INCIDENTS_INCIDENT"' in sql[0].split("FOR")[-1] and "FOR NO KEY UPDATE" in sql[0]
        assert '"ORCHESTRATOR_CALLATTEMPT"' in sql[1].split("FOR")[-1] and "FOR UPDATE" in sql[1]

    # and an unknown token locks nothing
    assert services._lock_attempt_by_token("no-such-token") is None
