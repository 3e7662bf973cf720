"""The Call Orchestrator's endpoints, same paths and shapes, so its callers switch without change.

The seed had no authentication. Here an API key is required unless SEED_WEBHOOKS_REQUIRE_API_KEY
is turned off for callers on a trusted network: an open endpoint that places phone calls invites abuse.
They live in the engine's app because they answer with the calls placed (retry escalates, the
status shows the attempts).
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import actor_name
from accounts.models import Role, Scope
from accounts.permissions import ExplainedPermission, scope_or_role
from incidents import services
from incidents.models import Source
from orchestrator import selectors
from orchestrator.serializers import IncidentDetailOut, SeedAckOut, SeedCallOut, SeedStartIn
from orchestrator.services import escalate_now


def _seed_permission(scope: str, role: str) -> type[ExplainedPermission]:
    guarded = scope_or_role(scope, role)

    class SeedCompatible(ExplainedPermission):
        def has_permission(self, request, view) -> bool:
            if not settings.SEED_WEBHOOKS_REQUIRE_API_KEY:
                return True
            check = guarded()
            allowed = check.has_permission(request, view)
            self.message = check.message
            return allowed

    return SeedCompatible


def _call_shape(incident, attempt) -> dict:
    """The seed's answer: {incident_id, call_id, to, role}."""
    if attempt is None:
        return {"incident_id": incident.pk, "call_id": None, "to": None, "role": None}
    position = next(
        (m.position for m in incident.policy.members.all() if m.contact_id == attempt.contact_id), attempt.step - 1
    )
    role = {0: "primary", 1: "secondary"}.get(position, f"contact{position + 1}")
    return {
        "incident_id": incident.pk,
        "call_id": attempt.provider_call_id or f"attempt-{attempt.pk}",
        "to": attempt.to_number,
        "role": role,
    }


class SeedStartApi(APIView):
    permission_classes = [_seed_permission(Scope.ALERTS_WRITE, Role.SUPERVISOR)]

    @extend_schema(
        tags=["seed-compatible"],
        request=SeedStartIn,
        responses=SeedCallOut,
        summary="Seed-compatible: open an incident and call the primary",
    )
    def post(self, request):
        serializer = SeedStartIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.open_incident(
            summary=serializer.validated_data["incident_summary"],
            tts_text=serializer.validated_data["tts_text"],
            source=Source.SEED,
            payload=request.data,
            actor=actor_name(request.user if request.user.is_authenticated else None),
        )
        incident = result.incident
        return Response(_call_shape(incident, incident.attempts.order_by("-step").first()))


class SeedRetryApi(APIView):
    permission_classes = [_seed_permission(Scope.INCIDENTS_WRITE, Role.AGENT)]

    @extend_schema(
        tags=["seed-compatible"],
        request=None,
        responses=SeedCallOut,
        summary="Seed-compatible: call the next contact now",
    )
    def post(self, request, incident_id: int):
        actor = actor_name(request.user if request.user.is_authenticated else None)
        attempt = escalate_now(incident_id, actor=actor)
        return Response(_call_shape(selectors.incident_detail(incident_id), attempt))


class SeedAckApi(APIView):
    permission_classes = [_seed_permission(Scope.INCIDENTS_WRITE, Role.AGENT)]

    @extend_schema(tags=["seed-compatible"], request=None, responses=SeedAckOut, summary="Seed-compatible: acknowledge")
    def post(self, request, incident_id: int):
        actor = actor_name(request.user if request.user.is_authenticated else None)
        incident = services.acknowledge(incident_id, actor=actor)
        return Response({"incident_id": incident.pk, "status": incident.state, "acknowledged": True})


class SeedIncidentApi(APIView):
    permission_classes = [_seed_permission(Scope.INCIDENTS_READ, Role.VIEWER)]

    @extend_schema(tags=["seed-compatible"], responses=IncidentDetailOut, summary="Seed-compatible: incident status")
    def get(self, request, incident_id: int):
        return Response(IncidentDetailOut(selectors.incident_detail(incident_id)).data)
