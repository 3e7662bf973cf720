"""The carriers' "recording ready" callbacks, verified exactly as our call callbacks are (Twilio's
signature; Vonage's signed JWT with the body's hash, age and replay checks): a forgery gets 403 and
changes nothing. The token in the path is a recording's own, or (for the calls a policy records)
the call attempt's.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse

from config.errors import DomainError, json_error
from orchestrator.twilio_webhooks import twilio_signed
from orchestrator.vonage_webhooks import vonage_signed
from recordings import carrier

logger = logging.getLogger(__name__)


def _ready(token: str, ready: carrier.CarrierRecording) -> HttpResponse:
    try:
        carrier.recording_ready(token, ready)
    except DomainError as exc:
        return json_error(exc.status_code, exc.code, exc.message)
    return HttpResponse(status=204)


@twilio_signed
def twilio_recording(request: HttpRequest, token: str) -> HttpResponse:
    """RecordingStatusCallback: `completed` brings the media's URL ({RecordingUrl}.wav); other
    statuses (in-progress, absent, failed) are logged only."""
    status = request.POST.get("RecordingStatus", "")
    if status != "completed":
        logger.info("Twilio recording status without media", extra={"status": status[:40]})
        return HttpResponse(status=204)
    recording_url = request.POST.get("RecordingUrl", "")
    if not recording_url or not request.POST.get("RecordingSid"):
        return json_error(400, "malformed_request", "A completed recording needs RecordingSid and RecordingUrl.")
    ready = carrier.CarrierRecording(
        carrier="twilio",
        recording_id=request.POST["RecordingSid"],
        media_url=f"{recording_url}.wav",
        call_id=request.POST.get("CallSid", ""),
    )
    return _ready(token, ready)


@vonage_signed
def vonage_recording(request: HttpRequest, token: str, payload: dict[str, Any]) -> HttpResponse:
    """The record action's event: `recording_url` and `recording_uuid` once the recording ended."""
    recording_url, recording_uuid = payload.get("recording_url"), payload.get("recording_uuid")
    if not isinstance(recording_url, str) or not isinstance(recording_uuid, str) or not recording_url:
        return json_error(400, "malformed_request", "A recording event needs recording_url and recording_uuid.")
    ready = carrier.CarrierRecording(carrier="vonage", recording_id=recording_uuid, media_url=recording_url)
    return _ready(token, ready)
