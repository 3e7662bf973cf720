from django.urls import path

from orchestrator import seed_apis

urlpatterns = [
    path("start", seed_apis.SeedStartApi.as_view(), name="seed-start"),
    path("retry/<int:incident_id>", seed_apis.SeedRetryApi.as_view(), name="seed-retry"),
    path("ack/<int:incident_id>", seed_apis.SeedAckApi.as_view(), name="seed-ack"),
    path("incident/<int:incident_id>", seed_apis.SeedIncidentApi.as_view(), name="seed-incident"),
]
