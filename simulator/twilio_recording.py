"""Twilio's call recordings: start one on a live call (or with Record=true on Calls.create), pause,
resume or stop it through its resource, send the recording status callback signed as Twilio signs,
and serve the media at `{RecordingUrl}.wav` / `.mp3` behind the account's HTTP basic auth.

The media is a generated tone as long as the recording (RecordingDuration whole seconds, at least 1):
real audio our worker downloads, decodes and stores.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator

from simulator.audio import tone_mp3, tone_wav
from simulator.records import ApiReply
from simulator.twilio_state import API_VERSION, LiveCall, rfc2822, short_sid

if TYPE_CHECKING:
    from simulator.server import CarrierSimulator

CALLBACK_TIMEOUT_SECONDS = 5.0
ACTIVE = ("in-progress", "paused")


@dataclass
class SimRecording:
    sid: str
    call_sid: str
    account_sid: str
    channels: int
    source: str  # StartCallRecordingAPI or OutboundAPI (Record=true), as Twilio names them
    callback_url: str
    callback_method: str
    callback_events: set[str]
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    status: str = "in-progress"
    callbacks: list[dict[str, str]] = field(default_factory=list)

    @property
    def duration(self) -> int:
        """Whole seconds, never 0: a recording that exists has audio."""
        end = self.ended_at if self.ended_at is not None else time.time()
        return max(1, math.ceil(end - self.started_at))

    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Recordings/{self.sid}"


class TwilioRecordings:
    """Every recording the simulator made, for the REST handler and the calls' threads."""

    def __init__(self, simulator: CarrierSimulator) -> None:
        self.simulator = simulator
        self._recordings: dict[str, SimRecording] = {}
        self._lock = threading.Lock()

    @property
    def all(self) -> list[SimRecording]:
        with self._lock:
            return list(self._recordings.values())

    def get(self, sid: str) -> SimRecording | None:
        with self._lock:
            return self._recordings.get(sid)

    def start(self, live: LiveCall, form: dict[str, list[str]], *, source: str) -> SimRecording | ApiReply:
        """Recordings.create on a call (or Record=true once answered); only a call in progress records."""
        from simulator.twilio import first, twilio_error

        if live.snapshot().status != "in-progress":
            return twilio_error(400, 21220, "Requested resource is not eligible for recording")
        channels_name = first(form, "RecordingChannels", "mono")
        if channels_name not in ("mono", "dual"):
            return twilio_error(400, 21209, f"RecordingChannels must be mono or dual, got '{channels_name}'")
        method = first(form, "RecordingStatusCallbackMethod", "POST").upper()
        if method not in ("GET", "POST"):
            return twilio_error(400, 21208, f"RecordingStatusCallbackMethod must be GET or POST, got '{method}'")
        events = {
            name for value in form.get("RecordingStatusCallbackEvent", []) for name in value.replace(",", " ").split()
        } or {"completed"}
        recording = SimRecording(
            sid="RE" + uuid.uuid4().hex,
            call_sid=live.record.sid or "",
            account_sid=live.account_sid,
            channels=2 if channels_name == "dual" else 1,
            source=source,
            callback_url=first(form, "RecordingStatusCallback"),
            callback_method=method,
            callback_events=events,
        )
        with self._lock:
            self._recordings[recording.sid] = recording
        live.record.events.append(f"recording {recording.sid} started")
        self.simulator.write_transcript(f"{short_sid(recording.call_sid)} starts recording {short_sid(recording.sid)}")
        if "in-progress" in events:
            self._callback(recording, "in-progress")
        return recording

    def update(self, recording: SimRecording, status: str) -> ApiReply:
        """Status=paused, in-progress (resume) or stopped; a recording already over is a 400, as on Twilio."""
        from simulator.twilio import twilio_error

        if status not in ("paused", "in-progress", "stopped"):
            return twilio_error(400, 21220, f"Status must be paused, in-progress or stopped, got '{status}'")
        with self._lock:
            if recording.status not in ACTIVE:
                return twilio_error(400, 21220, f"The recording is {recording.status}; it cannot be {status}")
            if status != "stopped":
                recording.status = status
                return ApiReply(200, recording_resource(recording))
        self._complete(recording, why="stopped through the API")
        return ApiReply(200, recording_resource(recording))

    def call_ended(self, call_sid: str) -> None:
        """A call's end completes its recordings (and sends their callbacks, in the call's thread)."""
        for recording in self.all:
            if recording.call_sid == call_sid:
                self._complete(recording, why="the call ended")

    def _complete(self, recording: SimRecording, why: str) -> None:
        with self._lock:
            if recording.status not in ACTIVE:
                return
            recording.status, recording.ended_at = "completed", time.time()
        self.simulator.write_transcript(
            f"{short_sid(recording.call_sid)} recording {short_sid(recording.sid)} completed "
            f"({recording.duration}s, {why})"
        )
        if "completed" in recording.callback_events and not self.simulator.stopping.is_set():
            self._callback(recording, "completed")

    def _callback(self, recording: SimRecording, status: str) -> None:
        if not recording.callback_url:
            return
        params = {
            "AccountSid": recording.account_sid,
            "CallSid": recording.call_sid,
            "RecordingSid": recording.sid,
            "RecordingUrl": f"{self.simulator.base_url}{recording.uri()}",
            "RecordingStatus": status,
            "RecordingChannels": str(recording.channels),
            "RecordingSource": recording.source,
            "RecordingStartTime": rfc2822(recording.started_at),
            "RecordingTrack": "both",
        }
        if status == "completed":
            params["RecordingDuration"] = str(recording.duration)
        validator = RequestValidator(self.simulator.auth_token)
        headers = {"User-Agent": "TwilioProxy/1.1", "I-Twilio-Idempotency-Token": uuid.uuid4().hex}
        url = recording.callback_url
        try:
            if recording.callback_method == "GET":
                target = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
                headers["X-Twilio-Signature"] = validator.compute_signature(target, {})
                response = requests.get(target, headers=headers, timeout=CALLBACK_TIMEOUT_SECONDS)
            else:
                headers["X-Twilio-Signature"] = validator.compute_signature(url, params)
                response = requests.post(url, data=params, headers=headers, timeout=CALLBACK_TIMEOUT_SECONDS)
            outcome = str(response.status_code)
        except requests.RequestException as error:
            outcome = error.__class__.__name__
        recording.callbacks.append(params | {"response": outcome})
        self.simulator.write_transcript(
            f"{short_sid(recording.call_sid)} recording callback {status} to {url}: {outcome}"
        )

    def media(self, recording: SimRecording, extension: str) -> ApiReply:
        """The audio, once the recording is completed (Twilio answers 404 before that)."""
        from simulator.twilio import not_found

        if recording.status != "completed":
            return not_found(f"{recording.uri()}.{extension}")
        if extension == "mp3":
            return ApiReply(200, tone_mp3(recording.duration, recording.channels), content_type="audio/mpeg")
        return ApiReply(200, tone_wav(recording.duration, recording.channels), content_type="audio/x-wav")


def recording_resource(recording: SimRecording) -> dict[str, Any]:
    """The Recording resource JSON, with the fields the twilio SDK's RecordingInstance reads."""
    return {
        "sid": recording.sid,
        "account_sid": recording.account_sid,
        "call_sid": recording.call_sid,
        "conference_sid": None,
        "api_version": API_VERSION,
        "date_created": rfc2822(recording.started_at),
        "date_updated": rfc2822(recording.ended_at or recording.started_at),
        "start_time": rfc2822(recording.started_at),
        "duration": str(recording.duration) if recording.status == "completed" else "-1",
        "channels": recording.channels,
        "source": recording.source,
        "status": recording.status,
        "price": None,
        "price_unit": "USD",
        "error_code": None,
        "track": "both",
        "encryption_details": None,
        "uri": f"/{API_VERSION}/Accounts/{recording.account_sid}/Calls/{recording.call_sid}/Recordings/"
        f"{recording.sid}.json",
    }
