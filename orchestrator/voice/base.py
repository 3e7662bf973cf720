"""The provider interface and the errors that tell the engine whether a call may exist."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import requests
from django.conf import settings
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

T = TypeVar("T")

# A connection that could not be made carries no request, so a carrier's client may try it again
# this many times without any risk of placing a call twice (the Vonage client does).
CONNECT_RETRIES = 2


@dataclass(frozen=True)
class CallRequest:
    to: str
    token: str  # the attempt's unguessable token, in every webhook URL
    ring_timeout_seconds: int
    language: str
    record: bool = False  # the policy records its calls: the carrier records from the answer on


@dataclass(frozen=True)
class CarrierCall:
    """A call as the carrier lists it: its id and the carrier's own word for its status."""

    call_id: str
    status: str


class ProviderError(Exception):
    """The carrier did not take the call.

    `ambiguous` is True when the call may have been placed anyway (the request timed out after it
    was sent): the engine must not dial the same attempt again and waits for the deadline instead.
    """

    def __init__(self, message: str, *, ambiguous: bool = False, status: int | None = None):
        super().__init__(message)
        self.ambiguous = ambiguous
        self.status = status


class VoiceProvider(Protocol):
    name: str

    def place_call(self, request: CallRequest) -> str:
        """Places the call and returns the carrier's call id, or raises ProviderError."""
        ...

    def calls_to(self, to: str, since: datetime) -> list[CarrierCall]:
        """The calls this carrier created to `to` from our number since `since`, newest first, or
        ProviderError when it cannot tell (it could not be asked, or listed too many to be sure)."""
        ...

    def start_recording(self, call_id: str, *, callback_url: str, attempt_token: str) -> str:
        """Asks the carrier to record a call in progress; returns its recording id ("" when the carrier
        names it only in the recording callback), or raises ProviderError."""
        ...

    def stop_recording(self, call_id: str, recording_id: str) -> bool:
        """Stops a recording; False when the carrier has no way to (it then ends with the call)."""
        ...

    def media_headers(self, url: str) -> dict[str, str]:
        """The credentials that fetch a recording's media from `url`; ProviderError when `url` is not
        the carrier's own host (our credentials never go anywhere else)."""
        ...


def recording_callback_url(carrier: str, token: str) -> str:
    """Where the carrier reports a finished recording: a recording's token, or the attempt's own
    token for the calls a policy records."""
    from django.urls import reverse

    return webhook_url(reverse(f"{carrier}-recording", kwargs={"token": token}))


def same_host(url: str, *base_urls: str) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return bool(host) and any(host == (urlsplit(base).hostname or "").lower() for base in base_urls if base)


def environment_read_once(session: requests.Session, base_url: str) -> None:
    """Proxies and the CA bundle from the environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE),
    read when the client is built rather than on every request: requests walks the whole process
    environment per request otherwise, a tenth of a dial's CPU (measured in-process). A change to
    them takes effect when the worker restarts."""
    found = session.merge_environment_settings(base_url, {}, None, None, None)
    session.proxies.update(found["proxies"])
    session.verify = found["verify"]
    session.trust_env = False


_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()


def cached_client(key: tuple, build: Callable[[], T]) -> T:
    """One SDK client per carrier configuration, so its HTTP connection pool is reused between calls."""
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = build()
        return client


def webhook_url(path: str) -> str:
    """Carriers reach us at PUBLIC_BASE_URL (signatures are computed over this exact URL)."""
    return f"{settings.PUBLIC_BASE_URL}{path}"


def get_provider(name: str | None = None) -> VoiceProvider:
    name = name or settings.VOICE_PROVIDER
    if name == "twilio":
        from orchestrator.voice.twilio import TwilioProvider

        return TwilioProvider.from_settings()
    if name == "vonage":
        from orchestrator.voice.vonage import VonageProvider

        return VonageProvider.from_settings()
    raise ProviderError(f"Unknown voice provider {name!r}; VOICE_PROVIDER must be 'twilio' or 'vonage'.")


def _connection_was_made(error: requests.exceptions.ConnectionError) -> bool:
    """True when the connection broke after the request may have been sent (the call may exist);
    False when no connection was made at all (refused, unresolvable, connect timeout, TLS failure)."""
    if isinstance(error, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return False
    reason = error.args[0] if error.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return not isinstance(reason, ConnectTimeoutError)  # NewConnectionError is a ConnectTimeoutError


def transport_failure(carrier: str, error: requests.exceptions.RequestException, timeout: float) -> ProviderError:
    """The one rule for every carrier: a request that never left (no connection) placed no call and
    the next carrier may be tried; once it may have been sent (a dropped connection, a read timeout,
    an answer we could not read), the call may exist and is never placed again."""
    name = error.__class__.__name__
    if isinstance(error, requests.exceptions.ConnectionError):
        if _connection_was_made(error):
            return ProviderError(
                f"the connection to {carrier} broke before its answer ({name}); the call may exist", ambiguous=True
            )
        return ProviderError(f"{carrier} unreachable: {name}")
    if isinstance(error, requests.exceptions.Timeout):
        return ProviderError(f"{carrier} did not answer within {timeout}s; the call may exist", ambiguous=True)
    return ProviderError(f"{carrier}'s answer could not be read ({name}); the call may exist", ambiguous=True)
