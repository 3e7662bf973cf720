"""The provider interface: one module per external system, each declaring its methods and their input.

A provider is an object with a `name`, the integration `types` it serves, and `methods`: a mapping
from method name to a DRF serializer class describing the input. `validate()` checks a payload
before anything is sent (an unknown method is a 400 listing the provider's methods, a bad field a
400 naming it); `call()` runs a validated method and returns a `Result` or raises `ProviderError`,
which says whether trying again can help. `event_input()` turns one of our events into the input of
the provider's natural method for events (a POST for a webhook, a message for Slack, an email).

Adding a provider (CRM, SMS, push, payments, social): write a module with a `Provider` subclass,
its serializers and `do_<method>` functions, and list it in integrations/providers/__init__.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rest_framework import serializers

from config.errors import InvalidInput
from integrations import auth

if TYPE_CHECKING:
    from integrations.models import Integration


@dataclass(frozen=True)
class Result:
    """A provider's answer: the HTTP status when there was one, and the data the caller gets back."""

    http_status: int | None = None
    data: Any = None
    # the id this call is known by at the provider (Toss's Idempotency-Key, an Inicis tid, a Graph
    # message id): kept on the delivery attempt, so every payment call can be traced at the provider
    request_id: str = ""


class ProviderError(Exception):
    """The provider refused or could not be reached. `reason` is already scrubbed of secrets.

    permanent: retrying cannot help (most 4xx, an SMTP 5xx); timed_out: no answer in time.
    answer: the provider's own refusal, JSON decoded and scrubbed like `reason` (None when it was not
    JSON), for reading its error code and message; never stored or logged as it is."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool,
        http_status: int | None = None,
        retry_after: float | None = None,
        timed_out: bool = False,
        answer: Any = None,
        request_id: str = "",
    ):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.http_status = http_status
        self.retry_after = retry_after
        self.timed_out = timed_out
        self.answer = answer
        self.request_id = request_id

    def retold(self, reason: str, **changes: Any) -> ProviderError:
        """The same failure in the provider's own words (its code and message), everything else kept
        unless `changes` says otherwise (permanent, retry_after, answer, request_id, ...)."""
        fields = {
            "permanent": self.permanent,
            "http_status": self.http_status,
            "retry_after": self.retry_after,
            "timed_out": self.timed_out,
            "answer": self.answer,
            "request_id": self.request_id,
        }
        fields.update(changes)
        return ProviderError(reason, **fields)


@dataclass(frozen=True)
class CallContext:
    """What a call knows besides its input: the message it belongs to, and how long it may take."""

    message_id: int | None = None
    event: str = ""
    timeout: tuple[float, float] | None = None  # (connect, read); None: the settings' default
    # 1 for a message's first try. A later one follows a try that failed, possibly after the
    # provider acted (a timeout): a payment provider queries the state before it acts again.
    attempt: int = 1


@dataclass(frozen=True)
class Incoming:
    """A request a provider sent us (a webhook), as received: verified by the provider's
    `verify_incoming` before `receive` reads it."""

    method: str  # GET (a subscription challenge) or POST
    headers: dict[str, str]  # lower-cased names
    query: dict[str, str]
    body: bytes
    received_at: Any = None  # a datetime


@dataclass(frozen=True)
class IncomingAnswer:
    """What we answer the provider: Meta wants its challenge echoed as text, most want a plain 200."""

    status: int = 200
    body: Any = None  # a dict is sent as JSON, a str as text/plain


class Provider(ABC):
    """Subclasses set the class attributes and write one `do_<method>(integration, data, context)` each."""

    name: str = ""
    types: frozenset[str] = frozenset()
    methods: dict[str, type[serializers.Serializer]] = {}
    event_method: str = ""
    needs_endpoint: bool = True
    # a URL whose path is a credential (a Slack incoming webhook): shown as scheme://host/… only
    secret_endpoint: bool = False
    auth_types: frozenset[str] = frozenset(auth.REQUIRED_KEYS)
    # the OAuth2 scopes of a service account's token (auth_type service_account), e.g. FCM's
    # firebase.messaging; empty: integrations.auth asks for cloud-platform
    service_account_scopes: tuple[str, ...] = ()
    # methods that move money back to a customer (a cancel, a refund): only a person with the
    # SUPERVISOR role or above, or an API key with the payments:refund scope, may call them, and each
    # call is audited (integrations.apis, integrations.services)
    refund_methods: frozenset[str] = frozenset()
    # True: the provider sends us webhooks at /api/v1/integrations/<id>/incoming, checked by
    # verify_incoming (a forged one is a 403) and handled by receive
    accepts_incoming: bool = False

    def check_integration(self, integration: Integration) -> dict[str, str]:
        """Field errors of an integration this provider would serve (the model's clean() calls it)."""
        errors: dict[str, str] = {}
        if integration.type not in self.types:
            errors["type"] = f"The {self.name} provider serves type {' or '.join(sorted(self.types))}."
        if integration.auth_type not in self.auth_types:
            errors["auth_type"] = f"The {self.name} provider takes auth_type {', '.join(sorted(self.auth_types))}."
        # a provider with a default endpoint may be given another (a test server, a VPC endpoint):
        # whatever is given is checked like a required one
        if self.needs_endpoint or integration.endpoint_url:
            problem = integration.check_endpoint_url()
            if problem:
                errors["endpoint_url"] = problem
        return errors

    def validate(self, payload: Any) -> tuple[str, dict]:
        """(method, validated input) of a message payload {method, ...}; InvalidInput (400) otherwise."""
        if not isinstance(payload, dict):
            raise InvalidInput("payload must be a JSON object with a 'method'.", fields={"payload": "Not an object."})
        method = payload.get("method")
        known = ", ".join(sorted(self.methods))
        if method not in self.methods:
            raise InvalidInput(
                f"Unknown method {method!r} for provider {self.name}; its methods are: {known}.",
                fields={"payload.method": f"Choose one of: {known}."},
            )
        schema = self.methods[method](data={key: value for key, value in payload.items() if key != "method"})
        if not schema.is_valid():
            fields = {f"payload.{name}": _first(problems) for name, problems in schema.errors.items()}
            named = ", ".join(fields)
            raise InvalidInput(f"Invalid input for {self.name}.{method}: {named}.", fields=fields)
        return method, dict(schema.validated_data)

    def call(self, integration: Integration, method: str, data: dict, context: CallContext) -> Result:
        return getattr(self, f"do_{method}")(integration, data, context)

    def takes_events(self, integration: Integration) -> bool:
        """Whether our events reach this integration at all (its `events` list then says which): a
        payment provider has no event method; a social inbox needs a recipient to write to."""
        return bool(self.event_method)

    def verify_incoming(self, integration: Integration, incoming: Incoming) -> bool:
        """True when the request provably comes from the provider (a signature over the raw body,
        a subscription's verify token). Providers that accept webhooks must override this; the
        default refuses everything."""
        return False

    def receive(self, integration: Integration, incoming: Incoming) -> IncomingAnswer:
        """Handles a verified webhook. Must be idempotent: providers deliver the same event again."""
        return IncomingAnswer(status=404, body={"detail": f"The {self.name} provider takes no webhooks."})

    @abstractmethod
    def event_input(self, integration: Integration, event: str, payload: dict, context: CallContext) -> dict:
        """The method input that tells this provider about one of our events (each provider says it
        its own way: a webhook body, a Slack message, an email)."""


def _first(problems: Any) -> str:
    if isinstance(problems, list | tuple) and problems:
        return _first(problems[0])
    if isinstance(problems, dict):
        return "; ".join(f"{key}: {_first(value)}" for key, value in problems.items())
    return str(problems)
