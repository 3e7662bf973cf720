"""Reads for the orchestrator."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from incidents.models import IncidentState
from orchestrator.models import CallAttempt
from orchestrator.prompts import speech_text


@dataclass(frozen=True)
class CallScript:
    text: str
    language: str
    repeats: int
    still_triggered: bool


def call_script(token: str) -> CallScript | None:
    """What to say on the call of this attempt, or None for an unknown token."""
    attempt = CallAttempt.objects.select_related("incident__policy", "contact").filter(token=token).first()
    if attempt is None:
        return None
    incident = attempt.incident
    return CallScript(
        text=speech_text(incident.spoken_text),
        language=attempt.contact.language,
        repeats=incident.policy.message_repeats,
        still_triggered=incident.state == IncidentState.TRIGGERED,
    )


def attempts_for(incident_id: int) -> QuerySet[CallAttempt]:
    return CallAttempt.objects.filter(incident_id=incident_id).select_related("contact").order_by("step")
