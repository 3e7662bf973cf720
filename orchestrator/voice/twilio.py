"""Twilio through its Python SDK; TWILIO_API_BASE_URL points the same code at the carrier simulator."""

from __future__ import annotations

import requests
from django.conf import settings
from django.urls import reverse
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from orchestrator.voice.base import CallRequest, ProviderError, cached_client, transport_failure, webhook_url


def _client(account_sid: str, auth_token: str, base_url: str, timeout: float) -> Client:
    def build() -> Client:
        client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
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

        try:
            call = self.client.calls.create(
                to=request.to,
                from_=self.from_number,
                url=url("voice"),
                method="POST",
                status_callback=url("status"),
                status_callback_method="POST",
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                timeout=request.ring_timeout_seconds,
                machine_detection="Enable",
                async_amd="true",
                async_amd_status_callback=url("amd"),
                async_amd_status_callback_method="POST",
            )
        except TwilioRestException as exc:
            raise ProviderError(
                f"Twilio refused the call ({exc.status}, code {exc.code}): {exc.msg}", status=exc.status
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise transport_failure("Twilio", exc, settings.PROVIDER_HTTP_TIMEOUT_SECONDS) from exc
        return call.sid
