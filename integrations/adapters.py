"""How a message leaves the building, one function per integration kind.

An adapter either returns a `Sent` or raises `DeliveryError`, which says whether trying again can
help: a refused request (most 4xx, an SMTP 5xx) will be refused again, while 5xx, 408, 429, timeouts
and dropped connections are worth another try. Every network call has a timeout.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import requests
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from config import outbound
from integrations import rendering
from integrations.models import IntegrationKind, OutboundMessage

SIGNATURE_HEADER = "X-Oncall-Signature"
EVENT_HEADER = "X-Oncall-Event"
USER_AGENT = "oncall-escalation-integrations/1"
SMTP_TIMEOUT_SECONDS = 10.0
RETRYABLE_HTTP_STATUSES = frozenset({408, 429})
RESPONSE_READ_BYTES = 1024
RESPONSE_EXCERPT_CHARS = 160


@dataclass(frozen=True)
class Sent:
    http_status: int | None = None


class DeliveryError(Exception):
    def __init__(
        self,
        reason: str,
        *,
        permanent: bool,
        http_status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.http_status = http_status
        self.retry_after = retry_after


def send(message: OutboundMessage) -> Sent:
    return ADAPTERS[message.integration.kind](message)


def sign(body: bytes, secret: str) -> str:
    """The value of X-Oncall-Signature: receivers recompute it over the raw body they received."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def send_webhook(message: OutboundMessage) -> Sent:
    envelope = {
        "event": message.event,
        "payload": message.payload,
        "message_id": message.pk,
        "sent_at": timezone.now().isoformat(),
    }
    body = json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    headers = {EVENT_HEADER: message.event}
    if message.integration.secret:
        headers[SIGNATURE_HEADER] = sign(body, message.integration.secret)
    return _post(message.integration.target, body, headers)


def send_slack(message: OutboundMessage) -> Sent:
    text = rendering.slack_text(message.event, message.payload)
    body = json.dumps({"text": text}, ensure_ascii=False).encode("utf-8")
    return _post(message.integration.target, body, {})


def send_email(message: OutboundMessage) -> Sent:
    email = EmailMessage(
        subject=rendering.email_subject(message.event, message.payload),
        body=rendering.email_body(message.event, message.payload, message_id=message.pk),
        from_email=getattr(settings, "INTEGRATION_EMAIL_FROM", None) or settings.DEFAULT_FROM_EMAIL,
        to=message.integration.recipients,
        headers={EVENT_HEADER: message.event},
        connection=get_connection(timeout=SMTP_TIMEOUT_SECONDS),
    )
    try:
        email.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        refusals = exc.recipients.items()
        refused = "; ".join(f"{address}: {code} {_text(reply)}" for address, (code, reply) in refusals)
        permanent = all(code >= 500 for _, (code, _) in refusals)
        raise DeliveryError(f"SMTP refused every recipient: {refused}", permanent=permanent) from exc
    except smtplib.SMTPResponseException as exc:
        reason = f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}"
        raise DeliveryError(reason, permanent=exc.smtp_code >= 500) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryError(f"SMTP server does not support what the settings ask for: {exc}", permanent=True) from exc
    except (smtplib.SMTPException, OSError) as exc:  # disconnects, refused connections, timeouts
        raise DeliveryError(f"SMTP connection failed: {type(exc).__name__}: {exc}", permanent=False) from exc
    except ValueError as exc:  # BadHeaderError included: a header that cannot be sent as given
        raise DeliveryError(f"The email could not be built: {exc}", permanent=True) from exc
    return Sent()


ADAPTERS: dict[str, Callable[[OutboundMessage], Sent]] = {
    IntegrationKind.WEBHOOK: send_webhook,
    IntegrationKind.SLACK: send_slack,
    IntegrationKind.EMAIL: send_email,
}


def _post(url: str, body: bytes, headers: dict[str, str]) -> Sent:
    """POSTs through the outbound guard; every text kept from the exchange is scrubbed of the URL."""
    timeout = getattr(settings, "INTEGRATION_HTTP_TIMEOUT", (3.0, 10.0))
    if isinstance(timeout, list):  # (connect, read) read from the environment as a list
        timeout = tuple(timeout)
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT, **headers}
    where = outbound.redact_url(url)
    try:
        with outbound.guarded_session() as session:
            # Redirects are not followed: a POST that gets redirected is a misconfigured target, and
            # following one would let a receiver send us to an inside address.
            response = session.post(
                url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True
            )
            with response:
                return _judge(response)
    except outbound.BlockedDestination as exc:
        raise DeliveryError(f"Not sent to {where}: {exc}", permanent=True) from exc
    except requests.Timeout as exc:
        raise DeliveryError(f"{where} timed out (timeout {timeout}s): {_cause(exc, url)}", permanent=False) from exc
    except requests.ConnectionError as exc:
        raise DeliveryError(f"connection failed to {where}: {_cause(exc, url)}", permanent=False) from exc
    except requests.RequestException as exc:  # an invalid URL, a bad header: retrying cannot help
        raise DeliveryError(f"the request to {where} could not be sent: {_cause(exc, url)}", permanent=True) from exc


def _judge(response: requests.Response) -> Sent:
    status = response.status_code
    if 200 <= status < 300:
        return Sent(http_status=status)
    excerpt = _excerpt(response)
    reason = f"HTTP {status} {response.reason or ''}".strip() + (f": {excerpt}" if excerpt else "")
    if 300 <= status < 400:
        location = response.headers.get("Location")
        location = outbound.redact_url(urljoin(response.url, location)) if location else "?"
        reason += f" (redirect to {location} not followed; fix the target URL)"
    retryable = status >= 500 or status in RETRYABLE_HTTP_STATUSES
    raise DeliveryError(
        outbound.scrub(reason, response.url),
        permanent=not retryable,
        http_status=status,
        retry_after=_retry_after_seconds(response.headers.get("Retry-After")) if retryable else None,
    )


def _excerpt(response: requests.Response) -> str:
    """The start of the receiver's answer, as a hint for the admin: printable, one line, short, and
    with any URL cut to its host (an answer may echo the secret URL back)."""
    try:
        raw = response.raw.read(RESPONSE_READ_BYTES, decode_content=True)
    except Exception:  # the body is only a hint; the status decides
        return ""
    text = "".join(char if char.isprintable() else " " for char in _text(raw))
    text = _text(outbound.scrub(text, response.url))
    return text if len(text) <= RESPONSE_EXCERPT_CHARS else text[: RESPONSE_EXCERPT_CHARS - 1] + "…"


def _cause(exc: BaseException, url: str) -> str:
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
    return outbound.scrub(f"{type(innermost).__name__}: {innermost}", url)


def _retry_after_seconds(value: str | None) -> float | None:
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


def _text(value: bytes | str) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return " ".join(value.split())
