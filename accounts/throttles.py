"""Rate limits (DRF throttles): sign-in by address and by account, drills by caller, alerts by API key.

A refused request gets 429 with Retry-After and the API's JSON error body (code `throttled`). Counters
live in the Django cache, which is Redis (settings.CACHES), so every web process shares them. Rates
are read from settings at each request (e.g. LOGIN_RATE_PER_ADDRESS = "30/min"), so they can change
without a redeploy of code. When the cache cannot be reached the request is let through and a warning
is logged: a rate limit must never be the reason a page or a sign-in fails.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABCMeta, abstractmethod

from django.conf import settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.client import client_address
from config import ratelimit

logger = logging.getLogger(__name__)


class SettingsRateThrottle(SimpleRateThrottle, metaclass=ABCMeta):
    """A throttle whose rate is the Django setting named `rate_setting`, keyed by `ident(request)`."""

    rate_setting: str = ""

    def __init__(self):
        # The rate is looked up per request (get_rate), not once per process as DRF does by default.
        pass

    def get_rate(self) -> str | None:
        return getattr(settings, self.rate_setting, None)

    def get_ident(self, request) -> str | None:
        return client_address(request)

    @abstractmethod
    def ident(self, request, view) -> str | None:
        """What is counted: an address, an account, a key. None: this throttle does not apply."""

    def get_cache_key(self, request, view) -> str | None:
        ident = self.ident(request, view)
        if not ident:
            return None
        digest = hashlib.sha256(str(ident).encode()).hexdigest()[:32]  # no raw usernames in Redis keys
        return f"throttle:{self.scope}:{digest}"

    def allow_request(self, request, view) -> bool:
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.warning("rate limit %s skipped: the cache is unreachable", self.scope, exc_info=True)
            return True


def _username(request) -> str | None:
    username = request.data.get("username") if hasattr(request.data, "get") else None
    return username.strip().lower() if isinstance(username, str) and username.strip() else None


class LoginPerAddressThrottle(SettingsRateThrottle):
    scope = "login-address"
    rate_setting = "LOGIN_RATE_PER_ADDRESS"

    def ident(self, request, view):
        return self.get_ident(request)


class LoginPerUsernameThrottle(SettingsRateThrottle):
    scope = "login-username"
    rate_setting = "LOGIN_RATE_PER_USERNAME"

    def ident(self, request, view):
        return _username(request)


class RefreshPerAddressThrottle(SettingsRateThrottle):
    scope = "refresh-address"
    rate_setting = "REFRESH_RATE_PER_ADDRESS"

    def ident(self, request, view):
        return self.get_ident(request)


class RefreshPerUserThrottle(SettingsRateThrottle):
    """Counts refreshes per account: the user of a refresh token that is genuine (signed by us and
    unexpired), so nobody can spend someone else's allowance with a made-up token."""

    scope = "refresh-user"
    rate_setting = "REFRESH_RATE_PER_USER"

    def ident(self, request, view):
        raw = request.data.get("refresh_token") if hasattr(request.data, "get") else None
        if not isinstance(raw, str) or not raw:
            return None
        try:
            return f"user:{RefreshToken(raw).get('user_id')}"
        except TokenError:
            return None


def _principal(request) -> str | None:
    user = request.user
    if getattr(user, "api_key", None) is not None:
        return f"api-key:{user.api_key.pk}"
    if getattr(user, "is_authenticated", False) and getattr(user, "pk", None) is not None:
        return f"user:{user.pk}"
    return None


class DrillThrottle(SettingsRateThrottle):
    """Drills ring real phones: a caller (person or API key) starts only so many."""

    scope = "drill"
    rate_setting = "DRILL_RATE"

    def ident(self, request, view):
        return _principal(request)


class AlertIngestionThrottle(BaseThrottle):
    """Per API key (or person) on alert ingestion. The default is generous so an alert storm passes;
    it stops a runaway script from drowning the engine.

    A token bucket in Redis (config.ratelimit: one round trip, a few bytes), not DRF's sliding log,
    which reads and writes the list of every request's time in the window on each request (6,000
    floats per alert at 100 alerts a second). The bucket holds a whole window's count, so a burst of
    that size passes at once, and refills at count / window."""

    def allow_request(self, request, view) -> bool:
        self._wait = alert_rate_wait(_principal(request))
        return self._wait <= 0

    def wait(self) -> float | None:
        return self._wait or None


def alert_rate_wait(ident: str | None) -> float:
    """Takes one alert from the bucket of `ident` ("api-key:<pk>" or "user:<pk>"): 0.0 when the alert
    may go now, else seconds to wait. Shared by the throttle and the alert fast lane."""
    rate = getattr(settings, "ALERT_RATE_PER_KEY", None)
    if not rate or not ident:
        return 0.0
    count, seconds = SimpleRateThrottle.parse_rate(None, rate)
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    # A fast bucket is leased a twentieth of a second's worth at a time (at most 20): one Redis
    # round trip per 20 alerts in a storm; a slow one (below 40 a second) is counted exactly.
    lease = max(1, min(20, int(count / seconds / 20)))
    return ratelimit.take(f"oncall:alert-rate:{digest}", rate=count / seconds, capacity=count, lease=lease)
