"""Vonage's Voice API as our SDK calls it: create a call, hang it up, fetch it.

Requests carry an application JWT (RS256, signed with the application's private key) and JSON bodies;
replies are JSON shaped like Vonage's, errors included (RFC 7807: type, title, detail, instance), so
the vonage SDK builds a `CreateCallResponse` or raises its `HttpRequestError` subclasses exactly as
against the real API. A placed call's state lives here too, shared by the REST handler (a hang-up)
and the thread in `simulator.vonage_call` that plays it.
"""

from __future__ import annotations

import hmac
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from simulator.records import ApiReply, SimulatedCall
from simulator.scenarios import Scenario
from simulator.twilio_state import short_sid
from simulator.vonage_call import CARRIER, MAX_LENGTH_TIMER, VonageCallPlayer, iso_timestamp
from simulator.vonage_recording import VONAGE_FILES_PREFIX, VonageRecordings

__all__ = ["VONAGE_FILES_PREFIX", "VONAGE_PATH_PREFIX", "VonageApi"]

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

    from simulator.server import CarrierSimulator

VONAGE_PATH_PREFIX = "/v1/calls"
CALL_PATH = re.compile(rf"^{VONAGE_PATH_PREFIX}/(?P<uuid>[^/]+)$")
ERROR_TYPE_BASE = "https://developer.nexmo.com/api-errors"
# Vonage numbers are E.164 digits without the '+'.
VONAGE_NUMBER = re.compile(r"^[1-9]\d{6,14}$")
CLOCK_SKEW_SECONDS = 60
MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600
MAX_RINGING_TIMER = 120


@dataclass(frozen=True)
class VonageCallRequest:
    """A validated POST /v1/calls body: exactly one of `ncco` and `answer_url` is set."""

    to: str
    from_: str
    ncco: list[Any] | None
    answer_url: str
    answer_method: str
    event_url: str
    event_method: str
    ringing_timer: int | None
    length_timer: int | None
    machine_detection: str | None


class VonageLiveCall:
    """The mutable state of a placed call, shared by its playing thread and the REST handler."""

    def __init__(self, record: SimulatedCall, request: VonageCallRequest) -> None:
        self.record = record
        self.request = request
        self.conversation_uuid = f"CON-{uuid.uuid4()}"
        self.created_at = time.time()
        self.hangup = threading.Event()  # set by a hang-up, or by a transfer (pending_ncco says which)
        self._lock = threading.Lock()
        self._hangup_requested = False
        self._pending_ncco: list[Any] | None = None
        self._status = "started"
        self._answered_at: float | None = None
        self._ended_at: float | None = None

    @property
    def answered(self) -> bool:
        with self._lock:
            return self._answered_at is not None

    def set_status(self, status: str) -> None:
        with self._lock:
            self._status = status
            if status == "answered":
                self._answered_at = time.time()

    def end(self, final_status: str) -> tuple[float | None, float, int]:
        """Mark the call over; returns (answered at, ended at, whole seconds counted from the answer)."""
        with self._lock:
            self._status = final_status
            self._ended_at = time.time()
            answered_at = self._answered_at
        duration = math.ceil(self._ended_at - answered_at) if answered_at is not None else 0
        return answered_at, self._ended_at, duration

    def state(self) -> tuple[str, float | None, float | None]:
        """(status, answered at, ended at), read together."""
        with self._lock:
            return self._status, self._answered_at, self._ended_at

    def request_hangup(self) -> None:
        """PUT action=hangup ends a call in any state: `cancelled` before the answer, `completed` after."""
        with self._lock:
            if self._ended_at is not None:
                return
            self._hangup_requested = True
        self.hangup.set()

    def request_transfer(self, ncco: list[Any]) -> bool:
        """PUT action=transfer with an NCCO destination: the call leaves its NCCO for this one."""
        with self._lock:
            if self._ended_at is not None or self._answered_at is None:
                return False
            self._pending_ncco = ncco
        self.hangup.set()
        return True

    def take_transfer(self) -> list[Any] | None:
        """The NCCO a transfer asked for, once; the interruption is cleared unless a hang-up came too."""
        with self._lock:
            ncco, self._pending_ncco = self._pending_ncco, None
            if ncco is not None and not self._hangup_requested:
                self.hangup.clear()
            return ncco


def vonage_error(status: int, slug: str, title: str, detail: str, **extra: Any) -> ApiReply:
    """Vonage's RFC 7807 error body, which the SDK puts in the message of the error it raises."""
    payload = {"type": f"{ERROR_TYPE_BASE}#{slug}", "title": title, "detail": detail, "instance": str(uuid.uuid4())}
    return ApiReply(status, payload | extra)


