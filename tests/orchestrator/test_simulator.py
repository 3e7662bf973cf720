"""The carrier simulator at the network boundary: the real twilio SDK calls it, it calls a real webhook server.

The webhook server below validates X-Twilio-Signature with the SDK's RequestValidator exactly as our
views do, and answers 403 when a signature is wrong, so every assertion on its requests also proves
the simulator signs like Twilio.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from simulator import CarrierSimulator, Scenario, SimulatedCall

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "secret"
FROM_NUMBER = "+15550001111"
PROJECT_ROOT = Path(__file__).resolve().parents[2]

ALERT_TEXT = "긴급 알림입니다. 확인하려면 1번을 누르세요."
ALERT_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    f'<Gather numDigits="1" action="/gather" timeout="3"><Say language="ko-KR" voice="Polly.Seoyeon">{ALERT_TEXT}</Say>'
    "</Gather><Say>No answer received. Goodbye.</Say><Hangup/></Response>"
)
ACKNOWLEDGED_TWIML = "<Response><Say>Acknowledged. Goodbye.</Say></Response>"
UNKNOWN_KEY_TWIML = '<Response><Say>Unknown key.</Say><Redirect method="POST">/twiml</Redirect></Response>'


@dataclass
class WebhookRequest:
    method: str
    path: str
    params: dict[str, str]
    signature_valid: bool


@dataclass
class WebhookServer:
    """Our side of the call: serves TwiML per path and records every request the carrier made."""

    base_url: str = ""
    routes: dict[str, str] = field(default_factory=dict)
    requests: list[WebhookRequest] = field(default_factory=list)

    def to(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def received(self, path: str) -> list[WebhookRequest]:
        return [request for request in self.requests if request.path == path]


def make_webhook_handler(server: WebhookServer) -> type[BaseHTTPRequestHandler]:
    validator = RequestValidator(AUTH_TOKEN)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8")
            url = server.to(self.path)
            parts = urlsplit(self.path)
            form = parse_qs(body if method == "POST" else parts.query, keep_blank_values=True)
            params = {name: values[-1] for name, values in form.items()}
            signed_params = params if method == "POST" else {}
            valid = validator.validate(url, signed_params, self.headers.get("X-Twilio-Signature", ""))
            server.requests.append(WebhookRequest(method, parts.path, params, valid))
            if not valid:
                self._reply(403, "")
            elif parts.path == "/gather" and params.get("Digits") not in ("1", "2"):
                self._reply(200, UNKNOWN_KEY_TWIML)
            elif parts.path in server.routes:
                self._reply(200, server.routes[parts.path])
            elif parts.path in ("/status", "/amd"):
                self._reply(204, "")
            else:
                self._reply(404, "not found")

        def _reply(self, status: int, body: str) -> None:
            encoded = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def webhooks() -> Iterator[WebhookServer]:
    server = WebhookServer(routes={"/twiml": ALERT_TWIML, "/gather": ACKNOWLEDGED_TWIML})
    http_server = ThreadingHTTPServer(("127.0.0.1", 0), make_webhook_handler(server))
    server.base_url = f"http://127.0.0.1:{http_server.server_address[1]}"
    thread = threading.Thread(target=http_server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    http_server.shutdown()
    http_server.server_close()


@pytest.fixture
def transcript() -> list[str]:
    return []


@pytest.fixture
def sim(transcript: list[str]) -> Iterator[CarrierSimulator]:
    simulator = CarrierSimulator(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        ring_seconds=0.1,
        step_seconds=0.01,
        api_timeout_seconds=1.0,
        transcript=transcript.append,
    )
    simulator.start(host="127.0.0.1", port=0)
    yield simulator
    simulator.stop()


def sdk_client(base_url: str, auth_token: str = AUTH_TOKEN, http_timeout: float | None = None) -> Client:
    """The production way to aim the SDK elsewhere: replace the api domain's base URL."""
    client = Client(ACCOUNT_SID, auth_token, http_client=TwilioHttpClient(timeout=http_timeout))
    client.api.base_url = base_url
    return client


@pytest.fixture
def client(sim: CarrierSimulator) -> Client:
    return sdk_client(sim.base_url)


