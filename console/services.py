"""The status page's buttons: the same services as the API, and a sentence saying what happened.

Each action locks the incident row first and reads its state, then calls the service inside the same
transaction: nobody can change the incident in between, so "already acknowledged: nothing done" is
the truth, not a guess."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from accounts.audit import actor_name
from accounts.models import User
from config.errors import DomainError
from incidents import services as incident_services
from incidents.models import IncidentState
from orchestrator import words
from orchestrator.services import escalate_now

VIA = "status page"


@dataclass(frozen=True)
class Outcome:
    changed: bool
    message: str


def _nothing_done(incident_id: int, state: str) -> Outcome:
    values = {"id": incident_id, "state": words.state_words(state).lower()}
    return Outcome(False, _("#%(id)s was already %(state)s: nothing done.") % values)


def acknowledge(incident_id: int, *, user: User) -> Outcome:
    with transaction.atomic():
        before = incident_services.lock_incident(incident_id).state
        if before in (IncidentState.ACKNOWLEDGED, IncidentState.RESOLVED):
            return _nothing_done(incident_id, before)
        incident_services.acknowledge(incident_id, actor=actor_name(user), via=VIA)
    return Outcome(True, _("Acknowledged #%(id)s.") % {"id": incident_id})


def resolve(incident_id: int, *, user: User) -> Outcome:
    with transaction.atomic():
        before = incident_services.lock_incident(incident_id).state
        if before == IncidentState.RESOLVED:
            return _nothing_done(incident_id, before)
        incident_services.resolve(incident_id, actor=actor_name(user), via=VIA)
    return Outcome(True, _("Resolved #%(id)s.") % {"id": incident_id})


def escalate(incident_id: int, *, user: User, from_step: int | None = None) -> Outcome:
    with transaction.atomic():
        before = incident_services.lock_incident(incident_id).state
        if before not in (IncidentState.TRIGGERED, IncidentState.EXHAUSTED):
            return Outcome(
                False,
                _("#%(id)s is %(state)s: only a calling or exhausted incident can be escalated; nothing done.")
                % {"id": incident_id, "state": words.state_words(before).lower()},
            )
        try:
            attempt = escalate_now(incident_id, actor=actor_name(user), from_step=from_step)
        except DomainError as exc:
            return Outcome(False, _("#%(id)s: %(why)s Nothing done.") % {"id": incident_id, "why": exc.message})
    if attempt is None:
        return Outcome(
            True, _("#%(id)s: nobody is left to call in this round; it is now exhausted.") % {"id": incident_id}
        )
    values = {"id": incident_id, "name": attempt.contact.name, "step": attempt.step}
    if before == IncidentState.EXHAUSTED:
        return Outcome(True, _("#%(id)s: a new round of calls started; calling %(name)s now (call %(step)s).") % values)
    return Outcome(True, _("Escalated #%(id)s: calling %(name)s now (call %(step)s).") % values)
