"""Reads: recordings by filter, one recording, and its decrypted bytes for a download."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from config.errors import DomainError, NotFound
from recordings import audio, crypto, kms
from recordings.models import Recording, Status
from recordings.storage import StorageError, get_storage


class RecordingCorrupted(DomainError):
    """The store gave back something that is not what was stored: nothing is sent."""

    status_code = 502
    code = "recording_corrupted"


class RecordingGone(DomainError):
    status_code = 410
    code = "purged"


class StoreUnavailable(DomainError):
    """The store or the key service did not answer: nothing is wrong with the recording; try again."""

    status_code = 503
    code = "unavailable"


class RangeNotSatisfiable(DomainError):
    status_code = 416
    code = "range_not_satisfiable"


def recording_list(
    *,
    session_id: str | None = None,
    agent_id: str | None = None,
    customer_id: str | None = None,
    kind: str | None = None,
    started_from: datetime | None = None,
    started_to: datetime | None = None,
) -> QuerySet[Recording]:
    rows = Recording.objects.all()
    for field, value in (("session_id", session_id), ("agent_id", agent_id), ("customer_id", customer_id)):
        if value:
            rows = rows.filter(**{field: value})
    if kind:
        rows = rows.filter(kind=kind)
    if started_from:
        rows = rows.filter(started_at__gte=started_from)
    if started_to:
        rows = rows.filter(started_at__lt=started_to)
    return rows.order_by("-started_at", "-pk")


def recording_get(recording_id: int) -> Recording:
    recording = Recording.objects.filter(pk=recording_id).first()
    if recording is None:
        raise NotFound(f"No recording {recording_id}.")
    return recording


@dataclass
class Download:
    recording: Recording
    content_type: str
    filename: str
    total: int
    start: int
    end: int  # inclusive
    partial: bool
    chunks: Iterator[bytes]


def parse_range(header: str | None, total: int) -> tuple[int, int] | None:
    """'bytes=a-b', 'bytes=a-' or 'bytes=-n' -> (start, end inclusive); None for no or several
    ranges (the whole file is sent); RangeNotSatisfiable when it lies outside the file."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            start, end = max(0, total - int(last)), total - 1
        else:
            start, end = int(first), min(int(last), total - 1) if last else total - 1
    except ValueError:
        return None
    if total == 0 or start >= total or start > end:
        raise RangeNotSatisfiable(f"The range {header!r} lies outside the file's {total} bytes.")
    return start, end


def _plaintext(recording: Recording, data_key: bytes, start: int, end: int) -> Iterator[bytes]:
    """Decrypted bytes start..end: a whole-file read checks the SHA-256 too, a range only its chunks."""
    store, key, total = get_storage(), recording.storage_key, recording.size_bytes
    if (start == 0 and end == total - 1) or total == 0:
        source = store.open(key)
        try:
            yield from crypto.decrypt_all(source, data_key, plaintext_size=total, sha256=recording.sha256)
        finally:
            source.close()
        return
    head = store.open(key)
    try:
        header = crypto.read_full(head, crypto.HEADER_SIZE)
    finally:
        head.close()
    _, chunk_size = crypto.parse_header(header)
    first, last = start // chunk_size, end // chunk_size
    source = store.open(key, start=crypto.HEADER_SIZE + first * (chunk_size + crypto.TAG_SIZE))
    try:
        chunks = crypto.decrypt_chunks(
            header, source, data_key, first=first, last=last, total=crypto.chunk_count(total, chunk_size)
        )
        for index, plain in enumerate(chunks, start=first):
            offset = index * chunk_size
            yield plain[max(0, start - offset) : end - offset + 1]
    finally:
        source.close()


def open_download(recording_id: int, range_header: str | None = None) -> Download:
    """Checks the stored object in a first pass (every chunk authenticated, the SHA-256 for a whole
    file) and only then returns the stream of a second pass: tampering or truncation is a clear
    error before any byte is sent, never wrong audio."""
    recording = recording_get(recording_id)
    if recording.status == Status.PURGED:
        raise RecordingGone(f"Recording {recording_id} was purged on {recording.purged_at:%Y-%m-%d}.")
    if recording.status != Status.STORED:
        raise DomainError(f"Recording {recording_id} is {recording.status}; there is nothing to download yet.")
    total = recording.size_bytes
    span = parse_range(range_header, total)
    start, end = span if span else (0, total - 1)
    try:
        data_key = crypto.unwrap(crypto.WrappedKey(recording.key_id, bytes(recording.wrapped_key)))
        stored = get_storage().size(recording.storage_key)
        if stored != crypto.ciphertext_size(total):
            raise crypto.IntegrityError(
                f"The stored object is {stored} bytes where {crypto.ciphertext_size(total)} were written."
            )
        for _ in _plaintext(recording, data_key, start, end):
            pass
    except kms.KeyServiceUnavailable as exc:
        raise StoreUnavailable(f"Recording {recording_id} cannot be opened now: {exc}. Try again shortly.") from exc
    except (crypto.IntegrityError, StorageError) as exc:
        raise RecordingCorrupted(
            f"Recording {recording_id} failed its integrity check and was not sent: {exc}"
        ) from exc
    extension = recording.format or "bin"
    return Download(
        recording=recording,
        content_type=audio.CONTENT_TYPES.get(extension, "application/octet-stream"),
        filename=f"{recording.kind}-recording-{recording.pk}.{extension}",
        total=total,
        start=start,
        end=end,
        partial=span is not None,
        chunks=_plaintext(recording, data_key, start, end),
    )
