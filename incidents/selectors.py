"""Reads for incidents."""

from __future__ import annotations

import re

from django.db.models import Prefetch, QuerySet

from config.errors import InvalidInput, NotFound
from incidents.models import Contact, EscalationPolicy, Incident, IncidentEvent, PolicyContact


def contact_list() -> QuerySet[Contact]:
    return Contact.objects.order_by("name", "pk")


def contact_detail(contact_id: int) -> Contact:
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is None:
        raise NotFound(f"Contact {contact_id} does not exist.")
    return contact


def _policies() -> QuerySet[EscalationPolicy]:
    members = PolicyContact.objects.select_related("contact").order_by("position", "pk")
    return EscalationPolicy.objects.prefetch_related(Prefetch("members", queryset=members))


def policy_list() -> QuerySet[EscalationPolicy]:
    return _policies().order_by("name", "pk")


def policy_detail(policy_id: int) -> EscalationPolicy:
    policy = _policies().filter(pk=policy_id).first()
    if policy is None:
        raise NotFound(f"Escalation policy {policy_id} does not exist.")
    return policy


def contacts_by_ids(contact_ids: list[int]) -> list[Contact]:
    """The contacts in the order of `contact_ids`; an unknown id is a 400 naming it."""
    found = Contact.objects.in_bulk(contact_ids)
    missing = [contact_id for contact_id in contact_ids if contact_id not in found]
    if missing:
        names = ", ".join(str(contact_id) for contact_id in missing)
        raise InvalidInput(f"No contact with id {names}.", fields={"contacts": f"unknown contact id {names}"})
    return [found[contact_id] for contact_id in contact_ids]


def policy_by_reference(reference: str | int) -> EscalationPolicy | None:
    """A policy named by id ("3", 3) or by name; None when there is no such policy."""
    text = str(reference).strip()
    if re.fullmatch(r"[0-9]{1,18}", text):  # an id that fits a bigint; anything else is a name
        return EscalationPolicy.objects.filter(pk=int(text)).first()
    return EscalationPolicy.objects.filter(name=text).first()


def incident_list(*, state: str | None = None) -> QuerySet[Incident]:
    incidents = Incident.objects.select_related("policy").order_by("-created_at", "-pk")
    return incidents.filter(state=state) if state else incidents


def incident_detail(incident_id: int) -> Incident:
    """The incident with its timeline and alerts. The calls placed for it are the engine's:
    orchestrator.selectors.incident_detail adds them."""
    incident = (
        Incident.objects.select_related("policy")
        .prefetch_related(Prefetch("events", queryset=IncidentEvent.objects.order_by("at", "pk")), "alerts")
        .filter(pk=incident_id)
        .first()
    )
    if incident is None:
        raise NotFound(f"Incident {incident_id} does not exist.")
    return incident


def is_drill_incident(incident_id: int) -> bool:
    """Drills tell nobody outside: other apps ask before publishing about something a drill made."""
    return Incident.objects.filter(pk=incident_id, is_drill=True).exists()
