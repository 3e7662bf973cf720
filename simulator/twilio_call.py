"""Plays one Twilio call against our webhooks: progress callbacks, answering machine detection, TwiML.

Every request the carrier makes is real HTTP, form-encoded (a query string when the method is GET)
and signed with X-Twilio-Signature over the exact URL requested, as Twilio signs it, so our views
validate it with `twilio.request_validator.RequestValidator` just as in production.
"""

from __future__ import annotations

import logging
import time
import uuid
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from twilio.request_validator import RequestValidator

from simulator.scenarios import DIGIT_PLANS, Scenario
from simulator.twilio_state import API_VERSION, LiveCall, rfc2822, short_sid

if TYPE_CHECKING:
    from simulator.server import CarrierSimulator
    from simulator.twilio_recording import TwilioRecordings

logger = logging.getLogger(__name__)

CALLBACK_TIMEOUT_SECONDS = 5.0
MAX_DOCUMENTS_PER_CALL = 20
DEFAULT_TWILIO_RING_TIMEOUT = 60
DEFAULT_GATHER_TIMEOUT = 5
APPLICATION_ERROR_SPEECH = "We are sorry, an application error has occurred. Goodbye."
# The StatusCallbackEvent name under which each CallStatus is reported.
PROGRESS_EVENT_OF_STATUS = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}
MEDIA_VERBS = ("Say", "Play", "Pause")


