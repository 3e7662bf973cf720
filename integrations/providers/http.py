"""HTTP for every provider: through the SSRF guard, with timeouts, authenticated by the integration's
auth_type, retried once with a fresh token after a 401, and judged the same way everywhere.

A refused request (most 4xx) will be refused again; 5xx, 408, 429, timeouts and dropped connections
are worth another try (Retry-After kept; for a 429 without one, X's x-rate-limit-reset). Every text
kept from an exchange is scrubbed of the URL's path and query, of every secret in the integration's
auth_config, and of every credential the request's auth headers carried (an OAuth2 access token
fetched for it is in no config, and a gateway may echo the Authorization header back). A refusal's
ProviderError carries the provider's answer, JSON decoded and scrubbed the same way, so a provider
can read its error code and message from the whole answer instead of a short excerpt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import requests
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from config import outbound
from integrations import auth, credentials
from integrations.providers.base import ProviderError, Result

if TYPE_CHECKING:
    from integrations.models import Integration

USER_AGENT = "oncall-escalation-integrations/1"
RETRYABLE_HTTP_STATUSES = frozenset({408, 429})
ERROR_ANSWER_MAX_BYTES = 16 * 1024  # a refusal's answer read for its code and message
RESPONSE_EXCERPT_CHARS = 160
PROVIDER_MESSAGE_MAX_CHARS = 500  # a provider's own error message, as kept in a reason
JSON_MAX_DEPTH = 32  # no provider's answer nests deeper; recursion has its limits
RESULT_MAX_BYTES = 256 * 1024


def default_timeout() -> tuple[float, float]:
    timeout = getattr(settings, "INTEGRATION_HTTP_TIMEOUT", (3.0, 10.0))
    return tuple(timeout) if isinstance(timeout, list | tuple) else (float(timeout), float(timeout))


def json_body(value: Any) -> bytes:
    return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def send(
    integration: Integration,
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: tuple[float, float] | None = None,
    own_auth: dict[str, str] | None = None,
) -> Result:
    """One request; returns the answer (JSON decoded when it is JSON) or raises ProviderError.

    own_auth: the credential headers a provider builds itself, sent instead of its auth_type's and
    scrubbed like them (Toss's Basic of its secret key; {} for Inicis, whose key only signs the body)."""
    config = config_of(integration)
    timeout = timeout or default_timeout()
    extra = headers or {}
    try:
        response_or_401 = _send_once(integration, config, method, url, body, extra, timeout, own_auth)
        if response_or_401 is None and own_auth is None and integration.auth_type in auth.OAUTH2_TYPES:
            auth.forget_token(integration, config)  # expired or revoked: one more try with a new token
            response_or_401 = _send_once(integration, config, method, url, body, extra, timeout, own_auth)
    except auth.AuthError as exc:
        raise ProviderError(exc.reason, permanent=exc.permanent, http_status=exc.http_status) from exc
    if response_or_401 is None:
        raise ProviderError(
            f"HTTP 401 Unauthorized from {outbound.redact_url(url)}: the credentials were refused.",
            permanent=True,
            http_status=401,
        )
    return response_or_401


def config_of(integration: Integration) -> dict:
    """The integration's opened auth_config; a config that does not open is a permanent error."""
    try:
        return integration.auth_config
    except credentials.CredentialError as exc:
        raise ProviderError(str(exc), permanent=True) from exc


def _send_once(
    integration: Integration,
    config: dict,
    method: str,
    url: str,
    body: bytes | None,
    extra_headers: dict[str, str],
    timeout: tuple[float, float],
    own_auth: dict[str, str] | None = None,
) -> Result | None:
    """The answer, or None for a 401 (the caller decides whether a new token may help)."""
    headers = {"User-Agent": USER_AGENT, **extra_headers}
    if body is not None:
        headers.setdefault("Content-Type", "application/json; charset=utf-8")
    # OAuth 1.0a signs each request: the signature covers its method, URL and (a form's) body
    if own_auth is not None:
        auth_headers = dict(own_auth)
    else:
        auth_headers = auth.headers(
            integration, config, method=method, url=url, body=body, content_type=headers.get("Content-Type", "")
        )
    headers.update(auth_headers)
    scrub = Scrub((url,), config, auth.sent_credentials(auth_headers))
    where = outbound.redact_url(url)
    try:
        with outbound.guarded_session() as session:
            # Redirects are not followed: a redirected request is a misconfigured target, and following
            # one would let a receiver send us to an inside address.
            response = session.request(
                method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True
            )
            with response:
                if response.status_code == 401:
                    return None
                return _judge(response, scrub)
    except outbound.BlockedDestination as exc:
        raise ProviderError(f"Not sent to {where}: {exc}", permanent=True) from exc
    except requests.Timeout as exc:
        raise ProviderError(
            f"{where} timed out (timeout {timeout}s): {_cause(exc, scrub)}", permanent=False, timed_out=True
        ) from exc
    except requests.ConnectionError as exc:
        raise ProviderError(f"connection failed to {where}: {_cause(exc, scrub)}", permanent=False) from exc
    except requests.RequestException as exc:  # an invalid URL, a bad header: retrying cannot help
        raise ProviderError(f"the request to {where} could not be sent: {_cause(exc, scrub)}", permanent=True) from exc


@dataclass(frozen=True)
class Scrub:
    """What no text kept from one exchange may show: the URLs' paths and queries (as given and as
    requests sent it), the auth_config's secrets, and the credentials the request's auth headers
    carried (`sent`)."""

    urls: tuple[str, ...]
    config: dict
    sent: tuple[str, ...] = ()

    def __call__(self, text: str) -> str:
        return self.credentials_only(credentials.scrub_secrets(outbound.scrub(text, *self.urls), self.config))

    def credentials_only(self, text: str) -> str:
        for value in self.sent:  # longest first (auth.sent_credentials orders them)
            text = text.replace(value, credentials.MASK)
        return text


def _judge(response: requests.Response, scrub: Scrub) -> Result:
    status = response.status_code
    if 200 <= status < 300:
        data = _answer(response)
        # The caller's data is the provider's own, URLs included; only a credential we sent is taken out.
        return Result(http_status=status, data=scrubbed_strings(data, scrub.credentials_only) if scrub.sent else data)
    if response.url not in scrub.urls:
        scrub = replace(scrub, urls=(*scrub.urls, response.url))
    raw = _read(response, ERROR_ANSWER_MAX_BYTES)
    excerpt = _excerpt(raw, scrub)
    reason = f"HTTP {status} {response.reason or ''}".strip() + (f": {excerpt}" if excerpt else "")
    if 300 <= status < 400:
        location = response.headers.get("Location")
        location = outbound.redact_url(urljoin(response.url, location)) if location else "?"
        reason += f" (redirect to {location} not followed; fix the target URL)"
    retryable = status >= 500 or status in RETRYABLE_HTTP_STATUSES
    raise ProviderError(
        scrub(reason),
        permanent=not retryable,
        http_status=status,
        retry_after=_retry_after(response) if retryable else None,
        answer=scrubbed_strings(_json_or_none(raw), scrub),
    )


def _answer(response: requests.Response) -> Any:
    raw = response.raw.read(RESULT_MAX_BYTES, decode_content=True)
    if not raw:
        return None
    if "json" in (response.headers.get("Content-Type") or ""):
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            pass
    return raw.decode("utf-8", errors="replace")


def _read(response: requests.Response, limit: int) -> bytes:
    try:
        return response.raw.read(limit, decode_content=True) or b""
    except Exception:  # the body is only a hint; the status decides
        return b""


def _json_or_none(raw: bytes) -> Any:
    """A refusal's answer as JSON, whatever its Content-Type says (gateways mislabel it); None when it
    is not JSON or was longer than what was read."""
    if not raw.lstrip().startswith((b"{", b"[")):
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def scrubbed_strings(value: Any, scrub: Callable[[str], str], depth: int = JSON_MAX_DEPTH) -> Any:
    """`value` (decoded JSON) with every string in it, keys included, passed through `scrub`; what is
    nested deeper than `depth` is dropped (no provider's answer is, and recursion has its limits)."""
    if isinstance(value, str):
        return scrub(value)
    if depth <= 0 and isinstance(value, dict | list):
        return None
    if isinstance(value, dict):
        return {scrub(str(key)): scrubbed_strings(item, scrub, depth - 1) for key, item in value.items()}
    if isinstance(value, list):
        return [scrubbed_strings(item, scrub, depth - 1) for item in value]
    return value


def _excerpt(raw: bytes, scrub: Scrub) -> str:
    """The start of the receiver's answer, as a hint for the admin: printable, one line, short, and
    with any URL cut to its host (an answer may echo the secret URL back)."""
    return printable_line(scrub(printable_line(raw, limit=None)), limit=RESPONSE_EXCERPT_CHARS)


def excerpt_of(value: Any) -> str:
    """A short one-line excerpt of a provider's answer, kept on the delivery attempt."""
    text = value if isinstance(value, str) else json_body(value).decode() if value is not None else ""
    text = one_line(text)
    return text if len(text) <= RESPONSE_EXCERPT_CHARS else text[: RESPONSE_EXCERPT_CHARS - 1] + "…"


def printable_line(value: bytes | str, limit: int | None = PROVIDER_MESSAGE_MAX_CHARS) -> str:
    """One line of printable text, cut to `limit` characters: how a provider's own words (already
    scrubbed, e.g. read from ProviderError.answer) go into a reason."""
    text = one_line("".join(char if char.isprintable() else " " for char in one_line(value)))
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _cause(exc: BaseException, scrub: Scrub) -> str:
    """The innermost cause of a requests failure (e.g. "ConnectionRefusedError: [Errno 111] Connection
    refused"), never the library's own message, which repeats the URL's path."""
    seen: set[int] = set()
    innermost = exc
    while id(innermost) not in seen:
        seen.add(id(innermost))
        following = getattr(innermost, "reason", None)
        if not isinstance(following, BaseException):
            following = innermost.__cause__ or innermost.__context__
        if following is None:
            break
        innermost = following
    return scrub(f"{type(innermost).__name__}: {innermost}")


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After; for a 429 without one, the epoch second its x-rate-limit-reset header names (X
    sends only that: the end of the rate-limit window; other answers carry it too, without meaning
    the window is used up)."""
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    reset = (response.headers.get("x-rate-limit-reset") or "").strip()
    if retry_after is None and response.status_code == 429 and reset.isdigit():
        return max(0.0, int(reset) - timezone.now().timestamp())
    return retry_after


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def one_line(value: bytes | str) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return " ".join(value.split())
