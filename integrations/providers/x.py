"""X (Twitter) API v2: a post (`create_post`, POST /2/tweets) and a direct message (`send_dm`, POST
/2/dm_conversations/with/{participant_id}/messages), on behalf of one X account; and that account's
incoming direct messages through the Account Activity API's webhook.

Authentication, both in the user context X requires for posting and DMs (integrations.auth):
- auth_type "oauth1": auth_config {consumer_key, consumer_secret, access_token, access_token_secret};
  each request is signed HMAC-SHA1 (OAuth 1.0a).
- auth_type "oauth2_refresh_token": auth_config {token_url (https://api.x.com/2/oauth2/token),
  client_id, client_secret (confidential clients), refresh_token} from the OAuth 2.0 authorization
  code flow with PKCE and the offline.access scope. X rotates the refresh token on every refresh; the
  new one is sealed into auth_config at once.
endpoint_url: the API's base, https://api.x.com when blank.

Options: {"participant_id": "<X user id>"} where our events go as a DM, or {"post_events": true} to
post them publicly instead (off by default: an incident's words are not for everyone); "account_id":
the X user id of our own account (incoming DMs it sent itself are not recorded); "language".

X's verdicts: 401 (after one refresh of an OAuth2 token) and 403 (duplicate content, a DM the user
does not accept, missing permission) are permanent; 429 and 5xx are retried, a 429 after the end of
X's rate-limit window (its x-rate-limit-reset header, epoch seconds, read by http.send). X has no
idempotency key: a post whose first attempt timed out may have gone out, and X refuses the retry as
a duplicate (the failure says so).

Webhooks (Account Activity API) arrive at /api/v1/integrations/<id>/incoming, signed with the app's
consumer secret: auth_config "consumer_secret" (an OAuth2 integration adds it for webhooks; without it
every webhook is refused). X's GET challenge (crc_token) is answered with
{"response_token": "sha256=" + base64(HMAC-SHA256(consumer secret, crc_token))}; a POST must carry
x-twitter-webhooks-signature = "sha256=" + base64(HMAC-SHA256(consumer secret, raw body)). A
crc_token must look like one X sends (no JSON): the challenge would otherwise sign any body we are
sent, forging the POST signature. Direct messages from others become chat lines
(integrations.social), once each however often X redelivers them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import unicodedata
from datetime import UTC, datetime
from urllib.parse import quote

from django.utils import timezone
from rest_framework import serializers

from integrations import credentials, rendering, social
from integrations.models import IntegrationType
from integrations.providers import http
from integrations.providers.base import CallContext, Incoming, IncomingAnswer, Provider, ProviderError, Result

DEFAULT_BASE_URL = "https://api.x.com"
USER_ID = re.compile(r"^[0-9]{1,19}$")
POST_MAX_WEIGHT = 280
DM_MAX_CHARS = 10000
# X's weighted count (twitter-text's configuration v3): code points in these ranges count one
# character, every other two; a link counts as the t.co link it becomes.
ONE_CHARACTER_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
LINK_WEIGHT = 23
LINK = re.compile(r"https?://\S+", re.IGNORECASE)
# parts of an emoji sequence that add nothing to its count of two: joiner, variation selectors,
# skin tones (and whatever a joiner joins)
EMOJI_PARTS = frozenset({0x200D, 0xFE0E, 0xFE0F, *range(0x1F3FB, 0x1F400)})
CRC_TOKEN = re.compile(r"^[A-Za-z0-9+/=_.:-]{8,256}$")
SIGNATURE_HEADER = "x-twitter-webhooks-signature"


def weighted_length(text: str) -> int:
    """The length X counts for a post (NFC, CJK and emoji two, a link 23)."""
    text = unicodedata.normalize("NFC", text)
    total = 0
    for index, part in enumerate(LINK.split(text)):
        total += (LINK_WEIGHT if index else 0) + _plain_weight(part)
    return total


def _plain_weight(text: str) -> int:
    total, joined = 0, False
    for char in text:
        point = ord(char)
        if joined or point in EMOJI_PARTS:
            weight = 0
        elif any(start <= point <= end for start, end in ONE_CHARACTER_RANGES):
            weight = 1
        else:
            weight = 2
        joined = point == 0x200D
        total += weight
    return total


def _cut_to_weight(text: str, limit: int) -> str:
    """`text`, or the longest start of it found (a binary search) that X counts within `limit` with "…"."""
    if weighted_length(text) <= limit:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if weighted_length(text[:middle].rstrip() + "…") <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…"


class CreatePostIn(serializers.Serializer):
    text = serializers.CharField(max_length=4 * POST_MAX_WEIGHT)
    reply_to = serializers.RegexField(
        USER_ID, required=False, error_messages={"invalid": "Give the id of the post to reply to (digits)."}
    )

    def validate_text(self, text: str) -> str:
        length = weighted_length(text)
        if length > POST_MAX_WEIGHT:
            raise serializers.ValidationError(
                f"X counts this text as {length} characters; a post takes at most {POST_MAX_WEIGHT} "
                f"(Korean, Chinese and Japanese characters and emoji count two, a link {LINK_WEIGHT})."
            )
        return text


class SendDmIn(serializers.Serializer):
    participant_id = serializers.RegexField(
        USER_ID, error_messages={"invalid": "Give the recipient's X user id (digits), not the @handle."}
    )
    text = serializers.CharField(max_length=DM_MAX_CHARS)


class XProvider(Provider):
    name = "x"
    types = frozenset({IntegrationType.SOCIAL})
    methods = {"create_post": CreatePostIn, "send_dm": SendDmIn}
    event_method = "send_dm"
    needs_endpoint = False  # https://api.x.com unless endpoint_url says otherwise
    auth_types = frozenset({"oauth1", "oauth2_refresh_token"})
    accepts_incoming = True

    def check_integration(self, integration) -> dict[str, str]:
        errors = super().check_integration(integration)
        options = integration.options if isinstance(integration.options, dict) else {}
        problems = []
        posts = options.get("post_events", False)
        if not isinstance(posts, bool):
            problems.append("options.post_events must be true or false.")
        participant = options.get("participant_id")
        if participant is not None and not (isinstance(participant, str) and USER_ID.match(participant)):
            problems.append("options.participant_id must be an X user id in digits (a string).")
        elif participant is None and posts is not True:
            problems.append(
                "Set options.participant_id to the X user id our events are sent to as a DM, e.g. "
                '{"participant_id": "1234567890"}, or {"post_events": true} to post them publicly.'
            )
        account = options.get("account_id")
        if account is not None and not (isinstance(account, str) and USER_ID.match(account)):
            problems.append("options.account_id must be our own X user id in digits (a string).")
        rules_problem = social.incident_rule_problems(options)
        if rules_problem:
            problems.append(rules_problem)
        if problems:
            errors["options"] = " ".join(problems)
        return errors

    def event_input(self, integration, event, payload, context):
        language = rendering.language_of(integration)
        options = integration.options or {}
        if options.get("post_events") is True:
            return {"method": "create_post", "text": post_text(event, payload, language)}
        return {
            "method": "send_dm",
            "participant_id": options["participant_id"],
            "text": dm_text(event, payload, language),
        }

    def call(self, integration, method: str, data: dict, context: CallContext) -> Result:
        # an event's input names its method (a DM, or a post when options.post_events says so)
        method = data.get("method", method)
        return getattr(self, f"do_{method}")(integration, {k: v for k, v in data.items() if k != "method"}, context)

    def do_create_post(self, integration, data: dict, context: CallContext) -> Result:
        body: dict = {"text": data["text"]}
        if data.get("reply_to"):
            body["reply"] = {"in_reply_to_tweet_id": data["reply_to"]}
        answer = _send(integration, "/2/tweets", body, context, doing="the post")
        post = answer.data.get("data") if isinstance(answer.data, dict) else None
        if not isinstance(post, dict) or not post.get("id"):
            raise ProviderError("X answered without the new post's id.", permanent=True, http_status=answer.http_status)
        return Result(http_status=answer.http_status, data=post, request_id=str(post["id"]))

    def do_send_dm(self, integration, data: dict, context: CallContext) -> Result:
        path = f"/2/dm_conversations/with/{quote(data['participant_id'], safe='')}/messages"
        answer = _send(integration, path, {"text": data["text"]}, context, doing="the direct message")
        sent = answer.data.get("data") if isinstance(answer.data, dict) else None
        if not isinstance(sent, dict) or not sent.get("dm_event_id"):
            raise ProviderError("X answered without the DM's event id.", permanent=True, http_status=answer.http_status)
        return Result(http_status=answer.http_status, data=sent, request_id=str(sent["dm_event_id"]))

    # --- the Account Activity API's webhook -----------------------------------------------------

    def verify_incoming(self, integration, incoming: Incoming) -> bool:
        secret = _webhook_secret(integration)
        if not secret:
            return False
        if incoming.method == "GET":
            return bool(CRC_TOKEN.match(incoming.query.get("crc_token") or ""))
        if incoming.method != "POST":
            return False
        given = incoming.headers.get(SIGNATURE_HEADER, "")
        return hmac.compare_digest(given.encode(), _signature(secret, incoming.body).encode())

    def receive(self, integration, incoming: Incoming) -> IncomingAnswer:
        if incoming.method == "GET":
            token = incoming.query["crc_token"].encode()
            return IncomingAnswer(200, {"response_token": _signature(_webhook_secret(integration), token)})
        try:
            activity = json.loads(incoming.body)
        except (ValueError, RecursionError):
            return IncomingAnswer(400, {"detail": "The body is not JSON."})
        if not isinstance(activity, dict):
            return IncomingAnswer(400, {"detail": "The body is not a JSON object."})
        record_direct_messages(integration, activity, incoming.received_at or timezone.now())
        return IncomingAnswer(200, {})


def dm_text(event: str, payload: dict, language: str) -> str:
    """Our event as a DM, plain text as the other social channels say it: the push notification's
    title ("[CRITICAL] 아무도 확인하지 않음"), its body (the summary and facts), and the link."""
    push = rendering.push_notification(event, payload, language=language)
    link = _link(payload)
    return "\n".join([push["title"], push["body"], *([link] if link else [])])[:DM_MAX_CHARS]


def post_text(event: str, payload: dict, language: str) -> str:
    """Our event as a post: "[CRITICAL] 아무도 확인하지 않음: Disk full on db-1. 심각도: 치명. ..." cut to
    what X takes, the link (when the event has one) kept whole at the end."""
    push = rendering.push_notification(event, payload, language=language)
    text = f"{push['title']}: {push['body']}"
    link = _link(payload)
    if link:
        return f"{_cut_to_weight(text, POST_MAX_WEIGHT - LINK_WEIGHT - 1)} {link}"
    return _cut_to_weight(text, POST_MAX_WEIGHT)


def _link(payload: dict) -> str:
    link = payload.get("url")
    return link if isinstance(link, str) and LINK.fullmatch(link) else ""


def record_direct_messages(integration, activity: dict, received_at: datetime) -> int:
    """Each direct message someone else sent our account, as a chat line (and perhaps an incident,
    by the integration's incident rules); how many were new (a redelivery adds none)."""
    options = integration.options if isinstance(integration.options, dict) else {}
    account = str(activity.get("for_user_id") or options.get("account_id") or "")
    ours = {account, str(options.get("account_id") or "")} - {""}
    users = activity.get("users") if isinstance(activity.get("users"), dict) else {}
    events = activity.get("direct_message_events")
    recorded = 0
    for event in events if isinstance(events, list) else []:
        if not isinstance(event, dict) or event.get("type") != "message_create":
            continue
        create = event.get("message_create") if isinstance(event.get("message_create"), dict) else {}
        sender = str(create.get("sender_id") or "")
        message = create.get("message_data") if isinstance(create.get("message_data"), dict) else {}
        text = str(message.get("text") or "")
        if not sender or sender in ours or not event.get("id") or not text.strip():
            continue  # ours echoed back, or a DM with only media: nothing for the chat log (as on Meta)
        user = users.get(sender) if isinstance(users.get(sender), dict) else {}
        outcome = social.record_incoming_message(
            integration,
            channel="x",
            account_id=account,
            sender_id=sender,
            sender_name=str(user.get("name") or user.get("screen_name") or ""),
            text=text,
            external_id=str(event["id"]),
            sent_at=_sent_at(event.get("created_timestamp"), received_at),
        )
        recorded += 1 if outcome.recorded else 0
    return recorded


def _sent_at(milliseconds: object, received_at: datetime) -> datetime:
    """X's created_timestamp (epoch milliseconds, a string), else when we received the webhook."""
    text = str(milliseconds or "")
    return datetime.fromtimestamp(int(text) / 1000, tz=UTC) if text.isdigit() else received_at


def _webhook_secret(integration) -> str:
    try:
        secret = integration.auth_config.get("consumer_secret")
    except credentials.CredentialError:
        return ""
    return secret if isinstance(secret, str) else ""


def _signature(secret: str, message: bytes) -> str:
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def _send(integration, path: str, body: dict, context: CallContext, *, doing: str) -> Result:
    url = (integration.endpoint_url or DEFAULT_BASE_URL).rstrip("/") + path
    try:
        return http.send(integration, "POST", url, body=http.json_body(body), timeout=context.timeout)
    except ProviderError as exc:
        raise _explained(exc, doing, context) from exc


def _explained(error: ProviderError, doing: str, context: CallContext) -> ProviderError:
    """The same verdict in X's words: its problem's title and detail ({"title", "detail", "type",
    "status"}) and each of its errors ({"errors": [{"message", "code"}]})."""
    answer = error.answer if isinstance(error.answer, dict) else {}
    said = [http.printable_line(answer[key]) for key in ("title", "detail") if isinstance(answer.get(key), str)]
    for item in answer.get("errors") if isinstance(answer.get("errors"), list) else []:
        if isinstance(item, dict) and isinstance(item.get("message"), str):
            code = f" (code {item['code']})" if isinstance(item.get("code"), int) else ""
            said.append(http.printable_line(item["message"]) + code)
    if not said or error.http_status is None:
        return error
    reason = f"X refused {doing} (HTTP {error.http_status}): {': '.join(said[:2])}"
    if len(said) > 2:
        reason += " " + "; ".join(said[2:])
    if error.http_status == 403 and context.attempt > 1 and "duplicate" in reason.lower():
        reason += " (an earlier attempt of this message timed out: it was probably posted then)"
    return error.retold(reason)


PROVIDER = XProvider()
