"""The carrier simulator's Vonage side at the network boundary: the real vonage SDK calls it over HTTP,
and it plays each call against a real webhook server.

The webhook server verifies every request's JWT as our views must (HS256 with the signature secret,
`payload_hash` equal to the SHA-256 of the body, `iat` within five minutes) and answers 403 otherwise,
so every assertion on its requests also proves the simulator signs like Vonage.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from requests.adapters import HTTPAdapter
from urllib3 import Retry
from vonage import Auth, HttpClientOptions, Voice
from vonage_http_client import HttpClient
from vonage_http_client.errors import AuthenticationError, HttpRequestError, NotFoundError, ServerError
from vonage_voice import CreateCallRequest, Input, Talk

from simulator import CarrierSimulator, Scenario, SimulatedCall

ACCOUNT_SID = "AC" + "0" * 32
APPLICATION_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
SIGNATURE_SECRET = "vonage-signature-secret-for-tests-0123456789"  # >= 32 bytes: PyJWT warns below
FROM_NUMBER = "821000000000"
ALERT_TEXT = "긴급 알림입니다. 확인하려면 1번을 누르세요."
ACK_TEXT = "Acknowledged. Goodbye."
NO_ANSWER_TEXT = "No answer received. Goodbye."


def generate_key_pair() -> tuple[str, str]:
    """(PKCS#8 private PEM, as the Vonage dashboard issues it; the public PEM the simulator checks with)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")
    return private_pem, key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


PRIVATE_KEY, PUBLIC_KEY = generate_key_pair()


# --- how our provider aims the vonage v4 SDK at a base URL (the simulator's, or the real one) -----


class PlainHttpAdapter(HTTPAdapter):
    """Sends the SDK's https://<api_host> requests over plain HTTP: the local simulator has no TLS."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        request.url = "http://" + (request.url or "").removeprefix("https://")
        return super().send(request, *args, **kwargs)


class BaseUrlHttpClient(HttpClient):
    """The SDK builds `https://{api_host}{path}` itself: the base URL's host becomes `api_host`, and for an
    http:// base URL an adapter mounted on exactly that origin sends the requests over plain HTTP."""

    def __init__(self, auth: Auth, base_url: str, timeout: int | None = None) -> None:
        parts = urlsplit(base_url)
        options = HttpClientOptions(api_host=parts.netloc, timeout=timeout)
        super().__init__(auth, options, sdk_version=version("vonage"))
        if parts.scheme == "http":
            retry = Retry(total=options.max_retries, backoff_factor=0.1)  # as the SDK's own adapter
            adapter = PlainHttpAdapter(options.pool_connections, options.pool_maxsize, max_retries=retry)
            self._session.mount(f"https://{parts.netloc}/", adapter)


def voice_client(base_url: str, private_key: str = PRIVATE_KEY, application_id: str = APPLICATION_ID, **kw) -> Voice:
    return Voice(BaseUrlHttpClient(Auth(application_id=application_id, private_key=private_key), base_url, **kw))


# --- our side of the call -----------------------------------------------------------------------


@dataclass
class WebhookRequest:
    method: str
    path: str
    payload: dict[str, Any]
    signature_valid: bool


@dataclass
class WebhookServer:
    """Serves NCCOs per path, answers inputs like our product, records every request the carrier made."""

    base_url: str = ""
    routes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[WebhookRequest] = field(default_factory=list)

    def to(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def received(self, path: str) -> list[WebhookRequest]:
        """Requests to `path` or below it (events go to /event/<attempt token>)."""
        return [request for request in self.requests if request.path == path or request.path.startswith(f"{path}/")]

    def statuses(self) -> list[str]:
        return [request.payload["status"] for request in self.received("/event")]

    def after_input(self, dtmf: dict[str, Any]) -> list[dict[str, Any]]:
        if dtmf["digits"] in ("1", "2"):
            return [{"action": "talk", "text": ACK_TEXT}]
        if dtmf["timed_out"] and not dtmf["digits"]:
            return [{"action": "talk", "text": NO_ANSWER_TEXT}]
        return [{"action": "talk", "text": "Unknown key."}, *alert_ncco(self)]


def alert_ncco(webhooks: WebhookServer) -> list[dict[str, Any]]:
    dtmf = {"maxDigits": 1, "timeOut": 3}
    return [
        {"action": "talk", "text": ALERT_TEXT, "language": "ko-KR", "style": 1},
        {"action": "input", "type": ["dtmf"], "dtmf": dtmf, "eventUrl": [webhooks.to("/input")]},
    ]


def signature_valid(authorization: str, body: bytes) -> bool:
    """How our views must verify a Vonage webhook."""
    scheme, _, token = authorization.partition(" ")
    try:
        claims = jwt.decode(token, SIGNATURE_SECRET, algorithms=["HS256"])
    except jwt.PyJWTError:
        return False
    return (
        scheme == "Bearer"
        and claims.get("payload_hash") == hashlib.sha256(body).hexdigest()
        and abs(time.time() - claims.get("iat", 0)) <= 300
        and claims.get("iss") == "Vonage"
        and claims.get("application_id") == APPLICATION_ID
        and bool(claims.get("jti"))
    )


def make_webhook_handler(server: WebhookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = urlsplit(self.path)
            query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
            payload = json.loads(body) if self.command == "POST" else query
            valid = signature_valid(self.headers.get("Authorization", ""), body)
            server.requests.append(WebhookRequest(self.command, parts.path, payload, valid))
            if not valid:
                self._reply(403, None)
            elif parts.path == "/input":
                self._reply(200, server.after_input(payload["dtmf"]))
            elif parts.path in server.routes:
                self._reply(200, server.routes[parts.path])
            else:
                self._reply(204 if parts.path.startswith("/event/") else 404, None)

        do_GET = do_POST

        def _reply(self, status: int, ncco: list[dict[str, Any]] | None) -> None:
            encoded = b"" if ncco is None else json.dumps(ncco).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def webhooks() -> Iterator[WebhookServer]:
    server = WebhookServer()
    http_server = ThreadingHTTPServer(("127.0.0.1", 0), make_webhook_handler(server))
    server.base_url = f"http://127.0.0.1:{http_server.server_address[1]}"
    server.routes["/answer"] = alert_ncco(server)
    threading.Thread(target=http_server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    http_server.shutdown()
    http_server.server_close()


def make_simulator(transcript: list[str] | None = None, ring_seconds: float = 0.1) -> CarrierSimulator:
    return CarrierSimulator(
        ACCOUNT_SID,
        "twilio-auth-token",
        ring_seconds=ring_seconds,
        step_seconds=0.01,
        api_timeout_seconds=1.5,
        transcript=None if transcript is None else transcript.append,
        vonage_application_id=APPLICATION_ID,
        vonage_public_key_pem=PUBLIC_KEY,
        vonage_signature_secret=SIGNATURE_SECRET,
    )


@pytest.fixture
def transcript() -> list[str]:
    return []


@pytest.fixture
def sim(transcript: list[str]) -> Iterator[CarrierSimulator]:
    simulator = make_simulator(transcript)
    simulator.start(host="127.0.0.1", port=0)
    yield simulator
    simulator.stop()


@pytest.fixture
def voice(sim: CarrierSimulator) -> Voice:
    return voice_client(sim.base_url)


def call_request(webhooks: WebhookServer, to: str, **overrides: Any) -> CreateCallRequest:
    """Our provider's call: an inline NCCO with a Korean talk and a one-digit input (None drops a field)."""
    arguments: dict[str, Any] = {
        "to": [{"type": "phone", "number": to}],
        "from_": {"type": "phone", "number": FROM_NUMBER},
        "ncco": [
            Talk(text=ALERT_TEXT, language="ko-KR", style=1),
            Input(type=["dtmf"], dtmf={"maxDigits": 1, "timeOut": 3}, eventUrl=[webhooks.to("/input")]),
        ],
        "event_url": [webhooks.to("/event/attempt-token-1")],
        "ringing_timer": 20,
        "machine_detection": "continue",
    } | overrides
    return CreateCallRequest(**{name: value for name, value in arguments.items() if value is not None})


def play(voice: Voice, sim: CarrierSimulator, webhooks: WebhookServer, to: str, **overrides: Any) -> SimulatedCall:
    voice.create_call(call_request(webhooks, to, **overrides))
    sim.wait_until_idle(timeout=10)
    return sim.calls[-1]


def assert_in_order(events: list[str], expected: list[str]) -> None:
    """`expected` appears in `events` in this order (other events may come between)."""
    remaining = iter(events)
    missing = [event for event in expected if not any(seen == event for seen in remaining)]
    assert not missing, f"{missing} not found in order in {events}"


def wait_for(condition: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


# --- the tests --------------------------------------------------------------------------------


def test_press_1_plays_the_whole_call_like_vonage(sim, voice, webhooks, transcript):
    created = voice.create_call(call_request(webhooks, "821000000001"))
    sim.wait_until_idle(timeout=10)

    call = sim.calls[0]
    assert created.uuid == call.sid == str(uuid.UUID(call.sid)) and created.conversation_uuid.startswith("CON-")
    assert created.status == "started" and created.direction == "outbound"
    assert call.carrier == "vonage" and call.api_status == 201 and call.finished and call.digits == "1"
    assert call.params["event_url"] == webhooks.to("/event/attempt-token-1") and call.params["ringing_timer"] == "20"
    expected = ["status started", "status ringing", "status answered", "amd human", "ncco inline", f"say: {ALERT_TEXT}"]
    expected += ["input", "digits 1", "ncco from webhook", f"say: {ACK_TEXT}", "end of ncco", "status completed"]
    assert_in_order(call.events, expected)
    assert {"text": ALERT_TEXT, "language": "ko-KR", "style": "1"} in call.says
    assert all(request.signature_valid for request in webhooks.requests)
    assert [request.path.split("/")[1] for request in webhooks.requests] == ["event"] * 4 + ["input", "event"]
    assert webhooks.statuses() == ["started", "ringing", "answered", "human", "completed"]
    events = [request.payload for request in webhooks.received("/event")]
    for payload in [*events, webhooks.received("/input")[0].payload]:
        assert payload["uuid"] == call.sid and payload["conversation_uuid"] == created.conversation_uuid
        assert payload["from"] == FROM_NUMBER and payload["to"] == "821000000001" and payload["timestamp"][-1] == "Z"
        assert datetime.fromisoformat(payload["timestamp"]).utcoffset() == timedelta(0)
    assert {event["direction"] for event in events} == {"outbound"}
    final = events[-1]
    assert final["duration"].isdigit() and final["start_time"] == events[2]["start_time"] <= final["end_time"]
    assert float(final["rate"]) > 0 and float(final["price"]) >= 0
    assert webhooks.received("/input")[0].payload["dtmf"] == {"digits": "1", "timed_out": False}
    assert any("says (ko-KR): 긴급 알림입니다" in line for line in transcript)
    assert any(line.endswith("presses 1") for line in transcript)
    assert all(line.startswith("[sim vonage] ") for line in transcript)


@pytest.mark.parametrize(
    ("number", "overrides", "statuses"),
    [
        ("821000000003", {"event_method": "GET"}, ["started", "ringing", "timeout"]),  # signed over the empty body
        ("821000000004", {}, ["started", "busy"]),
        ("821000000005", {"machine_detection": "hangup"}, ["started", "ringing", "answered", "machine", "completed"]),
        ("821000000001", {"machine_detection": None}, ["started", "ringing", "answered", "completed"]),
    ],
    ids=["no-answer", "busy", "machine-hangup", "no-machine-detection"],
)
def test_the_events_of_each_ending(sim, voice, webhooks, number, overrides, statuses):
    call = play(voice, sim, webhooks, number, **overrides)

    assert webhooks.statuses() == statuses and call.events[-1] == f"status {statuses[-1]}"
    assert {request.method for request in webhooks.received("/event")} == {overrides.get("event_method", "POST")}
    assert all(request.signature_valid for request in webhooks.requests)
    assert bool(webhooks.received("/input")) == (number == "821000000001")


@pytest.mark.parametrize(("number", "answered_by"), [("821000000005", "machine"), ("821000000006", "human")])
def test_voicemail_and_silent_callees_let_the_input_time_out(sim, voice, webhooks, number, answered_by):
    call = play(voice, sim, webhooks, number)

    assert_in_order(call.events, [f"amd {answered_by}", f"say: {ALERT_TEXT}", "no digits", f"say: {NO_ANSWER_TEXT}"])
    assert webhooks.statuses() == ["started", "ringing", "answered", answered_by, "completed"]
    sub_state = webhooks.received("/event")[3].payload.get("sub_state")
    assert sub_state == ("beep_start" if answered_by == "machine" else None)
    assert call.digits == "" and webhooks.received("/input")[0].payload["dtmf"] == {"digits": "", "timed_out": True}


def test_press_9_then_1_and_hang_up_scenarios(sim, voice, webhooks):
    sim.set_scenario("821000000000", Scenario.PRESS_9)
    pressing = play(voice, sim, webhooks, "821000000000")
    hanging_up = play(voice, sim, webhooks, "821000000009")

    assert pressing.digits == "91"
    assert [request.payload["dtmf"]["digits"] for request in webhooks.received("/input")] == ["9", "1"]
    assert_in_order(pressing.events, ["digits 9", "say: Unknown key.", "digits 1", f"say: {ACK_TEXT}"])
    assert_in_order(hanging_up.events, ["status answered", "ncco inline", "callee hung up", "status completed"])
    assert not any(event.startswith("say:") for event in hanging_up.events)


def test_answer_url_is_fetched_with_a_signed_get(sim, voice, webhooks):
    call = play(voice, sim, webhooks, "821000000001", ncco=None, answer_url=[webhooks.to("/answer")])

    fetch = webhooks.received("/answer")[0]
    assert fetch.method == "GET" and fetch.signature_valid
    conversation_uuid = webhooks.received("/event")[0].payload["conversation_uuid"]
    assert fetch.payload == {"to": "821000000001", "from": FROM_NUMBER, "uuid": call.sid} | {
        "conversation_uuid": conversation_uuid
    }
    assert_in_order(call.events, ["ncco fetched", f"say: {ALERT_TEXT}", "digits 1", "status completed"])


@pytest.mark.parametrize(
    ("path", "ncco", "error"),
    [
        ("/answer", [{"action": "talk", "text": "Hi"}, {"action": "dance"}], "'dance' is not an action the carrier"),
        ("/missing", None, "/missing answered HTTP 404"),
        ("/loop", None, "ncco limit: 20 NCCOs"),
    ],
)
def test_nccos_the_simulator_cannot_play_end_the_call(sim, voice, webhooks, path, ncco, error):
    webhooks.routes["/answer"] = ncco or []
    webhooks.routes["/loop"] = [{"action": "notify", "payload": {"n": 1}, "eventUrl": [webhooks.to("/loop")]}]
    call = play(voice, sim, webhooks, "821000000001", ncco=None, answer_url=[webhooks.to(path)])

    assert len([event for event in call.events if error in event]) == 1, call.events
    assert call.events[-1] == "status completed" and webhooks.statuses()[-1] == "completed"
    if path == "/loop":  # the answer_url fetch, then one notify per NCCO
        assert len(webhooks.received("/loop")) == 21 and webhooks.received("/loop")[1].payload == {"n": 1}


@pytest.mark.parametrize(
    ("private_key", "application_id"),
    [(generate_key_pair()[0], APPLICATION_ID), (PRIVATE_KEY, "00000000-0000-4000-8000-000000000000")],
    ids=["another-key", "another-application"],
)
def test_a_wrong_application_jwt_is_refused_with_401(sim, webhooks, private_key, application_id):
    impostor = voice_client(sim.base_url, private_key=private_key, application_id=application_id)
    with pytest.raises(AuthenticationError) as refused:
        impostor.create_call(call_request(webhooks, "821000000001"))

    body = refused.value.response.json()
    assert refused.value.response.status_code == 401 and body["title"] == "Unauthorized" and body["detail"]
    assert body["type"] == "https://developer.nexmo.com/api-errors#unauthorized" and uuid.UUID(body["instance"])
    assert sim.calls == []
    now = int(time.time())
    expired = {"application_id": APPLICATION_ID, "iat": now - 99, "exp": now - 90, "jti": "x"}
    incomplete = {"application_id": APPLICATION_ID}  # no iat, exp or jti
    for token in [jwt.encode(claims, PRIVATE_KEY, "RS256") for claims in (expired, incomplete)] + ["not-a-jwt"]:
        headers = {"Authorization": f"Bearer {token}"}
        assert requests.post(f"{sim.base_url}/v1/calls", json={}, headers=headers, timeout=5).status_code == 401


def test_a_number_with_a_plus_is_refused_with_400_naming_the_field(sim, voice, webhooks):
    with pytest.raises(HttpRequestError) as refused:
        voice.create_call(call_request(webhooks, "+821000000001"))

    assert refused.value.response.status_code == 400
    assert refused.value.response.json()["invalid_parameters"][0]["name"] == "to"
    assert sim.calls[0].api_status == 400 and sim.calls[0].sid is None and sim.calls[0].to == "+821000000001"


def test_api_error_answers_500_and_places_no_call(sim, voice, webhooks):
    with pytest.raises(ServerError) as refused:
        voice.create_call(call_request(webhooks, "821000000007"))

    assert refused.value.response.status_code == 500
    assert refused.value.response.json()["type"].endswith("#internal-error")
    call = sim.wait_for_calls(1)[0]
    assert call.api_status == 500 and call.sid is None and call.finished
    sim.wait_until_idle(timeout=1)
    assert webhooks.requests == []


def test_api_timeout_holds_the_request_longer_than_the_client_waits(sim, webhooks):
    impatient = voice_client(sim.base_url, timeout=1)  # HttpClientOptions takes whole seconds only
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        impatient.create_call(call_request(webhooks, "821000000008"))

    assert time.monotonic() - started < 1.4  # one attempt: neither urllib3 nor the SDK resends a timed-out POST
    call = sim.wait_for_calls(1)[0]
    assert call.sid is None and call.api_status == 503 and call.events[0] == "api held 1.5s"
    wait_for(lambda: call.finished)
    assert call.events[-1].startswith("api 503") and len(sim.calls) == 1 and webhooks.requests == []

    sim.api_timeout_seconds = 0.1  # a client that waits long enough sees the 503 as the SDK's generic error
    with pytest.raises(HttpRequestError) as refused:
        voice_client(sim.base_url).create_call(call_request(webhooks, "821000000008"))
    assert type(refused.value) is HttpRequestError and refused.value.response.status_code == 503


def test_hanging_up_through_the_api_ends_an_answered_call(sim, voice, webhooks):
    created = voice.create_call(call_request(webhooks, "821000000006", ncco=[Talk(text="Hold on", loop=0)]))
    call = sim.wait_for_calls(1)[0]
    wait_for(lambda: "say: Hold on" in call.events)

    assert voice.hangup(created.uuid) is None  # 204, no body
    sim.wait_until_idle(timeout=2)

    assert_in_order(call.events, ["say: Hold on", "hung up through the API", "status completed"])
    assert webhooks.statuses()[-1] == "completed"
    info = voice.get_call(created.uuid)
    assert info.status == "completed" and info.uuid == created.uuid and info.to.number == "821000000006"
    limited = play(voice, sim, webhooks, "821000000006", ncco=[Talk(text="Hold on", loop=0)], length_timer=5)
    assert_in_order(limited.events, ["say: Hold on", "length_timer expired", "status completed"])


def test_hanging_up_a_ringing_call_reports_cancelled(webhooks):
    patient = make_simulator(ring_seconds=5)
    try:
        voice = voice_client(patient.start())
        created = voice.create_call(call_request(webhooks, "821000000001"))
        call = patient.wait_for_calls(1)[0]
        wait_for(lambda: "status ringing" in call.events)
        voice.hangup(created.uuid)
        patient.wait_until_idle(timeout=2)
    finally:
        patient.stop()

    assert call.events[-1] == "status cancelled" and webhooks.statuses() == ["started", "ringing", "cancelled"]


def test_unknown_and_forgotten_calls_are_404(sim, voice, webhooks):
    created = voice.create_call(call_request(webhooks, "821000000004"))
    sim.wait_until_idle(timeout=5)
    sim.reset()

    assert sim.calls == []
    for call_uuid in (created.uuid, str(uuid.uuid4())):
        with pytest.raises(NotFoundError) as refused:
            voice.hangup(call_uuid)
        assert refused.value.response.json()["title"] == "Not Found"


def test_simulator_calls_endpoint_lists_vonage_calls(sim, voice, webhooks):
    call = play(voice, sim, webhooks, "821000000002")

    listed = requests.get(f"{sim.base_url}/_simulator/calls", timeout=5).json()

    assert listed == [call.as_json()] and listed[0]["sid"] == call.sid and listed[0]["digits"] == "2"
    assert listed[0]["url"] == webhooks.to("/event/attempt-token-1")  # its last segment names our attempt
    with pytest.raises(ValueError, match="together"):
        CarrierSimulator(ACCOUNT_SID, "token", vonage_application_id=APPLICATION_ID)


def test_python_m_simulator_serves_vonage_when_its_settings_are_present():
    environment = os.environ | {
        "DEBUG": "true",
        "TWILIO_ACCOUNT_SID": "",
        "PYTHONUNBUFFERED": "1",
        "VONAGE_APPLICATION_ID": APPLICATION_ID,
        "VONAGE_PRIVATE_KEY": PRIVATE_KEY.replace("\n", "\\n"),  # as a one-line .env value
        "VONAGE_SIGNATURE_SECRET": SIGNATURE_SECRET,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", "0"],
        cwd=Path(__file__).resolve().parents[2],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = [process.stdout.readline()]
        assert "(Twilio API, Vonage Voice API) listening on http://127.0.0.1:" in banner[0], process.stderr.read()
        while "Stop with Ctrl+C" not in banner[-1] and banner[-1]:
            banner.append(process.stdout.readline())
        base_url = banner[0].rsplit(" ", 1)[-1].strip()
        request = CreateCallRequest(
            to=[{"number": "821000000007"}], from_={"number": FROM_NUMBER}, ncco=[Talk(text="x")]
        )
        with pytest.raises(ServerError):  # the api_error number: the JWT was accepted, no call is played
            voice_client(base_url).create_call(request)
        with pytest.raises(AuthenticationError):
            voice_client(base_url, private_key=generate_key_pair()[0]).hangup(str(uuid.uuid4()))
        process.send_signal(signal.SIGTERM)
        rest_of_stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "Traceback" not in stderr, stderr
    assert f"VONAGE_API_BASE_URL={base_url}" in "".join(banner)
    assert "[sim vonage] POST /v1/calls to 821000000007: answered 500" in rest_of_stdout
