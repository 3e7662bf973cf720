"""Local stand-ins for Twilio's Messaging API and Slack's Web API, speaking their documented protocols.

Each listens on 127.0.0.1, checks what the real API checks (the path, the credentials, the body's
fields) and answers as the real API does, including its error shapes. What they accepted is kept in
`messages`, every request in `requests`, so tests assert what arrived. Neither knows our code.

Twilio (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource):
POST /2010-04-01/Accounts/{AccountSid}/Messages.json, HTTP basic auth (Account SID : Auth Token),
form-encoded To, From | MessagingServiceSid, Body; 201 with the Message resource, or an error
{"code", "message", "more_info", "status"} (21211 invalid To, 20003 bad credentials, 20429 too many).

Slack (https://api.slack.com/methods/chat.postMessage): POST /api/chat.postMessage, Authorization:
Bearer <bot token>, a JSON body {channel, text, blocks?}; HTTP 200 {"ok": true, "channel", "ts",
"message"} or {"ok": false, "error": "..."}; a rate limit is HTTP 429 with Retry-After.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# Twilio's documented magic number that its test credentials answer with 21211 ("invalid 'To'")
INVALID_NUMBER = "+15005550001"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _LocalAPI(ABC):
    """A threaded HTTP server on a loopback port; `fail_next` queues error answers for the next requests."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.messages: list[dict] = []
        self._failures: deque = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, *failures) -> None:
        with self._lock:
            self._failures.extend(failures)

    def _next_failure(self):
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    @abstractmethod
    def answer(self, request: Request) -> tuple[int, dict[str, str], dict]:
        """(status, headers, JSON body) the API would give to this request."""

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = Request("POST", self.path, dict(self.headers.items()), body)
                api.requests.append(request)
                status, headers, answer = api.answer(request)
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args) -> None:
                pass

        return Handler


class TwilioMessagingAPI(_LocalAPI):
    """Twilio's Messages resource for one account. `fail_next(("too_many", 7))` answers the next request
    with 429 and Retry-After: 7; `fail_next("server_error")` with a 500; `fail_next("echo_credentials")`
    with a 400 repeating the request's Authorization header, as a careless gateway in front would."""

    def __init__(self, account_sid: str, auth_token: str, *, numbers: tuple[str, ...] = ("+15017122661",)) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.numbers = numbers  # the account's own numbers: a From must be one of them

    def answer(self, request: Request) -> tuple[int, dict[str, str], dict]:
        match = re.fullmatch(r"/2010-04-01/Accounts/([^/]+)/Messages\.json", request.path)
        if not match:
            return 404, {}, _twilio_error(20404, "The requested resource was not found", 404)
        if not self._authorized(request.headers.get("Authorization", ""), match.group(1)):
            return 401, {"WWW-Authenticate": 'Basic realm="Twilio API"'}, _twilio_error(20003, "Authenticate", 401)
        failure = self._next_failure()
        if isinstance(failure, tuple) and failure[0] == "too_many":
            return 429, {"Retry-After": str(failure[1])}, _twilio_error(20429, "Too Many Requests", 429)
        if failure == "server_error":
            return 500, {}, _twilio_error(20500, "Internal Server Error", 500)
        if failure == "echo_credentials":
            echoed = f"Bad request (sent Authorization: {request.headers['Authorization']})"
            return 400, {}, _twilio_error(20001, echoed, 400)
        if not request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return 400, {}, _twilio_error(20001, "Unsupported content type", 400)
        form = {key: values[0] for key, values in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        to, sender, service, body = (
            form.get("To", ""),
            form.get("From"),
            form.get("MessagingServiceSid"),
            form.get("Body"),
        )
        if not E164.match(to) or to == INVALID_NUMBER:
            return 400, {}, _twilio_error(21211, f"The 'To' number {to} is not a valid phone number.", 400)
        if not sender and not service:
            return 400, {}, _twilio_error(21603, "The 'From' phone number is required.", 400)
        if sender and sender not in self.numbers:
            message = f"The From phone number {sender} is not a valid, SMS-capable inbound phone number"
            return 400, {}, _twilio_error(21606, message + " or short code for your account.", 400)
        if not body:
            return 400, {}, _twilio_error(21602, "Message body is required.", 400)
        return 201, {}, self._created(to, sender, service, body)

    def _authorized(self, header: str, account_in_path: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            username, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (username, password, account_in_path) == (self.account_sid, self.auth_token, self.account_sid)

    def _created(self, to: str, sender: str | None, service: str | None, body: str) -> dict:
        sid = "SM" + uuid.uuid4().hex
        now = formatdate(time.time(), usegmt=True).replace("GMT", "+0000")
        message = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(max(1, -(-len(body) // 153))),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued" if sender else "accepted",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
            "to": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        self.messages.append(message)
        return message


def _twilio_error(code: int, message: str, status: int) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class SlackWebAPI(_LocalAPI):
    """chat.postMessage for one bot token in a workspace with `channels` (the bot is a member of the
    ones in `joined`). `fail_next(("ratelimited", 3))` answers 429 with Retry-After: 3."""

    def __init__(self, token: str, *, channels: dict[str, str], joined: tuple[str, ...]) -> None:
        super().__init__()
        self.token = token
        self.channels = channels  # id -> name
        self.joined = set(joined)

    def answer(self, request: Request) -> tuple[int, dict[str, str], dict]:
        if request.path != "/api/chat.postMessage":
            return 404, {}, {"ok": False, "error": "unknown_method"}
        authorization = request.headers.get("Authorization", "")
        if not authorization:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if authorization != f"Bearer {self.token}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        failure = self._next_failure()
        if isinstance(failure, tuple) and failure[0] == "ratelimited":
            return 429, {"Retry-After": str(failure[1])}, {"ok": False, "error": "ratelimited"}
        try:
            body = json.loads(request.body)
        except ValueError:
            return 200, {}, {"ok": False, "error": "invalid_json"}
        channel = self._channel_id(str(body.get("channel") or ""))
        if channel is None:
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        if channel not in self.joined:
            return 200, {}, {"ok": False, "error": "not_in_channel"}
        if not body.get("text") and not body.get("blocks"):
            return 200, {}, {"ok": False, "error": "no_text"}
        ts = f"{time.time():.6f}"
        message = {"type": "message", "subtype": "bot_message", "text": body.get("text", ""), "ts": ts, "bot_id": "B01"}
        if body.get("blocks"):
            message["blocks"] = body["blocks"]
        self.messages.append({"channel": channel, **message})
        return 200, {}, {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _channel_id(self, given: str) -> str | None:
        if given in self.channels:
            return given
        by_name = {f"#{name}": channel for channel, name in self.channels.items()}
        return by_name.get(given)


class SilentServer:
    """A service that hangs: connections are taken (the kernel completes them) and never answered."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self._socket.close()
