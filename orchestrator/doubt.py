"""A call in doubt: claimed for dialing (queued → dialing committed) with no word that any carrier
has it, and its deadline passed. The worker may have died before the carrier had the request, or
after; the request may have timed out on either side of it. Moving on would skip the person if the
call never existed; dialing again would ring them twice if it did. So we ask.

At the deadline (under the incident's lock) the engine waits until no live dial can still be
sending (the longest a dial takes), then sends `orchestrator.check_call_in_doubt` and pushes the
deadline past the time the question may take. The task lists each carrier's recent calls to the
number, outside any transaction, then settles under the lock:
- a carrier has a call to the number that no other attempt owns → it was this one: it is kept,
  and the escalation moves on as it would have;
- no carrier has one → the call was never placed: the attempt is queued again and the same person
  is dialed (at most DIAL_REDIAL_LIMIT times for one attempt);
- a carrier could not be asked → we cannot tell, and the escalation moves on (never a second call).
A check lost with its worker is sent again by the next deadline; a second one for the same claim
without an answer moves on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.celery_utils import enqueue_on_commit
from incidents.models import EventKind, Incident, IncidentState
from incidents.services import record_event
from orchestrator.models import AttemptStatus, CallAttempt
from orchestrator.services import _set_deadline, lock_attempt
from orchestrator.voice import ProviderError, get_provider
from orchestrator.voice.base import CONNECT_RETRIES
from orchestrator.voice.routing import carriers_for

logger = logging.getLogger(__name__)

# Carriers' clocks and ours differ: a call created a little "before" our claim may still be ours.
CLOCK_SKEW = timedelta(seconds=60)
# How many checks one claim gets before the engine stops asking and moves on.
CHECKS_PER_CLAIM = 2


@dataclass(frozen=True)
class Answer:
    """What the carriers said: calls that may be this attempt's, and the ones that could not tell."""

    calls: list[tuple[str, str, str]]  # (carrier, call id, the carrier's status)
    unknown: list[str]  # "<carrier>: <why it could not tell>"


def in_doubt(attempt: CallAttempt) -> bool:
    return (
        attempt.status == AttemptStatus.DIALING and not attempt.provider_call_id and attempt.dial_started_at is not None
    )


def longest_dial_seconds() -> float:
    """How long a live `dial` may still be talking to carriers after its claim: each carrier in
    turn, each with its connect retries and read timeout, and a little slack."""
    per_carrier = settings.PROVIDER_HTTP_TIMEOUT_SECONDS * (CONNECT_RETRIES + 1)
    return len(carriers_for()) * per_carrier + 2


def on_deadline_locked(incident: Incident, attempt: CallAttempt) -> str:
    """Called with the incident locked, when the deadline of a call in doubt passed. Returns "" when
    it is being handled (a later deadline is set), or why the escalation moves on."""
    assert attempt.dial_started_at is not None
    now = timezone.now()
    still_dialing_until = attempt.dial_started_at + timedelta(seconds=longest_dial_seconds())
    if now < still_dialing_until:
        _set_deadline(incident, (still_dialing_until - now).total_seconds())
        return ""
    claim = attempt.dial_started_at.isoformat()
    checks = incident.events.filter(kind=EventKind.DIAL_DELAYED, attempt_id=attempt.pk, data__check=claim).count()
    if checks >= CHECKS_PER_CLAIM:
        return "no news of the call before the deadline, and the carriers could not be asked"
    if attempt.redials >= settings.DIAL_REDIAL_LIMIT:
        return f"no news of the call before the deadline (already dialed again {attempt.redials} times)"
    record_event(
        incident,
        EventKind.DIAL_DELAYED,
        message=(
            f"no news of call {attempt.step} to {attempt.contact.name} ({attempt.to_number}): "
            "asking the carriers whether it exists"
        ),
        attempt=attempt,
        data={"check": claim},
    )
    enqueue_on_commit("orchestrator.check_call_in_doubt", attempt.pk, claim)
    _set_deadline(incident, longest_dial_seconds())  # the question's own timeouts, and slack
    return ""


