"""Reads for the status pages: open incidents with who is being called, one incident's story."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import F

from accounts.models import Role, User
from incidents.models import OPEN_STATES, Incident, IncidentEvent, IncidentState
from orchestrator import selectors as engine_selectors
from orchestrator import words
from orchestrator.models import AttemptStatus, CallAttempt

OPEN_LIST_LIMIT = 200
UNDIALED = (AttemptStatus.QUEUED, AttemptStatus.DIALING)


@dataclass
class IncidentView:
    """An incident as the page shows it."""

    incident: Incident
    current_call: CallAttempt | None
    state_words: str
    severity_words: str
    calling_now: str = ""  # "Kim (+8210…): ringing"
    next_call_at: datetime | None = None
    acknowledged_by: str = ""
    actions: list[str] = field(default_factory=list)
    calls: list[CallAttempt] = field(default_factory=list)
    timeline: list[dict] = field(default_factory=list)


def allowed_actions(incident: Incident, user: User) -> list[str]:
    """The buttons this person gets for this incident (AGENT and above; none once resolved)."""
    if not user.has_role(Role.AGENT):
        return []
    if incident.state in (IncidentState.TRIGGERED, IncidentState.EXHAUSTED):
        return ["acknowledge", "escalate", "resolve"]
    if incident.state == IncidentState.ACKNOWLEDGED:
        return ["resolve"]
    return []


def _view(incident: Incident, current_call: CallAttempt | None, user: User) -> IncidentView:
    view = IncidentView(
        incident=incident,
        current_call=current_call,
        state_words=words.state_words(incident.state),
        severity_words=words.severity_words(incident.severity),
        acknowledged_by=words.actor_words(incident.acknowledged_by) if incident.acknowledged_by else "",
        actions=allowed_actions(incident, user),
    )
    if incident.state == IncidentState.TRIGGERED and current_call is not None:
        who = f"{current_call.contact.name} ({current_call.to_number})"
        view.calling_now = f"{who}: {words.call_words(current_call)}"
        # While the call waits for a line, the deadline only re-sends the dial; the next person is
        # called no earlier than this call's ring deadline, which starts when it is dialed.
        if current_call.status not in UNDIALED:
            view.next_call_at = incident.next_action_at
    return view


def open_incidents(user: User) -> list[IncidentView]:
    """Triggered, exhausted and acknowledged incidents, newest first, each with its current call."""
    incidents = list(
        Incident.objects.filter(state__in=OPEN_STATES)
        .select_related("policy")
        .order_by("-created_at", "-pk")[:OPEN_LIST_LIMIT]
    )
    current = {
        attempt.incident_id: attempt
        for attempt in CallAttempt.objects.filter(
            incident_id__in=[incident.pk for incident in incidents], step=F("incident__current_step")
        ).select_related("contact")
    }
    return [_view(incident, current.get(incident.pk), user) for incident in incidents]


def _timeline_row(event: IncidentEvent, attempts: dict[int, CallAttempt]) -> dict:
    attempt = attempts.get(event.attempt_id) if event.attempt_id else None
    return {
        "at": event.at,
        "what": words.event_words(event.kind, attempt),
        "kind": event.kind,
        "who": words.actor_words(event.actor),
        "message": words.event_detail(event, attempt),
        "call_step": attempt.step if attempt else None,
        "via": (event.data or {}).get("via", ""),
    }


def incident_story(incident_id: int, user: User) -> IncidentView:
    """One incident with its calls and its timeline in words (raises NotFound for an unknown id)."""
    incident = engine_selectors.incident_detail(incident_id)
    attempts = incident.attempt_list
    current = next((attempt for attempt in attempts if attempt.step == incident.current_step), None)
    view = _view(incident, current, user)
    view.calls = attempts
    by_id = {attempt.pk: attempt for attempt in attempts}
    for attempt in attempts:
        attempt.words = words.call_words(attempt)
    view.timeline = [_timeline_row(event, by_id) for event in incident.timeline]
    return view
