"""Firebase Cloud Messaging (HTTP v1): a push notification to one device token or to a topic.

POST {endpoint}/v1/projects/{project_id}/messages:send with {"message": {token|topic, notification,
data}}, authenticated by a Google service account: auth_type "service_account", auth_config the
fields of the account's JSON key file (client_email, private_key, token_uri, project_id, ...).
google-auth obtains the OAuth2 token (scope firebase.messaging) from the account's token_uri through
our SSRF guard (integrations.auth), and every worker shares it from Redis until it expires; FCM's 401
for an expired token gets one more try with a fresh one (integrations.providers.http).

The endpoint is https://fcm.googleapis.com unless the integration or settings.FCM_ENDPOINT_URL says
otherwise (tests point it at a local server, as the service account's token_uri). The project is
options["project_id"], else the service account's own project_id. Our events are pushed to
options["topic"] (or one device, options["token"]) in the integration's language.

FCM's verdicts (https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode): UNREGISTERED (404)
and INVALID_ARGUMENT (400) will be refused again, so they are not retried; QUOTA_EXCEEDED (429) and
UNAVAILABLE (503) are retried after the Retry-After FCM sends.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from django.conf import settings
from rest_framework import serializers

from integrations import credentials, rendering
from integrations.models import IntegrationType
from integrations.providers import http
from integrations.providers.base import CallContext, Provider, ProviderError, Result

DEFAULT_ENDPOINT = "https://fcm.googleapis.com"
MESSAGING_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TOPIC = re.compile(r"^[a-zA-Z0-9\-_.~%]{1,900}$")
PROJECT_ID = re.compile(r"^[a-z0-9][a-z0-9.:-]{0,99}$")
# Keys FCM keeps for itself in a message's data (a message using them is refused as INVALID_ARGUMENT).
RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type"})
RESERVED_DATA_PREFIXES = ("google", "gcm")
# What each of FCM's error codes means for whoever reads the failed message in the admin.
ERROR_HINTS = {
    "UNREGISTERED": "the device token is no longer registered (the app was removed or the token expired); "
    "stop sending to it",
    "INVALID_ARGUMENT": "FCM refused the message as invalid (a malformed token or topic, or a reserved data key)",
    "SENDER_ID_MISMATCH": "the token belongs to another Firebase project than this service account's",
    "PERMISSION_DENIED": "the service account may not send messages for this project",
    "QUOTA_EXCEEDED": "FCM's sending quota is used up for now; tried again after Retry-After",
    "UNAVAILABLE": "FCM is overloaded; tried again after Retry-After",
    "INTERNAL": "FCM failed inside; tried again later",
    "THIRD_PARTY_AUTH_ERROR": "the APNs or web push credentials in the Firebase project were refused",
}
CODE_BY_HTTP_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "UNREGISTERED",
    429: "QUOTA_EXCEEDED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class SendPushIn(serializers.Serializer):
    token = serializers.CharField(max_length=4096, required=False)
    topic = serializers.RegexField(
        TOPIC,
        required=False,
        error_messages={"invalid": "Enter a topic name: letters, digits and -_.~%% only (no /topics/ prefix)."},
    )
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=4000)
    data = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=4096), required=False)

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("token")) == bool(attrs.get("topic")):
            raise serializers.ValidationError({"token": "Give exactly one of token (one device) or topic."})
        reserved = sorted(key for key in attrs.get("data") or {} if _reserved(key))
        if reserved:
            raise serializers.ValidationError(
                {"data": f"FCM keeps these keys for itself: {', '.join(reserved)} (and any starting google or gcm)."}
            )
        return attrs


class FcmProvider(Provider):
    name = "fcm"
    types = frozenset({IntegrationType.NOTIFICATION})
    methods = {"send_push": SendPushIn}
    event_method = "send_push"
    needs_endpoint = False  # FCM's own endpoint unless one is given
    auth_types = frozenset({"service_account"})
    service_account_scopes = (MESSAGING_SCOPE,)  # read by integrations.auth

    def check_integration(self, integration) -> dict[str, str]:
        errors = super().check_integration(integration)
        options = integration.options if isinstance(integration.options, dict) else {}
        problems = []
        if not project_id(integration):
            problems.append('Give options.project_id (e.g. {"project_id": "my-app"}) or a service account with one.')
        elif not PROJECT_ID.match(project_id(integration)):
            problems.append("options.project_id is not a Firebase project id.")
        if bool(options.get("topic")) == bool(options.get("token")):
            problems.append(
                'Give options.topic (or options.token, one device) for our events, e.g. {"topic": "oncall"}.'
            )
        elif options.get("topic") and not TOPIC.match(str(options["topic"])):
            problems.append("options.topic: letters, digits and -_.~% only (no /topics/ prefix).")
        if problems:
            errors["options"] = " ".join(problems)
        return errors

    def event_input(self, integration, event, payload, context):
        options = integration.options or {}
        target = {"topic": options["topic"]} if options.get("topic") else {"token": options["token"]}
        return {**target, **rendering.push_notification(event, payload, language=rendering.language_of(integration))}

    def do_send_push(self, integration, data: dict, context: CallContext) -> Result:
        message: dict = {"token": data["token"]} if data.get("token") else {"topic": data["topic"]}
        message["notification"] = {"title": data["title"], "body": data["body"]}
        if data.get("data"):
            message["data"] = {str(key): str(value) for key, value in data["data"].items()}
        url = f"{endpoint(integration)}/v1/projects/{quote(project_id(integration), safe='')}/messages:send"
        try:
            return http.send(
                integration, "POST", url, body=http.json_body({"message": message}), timeout=context.timeout
            )
        except ProviderError as exc:
            raise _explained(exc) from exc


def endpoint(integration) -> str:
    return (integration.endpoint_url or getattr(settings, "FCM_ENDPOINT_URL", "") or DEFAULT_ENDPOINT).rstrip("/")


def project_id(integration) -> str:
    """options.project_id, else the service account's own project_id (a public field of its key file)."""
    options = integration.options if isinstance(integration.options, dict) else {}
    if options.get("project_id"):
        return str(options["project_id"])
    try:
        return str(integration.auth_config.get("project_id") or "")
    except credentials.CredentialError:
        return ""


