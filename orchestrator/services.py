"""The escalation engine. Every entry point locks the incident row first (then the attempt), checks
the state and the step it was asked about, writes, and enqueues follow-up work only after commit.

A redelivered or late task therefore does nothing: the step guard makes it a no-op.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import audit
from accounts.models import AuditAction
from config.celery_utils import enqueue_on_commit
from incidents.models import EventKind, Incident, IncidentState
from incidents.services import acknowledge_locked, incident_payload, lock_incident, record_event
from orchestrator.models import FINAL_STATUSES, STATUS_RANK, AnsweredBy, AttemptStatus, CallAttempt

logger = logging.getLogger(__name__)

# How long an answered call may last before the deadline moves on: the message, spoken
# `message_repeats` times with a pause for the keypress each time, and some slack.
SECONDS_PER_MESSAGE_ROUND = 40
ANSWERED_CALL_SLACK_SECONDS = 30
STUCK_QUEUED_SECONDS = 15


def _set_deadline(incident: Incident, seconds: float) -> datetime:
    """Stores the deadline (the sweep's safety net) and schedules a countdown for precision."""
    incident.next_action_at = timezone.now() + timedelta(seconds=seconds)
    incident.save(update_fields=["next_action_at", "updated_at"])
    countdown = min(max(seconds, 0.0), settings.MAX_COUNTDOWN_SECONDS)
    enqueue_on_commit("orchestrator.check_deadline", incident.pk, incident.current_step, countdown=countdown)
    return incident.next_action_at


def start_escalation(incident: Incident) -> CallAttempt | None:
    """Called inside the transaction that created the incident: queues the first call."""
    return _advance_locked(incident, from_step=0, reason="incident opened", actor="system")


def advance(incident_id: int, from_step: int, *, reason: str, actor: str = "system") -> CallAttempt | None:
    """Calls the next contact if the incident is still triggered and still at `from_step`."""
    with transaction.atomic():
        incident = lock_incident(incident_id)
        return _advance_locked(incident, from_step=from_step, reason=reason, actor=actor)


def _advance_locked(incident: Incident, *, from_step: int, reason: str, actor: str) -> CallAttempt | None:
    if incident.state != IncidentState.TRIGGERED or incident.exhausted or incident.current_step != from_step:
        return None
    policy = incident.policy
    if from_step >= policy.max_attempts:
        _exhaust_locked(incident, _exhaustion_reason(incident, from_step))
        return None
    contacts = [member.contact for member in policy.members.select_related("contact") if member.contact.active]
    if not contacts:
        _exhaust_locked(incident, f"policy '{policy.name}' has no active contact")
        return None
    contact = contacts[from_step % len(contacts)]
    if from_step > 0:
        record_event(incident, EventKind.ESCALATED, actor=actor, message=f"{reason}; calling {contact.name}")
    attempt = CallAttempt.objects.create(
        incident=incident, step=from_step + 1, contact=contact, to_number=contact.phone
    )
    incident.current_step = from_step + 1
    incident.save(update_fields=["current_step", "updated_at"])
    enqueue_on_commit("orchestrator.dial_attempt", attempt.pk)  # first: it is the one in a hurry
    deadline = _set_deadline(incident, policy.ring_timeout_seconds + settings.DIAL_GRACE_SECONDS)
    record_event(
        incident,
        EventKind.CALL_QUEUED,
        message=f"call {attempt.step} to {contact.name} ({contact.phone})",
        attempt=attempt,
        data={"deadline": deadline.isoformat()},
    )
    return attempt


def _exhaustion_reason(incident: Incident, calls: int) -> str:
    attempts = list(incident.attempts.order_by("step"))
    if attempts and all(attempt.dialed_at is None for attempt in attempts):
        return f"no carrier could place any of the {calls} call(s); last: {attempts[-1].error}"
    return f"nobody pressed 1 after {calls} call(s)"


def _exhaust_locked(incident: Incident, reason: str) -> None:
    from integrations.services import notify

    incident.exhausted = True
    incident.exhausted_reason = reason[:300]
    incident.next_action_at = None
    incident.save(update_fields=["exhausted", "exhausted_reason", "next_action_at", "updated_at"])
    record_event(incident, EventKind.EXHAUSTED, message=reason)
    if incident.is_drill:
        return  # a drill proves the phones, it never wakes the fallback channels
    messages = notify("incident.exhausted", incident_payload(incident), dedup_key=f"incident:{incident.pk}:exhausted")
    if messages:
        record_event(
            incident,
            EventKind.NOTIFIED,
            message=f"fallback notification queued for {len(messages)} integration(s)",
            data={"integrations": [message.integration.name for message in messages]},
        )


def escalate_now(incident_id: int, *, actor: str) -> CallAttempt | None:
    """Skips the current call and rings the next contact (the API's /escalate and the digit 2)."""
    with transaction.atomic():
        incident = lock_incident(incident_id)
        if incident.state != IncidentState.TRIGGERED:
            from config.errors import DomainError

            raise DomainError(f"Incident #{incident.pk} is {incident.state}; only a triggered incident escalates.")
        if incident.exhausted:
            from config.errors import DomainError

            raise DomainError(f"Incident #{incident.pk} is exhausted: all {incident.current_step} calls were made.")
        audit.record(AuditAction.INCIDENT_ESCALATED, actor=actor, target=f"incident:{incident.pk}")
        return _advance_locked(incident, from_step=incident.current_step, reason=f"escalated by {actor}", actor=actor)


# --- dialing ------------------------------------------------------------------------------------


def _lock_attempt(attempt_id: int) -> tuple[Incident, CallAttempt] | None:
    incident_id = CallAttempt.objects.filter(pk=attempt_id).values_list("incident_id", flat=True).first()
    if incident_id is None:
        return None
    incident = lock_incident(incident_id)
    attempt = CallAttempt.objects.select_for_update(of=("self",)).select_related("contact").get(pk=attempt_id)
    return incident, attempt


def _move_on_locked(incident: Incident, attempt: CallAttempt, *, reason: str) -> None:
    """The current call ended without a keypress: next contact now, or after the policy's pause."""
    if incident.state != IncidentState.TRIGGERED or attempt.step != incident.current_step or incident.exhausted:
        return
    pause = incident.policy.pause_seconds
    if pause:
        _set_deadline(incident, pause)
    else:
        _advance_locked(incident, from_step=attempt.step, reason=reason, actor="system")


# --- timers -------------------------------------------------------------------------------------


def check_deadline(incident_id: int, step: int) -> CallAttempt | None:
    """A countdown task or the sweep: moves on if this step's deadline has really passed."""
    with transaction.atomic():
        incident = lock_incident(incident_id)
        if incident.state != IncidentState.TRIGGERED or incident.current_step != step:
            return None
        if incident.next_action_at is None or incident.next_action_at > timezone.now():
            return None  # the deadline moved (the call was answered): a later check handles it
        attempt = incident.attempts.filter(step=step).first()
        if attempt is not None and not attempt.is_final:
            attempt.error = attempt.error or "no news of the call before the deadline"
            attempt.save(update_fields=["error"])
            record_event(incident, EventKind.NO_ANSWER, message="deadline passed without a keypress", attempt=attempt)
        return _advance_locked(incident, from_step=step, reason="no keypress before the deadline", actor="system")


def sweep_due(limit: int = 100) -> int:
    """The safety net behind countdowns: claims due incidents with SKIP LOCKED, one at a time,
    so several beat/worker instances never fight over the same row; and re-sends dials whose
    enqueue was lost (the attempt is still queued long after it was made)."""
    handled = 0
    for _ in range(limit):
        with transaction.atomic():
            due = (
                Incident.objects.select_for_update(skip_locked=True)
                .filter(state=IncidentState.TRIGGERED, next_action_at__lte=timezone.now())
                .order_by("pk")
                .values_list("pk", "current_step")
                .first()
            )
            if due is None:
                break
            check_deadline(*due)
            handled += 1
    stuck_before = timezone.now() - timedelta(seconds=STUCK_QUEUED_SECONDS)
    stuck = CallAttempt.objects.filter(
        status=AttemptStatus.QUEUED, created_at__lte=stuck_before, incident__state=IncidentState.TRIGGERED
    ).values_list("pk", flat=True)[:limit]
    for attempt_id in stuck:
        enqueue_on_commit("orchestrator.dial_attempt", attempt_id)
    return handled


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
            attempt.save(update_fields=["provider_call_id", "answered_by"])
            return attempt
        attempt.status = status
        now = timezone.now()
        if status == AttemptStatus.IN_PROGRESS:
            attempt.answered_at = now
        if status in FINAL_STATUSES:
            attempt.ended_at = now
        attempt.save(update_fields=["status", "provider_call_id", "answered_by", "answered_at", "ended_at"])
        _record_status_event(incident, attempt, status, detail)
        if incident.state != IncidentState.TRIGGERED or attempt.step != incident.current_step:
            return attempt
        if status == AttemptStatus.IN_PROGRESS:
            repeats = incident.policy.message_repeats
            _set_deadline(incident, repeats * SECONDS_PER_MESSAGE_ROUND + ANSWERED_CALL_SLACK_SECONDS)
        elif status in FINAL_STATUSES:
            _move_on_locked(incident, attempt, reason=f"call {attempt.step} ended: {status.replace('_', ' ')}")
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


def _lock_attempt_by_token(token: str) -> tuple[Incident, CallAttempt] | None:
    attempt_id = CallAttempt.objects.filter(token=token).values_list("pk", flat=True).first()
    return _lock_attempt(attempt_id) if attempt_id is not None else None


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
        attempt.save(update_fields=["answered_by"])
        if is_machine:
            record_event(incident, EventKind.MACHINE, message=f"answering machine ({raw}); moving on", attempt=attempt)
            _move_on_locked(incident, attempt, reason="an answering machine picked up")
        return attempt


class KeypressOutcome(enum.Enum):
    ACKNOWLEDGED = "acknowledged"
    ALREADY_HANDLED = "already_handled"
    ESCALATED = "escalated"
    REPEAT = "repeat"
    UNKNOWN_CALL = "unknown_call"


def apply_keypress(token: str, digits: str) -> KeypressOutcome:
    """1 acknowledges, 2 passes to the next person now, anything else repeats the message."""
    with transaction.atomic():
        locked = _lock_attempt_by_token(token)
        if locked is None:
            return KeypressOutcome.UNKNOWN_CALL
        incident, attempt = locked
        digit = (digits or "")[:1]
        if digit:
            attempt.digits = (attempt.digits + digit)[-32:]
            attempt.save(update_fields=["digits"])
            record_event(
                incident,
                EventKind.DIGIT_PRESSED,
                actor=_contact_actor(attempt),
                message=f"pressed {digit}",
                attempt=attempt,
            )
        if incident.state != IncidentState.TRIGGERED:
            return KeypressOutcome.ALREADY_HANDLED if digit in ("1", "2") else KeypressOutcome.REPEAT
        if digit == "1":
            acknowledge_locked(
                incident, actor=_contact_actor(attempt), message="pressed 1 on the phone", attempt=attempt
            )
            return KeypressOutcome.ACKNOWLEDGED
        if digit == "2":
            if attempt.step == incident.current_step and not incident.exhausted:
                _advance_locked(
                    incident,
                    from_step=attempt.step,
                    reason=f"{attempt.contact.name} pressed 2",
                    actor=_contact_actor(attempt),
                )
            return KeypressOutcome.ESCALATED
        return KeypressOutcome.REPEAT


def _contact_actor(attempt: CallAttempt) -> str:
    return f"contact:{attempt.contact.name} ({attempt.to_number})"
