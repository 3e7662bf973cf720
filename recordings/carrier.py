"""Recording live carrier calls: ask the call's carrier to record, stop it, take the carrier's
"recording ready" callback, and fetch the media with the carrier's credentials.

Dependencies run one way: recordings uses the orchestrator's selectors (which attempt a call id
names) and its voice providers (the carrier's own recording requests, in orchestrator/voice/);
the orchestrator never imports recordings. A call a policy records reports to a URL carrying the
attempt's token (the dial knows no recording yet); the row is made when that callback arrives.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.celery_utils import enqueue_on_commit
from config.errors import DomainError, NotFound
from orchestrator import selectors as calls
from orchestrator.models import AttemptStatus
from orchestrator.voice import ProviderError, get_provider
from orchestrator.voice.base import recording_callback_url
from recordings import services
from recordings.models import Kind, Recording, Status, new_callback_token

logger = logging.getLogger(__name__)

FETCH_TASK = "recordings.fetch_carrier_audio"
DOWNLOAD_CHUNK_BYTES = 256 * 1024
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 30.0


class CarrierRefused(DomainError):
    status_code = 502
    code = "carrier_error"


class MediaNotReady(Exception):
    """The carrier could not hand the media over this time (a 404 before it is ready, a 5xx, a
    timeout): worth trying again later."""


class MediaRefused(Exception):
    """The carrier will not hand the media over (credentials refused, a URL not on its host)."""


def start_live(
    *,
    call_id: str,
    session_id: str,
    agent_id: str,
    customer_id: str,
    quality: str | None = None,
    retention_days: int | None = None,
) -> Recording:
    """Asks the carrier of the call `call_id` names (our attempt id or the carrier's call id) to record
    it. The row exists (and commits) before the carrier is asked, so its callback always finds it."""
    attempt = calls.attempt_for_call(call_id)
    if attempt is None:
        raise NotFound(f"No call {call_id!r}: give one of our call attempt ids or a carrier call id.")
    if attempt.status != AttemptStatus.IN_PROGRESS or not attempt.provider_call_id:
        raise DomainError(
            f"Call {call_id} is {attempt.get_status_display().lower()}; only a call in progress can be recorded."
        )
    recording = Recording.objects.create(
        kind=Kind.VOICE,
        session_id=session_id,
        agent_id=agent_id,
        customer_id=customer_id,
        quality=quality or settings.RECORDINGS_DEFAULT_QUALITY,
        retention_days=retention_days,
        started_at=timezone.now(),
        call_attempt_id=attempt.pk,
        incident_id=attempt.incident_id,
        carrier=attempt.provider,
        carrier_call_id=attempt.provider_call_id,
        callback_token=new_callback_token(),
    )
    try:
        carrier_recording_id = get_provider(attempt.provider).start_recording(
            attempt.provider_call_id,
            callback_url=recording_callback_url(attempt.provider, recording.callback_token),
            attempt_token=attempt.token,
        )
    except ProviderError as exc:
        recording.status, recording.failure_reason = Status.FAILED, f"the carrier would not record: {exc}"[:2000]
        recording.save(update_fields=["status", "failure_reason"])
        raise CarrierRefused(f"{attempt.provider} did not start recording call {call_id}: {exc}") from exc
    if carrier_recording_id:
        Recording.objects.filter(pk=recording.pk, carrier_recording_id="").update(
            carrier_recording_id=carrier_recording_id
        )
        recording.carrier_recording_id = carrier_recording_id
    return recording


def stop_live(recording_id: int) -> Recording:
    """Stops a carrier recording (Twilio: status=stopped). Vonage has no such request: its recording
    ends with the call. Either way the row waits (`processing`) for the carrier's callback. Twice is a 409."""
    with transaction.atomic():
        row = Recording.objects.select_for_update().filter(pk=recording_id, kind=Kind.VOICE).first()
        if row is None:
            raise NotFound(f"No voice recording {recording_id}.")
        if row.status != Status.RECORDING or row.stopped_at is not None:
            raise DomainError(f"Recording {row.pk} is already stopped ({row.status}).")
        row.stopped_at = timezone.now()
        row.save(update_fields=["stopped_at"])
    try:
        stopped = get_provider(row.carrier).stop_recording(row.carrier_call_id, row.carrier_recording_id)
    except ProviderError as exc:
        Recording.objects.filter(pk=row.pk).update(stopped_at=None)
        raise CarrierRefused(f"{row.carrier} did not stop recording {row.pk}: {exc}") from exc
    with transaction.atomic():
        row = Recording.objects.select_for_update().get(pk=row.pk)
        if row.status == Status.RECORDING:
            row.status = Status.PROCESSING
            if not stopped:
                row.failure_reason = ""  # nothing failed: the carrier records until the call ends
            row.save(update_fields=["status", "failure_reason"])
    return row


@dataclass(frozen=True)
class CarrierRecording:
    """What a carrier's recording-ready callback says."""

    carrier: str
    recording_id: str
    media_url: str
    call_id: str = ""


def recording_ready(token: str, ready: CarrierRecording) -> Recording:
    """The carrier has the file: note where, and queue the download. Repeats (a retried callback)
    find the same row and queue nothing new once the media is in."""
    with transaction.atomic():
        row = Recording.objects.select_for_update().filter(callback_token=token).first()
        if row is None:
            row = _row_for_policy_recording(token, ready)
        if row.status not in (Status.RECORDING, Status.PROCESSING) or row.storage_key:
            return row
        row.carrier_recording_id = row.carrier_recording_id or ready.recording_id[:100]
        row.carrier_media_url = ready.media_url[:500]
        row.carrier_call_id = row.carrier_call_id or ready.call_id[:64]
        row.status, row.stopped_at = Status.PROCESSING, row.stopped_at or timezone.now()
        row.work_queued_at, row.work_tries = timezone.now(), row.work_tries + 1
        row.save()
        enqueue_on_commit(FETCH_TASK, row.pk)
        return row


def _row_for_policy_recording(token: str, ready: CarrierRecording) -> Recording:
    """A call its policy recorded reports to a URL with the attempt's token: one row per carrier
    recording, linked to the attempt and its incident."""
    attempt = calls.attempt_by_token(token)
    if attempt is None:
        raise NotFound("No recording or call has this webhook URL.")
    existing = (
        Recording.objects.select_for_update()
        .filter(carrier=ready.carrier, carrier_recording_id=ready.recording_id[:100])
        .first()
    )
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return Recording.objects.create(
                kind=Kind.VOICE,
                status=Status.RECORDING,
                session_id=f"incident-{attempt.incident_id}",
                agent_id=f"contact-{attempt.contact_id}",
                customer_id="",
                quality=settings.RECORDINGS_DEFAULT_QUALITY,
                started_at=attempt.answered_at or attempt.dialed_at or timezone.now(),
                call_attempt_id=attempt.pk,
                incident_id=attempt.incident_id,
                carrier=ready.carrier,
                carrier_call_id=attempt.provider_call_id or ready.call_id[:64],
                carrier_recording_id=ready.recording_id[:100],
            )
    except IntegrityError:  # the same callback, at the same moment, made it first
        return Recording.objects.select_for_update().get(
            carrier=ready.carrier, carrier_recording_id=ready.recording_id[:100]
        )


def fetch_and_process(recording_id: int) -> None:
    """Downloads the carrier's media (streamed in chunks to a private temporary file, never whole in
    memory), stores it encrypted, then processes it like an upload. Idempotent: media already
    stored is not fetched again."""
    row = Recording.objects.filter(pk=recording_id).first()
    if row is None or row.status != Status.PROCESSING:
        return
    if not row.storage_key:
        with tempfile.TemporaryFile(prefix=f"carrier-recording-{recording_id}-") as media:
            _download(row, media)
            media.seek(0)
            sealed = services.seal_source(row, media)
        with transaction.atomic():
            row = Recording.objects.select_for_update().get(pk=recording_id)
            if row.status != Status.PROCESSING or row.storage_key:
                return
            sealed.apply(row)
            row.save()
    services.process(recording_id)


def _download(row: Recording, target) -> None:
    try:
        headers = get_provider(row.carrier).media_headers(row.carrier_media_url)
    except ProviderError as exc:
        raise MediaRefused(str(exc)) from exc
    try:
        with requests.get(
            row.carrier_media_url,
            headers=headers,
            stream=True,
            timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
            allow_redirects=True,  # requests drops Authorization when a redirect leaves the carrier's host
        ) as response:
            if response.status_code in (401, 403):
                raise MediaRefused(f"{row.carrier} refused our credentials for the media (HTTP {response.status_code})")
            if response.status_code != 200:
                raise MediaNotReady(f"{row.carrier} answered HTTP {response.status_code} for the media")
            for chunk in response.iter_content(DOWNLOAD_CHUNK_BYTES):
                target.write(chunk)
    except requests.RequestException as exc:
        raise MediaNotReady(f"the media could not be fetched from {row.carrier}: {exc.__class__.__name__}") from exc
