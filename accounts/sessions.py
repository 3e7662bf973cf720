"""Sign-in with JWTs: login (password, then TOTP when on), refresh with rotation, logout, sessions.

Failures go through Django's `authenticate`, so django-axes counts them and locks the account after
too many; a wrong TOTP code counts as a failure too (here and in the admin sign-in).

No token is stored anywhere: a login session keeps only the jti of its current refresh token. A
refresh token is accepted once, while its jti is the session's current one and the session is
active; rotating it or ending the session refuses every older token (simplejwt's outstanding-token
table, which kept whole refresh tokens readable, is not installed).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import authenticate, user_logged_in, user_login_failed
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import audit, mfa
from accounts.client import client_address
from accounts.models import AuditAction, LoginSession, User
from config.errors import DomainError


class LoginRefused(DomainError):
    status_code = 401
    code = "login_failed"


class LockedOut(DomainError):
    status_code = 429
    code = "locked_out"


@dataclass(frozen=True)
class Tokens:
    access: str
    refresh: str
    user: User
    mfa_pending: bool


def _issue(user: User, session: LoginSession) -> tuple[str, str]:
    refresh = RefreshToken.for_user(user)
    refresh["sid"] = session.pk
    session.refresh_jti = refresh["jti"]
    session.save(update_fields=["refresh_jti"])
    return str(refresh.access_token), str(refresh)


def count_mfa_failure(request: HttpRequest, username: str, *, via: str) -> None:
    """A wrong MFA code after a right password is a failed sign-in: django-axes counts it toward the
    lockout like a wrong password, and the audit log records it."""
    user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)
    audit.record(
        AuditAction.LOGIN_FAILED, actor="anonymous", target=f"user:{username}", data={"reason": "mfa", "via": via}
    )


def login(*, request: HttpRequest, username: str, password: str, mfa_token: str = "") -> Tokens:
    user = authenticate(request=request, username=username, password=password)
    if getattr(request, "axes_locked_out", False):
        minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
        audit.record(AuditAction.LOGIN_LOCKED_OUT, actor="anonymous", target=f"user:{username}")
        raise LockedOut(
            f"Too many failed sign-ins: this account is locked for {minutes} minutes. "
            "An administrator can unlock it sooner."
        )
    if user is None:
        audit.record(
            AuditAction.LOGIN_FAILED, actor="anonymous", target=f"user:{username}", data={"reason": "password"}
        )
        raise LoginRefused("Invalid username or password.")
    mfa_verified = False
    if mfa.is_enabled(user):
        if not mfa_token:
            raise LoginRefused("This account uses MFA: send the 6-digit code as mfa_token.", code="mfa_required")
        if mfa.verify(user, mfa_token) is None:
            count_mfa_failure(request, username, via="api")
            raise LoginRefused("The MFA code is wrong, expired or already used.", code="mfa_invalid")
        mfa_verified = True
    with transaction.atomic():
        session = LoginSession.objects.create(
            user=user,
            ip=client_address(request),
            user_agent=request.headers.get("User-Agent", "")[:300],
            mfa_verified=mfa_verified,
        )
        access, refresh = _issue(user, session)
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    audit.record(
        AuditAction.LOGIN_SUCCEEDED, actor=user, target=f"user:{user.get_username()}", data={"mfa": mfa_verified}
    )
    return Tokens(access, refresh, user, mfa.is_required(user) and not mfa_verified)


def refresh(raw_refresh: str) -> tuple[str, str]:
    """A new access token and a new refresh token; the old refresh token stops working (the session
    now names the new one's jti)."""
    try:
        token = RefreshToken(raw_refresh)
    except TokenError as exc:
        raise LoginRefused(f"The refresh token is not valid: {exc}", code="token_not_valid") from exc
    with transaction.atomic():
        session = LoginSession.objects.select_for_update().filter(pk=token.get("sid"), ended_at__isnull=True).first()
        if session is None or session.refresh_jti != token["jti"]:
            raise LoginRefused("This session has ended; sign in again.", code="session_ended")
        user = session.user
        if not user.is_active:
            raise LoginRefused("This account is disabled.", code="account_disabled")
        token.set_jti()
        token.set_exp()
        token.set_iat()
        session.refresh_jti = token["jti"]
        session.last_refreshed_at = timezone.now()
        session.save(update_fields=["refresh_jti", "last_refreshed_at"])
        return str(token.access_token), str(token)


def end_session(session: LoginSession, *, actor: User, action: str = AuditAction.SESSION_ENDED) -> None:
    """Ends a session: its refresh token and its access tokens stop working at once."""
    with transaction.atomic():
        if session.ended_at is None:
            session.ended_at = timezone.now()
            session.save(update_fields=["ended_at"])
    audit.record(action, actor=actor, target=f"session:{session.pk}")


def logout(*, user: User, raw_refresh: str) -> None:
    try:
        token = RefreshToken(raw_refresh)
    except TokenError as exc:
        raise LoginRefused(f"The refresh token is not valid: {exc}", code="token_not_valid") from exc
    session = LoginSession.objects.filter(pk=token.get("sid"), user=user).first()
    if session is None:
        raise DomainError("This refresh token belongs to no session of yours.", code="not_your_session")
    end_session(session, actor=user, action=AuditAction.LOGOUT)


def mark_mfa_verified(user: User) -> None:
    """After confirming enrolment in a session, that session has proved MFA."""
    session = getattr(user, "login_session", None)
    if session is not None:
        LoginSession.objects.filter(pk=session.pk).update(mfa_verified=True)
