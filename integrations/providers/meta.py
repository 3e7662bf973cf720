"""Facebook Messenger and Instagram messaging through Meta's Graph API: providers "messenger" and
"instagram" (type social), one module, because both are Meta's Send API and Meta's webhooks.

Outbound, `send_message` {recipient_id (PSID / IGSID), text, messaging_type RESPONSE | UPDATE |
MESSAGE_TAG (with tag)} is POST {endpoint}/{version}/{page_id or "me"}/messages with JSON
{recipient: {id}, messaging_type, message: {text}, tag?}. Meta answers {recipient_id, message_id};
the message_id is the attempt's request_id. Auth is the Page access token (auth_type bearer,
auth_config {"token"}) sent as "Authorization: Bearer", which the Graph API takes like its
access_token parameter, so the token never sits in a URL. With auth_config "app_secret" every call
also carries appsecret_proof (HMAC-SHA256 of the token under the app secret), which Meta requires
when the app has "Require App Secret" on.

The endpoint is https://graph.facebook.com for both (Instagram messaging through the Page linked to
the professional account, with that Page's token: Meta's "Instagram API with Facebook Login"). An app
on "Instagram API with Instagram Login" sets endpoint_url https://graph.instagram.com and an Instagram
user token instead: the path and the body are the same. options: "version" (v25.0 unless set),
"page_id" (the path's id; "me", the token's own Page or account, when unset), "recipient_id" (who our
events go to: an ops person's PSID / IGSID), "tag" (our events are sent as MESSAGE_TAG with it, else as
UPDATE, which Meta delivers only within 24 hours of that person's last message), "incident_rules" (see
integrations.social), "language".

Errors come as {"error": {message, type, code, error_subcode, fbtrace_id}}; fbtrace_id is kept as the
attempt's request_id. Per Meta's error handling guide: 1, 2 and the Send API's 1200 are Meta's
temporary trouble, 4, 17, 32 and 613 rate limits (tried again after RATE_LIMIT_RETRY_SECONDS): both
retried. 190 (the token), 10 and 200-299 (permissions, or the 24-hour window: subcode 2018278), 100
(a parameter, e.g. an unknown recipient: subcode 2018001), 551 (the person is unavailable) and 368 (the
Page is blocked for a policy) are permanent. Meta has no idempotency key for sends: a retry after a
timeout may deliver a message twice, which in a chat is better than losing it.

Inbound (accepts_incoming), Meta calls /api/v1/integrations/<id>/incoming: the subscription check is
a GET with hub.mode=subscribe, hub.verify_token (compared with auth_config "verify_token") and
hub.challenge, echoed as text; every POST is signed "X-Hub-Signature-256: sha256=<hex>", HMAC-SHA256 of
the raw body under auth_config "app_secret". Anything else is a 403. Each customer text message in
entry[].messaging[] (object "page" for Messenger, "instagram" for Instagram: the channel follows the
payload's object, so either integration may take both) becomes a chat line and may open an incident
(integrations.social); echoes of our own sends, deliveries, reads and messages without text are
skipped. The answer is 200 "EVENT_RECEIVED".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from django.utils import timezone
from rest_framework import serializers

from integrations import credentials, rendering, social
from integrations.models import IntegrationType
from integrations.providers import http
from integrations.providers.base import CallContext, Incoming, IncomingAnswer, Provider, ProviderError, Result

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_VERSION = "v25.0"
VERSION = re.compile(r"^v[0-9]{1,3}\.[0-9]{1,2}$")
NUMERIC_ID = re.compile(r"^[0-9]{1,30}$")
MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")
MESSENGER_TAGS = (
    "ACCOUNT_UPDATE",
    "CONFIRMED_EVENT_UPDATE",
    "CUSTOMER_FEEDBACK",
    "HUMAN_AGENT",
    "POST_PURCHASE_UPDATE",
)
INSTAGRAM_TAGS = ("HUMAN_AGENT",)
MESSENGER_TEXT_CHARS = 2000  # the Send API's limit on message.text
INSTAGRAM_TEXT_BYTES = 1000  # Instagram's: UTF-8 bytes, about 330 Korean characters
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})
TEMPORARY_CODES = frozenset({1, 2, 1200})
PERMANENT_CODES = frozenset({3, 10, 100, 190, 368, 551, *range(200, 300)})
RATE_LIMIT_RETRY_SECONDS = 60.0
SIGNATURE_HEADER = "x-hub-signature-256"
# what each code means for whoever reads the failed message, in Meta's terms
CODE_HINTS = {
    1: "Meta had a temporary problem; tried again later",
    2: "Meta's service is temporarily down; tried again later",
    1200: "a temporary send failure at Meta; tried again later",
    4: "the app's Graph API rate limit is reached; tried again later",
    17: "the token's user rate limit is reached; tried again later",
    32: "the Page's rate limit is reached; tried again later",
    613: "the Send API's rate limit is reached; tried again later",
    190: "the access token is invalid or expired: generate a new Page access token and set auth_config.token",
    10: "the app lacks the permission for this call",
    100: "Meta refused a parameter",
    368: "the Page is temporarily blocked for a policy violation",
    551: "this person isn't available right now (they blocked the Page or left)",
}
SUBCODE_HINTS = {
    2018278: "the message is outside the 24-hour window: send it as MESSAGE_TAG with a tag (e.g. HUMAN_AGENT)",
    2018001: "no such recipient: the PSID / IGSID is not one of this Page's or account's customers",
    1545041: "this person isn't available right now",
}
# webhook entries' object -> our channel
CHANNEL_OF_OBJECT = {"page": "messenger", "instagram": "instagram"}


class SendMessageIn(serializers.Serializer):
    recipient_id = serializers.RegexField(
        NUMERIC_ID,
        error_messages={"invalid": "Enter the customer's PSID (Messenger) or IGSID (Instagram): digits only."},
    )
    text = serializers.CharField(max_length=MESSENGER_TEXT_CHARS, trim_whitespace=False)
    messaging_type = serializers.ChoiceField(MESSAGING_TYPES, default="RESPONSE")
    tag = serializers.ChoiceField(MESSENGER_TAGS, required=False)

    def validate(self, attrs: dict) -> dict:
        if attrs["messaging_type"] == "MESSAGE_TAG" and not attrs.get("tag"):
            raise serializers.ValidationError({"tag": "messaging_type MESSAGE_TAG needs a tag."})
        if attrs.get("tag") and attrs["messaging_type"] != "MESSAGE_TAG":
            raise serializers.ValidationError({"messaging_type": "A tag is sent with messaging_type MESSAGE_TAG."})
        return attrs


class InstagramSendMessageIn(SendMessageIn):
    tag = serializers.ChoiceField(INSTAGRAM_TAGS, required=False)

    def validate_text(self, text: str) -> str:
        if len(text.encode("utf-8")) > INSTAGRAM_TEXT_BYTES:
            raise serializers.ValidationError(
                f"Instagram takes at most {INSTAGRAM_TEXT_BYTES} bytes of UTF-8 text (about 330 Korean characters)."
            )
        return text


class MessengerProvider(Provider):
    name = "messenger"
    types = frozenset({IntegrationType.SOCIAL})
    methods: dict[str, type[serializers.Serializer]] = {"send_message": SendMessageIn}
    event_method = "send_message"
    needs_endpoint = False  # graph.facebook.com unless endpoint_url says otherwise
    auth_types = frozenset({"bearer"})
    accepts_incoming = True
    tags: tuple[str, ...] = MESSENGER_TAGS
    text_chars = MESSENGER_TEXT_CHARS
    text_bytes: int | None = None

    def check_integration(self, integration) -> dict[str, str]:
        errors = super().check_integration(integration)
        options = integration.options if isinstance(integration.options, dict) else {}
        problems = []
        if not VERSION.match(str(options.get("version", DEFAULT_VERSION))):
            problems.append(f'options.version is a Graph API version such as "{DEFAULT_VERSION}".')
        for name in ("page_id", "recipient_id"):
            value = options.get(name)
            if value not in (None, "") and not (isinstance(value, str) and NUMERIC_ID.match(value)):
                problems.append(f'options.{name} is a numeric id written as a string, e.g. "1234567890".')
        if options.get("tag") not in (None, "", *self.tags):
            problems.append(f"options.tag must be one of: {', '.join(self.tags)}.")
        rules_problem = social.incident_rule_problems(options)
        if rules_problem:
            problems.append(rules_problem)
        if problems:
            errors["options"] = " ".join(problems)
        try:
            config = integration.auth_config
        except credentials.CredentialError:
            config = None  # the model's own check says so
        if config is not None and not config.get("app_secret"):
            errors.setdefault(
                "auth_config",
                "Set auth_config.app_secret (the Meta app's secret): Meta's webhooks are verified with it.",
            )
        return errors

    def takes_events(self, integration) -> bool:
        """Only with someone to write to: an inbox-only integration hears none of our events."""
        options = integration.options if isinstance(integration.options, dict) else {}
        return bool(options.get("recipient_id"))

    def event_input(self, integration, event, payload, context) -> dict:
        options = integration.options or {}
        recipient = str(options.get("recipient_id") or "")
        if not recipient:
            raise ProviderError(
                f"{integration.integration_id} has no options.recipient_id, so our events cannot be sent to "
                "anyone: set it, or subscribe this integration to no events.",
                permanent=True,
            )
        text = self.event_text(event, payload, rendering.language_of(integration))
        if options.get("tag"):
            return {"recipient_id": recipient, "text": text, "messaging_type": "MESSAGE_TAG", "tag": options["tag"]}
        return {"recipient_id": recipient, "text": text, "messaging_type": "UPDATE"}

    def event_text(self, event: str, payload: dict, language: str) -> str:
        """The push notification's title and body, and the link: plain text within this platform's limit."""
        push = rendering.push_notification(event, payload, language=language)
        lines = [push["title"], push["body"]]
        if payload.get("url"):
            lines.append(str(payload["url"]))
        return _fit("\n".join(lines), chars=self.text_chars, utf8_bytes=self.text_bytes)

    def do_send_message(self, integration, data: dict, context: CallContext) -> Result:
        body: dict[str, Any] = {
            "recipient": {"id": data["recipient_id"]},
            "messaging_type": data.get("messaging_type") or "RESPONSE",
            "message": {"text": data["text"]},
        }
        if data.get("tag"):
            body["tag"] = data["tag"]
        try:
            result = http.send(
                integration, "POST", messages_url(integration), body=http.json_body(body), timeout=context.timeout
            )
        except ProviderError as exc:
            raise explained(exc) from exc
        answer = result.data if isinstance(result.data, dict) else {}
        message_id = answer.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            # Meta said yes without saying to what: not retried, as the message may well be out
            raise ProviderError(
                f"Meta answered HTTP {result.http_status} without a message_id: {http.excerpt_of(result.data)}",
                permanent=True,
                http_status=result.http_status,
            )
        return Result(
            http_status=result.http_status,
            data={"recipient_id": answer.get("recipient_id"), "message_id": message_id},
            request_id=message_id,
        )

    # --- webhooks -------------------------------------------------------------------------------

    def verify_incoming(self, integration, incoming: Incoming) -> bool:
        config = http.config_of(integration)
        if incoming.method == "GET":
            expected = str(config.get("verify_token") or "")
            given = incoming.query.get("hub.verify_token") or ""
            return bool(
                expected
                and incoming.query.get("hub.mode") == "subscribe"
                and incoming.query.get("hub.challenge")
                and hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
            )
        secret = str(config.get("app_secret") or "")
        given = incoming.headers.get(SIGNATURE_HEADER) or ""
        if incoming.method != "POST" or not secret or not given:
            return False
        expected = "sha256=" + hmac.new(secret.encode(), incoming.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "replace"))

    def receive(self, integration, incoming: Incoming) -> IncomingAnswer:
        if incoming.method == "GET":
            return IncomingAnswer(status=200, body=incoming.query["hub.challenge"])
        try:
            update = json.loads(incoming.body)
        except (ValueError, RecursionError):
            return IncomingAnswer(status=400, body={"detail": "The webhook body is not JSON."})
        kind = update.get("object") if isinstance(update, dict) else None
        channel = CHANNEL_OF_OBJECT.get(kind) if isinstance(kind, str) else None
        if channel is None:  # a field this integration does not handle (feed, comments, ...)
            return IncomingAnswer(status=200, body="EVENT_RECEIVED")
        for entry in _objects(update.get("entry")):
            account_id = str(entry.get("id") or "")
            for event in _objects(entry.get("messaging")):
                message = customer_text(event, account_id)
                if message is None:
                    continue
                sender_id, text, mid = message
                social.record_incoming_message(
                    integration,
                    channel=channel,
                    account_id=account_id,
                    sender_id=sender_id,
                    text=text,
                    external_id=mid,
                    sent_at=_sent_at(event.get("timestamp"), incoming.received_at),
                )
        return IncomingAnswer(status=200, body="EVENT_RECEIVED")


class InstagramProvider(MessengerProvider):
    name = "instagram"
    methods = {"send_message": InstagramSendMessageIn}
    tags = INSTAGRAM_TAGS
    text_chars = INSTAGRAM_TEXT_BYTES
    text_bytes = INSTAGRAM_TEXT_BYTES


def messages_url(integration) -> str:
    options = integration.options or {}
    base = (integration.endpoint_url or DEFAULT_BASE_URL).rstrip("/")
    version = str(options.get("version") or DEFAULT_VERSION)
    account = quote(str(options.get("page_id") or "me"), safe="")
    url = f"{base}/{version}/{account}/messages"
    config = http.config_of(integration)
    if config.get("app_secret"):
        url += "?" + urlencode({"appsecret_proof": appsecret_proof(config["app_secret"], config["token"])})
    return url


def appsecret_proof(app_secret: str, token: str) -> str:
    """Meta's proof that a call comes from the app's server: HMAC-SHA256 of the token, hex."""
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def customer_text(event: dict, account_id: str) -> tuple[str, str, str] | None:
    """(sender id, text, mid) of a customer's text message; None for everything else: our own sends
    echoed back, deliveries, reads, reactions, deleted or unsupported messages, attachments only."""
    message = event.get("message")
    sender = event.get("sender")
    if not isinstance(message, dict) or not isinstance(sender, dict):
        return None
    if message.get("is_echo") or message.get("is_deleted") or message.get("is_unsupported"):
        return None
    text, mid, sender_id = message.get("text"), message.get("mid"), str(sender.get("id") or "")
    if not isinstance(text, str) or not text.strip() or not isinstance(mid, str) or not mid:
        return None
    if not sender_id or sender_id == account_id:
        return None
    return sender_id, text, mid


def explained(error: ProviderError) -> ProviderError:
    """The same failure in Meta's words: its code (and subcode), what it means, its message and
    fbtrace_id, judged permanent or retryable by the code rather than by the HTTP status."""
    graph = error.answer.get("error") if isinstance(error.answer, dict) else None
    if not isinstance(graph, dict) or not isinstance(graph.get("code"), int):
        return error
    code, subcode = graph["code"], graph.get("error_subcode")
    hint = (
        SUBCODE_HINTS.get(subcode)
        or CODE_HINTS.get(code)
        or ("the token lacks a permission for this call" if 200 <= code < 300 else "see Meta's error codes")
    )
    if code in RATE_LIMIT_CODES or code in TEMPORARY_CODES:
        permanent = False
    elif code in PERMANENT_CODES:
        permanent = True
    else:
        permanent = error.permanent
    retry_after = error.retry_after
    if code in RATE_LIMIT_CODES:
        retry_after = max(retry_after or 0.0, RATE_LIMIT_RETRY_SECONDS)
    named = f"Meta Graph error {code}" + (f"/{subcode}" if isinstance(subcode, int) else "")
    said = http.printable_line(str(graph.get("message") or ""))
    kind = http.printable_line(str(graph.get("type") or ""), limit=60)
    trace = http.printable_line(str(graph.get("fbtrace_id") or ""), limit=60)
    details = "; ".join(part for part in (f"HTTP {error.http_status}", f"{kind}: {said}" if said else kind) if part)
    return error.retold(
        f"{named}: {hint}. ({details}" + (f"; fbtrace_id {trace})" if trace else ")"),
        permanent=permanent,
        retry_after=None if permanent else retry_after,
        request_id=trace,
    )


def _objects(value: Any) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _sent_at(timestamp: Any, received_at: datetime | None) -> datetime:
    """Meta's timestamps are milliseconds since the epoch; without one, when we received it."""
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool) and timestamp > 0:
        try:
            return datetime.fromtimestamp(timestamp / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return received_at or timezone.now()


def _fit(text: str, *, chars: int, utf8_bytes: int | None) -> str:
    """`text` cut (with "…") to `chars` characters and, when given, `utf8_bytes` bytes of UTF-8."""
    if len(text) > chars:
        text = text[: chars - 1] + "…"
    if utf8_bytes is not None and len(text.encode("utf-8")) > utf8_bytes:
        room = utf8_bytes - len("…".encode())
        text = text.encode("utf-8")[:room].decode("utf-8", errors="ignore") + "…"
    return text


MESSENGER = MessengerProvider()
INSTAGRAM = InstagramProvider()
