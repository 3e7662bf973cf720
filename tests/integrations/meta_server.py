"""A local stand-in for Meta's Graph API Send endpoint, and Meta's side of its webhooks.

Send API (https://developers.facebook.com/docs/messenger-platform/reference/send-api): it accepts
`POST /{version}/{page-id or me}/messages` with the Page access token as `Authorization: Bearer` (or
the access_token parameter), and, the app having "Require App Secret" on, an `appsecret_proof`
parameter (HMAC-SHA256 of the token under the app secret). The body is JSON {recipient: {id},
messaging_type, message: {text}, tag?}. It answers {recipient_id, message_id}, or Meta's error shape
{"error": {message, type, code, error_subcode, fbtrace_id}} for what Meta refuses: a bad token (190),
a missing or wrong proof (100), an unknown recipient (100/2018001), a person unavailable (551/1545041),
a message outside the 24-hour window (10/2018278), a too-long text (100). `plan(...)` queues errors
for the next sends (a rate limit 613, Meta's temporary 2, ...).

Webhooks (https://developers.facebook.com/docs/graph-api/webhooks/getting-started): `signed(payload)`
gives the raw body and the X-Hub-Signature-256 header Meta sends, and `messenger_update` /
`instagram_update` build its entry[].messaging[] payloads. It knows nothing about our code.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PATH = re.compile(r"^/(v[0-9]+\.[0-9]+)/([^/]+)/messages$")
TEXT_LIMIT = {"messenger": 2000, "instagram": 1000}
# HTTP status, type and message of each Graph error the stand-in answers (Meta's words)
GRAPH_ERRORS: dict[int, tuple[int, str, str]] = {
    1: (500, "OAuthException", "An unknown error occurred"),
    2: (503, "OAuthException", "An unexpected error has occurred. Please retry your request later."),
    4: (403, "OAuthException", "(#4) Application request limit reached"),
    10: (403, "OAuthException", "(#10) This message is sent outside of allowed window."),
    100: (400, "OAuthException", "(#100) Invalid parameter"),
    190: (400, "OAuthException", "Invalid OAuth access token - Cannot parse access token"),
    200: (403, "OAuthException", "(#200) The user hasn't authorized the application to perform this action"),
    551: (400, "OAuthException", "(#551) This person isn't available right now."),
    613: (400, "OAuthException", "(#613) Calls to this api have exceeded the rate limit."),
    2500: (400, "OAuthException", "Unknown path components"),
}


@dataclass
class SentMessage:
    version: str
    account: str  # the path's id: the Page's, or "me"
    token_via: str  # "header" or "parameter"
    proof: str
    body: dict


class MetaGraphServer:
    """`platform` is "messenger" (message ids m_…) or "instagram" (Instagram's base64 ids, 1000-byte
    texts). `customers` are the PSIDs / IGSIDs that messaged the Page; `unavailable` ones blocked it;
    `window_closed` ones last wrote more than 24 hours ago (only a MESSAGE_TAG reaches them)."""

    def __init__(
        self,
        *,
        page_id: str,
        token: str,
        app_secret: str,
        platform: str = "messenger",
        versions: tuple[str, ...] = ("v25.0",),
        require_proof: bool = True,
    ) -> None:
        self.page_id, self.token, self.app_secret, self.platform = page_id, token, app_secret, platform
        self.versions, self.require_proof = versions, require_proof
        self.customers: set[str] = set()
        self.unavailable: set[str] = set()
        self.window_closed: set[str] = set()
        self.sent: list[SentMessage] = []
        self.refused: list[tuple[int, dict]] = []
        self._plan: deque = deque()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def plan(self, *errors: int | tuple[int, int]) -> None:
        """The next sends fail with these Graph codes (or (code, subcode)), in order."""
        with self._lock:
            self._plan.extend(errors)

    def __enter__(self) -> MetaGraphServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the Send API ---------------------------------------------------------------------------

    def send(self, path: str, query: dict[str, str], authorization: str, body: bytes) -> tuple[int, dict]:
        match = PATH.match(path)
        if not match or match.group(1) not in self.versions or match.group(2) not in ("me", self.page_id):
            return _error(2500, message=f"Unknown path components: {path}")
        scheme, _, header_token = authorization.partition(" ")
        token_via, token = ("header", header_token) if scheme in ("Bearer", "OAuth") else ("parameter", "")
        if not token:
            token = query.get("access_token", "")
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return _error(190)
        proof = query.get("appsecret_proof", "")
        expected = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
        if self.require_proof and not proof:
            return _error(100, message="API calls from the server require an appsecret_proof argument")
        if proof and not hmac.compare_digest(proof, expected):
            return _error(100, message="Invalid appsecret_proof provided in the API argument")
        try:
            message = json.loads(body)
        except ValueError:
            return _error(100, message="(#100) The parameter recipient is required")
        problem = self._problem(message)
        if problem:
            return problem
        with self._lock:
            planned = self._plan.popleft() if self._plan else None
        if planned is not None:
            code, subcode = planned if isinstance(planned, tuple) else (planned, None)
            return _error(code, subcode=subcode)
        recipient = message["recipient"]["id"]
        with self._lock:
            self.sent.append(SentMessage(match.group(1), match.group(2), token_via, proof, message))
            number = next(self._ids)
        return 200, {"recipient_id": recipient, "message_id": self._message_id(number)}

    def _problem(self, message: object) -> tuple[int, dict] | None:
        """What the Send API refuses in a message, as it says it."""
        if not isinstance(message, dict) or not isinstance(message.get("recipient"), dict):
            return _error(100, message="(#100) The parameter recipient is required")
        kind = message.get("messaging_type")
        if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            return _error(100, message="(#100) Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
        if kind == "MESSAGE_TAG" and not message.get("tag"):
            return _error(100, message="(#100) Tag is required for MESSAGE_TAG messaging type")
        text = (message.get("message") or {}).get("text") if isinstance(message.get("message"), dict) else None
        if not isinstance(text, str) or not text:
            return _error(100, message="(#100) Param message must be non-empty")
        size = len(text.encode()) if self.platform == "instagram" else len(text)
        if size > TEXT_LIMIT[self.platform]:
            limit = TEXT_LIMIT[self.platform]
            return _error(100, message=f"(#100) Length of param message[text] must be less than or equal to {limit}")
        recipient = str(message["recipient"].get("id"))
        if recipient not in self.customers:
            return _error(100, subcode=2018001, message="(#100) No matching user found")
        if recipient in self.unavailable:
            return _error(551, subcode=1545041)
        if recipient in self.window_closed and kind != "MESSAGE_TAG":
            return _error(10, subcode=2018278)
        return None

    def _message_id(self, number: int) -> str:
        if self.platform == "instagram":
            return "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlE" + f"{number:012d}"
        return f"m_{secrets.token_urlsafe(16)}{number}"

    # --- Meta's side of the webhooks --------------------------------------------------------------

    def signed(self, payload: dict, *, secret: str | None = None) -> tuple[bytes, str]:
        """The raw body Meta posts and its X-Hub-Signature-256 header (under `secret` to forge one)."""
        body = json.dumps(payload, ensure_ascii=False).encode()
        digest = hmac.new((secret or self.app_secret).encode(), body, hashlib.sha256).hexdigest()
        return body, f"sha256={digest}"

    def messenger_update(self, *events: dict) -> dict:
        return {"object": "page", "entry": [{"id": self.page_id, "time": 1764500000000, "messaging": list(events)}]}

    def instagram_update(self, account_id: str, *events: dict) -> dict:
        return {"object": "instagram", "entry": [{"id": account_id, "time": 1764500000000, "messaging": list(events)}]}


def customer_message(sender: str, recipient: str, text: str, mid: str, timestamp: int = 1764500000000) -> dict:
    """One entry.messaging item: a person's text message to the Page or account."""
    return {
        "sender": {"id": sender},
        "recipient": {"id": recipient},
        "timestamp": timestamp,
        "message": {"mid": mid, "text": text},
    }


