"""The one vocabulary for people: incident states, severities, call outcomes and timeline rows in words,
and the state badge. The admin (orchestrator/admin.py) and the status page (console/) both use it, so a
state or a call reads the same, in the same colour, on both. Translated (locale/ko); stored values stay raw.

States and severities are the models' own choice labels (incidents/models.py), so the admin's filters
say the same words as the badges."""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from incidents.models import EventKind, Incident, IncidentEvent, IncidentState, Severity, Source
from orchestrator.models import AnsweredBy, AttemptStatus, CallAttempt


def state_words(state: str) -> str:
    """ "Calling", "Exhausted: nobody answered", "Acknowledged", "Resolved"."""
    return str(IncidentState(state).label) if state in IncidentState.values else state


def state_badge(state: str) -> SafeString:
    """The coloured badge (oncall/states.css: calling amber, exhausted solid red, acknowledged blue,
    resolved grey)."""
    return format_html('<span class="oc-badge oc-{}" data-state="{}">{}</span>', state, state, state_words(state))


def drill_badge() -> SafeString:
    return format_html('<span class="oc-badge oc-drill">{}</span>', _("DRILL"))


def severity_words(severity: str) -> str:
    return str(Severity(severity).label) if severity in Severity.values else severity


def call_words(attempt: CallAttempt) -> str:
    """What became of a call, as a person would say it ("did not answer", "answered, pressed nothing")."""
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
    if "1" in attempt.digits:
        return _("answered, pressed 1")
    if attempt.digits:
        return _("answered, pressed %(digits)s") % {"digits": attempt.digits}
    if attempt.answered_at is not None:
        return _("answered, pressed nothing")
    return _("ended")


# What each timeline row says first (its headline).
EVENT_WORDS = {
    EventKind.CREATED: gettext_lazy("Opened"),
    EventKind.DEDUPLICATED: gettext_lazy("Same alert again (no new call)"),
    EventKind.CALL_QUEUED: gettext_lazy("Call queued"),
    EventKind.DIALING: gettext_lazy("Dialed"),
    EventKind.DIAL_FAILED: gettext_lazy("Could not dial"),
    EventKind.RINGING: gettext_lazy("Ringing"),
    EventKind.ANSWERED: gettext_lazy("Answered"),
    EventKind.MACHINE: gettext_lazy("Voicemail picked up"),
    EventKind.DIGIT_PRESSED: gettext_lazy("Pressed a key"),
    EventKind.NO_ANSWER: gettext_lazy("Did not answer"),
    EventKind.BUSY: gettext_lazy("Busy"),
    EventKind.CALL_ENDED: gettext_lazy("Call ended"),
    EventKind.ESCALATED: gettext_lazy("Passed to the next person"),
    EventKind.ACKNOWLEDGED: gettext_lazy("Acknowledged"),
    EventKind.RESOLVED: gettext_lazy("Resolved"),
    EventKind.EXHAUSTED: gettext_lazy("Nobody pressed 1: calls stopped"),
    EventKind.RETRIGGERED: gettext_lazy("Calling again"),
    EventKind.DIAL_DELAYED: gettext_lazy("Dial delayed"),
    EventKind.NOTIFIED: gettext_lazy("Fallback notification sent"),
}


def event_words(kind: str, attempt: CallAttempt | None = None) -> str:
    """A timeline row's headline. A call that ended says how ("Call ended: answered, pressed nothing")."""
    if kind == EventKind.CALL_ENDED and attempt is not None and attempt.is_final:
        return _("Call ended: %(how)s") % {"how": call_words(attempt)}
    words = EVENT_WORDS.get(kind)
    return str(words) if words else kind


def event_detail(event: IncidentEvent, attempt: CallAttempt | None) -> str:
    """The row's message; for a call's end, who was called (the headline already says how, in words,
    rather than the carrier's raw "completed")."""
    if (
        event.kind == EventKind.CALL_ENDED
        and attempt is not None
        and attempt.is_final
        and event.message.startswith("call to ")
    ):
        head, _sep, rest = event.message.partition("; ")
        who = head.removeprefix("call to ").split(" ended:")[0]
        return who + (f"; {rest}" if rest else "")
    return event.message


def actor_words(actor: str) -> str:
    """'user:kim' → 'kim'; 'contact:Kim (+82…)' → 'Kim (+82…)'; 'system' → the engine."""
    if actor == "system":
        return _("the engine")
    for prefix in ("user:", "contact:"):
        if actor.startswith(prefix):
            return actor[len(prefix) :]
    return actor


def channel_words(event: IncidentEvent, incident: Incident) -> str:
    """Through which channel: what the service recorded (API, admin, status page), else what the row tells."""
    via = (event.data or {}).get("via")
    if via:
        return str(via)
    if event.kind in (EventKind.CREATED, EventKind.DEDUPLICATED):
        return str(Source(incident.source).label) if incident.source in Source.values else incident.source
    if event.kind == EventKind.DIGIT_PRESSED or (event.kind == EventKind.ACKNOWLEDGED and event.attempt_id):
        return _("phone")
    if event.kind in (EventKind.ACKNOWLEDGED, EventKind.RESOLVED) and "through the API" in event.message:
        return "API"  # rows recorded before the channel was kept in `via`
    if event.actor == "system":
        return ""  # the engine's own step: "who" already says so
    return "—"
