"""Twilio through its Python SDK; TWILIO_API_BASE_URL points the same code at the carrier simulator."""

from __future__ import annotations

import base64
from datetime import datetime

import requests
from django.conf import settings
from django.urls import reverse
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from orchestrator.voice.base import (
    CallRequest,
    CarrierCall,
    ProviderError,
    cached_client,
    environment_read_once,
    recording_callback_url,
    same_host,
    transport_failure,
    webhook_url,
)

# How many of a number's latest calls one search reads: far more than one on-call person gets in minutes.
CALL_SEARCH_LIMIT = 50


def _client(account_sid: str, auth_token: str, base_url: str, timeout: float) -> Client:
    def build() -> Client:
        http_client = TwilioHttpClient(timeout=timeout)
        environment_read_once(http_client.session, base_url)
        client = Client(account_sid, auth_token, http_client=http_client)
        client.api.base_url = base_url
        return client

    return cached_client(("twilio", account_sid, auth_token, base_url, timeout), build)


class TwilioProvider:
    name = "twilio"

    def __init__(self, *, account_sid: str, auth_token: str, from_number: str, base_url: str, timeout: float):
        if not (account_sid and auth_token and from_number):
            raise ProviderError(
                "Twilio is not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER."
            )
        self.from_number = from_number
        self.account_sid, self.auth_token, self.base_url = account_sid, auth_token, base_url
        self.client = _client(account_sid, auth_token, base_url, timeout)

    @classmethod
    def from_settings(cls) -> TwilioProvider:
        return cls(
            account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            from_number=settings.TWILIO_FROM_NUMBER,
            base_url=settings.TWILIO_API_BASE_URL,
            timeout=settings.PROVIDER_HTTP_TIMEOUT_SECONDS,
        )

    def place_call(self, request: CallRequest) -> str:
        def url(name: str) -> str:
            return webhook_url(reverse(f"twilio-{name}", kwargs={"token": request.token}))

        recording = {}
        if request.record:  # Twilio records from the answer and reports to the callback when the call ends
            recording = {
                "record": True,
                "recording_channels": "dual",
                "recording_status_callback": recording_callback_url("twilio", request.token),
                "recording_status_callback_method": "POST",
                "recording_status_callback_event": ["completed"],
            }
        try:
            call = self.client.calls.create(
                to=request.to,
                from_=self.from_number,
                url=url("voice"),
                method="POST",
                status_callback=url("status"),
                status_callback_method="POST",
                # No "initiated": the API's answer already says the call is placed, and the callback
                # only moved the attempt from dialing to initiated, one webhook of eight per call.
                status_callback_event=["ringing", "answered", "completed"],
                timeout=request.ring_timeout_seconds,
                machine_detection="Enable",
                async_amd="true",
                async_amd_status_callback=url("amd"),
                async_amd_status_callback_method="POST",
                **recording,
            )
        except TwilioRestException as exc:
            raise ProviderError(
                f"Twilio refused the call ({exc.status}, code {exc.code}): {exc.msg}", status=exc.status
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise transport_failure("Twilio", exc, settings.PROVIDER_HTTP_TIMEOUT_SECONDS) from exc
        return call.sid

    def calls_to(self, to: str, since: datetime) -> list[CarrierCall]:
        """GET Calls.json?To=…&From=…, newest first. No StartTime filter: a call still queued at
        Twilio has no start time yet, and it is exactly the kind of call we look for."""
        try:
            calls = self._call_api(
                lambda: self.client.calls.list(to=to, from_=self.from_number, limit=CALL_SEARCH_LIMIT),
                "list its calls",
            )
        except TwilioException as exc:  # a list page that is not a 200 (the SDK raises this, not the REST error)
            raise ProviderError(f"Twilio refused to list its calls: {exc}") from exc
        recent = [call for call in calls if call.date_created is None or call.date_created >= since]
        if len(calls) >= CALL_SEARCH_LIMIT and len(recent) == len(calls):
            raise ProviderError(f"Twilio listed {len(calls)} calls to {to} since {since:%H:%M:%S}: too many to tell")
        return [CarrierCall(call.sid, str(getattr(call.status, "value", call.status))) for call in recent]

    def start_recording(self, call_id: str, *, callback_url: str, attempt_token: str = "") -> str:
        """The call's Recordings resource (POST .../Calls/{CallSid}/Recordings.json)."""
        recording = self._call_api(
            lambda: self.client.calls(call_id).recordings.create(
                recording_status_callback=callback_url,
                recording_status_callback_method="POST",
                recording_status_callback_event=["completed"],
                recording_channels="dual",
            ),
            "start recording",
        )
        return recording.sid

    def stop_recording(self, call_id: str, recording_id: str) -> bool:
        self._call_api(
            lambda: self.client.calls(call_id).recordings(recording_id).update(status="stopped"), "stop recording"
        )
        return True

    def media_headers(self, url: str) -> dict[str, str]:
        """HTTP basic auth with the account SID and auth token, only to Twilio's own API host."""
        if not same_host(url, self.base_url):
            raise ProviderError(f"the recording URL {url!r} is not on Twilio's API host; not sending credentials")
        token = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    def _call_api(self, send, doing: str):
        try:
            return send()
        except TwilioRestException as exc:
            raise ProviderError(
                f"Twilio refused to {doing} ({exc.status}, code {exc.code}): {exc.msg}", status=exc.status
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise transport_failure("Twilio", exc, settings.PROVIDER_HTTP_TIMEOUT_SECONDS) from exc
