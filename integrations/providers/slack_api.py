"""Slack's Web API chat.postMessage with a bot token (auth_type bearer, auth_config {"token": "xoxb-…"}).

Sent with our guarded HTTP client rather than slack_sdk: the SDK opens its own connections (urllib), so
the SSRF guard, our timeouts and our retry judgement would not apply. The protocol is one JSON POST.

Slack answers most errors with HTTP 200 and {"ok": false, "error": "channel_not_found"}: ok:false is a
failure. "ratelimited" and Slack's own trouble are retried (a 429 carries Retry-After, which http.send
keeps); invalid_auth, channel_not_found, not_in_channel, missing_scope and the rest are permanent.
Options: {"channel": "C0123…" or "#ops"} where our events go; a message's payload.channel overrides it.
endpoint_url: the API's base, https://slack.com/api when blank.
"""

from __future__ import annotations

from integrations import rendering
from integrations.models import IntegrationType
from integrations.providers import http
from integrations.providers.base import CallContext, Provider, ProviderError, Result
from integrations.providers.slack_webhook import PostMessageIn

DEFAULT_BASE_URL = "https://slack.com/api"
RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackApiProvider(Provider):
    name = "slack_api"
    types = frozenset({IntegrationType.NOTIFICATION})
    methods = {"post_message": PostMessageIn}
    event_method = "post_message"
    needs_endpoint = False  # https://slack.com/api unless endpoint_url says otherwise
    auth_types = frozenset({"bearer"})

    def check_integration(self, integration) -> dict[str, str]:
        errors = super().check_integration(integration)
        options = integration.options if isinstance(integration.options, dict) else {}
        channel = options.get("channel")
        if not isinstance(channel, str) or not channel.strip() or len(channel) > 100:
            errors["options"] = 'Set options.channel to the channel our events go to, e.g. {"channel": "C0123456789"}.'
        return errors

    def event_input(self, integration, event, payload, context):
        return {"text": rendering.slack_text(event, payload, language=rendering.language_of(integration))}

    def do_post_message(self, integration, data: dict, context: CallContext) -> Result:
        body = {"channel": data.get("channel") or integration.options["channel"], "text": data["text"]}
        if data.get("blocks"):
            body["blocks"] = data["blocks"]
        url = (integration.endpoint_url or DEFAULT_BASE_URL).rstrip("/") + "/chat.postMessage"
        result = http.send(integration, "POST", url, body=http.json_body(body), timeout=context.timeout)
        answer = result.data if isinstance(result.data, dict) else {}
        if answer.get("ok") is True:
            return Result(
                http_status=result.http_status, data={"channel": answer.get("channel"), "ts": answer.get("ts")}
            )
        error = str(answer.get("error") or "no JSON answer with ok:true")
        reason = f"Slack refused chat.postMessage: {http.one_line(error)[:100]}"
        if answer.get("needed"):  # missing_scope names the scope the token lacks
            reason += f" (the token needs scope {http.one_line(str(answer['needed']))[:100]})"
        raise ProviderError(reason, permanent=error not in RETRYABLE_ERRORS, http_status=result.http_status)


PROVIDER = SlackApiProvider()
