"""Vonage's call recordings: the NCCO `record` action (in the first NCCO, or in one the call is
transferred to with PUT /v1/calls/{uuid} action=transfer, which is how the Voice API records a call
already in progress), the recording event sent to the action's eventUrl when the recording ends
(signed like every Vonage webhook), and the media at `recording_url` (GET /v1/files/{uuid}) behind
the application JWT.

A record action with no endOnSilence/endOnKey/timeOut records until the call ends; the Voice API
has no request that stops it earlier, and neither does the simulator. `timeOut` (3 to 7200 s) is
counted in call time (one step per second), like every other wait of the simulator.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

from simulator.audio import tone_mp3, tone_wav
from simulator.records import ApiReply
from simulator.twilio_state import short_sid

if TYPE_CHECKING:
    from simulator.server import CarrierSimulator
    from simulator.vonage import VonageLiveCall

VONAGE_FILES_PREFIX = "/v1/files/"
CALLBACK_TIMEOUT_SECONDS = 5.0
FORMATS = ("mp3", "wav", "ogg")
SERVED_FORMATS = {"mp3": "audio/mpeg", "wav": "audio/wav"}


@dataclass
class VonageSimRecording:
    uuid: str
    call_uuid: str
    conversation_uuid: str
    format: str
    channels: int
    event_url: str
    event_method: str
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    _media: bytes | None = None

    @property
    def duration(self) -> int:
        end = self.ended_at if self.ended_at is not None else time.time()
        return max(1, math.ceil(end - self.started_at))

    def media(self) -> bytes:
        if self._media is None:
            make = tone_mp3 if self.format == "mp3" else tone_wav
            self._media = make(self.duration, self.channels)
        return self._media


class VonageRecordings:
    def __init__(self, simulator: CarrierSimulator) -> None:
        self.simulator = simulator
        self._recordings: dict[str, VonageSimRecording] = {}
        self._lock = threading.Lock()

    @property
    def all(self) -> list[VonageSimRecording]:
        with self._lock:
            return list(self._recordings.values())

    def validate(self, action: dict[str, Any]) -> str | None:
        """Why a record action is refused (Vonage ends the call on a bad NCCO), or None."""
        if action.get("format", "mp3") not in FORMATS:
            return f"record format must be one of {', '.join(FORMATS)}"
        if action.get("format", "mp3") == "ogg":
            return "the carrier simulator records mp3 or wav, not ogg"
        channels = action.get("channels", 1)
        if isinstance(channels, bool) or not isinstance(channels, int) or not 1 <= channels <= 32:
            return "record channels must be a whole number from 1 to 32"
        url = action.get("eventUrl")
        if url is not None and not (isinstance(url, list) and len(url) == 1 and isinstance(url[0], str)):
            return "record eventUrl must be a list with one URL"
        return None

    def start(self, live: VonageLiveCall, action: dict[str, Any], default_event_url: str) -> VonageSimRecording:
        url = action.get("eventUrl")
        recording = VonageSimRecording(
            uuid=str(uuid.uuid4()),
            call_uuid=live.record.sid or "",
            conversation_uuid=live.conversation_uuid,
            format=str(action.get("format", "mp3")),
            channels=int(action.get("channels", 1)),
            event_url=url[0] if url else default_event_url,
            event_method=str(action.get("eventMethod", "POST")).upper(),
        )
        with self._lock:
            self._recordings[recording.uuid] = recording
        live.record.events.append(f"recording {recording.uuid} started")
        self.simulator.write_transcript(
            f"{short_sid(recording.call_uuid)} starts recording {short_sid(recording.uuid)} ({recording.format})",
            carrier="vonage",
        )
        return recording

    def call_ended(self, call_uuid: str, sign: Any) -> None:
        """The call's end ends its recordings; each sends its recording event, signed by `sign(body)`."""
        for recording in self.all:
            with self._lock:
                if recording.call_uuid != call_uuid or recording.ended_at is not None:
                    continue
                recording.ended_at = time.time()
            if not self.simulator.stopping.is_set():
                self._send_event(recording, sign)

    def _send_event(self, recording: VonageSimRecording, sign: Any) -> None:
        from simulator.vonage_call import iso_timestamp

        payload = {
            "start_time": iso_timestamp(recording.started_at),
            "recording_url": f"{self.simulator.base_url}{VONAGE_FILES_PREFIX}{recording.uuid}",
            "size": len(recording.media()),
            "recording_uuid": recording.uuid,
            "end_time": iso_timestamp(recording.ended_at or time.time()),
            "conversation_uuid": recording.conversation_uuid,
            "timestamp": iso_timestamp(time.time()),
        }
        body = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {sign(body)}"}
        try:
            response = requests.post(recording.event_url, data=body, headers=headers, timeout=CALLBACK_TIMEOUT_SECONDS)
            outcome = str(response.status_code)
        except requests.RequestException as error:
            outcome = error.__class__.__name__
        recording.events.append(payload | {"response": outcome})
        self.simulator.write_transcript(
            f"{short_sid(recording.call_uuid)} recording event to {recording.event_url}: {outcome}", carrier="vonage"
        )

    def file(self, path: str) -> ApiReply:
        from simulator.vonage import not_found

        with self._lock:
            recording = self._recordings.get(path.removeprefix(VONAGE_FILES_PREFIX))
        if recording is None or recording.ended_at is None:
            return not_found(path)
        return ApiReply(200, recording.media(), content_type=SERVED_FORMATS[recording.format])
