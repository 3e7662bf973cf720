"""A generic HTTP endpoint: our events as signed JSON POSTs, or any request below the endpoint URL.

Signature: when auth_config has a `signing_secret`, X-Oncall-Signature is sha256=<HMAC of the raw
body>, so the receiver can check the body came from us (the header predates this interface and
receivers already verify it).
"""

from __future__ import annotations

import hashlib
import hmac

from django.utils import timezone
from rest_framework import serializers

from integrations.models import IntegrationType
from integrations.providers import http
from integrations.providers.base import CallContext, Provider, Result

SIGNATURE_HEADER = "X-Oncall-Signature"
EVENT_HEADER = "X-Oncall-Event"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def sign(body: bytes, secret: str) -> str:
    """The value of X-Oncall-Signature: receivers recompute it over the raw body they received."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class PostEventIn(serializers.Serializer):
    event = serializers.RegexField(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$", max_length=100)
    payload = serializers.DictField(required=False, default=dict)


class RequestIn(serializers.Serializer):
    # "method" in a message payload names the provider method ("request"), so the verb is http_method
    http_method = serializers.ChoiceField(choices=HTTP_METHODS, default="POST")
    path = serializers.RegexField(
        r"^/[^\s]*$",
        max_length=1000,
        error_messages={"invalid": "Enter a path below the endpoint URL, starting with '/'."},
    )
    body = serializers.JSONField(required=False, allow_null=True, default=None)

    def validate_path(self, value: str) -> str:
        if "://" in value or "/../" in f"{value}/" or value.startswith("//"):
            raise serializers.ValidationError("Enter a path below the endpoint URL, without '..' or a host.")
        return value


class WebhookProvider(Provider):
    name = "webhook"
    types = frozenset({IntegrationType.WEBHOOK, IntegrationType.CRM, IntegrationType.PAYMENT, IntegrationType.SOCIAL})
    methods = {"post_event": PostEventIn, "request": RequestIn}
    event_method = "post_event"

    def event_input(self, integration, event, payload, context):
        return {"event": event, "payload": payload}

    def do_post_event(self, integration, data: dict, context: CallContext) -> Result:
        envelope = {
            "event": data["event"],
            "payload": data.get("payload") or {},
            "message_id": context.message_id,
            "sent_at": timezone.now().isoformat(),
        }
        body = http.json_body(envelope)
        return http.send(
            integration,
            "POST",
            integration.endpoint_url,
            body=body,
            headers={EVENT_HEADER: data["event"], **self._signature(integration, body)},
            timeout=context.timeout,
        )

    def do_request(self, integration, data: dict, context: CallContext) -> Result:
        body = None if data.get("body") is None else http.json_body(data["body"])
        url = integration.endpoint_url.rstrip("/") + data["path"]
        headers = self._signature(integration, body) if body is not None else {}
        return http.send(integration, data["http_method"], url, body=body, headers=headers, timeout=context.timeout)

    def _signature(self, integration, body: bytes) -> dict[str, str]:
        secret = http.config_of(integration).get("signing_secret")
        return {SIGNATURE_HEADER: sign(body, secret)} if secret else {}


PROVIDER = WebhookProvider()
