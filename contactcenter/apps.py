from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class ContactCenterConfig(AppConfig):
    """Amazon Connect's real-time metrics, polled by beat and exported at /metrics. No models."""

    name = "contactcenter"
    verbose_name = gettext_lazy("Contact center")
