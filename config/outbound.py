"""Outbound HTTP to addresses an admin typed in: the guard against server-side request forgery.

An integration's URL is chosen in the admin, and the worker that sends to it sits inside our network,
next to the database, Redis and a cloud metadata service (169.254.169.254) that hands out credentials.
So a target that resolves to loopback, a private range, link-local, multicast, reserved or otherwise
non-public address is refused, unless `INTEGRATIONS_ALLOW_PRIVATE_TARGETS` is on (tests and local
receivers on loopback).

The check happens twice: when the target is saved (`check_url`, a clear validation error) and when the
connection is made (`guarded_session`): the host is resolved once, every address it resolves to is
checked, and the socket connects to a checked address, so a DNS answer that changes between the check
and the connect (rebinding) cannot slip through. The Host header and the TLS server name keep the
host name. Redirects are never followed (a 3xx is reported, not chased), and proxies from the
environment are ignored: through a proxy we could not see where the request ends up.

Texts that may carry a URL (exception messages, receivers' answers) go through `scrub` before they
are stored or logged: a Slack webhook URL's path is its secret, and many webhook URLs carry a token.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOW_SETTING = "INTEGRATIONS_ALLOW_PRIVATE_TARGETS"
REDACTED = "…"

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Not globally routable, yet missing from `is_private` on some Python versions.
_EXTRA_BLOCKED_V4 = (ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("0.0.0.0/8"))
_URL_IN_TEXT = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*)://([^/\s'\"<>?#]+)[^\s'\"<>]*")


class BlockedDestination(Exception):
    """The target resolves to an address outgoing requests may not reach."""

    def __init__(self, host: str, address: str, why: str):
        self.host = host
        self.address = address
        self.why = why
        shown = host if _same_address(host, address) else f"{host} ({address})"
        super().__init__(
            f"Refused: {shown} is {why}. Integrations may not reach loopback, private, link-local or "
            f"reserved addresses (set {ALLOW_SETTING}=true to allow, e.g. for a receiver on this machine)."
        )


def _same_address(host: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")) == ipaddress.ip_address(address)
    except ValueError:
        return False


def private_targets_allowed() -> bool:
    return bool(getattr(settings, ALLOW_SETTING, False))


def refusal_reason(address: IPAddress) -> str | None:
    """Why `address` may not be reached (e.g. "a loopback address"), or None when it is public.

    Addresses that embed an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4) are
    judged by the embedded one, since that is where the packets end up.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return refusal_reason(embedded)
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (this includes the cloud metadata service)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private or any(address in network for network in _EXTRA_BLOCKED_V4 if address.version == 4):
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved address"
    return None


def check_address(host: str, address: str) -> None:
    """Raises BlockedDestination when `address` (what `host` resolved to) may not be reached."""
    if private_targets_allowed():
        return
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    why = refusal_reason(ip)
    if why is not None:
        raise BlockedDestination(host, str(ip), why)


def resolve_checked(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, each checked; raises socket.gaierror or BlockedDestination.

    All of them must pass, not just the first: a name that also resolves to an inside address could
    hand that one out to the next lookup.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        check_address(host, address)
    return addresses


def check_url(url: str) -> None:
    """Save-time check of a target URL; raises BlockedDestination.

    A host name that does not resolve now is accepted: the delivery checks again when it connects.
    """
    if private_targets_allowed():
        return
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return
    try:
        resolve_checked(host, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError, ValueError):
        return


def redact_url(url: str) -> str:
    """scheme://host[:port]/… : where a request went, without the path or query that may be secret."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    if not parts.scheme or not parts.netloc:
        return REDACTED
    host = parts.netloc.rsplit("@", 1)[-1]  # never a user:password
    return f"{parts.scheme}://{host}/{REDACTED}"


def scrub(text: str, *secret_urls: str) -> str:
    """`text` with the given URLs' paths and queries, and every URL's path, replaced by "…".

    Exception texts name the path alone too ("Max retries exceeded with url: /services/T0/B0/xyz"),
    so each secret URL's path and query are removed wherever they appear.
    """
    for url in secret_urls:
        try:
            parts = urlsplit(url)
        except ValueError:
            continue
        if parts.scheme not in ("http", "https"):
            continue
        text = text.replace(url, redact_url(url))
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        for secret in (tail, parts.path, parts.query):
            if len(secret) > 1:
                text = text.replace(secret, f"/{REDACTED}" if secret.startswith("/") else REDACTED)
    return _URL_IN_TEXT.sub(_redact_match, text)


def _redact_match(match: re.Match) -> str:
    url = match.group(0)
    trailing = url[len(url.rstrip(".,:;)")) :]  # the sentence's punctuation, not the URL's
    return f"{match.group(1)}://{match.group(2).rsplit('@', 1)[-1]}/{REDACTED}{trailing}"


class _GuardedConnectionMixin:
    """Resolves once, checks every address, then connects to a checked address (not the name)."""

    def _new_conn(self) -> socket.socket:
        host_name = self._dns_host
        try:
            addresses = resolve_checked(host_name.rstrip("."), self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        last_error: Exception | None = None
        for address in addresses:
            self._dns_host = address
            try:
                return super()._new_conn()
            except OSError as exc:  # urllib3's NewConnectionError and ConnectTimeoutError are OSErrors
                last_error = exc
            finally:
                self._dns_host = host_name  # the Host header and TLS server name keep the name
        raise last_error


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }


def guarded_session() -> requests.Session:
    """A requests session whose connections only reach allowed addresses (pass allow_redirects=False)."""
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the guard must see the real peer
    adapter = GuardedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
