"""Reads for incidents."""

from __future__ import annotations

import re
from bisect import bisect_right

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from config.errors import InvalidInput, NotFound
from incidents.models import Alert, Contact, EscalationPolicy, EventKind, Incident, IncidentEvent, PolicyContact


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


def timeline_with_bursts(incident: Incident, events: list[IncidentEvent] | None = None) -> list[IncidentEvent]:
    """The incident's timeline, where the duplicate alerts between two entries appear as one entry
    (unsaved): how many, first and last seen. Duplicates are stored only as alert rows, so a storm
    writes no timeline rows and the page still reads "300 duplicate alerts from 03:00:01 to 03:04:59"."""
    events = sorted(events if events is not None else incident.events.all(), key=lambda event: (event.at, event.pk))
    duplicates = Alert.objects.filter(incident=incident, duplicate=True).order_by("received_at", "pk")
    bounds = [event.at for event in events]
    bursts: dict[int, list] = {}
    for received_at, received_by in duplicates.values_list("received_at", "received_by"):
        slot = bisect_right(bounds, received_at)
        burst = bursts.setdefault(slot, [0, received_at, received_at, received_by])
        burst[0] += 1
        burst[2] = received_at
    merged = list(events)
    for count, first, last, received_by in bursts.values():
        start, end = timezone.localtime(first), timezone.localtime(last)
        message = (
            f"{count} duplicate alerts from {start:%H:%M:%S} to {end:%H:%M:%S}; no new call"
            if count > 1
            else "duplicate alert; no new call"
        )
        merged.append(
            IncidentEvent(
                incident=incident,
                kind=EventKind.DEDUPLICATED,
                actor=received_by or "system",
                message=message,
                at=first,
                data={"count": count, "first_at": first.isoformat(), "last_at": last.isoformat()},
            )
        )
    return sorted(merged, key=lambda event: event.at)
