"""Sign-in for the status pages: the API's rules (accounts/sessions.py), ending in a Django session.

- a wrong password goes through Django's `authenticate`, so django-axes counts it and locks the
  account after too many; a locked account is told so;
- an account with MFA on needs its code (TOTP or recovery code, each accepted once); a wrong or
  missing code counts as a failed sign-in, as in the admin;
- a role that requires MFA, not yet enrolled, is refused and told where to enrol;
- every outcome lands in the audit log, marked `via: status page`.
The throttles are the API login's own classes and counters, so the page adds no second allowance.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import authenticate, login
from django.http import HttpRequest
from django.utils.translation import gettext as _

from accounts import audit, mfa
from accounts.models import AuditAction, User
from accounts.sessions import count_mfa_failure
from accounts.throttles import LoginPerAddressThrottle, LoginPerUsernameThrottle
from console.access import enrol_message

VIA = "status page"


class SignInRefused(Exception):
    def __init__(self, message: str, *, status: int = 200, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Throttled:
    wait_seconds: int


class _Attempt:
    """What the API's login throttles read of a request: the client's address (META) and the
    username tried (`data`)."""

    def __init__(self, request: HttpRequest, username: str):
        self.META = request.META
        self.data = {"username": username}


def check_rate(request: HttpRequest, username: str) -> Throttled | None:
    """The API login's limits, per address and per username, on the same counters."""
    attempt = _Attempt(request, username)
    for throttle_class in (LoginPerAddressThrottle, LoginPerUsernameThrottle):
        throttle = throttle_class()
        if not throttle.allow_request(attempt, None):
            return Throttled(int(throttle.wait() or 60) + 1)
    return None


def _refuse(username: str, reason: str, message: str) -> SignInRefused:
    audit.record(
        AuditAction.LOGIN_FAILED, actor="anonymous", target=f"user:{username}", data={"reason": reason, "via": VIA}
    )
    return SignInRefused(message)


def sign_in(request: HttpRequest, *, username: str, password: str, code: str = "") -> User:
    """Checks the credentials and starts the Django session; raises SignInRefused with what to say."""
    throttled = check_rate(request, username)
    if throttled is not None:
        raise SignInRefused(
            _("Too many sign-in attempts: try again in %(seconds)s seconds.") % {"seconds": throttled.wait_seconds},
            status=429,
            retry_after=throttled.wait_seconds,
        )
    user = authenticate(request=request, username=username, password=password)
    if getattr(request, "axes_locked_out", False):
        minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
        audit.record(AuditAction.LOGIN_LOCKED_OUT, actor="anonymous", target=f"user:{username}", data={"via": VIA})
        raise SignInRefused(
            _(
                "Too many failed sign-ins: this account is locked for %(minutes)s minutes. "
                "An administrator can unlock it sooner."
            )
            % {"minutes": minutes},
            status=429,
        )
    if user is None:
        raise _refuse(username, "password", _("Invalid username or password."))
    mfa_verified = False
    if mfa.is_enabled(user):
        if mfa.verify(user, code) is None:
            count_mfa_failure(request, username, via=VIA)
            if not code.strip():
                raise SignInRefused(_("This account uses MFA: enter the 6-digit code from your authenticator app."))
            raise SignInRefused(_("The MFA code is wrong, expired or already used."))
        mfa_verified = True
    elif mfa.is_required(user):
        raise _refuse(username, "mfa_not_enrolled", enrol_message())
    login(request, user)  # a new session key; django-axes clears the account's failures
    audit.record(
        AuditAction.LOGIN_SUCCEEDED,
        actor=user,
        target=f"user:{user.get_username()}",
        data={"via": VIA, "mfa": mfa_verified},
    )
    return user
