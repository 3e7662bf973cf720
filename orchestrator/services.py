"""The escalation engine. Every entry point locks the incident row first (then the attempt), checks
the one predicate `incident.calls_at(step)`, writes, and enqueues follow-up work only after commit.

A redelivered or late task therefore does nothing: the step guard makes it a no-op.

Deadlines (`next_action_at`) always mean "look at this incident again now", and what happens then
depends on the current call: still queued (a worker backlog) → send the dial again and wait, never
skip the person; dialing or ringing past its time → no answer, next person; ended → next person.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import audit
from accounts.models import AuditAction
from config.celery_utils import enqueue_on_commit
from config.compiled_queries import CompiledInsert, CompiledQuery, save_fields
from config.errors import DomainError
from incidents import metrics as incident_metrics
from incidents.models import EventKind, Incident, IncidentState, PolicyContact
from incidents.services import (
    acknowledge_locked,
    finish_drill_locked,
    incident_payload,
    lock_incident,
    locked_incidents,
    record_event,
)
from orchestrator import metrics as call_metrics
from orchestrator.models import FINAL_STATUSES, STATUS_RANK, AnsweredBy, AttemptStatus, CallAttempt

logger = logging.getLogger(__name__)

# How long an answered call may last before the deadline moves on: the message, spoken
# `message_repeats` times with a pause for the keypress each time, and some slack.
SECONDS_PER_MESSAGE_ROUND = 40
ANSWERED_CALL_SLACK_SECONDS = 30
# A call's deadline (set_call_deadline) is not moved later by less than this.
CALL_DEADLINE_TOLERANCE_SECONDS = 1.0


# --- deadlines ----------------------------------------------------------------------------------


def _set_deadline(
    incident: Incident, seconds: float, *, with_fields: tuple[str, ...] = (), countdown: bool = True
) -> datetime:
    """Stores the deadline (the sweep's safety net) and makes sure a countdown looks at it on time.

    One countdown per incident at a time: when one is already on the broker for a moment before the
    new deadline (a carrier callback moving the deadline later, as every ringing call does several
    times), no other is sent; that countdown finds the deadline not due yet and sends itself again
    for the rest (check_deadline). A deadline beyond the countdown cap is reached in steps of the cap.
    A countdown lost with the broker costs precision only: the sweep acts on every due deadline.
    `with_fields`: other fields the caller changed, saved in the same statement.
    `countdown=False`: no countdown is sent; the sweep looks at the deadline within
    ESCALATION_SWEEP_SECONDS of it (for the dial's check, see _advance_locked)."""
    now = timezone.now()
    incident.next_action_at = now + timedelta(seconds=max(seconds, 0.0))
    pending = incident.countdown_at
    if not countdown or (pending is not None and now < pending <= incident.next_action_at):
        save_fields(incident, ["next_action_at", "updated_at", *with_fields])
        return incident.next_action_at
    _send_countdown(incident, seconds, now=now)
    save_fields(incident, ["next_action_at", "countdown_at", "updated_at", *with_fields])
    return incident.next_action_at


def _send_countdown(incident: Incident, seconds: float, *, now: datetime) -> None:
    """Queues (after commit) the countdown that looks at the incident in `seconds`, at most the cap,
    and records when it fires; the caller saves `countdown_at`."""
    countdown = min(max(seconds, 0.0), settings.MAX_COUNTDOWN_SECONDS)
    incident.countdown_at = now + timedelta(seconds=countdown)
    enqueue_on_commit("orchestrator.check_deadline", incident.pk, incident.current_step, countdown=countdown)


def rearm_countdown(incident: Incident, *, now: datetime) -> bool:
    """A countdown for the stored deadline, unless one already fires before it (then that one carries
    on). Sent when a countdown found the deadline moved later (for the rest of the wait), and when a
    call's deadline, until then the sweep's safety net, becomes the way on (a dial that timed out).
    Under the incident's lock."""
    if incident.next_action_at is None or incident.next_action_at <= now:
        return False
    pending = incident.countdown_at
    if pending is not None and now < pending <= incident.next_action_at:
        return False
    _send_countdown(incident, (incident.next_action_at - now).total_seconds(), now=now)
    incident.save(update_fields=["countdown_at"])
    return True


def _extend_deadline(incident: Incident, seconds: float, *, countdown: bool = True) -> None:
    """Moves the deadline later, never earlier (a callback that already extended it wins)."""
    wanted = timezone.now() + timedelta(seconds=seconds)
    if incident.next_action_at is None or incident.next_action_at < wanted:
        _set_deadline(incident, seconds, countdown=countdown)


def set_call_deadline(incident: Incident, seconds: float, *, extend: bool = False) -> None:
    """The deadline of a call in progress: by then the carrier should have told us how it ended.

    It is a safety net, not the usual way on (the carrier's callback moves the escalation at once),
    and it already holds DIAL_GRACE_SECONDS or ANSWERED_CALL_SLACK_SECONDS of slack, so the sweep
    alone watches it (within ESCALATION_SWEEP_SECONDS): no countdown task goes to the broker for it.
    A countdown per call cost the calls worker a broker send, a receipt and a held ETA message per
    dial, an eighth of its CPU per dial when the first calls of an alert storm all go out at once
    (bench/alert_storm.py). Waits that are the usual way on (the policy's pause, the keypress grace,
    the carrier checks of orchestrator.doubt) keep their countdowns.

    `extend`: only later, never earlier, and not by less than CALL_DEADLINE_TOLERANCE_SECONDS (a
    carrier that took the call at once would otherwise cost one more write per dial for nothing)."""
    if extend:
        wanted = timezone.now() + timedelta(seconds=seconds - CALL_DEADLINE_TOLERANCE_SECONDS)
        if incident.next_action_at is not None and incident.next_action_at >= wanted:
            return
    _set_deadline(incident, seconds, countdown=False)


def _clear_deadline(incident: Incident) -> None:
    if incident.next_action_at is not None:
        incident.next_action_at = None
        save_fields(incident, ["next_action_at", "updated_at"])


def ring_deadline_seconds(incident: Incident) -> float:
    """From the moment a call is dialed: the ring, then grace for the carrier's news to reach us."""
    return incident.policy.ring_timeout_seconds + settings.DIAL_GRACE_SECONDS


# --- starting, advancing, exhausting --------------------------------------------------------------


def start_escalation(incident: Incident) -> CallAttempt | None:
    """Called inside the transaction that created the incident: queues the first call."""
    return _advance_locked(incident, from_step=0, reason="incident opened", actor="system")


def advance(incident_id: int, from_step: int, *, reason: str, actor: str = "system") -> CallAttempt | None:
    """Calls the next contact if the incident is still calling at `from_step`."""
    with transaction.atomic():
        incident = lock_incident(incident_id)
        return _advance_locked(incident, from_step=from_step, reason=reason, actor=actor)


# Compiled once per process (config.compiled_queries): every new incident and every escalation step
# reads its policy's contacts, and compiling the join was an eighth of opening an incident.
_INSERT_ATTEMPT = CompiledInsert(CallAttempt)
_MEMBERS_OF_POLICY = CompiledQuery(
    lambda policy_id: PolicyContact.objects.filter(policy_id=policy_id).select_related("contact"), -1
)


def _advance_locked(incident: Incident, *, from_step: int, reason: str, actor: str) -> CallAttempt | None:
    if not incident.calls_at(from_step):
        return None
    policy = incident.policy
    previous = incident.attempts.filter(step=from_step).first() if from_step else None
    if previous is not None and previous.status == AttemptStatus.QUEUED:
        # only an explicit escalation passes over a call that was never dialed; say so on it
        _cancel_undialed(previous, f"not dialed: {reason} first")
    if incident.calls_in_round >= policy.max_attempts:
        _exhaust_locked(incident, _exhaustion_reason(incident))
        return None
    contacts = [member.contact for member in _MEMBERS_OF_POLICY.all(policy.pk) if member.contact.active]
    if not contacts:
        _exhaust_locked(incident, f"policy '{policy.name}' has no active contact")
        return None
    contact = contacts[incident.calls_in_round % len(contacts)]
    if from_step > incident.round_started_step:
        record_event(incident, EventKind.ESCALATED, actor=actor, message=f"{reason}; calling {contact.name}")
    attempt = _INSERT_ATTEMPT.create(
        incident=incident, step=from_step + 1, contact=contact, to_number=contact.phone, dial_sent_at=timezone.now()
    )
    incident.current_step = from_step + 1
    enqueue_on_commit("orchestrator.dial_attempt", attempt.pk)  # first: it is the one in a hurry
    # Until a worker claims the call, the deadline only checks that the dial went out: the ring
    # deadline starts when the call is dialed, so a backlog never costs anyone their ring. The sweep
    # alone watches this check: the claim nearly always comes first and sends the countdown of the
    # ring deadline, so a countdown for the check was one more task per call for the calls worker to
    # receive and hold, in the very second an alert storm's new incidents wait for their dials.
    _set_deadline(incident, settings.DIAL_RESEND_SECONDS, with_fields=("current_step",), countdown=False)
    record_event(
        incident,
        EventKind.CALL_QUEUED,
        message=f"call {attempt.step} to {contact.name} ({contact.phone})",
        attempt=attempt,
    )
    return attempt


def _cancel_undialed(attempt: CallAttempt, why: str) -> None:
    attempt.status = AttemptStatus.CANCELED
    attempt.error = why[:500]
    attempt.ended_at = timezone.now()
    attempt.save(update_fields=["status", "error", "ended_at"])


def _exhaustion_reason(incident: Incident) -> str:
    """What happened to this round's calls, in words; carriers are blamed only when they were asked."""
    attempts = list(incident.attempts.filter(step__gt=incident.round_started_step).order_by("step"))
    calls = len(attempts)
    not_placed = [attempt for attempt in attempts if _outcome_words(attempt) == "not placed by any carrier"]
    if calls and len(not_placed) == calls:
        return f"no carrier could place any of the {calls} call(s); last: {not_placed[-1].error}"
    outcomes = Counter(_outcome_words(attempt) for attempt in attempts)
    detail = ", ".join(f"{count} {words}" for words, count in outcomes.most_common())
    return f"nobody pressed 1 after {calls} call(s): {detail}"


def _outcome_words(attempt: CallAttempt) -> str:
    if attempt.answered_by == AnsweredBy.MACHINE:
        return "reached voicemail"
    if attempt.status == AttemptStatus.BUSY:
        return "busy"
    if attempt.status == AttemptStatus.CANCELED and attempt.dial_started_at is None:
        return "skipped before dialing"
    if attempt.status == AttemptStatus.FAILED and attempt.dial_started_at and attempt.dialed_at is None:
        return "not placed by any carrier"
    if attempt.answered_at is not None:
        return "answered without pressing 1"
    return "not answered"


def _exhaust_locked(incident: Incident, reason: str) -> None:
    from integrations.services import notify

    incident.state = IncidentState.EXHAUSTED
    incident.exhausted_reason = reason[:300]
    incident.next_action_at = None
    incident.save(update_fields=["state", "exhausted_reason", "next_action_at", "updated_at"])
    incident_metrics.incident_exhausted(incident)
    record_event(incident, EventKind.EXHAUSTED, message=reason)
    if incident.is_drill:
        # A drill proves the phones: it never wakes the fallback channels, and it is over now.
        finish_drill_locked(incident, outcome="exhausted", how=f"nobody pressed 1 ({reason})")
        return
    messages = notify(
        "incident.exhausted",
        incident_payload(incident),
        dedup_key=f"incident:{incident.pk}:exhausted:{incident.round_started_step}",
    )
    if messages:
        record_event(
            incident,
            EventKind.NOTIFIED,
            message=f"fallback notification queued for {len(messages)} integration(s)",
            data={"integrations": [message.integration.name for message in messages]},
        )


def retrigger_locked(incident: Incident, *, reason: str, actor: str) -> CallAttempt | None:
    """An exhausted (or long-acknowledged) incident rings again: a new round from the first contact."""
    incident.state = IncidentState.TRIGGERED
    incident.round_started_step = incident.current_step
    incident.exhausted_reason = ""
    incident.acknowledged_at = None
    incident.acknowledged_by = ""
    incident.save(
        update_fields=[
            "state",
            "round_started_step",
            "exhausted_reason",
            "acknowledged_at",
            "acknowledged_by",
            "updated_at",
        ]
    )
    record_event(
        incident, EventKind.RETRIGGERED, actor=actor, message=f"{reason}; calling again from the first contact"
    )
    return _advance_locked(incident, from_step=incident.current_step, reason=reason, actor=actor)


def escalate_now(incident_id: int, *, actor: str, from_step: int | None = None) -> CallAttempt | None:
    """Skips the current call and rings the next contact (the API's /escalate and the digit 2);
    on an exhausted incident, starts a new round of calls.

    `from_step` is the call the person saw when they pressed the button: a second click (or a second
    person) on the same page then does nothing, instead of skipping one more contact."""
    with transaction.atomic():
        incident = lock_incident(incident_id)
        if from_step is not None and incident.current_step != from_step:
            raise DomainError(
                f"Incident #{incident.pk} was already escalated (it is on call {incident.current_step}, "
                f"not {from_step}): nothing done.",
                code="already_escalated",
            )
        if incident.state == IncidentState.EXHAUSTED:
            audit.record(AuditAction.INCIDENT_ESCALATED, actor=actor, target=f"incident:{incident.pk}")
            return retrigger_locked(incident, reason=f"escalated by {actor} after exhaustion", actor=actor)
        if incident.state != IncidentState.TRIGGERED:
            raise DomainError(f"Incident #{incident.pk} is {incident.state}; only a triggered incident escalates.")
        audit.record(AuditAction.INCIDENT_ESCALATED, actor=actor, target=f"incident:{incident.pk}")
        return _advance_locked(incident, from_step=incident.current_step, reason=f"escalated by {actor}", actor=actor)


# --- locking attempts ---------------------------------------------------------------------------


def lock_attempt(attempt_id: int) -> tuple[Incident, CallAttempt] | None:
    """The incident row first, then the attempt: every writer takes the locks in this order."""
    return _lock_attempt_where("pk", int(attempt_id))


def _lock_attempt_by_token(token: str) -> tuple[Incident, CallAttempt] | None:
    return _lock_attempt_where("token", token)


def _locks_by(field: str, placeholder: int | str) -> tuple[CompiledQuery[Incident], CompiledQuery[CallAttempt]]:
    incident = CompiledQuery(lambda value: locked_incidents().filter(**{f"attempts__{field}": value}), placeholder)
    attempt = CompiledQuery(
        lambda value: (
            CallAttempt.objects.select_for_update(of=("self",)).select_related("contact").filter(**{field: value})
        ),
        placeholder,
    )
    return incident, attempt


# Compiled to SQL once per process (config.compiled_queries): every dial and callback runs them.
_ATTEMPT_LOCKS = {"pk": _locks_by("pk", -1), "token": _locks_by("token", "compiled-query-placeholder")}


def _lock_attempt_where(field: str, value: int | str) -> tuple[Incident, CallAttempt] | None:
    """Two statements, each a lock: the incident found through its attempt (an attempt never moves
    to another incident), then the attempt. Every dial and carrier callback starts here."""
    lock_incident_of, lock_attempt_by = _ATTEMPT_LOCKS[field]
    incident = lock_incident_of.first(value)
    if incident is None:
        return None
    attempt = lock_attempt_by.first(value)
    return (incident, attempt) if attempt is not None else None


def move_on_locked(incident: Incident, attempt: CallAttempt, *, reason: str, wait_seconds: float = 0) -> None:
    """The current call ended without a keypress: next contact now, or after a wait (the policy's
    pause, or the moment a keypress in flight needs to land)."""
    if not incident.calls_at(attempt.step):
        return
    wait = max(incident.policy.pause_seconds, wait_seconds)
    if wait:
        _set_deadline(incident, wait)
    else:
        _advance_locked(incident, from_step=attempt.step, reason=reason, actor="system")


# --- carrier callbacks --------------------------------------------------------------------------


def _from_other_carrier(incident: Incident, attempt: CallAttempt, carrier: str, what: str) -> bool:
    """After a failover the first carrier's call may exist after all: its news is kept in the
    timeline but never moves the attempt, which belongs to the carrier that placed it."""
    if not carrier or not attempt.provider or carrier == attempt.provider:
        return False
    record_event(
        incident,
        EventKind.CALL_ENDED if what in FINAL_STATUSES else EventKind.RINGING,
        message=f"{carrier} reported {what} for a call this attempt did not use ({attempt.provider} placed it)",
        attempt=attempt,
    )
    return True


def apply_call_status(
    token: str, status: str, *, provider_call_id: str = "", answered_by: str = "", detail: str = "", carrier: str = ""
) -> CallAttempt | None:
    """A status callback. Statuses only move forward, so repeats and reordering are harmless."""
    with transaction.atomic():
        locked = _lock_attempt_by_token(token)
        if locked is None:
            return None
        incident, attempt = locked
        if _from_other_carrier(incident, attempt, carrier, status):
            return attempt
        if provider_call_id and not attempt.provider_call_id:
            attempt.provider_call_id = provider_call_id
        if answered_by and not attempt.answered_by:
            attempt.answered_by = answered_by
        moved = STATUS_RANK[status] > STATUS_RANK[attempt.status]
        if not moved:
            save_fields(attempt, ["provider_call_id", "answered_by"])
            return attempt
        attempt.status = status
        now = timezone.now()
        if status == AttemptStatus.IN_PROGRESS:
            attempt.answered_at = now
        if status in FINAL_STATUSES:
            attempt.ended_at = now
        save_fields(attempt, ["status", "provider_call_id", "answered_by", "answered_at", "ended_at"])
        if status in FINAL_STATUSES:
            call_metrics.call_ended(attempt)
        _record_status_event(incident, attempt, status, detail)
        if not incident.calls_at(attempt.step):
            return attempt
        if status == AttemptStatus.IN_PROGRESS:
            repeats = incident.policy.message_repeats
            set_call_deadline(incident, repeats * SECONDS_PER_MESSAGE_ROUND + ANSWERED_CALL_SLACK_SECONDS, extend=True)
        elif status == AttemptStatus.COMPLETED:
            # The call ended after an answer: a keypress sent just before the hang-up may still be on
            # its way (the carrier posts both at once, in no set order), so give it a moment to land.
            move_on_locked(
                incident,
                attempt,
                reason=f"call {attempt.step} ended without a keypress",
                wait_seconds=settings.KEYPRESS_GRACE_SECONDS,
            )
        elif status in FINAL_STATUSES:
            move_on_locked(incident, attempt, reason=f"call {attempt.step} ended: {status.replace('_', ' ')}")
        return attempt


_STATUS_EVENTS = {
    AttemptStatus.RINGING: EventKind.RINGING,
    AttemptStatus.IN_PROGRESS: EventKind.ANSWERED,
    AttemptStatus.NO_ANSWER: EventKind.NO_ANSWER,
    AttemptStatus.BUSY: EventKind.BUSY,
    AttemptStatus.COMPLETED: EventKind.CALL_ENDED,
    AttemptStatus.FAILED: EventKind.CALL_ENDED,
    AttemptStatus.CANCELED: EventKind.CALL_ENDED,
}


def _record_status_event(incident: Incident, attempt: CallAttempt, status: str, detail: str) -> None:
    kind = _STATUS_EVENTS.get(status)
    if kind is None:
        return
    who = f"{attempt.contact.name} ({attempt.to_number})"
    text = {
        EventKind.RINGING: f"ringing {who}",
        EventKind.ANSWERED: f"{who} answered",
        EventKind.NO_ANSWER: f"{who} did not answer",
        EventKind.BUSY: f"{who} was busy",
    }.get(kind, f"call to {who} ended: {status.replace('_', ' ')}")
    record_event(incident, kind, message=f"{text}{'; ' + detail if detail else ''}", attempt=attempt)


def apply_machine_detection(token: str, *, is_machine: bool, raw: str, carrier: str = "") -> CallAttempt | None:
    """Answering-machine detection. A machine never acknowledges: the next person is called at
    once, and the message is left on the voicemail."""
    with transaction.atomic():
        locked = _lock_attempt_by_token(token)
        if locked is None:
            return None
        incident, attempt = locked
        if _from_other_carrier(incident, attempt, carrier, f"answered by {raw}"):
            return attempt
        verdict = AnsweredBy.MACHINE if is_machine else AnsweredBy.HUMAN
        if attempt.answered_by == verdict:
            return attempt
        attempt.answered_by = verdict
        save_fields(attempt, ["answered_by"])
        if is_machine:
            record_event(incident, EventKind.MACHINE, message=f"answering machine ({raw}); moving on", attempt=attempt)
            move_on_locked(incident, attempt, reason="an answering machine picked up")
        return attempt


class KeypressOutcome(enum.Enum):
    ACKNOWLEDGED = "acknowledged"
    ALREADY_HANDLED = "already_handled"
    ESCALATED = "escalated"
    NOBODY_LEFT = "nobody_left"
    REPEAT = "repeat"
    UNKNOWN_CALL = "unknown_call"


def apply_keypress(token: str, digits: str) -> KeypressOutcome:
    """1 acknowledges (also after exhaustion: a late answer is still an answer), 2 passes to the next
    person now, anything else repeats the message."""
    with transaction.atomic():
        locked = _lock_attempt_by_token(token)
        if locked is None:
            return KeypressOutcome.UNKNOWN_CALL
        incident, attempt = locked
        digit = (digits or "")[:1]
        if digit:
            attempt.digits = (attempt.digits + digit)[-32:]
            save_fields(attempt, ["digits"])
            record_event(
                incident,
                EventKind.DIGIT_PRESSED,
                actor=_contact_actor(attempt),
                message=f"pressed {digit}",
                attempt=attempt,
            )
        if digit == "1" and incident.state in (IncidentState.TRIGGERED, IncidentState.EXHAUSTED):
            acknowledge_locked(
                incident, actor=_contact_actor(attempt), message="pressed 1 on the phone", attempt=attempt
            )
            return KeypressOutcome.ACKNOWLEDGED
        if digit == "2":
            return _pass_on(incident, attempt)
        if digit == "1":
            return KeypressOutcome.ALREADY_HANDLED
        return KeypressOutcome.REPEAT


def _pass_on(incident: Incident, attempt: CallAttempt) -> KeypressOutcome:
    """The digit 2: the next person now, and the caller is told the truth about who is next."""
    if incident.state in (IncidentState.ACKNOWLEDGED, IncidentState.RESOLVED):
        return KeypressOutcome.ALREADY_HANDLED
    if not incident.calls_at(attempt.step):
        # exhausted, or another call of this incident is already under way
        return KeypressOutcome.NOBODY_LEFT if incident.state == IncidentState.EXHAUSTED else KeypressOutcome.ESCALATED
    last_call = incident.calls_in_round >= incident.policy.max_attempts
    _advance_locked(
        incident, from_step=attempt.step, reason=f"{attempt.contact.name} pressed 2", actor=_contact_actor(attempt)
    )
    return KeypressOutcome.NOBODY_LEFT if last_call else KeypressOutcome.ESCALATED


def _contact_actor(attempt: CallAttempt) -> str:
    return f"contact:{attempt.contact.name} ({attempt.to_number})"
