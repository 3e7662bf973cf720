from django.urls import path

from incidents import apis, report_apis

urlpatterns = [
    path("alerts/generic", apis.GenericAlertApi.as_view(), name="alerts-generic"),
    path("alerts/alertmanager", apis.AlertmanagerApi.as_view(), name="alerts-alertmanager"),
    path("alerts/grafana", apis.GrafanaApi.as_view(), name="alerts-grafana"),
    path("contacts", apis.ContactListApi.as_view(), name="contact-list"),
    path("contacts/<int:contact_id>", apis.ContactDetailApi.as_view(), name="contact-detail"),
    path("escalation-policies", apis.PolicyListApi.as_view(), name="policy-list"),
    path("escalation-policies/<int:policy_id>", apis.PolicyDetailApi.as_view(), name="policy-detail"),
    path("incidents", apis.IncidentListApi.as_view(), name="incident-list"),
    path("incidents/<int:incident_id>/acknowledge", apis.IncidentAcknowledgeApi.as_view(), name="incident-ack"),
    path("incidents/<int:incident_id>/resolve", apis.IncidentResolveApi.as_view(), name="incident-resolve"),
    path("reports/response-times", report_apis.ResponseTimesReportApi.as_view(), name="report-response-times"),
]
