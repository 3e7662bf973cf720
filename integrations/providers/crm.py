"""What the CRM providers (Salesforce, HubSpot, Dynamics 365) share: the input of their four methods,
how our events become CRM records, and how a CRM's error answer becomes a readable ProviderError.

Every CRM takes the same four methods with the same input, so a caller (the contact center asking
"who is calling?") does not care which CRM sits behind an integration; each module only translates
them into its REST dialect, through integrations.providers.http (SSRF guard, timeouts, OAuth2
refreshed once on a 401). `get_customer_info` answers one shape for all three:
`{count, customers: [{id, name, first_name, last_name, email, phone, mobile_phone, record}]}`, where
`record` is the CRM's own answer for that contact.

Our events go through one provider method, `record_event`, that is not callable through the API:
`recording.stored` becomes `log_interaction` (skipped, with the reason as the result, when the
recording names no customer), every other event a case (`create_case`) whose text is the email
rendering of the event in the integration's language and whose priority follows the severity.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from rest_framework import serializers

from config.errors import InvalidInput
from integrations import rendering
from integrations.models import IntegrationType
from integrations.providers import http
from integrations.providers.base import CallContext, Provider, ProviderError, Result

PRIORITIES = ("low", "medium", "high")
SEVERITY_PRIORITY = {"critical": "high", "high": "high", "warning": "medium", "info": "low"}
CHANNELS = ("voice", "chat", "email", "sms")
EVENT_METHOD = "record_event"
INTERACTION_EVENT = "recording.stored"
LOOKUP_LIMIT = 10
SUBJECT_MAX_CHARS = 200


class CustomerIdField(serializers.RegexField):
    """A CRM record id: letters, digits, - and _ only (it goes into a URL path); each CRM checks its
    own form on top (see CrmProvider.customer_id_pattern)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("error_messages", {"invalid": "Enter a CRM record id (letters, digits, - and _)."})
        super().__init__(r"^[A-Za-z0-9_-]+$", **kwargs)


