"""Writes: open recordings, take uploads and chat lines, process on a worker, purge, re-wrap keys.

Every object is written encrypted (recordings.crypto) through the configured store; plaintext
exists only in the request being streamed and in a worker's private temporary folder.
"""

from __future__ import annotations

import gzip
import json
import logging
import secrets
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.celery_utils import enqueue_on_commit
from config.errors import DomainError, InvalidInput, NotFound
from recordings import audio, compliance, crypto, events, metrics
from recordings.models import ChatMessage, Kind, Recording, Status
from recordings.storage import StorageError, get_storage

logger = logging.getLogger(__name__)

PROCESS_TASK = "recordings.process_upload"


class UnsupportedMediaType(DomainError):
    status_code = 415
    code = "unsupported_media_type"


class UploadTooLarge(DomainError):
    status_code = 413
    code = "request_too_large"


def _recording(recording_id: int, kind: str | None = None, *, lock: bool = False) -> Recording:
    rows = Recording.objects.select_for_update() if lock else Recording.objects
    recording = rows.filter(pk=recording_id).first()
    if recording is None or (kind and recording.kind != kind):
        raise NotFound(f"No {kind or ''} recording {recording_id}.".replace("  ", " "))
    return recording


def _require_open(recording: Recording, doing: str) -> None:
    if recording.status != Status.RECORDING:
        raise DomainError(f"Recording {recording.pk} is {recording.status}; {doing} only while it is recording.")


# --- opening --------------------------------------------------------------------------------------


def start_voice(
    *,
    session_id: str,
    agent_id: str,
    customer_id: str,
    call_id: str | None = None,
    quality: str | None = None,
    retention_days: int | None = None,
) -> Recording:
    """Opens a voice recording: of a live carrier call when `call_id` names one, else for direct upload."""
    if call_id:
        from recordings import carrier

        return carrier.start_live(
            call_id=call_id,
            session_id=session_id,
            agent_id=agent_id,
            customer_id=customer_id,
            quality=quality,
            retention_days=retention_days,
        )
    return Recording.objects.create(
        kind=Kind.VOICE,
        session_id=session_id,
        agent_id=agent_id,
        customer_id=customer_id,
        quality=quality or settings.RECORDINGS_DEFAULT_QUALITY,
        retention_days=retention_days,
        started_at=timezone.now(),
    )


def open_chat(
    *, session_id: str, agent_id: str, customer_id: str, channel: str = "", retention_days: int | None = None
) -> Recording:
    return Recording.objects.create(
        kind=Kind.CHAT,
        session_id=session_id,
        agent_id=agent_id,
        customer_id=customer_id,
        channel=channel,
        retention_days=retention_days,
        started_at=timezone.now(),
    )


def append_chat_message(
    recording_id: int, *, sender: str, text: str, sent_at: datetime, external_id: str = ""
) -> ChatMessage:
    """`external_id`: the platform's id of a line that came from elsewhere (a social message), unique
    among open chats' lines, so a redelivered message is recognised."""
    with transaction.atomic():
        recording = _recording(recording_id, Kind.CHAT, lock=True)
        _require_open(recording, "messages can be added")
        return ChatMessage.objects.create(
            recording=recording, sender=sender, text=text, sent_at=sent_at, external_id=external_id
        )


# --- uploads --------------------------------------------------------------------------------------


def too_large_message() -> str:
    return f"The audio is over the {settings.RECORDINGS_MAX_UPLOAD_BYTES}-byte limit (RECORDINGS_MAX_UPLOAD_BYTES)."


class _Limited:
    """Reads `head` then `source`, refusing to go past `limit` bytes."""

    def __init__(self, head: bytes, source: BinaryIO, limit: int):
        self._head, self._source, self._limit, self.count, self.exceeded = head, source, limit, 0, False

    def read(self, size: int = -1) -> bytes:
        if self._head:
            block, self._head = (
                (self._head, b"")
                if size < 0 or size >= len(self._head)
                else (
                    self._head[:size],
                    self._head[size:],
                )
            )
        else:
            block = self._source.read(size if size >= 0 else 1024 * 1024)
        self.count += len(block)
        if self.count > self._limit:
            self.exceeded = True
            raise UploadTooLarge(too_large_message())
        return block


def upload_audio(recording_id: int, source: BinaryIO) -> Recording:
    """Streams an upload into storage, encrypted under a fresh data key. The format is detected from
    the first bytes; an unknown one is refused before anything is stored. A new upload replaces an
    earlier one while the recording is open."""
    recording = _recording(recording_id, Kind.VOICE)
    _require_open(recording, "audio can be uploaded")
    sealed_source = seal_source(recording, source)
    with transaction.atomic():
        recording = _recording(recording_id, Kind.VOICE, lock=True)
        _require_open(recording, "audio can be uploaded")
        sealed_source.apply(recording)
        recording.save()
    return recording


