"""The providers, by name. Each is one module declaring its methods and their input (see base.py);
add a new one to PROVIDERS."""

from __future__ import annotations

from integrations.providers import slack_webhook, smtp, webhook
from integrations.providers.base import CallContext, Provider, ProviderError, Result

PROVIDERS: dict[str, Provider] = {
    provider.name: provider for provider in (webhook.PROVIDER, slack_webhook.PROVIDER, smtp.PROVIDER)
}

__all__ = ["PROVIDERS", "CallContext", "Provider", "ProviderError", "Result", "get"]


def get(name: str) -> Provider:
    return PROVIDERS[name]