def echo(page_id: str, customer: str, text: str, mid: str) -> dict:
    """Meta's echo of a message the Page itself sent (message_echoes)."""
    return {
        "sender": {"id": page_id},
        "recipient": {"id": customer},
        "timestamp": 1764500000000,
        "message": {"mid": mid, "text": text, "is_echo": True, "app_id": 1517776481860111},
    }


def delivery(customer: str, page_id: str, mid: str) -> dict:
    return {
        "sender": {"id": customer},
        "recipient": {"id": page_id},
        "delivery": {"mids": [mid], "watermark": 1764500000000},
    }


def read(customer: str, page_id: str) -> dict:
    return {
        "sender": {"id": customer},
        "recipient": {"id": page_id},
        "timestamp": 1764500000000,
        "read": {"watermark": 1764500000000},
    }


def _error(code: int, *, subcode: int | None = None, message: str | None = None) -> tuple[int, dict]:
    status, kind, default_message = GRAPH_ERRORS[code]
    error: dict = {"message": message or default_message, "type": kind, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(15)
    return status, {"error": error}


def _make_handler(server: MetaGraphServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            parts = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            status, answer = server.send(parts.path, query, self.headers.get("Authorization", ""), body)
            if status != 200:
                server.refused.append((status, answer))
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("x-fb-trace-id", "A" + secrets.token_urlsafe(8))
            if status != 200:
                self.send_header("WWW-Authenticate", 'OAuth "Facebook Platform" "invalid_request"')
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args) -> None:
            pass

    return Handler
