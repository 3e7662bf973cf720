"""How the incident admin shows things to a person at 3 a.m.: a coloured badge per state, times with
seconds and "2 min ago", call outcomes and timeline rows in words ("did not answer"), and who did
what through which channel. Only display: nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from incidents.models import EventKind, Incident, IncidentEvent, IncidentState, Source
from orchestrator.models import AnsweredBy, AttemptStatus, CallAttempt

# One colour per state; exhausted is the loudest (open, silent, nobody answered), never green.
STATE_STYLE = {
    IncidentState.TRIGGERED: ("oc-triggered", gettext_lazy("Calling")),
    IncidentState.EXHAUSTED: ("oc-exhausted", gettext_lazy("Exhausted")),
    IncidentState.ACKNOWLEDGED: ("oc-acknowledged", gettext_lazy("Acknowledged")),
    IncidentState.RESOLVED: ("oc-resolved", gettext_lazy("Resolved")),
}


def state_badge(incident: Incident) -> SafeString:
    css, label = STATE_STYLE.get(incident.state, ("oc-resolved", incident.state))
    return format_html('<span class="oc-badge {}" data-state="{}">{}</span>', css, incident.state, label)


def drill_badge() -> SafeString:
    return format_html('<span class="oc-badge oc-drill">{}</span>', _("DRILL"))


def ago(moment: datetime, now: datetime | None = None) -> str:
    """ "2 min ago", "in 25 s": short, because a lead reads it across a list."""
    now = now or timezone.now()
    seconds = round((now - moment).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        amount = ngettext("%(n)d s", "%(n)d s", seconds) % {"n": seconds}
    elif seconds < 3600:
        amount = ngettext("%(n)d min", "%(n)d min", seconds // 60) % {"n": seconds // 60}
    elif seconds < 86400:
        amount = ngettext("%(n)d h", "%(n)d h", seconds // 3600) % {"n": seconds // 3600}
    else:
        amount = ngettext("%(n)d day", "%(n)d days", seconds // 86400) % {"n": seconds // 86400}
    return _("in %(amount)s") % {"amount": amount} if future else _("%(amount)s ago") % {"amount": amount}


def when(moment: datetime | None, *, with_date: bool = False) -> str:
    """ "12:03:05 · 2 min ago" in the configured TIME_ZONE (the date too when asked)."""
    if moment is None:
        return "—"
    local = timezone.localtime(moment)
    clock = local.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")
    return f"{clock} · {ago(moment)}"


def duration(delta: timedelta | None) -> str:
    if delta is None:
        return "—"
    seconds = max(0, round(delta.total_seconds()))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": minutes}
    if minutes:
        return _("%(m)d min %(s)d s") % {"m": minutes, "s": seconds}
    return _("%(s)d s") % {"s": seconds}


def call_outcome(attempt: CallAttempt) -> str:
    """What happened to one call, as a person would say it."""
    status = attempt.status
    if status == AttemptStatus.COMPLETED:
        if attempt.answered_by == AnsweredBy.MACHINE:
            return _("voicemail picked up")
        if "1" in attempt.digits:
            return _("answered, pressed 1")
        if attempt.digits:
            return _("answered, pressed %(digits)s") % {"digits": attempt.digits}
        return _("answered, pressed nothing")
    words = {
        AttemptStatus.QUEUED: _("waiting to be dialed"),
        AttemptStatus.DIALING: _("being dialed"),
        AttemptStatus.INITIATED: _("dialed"),
        AttemptStatus.RINGING: _("ringing"),
        AttemptStatus.IN_PROGRESS: _("answered, listening"),
        AttemptStatus.BUSY: _("was busy"),
        AttemptStatus.NO_ANSWER: _("did not answer"),
        AttemptStatus.FAILED: _("could not be placed"),
        AttemptStatus.CANCELED: _("canceled before it rang") if attempt.dialed_at is None else _("canceled"),
    }
    return words.get(status, status)


# What each timeline row says, before its detail.
EVENT_WORDS = {
    EventKind.CREATED: gettext_lazy("opened"),
    EventKind.DEDUPLICATED: gettext_lazy("same alert again (no new call)"),
    EventKind.CALL_QUEUED: gettext_lazy("call queued"),
    EventKind.DIALING: gettext_lazy("carrier accepted the call"),
    EventKind.DIAL_FAILED: gettext_lazy("call could not be placed"),
    EventKind.RINGING: gettext_lazy("ringing"),
    EventKind.ANSWERED: gettext_lazy("answered"),
    EventKind.MACHINE: gettext_lazy("voicemail picked up"),
    EventKind.DIGIT_PRESSED: gettext_lazy("pressed a key"),
    EventKind.NO_ANSWER: gettext_lazy("did not answer"),
    EventKind.BUSY: gettext_lazy("was busy"),
    EventKind.CALL_ENDED: gettext_lazy("call ended"),
    EventKind.ESCALATED: gettext_lazy("escalated"),
    EventKind.ACKNOWLEDGED: gettext_lazy("acknowledged"),
    EventKind.RESOLVED: gettext_lazy("resolved"),
    EventKind.EXHAUSTED: gettext_lazy("exhausted: nobody pressed 1"),
    EventKind.RETRIGGERED: gettext_lazy("re-triggered: a new round of calls"),
    EventKind.DIAL_DELAYED: gettext_lazy("dial delayed"),
    EventKind.NOTIFIED: gettext_lazy("fallback notification"),
}


@dataclass(frozen=True)
class TimelineRow:
    at: str
    what: str
    detail: str
    who: str
    channel: str
    call: str


def _channel(event: IncidentEvent, incident: Incident) -> str:
    """Through which channel: what the service recorded (API, admin, …), else what the row tells."""
    via = (event.data or {}).get("via")
    if via:
        return str(via)
    if event.kind in (EventKind.CREATED, EventKind.DEDUPLICATED):
        return Source(incident.source).label if incident.source in Source.values else incident.source
    if event.kind == EventKind.DIGIT_PRESSED or (event.kind == EventKind.ACKNOWLEDGED and event.attempt_id):
        return _("phone")
    if event.kind in (EventKind.ACKNOWLEDGED, EventKind.RESOLVED) and "through the API" in event.message:
        return "API"
    if event.actor == "system":
        return _("engine")
    return "—"


def _who(actor: str) -> str:
    if actor == "system":
        return _("system")
    return actor.removeprefix("user:")


def _detail(event: IncidentEvent, attempt: CallAttempt | None) -> str:
    """The row's message, with a call's end said in words rather than the carrier's raw status."""
    if (
        event.kind == EventKind.CALL_ENDED
        and attempt is not None
        and attempt.is_final
        and event.message.startswith("call to ")
    ):
        head, _sep, rest = event.message.partition("; ")
        who = head.removeprefix("call to ").split(" ended:")[0]
        return f"{who}: {call_outcome(attempt)}" + (f"; {rest}" if rest else "")
    return event.message


def timeline(incident: Incident) -> list[TimelineRow]:
    events = list(incident.events.order_by("at", "pk"))
    attempts = {attempt.pk: attempt for attempt in CallAttempt.objects.filter(incident=incident)}
    rows = []
    for event in events:
        attempt = attempts.get(event.attempt_id) if event.attempt_id else None
        rows.append(
            TimelineRow(
                at=when(event.at),
                what=str(EVENT_WORDS.get(event.kind, event.kind)),
                detail=_detail(event, attempt),
                who=_who(event.actor),
                channel=_channel(event, incident),
                call=(_("call %(step)d") % {"step": attempt.step}) if attempt is not None else "",
            )
        )
    return rows
