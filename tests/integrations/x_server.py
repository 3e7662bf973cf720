"""A local stand-in for X's API v2 (posts and direct messages), its OAuth 2.0 token endpoint, and the
Account Activity API's side of webhooks.

Requests are authenticated as X does, and checked on its side independently of our code:
- OAuth 1.0a: the HMAC-SHA1 signature is recomputed here from the request as received (RFC 5849 §3.4:
  method, base URI, the oauth_* and query parameters, a form body's parameters; a JSON body is not
  signed), with the consumer and token secrets X holds; timestamps must be recent, nonces fresh.
- OAuth 2.0: POST /2/oauth2/token takes grant_type=refresh_token with the client's HTTP Basic
  authentication (a confidential client), answers a new access token and a new refresh token, and
  the refresh token just used stops working (X rotates them); bearer tokens expire when told.
Answers are X's: 201 {"data": {"id", "text", "edit_history_tweet_ids"}} for a post, 201 {"data":
{"dm_conversation_id", "dm_event_id"}} for a DM, and its problem JSON {"title", "detail", "type",
"status"} (with "errors" for invalid requests) for refusals; a 429 carries the x-rate-limit-* headers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit

AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')
DM_PATH = re.compile(r"^/2/dm_conversations/with/([0-9]{1,19})/messages$")
TIMESTAMP_TOLERANCE_SECONDS = 300
UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}


@dataclass(frozen=True)
class Received:
    path: str
    body: dict
    authorization: str  # the scheme and credential as sent ("OAuth ...", "Bearer ...")


def sign_webhook(consumer_secret: str, body: bytes) -> str:
    """X's x-twitter-webhooks-signature of a webhook body (also its CRC response_token of a crc_token)."""
    return "sha256=" + base64.b64encode(hmac.new(consumer_secret.encode(), body, hashlib.sha256).digest()).decode()


def dm_activity(*, for_user_id: str, sender_id: str, sender_name: str, text: str, event_id: str) -> bytes:
    """The Account Activity API's delivery of one direct message, as X posts it."""
    now_ms = str(int(time.time() * 1000))
    return json.dumps(
        {
            "for_user_id": for_user_id,
            "direct_message_events": [
                {
                    "type": "message_create",
                    "id": event_id,
                    "created_timestamp": now_ms,
                    "message_create": {
                        "target": {"recipient_id": for_user_id if sender_id != for_user_id else "3001969357"},
                        "sender_id": sender_id,
                        "source_app_id": "13090192",
                        "message_data": {
                            "text": text,
                            "entities": {"hashtags": [], "symbols": [], "user_mentions": [], "urls": []},
                        },
                    },
                }
            ],
            "apps": {"13090192": {"id": "13090192", "name": "On-call desk", "url": "https://example.com"}},
            "users": {
                sender_id: {
                    "id": sender_id,
                    "created_timestamp": "1422556069340",
                    "name": sender_name,
                    "screen_name": sender_name.lower().replace(" ", "_"),
                    "protected": False,
                    "verified": False,
                    "followers_count": 12,
                    "friends_count": 40,
                    "statuses_count": 300,
                }
            },
        }
    ).encode()