def bad_request(field: str, reason: str) -> ApiReply:
    return vonage_error(
        400, "bad-request", "Bad Request", f"{field}: {reason}", invalid_parameters=[{"name": field, "reason": reason}]
    )


def not_found(path: str) -> ApiReply:
    return vonage_error(404, "not-found", "Not Found", f"The requested resource {path} does not exist")


class VonageApi:
    """The REST endpoints; owns the live calls so a hang-up request can reach its call's thread."""

    def __init__(
        self,
        simulator: CarrierSimulator,
        application_id: str | None,
        public_key_pem: str | None,
        signature_secret: str | None,
    ) -> None:
        given = [value for value in (application_id, public_key_pem, signature_secret) if value]
        if given and len(given) != 3:
            raise ValueError(
                "Vonage needs vonage_application_id, vonage_public_key_pem and vonage_signature_secret together"
            )
        self.simulator = simulator
        self.application_id = application_id or ""
        self.signature_secret = signature_secret or ""
        # Parsed once: a wrong key fails when the simulator is built, not at the first call.
        self._public_key: PublicKeyTypes | None = (
            load_pem_public_key(public_key_pem.encode("utf-8")) if public_key_pem else None
        )
        self._live_calls: dict[str, VonageLiveCall] = {}
        self._lock = threading.Lock()
        self.recordings = VonageRecordings(simulator)

    @property
    def enabled(self) -> bool:
        return self._public_key is not None

    def handle(
        self, method: str, path: str, authorization: str, body: bytes, received_at: float, query: str = ""
    ) -> ApiReply:
        call_match = CALL_PATH.match(path)
        create = path.rstrip("/") == VONAGE_PATH_PREFIX and method == "POST"
        listing = path.rstrip("/") == VONAGE_PATH_PREFIX and method == "GET"
        media = path.startswith(VONAGE_FILES_PREFIX) and method == "GET"
        if not create and not listing and not media and not (call_match and method in ("GET", "PUT")):
            return not_found(path)
        failure = self._authentication_failure(authorization)
        if failure is not None:
            detail = f"You did not provide correct credentials: {failure}"
            return vonage_error(401, "unauthorized", "Unauthorized", detail)
        if media:
            return self.recordings.file(path)
        if create:
            return self._create_call(body, received_at)
        if listing:
            return self._list_calls(parse_qs(query, keep_blank_values=True))
        assert call_match is not None  # for the type checker: `create` is False here
        live = self._live_call(call_match["uuid"])
        if live is None:
            return not_found(path)
        if method == "GET":
            return ApiReply(200, call_info(live))
        return self._update_call(live, body)

    def hang_up_everything(self) -> None:
        with self._lock:
            live_calls = list(self._live_calls.values())
        for live in live_calls:
            live.request_hangup()

    def forget_calls(self) -> None:
        with self._lock:
            self._live_calls.clear()

    def _authentication_failure(self, authorization: str) -> str | None:
        """Why the application JWT is refused, or None: RS256 with our key, our application, sane times, a jti."""
        if self._public_key is None:
            return "the carrier simulator was started without a Vonage application"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "expected Authorization: Bearer <application JWT>"
        try:
            claims = jwt.decode(
                token.strip(),
                self._public_key,
                algorithms=["RS256"],
                options={"require": ["application_id", "iat", "exp", "jti"]},
                leeway=CLOCK_SKEW_SECONDS,
            )
        except jwt.PyJWTError as error:
            return f"invalid JWT ({error})"
        if not hmac.compare_digest(str(claims["application_id"]).encode(), self.application_id.encode()):
            return "the JWT names another application"
        issued_at, expires_at = claims["iat"], claims["exp"]
        if not all(isinstance(value, int | float) for value in (issued_at, expires_at)):
            return "iat and exp must be numbers"
        if issued_at > time.time() + CLOCK_SKEW_SECONDS:
            return "the JWT is issued in the future"
        if not 0 < expires_at - issued_at <= MAX_TOKEN_LIFETIME_SECONDS:
            return "the JWT must expire after it is issued and within 24 hours"
        return None

    def _live_call(self, call_uuid: str) -> VonageLiveCall | None:
        with self._lock:
            return self._live_calls.get(call_uuid)

    def _list_calls(self, query: dict[str, list[str]]) -> ApiReply:
        """GET /v1/calls: the application's calls filtered by status, conversation and creation time
        (date_start/date_end, ISO 8601), oldest first unless order=desc, page_size (1-100, 10 by
        default) records from record_index on, in Vonage's HAL shape."""
        value = {name: values[0] for name, values in query.items() if values}
        page_size, record_index = value.get("page_size", "10"), value.get("record_index", "0")
        if not (page_size.isdigit() and 1 <= int(page_size) <= 100):
            return bad_request("page_size", "must be a whole number from 1 to 100")
        if not record_index.isdigit():
            return bad_request("record_index", "must be a whole number")
        if value.get("order", "asc") not in ("asc", "desc"):
            return bad_request("order", "must be asc or desc")
        bounds = {}
        for name in ("date_start", "date_end"):
            if name in value:
                try:
                    bounds[name] = datetime.fromisoformat(value[name].replace("Z", "+00:00")).timestamp()
                except ValueError:
                    return bad_request(name, "must be an ISO 8601 time, e.g. 2024-05-14T10:00:00Z")
        with self._lock:
            live_calls = sorted(self._live_calls.values(), key=lambda live: live.created_at)
        if value.get("order") == "desc":
            live_calls.reverse()
        matching = [
            call_info(live)
            for live in live_calls
            if live.created_at >= bounds.get("date_start", 0)
            and live.created_at <= bounds.get("date_end", math.inf)
            and live.conversation_uuid == value.get("conversation_uuid", live.conversation_uuid)
            and live.state()[0] == value.get("status", live.state()[0])
        ]
        start, size = int(record_index), int(page_size)
        links = {"self": {"href": f"{VONAGE_PATH_PREFIX}?{urlencode({**value, 'record_index': start})}"}}
        if start + size < len(matching):
            links["next"] = {"href": f"{VONAGE_PATH_PREFIX}?{urlencode({**value, 'record_index': start + size})}"}
        payload = {
            "count": len(matching),
            "page_size": size,
            "record_index": start,
            "_links": links,
            "_embedded": {"calls": matching[start : start + size]},
        }
        return ApiReply(200, payload)

    def _create_call(self, body: bytes, received_at: float) -> ApiReply:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = None
        request = parse_call_request(data) if isinstance(data, dict) else bad_request("body", "must be a JSON object")
        raw = data if isinstance(data, dict) else {}
        to = request.to if isinstance(request, VonageCallRequest) else loose_number(raw.get("to"))
        from_ = request.from_ if isinstance(request, VonageCallRequest) else loose_number(raw.get("from"))
        scenario = self.simulator.scenario_for(to, carrier="vonage")
        record = SimulatedCall(
            sid=None,
            to=to,
            from_=from_,
            scenario=scenario,
            requested_at=received_at,
            params=record_params(raw),
            api_status=0,
            carrier=CARRIER,
        )
        refusal = request if isinstance(request, ApiReply) else self._scenario_refusal(scenario)
        if refusal is not None:
            return self._refuse(record, refusal)
        assert isinstance(request, VonageCallRequest)  # for the type checker: refusals returned above

        record.sid = str(uuid.uuid4())
        record.api_status = 201
        live = VonageLiveCall(record, request)
        with self._lock:
            self._live_calls[record.sid] = live
        self.simulator.record_call(record, will_play=True)
        self.simulator.write_transcript(
            f"{short_sid(record.sid)} POST /v1/calls accepted: {to} from {from_} ({scenario.value})", carrier=CARRIER
        )
        player = VonageCallPlayer(self.simulator, live, self.application_id, self.signature_secret, self.recordings)
        payload = {
            "uuid": record.sid,
            "status": "started",
            "direction": "outbound",
            "conversation_uuid": live.conversation_uuid,
        }
        return ApiReply(
            201, payload, after_reply=lambda: self.simulator.start_playback(player.run, name=f"sim-{record.sid}")
        )

    def _scenario_refusal(self, scenario: Scenario) -> ApiReply | None:
        if scenario is Scenario.API_ERROR:
            return vonage_error(500, "internal-error", "Internal Server Error", "The call could not be created")
        if scenario is Scenario.API_TIMEOUT:
            return vonage_error(503, "service-unavailable", "Service Unavailable", "Please try again later")
        return None

    def _refuse(self, record: SimulatedCall, refusal: ApiReply) -> ApiReply:
        return self.simulator.refuse_call(
            record, refusal, request="POST /v1/calls", reason=refusal.payload["detail"], carrier=CARRIER
        )

    def _update_call(self, live: VonageLiveCall, body: bytes) -> ApiReply:
        """Hanging up, and a transfer to an inline NCCO (how a call in progress starts recording: an
        NCCO with a record action); Vonage answers an accepted update with 204 and no body."""
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = None
        action = data.get("action") if isinstance(data, dict) else None
        if action == "hangup":
            live.request_hangup()
            return ApiReply(204, None)
        if action != "transfer":
            return bad_request("action", "the carrier simulator updates calls with action=hangup or transfer")
        destination = data.get("destination")
        ncco = destination.get("ncco") if isinstance(destination, dict) else None
        if not isinstance(destination, dict) or destination.get("type") != "ncco":
            return bad_request("destination", "the carrier simulator transfers to an inline NCCO (type ncco)")
        if not (isinstance(ncco, list) and ncco and all(isinstance(item, dict) for item in ncco)):
            return bad_request("destination.ncco", "must be a non-empty list of action objects")
        if not live.request_transfer(ncco):
            detail = "Only an answered call in progress can be transferred"
            return vonage_error(400, "bad-request", "Bad Request", detail)
        return ApiReply(204, None)


