"""Twilio's REST API as our SDK calls it: create a call, hang it up, fetch it, list the calls.

Requests are form-encoded with HTTP basic auth (AccountSid:AuthToken); replies are JSON shaped like
Twilio's, errors included ({"code", "message", "more_info", "status"}), so the twilio SDK builds a
`CallInstance` or raises `TwilioRestException` exactly as against the real API. The call itself is
played by `simulator.twilio_call`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import threading
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

from simulator.records import ApiReply, SimulatedCall
from simulator.scenarios import Scenario
from simulator.twilio_call import TwilioCallPlayer
from simulator.twilio_recording import TwilioRecordings, recording_resource
from simulator.twilio_state import API_VERSION, LiveCall, rfc2822, short_sid

if TYPE_CHECKING:
    from simulator.server import CarrierSimulator

CALLS_PATH = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account_sid>[^/]+)/Calls\.json$")
CALL_PATH = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account_sid>[^/]+)/Calls/(?P<call_sid>[^/]+)\.json$")
CALL_RECORDINGS_PATH = re.compile(
    rf"^/{API_VERSION}/Accounts/(?P<account_sid>[^/]+)/Calls/(?P<call_sid>[^/]+)/Recordings\.json$"
)
CALL_RECORDING_PATH = re.compile(
    rf"^/{API_VERSION}/Accounts/(?P<account_sid>[^/]+)/Calls/(?P<call_sid>[^/]+)/Recordings/(?P<sid>[^/.]+)\.json$"
)
# The media (and resource) at the RecordingUrl of the callback, with the extension choosing the format.
RECORDING_PATH = re.compile(
    rf"^/{API_VERSION}/Accounts/(?P<account_sid>[^/]+)/Recordings/(?P<sid>[^/.]+)\.(?P<extension>json|wav|mp3)$"
)
RECORDING_ROUTES = (CALL_RECORDINGS_PATH, CALL_RECORDING_PATH, RECORDING_PATH)
HANGUP_STATUSES = ("completed", "canceled")


def twilio_error(status: int, code: int, message: str) -> ApiReply:
    """Twilio's legacy error body, which the SDK turns into TwilioRestException(status, code, message)."""
    payload = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return ApiReply(status, payload)


def not_found(path: str) -> ApiReply:
    return twilio_error(404, 20404, f"The requested resource {path} was not found")


