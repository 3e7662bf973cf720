"""Vonage through its v4 SDK; VONAGE_API_BASE_URL points the same code at the carrier simulator.

The call carries its first NCCO inline (the alert and a one-digit input), so Vonage needs no answer
webhook; the input's result goes to our input webhook, which answers the next NCCO. The NCCO
builders live here so the provider and the webhooks say exactly the same thing.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key
from django.conf import settings
from django.urls import reverse
from pydantic import ValidationError
from requests.adapters import HTTPAdapter
from urllib3 import Retry
from vonage_http_client import Auth, HttpClient, HttpClientOptions
from vonage_http_client.errors import HttpRequestError
from vonage_utils.errors import VonageError
from vonage_voice import CreateCallRequest, Input, ListCallsFilter, Record, Talk, Voice

from orchestrator.prompts import prompts_for
from orchestrator.selectors import CallScript, call_script
from orchestrator.voice.base import (
    CONNECT_RETRIES,
    CallRequest,
    CarrierCall,
    ProviderError,
    cached_client,
    recording_callback_url,
    same_host,
    transport_failure,
    webhook_url,
)

INPUT_TIMEOUT_SECONDS = 6
# Vonage hangs up this long after the answer: the message `message_repeats` times, with room to spare.
LENGTH_TIMER_SECONDS = 600
# Vonage refuses a talk action longer than this.
MAX_TALK_CHARACTERS = 1500
# The urllib3 pool behind the client: concurrent dials from a thread pool each get a connection.
CONNECTION_POOL_SIZE = 10
# A call search reads at most this many pages of 100 calls (the list cannot be filtered by number).
CALL_SEARCH_PAGES = 10


def vonage_language(language: str) -> str:
    """Vonage's TTS language of a contact: Korean, or English for everyone else."""
    return "ko-KR" if language.lower().startswith("ko") else "en-US"


def vonage_number(number: str) -> str:
    """Vonage wants E.164 digits without the '+'."""
    return number.strip().removeprefix("+")


def input_url(token: str, round_number: int) -> str:
    return f"{webhook_url(reverse('vonage-input', kwargs={'token': token}))}?round={round_number}"


def talk(text: str, language: str, *, barge_in: bool = False) -> dict[str, Any]:
    """A talk action as JSON, in the contact's language."""
    action = Talk(text=text, language=vonage_language(language), bargeIn=barge_in or None)
    return action.model_dump(mode="json", exclude_none=True)


def message_ncco(token: str, script: CallScript, round_number: int, *, preface: str = "") -> list[dict[str, Any]]:
    """The alert and the menu (the callee may press at once: bargeIn), then a one-digit input whose
    result comes to our input webhook for this round. `preface` goes before the alert (after a wrong
    key); an alert too long for one talk is cut rather than have Vonage refuse the call."""
    prompts = prompts_for(script.language)
    if not script.still_triggered:
        return [talk(prompts.already_handled, script.language)]
    alert = script.text.strip()
    before = " ".join(part for part in (preface, prompts.opening(scripted=script.scripted)) if part)
    room = MAX_TALK_CHARACTERS - len(prompts.menu) - 1 - (len(before) + 1 if before else 0)
    if len(alert) > room:  # cut: the alert's own press-1 ending is gone, so the full menu follows
        alert = alert[: room - 1].rstrip() + "…"
    text = " ".join(part for part in (before, alert, prompts.menu_for(alert)) if part)
    listen = Input(
        type=["dtmf"],
        dtmf={"maxDigits": 1, "timeOut": INPUT_TIMEOUT_SECONDS},
        eventUrl=[input_url(token, round_number)],
        eventMethod="POST",
    )
    return [talk(text, script.language, barge_in=True), listen.model_dump(mode="json", exclude_none=True)]


def record_action(callback_url: str) -> dict[str, Any]:
    """Records the call from here until it ends (asynchronous: the NCCO goes on); the recording
    event, with `recording_url`, goes to `callback_url`."""
    action = Record(format="wav", eventUrl=[callback_url], eventMethod="POST")
    return action.model_dump(mode="json", exclude_none=True, by_alias=True)


# Where Vonage serves recordings (api.nexmo.com, api-us.nexmo.com, api.vonage.com, ...).
VONAGE_MEDIA_DOMAINS = ("nexmo.com", "vonage.com")


# --- the HTTP client ----------------------------------------------------------------------------


