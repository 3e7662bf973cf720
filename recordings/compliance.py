"""What a compliance officer decides about a recording: how long it is kept, whether it is on legal
hold, and the purge that enforces both.

Retention is counted in days from the moment the recording was stored (or failed); a per-recording
value overrides the kind's default from settings. A recording on legal hold is never purged, however
old; releasing the hold lets the next purge take it if its date has passed. Every change is audited.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import audit
from accounts.models import AuditAction
from config.errors import DomainError, NotFound
from recordings.models import Kind, Recording, Status
from recordings.storage import StorageError, get_storage

logger = logging.getLogger(__name__)

PURGE_BATCH = 500
_UNSET = object()


def days_kept(recording: Recording) -> int:
    """The recording's own retention, else its kind's default."""
    if recording.retention_days:
        return recording.retention_days
    if recording.kind == Kind.CHAT:
        return settings.RECORDINGS_RETENTION_DAYS_CHAT
    return settings.RECORDINGS_RETENTION_DAYS_VOICE


def _retention_base(row: Recording) -> datetime | None:
    """Counted from when the object was kept (stored, or given up as failed); None while still open."""
    if row.status == Status.STORED:
        return row.stored_at
    if row.status == Status.FAILED:
        return row.stopped_at or row.created_at
    return None


def change_retention(
    recording_id: int, *, legal_hold: bool | None = None, retention_days: Any = _UNSET, actor: Any = None
) -> Recording:
    """Sets the legal hold and/or the recording's own retention (None: back to the kind's default),
    recomputing the purge date of a kept recording. A purged recording cannot be changed (409)."""
    with transaction.atomic():
        row = Recording.objects.select_for_update().filter(pk=recording_id).first()
        if row is None:
            raise NotFound(f"No recording {recording_id}.")
        if row.status == Status.PURGED:
            raise DomainError(
                f"Recording {recording_id} was purged on {row.purged_at:%Y-%m-%d}; there is nothing left to keep."
            )
        changed: dict[str, Any] = {}
        if legal_hold is not None and legal_hold != row.legal_hold:
            row.legal_hold = changed["legal_hold"] = legal_hold
        if retention_days is not _UNSET and retention_days != row.retention_days:
            row.retention_days = changed["retention_days"] = retention_days
            base = _retention_base(row)
            if base is not None:
                row.retention_until = base + timedelta(days=days_kept(row))
                changed["retention_until"] = row.retention_until.isoformat()
        if changed:
            row.save(update_fields=["legal_hold", "retention_days", "retention_until"])
            audit.record(AuditAction.RECORDING_CHANGED, actor=actor, target=f"recording:{row.pk}", data=changed)
        return row


def set_legal_hold(recording_id: int, *, hold: bool, actor: Any = None) -> Recording:
    return change_retention(recording_id, legal_hold=hold, actor=actor)


def purge_expired(now: datetime | None = None) -> int:
    """Purges recordings past their retention date, never one on legal hold. The row becomes a
    tombstone (when and why) and loses its wrapped data key in the same commit, so the object is
    unreadable from that moment even if deleting it fails or a copy survives (a backup, a version);
    the object itself is deleted after the commit."""
    now = now or timezone.now()
    due = Recording.objects.filter(
        status__in=[Status.STORED, Status.FAILED], legal_hold=False, retention_until__lte=now
    ).values_list("pk", flat=True)
    purged = 0
    for recording_id in list(due[:PURGE_BATCH]):
        with transaction.atomic():
            row = Recording.objects.select_for_update(skip_locked=True).filter(pk=recording_id).first()
            if row is None or row.legal_hold or row.status not in (Status.STORED, Status.FAILED):
                continue
            if row.retention_until is None or row.retention_until > now:
                continue  # its retention was lengthened since the list was read
            key = row.storage_key
            row.status, row.purged_at = Status.PURGED, now
            row.purge_reason = f"retention expired ({days_kept(row)} days, until {row.retention_until:%Y-%m-%d})"
            row.wrapped_key, row.storage_key = None, ""
            row.save()
            if key:
                transaction.on_commit(lambda key=key, pk=row.pk: _delete_object(pk, key))
            purged += 1
    return purged


def _delete_object(recording_id: int, key: str) -> None:
    try:
        get_storage().delete(key)
    except StorageError as exc:  # the data key is gone already: what is left cannot be decrypted
        logger.warning(
            "purged recording's object could not be deleted", extra={"recording_id": recording_id, "reason": str(exc)}
        )
