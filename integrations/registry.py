"""Writes for the registry: register, change and deactivate integrations (the API's, audited).

Credentials arrive in `auth_config` and are sealed at once; a change merges the keys given into the
stored ones (a null removes a key), so a caller can rotate one secret without re-sending the rest.
`integration_id` is the caller's stable name and never changes: messages and metrics refer to it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts import audit
from accounts.models import AuditAction
from config.errors import DomainError, InvalidInput
from integrations.models import Integration

PLAIN_FIELDS = (
    "name",
    "type",
    "provider",
    "endpoint_url",
    "auth_type",
    "options",
    "events",
    "active",
    "max_attempts",
    "rate_limit_per_second",
)


def create_integration(data: dict[str, Any], *, actor: Any = None) -> Integration:
    integration = Integration(integration_id=data["integration_id"])
    for field in PLAIN_FIELDS:
        if field in data:
            setattr(integration, field, data[field])
    integration.set_auth_config(data.get("auth_config") or {})
    return _save(integration, actor, created=True, changed=sorted(data))


def update_integration(integration: Integration, data: dict[str, Any], *, actor: Any = None) -> Integration:
    if "integration_id" in data and data["integration_id"] != integration.integration_id:
        raise InvalidInput(
            "integration_id never changes: register a new integration instead.",
            fields={"integration_id": "This field cannot be changed."},
        )
    for field in PLAIN_FIELDS:
        if field in data:
            setattr(integration, field, data[field])
    if "auth_config" in data:
        config = integration.auth_config
        for key, value in (data["auth_config"] or {}).items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        integration.set_auth_config(config)
    return _save(integration, actor, created=False, changed=sorted(key for key in data if key != "integration_id"))


def deactivate_integration(integration: Integration, *, actor: Any = None) -> Integration:
    """Inactive: no new messages, queued ones are not sent; the history stays readable."""
    integration.active = False
    return _save(integration, actor, created=False, changed=["active"])


def _save(integration: Integration, actor: Any, *, created: bool, changed: list[str]) -> Integration:
    try:
        integration.full_clean(validate_unique=False)
    except ValidationError as exc:
        fields = {name: " ".join(problems) for name, problems in exc.message_dict.items()}
        raise InvalidInput(
            "Invalid integration: " + "; ".join(f"{name}: {text}" for name, text in fields.items()), fields=fields
        ) from None  # the cause may quote a value; the fields say what is wrong
    try:
        with transaction.atomic():
            integration.save()
            audit.record(
                AuditAction.INTEGRATION_CHANGED,
                actor=actor,
                target=f"integration:{integration.integration_id}",
                data={"created": created, "fields": changed},
            )
    except IntegrityError as exc:
        raise DomainError(
            f"An integration with integration_id {integration.integration_id!r} exists already.",
            code="duplicate",
            fields={"integration_id": "Already taken."},
        ) from exc
    return integration


def reseal_credentials(*, actor: Any = None) -> int:
    """Seals every integration's credentials again under the newest key of the ring (after a key is
    put first), so the retired key can be removed. Idempotent: what is already under the newest key
    is left as it is. Cached OAuth2 tokens are not touched: one sealed under a removed key is simply
    fetched again."""
    from integrations import credentials

    newest = credentials.newest_key_id()
    moved = 0
    for pk in Integration.objects.exclude(auth_config_sealed="").values_list("pk", flat=True).order_by("pk"):
        with transaction.atomic():
            integration = Integration.objects.select_for_update().get(pk=pk)
            sealed_under = credentials.sealed_key_id(integration.auth_config_sealed)
            if sealed_under == newest:
                continue
            integration.set_auth_config(integration.auth_config)
            integration.save(update_fields=["auth_config_sealed"])
            audit.record(
                AuditAction.INTEGRATION_CHANGED,
                actor=actor,
                target=f"integration:{integration.integration_id}",
                data={"resealed": True, "was_under": sealed_under, "now_under": newest},
            )
            moved += 1
    return moved
