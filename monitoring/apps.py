from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = gettext_lazy("Alert rules")