class TwilioApi:
    """The REST endpoints; owns the live calls so a hang-up request can reach its call's thread."""

    def __init__(self, simulator: CarrierSimulator) -> None:
        self.simulator = simulator
        self._live_calls: dict[str, LiveCall] = {}
        self._lock = threading.Lock()
        self.recordings = TwilioRecordings(simulator)

    def handle(
        self, method: str, path: str, authorization: str, body: bytes, received_at: float, query: str = ""
    ) -> ApiReply:
        recording_route = next(
            (found for pattern in RECORDING_ROUTES if (found := pattern.match(path)) is not None), None
        )
        if recording_route is not None:
            if not self._authenticated(authorization, recording_route["account_sid"]):
                return twilio_error(401, 20003, "Authenticate")
            return self._recording_request(method, path, recording_route, body)
        calls_match = CALLS_PATH.match(path)
        call_match = CALL_PATH.match(path)
        route = calls_match or call_match
        if route is None or method not in ("GET", "POST"):
            return not_found(path)
        if not self._authenticated(authorization, route["account_sid"]):
            return twilio_error(401, 20003, "Authenticate")
        if calls_match and method == "POST":
            return self._create_call(parse_form(body), received_at)
        if calls_match and method == "GET":
            return self._list_calls(route["account_sid"], parse_qs(query, keep_blank_values=True))
        if call_match and method == "POST":
            return self._update_call(call_match["call_sid"], parse_form(body), path)
        if call_match and method == "GET":
            live = self._live_call(call_match["call_sid"])
            return ApiReply(200, call_resource(live)) if live else not_found(path)
        return not_found(path)

    def _recording_request(self, method: str, path: str, route: re.Match, body: bytes) -> ApiReply:
        groups = route.groupdict()
        if "extension" in groups:  # GET {RecordingUrl}.wav / .mp3 / .json
            recording = self.recordings.get(groups["sid"])
            if method != "GET" or recording is None:
                return not_found(path)
            if groups["extension"] == "json":
                return ApiReply(200, recording_resource(recording))
            return self.recordings.media(recording, groups["extension"])
        if method != "POST":
            return not_found(path)
        live = self._live_call(groups["call_sid"])
        if live is None:
            return not_found(path)
        form = parse_form(body)
        if "sid" not in groups:  # Calls/{CallSid}/Recordings.json: start recording the live call
            started = self.recordings.start(live, form, source="StartCallRecordingAPI")
            return started if isinstance(started, ApiReply) else ApiReply(201, recording_resource(started))
        recording = self.recordings.get(groups["sid"])
        if recording is None or recording.call_sid != groups["call_sid"]:
            return not_found(path)
        return self.recordings.update(recording, first(form, "Status"))

    def hang_up_everything(self) -> None:
        with self._lock:
            live_calls = list(self._live_calls.values())
        for live in live_calls:
            live.request_hangup("completed")

    def forget_calls(self) -> None:
        with self._lock:
            self._live_calls.clear()

    def _authenticated(self, authorization: str, path_account_sid: str) -> bool:
        """Basic auth must be exactly our AccountSid and auth token, and the URL must name the same account."""
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        account = self.simulator.account_sid
        return (
            hmac.compare_digest(username.encode(), account.encode())
            and hmac.compare_digest(password.encode(), self.simulator.auth_token.encode())
            and path_account_sid == account
        )

    def _live_call(self, call_sid: str) -> LiveCall | None:
        with self._lock:
            return self._live_calls.get(call_sid)

    def _list_calls(self, account_sid: str, query: dict[str, list[str]]) -> ApiReply:
        """GET Calls.json: the account's calls, newest first, filtered by To, From and Status as Twilio
        filters them, one page of PageSize (50 by default) at a time."""
        page_size, page = first(query, "PageSize", "50"), first(query, "Page", "0")
        if not (page_size.isdigit() and 1 <= int(page_size) <= 1000 and page.isdigit()):
            return twilio_error(400, 20001, "PageSize must be 1 to 1000 and Page a whole number")
        page_size_n, page_n = int(page_size), int(page)
        wanted = {name: first(query, name) for name in ("To", "From", "Status") if first(query, name)}
        with self._lock:
            live_calls = list(self._live_calls.values())
        resources = [call_resource(live) for live in sorted(live_calls, key=lambda live: live.created_at, reverse=True)]
        fields = {"To": "to", "From": "from", "Status": "status"}
        matching = [found for found in resources if all(found[fields[name]] == value for name, value in wanted.items())]
        chunk = matching[page_n * page_size_n : (page_n + 1) * page_size_n]
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Calls.json"

        def page_uri(number: int) -> str:
            return f"{uri}?{urlencode({**wanted, 'PageSize': page_size_n, 'Page': number})}"

        more = (page_n + 1) * page_size_n < len(matching)
        payload = {
            "calls": chunk,
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page_n + 1) if more else None,
            "previous_page_uri": page_uri(page_n - 1) if page_n else None,
            "page": page_n,
            "page_size": page_size_n,
            "start": page_n * page_size_n,
            "end": page_n * page_size_n + max(len(chunk) - 1, 0),
            "uri": page_uri(page_n),
        }
        return ApiReply(200, payload)

    def _create_call(self, form: dict[str, list[str]], received_at: float) -> ApiReply:
        to = first(form, "To")
        from_ = first(form, "From")
        scenario = self.simulator.scenario_for(to, carrier="twilio")
        record = SimulatedCall(
            sid=None,
            to=to,
            from_=from_,
            scenario=scenario,
            requested_at=received_at,
            params=flatten_form(form),
            api_status=0,
        )
        refusal = self._invalid_request(form) or self._scenario_refusal(scenario)
        if refusal is not None:
            return self._refuse(record, refusal)

        record.sid = "CA" + uuid.uuid4().hex
        record.api_status = 201
        live = LiveCall(record, self.simulator.account_sid, form)
        with self._lock:
            self._live_calls[record.sid] = live
        self.simulator.record_call(record, will_play=True)
        self.simulator.write_transcript(
            f"{short_sid(record.sid)} Calls.create accepted: {to} from {from_} ({scenario.value})"
        )
        player = TwilioCallPlayer(self.simulator, live, self.recordings)
        return ApiReply(
            201,
            call_resource(live),
            after_reply=lambda: self.simulator.start_playback(player.run, name=f"sim-{record.sid}"),
        )

    def _invalid_request(self, form: dict[str, list[str]]) -> ApiReply | None:
        """The validation Twilio does before accepting a call, with its error codes."""
        if not first(form, "To"):
            return twilio_error(400, 21201, "No 'To' number is specified")
        if not first(form, "From"):
            return twilio_error(400, 21213, "No 'From' number is specified")
        if not first(form, "Url") and not first(form, "Twiml") and not first(form, "ApplicationSid"):
            return twilio_error(400, 21205, "Either a 'Url', 'Twiml' or 'ApplicationSid' parameter is required")
        if first(form, "ApplicationSid") and not (first(form, "Url") or first(form, "Twiml")):
            return twilio_error(400, 21205, "The carrier simulator has no applications: send 'Url' or 'Twiml'")
        timeout = first(form, "Timeout")
        if timeout and not timeout.isdigit():
            return twilio_error(400, 21216, f"Timeout must be a whole number of seconds, got '{timeout}'")
        for field in ("Method", "StatusCallbackMethod", "AsyncAmdStatusCallbackMethod"):
            value = first(form, field)
            if value and value.upper() not in ("GET", "POST"):
                return twilio_error(400, 21208, f"{field} must be GET or POST, got '{value}'")
        return None

    def _scenario_refusal(self, scenario: Scenario) -> ApiReply | None:
        if scenario is Scenario.API_ERROR:
            return twilio_error(500, 20500, "Internal Server Error")
        if scenario is Scenario.API_TIMEOUT:
            return twilio_error(503, 20503, "Service Unavailable")
        return None

    def _refuse(self, record: SimulatedCall, refusal: ApiReply) -> ApiReply:
        return self.simulator.refuse_call(record, refusal, request="Calls.create", reason=refusal.payload["message"])

    def _update_call(self, call_sid: str, form: dict[str, list[str]], path: str) -> ApiReply:
        """Only hanging up is simulated: Status=completed ends any call, Status=canceled one not yet answered."""
        live = self._live_call(call_sid)
        if live is None:
            return not_found(path)
        status = first(form, "Status")
        if status not in HANGUP_STATUSES:
            return twilio_error(
                400, 21220, "The carrier simulator only updates calls with Status=completed or Status=canceled"
            )
        live.request_hangup(status)
        return ApiReply(200, call_resource(live))