class _PlainHttpAdapter(HTTPAdapter):
    """Sends the SDK's https://<api_host> requests over plain HTTP, for an http:// base URL (the local
    carrier simulator, which has no TLS)."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        request.url = "http://" + (request.url or "").removeprefix("https://")
        return super().send(request, *args, **kwargs)


class BaseUrlHttpClient(HttpClient):
    """The SDK's client aimed at a base URL, and made safe for a POST that places a phone call.

    The SDK builds `https://{api_host}{path}` itself, so the base URL's host becomes `api_host`, and our
    adapter is mounted on exactly that origin. `pool_maxsize=1` in the options matters: the SDK resends
    a request up to `pool_maxsize` times when the server disconnects, which for POST /v1/calls could place
    the call twice; the adapter keeps its own, larger pool and never retries once a request was sent.
    """

    def __init__(self, auth: Auth, base_url: str, timeout: int) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            raise ProviderError(f"VONAGE_API_BASE_URL must be http(s)://host[:port], not {base_url!r}")
        options = HttpClientOptions(api_host=parts.netloc, timeout=timeout, pool_maxsize=1)
        super().__init__(auth, options, sdk_version=version("vonage"))
        retry = Retry(total=CONNECT_RETRIES, connect=CONNECT_RETRIES, read=0, status=0, other=0, backoff_factor=0.1)
        adapter_class = _PlainHttpAdapter if parts.scheme == "http" else HTTPAdapter
        adapter = adapter_class(CONNECTION_POOL_SIZE, CONNECTION_POOL_SIZE, max_retries=retry)
        self._session.mount(f"https://{parts.netloc}/", adapter)
        # The SDK writes these two headers into one shared dict before every request; present from the
        # start, a write only replaces a value, so a thread reading the dict never sees its size change.
        self._headers["Content-Type"] = "application/json"
        self._headers["Authorization"] = b""


def _client(application_id: str, private_key: str, base_url: str, timeout: int) -> Voice:
    def build() -> Voice:
        try:
            auth = Auth(application_id=application_id, private_key=_pkcs8_pem(private_key))
        except VonageError as exc:
            raise ProviderError(f"Vonage credentials rejected by the SDK: {exc}") from exc
        return Voice(BaseUrlHttpClient(auth, base_url, timeout))

    return cached_client(("vonage", application_id, private_key, base_url, timeout), build)


def _pkcs8_pem(setting: str) -> str:
    """VONAGE_PRIVATE_KEY as the SDK takes it (PKCS#8 PEM text), from PEM text with real or escaped
    newlines, in PKCS#8 or PKCS#1, or from the path of a PEM file (as the carrier simulator reads it)."""
    try:
        pem = setting.replace("\\n", "\n").encode() if "-----BEGIN" in setting else Path(setting).read_bytes()
        key = load_pem_private_key(pem, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ProviderError(f"VONAGE_PRIVATE_KEY is not an unencrypted PEM private key or its file: {exc}") from exc
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")


def _refusal_message(error: HttpRequestError) -> str:
    """Vonage's RFC 7807 title and detail, or the start of whatever body came back."""
    try:
        body = error.response.json()
    except ValueError:
        return error.response.text[:200]
    if isinstance(body, dict):
        return ": ".join(str(body[field]) for field in ("title", "detail") if body.get(field)) or str(body)[:200]
    return str(body)[:200]


class VonageProvider:
    name = "vonage"

    def __init__(self, *, application_id: str, private_key: str, from_number: str, base_url: str, timeout: float):
        if not (application_id and private_key and from_number):
            raise ProviderError(
                "Vonage is not configured: set VONAGE_APPLICATION_ID, VONAGE_PRIVATE_KEY and VONAGE_FROM_NUMBER."
            )
        self.from_number = vonage_number(from_number)
        self.base_url = base_url
        self.timeout = max(1, math.ceil(timeout))  # the SDK takes whole seconds; 0 would never wait
        self.client = _client(application_id, private_key, base_url, self.timeout)

    @classmethod
    def from_settings(cls) -> VonageProvider:
        return cls(
            application_id=getattr(settings, "VONAGE_APPLICATION_ID", ""),
            private_key=getattr(settings, "VONAGE_PRIVATE_KEY", ""),
            from_number=getattr(settings, "VONAGE_FROM_NUMBER", ""),
            base_url=settings.VONAGE_API_BASE_URL,
            timeout=getattr(settings, "PROVIDER_HTTP_TIMEOUT_SECONDS", 10.0),
        )

    def place_call(self, request: CallRequest) -> str:
        script = call_script(request.token)
        if script is None:
            raise ProviderError(f"no call attempt has the token of this request (to {request.to})")
        ncco = message_ncco(request.token, script, round_number=1)
        if request.record:  # the record action first: it records the whole call, whatever NCCO follows
            ncco = [record_action(recording_callback_url("vonage", request.token)), *ncco]
        try:
            call = CreateCallRequest(
                to=[{"type": "phone", "number": vonage_number(request.to)}],
                from_={"type": "phone", "number": self.from_number},
                ncco=ncco,
                event_url=[webhook_url(reverse("vonage-event", kwargs={"token": request.token}))],
                event_method="POST",
                ringing_timer=request.ring_timeout_seconds,
                length_timer=LENGTH_TIMER_SECONDS,
                machine_detection="continue",  # the voicemail still gets the message; we move on at once
            )
        except (ValidationError, VonageError) as exc:
            raise ProviderError(f"the Vonage call request is invalid: {exc}") from exc
        return self._create(call).uuid

    def calls_to(self, to: str, since: datetime) -> list[CarrierCall]:
        """GET /v1/calls from `since` on, newest first, page by page; Vonage filters by time but not
        by number, so the number is matched here."""
        number, found, offset = vonage_number(to), [], 0
        date_start = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for _page in range(CALL_SEARCH_PAGES):
            wanted = ListCallsFilter(date_start=date_start, page_size=100, order="desc", record_index=offset)
            try:
                calls, more = self.client.list_calls(wanted)
            except HttpRequestError as exc:
                status = exc.response.status_code
                raise ProviderError(
                    f"Vonage refused to list its calls ({status}): {_refusal_message(exc)}", status=status
                ) from exc
            except requests.exceptions.RequestException as exc:
                raise ProviderError(f"Vonage could not be asked for its calls: {exc.__class__.__name__}") from exc
            except (ValidationError, TypeError, VonageError) as exc:
                raise ProviderError(f"Vonage's list of calls could not be read: {exc.__class__.__name__}") from exc
            found += [CarrierCall(call.uuid, call.status) for call in calls if getattr(call.to, "number", "") == number]
            if more is None or not calls:
                return found
            offset += len(calls)
        raise ProviderError(f"Vonage listed more than {offset} calls since {date_start}: too many to tell")

    def start_recording(self, call_id: str, *, callback_url: str, attempt_token: str) -> str:
        """The Voice API records a call in progress by transferring it to an NCCO that starts with a
        record action (PUT /v1/calls/{uuid} action=transfer); the NCCO then says the alert again.
        The recording's uuid comes only with the recording event, so "" is returned."""
        script = call_script(attempt_token)
        if script is None:
            raise ProviderError("no call attempt has this token; nothing to say after the record action")
        ncco = [record_action(callback_url), *message_ncco(attempt_token, script, round_number=1)]
        body = {"action": "transfer", "destination": {"type": "ncco", "ncco": ncco}}
        http = self.client.http_client
        try:
            http.put(http.api_host, f"/v1/calls/{call_id}", body)
        except HttpRequestError as exc:
            status = exc.response.status_code
            raise ProviderError(f"Vonage refused to record ({status}): {_refusal_message(exc)}", status=status) from exc
        except requests.exceptions.RequestException as exc:
            raise transport_failure("Vonage", exc, self.timeout) from exc
        except VonageError as exc:
            raise ProviderError(f"Vonage refused to record: {exc}") from exc
        return ""

    def stop_recording(self, call_id: str, recording_id: str) -> bool:
        """The Voice API has no request that stops a record action: it ends with the call."""
        return False

    def media_headers(self, url: str) -> dict[str, str]:
        """The application JWT, only to Vonage's own hosts (or the configured API base URL's host)."""
        host = (urlsplit(url).hostname or "").lower()
        on_vonage = any(host == domain or host.endswith(f".{domain}") for domain in VONAGE_MEDIA_DOMAINS)
        if not (on_vonage or same_host(url, self.base_url)):
            raise ProviderError(f"the recording URL {url!r} is not on a Vonage host; not sending credentials")
        try:
            token = self.client.http_client.auth.generate_application_jwt()
        except VonageError as exc:
            raise ProviderError(f"Vonage authentication could not be prepared: {exc}") from exc
        if isinstance(token, bytes):
            token = token.decode("ascii")
        return {"Authorization": f"Bearer {token}"}

    def _create(self, call: CreateCallRequest):
        try:
            return self.client.create_call(call)
        except HttpRequestError as exc:
            status = exc.response.status_code
            raise ProviderError(f"Vonage refused the call ({status}): {_refusal_message(exc)}", status=status) from exc
        except requests.exceptions.RequestException as exc:
            raise transport_failure("Vonage", exc, self.timeout) from exc
        except (ValidationError, TypeError) as exc:
            # The request went out and what came back was cut short or not a call: it may exist.
            raise ProviderError(
                f"Vonage's answer could not be read ({exc.__class__.__name__})", ambiguous=True
            ) from exc
        except VonageError as exc:  # the application JWT could not be made: nothing was sent
            raise ProviderError(f"Vonage authentication could not be prepared: {exc}") from exc
