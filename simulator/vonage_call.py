"""Plays one Vonage call against our webhooks: call events, machine detection, the NCCO.

Every request the carrier makes is real HTTP: JSON in a POST, or a query string when the method is
GET, with `Authorization: Bearer <JWT>` signed HS256 with the signature secret and carrying the
SHA-256 of the exact body in `payload_hash`, as Vonage signs webhooks, so our views verify it just as
in production.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jwt
import requests

from simulator.scenarios import DIGIT_PLANS, Scenario
from simulator.twilio_call import abbreviate
from simulator.twilio_state import short_sid

if TYPE_CHECKING:
    from simulator.server import CarrierSimulator
    from simulator.vonage import VonageLiveCall
    from simulator.vonage_recording import VonageRecordings

logger = logging.getLogger(__name__)

CARRIER = "vonage"
CALLBACK_TIMEOUT_SECONDS = 5.0
MAX_NCCOS_PER_CALL = 20
DEFAULT_RINGING_TIMER = 60
DEFAULT_LENGTH_TIMER = 7200
MAX_LENGTH_TIMER = 86400
DEFAULT_INPUT_TIMEOUT = 3
DEFAULT_MAX_DIGITS = 4
# What a finished call reports it cost: a per-minute rate, and the price of the seconds it lasted.
RATE_PER_MINUTE = Decimal("0.02500000")


def iso_timestamp(timestamp: float) -> str:
    """Vonage's webhook time: ISO 8601 in UTC with milliseconds, e.g. '2024-05-14T10:00:00.123Z'."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def sign_webhook(signature_secret: str, application_id: str, body: bytes) -> str:
    """The JWT Vonage puts in a webhook's Authorization header; `payload_hash` binds it to the body."""
    claims = {
        "iat": int(time.time()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "application_id": application_id,
        "payload_hash": hashlib.sha256(body).hexdigest(),
    }
    return jwt.encode(claims, signature_secret, algorithm="HS256")


class CallEnded(Exception):
    """The call stopped while being played: hung up through the API, the simulator stopping, length_timer."""


class ApplicationError(Exception):
    """Our NCCO could not be fetched or understood; Vonage ends the call."""


class Transferred(Exception):
    """PUT /v1/calls/{uuid} action=transfer replaced the NCCO being played."""

    def __init__(self, ncco: list[Any]) -> None:
        super().__init__("transferred to a new NCCO")
        self.ncco = ncco


class VonageCallPlayer:
    """Runs in the call's own thread: started → ringing → answered → the NCCO → the final event."""

    def __init__(
        self,
        simulator: CarrierSimulator,
        live: VonageLiveCall,
        application_id: str,
        signature_secret: str,
        recordings: VonageRecordings,
    ) -> None:
        self.simulator = simulator
        self.recordings = recordings
        self.live = live
        self.record = live.record
        self.request = live.request
        self.step = simulator.step_seconds
        self._signature_secret = signature_secret
        self._application_id = application_id
        self._session = requests.Session()
        # The carrier reaches the webhook URLs directly, as Twilio and Vonage do from their own
        # network: no proxy from this process's environment (and no walk of it on every request).
        self._session.trust_env = False
        self._inputs_heard = 0
        self._hangup_at: float | None = None

    def run(self) -> None:
        final_status = "completed"
        try:
            final_status = self._play()
        except CallEnded as ended:
            final_status = "completed" if self.live.answered else "cancelled"
            self._event(str(ended), str(ended))
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
        self._progress("started", f"dials {self.record.to}")
        if self.record.scenario is Scenario.BUSY:
            self._wait(self.step)
            return "busy"
        self._progress("ringing", f"{self.record.to} ringing")
        self._wait(min(self.simulator.ring_seconds, self.request.ringing_timer or DEFAULT_RINGING_TIMER))
        if self.record.scenario is Scenario.NO_ANSWER:
            return "timeout"
        self._progress("answered", "answered")
        length_timer = self.request.length_timer or DEFAULT_LENGTH_TIMER
        self._hangup_at = time.monotonic() + length_timer * self.step
        try:
            machine_hung_up = self._detect_machine()
        except Transferred as transfer:  # moved to a new NCCO while machine detection listened
            self._event("transferred", "is transferred to a new NCCO")
            self._play_nccos(transfer.ncco)
            return "completed"
        if not machine_hung_up:
            self._play_nccos()
        return "completed"

    def _detect_machine(self) -> bool:
        """Report human or machine when asked for; True when the call ends here (machine_detection=hangup)."""
        behaviour = self.request.machine_detection
        if behaviour is None:
            return False
        self._wait(self.step)
        if self.record.scenario is not Scenario.VOICEMAIL:
            self._event("amd human", "is answered by a human")
            self._send_event("human")
            return False
        self._event("amd machine", "is answered by a machine")
        self._send_event("machine", {"sub_state": "beep_start"})
        if behaviour == "hangup":
            self._event("machine hung up", "hangs up on the machine (machine_detection=hangup)")
            return True
        return False

    def _finish(self, final_status: str) -> None:
        answered_at, ended_at, duration = self.live.end(final_status)
        self._event(f"status {final_status}", f"{final_status} ({duration}s)")
        if self.simulator.stopping.is_set():
            self._event("no final event: the simulator stopped")
        else:
            extra: dict[str, Any] = {}
            if final_status == "completed" and answered_at is not None:
                price = (RATE_PER_MINUTE * duration / 60).quantize(Decimal("0.00000001"))
                extra = {
                    "duration": str(duration),
                    "start_time": iso_timestamp(answered_at),
                    "end_time": iso_timestamp(ended_at),
                    "rate": str(RATE_PER_MINUTE),
                    "price": str(price),
                }
            self._send_event(final_status, extra)
        self.recordings.call_ended(self.record.sid or "", self._sign)
        self.record.finished = True

    # --- NCCO --------------------------------------------------------------------------------

    def _play_nccos(self, transferred_to: list[Any] | None = None) -> None:
        try:
            ncco: list[Any] | None = transferred_to if transferred_to is not None else self._first_ncco()
            if self.record.scenario is Scenario.HANG_UP:
                self._event("callee hung up", "hangs up")
                return
            for ncco_number in range(1, MAX_NCCOS_PER_CALL + 1):
                if ncco is None:
                    return
                if ncco_number > 1:
                    self._event("ncco from webhook", "continues with the NCCO our webhook answered")
                try:
                    ncco = self._execute(ncco)
                except Transferred as transfer:
                    self._event("transferred", "is transferred to a new NCCO")
                    ncco = transfer.ncco
            if ncco is not None:
                self._event(f"ncco limit: {MAX_NCCOS_PER_CALL} NCCOs", "hangs up: NCCO loop")
        except ApplicationError as error:
            self._event(f"application error: {error}", f"application error: {error}")

    def _first_ncco(self) -> list[Any]:
        if self.request.ncco is not None:
            self._event("ncco inline", "reads the inline NCCO")
            return self.request.ncco
        params = {
            "to": self.record.to,
            "from": self.record.from_,
            "uuid": self.record.sid,
            "conversation_uuid": self.live.conversation_uuid,
        }
        ncco = self._request_ncco(self.request.answer_url, self.request.answer_method, params)
        if ncco is None:
            raise ApplicationError(f"{self.request.answer_url} answered no NCCO")
        self._event("ncco fetched", f"fetches the NCCO from {self.request.answer_url}")
        return ncco

    def _execute(self, ncco: list[Any]) -> list[Any] | None:
        """Run the actions in order; returns the NCCO that replaces this one, or None when the call ends."""
        for action in ncco:
            name = action.get("action") if isinstance(action, dict) else None
            if name == "record":
                refusal = self.recordings.validate(action)
                if refusal is not None:
                    raise ApplicationError(refusal)
                self.recordings.start(self.live, action, self.request.event_url)
            elif name == "talk":
                self._talk(action)
            elif name == "stream":
                self._stream(action)
            elif name in ("input", "notify"):
                replacement = self._input(action) if name == "input" else self._notify(action)
                if replacement is not None:
                    return replacement
            elif isinstance(name, str):
                raise ApplicationError(f"'{name}' is not an action the carrier simulator plays")
            else:
                raise ApplicationError(f"{abbreviate(json.dumps(action))} is not an NCCO action object")
        self._event("end of ncco", "reaches the end of the NCCO")
        return None

    def _talk(self, action: dict[str, Any]) -> None:
        text = action.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApplicationError("a talk action needs a text")
        language = str(action.get("language", "en-US"))
        self.record.says.append({"text": text, "language": language, "style": str(action.get("style", 0))})
        self._event(f"say: {text}", f"says ({language}): {abbreviate(text)}")
        self._play_for(action)

    def _stream(self, action: dict[str, Any]) -> None:
        audio_url = self._single_url(action, "streamUrl")
        if not audio_url:
            raise ApplicationError("a stream action needs streamUrl: a list with one URL")
        self._event(f"stream: {audio_url}", f"plays {audio_url}")
        self._play_for(action)

    def _play_for(self, action: dict[str, Any]) -> None:
        """One step per loop; loop 0 repeats until hung up unless bargeIn lets the next action start."""
        loop = self._whole_number(action, "loop", 1)
        if action.get("bargeIn") is True:
            self._wait(self.step)
        elif loop == 0:
            self._wait(MAX_LENGTH_TIMER * self.step)
        else:
            self._wait(loop * self.step)

    def _input(self, action: dict[str, Any]) -> list[Any] | None:
        """Press the planned digit (or nothing) and send the result; our answer may replace the NCCO."""
        kinds = action.get("type")
        if not isinstance(kinds, list) or "dtmf" not in kinds:
            raise ApplicationError('the simulator only plays input actions with type ["dtmf"]')
        dtmf = action.get("dtmf", {})
        if not isinstance(dtmf, dict):
            raise ApplicationError("input dtmf must be an object")
        max_digits = self._whole_number(dtmf, "maxDigits", DEFAULT_MAX_DIGITS)
        time_out = self._whole_number(dtmf, "timeOut", DEFAULT_INPUT_TIMEOUT)
        url = self._single_url(action, "eventUrl") or self.request.event_url
        if not url:
            raise ApplicationError("an input action needs an eventUrl when the call has no event_url")
        self._event("input", f"listens for up to {max_digits} digit(s)")
        digit = self._next_planned_digit()
        if digit is None:
            self._wait(time_out * self.step)
            self._event("no digits", "presses nothing")
            result: dict[str, Any] = {"digits": "", "timed_out": True}
        else:
            self._wait(self.step)
            self.record.digits += digit
            self._event(f"digits {digit}", f"presses {digit}")
            if max_digits > 1:  # one digit of several: the input ends when timeOut passes
                self._wait(time_out * self.step)
            result = {"digits": digit, "timed_out": max_digits > 1}
        payload = {
            "from": self.record.from_,
            "to": self.record.to,
            "dtmf": result,
            "uuid": self.record.sid,
            "conversation_uuid": self.live.conversation_uuid,
            "timestamp": iso_timestamp(time.time()),
        }
        return self._request_ncco(url, str(action.get("eventMethod", "POST")), payload)

    def _notify(self, action: dict[str, Any]) -> list[Any] | None:
        url = self._single_url(action, "eventUrl")
        payload = action.get("payload")
        if not url or not isinstance(payload, dict):
            raise ApplicationError("a notify action needs a payload object and eventUrl: a list with one URL")
        self._event(f"notify {url}", f"notifies {url}")
        return self._request_ncco(url, str(action.get("eventMethod", "POST")), payload)

    def _request_ncco(self, url: str, method: str, payload: dict[str, Any]) -> list[Any] | None:
        """Fetch an NCCO; an empty answer means "carry on with the current one" (None)."""
        try:
            response = self._send(url, method, payload)
        except requests.RequestException as error:
            raise ApplicationError(f"{url} could not be reached ({error.__class__.__name__})") from error
        if not 200 <= response.status_code < 300:
            raise ApplicationError(f"{url} answered HTTP {response.status_code}")
        if not response.content.strip():
            return None
        try:
            ncco = response.json()
        except ValueError as error:
            raise ApplicationError(f"{url} answered something that is not JSON") from error
        if not isinstance(ncco, list):
            raise ApplicationError(f"{url} answered JSON that is not an NCCO (a list of actions)")
        return ncco

    def _next_planned_digit(self) -> str | None:
        plan = DIGIT_PLANS.get(self.record.scenario, ())
        index = self._inputs_heard
        self._inputs_heard += 1
        return plan[index] if index < len(plan) else None

    @staticmethod
    def _whole_number(options: dict[str, Any], name: str, default: int) -> int:
        value = options.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ApplicationError(f"{name}={value!r} is not a whole number")
        return value

    @staticmethod
    def _single_url(action: dict[str, Any], name: str) -> str:
        """Vonage URLs come as a list holding one URL; '' when the field is absent."""
        value = action.get(name)
        if value is None:
            return ""
        if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], str) or not value[0]:
            raise ApplicationError(f"{name} must be a list with one URL")
        return value[0]

    # --- HTTP to our webhooks ----------------------------------------------------------------

    def _progress(self, status: str, transcript_text: str) -> None:
        self.live.set_status(status)
        self._event(f"status {status}", transcript_text)
        # the answer's time as the call records it: the final event and GET /v1/calls repeat it exactly
        answered_at = self.live.state()[1] if status == "answered" else None
        extra = {"start_time": iso_timestamp(answered_at)} if answered_at is not None else None
        self._send_event(status, extra)

    def _send_event(self, status: str, extra: dict[str, Any] | None = None) -> None:
        """A call event to event_url, whose failure Vonage only logs: the call goes on."""
        url = self.request.event_url
        if not url:
            return
        payload = {
            "from": self.record.from_,
            "to": self.record.to,
            "uuid": self.record.sid,
            "conversation_uuid": self.live.conversation_uuid,
            "status": status,
            "direction": "outbound",
            "timestamp": iso_timestamp(time.time()),
        }
        payload |= extra or {}
        try:
            response = self._send(url, self.request.event_method, payload)
        except requests.RequestException as error:
            self._event(f"event failed: {url} ({error.__class__.__name__})", f"event to {url} failed")
            return
        if response.status_code >= 400:
            self._event(f"event failed: {url} (HTTP {response.status_code})", f"event to {url} failed")

    def _send(self, url: str, method: str, payload: dict[str, Any]) -> requests.Response:
        """JSON body for POST, query string for GET; the JWT hashes the exact body sent (empty for GET)."""
        if self.simulator.stopping.is_set():
            raise requests.ConnectionError("the carrier simulator is stopping")
        headers = {"User-Agent": "Vonage-Voice-Simulator/1.0"}
        if method.upper() == "GET":
            query = {
                name: value if isinstance(value, str) else json.dumps(value)
                for name, value in payload.items()
                if value is not None
            }
            target = f"{url}{'&' if '?' in url else '?'}{urlencode(query)}"
            headers["Authorization"] = f"Bearer {self._sign(b'')}"
            response = self._session.get(target, headers=headers, timeout=CALLBACK_TIMEOUT_SECONDS)
        else:
            body = json.dumps(payload).encode("utf-8")
            headers |= {"Content-Type": "application/json", "Authorization": f"Bearer {self._sign(body)}"}
            response = self._session.post(url, data=body, headers=headers, timeout=CALLBACK_TIMEOUT_SECONDS)
        self.record.callback_responses.append((url, response.status_code))
        return response

    def _sign(self, body: bytes) -> str:
        return sign_webhook(self._signature_secret, self._application_id, body)

    # --- helpers -----------------------------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        """Sleep in call time; ends the call on a hang-up, the simulator stopping, or length_timer."""
        limit = seconds
        if self._hangup_at is not None:
            limit = max(0.0, min(seconds, self._hangup_at - time.monotonic()))
        hung_up = self.live.hangup.wait(limit)
        if self.simulator.stopping.is_set():
            raise CallEnded("the simulator stopped")
        transfer = self.live.take_transfer() if hung_up else None
        if transfer is not None:
            raise Transferred(transfer)
        if hung_up:
            raise CallEnded("hung up through the API")
        if limit < seconds:
            raise CallEnded("length_timer expired")

    def _event(self, event: str, transcript_text: str | None = None) -> None:
        self.record.events.append(event)
        if transcript_text is not None:
            self.simulator.write_transcript(f"{short_sid(self.record.sid)} {transcript_text}", carrier=CARRIER)
