"""The engine's timers: a deadline that passed (a countdown task or the beat sweep), the sweep that is
the safety net behind every countdown, and the auditor that repairs a triggered incident left with no
deadline. Deadlines mean "look at this incident again now"; what happens depends on the current call:
still queued → send its dial again and wait (never skip the person); claimed but with no word
that any carrier has it → ask the carriers (orchestrator.doubt); dialing or ringing past its time →
no answer, next person; ended → next person.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.celery_utils import enqueue_on_commit
from incidents.models import EventKind, Incident, IncidentState
from incidents.services import lock_incident, record_event
from orchestrator import doubt
from orchestrator.models import AttemptStatus, CallAttempt
from orchestrator.services import _advance_locked, _clear_deadline, _set_deadline, rearm_countdown

logger = logging.getLogger(__name__)


def check_deadline(incident_id: int, step: int) -> CallAttempt | None:
    """A countdown task or the sweep: acts when the incident's deadline has really passed. `step` is
    the step the countdown was sent at; the deadline, not the step, decides (see below)."""
    with transaction.atomic():
        incident = lock_incident(incident_id)
        now = timezone.now()
        if incident.next_action_at is None:
            return None  # no deadline: nothing to look at
        if incident.next_action_at > now:
            rearm_countdown(incident, now=now)  # it moved later: look again then
            return None
        if incident.state != IncidentState.TRIGGERED:
            _clear_deadline(incident)  # a stale deadline (e.g. a late callback's): nothing to do
            return None
        # The deadline is the incident's, whichever step's countdown (or the sweep) noticed it due:
        # a countdown that carried the deadline on from an earlier step acts for the current one.
        step = incident.current_step
        attempt = incident.attempts.select_related("contact").filter(step=step).first()
        if attempt is not None and attempt.status == AttemptStatus.QUEUED:
            _send_dial_again(incident, attempt)
            return None
        if attempt is not None and doubt.in_doubt(attempt):
            why = doubt.on_deadline_locked(incident, attempt)
            return move_on_after_deadline(incident, attempt, why) if why else None
        if attempt is not None and not attempt.is_final:
            return move_on_after_deadline(incident, attempt, "no news of the call before the deadline")
        return _advance_locked(incident, from_step=step, reason="no keypress before the deadline", actor="system")


def move_on_after_deadline(incident: Incident, attempt: CallAttempt, why: str) -> CallAttempt | None:
    """The call did not end with a keypress before its deadline: say why on it, and call the next person."""
    attempt.error = attempt.error or why[:500]
    attempt.save(update_fields=["error"])
    record_event(incident, EventKind.NO_ANSWER, message="deadline passed without a keypress", attempt=attempt)
    return _advance_locked(incident, from_step=attempt.step, reason="no keypress before the deadline", actor="system")


def _send_dial_again(incident: Incident, attempt: CallAttempt) -> None:
    """The call is still waiting for a worker (a backlog, a lost message, a dead worker): send its
    dial again and wait; the person is called late rather than skipped. Spaced by
    DIAL_RESEND_SECONDS, so an outage adds one message per waiting call per interval, not a flood."""
    now = timezone.now()
    if attempt.dial_sent_at is None or attempt.dial_sent_at <= now - timedelta(seconds=settings.DIAL_RESEND_SECONDS):
        resent = incident.events.filter(kind=EventKind.DIAL_DELAYED, attempt_id=attempt.pk, data__has_key="resent")
        first_delay = not resent.exists()  # (a carrier check's rows are dial-delayed rows too)
        attempt.dial_sent_at = now
        attempt.save(update_fields=["dial_sent_at"])
        enqueue_on_commit("orchestrator.dial_attempt", attempt.pk)
        if first_delay:
            waited = int((now - attempt.created_at).total_seconds())
            record_event(
                incident,
                EventKind.DIAL_DELAYED,
                message=f"call {attempt.step} not dialed after {waited}s (workers busy or down); sent again",
                attempt=attempt,
                data={"resent": waited},
            )
    _set_deadline(incident, settings.DIAL_RESEND_SECONDS)


def sweep_due(limit: int = 100) -> int:
    """The safety net behind countdowns. Claims each due incident at most once per run (a cursor on
    the primary key, SKIP LOCKED so several sweepers never fight), so one incident that needs
    nothing can never stall the others; then audits for triggered incidents with no deadline."""
    handled = 0
    last_pk = 0
    now = timezone.now()
    while handled < limit:
        with transaction.atomic():
            due = (
                # NO KEY UPDATE: duplicates joining an incident hold KEY SHARE on it during a storm,
                # and must not make the sweep skip it
                Incident.objects.select_for_update(skip_locked=True, no_key=True)
                .filter(next_action_at__lte=now, pk__gt=last_pk)
                .order_by("pk")
                .values_list("pk", "current_step")
                .first()
            )
            if due is None:
                break
            last_pk = due[0]
            check_deadline(*due)
            handled += 1
    repair_missing_deadlines(limit)
    return handled


def repair_missing_deadlines(limit: int = 100) -> list[int]:
    """The auditor: a triggered incident with no deadline would never move again. Each one found is
    logged, given a deadline of now, and so handled by the next check."""
    repaired = []
    stranded = Incident.objects.filter(state=IncidentState.TRIGGERED, next_action_at__isnull=True)
    for incident_id in stranded.order_by("pk").values_list("pk", flat=True)[:limit]:
        with transaction.atomic():
            incident = lock_incident(incident_id)
            if incident.state != IncidentState.TRIGGERED or incident.next_action_at is not None:
                continue
            logger.error(
                "triggered incident had no deadline; repaired",
                extra={"incident_id": incident.pk, "step": incident.current_step},
            )
            _set_deadline(incident, 0)
            repaired.append(incident.pk)
    return repaired
