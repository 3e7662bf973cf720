"""SMS through Twilio Messaging, with the official twilio SDK (the one our calls use).

auth_type basic, as Twilio's REST API authenticates: username = Account SID (or an API key SID, with
options.account_sid naming the account), password = Auth Token (or the API key's secret).
Options: {"from": "+8210..." | "messaging_service_sid": "MG...", "to": "+8210..." (where our events
go), "account_sid"?}. endpoint_url: Twilio's API base URL, https://api.twilio.com when blank.

The SDK's HTTP goes through our guard: `GuardedTwilioHttpClient` is the SDK's own requests-based client
with its session swapped for config.outbound's guarded session (SSRF check at connect time, no proxies
from the environment, redirects not followed) and our (connect, read) timeouts. Twilio's error answer
{"code", "message", "more_info", "status"} becomes a ProviderError: 429 and 5xx are worth another try
(Retry-After kept), other 4xx (21211 invalid 'To', 20003 bad credentials, 21610 unsubscribed) are not.
"""

from __future__ import annotations

import json
import re

import requests
from rest_framework import serializers
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from config import outbound
from integrations import auth, rendering
from integrations.models import IntegrationType
from integrations.providers import http
from integrations.providers.base import CallContext, Provider, ProviderError, Result

DEFAULT_BASE_URL = "https://api.twilio.com"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")  # where carriers allow one
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
SMS_MAX_CHARS = 1600  # Twilio's limit for a message body
EVENT_SMS_MAX_CHARS = 320  # our own events: short enough to read on a lock screen, and cheap
RETRYABLE_HTTP_STATUSES = frozenset({408, 429})
# What fits a text message after the summary; the link comes last. An event without a summary (a
# stored recording) has nothing but its facts to say: they all come, in rendering's order.
SMS_FACTS = ("state", "incident_id", "acknowledged_by")


class PhoneNumberField(serializers.RegexField):
    def __init__(self, **kwargs):
        kwargs.setdefault("error_messages", {"invalid": "Enter a phone number in E.164 form, e.g. +821012345678."})
        super().__init__(E164, max_length=16, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str):  # "+82 10-1234-5678" as people write it
            data = re.sub(r"[\s().-]", "", data)
        return super().to_internal_value(data)


class SendSmsIn(serializers.Serializer):
    to = PhoneNumberField()
    text = serializers.CharField(max_length=SMS_MAX_CHARS)


def sms_text(event: str, payload: dict, language: str) -> str:
    """Our event as a short SMS: "[CRITICAL] 아무도 확인하지 않음: Disk full on db-1. 상태: 호출 중.
    인시던트: #42." (without a summary: "녹음 저장됨. 녹음: #77. 종류: 음성 통화. 길이: 2분 5초. ...")
    and the link when it still fits in EVENT_SMS_MAX_CHARS."""
    labels = dict(rendering.FACT_LABELS)
    link_label = labels["url"][language]
    facts = dict(rendering.facts(payload, language))
    severity = payload.get("severity")
    prefix = f"[{str(severity).upper()}] " if severity else ""
    title = rendering.event_title(event, language)
    summary = rendering.summary_of(event, payload, language).rstrip(".")
    if summary != title:
        sentences = [f"{prefix}{title}: {summary}"]
        wanted = [labels[key][language] for key in SMS_FACTS]
    else:  # the publisher sent no summary: the facts are the message
        sentences = [f"{prefix}{title}"]
        wanted = [label for label in facts if label != link_label]
    sentences += [f"{label}: {facts[label].rstrip('.')}" for label in wanted if label in facts]
    text = ". ".join(sentences) + "."
    link = facts.get(link_label, "")
    if link and len(text) + 1 + len(link) <= EVENT_SMS_MAX_CHARS:
        text += f" {link}"
    return text if len(text) <= EVENT_SMS_MAX_CHARS else text[: EVENT_SMS_MAX_CHARS - 1] + "…"


class GuardedTwilioHttpClient(TwilioHttpClient):
    """The SDK's HTTP client on our guarded session, remembering the last answer (for Retry-After,
    which the SDK's exception does not carry). One per call: it holds that answer."""

    def __init__(self, timeout: tuple[float, float]):
        super().__init__(pool_connections=True)
        self.session = outbound.guarded_session()
        self.timeout = timeout  # the SDK checks a number; requests also takes (connect, read)
        self.last_response: TwilioResponse | None = None

    def request(self, *args, **kwargs) -> TwilioResponse:
        self.last_response = None
        self.last_response = super().request(*args, **kwargs)
        return self.last_response