def parse_form(body: bytes) -> dict[str, list[str]]:
    return parse_qs(body.decode("utf-8"), keep_blank_values=True)


def first(form: dict[str, list[str]], name: str, default: str = "") -> str:
    values = form.get(name)
    return values[0] if values else default


def flatten_form(form: dict[str, list[str]]) -> dict[str, str | list[str]]:
    """A field sent once becomes its string; a repeated one stays a list."""
    return {name: values[0] if len(values) == 1 else list(values) for name, values in form.items()}


def call_resource(live: LiveCall) -> dict[str, Any]:
    """The call resource JSON, with the fields `twilio.rest.api.v2010.account.call.CallInstance` reads."""
    record = live.record
    uri = f"/{API_VERSION}/Accounts/{live.account_sid}/Calls/{record.sid}"
    snapshot = live.snapshot()
    return {
        "sid": record.sid,
        "date_created": rfc2822(live.created_at),
        "date_updated": rfc2822(snapshot.updated_at),
        "parent_call_sid": None,
        "account_sid": live.account_sid,
        "to": record.to,
        "to_formatted": record.to,
        "from": record.from_,
        "from_formatted": record.from_,
        "phone_number_sid": None,
        "status": snapshot.status,
        "start_time": rfc2822(snapshot.answered_at) if snapshot.answered_at else None,
        "end_time": rfc2822(snapshot.ended_at) if snapshot.ended_at else None,
        "duration": str(snapshot.duration) if snapshot.ended_at else None,
        "price": None,
        "price_unit": "USD",
        "direction": "outbound-api",
        "answered_by": snapshot.answered_by,
        "api_version": API_VERSION,
        "forwarded_from": None,
        "group_sid": None,
        "caller_name": None,
        "queue_time": "0",
        "trunk_sid": None,
        "uri": f"{uri}.json",
        "subresource_uris": {
            name: f"{uri}/{name}.json"
            for name in ("notifications", "recordings", "payments", "events", "siprec", "streams", "transcriptions")
        },
    }
