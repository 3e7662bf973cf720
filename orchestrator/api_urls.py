from django.urls import path

from orchestrator import apis

urlpatterns = [
    path("escalation-policies/<int:policy_id>/drill", apis.PolicyDrillApi.as_view(), name="policy-drill"),
    path("drills/<int:incident_id>", apis.DrillReportApi.as_view(), name="drill-report"),
]
