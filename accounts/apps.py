from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = gettext_lazy("Accounts")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from accounts import schema  # noqa: F401  (registers the OpenAPI description of API keys)
        from accounts.models import APIKey
        from accounts.selectors import API_KEYS

        for name, signal in (("save", post_save), ("delete", post_delete)):
            signal.connect(API_KEYS.clear, sender=APIKey, dispatch_uid=f"api-key-cache-{name}")
