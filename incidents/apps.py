from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = gettext_lazy("Incidents and policies")