def place_call(client: Client, webhooks: WebhookServer, to: str, **overrides: object):
    arguments: dict[str, object] = {
        "to": to,
        "from_": FROM_NUMBER,
        "url": webhooks.to("/twiml"),
        "status_callback": webhooks.to("/status"),
        "status_callback_event": ["initiated", "ringing", "answered", "completed"],
        "timeout": 20,
        "machine_detection": "Enable",
        "async_amd": "true",
        "async_amd_status_callback": webhooks.to("/amd"),
    }
    arguments.update(overrides)
    return client.calls.create(**arguments)


def play(client: Client, sim: CarrierSimulator, webhooks: WebhookServer, to: str, **overrides: object) -> SimulatedCall:
    place_call(client, webhooks, to, **overrides)
    sim.wait_until_idle(timeout=10)
    return sim.calls[-1]


def assert_in_order(events: list[str], expected: list[str]) -> None:
    """`expected` appears in `events` in this order (other events may come between)."""
    remaining = iter(events)
    missing = [event for event in expected if not any(seen == event for seen in remaining)]
    assert not missing, f"{missing} not found in order in {events}"


def status_callbacks(webhooks: WebhookServer) -> list[str]:
    return [request.params["CallStatus"] for request in webhooks.received("/status")]


def assert_all_signatures_valid(webhooks: WebhookServer) -> None:
    assert webhooks.requests, "the carrier made no request"
    assert all(request.signature_valid for request in webhooks.requests), webhooks.requests


def test_press_1_plays_the_whole_call_like_twilio(sim, client, webhooks, transcript):
    created = place_call(client, webhooks, "+821000000001")
    sim.wait_until_idle(timeout=10)

    call = sim.calls[0]
    assert created.sid == call.sid and call.sid.startswith("CA") and len(call.sid) == 34
    assert created.status == "queued" and created.direction == "outbound-api"
    assert created.date_created is not None
    assert call.api_status == 201 and call.finished and call.digits == "1"
    assert call.params["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert_in_order(
        call.events,
        [
            "status initiated",
            "status ringing",
            "status in-progress",
            "amd human",
            "twiml fetched",
            f"say: {ALERT_TEXT}",
            "digits 1",
            "twiml fetched",
            "say: Acknowledged. Goodbye.",
            "status completed",
        ],
    )
    assert {"text": ALERT_TEXT, "language": "ko-KR", "voice": "Polly.Seoyeon"} in call.says
    assert_all_signatures_valid(webhooks)
    assert [request.path for request in webhooks.requests] == [
        "/status",
        "/status",
        "/status",
        "/amd",
        "/twiml",
        "/gather",
        "/status",
    ]
    callbacks = webhooks.received("/status")
    assert status_callbacks(webhooks) == ["initiated", "ringing", "in-progress", "completed"]
    assert [request.params["SequenceNumber"] for request in callbacks] == ["0", "1", "2", "3"]
    final = callbacks[-1].params
    assert final["CallbackSource"] == "call-progress-events" and int(final["CallDuration"]) >= 0
    assert final["Direction"] == "outbound-api" and final["ApiVersion"] == "2010-04-01"
    assert final["AccountSid"] == ACCOUNT_SID and final["CallSid"] == call.sid and final["To"] == "+821000000001"
    amd = webhooks.received("/amd")[0].params
    assert amd["AnsweredBy"] == "human" and amd["MachineDetectionDuration"].isdigit()
    assert "AnsweredBy" not in webhooks.received("/twiml")[0].params  # async AMD: not on the fetch
    assert webhooks.received("/gather")[0].params["Digits"] == "1"
    assert all(status in (200, 204) for _, status in call.callback_responses)
    assert any("says (ko-KR): 긴급 알림입니다" in line for line in transcript)
    assert any(line.endswith("presses 1") for line in transcript)
    assert all(line.startswith("[sim] ") for line in transcript)


def test_no_answer_rings_then_reports_no_answer_with_get_callbacks(sim, client, webhooks):
    call = play(client, sim, webhooks, "+821000000003", status_callback_method="GET")

    assert call.events == ["status initiated", "status ringing", "status no-answer"]
    assert status_callbacks(webhooks) == ["initiated", "ringing", "no-answer"]
    assert {request.method for request in webhooks.requests} == {"GET"}
    assert webhooks.received("/status")[-1].params["CallDuration"] == "0"
    assert_all_signatures_valid(webhooks)


