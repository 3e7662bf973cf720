"""Local servers standing in for what leaves the machine: an HTTP receiver and an SMTP server.

Both speak the real protocol on 127.0.0.1 and record what they received, so tests exercise our real
HTTP client and Django's real SMTP backend (the SMTP side is aiosmtpd's). Neither knows anything
about our code.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

HANG = "hang"


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class HTTPReceiver:
    """Records every request; answers 200 "ok" unless told otherwise, in order, with `plan`."""

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self._plan: deque = deque()
        self._lock = threading.Lock()
        self.release = threading.Event()  # lets hanging handlers finish when the test ends
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def plan(self, *answers: int | str | tuple[int, dict[str, str], bytes]) -> None:
        """Next answers: a status code, (status, headers, body), or HANG (no answer for ~1 s)."""
        with self._lock:
            self._plan.extend(answers)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[ReceivedRequest]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.requests)

    def _next_answer(self):
        with self._lock:
            return self._plan.popleft() if self._plan else 200

    def __enter__(self) -> HTTPReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def _make_handler(receiver: HTTPReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.requests.append(ReceivedRequest("POST", self.path, dict(self.headers.items()), body))
            answer = receiver._next_answer()
            if answer == HANG:
                receiver.release.wait(timeout=1.0)
                answer = 200
            status, headers, payload = answer if isinstance(answer, tuple) else (answer, {}, b"ok")
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout test)

        def log_message(self, format: str, *args) -> None:
            pass

    return Handler


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage = field(repr=False)


class SMTPServer:
    """An SMTP server on 127.0.0.1 (aiosmtpd, on a free port), recording every mail it accepts.

    Recipients in `refuse` get `550 5.1.1 mailbox unavailable` at RCPT, as a real server would.
    """

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.mails: list[ReceivedMail] = []
        self.refuse = {address.lower() for address in refuse}
        self._controller = _LoopbackController(_RecordingHandler(self), hostname="127.0.0.1", port=0)
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP line at INFO

    @property
    def port(self) -> int:
        return self._controller.port

    def __enter__(self) -> SMTPServer:
        self._controller.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._controller.stop()


class _LoopbackController(Controller):
    """aiosmtpd's threaded controller, bound to port 0: the port the system picked is read back
    before the controller's first connection to its own server (which needs the real port)."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class _RecordingHandler:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_RCPT(self, smtp, session, envelope, address: str, rcpt_options: list[str]) -> str:
        if address.lower() in self.server.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, smtp, session, envelope) -> str:
        # Stored as a mailbox stores it: with the wire's CRLF line endings turned into LF.
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        self.server.mails.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 2.0.0 queued"
