from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class OrchestratorConfig(AppConfig):
    name = "orchestrator"
    verbose_name = gettext_lazy("Calls")

    def ready(self) -> None:
        # The record (incidents) calls the engine through this registration, never by import.
        from incidents.services import set_escalation_engine
        from orchestrator.engine import PhoneEscalation

        set_escalation_engine(PhoneEscalation())
