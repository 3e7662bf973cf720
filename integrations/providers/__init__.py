"""The providers, by name. Each is one module declaring its methods and their input (see base.py);
add a new one to PROVIDERS."""

from __future__ import annotations

from integrations.providers import (
    dynamics,
    fcm,
    hubspot,
    inicis,
    meta,
    salesforce,
    ses,
    slack_api,
    slack_webhook,
    smtp,
    sns,
    toss,
    twilio_sms,
    webhook,
    x,
)
from integrations.providers.base import CallContext, Incoming, IncomingAnswer, Provider, ProviderError, Result

PROVIDERS: dict[str, Provider] = {
    provider.name: provider
    for provider in (
        webhook.PROVIDER,
        slack_webhook.PROVIDER,
        smtp.PROVIDER,
        salesforce.PROVIDER,
        hubspot.PROVIDER,
        dynamics.PROVIDER,
        twilio_sms.PROVIDER,
        sns.PROVIDER,
        ses.PROVIDER,
        slack_api.PROVIDER,
        fcm.PROVIDER,
        toss.PROVIDER,
        inicis.PROVIDER,
        meta.MESSENGER,
        meta.INSTAGRAM,
        x.PROVIDER,
    )
}

__all__ = ["PROVIDERS", "CallContext", "Incoming", "IncomingAnswer", "Provider", "ProviderError", "Result", "get"]


def get(name: str) -> Provider:
    return PROVIDERS[name]
