"""The simulator's HTTP server, its registry of calls, and the waits tests synchronise on."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from simulator.records import ApiReply, SimulatedCall
from simulator.scenarios import Scenario, scenario_by_last_digit
from simulator.twilio import TwilioApi
from simulator.vonage import VONAGE_FILES_PREFIX, VONAGE_PATH_PREFIX, VonageApi

TranscriptWriter = Callable[[str], Any]


class _SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    # A carrier's API takes a burst of dials: an alert storm opens a hundred incidents at once, and
    # the calls worker dials them from 16 threads. With http.server's listen queue of 5 a connection
    # attempt was dropped now and then, and the kernel's retry a second later added that second to
    # the call (bench/alert_storm.py: one first call in a hundred at 2 s instead of 1).
    request_queue_size = 1024


class CarrierSimulator:
    """A fake carrier on a real socket: the real SDKs call it, it calls our webhooks back.

    Times are compressed for tests: a ring lasts `ring_seconds`, every other step of a call (a <Say>,
    one second of <Pause>, one second of a <Gather> timeout) lasts `step_seconds`.

    The Vonage Voice API (/v1/calls) is served when all three Vonage arguments are given: the
    application id and the PEM public key of its key pair check the application JWTs our SDK sends,
    the signature secret signs the webhooks as Vonage signs them.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        ring_seconds: float = 3.0,
        step_seconds: float = 0.5,
        api_timeout_seconds: float = 15.0,
        transcript: TranscriptWriter | None = None,
        *,
        vonage_application_id: str | None = None,
        vonage_public_key_pem: str | None = None,
        vonage_signature_secret: str | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.ring_seconds = ring_seconds
        self.step_seconds = step_seconds
        self.api_timeout_seconds = api_timeout_seconds
        self.transcript = transcript
        self.default_scenario: Scenario = Scenario.PRESS_1
        self.stopping = threading.Event()
        self._changed = threading.Condition(threading.RLock())
        self._calls: list[SimulatedCall] = []
        self._explicit_scenarios: dict[str, Scenario] = {}
        self._outages: dict[str, Scenario] = {}
        self._active_playbacks = 0
        self._server: _SimulatorServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._twilio = TwilioApi(self)
        self._vonage = VonageApi(self, vonage_application_id, vonage_public_key_pem, vonage_signature_secret)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen (port 0 picks a free one) and serve in daemon threads; returns the base URL."""
        if self._server is not None:
            raise RuntimeError("the carrier simulator is already running")
        self.stopping.clear()
        handler = type("BoundSimulatorHandler", (_SimulatorHandler,), {"simulator": self})
        self._server = _SimulatorServer((host, port), handler)
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="carrier-simulator", daemon=True
        )
        self._serve_thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the carrier simulator is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop listening, release held requests and end running calls without further callbacks."""
        self.stopping.set()
        self._twilio.hang_up_everything()
        self._vonage.hang_up_everything()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5)
            self._serve_thread = None

    # --- scenarios ---------------------------------------------------------------------------

    def set_scenario(self, number: str, scenario: Scenario) -> None:
        with self._changed:
            self._explicit_scenarios[number] = Scenario(scenario)

    def set_outage(self, carrier: str, scenario: Scenario | None) -> None:
        """Makes one carrier's API fail for every number (API_ERROR or API_TIMEOUT); None ends it.

        The other carrier keeps playing each number's own scenario: that is a failover drill.
        """
        if scenario not in (None, Scenario.API_ERROR, Scenario.API_TIMEOUT):
            raise ValueError("an outage is Scenario.API_ERROR or Scenario.API_TIMEOUT")
        with self._changed:
            if scenario is None:
                self._outages.pop(carrier, None)
            else:
                self._outages[carrier] = Scenario(scenario)

    def scenario_for(self, number: str, carrier: str | None = None) -> Scenario:
        """The carrier's outage if it has one; else the explicit scenario of `number`, else the one its
        last digit names (0: `default_scenario`)."""
        with self._changed:
            outage = self._outages.get(carrier) if carrier else None
            explicit = self._explicit_scenarios.get(number)
        if outage is not None:
            return outage
        return explicit if explicit is not None else scenario_by_last_digit(number, self.default_scenario)

    # --- observation -------------------------------------------------------------------------

    @property
    def calls(self) -> list[SimulatedCall]:
        """A snapshot of the calls, in the order their Calls.create requests arrived."""
        with self._changed:
            return list(self._calls)

    def wait_for_calls(self, n: int, timeout: float = 10) -> list[SimulatedCall]:
        """Block until at least `n` Calls.create requests were accepted or refused."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._calls) >= n, timeout=timeout):
                raise TimeoutError(f"expected {n} calls within {timeout}s, got {len(self._calls)}")
            return list(self._calls)

    def wait_until_idle(self, timeout: float = 10) -> None:
        """Block until every placed call has ended and sent its last callback."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._active_playbacks == 0, timeout=timeout):
                raise TimeoutError(f"{self._active_playbacks} calls still in progress after {timeout}s")

    def reset(self) -> None:
        """Forget calls, explicit scenarios and outages; calls still playing finish on their own."""
        with self._changed:
            self._calls.clear()
            self._explicit_scenarios.clear()
            self._outages.clear()
            self._twilio.forget_calls()
            self._vonage.forget_calls()
            self._changed.notify_all()

    # --- used by the protocol modules --------------------------------------------------------

    def record_call(self, call: SimulatedCall, will_play: bool) -> None:
        """Register a Calls.create request; `will_play` counts it as busy before the API replies."""
        with self._changed:
            self._calls.append(call)
            if will_play:
                self._active_playbacks += 1
            self._changed.notify_all()

    def refuse_call(
        self, record: SimulatedCall, refusal: ApiReply, *, request: str, reason: str, carrier: str | None = None
    ) -> ApiReply:
        """Record a refused create-call request; API_TIMEOUT first holds it, like an API that stopped
        answering. `request` names it in the transcript ("Calls.create", "POST /v1/calls")."""
        record.api_status = refusal.status
        self.record_call(record, will_play=False)
        if record.scenario is Scenario.API_TIMEOUT and refusal.status == 503:
            seconds = self.api_timeout_seconds
            record.events.append(f"api held {seconds:g}s")
            self.write_transcript(f"{request} to {record.to}: holding the request for {seconds:g}s", carrier=carrier)
            self.stopping.wait(seconds)
        record.events.append(f"api {refusal.status}: {reason}")
        record.finished = True
        self.write_transcript(f"{request} to {record.to or '?'}: answered {refusal.status}", carrier=carrier)
        return refusal

    def start_playback(self, play: Callable[[], None], name: str) -> None:
        """Run one call in a daemon thread; the count taken by `record_call` is released when it ends."""

        def run() -> None:
            try:
                play()
            finally:
                with self._changed:
                    self._active_playbacks -= 1
                    self._changed.notify_all()

        threading.Thread(target=run, name=name, daemon=True).start()

    def write_transcript(self, line: str, carrier: str | None = None) -> None:
        """Twilio's lines keep the bare `[sim]` prefix; other carriers name themselves (`[sim vonage]`)."""
        if callable(self.transcript):
            prefix = f"[sim {carrier}]" if carrier else "[sim]"
            self.transcript(f"{prefix} {line}")