def _reserved(key: str) -> bool:
    return key in RESERVED_DATA_KEYS or key.lower().startswith(RESERVED_DATA_PREFIXES)


def _explained(error: ProviderError) -> ProviderError:
    """The same verdict, said in FCM's words: its error code (the FcmError detail of its google.rpc
    answer, else the answer's status, else what the HTTP status means), what to do about it, and
    FCM's message (read from the whole answer, scrubbed by http.send)."""
    if error.http_status is None or error.http_status < 400 or error.http_status == 401:
        return error
    rpc = error.answer.get("error") if isinstance(error.answer, dict) else None
    rpc = rpc if isinstance(rpc, dict) else {}
    details = rpc.get("details") if isinstance(rpc.get("details"), list) else []
    # the FcmError detail is the one with an errorCode (its @type names googleapis.com, which a service
    # account's config also holds, so scrubbing may have masked it)
    named = [item["errorCode"] for item in details if isinstance(item, dict) and isinstance(item.get("errorCode"), str)]
    code = next((name for name in (*named, rpc.get("status")) if name in ERROR_HINTS), None)
    code = code or CODE_BY_HTTP_STATUS.get(error.http_status)
    if code is None:
        return error
    message = rpc.get("message")
    said = f"HTTP {error.http_status}: {http.printable_line(message)}" if isinstance(message, str) else error.reason
    return error.retold(f"FCM {code}: {ERROR_HINTS[code]}. ({said})")


PROVIDER = FcmProvider()
