"""Input and output shapes of the integrations API (the seed's IntegrationConfig and IntegrationMessage).

Credentials never leave: `auth_config` comes back with every secret as "••••" (client_id, token_url
and the like shown as they are), and `endpoint_url` as scheme://host/… (a URL's path or query may be
a credential: a Slack webhook's is).
"""

from __future__ import annotations

from rest_framework import serializers

from config import outbound
from integrations import providers
from integrations.models import AuthType, DeliveryAttempt, Integration, IntegrationType, MessageStatus, OutboundMessage

AUTH_TYPE_ALIASES = {"oauth2": AuthType.OAUTH2_CLIENT_CREDENTIALS}  # the seed's example says "oauth2"


class AuthTypeField(serializers.ChoiceField):
    def to_internal_value(self, data):
        return super().to_internal_value(AUTH_TYPE_ALIASES.get(data, data))


class IntegrationIn(serializers.Serializer):
    integration_id = serializers.RegexField(r"^[a-z0-9][a-z0-9_-]{0,99}$", max_length=100)
    name = serializers.CharField(max_length=100)
    type = serializers.ChoiceField(choices=IntegrationType.choices)
    provider = serializers.ChoiceField(choices=sorted(providers.PROVIDERS))
    endpoint_url = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    auth_type = AuthTypeField(choices=AuthType.choices, required=False)
    auth_config = serializers.DictField(required=False)
    options = serializers.DictField(required=False)
    events = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=100)
    active = serializers.BooleanField(required=False)
    max_attempts = serializers.IntegerField(min_value=1, max_value=20, required=False)
    rate_limit_per_second = serializers.FloatField(min_value=0.01, required=False, allow_null=True)


class IntegrationOut(serializers.Serializer):
    def to_representation(self, integration: Integration) -> dict:
        provider = providers.PROVIDERS.get(integration.provider)
        return {
            "integration_id": integration.integration_id,
            "name": integration.name,
            "type": integration.type,
            "provider": integration.provider,
            "endpoint_url": outbound.redact_url(integration.endpoint_url) if integration.endpoint_url else "",
            "auth_type": integration.auth_type,
            "auth_config": integration.shown_auth_config(),
            "options": integration.options,
            "events": integration.events,
            "active": integration.active,
            "max_attempts": integration.max_attempts,
            "rate_limit_per_second": integration.rate_limit_per_second,
            "methods": sorted(provider.methods) if provider else [],
            "created_at": integration.created_at,
            "updated_at": integration.updated_at,
        }


class MessageIn(serializers.Serializer):
    message_type = serializers.ChoiceField(choices=["sync", "async"])
    payload = serializers.DictField()
    idempotency_key = serializers.CharField(max_length=190, required=False, allow_blank=True)


class MessageFilterIn(serializers.Serializer):
    status = serializers.ChoiceField(choices=MessageStatus.choices, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=500, default=100)
    offset = serializers.IntegerField(min_value=0, default=0)


def attempt_out(attempt: DeliveryAttempt) -> dict:
    outcome = "ok" if attempt.ok else ("running" if attempt.finished_at is None else "failed")
    return {
        "number": attempt.number,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "outcome": outcome,
        "http_status": attempt.http_status,
        "error": attempt.error,
        "excerpt": attempt.excerpt,
        "request_id": attempt.request_id,
    }


class MessageOut(serializers.Serializer):
    def to_representation(self, message: OutboundMessage) -> dict:
        body = {
            "message_id": message.pk,
            "integration_id": message.integration.integration_id,
            "message_type": message.message_type,
            "method": message.method,
            "event": message.event or None,
            "status": message.status,
            "attempts": message.attempts,
            "idempotency_key": message.idempotency_key or None,
            "last_error": message.last_error,
            "result": message.result,
            "next_attempt_at": message.next_attempt_at,
            "delivered_at": message.delivered_at,
            "created_at": message.created_at,
        }
        if self.context.get("with_attempts"):
            body["delivery_attempts"] = [attempt_out(attempt) for attempt in message.delivery_attempts.all()]
        return body
