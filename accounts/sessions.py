"""Sign-in with JWTs: login (password, then TOTP when on), refresh with rotation, logout, sessions.

Failures go through Django's `authenticate`, so django-axes counts them and locks the account and
the address after too many; a wrong TOTP code counts as a failure too.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import authenticate, user_logged_in, user_login_failed
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import audit, mfa
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


def login(*, request: HttpRequest, username: str, password: str, mfa_token: str = "") -> Tokens:
    user = authenticate(request=request, username=username, password=password)
    if getattr(request, "axes_locked_out", False):
        minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
        audit.record(AuditAction.LOGIN_LOCKED_OUT, actor="anonymous", target=f"user:{username}")
        raise LockedOut(
            f"Too many failed sign-ins: this account and address are locked for {minutes} minutes. "
            "An administrator can unlock them sooner."
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
            user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)
            audit.record(AuditAction.LOGIN_FAILED, actor="anonymous", target=f"user:{username}", data={"reason": "mfa"})
            raise LoginRefused("The MFA code is wrong, expired or already used.", code="mfa_invalid")
        mfa_verified = True
    with transaction.atomic():
        session = LoginSession.objects.create(
            user=user,
            ip=request.META.get("REMOTE_ADDR"),
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
    """A new access token and a new refresh token; the old refresh token is blacklisted."""
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
        token.blacklist()
        token.set_jti()
        token.set_exp()
        token.set_iat()
        token.outstand()
        session.refresh_jti = token["jti"]
        session.last_refreshed_at = timezone.now()
        session.save(update_fields=["refresh_jti", "last_refreshed_at"])
        return str(token.access_token), str(token)


def end_session(session: LoginSession, *, actor: User, action: str = AuditAction.SESSION_ENDED) -> None:
    """Ends a session: its refresh token is blacklisted and its access tokens stop working."""
    with transaction.atomic():
        if session.ended_at is None:
            session.ended_at = timezone.now()
            session.save(update_fields=["ended_at"])
        for outstanding in OutstandingToken.objects.filter(jti=session.refresh_jti):
            BlacklistedToken.objects.get_or_create(token=outstanding)
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
