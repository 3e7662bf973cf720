"""How the incident admin shows things to a person at 3 a.m.: times with seconds and "2 min ago", and the
timeline as rows. The words themselves (states, calls, timeline rows, who, which channel) come from
orchestrator/words.py, shared with the status page. Only display: nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from incidents import selectors as incident_selectors
from incidents.models import Incident
from orchestrator import words
from orchestrator.models import CallAttempt


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
    # No-break spaces inside each half: a narrow column breaks the line only at the "·"
    return f"{clock.replace(' ', NBSP)} · {ago(moment).replace(' ', NBSP)}"


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


NBSP = "\u00a0"


@dataclass(frozen=True)
class TimelineRow:
    at: str
    what: str
    detail: str
    who: str
    channel: str
    call: str


def timeline(incident: Incident) -> list[TimelineRow]:
    events = incident_selectors.timeline_with_bursts(incident)
    attempts = {attempt.pk: attempt for attempt in CallAttempt.objects.filter(incident=incident)}
    rows = []
    for event in events:
        attempt = attempts.get(event.attempt_id) if event.attempt_id else None
        rows.append(
            TimelineRow(
                at=when(event.at),
                what=words.event_words(event.kind, attempt),
                detail=words.event_detail(event, attempt),
                who=words.actor_words(event.actor),
                channel=words.channel_words(event, incident),
                call=(_("call %(step)d") % {"step": attempt.step}) if attempt is not None else "",
            )
        )
    return rows
