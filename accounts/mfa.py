"""TOTP multi-factor authentication: enrol, confirm, verify (each code once), disable, recovery codes."""

from __future__ import annotations

import base64
import hashlib
import secrets

import pyotp
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import audit
from accounts.models import AuditAction, MFADevice, RecoveryCode, User
from config.errors import DomainError, InvalidInput

RECOVERY_CODE_COUNT = 10
TOTP_PERIOD = 30


def _fernet() -> Fernet:
    key = (
        settings.MFA_ENCRYPTION_KEY
        or base64.urlsafe_b64encode(hashlib.sha256(f"mfa:{settings.SECRET_KEY}".encode()).digest()).decode()
    )
    return Fernet(key)


def _secret(device: MFADevice) -> str:
    return _fernet().decrypt(device.encrypted_secret.encode()).decode()


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().lower().replace("-", "").encode()).hexdigest()


def is_required(user: User) -> bool:
    return user.role in settings.MFA_REQUIRED_ROLES


def is_enabled(user: User) -> bool:
    return MFADevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


@transaction.atomic
def enrol(user: User) -> tuple[str, str]:
    """Starts enrolment: a new secret and the otpauth:// URI for an authenticator app."""
    if is_enabled(user):
        raise DomainError("MFA is already on; disable it first to enrol a new authenticator.", code="mfa_enabled")
    secret = pyotp.random_base32()
    MFADevice.objects.update_or_create(
        user=user,
        defaults={"encrypted_secret": _fernet().encrypt(secret.encode()).decode(), "confirmed_at": None},
    )
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.get_username(), issuer_name=settings.MFA_ISSUER)
    return secret, uri


def _matching_step(device: MFADevice, token: str) -> int | None:
    """The TOTP time step `token` belongs to (this one or a neighbour for clock drift), or None."""
    token = (token or "").strip().replace(" ", "")
    if not (token.isdigit() and len(token) == 6):
        return None
    totp = pyotp.TOTP(_secret(device))
    now_step = int(timezone.now().timestamp()) // TOTP_PERIOD
    for step in (now_step, now_step - 1, now_step + 1):
        if secrets.compare_digest(totp.at(step * TOTP_PERIOD), token):
            return step
    return None


@transaction.atomic
def confirm(user: User, token: str) -> list[str]:
    """Turns MFA on once the app shows a right code; returns one-time recovery codes (shown once)."""
    device = MFADevice.objects.select_for_update().filter(user=user).first()
    if device is None:
        raise DomainError("Start with POST /api/v1/auth/mfa/enrol.", code="mfa_not_enrolled")
    if device.confirmed_at:
        raise DomainError("MFA is already on.", code="mfa_enabled")
    step = _matching_step(device, token)
    if step is None:
        raise InvalidInput("The code is wrong or expired.", fields={"token": "wrong code"})
    device.confirmed_at = timezone.now()
    device.last_used_step = step
    device.save(update_fields=["confirmed_at", "last_used_step"])
    codes = _new_recovery_codes(user)
    audit.record(AuditAction.MFA_ENROLLED, actor=user, target=f"user:{user.get_username()}")
    return codes


def _new_recovery_codes(user: User) -> list[str]:
    RecoveryCode.objects.filter(user=user).delete()
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.bulk_create([RecoveryCode(user=user, code_hash=_hash_code(code)) for code in codes])
    return codes


@transaction.atomic
def verify(user: User, token: str) -> str | None:
    """'totp' or 'recovery_code' when `token` is right and unused, else None. Each is accepted once."""
    device = MFADevice.objects.select_for_update().filter(user=user, confirmed_at__isnull=False).first()
    if device is None or not token:
        return None
    step = _matching_step(device, token)
    if step is not None:
        if step <= device.last_used_step:
            return None  # a replayed code
        device.last_used_step = step
        device.save(update_fields=["last_used_step"])
        return "totp"
    code = (
        RecoveryCode.objects.select_for_update()
        .filter(user=user, code_hash=_hash_code(token), used_at__isnull=True)
        .first()
    )
    if code is None:
        return None
    code.used_at = timezone.now()
    code.save(update_fields=["used_at"])
    audit.record(AuditAction.RECOVERY_CODE_USED, actor=user, target=f"user:{user.get_username()}")
    return "recovery_code"


def _require_valid(user: User, token: str) -> None:
    if verify(user, token) is None:
        raise InvalidInput("The MFA code is wrong, expired or already used.", fields={"token": "wrong code"})


@transaction.atomic
def disable(user: User, token: str) -> None:
    if not is_enabled(user):
        raise DomainError("MFA is not on.", code="mfa_not_enabled")
    _require_valid(user, token)
    MFADevice.objects.filter(user=user).delete()
    RecoveryCode.objects.filter(user=user).delete()
    audit.record(AuditAction.MFA_DISABLED, actor=user, target=f"user:{user.get_username()}")


@transaction.atomic
def regenerate_recovery_codes(user: User, token: str) -> list[str]:
    _require_valid(user, token)
    codes = _new_recovery_codes(user)
    audit.record(AuditAction.RECOVERY_CODES_REGENERATED, actor=user, target=f"user:{user.get_username()}")
    return codes
