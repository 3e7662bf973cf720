"""The engine's API: an incident with the calls placed for it, escalate now, and drills (start one
for a policy, read its report)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import actor_name
from accounts.models import Role, Scope
from accounts.permissions import scope_or_role
from accounts.throttles import DrillThrottle
from config.errors import NotFound
from incidents.apis import CanHandleIncidents, CanReadIncidents
from incidents.models import EscalationPolicy
from orchestrator import selectors
from orchestrator.drills import drill_report, start_drill
from orchestrator.serializers import EscalateIn, IncidentDetailOut
from orchestrator.services import escalate_now

CanRunDrills = scope_or_role(Scope.POLICIES_WRITE, Role.SUPERVISOR)


class IncidentDetailApi(APIView):
    permission_classes = [CanReadIncidents]

    @extend_schema(
        summary="Read an incident with its calls, timeline and alerts", tags=["incidents"], responses=IncidentDetailOut
    )
    def get(self, request, incident_id: int):
        return Response(IncidentDetailOut(selectors.incident_detail(incident_id)).data)


class IncidentEscalateApi(APIView):
    permission_classes = [CanHandleIncidents]

    @extend_schema(
        summary="Escalate now: call the next contact",
        description="With `from_step` (the call the caller saw), a repeated request does nothing (409) "
        "instead of skipping one more contact.",
        tags=["incidents"],
        request=EscalateIn,
        responses=IncidentDetailOut,
    )
    def post(self, request, incident_id: int):
        body = EscalateIn(data=request.data)
        body.is_valid(raise_exception=True)
        escalate_now(incident_id, actor=actor_name(request.user), from_step=body.validated_data.get("from_step"))
        return Response(IncidentDetailOut(selectors.incident_detail(incident_id)).data)


class PolicyDrillApi(APIView):
    permission_classes = [CanRunDrills]
    throttle_classes = [DrillThrottle]  # drills ring real phones

    @extend_schema(
        summary="Start a drill of a policy (rings its contacts)",
        tags=["drills"],
        request=None,
        responses={202: OpenApiTypes.OBJECT},
    )
    def post(self, request, policy_id: int):
        policy = EscalationPolicy.objects.filter(pk=policy_id).first()
        if policy is None:
            raise NotFound(f"Escalation policy {policy_id} does not exist.")
        incident = start_drill(policy, actor=request.user)
        body = drill_report(incident.pk) | {"report_url": f"/api/v1/drills/{incident.pk}"}
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["report_url"]})


class DrillReportApi(APIView):
    permission_classes = [CanReadIncidents]

    @extend_schema(summary="Read a drill's report", tags=["drills"], responses=OpenApiTypes.OBJECT)
    def get(self, request, incident_id: int):
        return Response(drill_report(incident_id))