class XServer:
    """Records what it accepted (`posts`, `dms`, `grants`: the refresh tokens spent) and every
    refusal (`refused`: (status, body)). `plan(...)` queues answers for the next API calls:
    ("rate_limited", reset_epoch), ("unavailable",) or ("echo_authorization",) (a 400 whose detail
    repeats the Authorization header, as a careless gateway would)."""

    def __init__(
        self,
        *,
        consumer_key: str = "",
        consumer_secret: str = "",
        access_token: str = "",
        access_token_secret: str = "",
        client_id: str = "",
        client_secret: str = "",
        refresh_token: str = "",
        token_lifetime: int = 7200,
    ) -> None:
        self.consumer = (consumer_key, consumer_secret)
        self.user_token = (access_token, access_token_secret)
        self.client = (client_id, client_secret)
        self.token_lifetime = token_lifetime
        self.grant_delay = 0.0
        self.posts: list[Received] = []
        self.dms: list[Received] = []
        self.grants: list[str] = []
        self.refused: list[tuple[int, dict]] = []
        self._refresh_tokens = {refresh_token} if refresh_token else set()
        self._live_tokens: dict[str, float] = {}
        self._nonces: set[str] = set()
        self._plan: deque = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/2/oauth2/token"

    def plan(self, *answers: tuple) -> None:
        with self._lock:
            self._plan.extend(answers)

    def expire_tokens(self) -> None:
        with self._lock:
            self._live_tokens = dict.fromkeys(self._live_tokens, 0.0)

    def __enter__(self) -> XServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- OAuth 2.0: the refresh-token grant ------------------------------------------------------

    def grant(self, authorization: str, form: dict[str, str]) -> tuple[int, dict]:
        client_id, client_secret = self.client
        expected = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        if not hmac.compare_digest(authorization, expected):
            return 401, {"error": "unauthorized_client", "error_description": "Missing valid authorization header"}
        if form.get("grant_type") != "refresh_token":
            return 400, {
                "error": "invalid_request",
                "error_description": "Value passed for the grant type was invalid.",
            }
        time.sleep(self.grant_delay)  # a slow token endpoint: two workers may ask at once
        with self._lock:
            spent = form.get("refresh_token", "")
            if spent not in self._refresh_tokens:
                return 400, {"error": "invalid_request", "error_description": "Value passed for the token was invalid."}
            self._refresh_tokens.discard(spent)
            rotated, token = secrets.token_urlsafe(40), secrets.token_urlsafe(40)
            self._refresh_tokens.add(rotated)
            self._live_tokens[token] = time.time() + self.token_lifetime
            self.grants.append(spent)
        return 200, {
            "token_type": "bearer",
            "expires_in": self.token_lifetime,
            "access_token": token,
            "scope": "tweet.read tweet.write users.read dm.read dm.write offline.access",
            "refresh_token": rotated,
        }

    # --- the API ---------------------------------------------------------------------------------

    def authenticated(self, method: str, host: str, path: str, headers, body: bytes) -> bool:
        authorization = headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            with self._lock:
                return self._live_tokens.get(authorization.removeprefix("Bearer "), 0.0) > time.time()
        if authorization.startswith("OAuth "):
            return self._oauth1_valid(method, f"http://{host}{path}", authorization, headers, body)
        return False

    def _oauth1_valid(self, method: str, url: str, authorization: str, headers, body: bytes) -> bool:
        params = {name: unquote(value) for name, value in AUTH_PARAM.findall(authorization)}
        (consumer_key, consumer_secret), (token, token_secret) = self.consumer, self.user_token
        if params.get("oauth_consumer_key") != consumer_key or params.get("oauth_token") != token:
            return False
        if params.get("oauth_signature_method") != "HMAC-SHA1" or params.get("oauth_version", "1.0") != "1.0":
            return False
        if abs(time.time() - int(params.get("oauth_timestamp") or 0)) > TIMESTAMP_TOLERANCE_SECONDS:
            return False
        with self._lock:
            if not params.get("oauth_nonce") or params["oauth_nonce"] in self._nonces:
                return False
            self._nonces.add(params["oauth_nonce"])
        parts = urlsplit(url)
        pairs = [(name, value) for name, value in params.items() if name not in ("oauth_signature", "realm")]
        pairs += parse_qsl(parts.query, keep_blank_values=True)
        if (headers.get("Content-Type") or "").split(";")[0].strip() == "application/x-www-form-urlencoded":
            pairs += parse_qsl(body.decode(), keep_blank_values=True)
        normalized = "&".join(f"{name}={value}" for name, value in sorted((_enc(n), _enc(v)) for n, v in pairs))
        base_uri = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
        base_string = "&".join((method.upper(), _enc(base_uri), _enc(normalized)))
        key = f"{_enc(consumer_secret)}&{_enc(token_secret)}".encode()
        expected = base64.b64encode(hmac.new(key, base_string.encode(), hashlib.sha1).digest()).decode()
        return hmac.compare_digest(params.get("oauth_signature", ""), expected)

    def handle(self, method: str, host: str, path: str, headers, body: bytes) -> tuple[int, dict, dict[str, str]]:
        if not self.authenticated(method, host, path, headers, body):
            return 401, UNAUTHORIZED, {}
        try:
            sent = json.loads(body)
        except ValueError:
            return _invalid("The request body is not valid JSON."), {}
        with self._lock:
            planned = self._plan.popleft() if self._plan else None
        if planned:
            return self._planned(planned, headers)
        if not isinstance(sent, dict) or not isinstance(sent.get("text"), str) or not sent["text"]:
            return _invalid("The `text` field is required."), {}
        received = Received(path, sent, headers.get("Authorization", ""))
        if path == "/2/tweets":
            with self._lock:
                if any(post.body["text"] == sent["text"] for post in self.posts):
                    return 403, _duplicate(), {}
                self.posts.append(received)
                post_id = str(1445880548472328192 + len(self.posts))
            return 201, {"data": {"id": post_id, "text": sent["text"], "edit_history_tweet_ids": [post_id]}}, {}
        match = DM_PATH.match(path)
        if match:
            with self._lock:
                self.dms.append(received)
                event_id = str(1582838238324367364 + len(self.dms))
            conversation = "-".join(sorted(("1346889436626259968", match.group(1))))
            return 201, {"data": {"dm_conversation_id": conversation, "dm_event_id": event_id}}, {}
        return (
            404,
            {
                "title": "Not Found Error",
                "detail": f"Sorry, that page does not exist: {path}",
                "type": "https://api.twitter.com/2/problems/resource-not-found",
                "status": 404,
            },
            {},
        )

    def _planned(self, planned: tuple, headers) -> tuple[int, dict, dict[str, str]]:
        kind = planned[0]
        if kind == "rate_limited":
            reset = str(planned[1])
            limits = {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0", "x-rate-limit-reset": reset}
            body = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}
            return 429, body, limits
        if kind == "unavailable":
            body = {
                "title": "Service Unavailable",
                "detail": "Service Unavailable",
                "type": "about:blank",
                "status": 503,
            }
            return 503, body, {}
        echoed = f"Could not parse the request with headers Authorization: {headers.get('Authorization', '')}"
        return 400, {"title": "Bad Request", "detail": echoed, "type": "about:blank", "status": 400}, {}


def _enc(value: str) -> str:
    """RFC 5849 §3.6: UTF-8, every byte but the unreserved characters percent-encoded."""
    return quote(value, safe="~")


def _invalid(message: str) -> tuple[int, dict]:
    return 400, {
        "errors": [{"parameters": {"text": []}, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }


def _duplicate() -> dict:
    return {
        "detail": "You are not allowed to create a Tweet with duplicate content.",
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
    }


def _make_handler(server: XServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            extra: dict[str, str] = {}
            if self.path == "/2/oauth2/token":
                form = dict(parse_qsl(body.decode(), keep_blank_values=True))
                status, answer = server.grant(self.headers.get("Authorization", ""), form)
            else:
                status, answer, extra = server.handle("POST", self.headers["Host"], self.path, self.headers, body)
            if status >= 400:
                server.refused.append((status, answer))
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args) -> None:
            pass

    return Handler