class SealedSource:
    """An incoming audio file written encrypted to storage, not yet recorded on its row."""

    def __init__(self, source_format: str, backend: str, key: str, wrapped: crypto.WrappedKey, sealed) -> None:
        self.source_format, self.backend, self.key, self.wrapped, self.sealed = (
            source_format,
            backend,
            key,
            wrapped,
            sealed,
        )

    def apply(self, recording: Recording) -> None:
        recording.source_format, recording.source_size_bytes = self.source_format, self.sealed.plaintext_size
        _point_at(recording, self.backend, self.key, self.wrapped, self.sealed)


def seal_source(recording: Recording, source: BinaryIO) -> SealedSource:
    """Detects the format from the first bytes (415 for anything else), then streams the audio
    encrypted into `incoming/` (413 past RECORDINGS_MAX_UPLOAD_BYTES). Used by uploads and by the
    media a carrier recorded."""
    head = crypto.read_full(source, audio.MAGIC_BYTES_NEEDED)
    if not head:
        raise InvalidInput("The upload is empty; send the audio file as the body (or as the multipart 'file').")
    source_format = audio.detect_format(head)
    if source_format is None:
        raise UnsupportedMediaType(audio.unsupported_message(), fields={"accepted": list(audio.ACCEPTED_FORMATS)})
    limited = _Limited(head, source, settings.RECORDINGS_MAX_UPLOAD_BYTES)
    data_key, wrapped = crypto.new_data_key()
    sealed = crypto.EncryptingReader(limited, data_key)
    store, key = get_storage(), f"incoming/voice-{recording.pk}.enc"
    try:
        store.put(key, sealed)
    except (StorageError, UploadTooLarge):
        if limited.exceeded:
            store.delete(key)
            raise UploadTooLarge(too_large_message()) from None
        raise
    return SealedSource(source_format, store.name, key, wrapped, sealed)


def _point_at(recording: Recording, backend: str, key: str, wrapped: crypto.WrappedKey, sealed) -> None:
    recording.storage_backend, recording.storage_key = backend, key
    recording.key_id, recording.wrapped_key = wrapped.key_id, wrapped.blob
    recording.sha256, recording.size_bytes = sealed.sha256, sealed.plaintext_size
    recording.stored_size_bytes = crypto.ciphertext_size(sealed.plaintext_size)


def stop_voice(recording_id: int) -> Recording:
    """Stops the recording and queues its processing on the `recordings` queue (a carrier's recording:
    asks the carrier to stop, and its callback brings the media). Twice is a 409."""
    if Recording.objects.filter(pk=recording_id, kind=Kind.VOICE).exclude(carrier="").exists():
        from recordings import carrier

        return carrier.stop_live(recording_id)
    with transaction.atomic():
        recording = _recording(recording_id, Kind.VOICE, lock=True)
        if recording.status != Status.RECORDING:
            raise DomainError(f"Recording {recording.pk} is already stopped ({recording.status}).")
        if not recording.storage_key:
            raise DomainError(
                f"Recording {recording.pk} has no audio yet: PUT /api/v1/recordings/{recording.pk}/audio first."
            )
        return _queue(recording)


def close_chat(recording_id: int) -> Recording:
    """Closes the chat; a worker writes the log as gzip-compressed JSON, encrypted. Twice is a 409."""
    with transaction.atomic():
        recording = _recording(recording_id, Kind.CHAT, lock=True)
        if recording.status != Status.RECORDING:
            raise DomainError(f"Chat {recording.pk} is already closed ({recording.status}).")
        return _queue(recording)


def _queue(recording: Recording) -> Recording:
    recording.status, recording.stopped_at = Status.PROCESSING, timezone.now()
    recording.work_queued_at, recording.work_tries = recording.stopped_at, 1
    recording.save(update_fields=["status", "stopped_at", "work_queued_at", "work_tries"])
    enqueue_on_commit(PROCESS_TASK, recording.pk)
    return recording


# --- processing (the worker) ----------------------------------------------------------------------


