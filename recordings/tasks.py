"""Thin tasks on the `recordings` queue: take an id, call the service."""

from __future__ import annotations

from celery import shared_task

from recordings import carrier, compliance, resume, services
from recordings.storage import StorageError

MAX_RETRIES = 5


@shared_task(
    bind=True,
    name="recordings.process_upload",
    acks_late=True,
    ignore_result=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=9 * 60,  # under the broker's 15-minute visibility timeout: never delivered twice at once
    time_limit=10 * 60,
)
def process_upload(self, recording_id: int) -> None:
    """Acked late and idempotent: a worker killed mid-way leaves the row `processing` and the task
    to another worker. A store that keeps failing is retried with backoff, then recorded as failed."""
    try:
        services.process(recording_id)
    except StorageError as exc:
        if self.request.retries >= MAX_RETRIES:
            services.mark_failed(recording_id, f"storage kept failing: {exc}")
            return
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc


@shared_task(name="recordings.purge_expired", ignore_result=True)
def purge_expired() -> int:
    return compliance.purge_expired()


@shared_task(name="recordings.resume_stalled", ignore_result=True)
def resume_stalled() -> dict:
    result = resume.resume_stalled()
    return {"requeued": result.requeued, "failed": result.failed}


FETCH_MAX_RETRIES = 6


@shared_task(
    bind=True,
    name="recordings.fetch_carrier_audio",
    acks_late=True,
    ignore_result=True,
    max_retries=FETCH_MAX_RETRIES,
    soft_time_limit=9 * 60,
    time_limit=10 * 60,
)
def fetch_carrier_audio(self, recording_id: int) -> None:
    """Downloads a carrier's recording and processes it. A carrier not ready yet, a timeout or a
    failing store is retried with backoff (2, 4, 8 … s, at most 5 min); refused credentials, or the
    retries spent, are recorded on the row as failed."""
    try:
        carrier.fetch_and_process(recording_id)
    except carrier.MediaRefused as exc:
        services.mark_failed(recording_id, f"carrier media refused: {exc}")
    except (carrier.MediaNotReady, StorageError) as exc:
        if self.request.retries >= FETCH_MAX_RETRIES:
            services.mark_failed(recording_id, f"carrier media kept failing: {exc}")
            return
        raise self.retry(exc=exc, countdown=min(300, 2 ** (self.request.retries + 1))) from exc
    except services.DomainError as exc:  # not audio, too large: the carrier sent something we refuse
        services.mark_failed(recording_id, f"carrier media refused: {exc}")
