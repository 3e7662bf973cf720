from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = gettext_lazy("Incidents and policies")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from incidents.models import Contact, EscalationPolicy, PolicyContact
        from incidents.services import POLICY_CHOICES

        for model in (EscalationPolicy, PolicyContact, Contact):
            for name, signal in (("save", post_save), ("delete", post_delete)):
                signal.connect(POLICY_CHOICES.clear, sender=model, dispatch_uid=f"policy-cache-{model.__name__}-{name}")
