"""Drills through the API: start one for a policy, read its report."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role, Scope
from accounts.permissions import scope_or_role
from accounts.throttles import DrillThrottle
from config.errors import NotFound
from incidents.models import EscalationPolicy
from orchestrator.drills import drill_report, start_drill

CanRunDrills = scope_or_role(Scope.POLICIES_WRITE, Role.SUPERVISOR)
CanReadIncidents = scope_or_role(Scope.INCIDENTS_READ, Role.VIEWER)


class PolicyDrillApi(APIView):
    permission_classes = [CanRunDrills]
    throttle_classes = [DrillThrottle]  # drills ring real phones

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    def post(self, request, policy_id: int):
        policy = EscalationPolicy.objects.filter(pk=policy_id).first()
        if policy is None:
            raise NotFound(f"Escalation policy {policy_id} does not exist.")
        incident = start_drill(policy, actor=request.user)
        body = drill_report(incident.pk) | {"report_url": f"/api/v1/drills/{incident.pk}"}
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["report_url"]})


class DrillReportApi(APIView):
    permission_classes = [CanReadIncidents]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, incident_id: int):
        return Response(drill_report(incident_id))