def test_busy_is_final_right_after_initiated(sim, client, webhooks):
    call = play(client, sim, webhooks, "+821000000004")

    assert call.events == ["status initiated", "status busy"]
    assert status_callbacks(webhooks) == ["initiated", "busy"]


def test_only_the_subscribed_events_and_the_final_one_are_sent(sim, client, webhooks):
    call = play(client, sim, webhooks, "+821000000001", status_callback_event=["answered"])

    assert call.digits == "1"
    assert status_callbacks(webhooks) == ["in-progress", "completed"]


@pytest.mark.parametrize(
    ("machine_detection", "answered_by"),
    [("Enable", "machine_start"), ("DetectMessageEnd", "machine_end_beep")],
)
def test_voicemail_is_detected_as_a_machine_and_presses_nothing(sim, client, webhooks, machine_detection, answered_by):
    call = play(client, sim, webhooks, "+821000000005", machine_detection=machine_detection)

    assert_in_order(call.events, ["status in-progress", f"amd {answered_by}", "twiml fetched", "status completed"])
    assert webhooks.received("/amd")[0].params["AnsweredBy"] == answered_by
    assert call.digits == "" and not webhooks.received("/gather")


def test_synchronous_amd_sends_answered_by_with_the_twiml_fetch(sim, client, webhooks):
    call = play(client, sim, webhooks, "+821000000001", async_amd=None, async_amd_status_callback=None)

    assert "amd human" in call.events and not webhooks.received("/amd")
    assert webhooks.received("/twiml")[0].params["AnsweredBy"] == "human"


def test_silent_callee_falls_through_to_the_verbs_after_gather(sim, client, webhooks):
    call = play(client, sim, webhooks, "+821000000006")

    assert_in_order(
        call.events,
        ["twiml fetched", f"say: {ALERT_TEXT}", "no digits", "say: No answer received. Goodbye.", "hangup"],
    )
    assert call.digits == "" and not webhooks.received("/gather")
    assert status_callbacks(webhooks)[-1] == "completed"


def test_press_9_presses_a_meaningless_digit_then_1_on_the_repeat(sim, client, webhooks):
    sim.set_scenario("+821000000000", Scenario.PRESS_9)
    call = play(client, sim, webhooks, "+821000000000")

    assert call.digits == "91"
    assert [request.params["Digits"] for request in webhooks.received("/gather")] == ["9", "1"]
    assert_in_order(call.events, ["digits 9", "say: Unknown key.", "redirect /twiml", "digits 1", "status completed"])


def test_hang_up_ends_the_call_right_after_fetching_the_twiml(sim, client, webhooks):
    call = play(client, sim, webhooks, "+821000000009")

    assert_in_order(call.events, ["status in-progress", "twiml fetched", "callee hung up", "status completed"])
    assert not any(event.startswith("say:") for event in call.events)


def test_a_twiml_fetch_error_is_an_application_error(sim, client, webhooks):
    call = play(client, sim, webhooks, "+821000000001", url=webhooks.to("/missing"))

    errors = [event for event in call.events if event.startswith("application error:")]
    assert len(errors) == 1 and "HTTP 404" in errors[0]
    assert "say: We are sorry, an application error has occurred. Goodbye." in call.events
    assert status_callbacks(webhooks)[-1] == "completed"


def test_a_redirect_loop_is_cut_after_20_documents(sim, client, webhooks):
    webhooks.routes["/loop"] = "<Response><Redirect>/loop</Redirect></Response>"
    call = play(client, sim, webhooks, "+821000000006", url=webhooks.to("/loop"))

    assert call.events.count("twiml fetched") == 20
    assert call.events[-1] == "status completed" and call.finished


def test_inline_twiml_is_played_without_a_fetch(sim, client, webhooks):
    call = play(client, sim, webhooks, "+821000000006", url=None, twiml="<Response><Say>Inline</Say></Response>")

    assert "twiml inline" in call.events and "say: Inline" in call.events and not webhooks.received("/twiml")


def test_wrong_credentials_are_refused_with_401(sim, webhooks):
    with pytest.raises(TwilioRestException) as refused:
        place_call(sdk_client(sim.base_url, auth_token="wrong"), webhooks, "+821000000001")

    assert refused.value.status == 401 and refused.value.code == 20003
    assert sim.calls == []