class PhoneField(serializers.RegexField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("error_messages", {"invalid": "Enter a phone number (digits, +, spaces, ( ) . -)."})
        super().__init__(r"^\+?[0-9][0-9 ().-]{2,31}$", **kwargs)


class GetCustomerInfoIn(serializers.Serializer):
    customer_id = CustomerIdField(required=False)
    phone = PhoneField(required=False)
    email = serializers.EmailField(max_length=254, required=False)

    def validate(self, attrs: dict) -> dict:
        if len([key for key in ("customer_id", "phone", "email") if attrs.get(key)]) != 1:
            raise serializers.ValidationError({"customer_id": "Give exactly one of customer_id, phone or email."})
        return attrs


class UpsertCustomerIn(serializers.Serializer):
    """customer_id: update that contact. Without it, the contact with this email is updated, or
    created when there is none."""

    customer_id = CustomerIdField(required=False)
    email = serializers.EmailField(max_length=254, required=False)
    first_name = serializers.CharField(max_length=40, required=False)
    last_name = serializers.CharField(max_length=80, required=False)
    phone = PhoneField(required=False)
    mobile_phone = PhoneField(required=False)

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("customer_id") and not attrs.get("email"):
            raise serializers.ValidationError({"email": "Give customer_id (update) or email (update or create)."})
        return attrs


class LogInteractionIn(serializers.Serializer):
    customer_id = CustomerIdField()
    channel = serializers.ChoiceField(choices=CHANNELS, default="voice")
    summary = serializers.CharField(max_length=4000)
    started_at = serializers.DateTimeField()
    duration_seconds = serializers.IntegerField(min_value=0, max_value=7 * 24 * 3600)
    recording_id = serializers.CharField(max_length=100, required=False)
    recording_url = serializers.URLField(max_length=2000, required=False)


class CreateCaseIn(serializers.Serializer):
    subject = serializers.CharField(max_length=SUBJECT_MAX_CHARS)
    description = serializers.CharField(max_length=32000, required=False, allow_blank=True, default="")
    priority = serializers.ChoiceField(choices=PRIORITIES, default="medium")
    customer_id = CustomerIdField(required=False)


METHODS: dict[str, type[serializers.Serializer]] = {
    "get_customer_info": GetCustomerInfoIn,
    "upsert_customer": UpsertCustomerIn,
    "log_interaction": LogInteractionIn,
    "create_case": CreateCaseIn,
}


class CrmProvider(Provider):
    """The shared half of a CRM provider; a subclass writes the four `do_<method>` and `label`."""

    types = frozenset({IntegrationType.CRM})
    methods = METHODS
    event_method = EVENT_METHOD
    label: str = ""  # the CRM's name in error texts
    error_code_keys: tuple[str, ...] = ("errorCode", "category", "code")  # where its JSON errors keep a code
    customer_id_pattern: re.Pattern[str] = re.compile(r".")
    customer_id_form: str = ""  # what a customer id of this CRM looks like, for the 400

    def validate(self, payload: Any) -> tuple[str, dict]:
        method, data = super().validate(payload)
        customer_id = data.get("customer_id")
        if customer_id and not self.customer_id_pattern.fullmatch(customer_id):
            raise InvalidInput(
                f"Invalid input for {self.name}.{method}: payload.customer_id.",
                fields={"payload.customer_id": f"Enter a {self.customer_id_form}."},
            )
        return method, data

    def event_input(self, integration, event: str, payload: dict, context: CallContext) -> dict:
        if event == INTERACTION_EVENT:
            if not payload.get("customer_id"):
                return {"method": "", "skipped": "Not logged: the recording names no customer."}
            return {"method": "log_interaction", "input": interaction_from_recording(payload)}
        return {"method": "create_case", "input": case_from_event(integration, event, payload, context)}

    def call(self, integration, method: str, data: dict, context: CallContext) -> Result:
        if method == EVENT_METHOD:
            if not data.get("method"):
                return Result(data={"skipped": data.get("skipped", "")})
            method, data = data["method"], data["input"]
        # Validated again: stored payloads come back from JSON (a date is a string again), and an
        # event's input was built here, not checked by the API.
        try:
            method, data = self.validate({**data, "method": method})
        except InvalidInput as exc:
            raise ProviderError(f"{exc.message} {_fields_text(exc)}".strip(), permanent=True) from exc
        return getattr(self, f"do_{method}")(integration, data, context)

    def send(
        self,
        integration,
        method: str,
        url: str,
        context: CallContext,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Result:
        """http.send with a JSON body, and the CRM's error message made the error's text."""
        try:
            return http.send(
                integration,
                method,
                url,
                body=None if body is None else http.json_body(body),
                headers=headers,
                timeout=context.timeout,
            )
        except ProviderError as exc:
            raise self.readable_error(exc) from exc

    def field(self, answer: Result, key: str) -> Any:
        """`key` of the CRM's JSON answer; a 2xx without it is permanent (the write may have happened:
        sending again could make a second record)."""
        if isinstance(answer.data, dict) and key in answer.data:
            return answer.data[key]
        raise ProviderError(
            f"{self.label} answered HTTP {answer.http_status} without {key!r}: {http.excerpt_of(answer.data)}",
            permanent=True,
            http_status=answer.http_status,
        )

    def readable_error(self, exc: ProviderError) -> ProviderError:
        """ "Salesforce answered HTTP 400 REQUIRED_FIELD_MISSING: Required fields are missing: [LastName]"
        from the CRM's whole answer (http.send read and scrubbed it), so a long message does not hide the
        code after it; the error as it was when the answer is not the CRM's JSON."""
        message = error_field(exc.answer, "message")
        if exc.http_status is None or message is None:
            return exc
        code = next((value for key in self.error_code_keys if (value := error_field(exc.answer, key))), None)
        code = http.printable_line(code, limit=100) if code else None
        reason = f"{self.label} answered HTTP {exc.http_status}" + (f" {code}" if code else "")
        reason += f": {http.printable_line(message)}"
        return exc.retold(reason, permanent=exc.permanent and not self.is_retryable_code(code))

    def is_retryable_code(self, code: str | None) -> bool:
        """A CRM that says "try later" with a 4xx (Salesforce's REQUEST_LIMIT_EXCEEDED is a 403)."""
        return False


def error_field(answer: Any, name: str, depth: int = 4) -> str | None:
    """The first `name` in a CRM's JSON error: Salesforce's `[{"message", "errorCode"}]`, HubSpot's
    `{"message", "category"}`, Dataverse's `{"error": {"code", "message"}}`. A level's own fields come
    before those nested in it; no CRM nests its error deeper than `depth`."""
    if depth < 0:
        return None
    if isinstance(answer, dict):
        value = answer.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value)
        nested = answer.values()
    elif isinstance(answer, list):
        nested = answer
    else:
        return None
    return next((found for item in nested if (found := error_field(item, name, depth - 1)) is not None), None)


def customers(records: list[dict], normalise) -> dict:
    """The one answer shape of get_customer_info for every CRM."""
    found = [{**normalise(record), "record": record} for record in records]
    return {"count": len(found), "customers": found}


def case_from_event(integration, event: str, payload: dict, context: CallContext) -> dict:
    """A case written like our email about the event, in the integration's language."""
    language = rendering.language_of(integration)
    case = {
        "subject": rendering.email_subject(event, payload, language=language)[:SUBJECT_MAX_CHARS],
        "description": rendering.email_body(event, payload, message_id=context.message_id, language=language),
        "priority": SEVERITY_PRIORITY.get(str(payload.get("severity") or "").lower(), "medium"),
    }
    if payload.get("customer_id"):
        case["customer_id"] = str(payload["customer_id"])
    return case


def interaction_from_recording(payload: dict) -> dict:
    """A stored recording (voice call or chat) as an interaction on the customer's record."""
    channel = "chat" if payload.get("kind") == "chat" else "voice"
    what = "Chat" if channel == "chat" else "Call"
    parts = [f"{what} recorded"]
    if payload.get("agent_id"):
        parts.append(f"agent {payload['agent_id']}")
    if payload.get("session_id"):
        parts.append(f"session {payload['session_id']}")
    interaction = {
        "customer_id": str(payload["customer_id"]),
        "channel": channel,
        "summary": ", ".join(parts) + ".",
        "started_at": payload.get("started_at") or payload.get("stored_at"),
        "duration_seconds": round(float(payload.get("duration_seconds") or 0)),
        "recording_id": str(payload.get("recording_id") or ""),
    }
    if payload.get("url"):
        interaction["recording_url"] = payload["url"]
    return {key: value for key, value in interaction.items() if value not in ("", None)}


def interaction_title(data: dict) -> str:
    what = {"voice": "Call", "chat": "Chat", "email": "Email", "sms": "SMS"}[data["channel"]]
    summary = " ".join(data["summary"].split())
    title = f"{what}: {summary}"
    return title if len(title) <= SUBJECT_MAX_CHARS else title[: SUBJECT_MAX_CHARS - 1] + "…"


def interaction_text(data: dict) -> str:
    """The interaction's description: the summary, then the facts a CRM has no field for."""
    lines = [data["summary"], "", f"Channel: {data['channel']}", f"Started: {data['started_at'].isoformat()}"]
    lines.append(f"Duration: {data['duration_seconds']} s")
    if data.get("recording_id"):
        lines.append(f"Recording: {data['recording_id']}")
    if data.get("recording_url"):
        lines.append(f"Recording link: {data['recording_url']}")
    return "\n".join(lines)


def ended_at(data: dict):
    return data["started_at"] + timedelta(seconds=data["duration_seconds"])


def _fields_text(exc: InvalidInput) -> str:
    return " ".join(f"{name}: {text}" for name, text in exc.fields.items())
