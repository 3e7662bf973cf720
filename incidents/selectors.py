"""Reads for incidents."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from config.errors import NotFound
from incidents.models import Incident, IncidentEvent
from orchestrator.selectors import attempts_for


def incident_list(*, state: str | None = None) -> QuerySet[Incident]:
    incidents = Incident.objects.select_related("policy").order_by("-created_at", "-pk")
    return incidents.filter(state=state) if state else incidents


def incident_detail(incident_id: int) -> Incident:
    incident = (
        Incident.objects.select_related("policy")
        .prefetch_related(
            Prefetch("events", queryset=IncidentEvent.objects.select_related("attempt").order_by("at", "pk")),
            "alerts",
        )
        .filter(pk=incident_id)
        .first()
    )
    if incident is None:
        raise NotFound(f"Incident {incident_id} does not exist.")
    incident.attempt_list = list(attempts_for(incident.pk))
    return incident
