"""The client's address, for lockout signals, throttles, sessions and the audit log.

Behind a reverse proxy every request comes from the proxy, so the address the client connected from
is in X-Forwarded-For, appended by each proxy. Only the entries our own proxies added can be trusted
(anything further left was written by the client): with TRUSTED_PROXY_COUNT = N the client is the
N-th entry from the right. With 0 (the default) the header is ignored and REMOTE_ADDR is the client.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    remote_addr = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote_addr
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if not hops:
        return remote_addr
    candidate = hops[-min(proxies, len(hops))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote_addr  # a malformed header is not an address to lock or count