class _SimulatorHandler(BaseHTTPRequestHandler):
    """Routes requests: the simulator's own endpoint, Vonage's /v1/calls, the Twilio REST API (and its 404)."""

    simulator: CarrierSimulator
    server_version = "CarrierSimulator/1.0"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        received_at = time.time()
        path, query = urlsplit(self.path).path, urlsplit(self.path).query
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if method == "GET" and path == "/_simulator/calls":
            reply = ApiReply(200, [call.as_json() for call in self.simulator.calls])
        elif path == VONAGE_PATH_PREFIX or path.startswith((f"{VONAGE_PATH_PREFIX}/", VONAGE_FILES_PREFIX)):
            vonage = self.simulator._vonage
            reply = vonage.handle(method, path, self.headers.get("Authorization", ""), body, received_at, query)
        else:
            twilio = self.simulator._twilio
            reply = twilio.handle(method, path, self.headers.get("Authorization", ""), body, received_at, query)
        try:
            if isinstance(reply.payload, bytes):
                self._write_bytes(reply.status, reply.payload, reply.content_type)
            else:
                self._write_json(reply.status, reply.payload)
        except OSError:
            pass  # the client gave up (an SDK timeout): the carrier carries on regardless
        finally:
            if reply.after_reply is not None:
                reply.after_reply()

    def _write_json(self, status: int, payload: Any) -> None:
        """A None payload is an empty body (Vonage's 204 to a call update)."""
        body = b"" if payload is None else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _write_bytes(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the transcript already tells what happened, stderr noise would hide it."""
