"""Writes for the registry: register, change and deactivate integrations (the API's, audited).

Credentials arrive in `auth_config` and are sealed at once; a change merges the keys given into the
stored ones (a null removes a key), so a caller can rotate one secret without re-sending the rest.
`integration_id` is the caller's stable name and never changes: messages and metrics refer to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
CREDENTIAL_FIELDS = ("auth_config_sealed", "auth_config_keys")


@dataclass(frozen=True)
class CredentialChange:
    """What a person or caller changes in the stored credentials, applied to what is stored at the
    moment of saving (under the row's lock), never to an older read: a worker may have rotated a
    token in between (X's refresh token), and writing back the old one would lose the new one."""

    clear: bool = False  # start from nothing (the admin's "remove every stored credential")
    given: dict = field(default_factory=dict)
    removed: tuple[str, ...] = ()

    def applied_to(self, stored: dict) -> dict:
        config = {} if self.clear else dict(stored)
        for key in self.removed:
            config.pop(key, None)
        config.update(self.given)
        return config

    @classmethod
    def from_api(cls, auth_config: dict | None) -> CredentialChange:
        """The API's merge: keys given replace, a null removes one."""
        auth_config = auth_config or {}
        given = {key: value for key, value in auth_config.items() if value is not None}
        return cls(given=given, removed=tuple(key for key, value in auth_config.items() if value is None))


def create_integration(data: dict[str, Any], *, actor: Any = None) -> Integration:
    integration = Integration(integration_id=data["integration_id"])
    for name in PLAIN_FIELDS:
        if name in data:
            setattr(integration, name, data[name])
    integration.set_auth_config(data.get("auth_config") or {})
    return _save(integration, actor, created=True, changed=sorted(data))


def update_integration(integration: Integration, data: dict[str, Any], *, actor: Any = None) -> Integration:
    if "integration_id" in data and data["integration_id"] != integration.integration_id:
        raise InvalidInput(
            "integration_id never changes: register a new integration instead.",
            fields={"integration_id": "This field cannot be changed."},
        )
    for name in PLAIN_FIELDS:
        if name in data:
            setattr(integration, name, data[name])
    change = CredentialChange.from_api(data["auth_config"]) if "auth_config" in data else None
    if change is not None:
        integration.set_auth_config(change.applied_to(integration.auth_config))  # what full_clean checks
    changed = sorted(key for key in data if key != "integration_id")
    return _save(integration, actor, created=False, changed=changed, credentials=change)


def deactivate_integration(integration: Integration, *, actor: Any = None) -> Integration:
    """Inactive: no new messages, queued ones are not sent; the history stays readable."""
    integration.active = False
    return _save(integration, actor, created=False, changed=["active"], credentials=None)


def _save(
    integration: Integration,
    actor: Any,
    *,
    created: bool,
    changed: list[str],
    credentials: CredentialChange | None = None,
) -> Integration:
    try:
        integration.full_clean(validate_unique=False)
    except ValidationError as exc:
        fields = {name: " ".join(problems) for name, problems in exc.message_dict.items()}
        raise InvalidInput(
            "Invalid integration: " + "; ".join(f"{name}: {text}" for name, text in fields.items()), fields=fields
        ) from None  # the cause may quote a value; the fields say what is wrong
    try:
        with transaction.atomic():
            if created:
                integration.save()
            else:
                store_changes(integration, credentials)
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


def store_changes(integration: Integration, credentials: CredentialChange | None) -> None:
    """Saves a changed integration. Its credentials are written only when they change, and then as
    the change applied to the stored ones, read again under the row's lock (see CredentialChange)."""
    names = [f.attname for f in Integration._meta.concrete_fields if not f.primary_key]
    with transaction.atomic():
        if credentials is None:
            integration.save(update_fields=[name for name in names if name not in CREDENTIAL_FIELDS])
            return
        stored = Integration.objects.select_for_update().get(pk=integration.pk)
        integration.set_auth_config(credentials.applied_to(stored.auth_config))
        integration.save(update_fields=names)


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
