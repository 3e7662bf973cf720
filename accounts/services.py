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
from accounts.models import STAFF_ROLES, APIKey, AuditAction, Role, Scope, User
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


def validate_expiry(expires_at: datetime | None) -> datetime | None:
    """A key expires in the future, and within API_KEY_MAX_LIFETIME_DAYS: a key born expired or
    valid for centuries is a typo, not a decision."""
    if expires_at is None:
        return None
    now = timezone.now()
    longest = timedelta(days=settings.API_KEY_MAX_LIFETIME_DAYS)
    if expires_at <= now:
        raise InvalidInput(
            f"expires_at ({expires_at.isoformat()}) has already passed; give a future time or none.",
            fields={"expires_at": "must be in the future"},
        )
    if expires_at - now > longest:
        raise InvalidInput(
            f"expires_at is more than {longest.days} days away; rotate keys at least that often.",
            fields={"expires_at": f"must be within {longest.days} days"},
        )
    return expires_at


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
    expires_at = validate_expiry(expires_at)
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


def _is_active_staff(role: str, is_active: bool) -> bool:
    return is_active and role in STAFF_ROLES


def _other_active_staff(user: User) -> list[int]:
    """The other active ADMIN and SUPER_ADMIN accounts. Every staff row is locked (in pk order), so two
    administrators demoting each other at once are served one after the other, and the second sees
    the first one's change."""
    staff = User.objects.select_for_update().filter(is_active=True, role__in=STAFF_ROLES).order_by("pk")
    return [pk for pk in staff.values_list("pk", flat=True) if pk != user.pk]


def check_access_change(user: User, *, actor: User, role: str | None = None, is_active: bool | None = None) -> None:
    """Refuses the changes that can lock everyone out of administration: lowering your own role,
    disabling yourself, and demoting or disabling the last active ADMIN/SUPER_ADMIN.
    Call it inside the transaction that saves the change."""
    new_role = user.role if role is None else role
    new_active = user.is_active if is_active is None else is_active
    if user.pk == actor.pk and Role.rank(new_role) < Role.rank(user.role):
        raise DomainError(
            "You cannot lower your own role; another administrator has to do it.",
            code="self_demotion",
            fields={"role": "you cannot lower your own role"},
        )
    if user.pk == actor.pk and user.is_active and not new_active:
        raise DomainError(
            "You cannot disable your own account.", code="self_disable", fields={"is_active": "your own account"}
        )
    leaves_staff = _is_active_staff(user.role, user.is_active) and not _is_active_staff(new_role, new_active)
    if leaves_staff and not _other_active_staff(user):
        field = "role" if role is not None and role not in STAFF_ROLES else "is_active"
        raise DomainError(
            f"{user.username} is the last active administrator; make someone else ADMIN first.",
            code="last_admin",
            fields={field: "the last active administrator"},
        )


def check_may_delete(user: User, *, actor: User) -> None:
    """Deleting an account follows the same rule as disabling it."""
    if user.pk == actor.pk:
        raise DomainError("You cannot delete your own account.", code="self_delete")
    check_access_change(user, actor=actor, is_active=False)


@transaction.atomic
def update_user(user: User, *, actor: User, role: str | None = None, is_active: bool | None = None) -> User:
    if user.role == Role.SUPER_ADMIN and actor.role != Role.SUPER_ADMIN:
        raise Forbidden("Only a super admin can change a super admin.")
    if role is not None and role != user.role:
        _check_may_grant(actor, role)
    check_access_change(user, actor=actor, role=role, is_active=is_active)
    if role is not None and role != user.role:
        audit.record(
            AuditAction.ROLE_CHANGED, actor=actor, target=f"user:{user.username}", data={"from": user.role, "to": role}
        )
        user.role = role
    if is_active is not None and is_active != user.is_active:
        audit.record(
            AuditAction.USER_UPDATED, actor=actor, target=f"user:{user.username}", data={"is_active": is_active}
        )
        user.is_active = is_active
    user.save()
    return user


def clear_lockout(username: str, *, actor: Any) -> int:
    """Unlocks an account locked by repeated failed sign-ins (lockout is by account, see settings)."""
    from axes.utils import reset

    cleared = reset(username=username)
    audit.record(AuditAction.LOCKOUT_CLEARED, actor=actor, target=f"user:{username}")
    return cleared
