"""Human words for states, calls and timeline rows (translated; the stored values stay raw)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from incidents.models import EventKind, IncidentState
from orchestrator.models import AnsweredBy, AttemptStatus, CallAttempt


def state_words(state: str) -> str:
    return {
        IncidentState.TRIGGERED: pgettext("incident state", "Calling"),
        IncidentState.EXHAUSTED: pgettext("incident state", "Exhausted: nobody answered"),
        IncidentState.ACKNOWLEDGED: pgettext("incident state", "Acknowledged"),
        IncidentState.RESOLVED: pgettext("incident state", "Resolved"),
    }.get(state, state)


def severity_words(severity: str) -> str:
    return {
        "critical": pgettext("severity", "Critical"),
        "high": pgettext("severity", "High"),
        "warning": pgettext("severity", "Warning"),
        "info": pgettext("severity", "Info"),
    }.get(severity, severity)


def call_words(attempt: CallAttempt) -> str:
    """What became of a call, as a person would say it."""
    status = attempt.status
    if attempt.answered_by == AnsweredBy.MACHINE:
        return _("voicemail picked up")
    if status == AttemptStatus.QUEUED:
        return _("waiting to be dialed")
    if status in (AttemptStatus.DIALING, AttemptStatus.INITIATED):
        return _("dialing")
    if status == AttemptStatus.RINGING:
        return _("ringing")
    if status == AttemptStatus.IN_PROGRESS:
        return _("answered, listening to the message")
    if status == AttemptStatus.BUSY:
        return _("busy")
    if status == AttemptStatus.NO_ANSWER:
        return _("did not answer")
    if status == AttemptStatus.FAILED:
        return _("could not be placed")
    if status == AttemptStatus.CANCELED:
        return _("skipped before dialing") if attempt.dial_started_at is None else _("canceled")
    if attempt.digits == "1":
        return _("answered, pressed 1")
    if attempt.digits:
        return _("answered, pressed %(digits)s") % {"digits": attempt.digits}
    if attempt.answered_at is not None:
        return _("answered, pressed nothing")
    return _("ended")


EVENT_WORDS = {
    EventKind.CREATED: lambda: _("Opened"),
    EventKind.DEDUPLICATED: lambda: _("Same alert again (no new call)"),
    EventKind.CALL_QUEUED: lambda: _("Call queued"),
    EventKind.DIALING: lambda: _("Dialed"),
    EventKind.DIAL_FAILED: lambda: _("Could not dial"),
    EventKind.RINGING: lambda: _("Ringing"),
    EventKind.ANSWERED: lambda: _("Answered"),
    EventKind.MACHINE: lambda: _("Voicemail picked up"),
    EventKind.DIGIT_PRESSED: lambda: _("Pressed a key"),
    EventKind.NO_ANSWER: lambda: _("Did not answer"),
    EventKind.BUSY: lambda: _("Busy"),
    EventKind.CALL_ENDED: lambda: _("Call ended"),
    EventKind.ESCALATED: lambda: _("Passed to the next person"),
    EventKind.ACKNOWLEDGED: lambda: _("Acknowledged"),
    EventKind.RESOLVED: lambda: _("Resolved"),
    EventKind.EXHAUSTED: lambda: _("Nobody pressed 1: calls stopped"),
    EventKind.RETRIGGERED: lambda: _("Calling again"),
    EventKind.DIAL_DELAYED: lambda: _("Dial delayed"),
    EventKind.NOTIFIED: lambda: _("Fallback notification sent"),
}


def event_words(kind: str, attempt: CallAttempt | None = None) -> str:
    """A timeline row's headline. A call that ended says how ("answered, pressed nothing")."""
    if kind == EventKind.CALL_ENDED and attempt is not None and attempt.is_final:
        return _("Call ended: %(how)s") % {"how": call_words(attempt)}
    words = EVENT_WORDS.get(kind)
    return words() if words else kind


def actor_words(actor: str) -> str:
    """'user:kim' → 'kim'; 'contact:Kim (+82…)' → 'Kim (+82…)'; 'system' → the engine."""
    if actor == "system":
        return _("the engine")
    for prefix in ("user:", "contact:"):
        if actor.startswith(prefix):
            return actor[len(prefix) :]
    return actor