def check(attempt_id: int, claim: str) -> None:
    """The task: ask the carriers (outside any transaction), then settle under the lock."""
    attempt = CallAttempt.objects.select_related("contact").filter(pk=attempt_id).first()
    if attempt is None or not _same_claim(attempt, claim):
        return
    answer = ask_carriers(attempt)
    with transaction.atomic():
        locked = lock_attempt(attempt_id)
        if locked is None:
            return
        incident, attempt = locked
        if incident.state != IncidentState.TRIGGERED or not incident.calls_at(attempt.step):
            return
        if not _same_claim(attempt, claim):
            return  # news came while we asked, or another check settled it
        settle_locked(incident, attempt, answer)


def _same_claim(attempt: CallAttempt, claim: str) -> bool:
    return in_doubt(attempt) and attempt.dial_started_at.isoformat() == claim


def ask_carriers(attempt: CallAttempt) -> Answer:
    """Every carrier this attempt could have used, for calls to its number since its claim that no
    other attempt owns."""
    since = attempt.dial_started_at - CLOCK_SKEW
    calls, unknown = [], []
    for carrier in carriers_for(attempt.contact.preferred_provider):
        try:
            listed = get_provider(carrier).calls_to(attempt.to_number, since)
        except ProviderError as exc:
            unknown.append(f"{carrier}: {exc}")
            continue
        except Exception as exc:  # an SDK surprise must not stop the escalation
            logger.exception("listing a carrier's calls failed", extra={"carrier": carrier})
            unknown.append(f"{carrier}: unexpected {exc.__class__.__name__}")
            continue
        calls += [(carrier, found.call_id, found.status) for found in listed]
    owned = set(
        CallAttempt.objects.filter(provider_call_id__in=[call_id for _, call_id, _ in calls])
        .exclude(pk=attempt.pk)
        .values_list("provider_call_id", flat=True)
    )
    return Answer([call for call in calls if call[1] not in owned], unknown)


def settle_locked(incident: Incident, attempt: CallAttempt, answer: Answer) -> None:
    from orchestrator.timers import move_on_after_deadline

    if answer.calls:
        carrier, call_id, status = answer.calls[0]
        attempt.provider, attempt.provider_call_id = carrier, call_id
        attempt.save(update_fields=["provider", "provider_call_id"])
        record_event(
            incident,
            EventKind.DIAL_DELAYED,
            message=f"{carrier} has call {call_id} to {attempt.to_number} ({status}); its news never reached us",
            attempt=attempt,
        )
        move_on_after_deadline(incident, attempt, f"{carrier} placed the call, but no news of it came")
        return
    if answer.unknown:
        move_on_after_deadline(
            incident, attempt, "no news of the call, and the carriers could not tell: " + "; ".join(answer.unknown)
        )
        return
    redial_locked(incident, attempt)


def redial_locked(incident: Incident, attempt: CallAttempt) -> None:
    """No carrier has the call: it was never placed. The same attempt goes back to the queue, so the
    person is called late rather than skipped, and a late callback (same token) still finds it."""
    attempt.status = AttemptStatus.QUEUED
    attempt.provider = ""
    attempt.redials += 1
    attempt.dial_sent_at = timezone.now()
    attempt.save(update_fields=["status", "provider", "redials", "dial_sent_at"])
    enqueue_on_commit("orchestrator.dial_attempt", attempt.pk)
    _set_deadline(incident, settings.DIAL_RESEND_SECONDS)
    record_event(
        incident,
        EventKind.DIAL_DELAYED,
        message=(
            f"no carrier has call {attempt.step} to {attempt.contact.name} ({attempt.to_number}): "
            "it was never placed; dialing again"
        ),
        attempt=attempt,
        data={"redial": attempt.redials},
    )
    logger.warning(
        "a claimed call was never placed; dialing it again",
        extra={"attempt_id": attempt.pk, "redials": attempt.redials},
    )