def parse_call_request(data: dict[str, Any]) -> VonageCallRequest | ApiReply:
    """The validation Vonage does before accepting a call; a 400 names the first wrong field."""
    to = data.get("to")
    if not isinstance(to, list) or len(to) != 1:
        return bad_request("to", "must be a list with one endpoint")
    checked_to = phone_number(to[0], "to")
    if isinstance(checked_to, ApiReply):
        return checked_to
    checked_from = phone_number(data.get("from"), "from")
    if isinstance(checked_from, ApiReply):
        return checked_from
    ncco, answer_url = data.get("ncco"), data.get("answer_url")
    if (ncco is None) == (answer_url is None):
        return bad_request("ncco", "send either ncco or answer_url, not both or neither")
    if ncco is not None and not (isinstance(ncco, list) and ncco and all(isinstance(a, dict) for a in ncco)):
        return bad_request("ncco", "must be a non-empty list of action objects")
    fields: dict[str, Any] = {}
    for name in ("answer_url", "event_url"):
        value = data.get(name)
        if value is not None and not (isinstance(value, list) and len(value) == 1 and is_http_url(value[0])):
            return bad_request(name, "must be a list with one http(s) URL")
        fields[name] = value[0] if value else ""
    for name, default in (("answer_method", "GET"), ("event_method", "POST")):
        value = data.get(name, default)
        if value not in ("GET", "POST"):
            return bad_request(name, "must be GET or POST")
        fields[name] = value
    for name, maximum in (("ringing_timer", MAX_RINGING_TIMER), ("length_timer", MAX_LENGTH_TIMER)):
        value = data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum):
            return bad_request(name, f"must be a whole number of seconds from 1 to {maximum}")
        fields[name] = value
    machine_detection = data.get("machine_detection")
    if machine_detection not in (None, "continue", "hangup"):
        return bad_request("machine_detection", "must be continue or hangup")
    return VonageCallRequest(
        to=checked_to, from_=checked_from, ncco=ncco, machine_detection=machine_detection, **fields
    )


