"""Reads for incidents."""

from __future__ import annotations

import re

from django.db.models import Prefetch, QuerySet

from config.errors import NotFound
from incidents.models import Contact, EscalationPolicy, Incident, IncidentEvent


def contact_list() -> QuerySet[Contact]:
    return Contact.objects.order_by("name", "pk")


def contact_detail(contact_id: int) -> Contact:
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is None:
        raise NotFound(f"Contact {contact_id} does not exist.")
    return contact


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
