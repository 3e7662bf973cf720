"""Reads for the orchestrator."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import QuerySet

from config.compiled_queries import CompiledQuery
from incidents import selectors as incident_selectors
from incidents.models import Incident, IncidentState
from orchestrator.models import CallAttempt
from orchestrator.prompts import speech_text


@dataclass(frozen=True)
class CallScript:
    text: str
    language: str
    repeats: int
    still_triggered: bool
    scripted: bool = True  # the alert came with its own tts_text (else the summary is read, after a preamble)


# What new_attempt_token() makes (secrets.token_urlsafe), within the column's 64 characters.
_ATTEMPT_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_attempt_token(token: str) -> bool:
    """Whether `token` could name an attempt. Garbage from a URL (a NUL, which PostgreSQL refuses in
    a query, or 300 characters) is turned away before it reaches the database."""
    return bool(_ATTEMPT_TOKEN.fullmatch(token))


# Compiled once per process (config.compiled_queries): the voice and gather webhooks of every call
# read it, and compiling this three-table join cost two thirds of its CPU.
_SCRIPT_OF_ATTEMPT = CompiledQuery(
    lambda token: CallAttempt.objects.select_related("incident__policy", "contact").filter(token=token).order_by(),
    "compiled-query-placeholder",
)


def call_script(token: str) -> CallScript | None:
    """What to say on the call of this attempt, or None for an unknown token."""
    if not is_attempt_token(token):
        return None
    attempt = _SCRIPT_OF_ATTEMPT.first(token)
    if attempt is None:
        return None
    incident = attempt.incident
    return CallScript(
        text=speech_text(incident.spoken_text),
        language=attempt.contact.language,
        repeats=incident.policy.message_repeats,
        still_triggered=incident.state == IncidentState.TRIGGERED,
        scripted=bool(speech_text(incident.tts_text)),
    )


def attempts_for(incident_id: int) -> QuerySet[CallAttempt]:
    return CallAttempt.objects.filter(incident_id=incident_id).select_related("contact").order_by("step")


def incident_detail(incident_id: int) -> Incident:
    """The record's incident detail, with the calls placed for it (`attempt_list`) and its timeline
    (`timeline`), each row carrying the step of the call it was about (`attempt_step`)."""
    incident = incident_selectors.incident_detail(incident_id)
    incident.attempt_list = list(attempts_for(incident.pk))
    steps = {attempt.pk: attempt.step for attempt in incident.attempt_list}
    incident.timeline = incident_selectors.timeline_with_bursts(incident, list(incident.events.all()))
    for event in incident.timeline:
        event.attempt_step = steps.get(event.attempt_id)
    return incident


def provider_call_id(token: str) -> str:
    """The carrier's id of the call placed for this attempt ("" while unknown or for no attempt)."""
    return CallAttempt.objects.filter(token=token).values_list("provider_call_id", flat=True).first() or ""


def attempt_for_call(call_id: str) -> CallAttempt | None:
    """The attempt a caller names by our id or by the carrier's call id (for recording a live call)."""
    call_id = call_id.strip()
    if not call_id or len(call_id) > 64 or "\x00" in call_id:
        return None
    rows = CallAttempt.objects.select_related("contact", "incident")
    if call_id.isdigit() and len(call_id) < 18:
        found = rows.filter(pk=int(call_id)).first()
        if found is not None:
            return found
    return rows.filter(provider_call_id=call_id).order_by("-pk").first()


def attempt_by_token(token: str) -> CallAttempt | None:
    if not is_attempt_token(token):
        return None
    return CallAttempt.objects.select_related("contact", "incident").filter(token=token).first()
