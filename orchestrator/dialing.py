"""Placing the call of one attempt: at most once, on the first carrier that takes it.

The claim (queued → dialing) commits before any carrier is called, so a redelivered task never
dials again, and it starts the ring deadline: time spent waiting for a worker is never taken from
the person's ring. Any failure of a carrier, an unexpected exception included, is recorded on the
attempt, in the timeline and in the carrier's breaker.

Carriers are tried in order (the contact's preference, VOICE_PROVIDER, then VOICE_FAILOVER_PROVIDER),
skipping one whose circuit breaker is open while another is not; an error, a refusal or a timeout on
one places the same attempt on the next at once, and the attempt and the timeline say which carrier
placed it and why the others did not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from config.compiled_queries import save_fields
from incidents.models import EventKind, IncidentState
from incidents.services import record_event
from orchestrator import metrics as call_metrics
from orchestrator.models import AttemptStatus
from orchestrator.services import (
    _cancel_undialed,
    lock_attempt,
    move_on_locked,
    rearm_countdown,
    ring_deadline_seconds,
    set_call_deadline,
)
from orchestrator.voice import CallRequest, ProviderError, breaker, get_provider
from orchestrator.voice.routing import carriers_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CarrierFailure:
    carrier: str
    reason: str
    ambiguous: bool = False

    def __str__(self) -> str:
        return f"{self.carrier}: {self.reason}"


def dial(attempt_id: int) -> None:
    claimed = _claim(attempt_id)
    if claimed is None:
        return
    request, carriers, claimed_at = claimed
    failures: list[CarrierFailure] = []
    closed = [carrier for carrier in carriers if not breaker.is_open(carrier)]
    for carrier in carriers:
        if closed and carrier not in closed:
            # skipped only while another carrier is available: with every breaker open, all are tried
            failures.append(CarrierFailure(carrier, "skipped: circuit open after repeated failures"))
            continue
        try:
            call_id = get_provider(carrier).place_call(request)
        except Exception as exc:
            failure = _failure_of(carrier, exc)
            failures.append(failure)
            _record_carrier_failure(attempt_id, failure, tries_next=carrier != carriers[-1])
            continue
        breaker.record_success(carrier)
        _placed(attempt_id, carrier, call_id, failures, claimed_at)
        return
    _no_carrier_placed(attempt_id, failures, claimed_at)


def _failure_of(carrier: str, error: Exception) -> CarrierFailure:
    """A carrier's refusal, timeout or unexpected exception, counted by its breaker. An exception we
    did not foresee (an SDK bug, a 201 with a body it cannot read) may follow a placed call, so it
    is ambiguous."""
    if isinstance(error, ProviderError):
        reason, ambiguous = str(error), error.ambiguous
    else:
        logger.exception("unexpected error from the carrier SDK", extra={"carrier": carrier})
        reason, ambiguous = f"unexpected {error.__class__.__name__} from {carrier}: {error}"[:300], True
        reason += "; the call may exist"
    opened = breaker.record_failure(carrier)
    return CarrierFailure(carrier, reason + ("; circuit now open" if opened else ""), ambiguous)


def _claim(attempt_id: int) -> tuple[CallRequest, list[str], datetime] | None:
    with transaction.atomic():
        locked = lock_attempt(attempt_id)
        if locked is None:
            return None
        incident, attempt = locked
        if attempt.status != AttemptStatus.QUEUED:
            return None  # claimed before: a redelivered task never dials twice
        if incident.state != IncidentState.TRIGGERED:
            _cancel_undialed(attempt, f"not dialed: the incident was {incident.state} first")
            return None
        if not incident.calls_at(attempt.step):
            _cancel_undialed(attempt, "not dialed: the escalation had moved past it")
            return None
        carriers = carriers_for(attempt.contact.preferred_provider)
        attempt.status = AttemptStatus.DIALING
        attempt.provider = carriers[0]
        attempt.dial_started_at = timezone.now()
        save_fields(attempt, ["status", "provider", "dial_started_at"])
        set_call_deadline(incident, ring_deadline_seconds(incident))
        request = CallRequest(
            to=attempt.to_number,
            token=attempt.token,
            ring_timeout_seconds=incident.policy.ring_timeout_seconds,
            language=attempt.contact.language,
            record=incident.policy.record_calls,
        )
        return request, carriers, attempt.dial_started_at


def _record_carrier_failure(attempt_id: int, failure: CarrierFailure, *, tries_next: bool) -> None:
    logger.warning("carrier did not take the call", extra={"attempt_id": attempt_id, "failure": str(failure)})
    with transaction.atomic():
        incident, attempt = lock_attempt(attempt_id)
        suffix = "; trying the next carrier" if tries_next else ""
        record_event(incident, EventKind.DIAL_FAILED, message=f"{failure}{suffix}", attempt=attempt)


def _placed(attempt_id: int, carrier: str, call_id: str, failures: list[CarrierFailure], claimed_at: datetime) -> None:
    with transaction.atomic():
        incident, attempt = lock_attempt(attempt_id)
        if attempt.dial_started_at != claimed_at:
            # This dial was so late that the carriers, asked, had no call and the attempt was dialed
            # again (orchestrator.doubt): two calls may ring. Said loudly; the newer call keeps the attempt.
            logger.error("a call was placed after its attempt was dialed again", extra={"attempt_id": attempt_id})
            message = f"{carrier} accepted call {call_id} late, after this call was dialed again"
            record_event(incident, EventKind.DIAL_FAILED, message=message, attempt=attempt)
            return
        if attempt.status == AttemptStatus.QUEUED:
            # queued again after a carrier check found nothing, and not yet claimed: this call is the
            # one, so the dial sent again finds it taken and places nothing
            attempt.status = AttemptStatus.DIALING
            attempt.save(update_fields=["status"])
        attempt.provider = carrier
        attempt.provider_call_id = call_id
        attempt.dialed_at = timezone.now()
        attempt.error = "; ".join(str(failure) for failure in failures)[:500]
        save_fields(attempt, ["provider", "provider_call_id", "dialed_at", "error"])
        call_metrics.call_placed(incident, attempt)
        after = f" after {'; '.join(str(failure) for failure in failures)}" if failures else ""
        record_event(incident, EventKind.DIALING, message=f"{carrier} accepted call {call_id}{after}", attempt=attempt)
        if incident.calls_at(attempt.step) and not attempt.is_final:
            # the ring starts now, however long the carriers took to answer the dial
            set_call_deadline(incident, ring_deadline_seconds(incident), extend=True)


def _no_carrier_placed(attempt_id: int, failures: list[CarrierFailure], claimed_at: datetime) -> None:
    """No carrier took the call. If one timed out the call may exist: wait for the deadline rather
    than ring the next person over it; otherwise move on now."""
    summary = "; ".join(str(failure) for failure in failures) or "no carrier configured"
    with transaction.atomic():
        incident, attempt = lock_attempt(attempt_id)
        if attempt.dial_started_at != claimed_at or attempt.status == AttemptStatus.QUEUED:
            # given up on and dialed again (orchestrator.doubt) while this dial still ran: it is not ours
            record_event(incident, EventKind.DIAL_FAILED, message=f"a late dial failed: {summary}", attempt=attempt)
            return
        attempt.error = summary[:500]
        if any(failure.ambiguous for failure in failures):
            attempt.save(update_fields=["error"])
            # the ring deadline is no longer a safety net but the way on (then the carriers are
            # asked whether the call exists): a countdown looks at it on time, not the sweep
            rearm_countdown(incident, now=timezone.now())
            record_event(
                incident, EventKind.DIAL_FAILED, message=f"{summary}; waiting for the deadline", attempt=attempt
            )
            return
        attempt.status = AttemptStatus.FAILED
        attempt.ended_at = timezone.now()
        attempt.save(update_fields=["error", "status", "ended_at"])
        call_metrics.call_ended(attempt)
        record_event(incident, EventKind.DIAL_FAILED, message=f"no carrier placed the call: {summary}", attempt=attempt)
        move_on_locked(incident, attempt, reason="no carrier could place the call")
