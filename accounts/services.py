"""Writes for accounts: API keys are made and revoked here, nowhere else."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import APIKey, Scope, User
from config.errors import InvalidInput

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
    created_by: User | None = None,
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
        created_by=created_by,
    )
    return api_key, raw_key


def revoke_api_key(api_key: APIKey) -> APIKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def record_api_key_use(api_key: APIKey) -> None:
    """Stamps `last_used_at`, at most once a minute per key, so a storm of alerts costs no writes."""
    now = timezone.now()
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if api_key.last_used_at is None or now - api_key.last_used_at >= resolution:
        APIKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