def process(recording_id: int) -> None:
    """Idempotent: only a recording still `processing` is worked on, and the row moves to `stored`
    only after the new object is fully written. Each try writes under a key of its own, so two tries
    of one recording (a redelivered task) never overwrite each other; the one that loses removes its object."""
    recording = Recording.objects.filter(pk=recording_id).first()
    if recording is None or recording.status != Status.PROCESSING:
        return
    work = Path(tempfile.mkdtemp(prefix=f"recording-{recording_id}-"))
    try:
        if recording.kind == Kind.VOICE:
            _process_voice(recording, work)
        else:
            _process_chat(recording, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _decrypt_to(recording: Recording, target: Path) -> None:
    data_key = crypto.unwrap(crypto.WrappedKey(recording.key_id, bytes(recording.wrapped_key)))
    source = get_storage().open(recording.storage_key)
    try:
        with target.open("wb") as out:
            for block in crypto.decrypt_all(
                source, data_key, plaintext_size=recording.size_bytes, sha256=recording.sha256
            ):
                out.write(block)
    finally:
        source.close()


def _final_key(folder: str, recording_id: int, suffix: str) -> str:
    """A storage key of this try alone: a redelivered task runs a second try at the same time, and
    were both to write one key, the loser would overwrite the object the winner's row points at
    (sealed under the winner's data key) and leave the recording unreadable."""
    return f"{folder}/{recording_id}.{secrets.token_hex(6)}.{suffix}"


def _store_final(recording: Recording, path: Path, key: str, fields: dict) -> None:
    """Writes the object under this try's own `key`, then points the row at it if the row is still
    `processing`; a try that lost the race deletes what it wrote (the winner's object stays)."""
    data_key, wrapped = crypto.new_data_key()
    store = get_storage()
    with path.open("rb") as plain:
        sealed = crypto.EncryptingReader(plain, data_key)
        store.put(key, sealed)
    old_key = None
    with transaction.atomic():
        row = _recording(recording.pk, lock=True)
        lost = row.status != Status.PROCESSING  # another try stored it first
        if not lost:
            old_key = row.storage_key if row.storage_key != key else None
            for name, value in fields.items():
                setattr(row, name, value)
            _point_at(row, store.name, key, wrapped, sealed)
            row.status, row.stored_at, row.failure_reason = Status.STORED, timezone.now(), ""
            row.retention_until = row.stored_at + timedelta(days=compliance.days_kept(row))
            row.save()
            metrics.recording_stored(row)
            events.publish_stored(row)
            if row.kind == Kind.CHAT:
                row.messages.all().delete()
    if lost:
        store.delete(key)
        logger.info("recording already processed by another try", extra={"recording_id": recording.pk})
        return
    if old_key:
        transaction.on_commit(lambda: store.delete(old_key))


def _process_voice(recording: Recording, work: Path) -> None:
    source, output = work / "source", work / "output"
    _decrypt_to(recording, source)
    try:
        result = audio.transcode(source, output, recording.quality)
    except audio.UnsupportedAudio as exc:
        mark_failed(recording.pk, str(exc))
        return
    fields = {
        "source_codec": result.source.codec,
        "format": result.output_format,
        "codec": result.output.codec,
        "sample_rate": result.output.sample_rate,
        "channels": result.output.channels,
        "duration_seconds": round(result.source.duration_seconds, 3),
    }
    _store_final(recording, output, _final_key("voice", recording.pk, f"{result.output_format}.enc"), fields)


def _process_chat(recording: Recording, work: Path) -> None:
    log = {
        "recording_id": recording.pk,
        "session_id": recording.session_id,
        "agent_id": recording.agent_id,
        "customer_id": recording.customer_id,
        "channel": recording.channel,
        "messages": [
            {"sender": m.sender, "text": m.text, "sent_at": m.sent_at.isoformat()} for m in recording.messages.all()
        ],
    }
    output = work / "chat.json.gz"
    with gzip.open(output, "wt", encoding="utf-8") as out:
        json.dump(log, out, ensure_ascii=False)
    fields = {"format": "json.gz", "source_format": "json", "codec": "gzip"}
    _store_final(recording, output, _final_key("chat", recording.pk, "json.gz.enc"), fields)


def mark_failed(recording_id: int, reason: str) -> None:
    with transaction.atomic():
        row = _recording(recording_id, lock=True)
        if row.status == Status.PROCESSING:
            row.status, row.failure_reason = Status.FAILED, reason[:2000]
            row.retention_until = timezone.now() + timedelta(days=compliance.days_kept(row))
            row.save(update_fields=["status", "failure_reason", "retention_until"])
    logger.warning("recording failed", extra={"recording_id": recording_id, "reason": reason})


# --- keys ------------------------------------------------------------------------------------------


def rewrap_keys(batch_size: int = 200) -> int:
    """Re-wraps every data key not under the current key (KMS's, or the ring's newest); the objects
    are not touched."""
    newest = crypto.current_key_id()
    moved = 0
    while True:
        with transaction.atomic():
            rows = list(
                Recording.objects.select_for_update(skip_locked=True)
                .exclude(key_id=newest)
                .exclude(wrapped_key=None)
                .order_by("pk")[:batch_size]
            )
            for row in rows:
                wrapped = crypto.rewrap(crypto.WrappedKey(row.key_id, bytes(row.wrapped_key)))
                row.key_id, row.wrapped_key = wrapped.key_id, wrapped.blob
                row.save(update_fields=["key_id", "wrapped_key"])
        moved += len(rows)
        if len(rows) < batch_size:
            return moved
