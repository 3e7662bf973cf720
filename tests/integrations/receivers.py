"""Local servers standing in for what leaves the machine: an HTTP receiver and an SMTP server.

Both speak the real protocol on 127.0.0.1 and record what they received, so tests exercise our real
HTTP client and Django's real SMTP backend. Neither knows anything about our code.
"""

from __future__ import annotations

import email
import email.policy
import json
import socketserver
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
    """A minimal SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).

    Recipients in `refuse` get `550 5.1.1 mailbox unavailable` at RCPT, as a real server would.
    """

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.mails: list[ReceivedMail] = []
        self.refuse = set(refuse)
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _make_smtp_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def __enter__(self) -> SMTPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_smtp_handler(server: SMTPServer) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        timeout = 5

        def reply(self, line: str) -> None:
            self.wfile.write(line.encode("ascii") + b"\r\n")

        def handle(self) -> None:
            self.reply("220 test-smtp ESMTP ready")
            mail_from, rcpt_tos = "", []
            while line := self.rfile.readline():
                command = line.decode("utf-8", "replace").rstrip("\r\n")
                verb = command[:4].upper()
                if verb == "EHLO":
                    self.reply("250-test-smtp")
                    self.reply("250 8BITMIME")
                elif verb == "HELO":
                    self.reply("250 test-smtp")
                elif verb == "MAIL":
                    mail_from, rcpt_tos = _address(command), []
                    self.reply("250 2.1.0 OK")
                elif verb == "RCPT":
                    address = _address(command)
                    if address in server.refuse:
                        self.reply("550 5.1.1 mailbox unavailable")
                    else:
                        rcpt_tos.append(address)
                        self.reply("250 2.1.5 OK")
                elif verb == "DATA":
                    self.reply("354 end data with <CR><LF>.<CR><LF>")
                    server.mails.append(ReceivedMail(mail_from, rcpt_tos, self._read_data()))
                    self.reply("250 2.0.0 queued")
                elif verb in ("RSET", "NOOP"):
                    self.reply("250 OK")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("502 5.5.2 command not implemented")

        def _read_data(self) -> EmailMessage:
            lines = []
            while (line := self.rfile.readline()) not in (b".\r\n", b""):
                lines.append(line[1:] if line.startswith(b"..") else line)  # undo dot-stuffing
            # Stored as a mailbox stores it: with the wire's CRLF line endings turned into LF.
            return email.message_from_bytes(b"".join(lines).replace(b"\r\n", b"\n"), policy=email.policy.default)

    return Handler


def _address(command: str) -> str:
    return command.split(":", 1)[1].split(">", 1)[0].strip().lstrip("<")
