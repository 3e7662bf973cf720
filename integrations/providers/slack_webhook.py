"""Slack incoming webhooks: a message to the channel the webhook was made for.

The webhook URL's path is its credential: the URL is shown as scheme://host/… only, and scrubbed
from every stored error and log line.
"""

from __future__ import annotations

from rest_framework import serializers

from integrations import rendering
from integrations.models import IntegrationType
from integrations.providers import http
from integrations.providers.base import CallContext, Provider, Result


class PostMessageIn(serializers.Serializer):
    text = serializers.CharField(max_length=40000)
    blocks = serializers.ListField(child=serializers.DictField(), required=False, max_length=50)
    channel = serializers.CharField(max_length=100, required=False)  # ignored by incoming webhooks


class SlackWebhookProvider(Provider):
    name = "slack_webhook"
    types = frozenset({IntegrationType.NOTIFICATION})
    methods = {"post_message": PostMessageIn}
    event_method = "post_message"
    secret_endpoint = True
    auth_types = frozenset({"none"})

    def event_input(self, integration, event, payload, context):
        return {"text": rendering.slack_text(event, payload, language=rendering.language_of(integration))}

    def do_post_message(self, integration, data: dict, context: CallContext) -> Result:
        body = {"text": data["text"]}
        if data.get("blocks"):
            body["blocks"] = data["blocks"]
        return http.send(
            integration, "POST", integration.endpoint_url, body=http.json_body(body), timeout=context.timeout
        )


PROVIDER = SlackWebhookProvider()