def phone_number(endpoint: Any, field: str) -> str | ApiReply:
    """The number of a {"type": "phone", "number": "8210..."} endpoint, or the 400 naming `field`."""
    if not isinstance(endpoint, dict) or endpoint.get("type") != "phone":
        return bad_request(field, 'must be a phone endpoint {"type": "phone", "number": ...}')
    number = endpoint.get("number")
    if not isinstance(number, str) or not VONAGE_NUMBER.match(number):
        return bad_request(field, f"{number!r} is not a number in E.164 digits without '+'")
    return number


def is_http_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def loose_number(endpoint: Any) -> str:
    """Whatever number a refused request named, for the record."""
    if isinstance(endpoint, list) and endpoint:
        endpoint = endpoint[0]
    number = endpoint.get("number") if isinstance(endpoint, dict) else None
    return number if isinstance(number, str) else ""


def record_params(data: dict[str, Any]) -> dict[str, str | list[str]]:
    """The request's scalar fields as strings, its one-URL lists unwrapped, an inline NCCO as JSON."""
    params: dict[str, str | list[str]] = {}
    for name, value in data.items():
        if name in ("to", "from"):
            continue
        if name in ("answer_url", "event_url") and isinstance(value, list) and len(value) == 1:
            params[name] = str(value[0])
        elif isinstance(value, str):
            params[name] = value
        else:
            params[name] = json.dumps(value, ensure_ascii=False)
    return params


def call_info(live: VonageLiveCall) -> dict[str, Any]:
    """The call resource of GET /v1/calls/{uuid}, with the fields the SDK's `CallInfo` reads."""
    record = live.record
    status, answered_at, ended_at = live.state()
    duration = str(math.ceil(ended_at - answered_at)) if answered_at and ended_at else None
    return {
        "uuid": record.sid,
        "conversation_uuid": live.conversation_uuid,
        "to": {"type": "phone", "number": record.to},
        "from": {"type": "phone", "number": record.from_},
        "status": status,
        "direction": "outbound",
        "duration": duration,
        "start_time": iso_timestamp(answered_at) if answered_at else None,
        "end_time": iso_timestamp(ended_at) if ended_at else None,
        "_links": {"self": {"href": f"{VONAGE_PATH_PREFIX}/{record.sid}"}},
    }