def abbreviate(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class HungUpThroughApi(Exception):
    """The call was ended by a REST update (or the simulator stopped) while it was being played."""


class ApplicationError(Exception):
    """What Twilio calls an application error: our TwiML could not be fetched or understood."""


@dataclass(frozen=True)
class DocumentRequest:
    """Where the next TwiML document comes from: a URL to request, or TwiML sent inline with Calls.create."""

    url: str
    method: str = "POST"
    extra_params: dict[str, str] = field(default_factory=dict)
    inline_twiml: str | None = None


class TwilioCallPlayer:
    """Runs in the call's own thread: initiated → ringing → the scenario → the final status callback."""

    def __init__(self, simulator: CarrierSimulator, live: LiveCall, recordings: TwilioRecordings) -> None:
        self.simulator = simulator
        self.recordings = recordings
        self.live = live
        self.record = live.record
        self.step = simulator.step_seconds
        self._validator = RequestValidator(simulator.auth_token)
        self._session = requests.Session()
        # The carrier reaches the webhook URLs directly, as Twilio and Vonage do from their own
        # network: no proxy from this process's environment (and no walk of it on every request).
        self._session.trust_env = False
        self._sequence_number = 0
        self._gathers_heard = 0
        self._subscribed_events = self._status_callback_events()

    def run(self) -> None:
        final_status = "completed"
        try:
            final_status = self._play()
        except HungUpThroughApi:
            final_status = "completed" if self.live.answered else "canceled"
            if self.live.hangup.is_set():
                self._event("hung up through the API", "is hung up through the API")
        except Exception as error:  # a simulator bug must still end the call visibly, not hang the tests
            logger.exception("carrier simulator failed while playing %s", self.record.sid)
            final_status = "failed"
            self._event(f"simulator error: {error!r}", f"simulator error: {error!r}")
        finally:
            self._finish(final_status)
            self._session.close()

    # --- the call's life ---------------------------------------------------------------------

    def _play(self) -> str:
        self._wait(self.step)  # the API answers first, the carrier dials a moment later
        self._progress("initiated")
        if self.record.scenario is Scenario.BUSY:
            self._wait(self.step)
            return "busy"
        self._progress("ringing")
        self._wait(self._ring_seconds())
        if self.record.scenario is Scenario.NO_ANSWER:
            return "no-answer"
        self._progress("in-progress")
        if self.live.param("Record").lower() == "true":  # Calls.create Record=true: from the answer on
            self.recordings.start(self.live, self.live.form, source="OutboundAPI")
        answered_by_params = self._detect_machine()
        self._play_twiml(self._first_document(answered_by_params))
        return "completed"

    def _ring_seconds(self) -> float:
        timeout = self.live.param("Timeout")
        ring_timeout = int(timeout) if timeout.isdigit() else DEFAULT_TWILIO_RING_TIMEOUT
        return min(self.simulator.ring_seconds, ring_timeout)

    def _detect_machine(self) -> dict[str, str]:
        """AMD when asked for; returns AnsweredBy for the first TwiML fetch when detection is synchronous."""
        detection = self.live.param("MachineDetection").lower()
        if detection not in ("enable", "detectmessageend"):
            return {}
        started = time.monotonic()
        self._wait(self.step)
        if self.record.scenario is Scenario.VOICEMAIL:
            # Enable stops at the greeting; DetectMessageEnd waits for the beep, as Twilio reports them.
            answered_by = "machine_end_beep" if detection == "detectmessageend" else "machine_start"
        else:
            answered_by = "human"
        detection_ms = str(int((time.monotonic() - started) * 1000))
        self.live.set_answered_by(answered_by)
        self._event(f"amd {answered_by}", f"is answered by {answered_by}")
        if self.live.param("AsyncAmd").lower() != "true":
            return {"AnsweredBy": answered_by}
        amd_url = self.live.param("AsyncAmdStatusCallback")
        if amd_url:
            params = self._call_params("in-progress")
            params |= {"AnsweredBy": answered_by, "MachineDetectionDuration": detection_ms}
            self._notify(amd_url, self.live.param("AsyncAmdStatusCallbackMethod", "POST"), params)
        return {}

    def _first_document(self, extra_params: dict[str, str]) -> DocumentRequest:
        url = self.live.param("Url")
        if url:
            return DocumentRequest(url, self.live.param("Method", "POST"), extra_params)
        return DocumentRequest("", inline_twiml=self.live.param("Twiml"))

    def _finish(self, final_status: str) -> None:
        duration = self.live.end(final_status)
        self._event(f"status {final_status}", f"{final_status} ({duration}s)")
        if self.simulator.stopping.is_set():
            self._event("no final callback: the simulator stopped")
        else:
            self._status_callback(final_status, {"CallDuration": str(duration)})
        self.recordings.call_ended(self.record.sid or "")
        self.record.finished = True

    # --- TwiML -------------------------------------------------------------------------------

    def _play_twiml(self, request: DocumentRequest) -> None:
        next_request: DocumentRequest | None = request
        try:
            for document_number in range(MAX_DOCUMENTS_PER_CALL):
                if next_request is None:
                    return
                document, document_url = self._fetch_document(next_request)
                if document_number == 0 and self.record.scenario is Scenario.HANG_UP:
                    self._event("callee hung up", "hangs up")
                    return
                next_request = self._execute(document, document_url)
            if next_request is not None:
                self._event(f"document limit: {MAX_DOCUMENTS_PER_CALL} TwiML documents", "hangs up: TwiML loop")
        except ApplicationError as error:
            self._event(f"application error: {error}", f"application error: {error}")
            self._say(APPLICATION_ERROR_SPEECH, language="en-US", voice="")

    def _fetch_document(self, request: DocumentRequest) -> tuple[ElementTree.Element, str]:
        if request.inline_twiml is not None:
            text: str | bytes = request.inline_twiml
            self._event("twiml inline", "reads the inline TwiML")
        else:
            params = self._call_params("in-progress") | request.extra_params
            try:
                response = self._send(request.url, request.method, params)
            except requests.RequestException as error:
                raise ApplicationError(f"{request.url} could not be fetched ({error.__class__.__name__})") from error
            if not 200 <= response.status_code < 300:
                raise ApplicationError(f"{request.url} answered HTTP {response.status_code}")
            text = response.content
            self._event("twiml fetched", f"fetches TwiML from {request.url}")
        try:
            # The document comes from the product under test; expat refuses entity expansion bombs.
            document = ElementTree.fromstring(text)  # noqa: S314
        except ElementTree.ParseError as error:
            raise ApplicationError(f"the TwiML is not XML ({error})") from error
        if document.tag != "Response":
            raise ApplicationError(f"the TwiML root is <{document.tag}>, not <Response>")
        return document, request.url

    def _execute(self, document: ElementTree.Element, document_url: str) -> DocumentRequest | None:
        """Play the verbs in order; returns the next document to fetch, or None when the call hangs up."""
        for verb in document:
            if verb.tag in MEDIA_VERBS:
                self._play_media(verb)
            elif verb.tag == "Gather":
                gathered = self._gather(verb, document_url)
                if gathered is not None:
                    return gathered
            elif verb.tag == "Redirect":
                target = (verb.text or "").strip()
                self._event(f"redirect {target or document_url}")
                return DocumentRequest(self._resolve(document_url, target), verb.get("method", "POST"))
            elif verb.tag in ("Hangup", "Reject"):
                self._event(verb.tag.lower(), f"hangs up (<{verb.tag}/>)")
                return None
            else:
                raise ApplicationError(f"<{verb.tag}> is not a verb the carrier simulator plays")
        self._event("end of document", "reaches the end of the TwiML")
        return None

    def _gather(self, verb: ElementTree.Element, document_url: str) -> DocumentRequest | None:
        """Play the nested prompts, then press the planned digit; None falls through to the next verb."""
        num_digits = verb.get("numDigits", "")
        timeout = self._whole_number(verb, "timeout", DEFAULT_GATHER_TIMEOUT)
        finish_on_key = verb.get("finishOnKey", "#")
        action = self._resolve(document_url, verb.get("action", ""))
        method = verb.get("method", "POST")
        self._event("gather", f"listens for {num_digits or 'any number of'} digit(s)")
        for prompt in verb:
            if prompt.tag not in MEDIA_VERBS:
                raise ApplicationError(f"<{prompt.tag}> cannot be nested in <Gather>")
            self._play_media(prompt)
        digit = self._next_planned_digit()
        if digit is None:
            self._wait(timeout * self.step)
            self._event("no digits", "presses nothing")
            if verb.get("actionOnEmptyResult", "false").lower() == "true":
                return DocumentRequest(action, method, {"Digits": ""})
            return None
        self._wait(self.step)
        self.record.digits += digit
        self._event(f"digits {digit}", f"presses {digit}")
        return DocumentRequest(action, method, {"Digits": "" if digit == finish_on_key else digit})

    def _next_planned_digit(self) -> str | None:
        plan = DIGIT_PLANS.get(self.record.scenario, ())
        index = self._gathers_heard
        self._gathers_heard += 1
        return plan[index] if index < len(plan) else None

    def _play_media(self, verb: ElementTree.Element) -> None:
        if verb.tag == "Say":
            text = " ".join("".join(verb.itertext()).split())
            self._say(text, language=verb.get("language", ""), voice=verb.get("voice", ""))
        elif verb.tag == "Play":
            audio_url = (verb.text or "").strip()
            self._event(f"play: {audio_url}", f"plays {audio_url}")
            self._wait(self.step)
        else:
            length = self._whole_number(verb, "length", 1)
            self._event(f"pause {length}s", f"pauses {length}s")
            self._wait(length * self.step)

    def _say(self, text: str, language: str, voice: str) -> None:
        self.record.says.append({"text": text, "language": language, "voice": voice})
        label = f"says ({language})" if language else "says"
        self._event(f"say: {text}", f"{label}: {abbreviate(text)}")
        self._wait(self.step)

    @staticmethod
    def _whole_number(verb: ElementTree.Element, attribute: str, default: int) -> int:
        value = verb.get(attribute)
        if value is None:
            return default
        if not value.strip().isdigit():
            raise ApplicationError(f"<{verb.tag} {attribute}='{value}'> is not a whole number")
        return int(value)

    @staticmethod
    def _resolve(document_url: str, reference: str) -> str:
        """Relative URLs resolve against the document they came from; an empty one means that document."""
        if not reference:
            if not document_url:
                raise ApplicationError("inline TwiML needs absolute action and redirect URLs")
            return document_url
        if urlsplit(reference).scheme:
            return reference
        if not document_url:
            raise ApplicationError(f"inline TwiML cannot use the relative URL {reference!r}")
        return urljoin(document_url, reference)

    # --- HTTP to our webhooks ----------------------------------------------------------------

    def _status_callback_events(self) -> set[str]:
        """StatusCallbackEvent may repeat or hold space-separated names; the final event is always sent."""
        names = {name.lower() for value in self.live.param_values("StatusCallbackEvent") for name in value.split()}
        return names | {"completed"}

    def _progress(self, status: str) -> None:
        self.live.set_status(status)
        readable = {"initiated": f"dials {self.record.to}", "ringing": f"{self.record.to} ringing"}
        self._event(f"status {status}", readable.get(status, "answered"))
        if PROGRESS_EVENT_OF_STATUS[status] in self._subscribed_events:
            self._status_callback(status)

    def _status_callback(self, status: str, extra_params: dict[str, str] | None = None) -> None:
        url = self.live.param("StatusCallback")
        if not url:
            return
        params = self._call_params(status)
        params |= {
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(self._sequence_number),
            "Timestamp": rfc2822(time.time()),
        }
        answered_by = self.live.snapshot().answered_by
        if answered_by and self.live.param("AsyncAmd").lower() != "true":
            params["AnsweredBy"] = answered_by
        params |= extra_params or {}
        self._sequence_number += 1
        self._notify(url, self.live.param("StatusCallbackMethod", "POST"), params)

    def _call_params(self, call_status: str) -> dict[str, str]:
        record = self.record
        return {
            "AccountSid": self.live.account_sid,
            "CallSid": record.sid or "",
            "From": record.from_,
            "Caller": record.from_,
            "To": record.to,
            "Called": record.to,
            "Direction": "outbound-api",
            "ApiVersion": API_VERSION,
            "CallStatus": call_status,
        }

    def _notify(self, url: str, method: str, params: dict[str, str]) -> None:
        """A callback whose failure Twilio only logs: the call goes on."""
        try:
            response = self._send(url, method, params)
        except requests.RequestException as error:
            self._event(f"callback failed: {url} ({error.__class__.__name__})", f"callback to {url} failed")
            return
        if response.status_code >= 400:
            self._event(f"callback failed: {url} (HTTP {response.status_code})", f"callback to {url} failed")

    def _send(self, url: str, method: str, params: dict[str, str]) -> requests.Response:
        """Sign over the exact URL requested: for GET the URL with its query and no body parameters."""
        if self.simulator.stopping.is_set():
            raise requests.ConnectionError("the carrier simulator is stopping")
        headers = {"User-Agent": "TwilioProxy/1.1", "I-Twilio-Idempotency-Token": uuid.uuid4().hex}
        if method.upper() == "GET":
            target = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
            headers["X-Twilio-Signature"] = self._validator.compute_signature(target, {})
            response = self._session.get(target, headers=headers, timeout=CALLBACK_TIMEOUT_SECONDS)
        else:
            headers["X-Twilio-Signature"] = self._validator.compute_signature(url, params)
            response = self._session.post(url, data=params, headers=headers, timeout=CALLBACK_TIMEOUT_SECONDS)
        self.record.callback_responses.append((url, response.status_code))
        return response

    # --- helpers -----------------------------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        if self.live.hangup.wait(seconds) or self.simulator.stopping.is_set():
            raise HungUpThroughApi

    def _event(self, event: str, transcript_text: str | None = None) -> None:
        self.record.events.append(event)
        if transcript_text is not None:
            self.simulator.write_transcript(f"{short_sid(self.record.sid)} {transcript_text}")