def test_missing_url_is_refused_with_400_naming_the_field(sim, client, webhooks):
    with pytest.raises(TwilioRestException) as refused:
        place_call(client, webhooks, "+821000000001", url=None)

    assert refused.value.status == 400 and "Url" in refused.value.msg
    assert sim.calls[0].api_status == 400 and sim.calls[0].sid is None


def test_api_error_answers_500_and_places_no_call(sim, client, webhooks):
    with pytest.raises(TwilioRestException) as refused:
        place_call(client, webhooks, "+821000000007")

    assert refused.value.status == 500 and refused.value.code == 20500
    call = sim.wait_for_calls(1)[0]
    assert call.api_status == 500 and call.sid is None and call.finished
    sim.wait_until_idle(timeout=1)
    assert webhooks.requests == []


def test_api_timeout_holds_the_request_longer_than_the_client_waits(sim, webhooks):
    impatient = sdk_client(sim.base_url, http_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        place_call(impatient, webhooks, "+821000000008")

    assert time.monotonic() - started < 1.0
    call = sim.wait_for_calls(1)[0]
    assert call.sid is None and call.api_status == 503 and call.events[0] == "api held 1s"
    deadline = time.monotonic() + 5
    while not call.finished and time.monotonic() < deadline:
        time.sleep(0.05)
    assert call.finished and call.events[-1].startswith("api 503")
    assert webhooks.requests == []


def test_hanging_up_through_the_api_ends_an_answered_call(sim, client, webhooks):
    webhooks.routes["/twiml"] = '<Response><Say>Hold on</Say><Pause length="500"/></Response>'
    created = place_call(client, webhooks, "+821000000006")
    call = sim.wait_for_calls(1)[0]
    deadline = time.monotonic() + 5
    while "pause 500s" not in call.events and time.monotonic() < deadline:
        time.sleep(0.01)

    updated = client.calls(created.sid).update(status="completed")
    sim.wait_until_idle(timeout=2)

    assert updated.sid == created.sid
    assert_in_order(call.events, ["pause 500s", "hung up through the API", "status completed"])
    assert status_callbacks(webhooks)[-1] == "completed"


def test_canceling_a_ringing_call_reports_canceled(webhooks):
    patient = CarrierSimulator(ACCOUNT_SID, AUTH_TOKEN, ring_seconds=5, step_seconds=0.01)
    base_url = patient.start()
    try:
        client = sdk_client(base_url)
        created = place_call(client, webhooks, "+821000000001")
        call = patient.wait_for_calls(1)[0]
        deadline = time.monotonic() + 5
        while "status ringing" not in call.events and time.monotonic() < deadline:
            time.sleep(0.01)
        client.calls(created.sid).update(status="canceled")
        patient.wait_until_idle(timeout=2)
    finally:
        patient.stop()

    assert call.events[-1] == "status canceled" and "twiml fetched" not in call.events
    assert status_callbacks(webhooks) == ["initiated", "ringing", "canceled"]


def test_updating_an_unknown_call_is_404(client):
    with pytest.raises(TwilioRestException) as refused:
        client.calls("CA" + "f" * 32).update(status="completed")

    assert refused.value.status == 404


def test_the_last_digit_picks_the_scenario_unless_one_was_set(sim, client, webhooks):
    expected = {
        "1": Scenario.PRESS_1,
        "2": Scenario.PRESS_2,
        "3": Scenario.NO_ANSWER,
        "4": Scenario.BUSY,
        "5": Scenario.VOICEMAIL,
        "6": Scenario.SILENT,
        "7": Scenario.API_ERROR,
        "8": Scenario.API_TIMEOUT,
        "9": Scenario.HANG_UP,
        "0": Scenario.PRESS_1,
    }
    assert {digit: sim.scenario_for(f"+82100000000{digit}") for digit in expected} == expected
    sim.default_scenario = Scenario.NO_ANSWER
    assert sim.scenario_for("+821000000000") is Scenario.NO_ANSWER
    sim.set_scenario("+821000000004", Scenario.PRESS_2)
    assert sim.scenario_for("+821000000004") is Scenario.PRESS_2

    busy = play(client, sim, webhooks, "+821000000014")
    silent_default = play(client, sim, webhooks, "+821000000010")

    assert busy.scenario is Scenario.BUSY and busy.events[-1] == "status busy"
    assert silent_default.scenario is Scenario.NO_ANSWER and silent_default.events[-1] == "status no-answer"


def test_reset_forgets_calls_and_explicit_scenarios(sim, client, webhooks):
    sim.set_scenario("+821000000001", Scenario.BUSY)
    play(client, sim, webhooks, "+821000000001")
    sim.reset()

    assert sim.calls == [] and sim.scenario_for("+821000000001") is Scenario.PRESS_1
    with pytest.raises(TimeoutError):
        sim.wait_for_calls(1, timeout=0.1)


def test_simulator_calls_endpoint_lists_calls_without_auth(sim, client, webhooks):
    call = play(client, sim, webhooks, "+821000000002")

    listed = requests.get(f"{sim.base_url}/_simulator/calls", timeout=5).json()

    assert listed == [
        {
            "sid": call.sid,
            "to": "+821000000002",
            "from": FROM_NUMBER,
            "scenario": "press_2",
            "requested_at": call.requested_at,
            "url": call.params["Url"],
            "api_status": 201,
            "events": call.events,
            "digits": "2",
            "finished": True,
        }
    ]


def test_unknown_paths_answer_twilio_style_404(sim):
    response = requests.get(f"{sim.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", timeout=5)

    assert response.status_code == 404 and response.json()["code"] == 20404


def test_python_m_simulator_refuses_to_start_without_credentials():
    # a real-looking account with no token: DEBUG gives simulator defaults only when no account is set
    environment = {**os.environ, "DEBUG": "true", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": ""}

    finished = subprocess.run(
        [sys.executable, "-m", "simulator", "--port", "0"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2, finished.stderr
    assert "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are empty" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_python_m_simulator_serves_until_sigterm_and_stops_cleanly():
    environment = {**os.environ, "DEBUG": "true", "TWILIO_ACCOUNT_SID": "", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", "0"],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = [process.stdout.readline()]
        assert "listening on http://127.0.0.1:" in banner[0], banner[0] + process.stderr.read()
        while "Stop with Ctrl+C" not in banner[-1] and banner[-1]:
            banner.append(process.stdout.readline())
        base_url = banner[0].rsplit(" ", 1)[-1].strip()
        assert requests.get(f"{base_url}/_simulator/calls", timeout=5).json() == []
        process.send_signal(signal.SIGTERM)
        rest_of_stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "  ...8  api_timeout" in "".join(banner)
    assert rest_of_stdout == "Carrier simulator stopped.\n"
    assert "Traceback" not in stderr


def test_production_code_never_imports_the_simulator():
    """The simulator is a development and test tool outside the apps: the image does not ship it."""
    production_packages = ["accounts", "config", "incidents", "integrations", "orchestrator", "recordings"]
    importers = [
        str(path.relative_to(PROJECT_ROOT))
        for package in production_packages
        for path in (PROJECT_ROOT / package).rglob("*.py")
        if any(
            line.strip().startswith(("import simulator", "from simulator"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]

    assert importers == []
    assert "simulator" in (PROJECT_ROOT / ".dockerignore").read_text().split()


def test_a_call_placed_with_record_true_is_recorded_and_its_audio_is_served_behind_basic_auth(sim, client, webhooks):
    import io
    import wave

    # given a call placed with Record=true and a recording status callback
    webhooks.routes["/twiml"] = ALERT_TWIML
    webhooks.routes["/gather"] = ACKNOWLEDGED_TWIML
    call = play(
        client, sim, webhooks, "+821000000001", record=True, recording_status_callback=webhooks.to("/recording")
    )

    # then, once the call ended, the recording callback came signed, naming the media's URL
    [callback] = webhooks.received("/recording")
    assert callback.signature_valid
    assert callback.params["RecordingStatus"] == "completed"
    assert callback.params["CallSid"] == call.sid
    seconds = int(callback.params["RecordingDuration"])
    media_url = callback.params["RecordingUrl"] + ".wav"

    # and the media is refused without the account's credentials, and is a WAV of that length with them
    assert requests.get(media_url, timeout=5).status_code == 401
    media = requests.get(media_url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert media.status_code == 200 and media.headers["Content-Type"] == "audio/x-wav"
    with wave.open(io.BytesIO(media.content)) as wav:
        assert wav.getnframes() / wav.getframerate() == seconds

    # and a finished recording cannot be stopped again
    with pytest.raises(TwilioRestException) as refused:
        client.calls(call.sid).recordings(callback.params["RecordingSid"]).update(status="stopped")
    assert refused.value.status == 400
