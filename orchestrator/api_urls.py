from django.urls import path

from orchestrator import apis

urlpatterns = [
    # An incident with its calls, and "call the next contact now": the engine's side of /incidents.
    path("incidents/<int:incident_id>", apis.IncidentDetailApi.as_view(), name="incident-detail"),
    path("incidents/<int:incident_id>/escalate", apis.IncidentEscalateApi.as_view(), name="incident-escalate"),
    path("escalation-policies/<int:policy_id>/drill", apis.PolicyDrillApi.as_view(), name="policy-drill"),
    path("drills/<int:incident_id>", apis.DrillReportApi.as_view(), name="drill-report"),
]
