"""The one way a recording's media leaves us: decrypted as it streams, with Range, and audited.

The download API and the admin's player both answer through `audited_response`, so every listen
and every download writes the same audit event (who, which recording, which bytes).
"""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse

from accounts import audit
from accounts.models import AuditAction
from recordings import selectors


def audited_response(actor: Any, recording_id: int, range_header: str | None, *, inline: bool = False):
    """A streaming response of the decrypted file (206 for a Range); `inline` for a page's player."""
    download = selectors.open_download(recording_id, range_header)
    audit.record(
        AuditAction.RECORDING_DOWNLOADED,
        actor=actor,
        target=f"recording:{recording_id}",
        data={
            "kind": download.recording.kind,
            "bytes": f"{download.start}-{download.end}/{download.total}",
            "via": "player" if inline else "download",
        },
    )
    response = StreamingHttpResponse(
        download.chunks, status=206 if download.partial else 200, content_type=download.content_type
    )
    response["Content-Length"] = str(download.end - download.start + 1 if download.total else 0)
    disposition = "inline" if inline else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{download.filename}"'
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "no-store"
    if download.partial:
        response["Content-Range"] = f"bytes {download.start}-{download.end}/{download.total}"
    return response
