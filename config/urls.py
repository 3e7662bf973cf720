from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import HealthzApi, ReadyzApi
from config.metrics import MetricsApi

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("incidents.urls")),
    path("", include("orchestrator.api_urls")),
    path("", include("recordings.urls")),
    path("", include("integrations.urls")),
    path("", include("monitoring.urls")),
]

urlpatterns = [
    path("healthz", HealthzApi.as_view(), name="healthz"),
    path("readyz", ReadyzApi.as_view(), name="readyz"),
    path("health", HealthzApi.as_view(), name="health"),  # the seed's monitoring path
    path("metrics", MetricsApi.as_view(), name="metrics"),
    path("admin/", admin.site.urls),
    path("status/", include("console.urls")),
    path("api/v1/", include(api_v1)),
    path("webhook/", include("orchestrator.seed_urls")),
    path("webhooks/", include("orchestrator.urls")),
    path("webhooks/", include("recordings.webhook_urls")),  # the carriers' recording-ready callbacks
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

handler400 = "config.views.bad_request"
handler403 = "config.views.permission_denied"
handler404 = "config.views.page_not_found"
handler500 = "config.views.server_error"