class TwilioSmsProvider(Provider):
    name = "twilio_sms"
    types = frozenset({IntegrationType.NOTIFICATION})
    methods = {"send_sms": SendSmsIn}
    event_method = "send_sms"
    needs_endpoint = False  # https://api.twilio.com unless endpoint_url says otherwise
    auth_types = frozenset({"basic"})

    def check_integration(self, integration) -> dict[str, str]:
        errors = super().check_integration(integration)
        options = integration.options if isinstance(integration.options, dict) else {}
        problems = []
        sender, service = options.get("from"), options.get("messaging_service_sid")
        if not sender and not service:
            problems.append('Set options.from (a Twilio number, e.g. "+15017122661") or options.messaging_service_sid.')
        if sender and not (isinstance(sender, str) and (E164.match(sender) or ALPHANUMERIC_SENDER.match(sender))):
            problems.append("options.from must be a phone number in E.164 form or an alphanumeric sender ID.")
        if service and not (isinstance(service, str) and MESSAGING_SERVICE_SID.match(service)):
            problems.append("options.messaging_service_sid must look like MG followed by 32 hex digits.")
        if not (isinstance(options.get("to"), str) and E164.match(options["to"])):
            problems.append("options.to must be the phone number (E.164, e.g. +821012345678) our events go to.")
        account = options.get("account_sid")
        if account and not (isinstance(account, str) and ACCOUNT_SID.match(account)):
            problems.append("options.account_sid must look like AC followed by 32 hex digits.")
        if problems:
            errors["options"] = " ".join(problems)
        return errors

    def event_input(self, integration, event, payload, context):
        return {"to": integration.options["to"], "text": sms_text(event, payload, rendering.language_of(integration))}

    def do_send_sms(self, integration, data: dict, context: CallContext) -> Result:
        config = http.config_of(integration)
        options = integration.options or {}
        base_url = (integration.endpoint_url or DEFAULT_BASE_URL).rstrip("/")
        http_client = GuardedTwilioHttpClient(context.timeout or http.default_timeout())
        client = Client(
            config["username"],
            config["password"],
            account_sid=options.get("account_sid") or None,
            http_client=http_client,
        )
        # This integration's settings only: no TWILIO_EDGE / TWILIO_REGION from the worker's environment
        # rewriting the host (the SDK reads them when given none).
        client.edge = client.region = None
        client.api.base_url = base_url
        sender = {"from_": options["from"]} if options.get("from") else {}
        if options.get("messaging_service_sid"):
            sender["messaging_service_sid"] = options["messaging_service_sid"]
        where = outbound.redact_url(base_url)
        # The SDK sends HTTP basic auth built from these credentials: its base64 is scrubbed too.
        scrub = http.Scrub((base_url,), config, auth.sent_credentials(auth.headers(integration, config)))
        try:
            message = client.messages.create(to=data["to"], body=data["text"], **sender)
        except TwilioRestException as exc:
            raise _refusal(exc, http_client.last_response, scrub) from exc
        except outbound.BlockedDestination as exc:
            raise ProviderError(f"Not sent to {where}: {exc}", permanent=True) from exc
        except requests.Timeout as exc:
            raise ProviderError(f"Twilio at {where} timed out.", permanent=False, timed_out=True) from exc
        except requests.ConnectionError as exc:
            raise ProviderError(f"connection failed to Twilio at {where}.", permanent=False) from exc
        except (TwilioException, ValueError) as exc:  # an answer the SDK could not read
            raise ProviderError(scrub(f"Twilio answered unexpectedly: {exc}"), permanent=False) from exc
        status = http_client.last_response.status_code if http_client.last_response else None
        return Result(
            http_status=status,
            data={"sid": message.sid, "status": message.status, "to": message.to, "from": message.from_},
        )


def _refusal(exc: TwilioRestException, response: TwilioResponse | None, scrub: http.Scrub) -> ProviderError:
    """Twilio's error JSON {"code", "message", "more_info", "status"} as a ProviderError."""
    status = exc.status
    code, message = exc.code, exc.msg
    try:
        body = json.loads(response.text) if response is not None else {}
        code = body.get("code", code)
        message = body.get("message") or message
    except (ValueError, AttributeError):
        pass
    retryable = status >= 500 or status in RETRYABLE_HTTP_STATUSES or code == 20429
    retry_after = None
    if retryable and response is not None:
        retry_after = http.retry_after_seconds((response.headers or {}).get("Retry-After"))
    reason = f"Twilio refused the message (HTTP {status}, error {code}): {http.printable_line(str(message))}"
    return ProviderError(
        scrub(reason),
        permanent=not retryable,
        http_status=status,
        retry_after=retry_after,
    )


PROVIDER = TwilioSmsProvider()
