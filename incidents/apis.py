"""Thin DRF views: validate input, call a service or a selector, shape the output.

The incident detail and /escalate show or drive the calls, which are the engine's: they are in
orchestrator/apis.py, on the same paths (see orchestrator/api_urls.py)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import actor_name
from accounts.models import Role, Scope
from accounts.permissions import read_write, scope_or_role
from accounts.throttles import AlertIngestionThrottle
from incidents import ingestion, selectors, services
from incidents.serializers import (
    AlertmanagerIn,
    ContactDetailOut,
    ContactIn,
    GenericAlertIn,
    GrafanaIn,
    IncidentFilterIn,
    IncidentOut,
    IngestOut,
    PolicyIn,
    PolicyOut,
)

CanPostAlerts = scope_or_role(Scope.ALERTS_WRITE, Role.SUPERVISOR)
CanReadIncidents = scope_or_role(Scope.INCIDENTS_READ, Role.VIEWER)
CanHandleIncidents = scope_or_role(Scope.INCIDENTS_WRITE, Role.AGENT)
CanManageContacts = read_write(Scope.INCIDENTS_READ, Role.VIEWER, Scope.POLICIES_WRITE, Role.SUPERVISOR)
CanManagePolicies = read_write(Scope.INCIDENTS_READ, Role.VIEWER, Scope.POLICIES_WRITE, Role.SUPERVISOR)

POLICY_PARAM = OpenApiParameter("policy", str, description="escalation policy id or name (else the default)")


def ingest_response(intake: ingestion.Intake) -> Response:
    result, incident = intake.result, intake.result.incident
    body = {
        "incident_id": incident.pk if incident else None,
        "state": incident.state if incident else None,
        "deduplicated": result.deduplicated,
        "warnings": list(intake.warnings),
        "resolved": result.resolved,
        "retriggered": result.retriggered,
    }
    return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class GenericAlertApi(APIView):
    permission_classes = [CanPostAlerts]
    throttle_classes = [AlertIngestionThrottle]

    @extend_schema(
        summary="Post an alert (generic JSON)",
        tags=["alerts"],
        request=GenericAlertIn,
        responses={201: IngestOut, 200: IngestOut},
    )
    def post(self, request):
        serializer = GenericAlertIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        actor = actor_name(request.user)
        return ingest_response(ingestion.ingest_generic(serializer.validated_data, payload=request.data, actor=actor))


class _GroupedAlertApi(APIView):
    """Alertmanager and Grafana: a grouped notification, an optional `?policy=`."""

    permission_classes = [CanPostAlerts]
    throttle_classes = [AlertIngestionThrottle]
    input_serializer: type
    ingest: staticmethod  # the source's function in incidents.ingestion

    def post(self, request):
        serializer = self.input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        intake = self.ingest(
            serializer.validated_data,
            payload=request.data,
            actor=actor_name(request.user),
            policy=request.query_params.get("policy"),
        )
        return ingest_response(intake)


@extend_schema_view(
    post=extend_schema(
        summary="Post an Alertmanager webhook (v4)",
        tags=["alerts"],
        request=AlertmanagerIn,
        responses={201: IngestOut, 200: IngestOut},
        parameters=[POLICY_PARAM],
    )
)
class AlertmanagerApi(_GroupedAlertApi):
    input_serializer = AlertmanagerIn
    ingest = staticmethod(ingestion.ingest_alertmanager)


@extend_schema_view(
    post=extend_schema(
        summary="Post a Grafana alerting webhook",
        tags=["alerts"],
        request=GrafanaIn,
        responses={201: IngestOut, 200: IngestOut},
        parameters=[POLICY_PARAM],
    )
)
class GrafanaApi(_GroupedAlertApi):
    input_serializer = GrafanaIn
    ingest = staticmethod(ingestion.ingest_grafana)


class IncidentListApi(APIView):
    permission_classes = [CanReadIncidents]

    @extend_schema(
        summary="List incidents", tags=["incidents"], parameters=[IncidentFilterIn], responses=IncidentOut(many=True)
    )
    def get(self, request):
        filters = IncidentFilterIn(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        incidents = selectors.incident_list(state=params.get("state"))
        page = incidents[params["offset"] : params["offset"] + params["limit"]]
        return Response({"count": incidents.count(), "results": IncidentOut(page, many=True).data})


class IncidentAcknowledgeApi(APIView):
    permission_classes = [CanHandleIncidents]

    @extend_schema(
        summary="Acknowledge an incident: stop calling", tags=["incidents"], request=None, responses=IncidentOut
    )
    def post(self, request, incident_id: int):
        incident = services.acknowledge(incident_id, actor=actor_name(request.user))
        return Response(IncidentOut(incident).data)


class IncidentResolveApi(APIView):
    permission_classes = [CanHandleIncidents]

    @extend_schema(summary="Resolve an incident", tags=["incidents"], request=None, responses=IncidentOut)
    def post(self, request, incident_id: int):
        incident = services.resolve(incident_id, actor=actor_name(request.user))
        return Response(IncidentOut(incident).data)


class ContactListApi(APIView):
    permission_classes = [CanManageContacts]

    @extend_schema(summary="List contacts", tags=["contacts"], responses=ContactDetailOut(many=True))
    def get(self, request):
        return Response(ContactDetailOut(selectors.contact_list(), many=True).data)

    @extend_schema(summary="Create a contact", tags=["contacts"], request=ContactIn, responses={201: ContactDetailOut})
    def post(self, request):
        serializer = ContactIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact = services.create_contact(actor=request.user, **serializer.validated_data)
        return Response(ContactDetailOut(contact).data, status=status.HTTP_201_CREATED)


class ContactDetailApi(APIView):
    permission_classes = [CanManageContacts]

    @extend_schema(summary="Read a contact", tags=["contacts"], responses=ContactDetailOut)
    def get(self, request, contact_id: int):
        return Response(ContactDetailOut(selectors.contact_detail(contact_id)).data)

    @extend_schema(
        summary="Change a contact", tags=["contacts"], request=ContactIn(partial=True), responses=ContactDetailOut
    )
    def patch(self, request, contact_id: int):
        contact = selectors.contact_detail(contact_id)
        serializer = ContactIn(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        updated = services.update_contact(contact, actor=request.user, **serializer.validated_data)
        return Response(ContactDetailOut(updated).data)


def _policy_changes(data: dict) -> dict:
    """Validated input as service arguments: contact ids become contacts, in the order given."""
    changes = dict(data)
    if "contacts" in changes:
        changes["contacts"] = selectors.contacts_by_ids(changes["contacts"])
    return changes


class PolicyListApi(APIView):
    permission_classes = [CanManagePolicies]

    @extend_schema(tags=["policies"], summary="List escalation policies", responses=PolicyOut(many=True))
    def get(self, request):
        return Response(PolicyOut(selectors.policy_list(), many=True).data)

    @extend_schema(
        tags=["policies"], summary="Create an escalation policy", request=PolicyIn, responses={201: PolicyOut}
    )
    def post(self, request):
        serializer = PolicyIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        policy = services.create_policy(actor=request.user, **_policy_changes(serializer.validated_data))
        return Response(PolicyOut(selectors.policy_detail(policy.pk)).data, status=status.HTTP_201_CREATED)


class PolicyDetailApi(APIView):
    permission_classes = [CanManagePolicies]

    @extend_schema(tags=["policies"], summary="Read an escalation policy and its call order", responses=PolicyOut)
    def get(self, request, policy_id: int):
        return Response(PolicyOut(selectors.policy_detail(policy_id)).data)

    @extend_schema(
        tags=["policies"],
        summary="Change an escalation policy (contacts, when sent, replace the call order)",
        request=PolicyIn(partial=True),
        responses=PolicyOut,
    )
    def patch(self, request, policy_id: int):
        policy = selectors.policy_detail(policy_id)
        serializer = PolicyIn(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.update_policy(policy, actor=request.user, **_policy_changes(serializer.validated_data))
        return Response(PolicyOut(selectors.policy_detail(policy_id)).data)
