"""The safety net behind the recordings queue: work that was queued and never finished is queued again.

A processing task can be lost without a trace: the broker was down when it was sent after the commit
(enqueue_on_commit logs and goes on), or the worker holding it was killed and the message expired.
Acked-late tasks cover a killed worker within the broker's visibility timeout; this sweep covers the
rest. It runs on beat, finds recordings still `processing` whose work was queued more than
RECORDINGS_STALLED_AFTER_SECONDS ago (longer than a task may run), and queues the step they are at:
the carrier download when the media is not in yet, the processing otherwise. Both steps are
idempotent, so a task that was only slow and now races the new one stores the recording once.

After RECORDINGS_MAX_WORK_TRIES the recording is marked failed with the reason, instead of being
retried forever; a carrier recording whose ready callback never came is marked failed after
RECORDINGS_CARRIER_CALLBACK_WAIT_SECONDS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config.celery_utils import enqueue_on_commit
from recordings import services
from recordings.carrier import FETCH_TASK
from recordings.models import Recording, Status

logger = logging.getLogger(__name__)

SWEEP_BATCH = 200


@dataclass
class Resumed:
    requeued: int = 0
    failed: int = 0


def resume_stalled(now: datetime | None = None) -> Resumed:
    now = now or timezone.now()
    stalled_before = now - timedelta(seconds=settings.RECORDINGS_STALLED_AFTER_SECONDS)
    callback_before = now - timedelta(seconds=settings.RECORDINGS_CARRIER_CALLBACK_WAIT_SECONDS)
    candidates = (
        Recording.objects.filter(status=Status.PROCESSING)
        .filter(
            Q(work_queued_at__lte=stalled_before)
            | Q(work_queued_at__isnull=True, stopped_at__lte=min(stalled_before, callback_before))
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    result = Resumed()
    for recording_id in list(candidates):
        outcome = _resume_one(recording_id, now, stalled_before, callback_before)
        if outcome == "requeued":
            result.requeued += 1
        elif outcome == "failed":
            result.failed += 1
    if result.requeued or result.failed:
        logger.warning("stalled recordings resumed", extra={"requeued": result.requeued, "failed": result.failed})
    return result


def _resume_one(recording_id: int, now: datetime, stalled_before: datetime, callback_before: datetime) -> str:
    with transaction.atomic():
        row = Recording.objects.select_for_update(skip_locked=True).filter(pk=recording_id).first()
        if row is None or row.status != Status.PROCESSING:
            return ""
        queued_at = row.work_queued_at
        if queued_at is None and not (row.storage_key or row.carrier_media_url):
            # a carrier recording that was stopped and waits for the carrier's "ready" callback
            if row.carrier and (row.stopped_at or now) <= callback_before:
                reason = (
                    f"{row.carrier} never reported the recording ready "
                    f"(waited {settings.RECORDINGS_CARRIER_CALLBACK_WAIT_SECONDS:.0f} s after it stopped)"
                )
                services.mark_failed(row.pk, reason)
                return "failed"
            return ""
        if (queued_at or row.stopped_at or now) > stalled_before:
            return ""
        if row.work_tries >= settings.RECORDINGS_MAX_WORK_TRIES:
            reason = f"the work was queued {row.work_tries} times and never finished (workers lost or killed)"
            services.mark_failed(row.pk, reason)
            return "failed"
        task = FETCH_TASK if row.carrier and row.carrier_media_url else services.PROCESS_TASK
        row.work_queued_at, row.work_tries = now, row.work_tries + 1
        row.save(update_fields=["work_queued_at", "work_tries"])
        enqueue_on_commit(task, row.pk)
        return "requeued"
