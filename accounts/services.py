"""Writes for accounts: API keys are made and revoked here, nowhere else."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import audit
from accounts.models import APIKey, AuditAction, Role, Scope, User
from config.errors import DomainError, Forbidden, InvalidInput

API_KEY_MARK = "ock_"


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def validate_scopes(scopes: list[str]) -> list[str]:
    cleaned = sorted({scope.strip() for scope in scopes if scope.strip()})
    unknown = [scope for scope in cleaned if scope not in Scope.values]
    if unknown:
        raise InvalidInput(
            f"Unknown scope(s): {', '.join(unknown)}. Known scopes: {', '.join(Scope.values)}.",
            fields={"scopes": f"unknown: {', '.join(unknown)}"},
        )
    return cleaned


@transaction.atomic
def create_api_key(
    *,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    created_by: Any = None,
) -> tuple[APIKey, str]:
    """Returns the new key row and the key itself, which is never stored and cannot be shown again."""
    name = name.strip()
    if not name:
        raise InvalidInput("An API key needs a name.", fields={"name": "required"})
    cleaned_scopes = validate_scopes(scopes)
    prefix = secrets.token_hex(6)
    raw_key = f"{API_KEY_MARK}{prefix}.{secrets.token_urlsafe(32)}"
    api_key = APIKey.objects.create(
        name=name,
        prefix=prefix,
        hashed_key=hash_api_key(raw_key),
        scopes=cleaned_scopes,
        expires_at=expires_at,
        created_by=created_by if isinstance(created_by, User) else None,
    )
    audit.record(
        AuditAction.API_KEY_CREATED,
        actor=created_by,
        target=f"api-key:{api_key.name}",
        data={"prefix": api_key.prefix, "scopes": cleaned_scopes},
    )
    return api_key, raw_key


def revoke_api_key(api_key: APIKey, *, actor: Any = None) -> APIKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit.record(
            AuditAction.API_KEY_REVOKED, actor=actor, target=f"api-key:{api_key.name}", data={"prefix": api_key.prefix}
        )
    return api_key


def record_api_key_use(api_key: APIKey) -> None:
    """Stamps `last_used_at`, at most once a minute per key, so a storm of alerts costs no writes."""
    now = timezone.now()
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if api_key.last_used_at is None or now - api_key.last_used_at >= resolution:
        APIKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now


# --- people -----------------------------------------------------------------------------------


def _check_may_grant(actor: User | None, role: str) -> None:
    """ADMIN manages everyone up to ADMIN; only SUPER_ADMIN makes or changes a SUPER_ADMIN."""
    if actor is None:
        return  # a command-line or open sign-up path decided the role itself
    if role == Role.SUPER_ADMIN and actor.role != Role.SUPER_ADMIN:
        raise Forbidden("Only a super admin can grant the SUPER_ADMIN role.")
    if not actor.has_role(Role.ADMIN):
        raise Forbidden("Only ADMIN and above manage users.")


@transaction.atomic
def register_user(
    *, username: str, password: str, email: str = "", role: str = Role.VIEWER, actor: User | None = None
) -> User:
    _check_may_grant(actor, role)
    if User.objects.filter(username__iexact=username).exists():
        raise InvalidInput(f"The username {username!r} is taken.", fields={"username": "taken"})
    user = User(username=username, email=email, role=role)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput(f"password: {' '.join(exc.messages)}", fields={"password": exc.messages}) from exc
    user.set_password(password)
    user.save()
    audit.record(AuditAction.USER_CREATED, actor=actor or "self-signup", target=f"user:{username}", data={"role": role})
    return user


@transaction.atomic
def update_user(user: User, *, actor: User, role: str | None = None, is_active: bool | None = None) -> User:
    if user.role == Role.SUPER_ADMIN and actor.role != Role.SUPER_ADMIN:
        raise Forbidden("Only a super admin can change a super admin.")
    if role is not None and role != user.role:
        _check_may_grant(actor, role)
        audit.record(
            AuditAction.ROLE_CHANGED, actor=actor, target=f"user:{user.username}", data={"from": user.role, "to": role}
        )
        user.role = role
    if is_active is not None and is_active != user.is_active:
        if user.pk == actor.pk and not is_active:
            raise DomainError("You cannot disable your own account.", code="self_disable")
        audit.record(
            AuditAction.USER_UPDATED, actor=actor, target=f"user:{user.username}", data={"is_active": is_active}
        )
        user.is_active = is_active
    user.save()
    return user


def clear_lockout(username: str, *, actor: Any) -> int:
    """Unlocks an account locked by repeated failed sign-ins (and the addresses that failed on it)."""
    from axes.models import AccessAttempt
    from axes.utils import reset

    addresses = set(AccessAttempt.objects.filter(username=username).values_list("ip_address", flat=True))
    cleared = reset(username=username) + sum(reset(ip=address) for address in addresses if address)
    audit.record(AuditAction.LOCKOUT_CLEARED, actor=actor, target=f"user:{username}")
    return cleared
