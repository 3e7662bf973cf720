"""Recordings stored: how many, and how many bytes went to the store (encrypted) from how many
bytes of audio or chat text, by kind. Counted after the commit that marks a recording stored."""

from __future__ import annotations

from prometheus_client import Counter

from config.metrics import after_commit

STORED = Counter("aicc_recordings_stored", "Recordings stored, by kind and format", ["kind", "format"], registry=None)
STORED_BYTES = Counter(
    "aicc_recordings_stored_bytes",
    "Bytes written to the recordings store (encrypted objects), by kind",
    ["kind"],
    registry=None,
)


def recording_stored(recording) -> None:
    kind, fmt, size = str(recording.kind), str(recording.format or "unknown"), recording.stored_size_bytes or 0

    def count() -> None:
        STORED.labels(kind, fmt).inc()
        STORED_BYTES.labels(kind).inc(size)

    after_commit(count)
