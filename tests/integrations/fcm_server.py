"""A local stand-in for Google's OAuth2 token endpoint and Firebase Cloud Messaging's HTTP v1 API.

It plays both sides as Google does: it issues a service-account key file (`service_account()`, with
its token_uri pointing here), checks the RS256-signed JWT-bearer grant against that key's public half
(RFC 7523, as https://developers.google.com/identity/protocols/oauth2/service-account#httprest says),
hands out short-lived access tokens, and accepts `POST /v1/projects/{project}/messages:send` only with
a live token, answering FCM's JSON ({"name": ...}, or the google.rpc error shape with an FcmError
detail). It knows nothing about our code.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MESSAGING_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
# HTTP status, google.rpc status and FCM error code of each error FCM answers.
FCM_ERRORS = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Send requests'."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
}


@dataclass
class PushReceived:
    project: str
    access_token: str
    message: dict


class FCMServer:
    """Records the pushes it accepted (`pushes`) and the token grants it answered (`grants`).

    `plan(...)` queues answers for the next sends: an FCM error code ("QUOTA_EXCEEDED", ...), or
    (code, retry_after_seconds), or (code, retry_after_seconds or None, the error's message).
    `unregister(token)` makes a device token unknown (404 UNREGISTERED).
    `expire_tokens()` ends every access token issued so far, as their hour running out would."""

    def __init__(self, project_id: str = "oncall-alerts", token_lifetime: int = 3599) -> None:
        self.project_id = project_id
        self.client_email = f"fcm-sender@{project_id}.iam.gserviceaccount.com"
        self.key_id = secrets.token_hex(20)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.token_lifetime = token_lifetime
        self.pushes: list[PushReceived] = []
        self.grants: list[dict] = []  # the verified claims of each grant answered
        self.refused: list[tuple[int, dict]] = []  # (status, body) of each refusal
        self._live_tokens: dict[str, float] = {}
        self._unregistered: set[str] = set()
        self._plan: deque = deque()
        self._grant_failures: deque = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def private_key_pem(self) -> str:
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def service_account(self) -> dict:
        """The key file Google's console hands out, its token_uri pointing at this server."""
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.key_id,
            "private_key": self.private_key_pem,
            "client_email": self.client_email,
            "client_id": "104892175340123456789",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": f"{self.url}/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        }

    def plan(self, *answers: str | tuple[str, int]) -> None:
        with self._lock:
            self._plan.extend(answers)

    def fail_next_grants(self, *statuses: int) -> None:
        """The next token requests are answered with these HTTP statuses (503: Google is down)."""
        with self._lock:
            self._grant_failures.extend(statuses)

    def unregister(self, device_token: str) -> None:
        self._unregistered.add(device_token)

    def expire_tokens(self) -> None:
        with self._lock:
            self._live_tokens = dict.fromkeys(self._live_tokens, 0.0)

    def __enter__(self) -> FCMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the token endpoint ---------------------------------------------------------------------

    def grant(self, form: dict[str, str]) -> tuple[int, dict]:
        with self._lock:
            failure = self._grant_failures.popleft() if self._grant_failures else None
        if failure:
            return failure, {"error": "internal_failure", "error_description": "Backend Error"}
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."}
        try:
            header = jwt.get_unverified_header(form.get("assertion", ""))
            claims = jwt.decode(
                form["assertion"],
                self._key.public_key(),
                algorithms=["RS256"],
                audience=GOOGLE_TOKEN_AUDIENCE,
                issuer=self.client_email,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except (KeyError, jwt.PyJWTError) as exc:
            return 400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {type(exc).__name__}."}
        if header.get("kid") != self.key_id:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        if claims["exp"] - claims["iat"] > 3600:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: lifetime over one hour."}
        if MESSAGING_SCOPE not in str(claims.get("scope", "")).split():
            return 400, {"error": "invalid_scope", "error_description": "Missing the firebase.messaging scope."}
        token = "ya29." + secrets.token_urlsafe(32)
        with self._lock:
            self._live_tokens[token] = time.time() + self.token_lifetime
            self.grants.append(claims)
        return 200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}

    # --- FCM's send endpoint --------------------------------------------------------------------

    def send(self, path: str, authorization: str, body: bytes) -> tuple[int, dict, dict[str, str]]:
        token = authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else ""
        with self._lock:
            live = self._live_tokens.get(token, 0.0) > time.time()
        if not live:
            return _unauthenticated(), {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
        project = path.removeprefix("/v1/projects/").removesuffix("/messages:send")
        if not path.endswith("/messages:send") or project != self.project_id:
            return _error("INVALID_ARGUMENT", f"Unknown project or path: {path}"), {}
        try:
            message = json.loads(body)["message"]
        except (ValueError, KeyError, TypeError):
            return _error("INVALID_ARGUMENT", "Invalid JSON payload received."), {}
        problem = _message_problem(message)
        if problem:
            return _error("INVALID_ARGUMENT", problem), {}
        with self._lock:
            planned = self._plan.popleft() if self._plan else None
        if planned:
            code, retry_after, text = (*planned, None)[:3] if isinstance(planned, tuple) else (planned, None, None)
            return _error(code, text), ({"Retry-After": str(retry_after)} if retry_after is not None else {})
        if message.get("token") in self._unregistered:
            return _error("UNREGISTERED"), {}
        with self._lock:
            self.pushes.append(PushReceived(project, token, message))
            number = len(self.pushes)
        return (200, {"name": f"projects/{project}/messages/0:{number}%{secrets.token_hex(8)}"}), {}


def _message_problem(message: object) -> str | None:
    """What FCM would refuse in a message (the parts we use of its documented shape)."""
    if not isinstance(message, dict):
        return "message must be an object."
    targets = [key for key in ("token", "topic", "condition") if key in message]
    if len(targets) != 1:
        return "Exactly one of token, topic or condition must be set."
    notification = message.get("notification")
    if notification is not None and (
        not isinstance(notification, dict) or set(notification) - {"title", "body", "image"}
    ):
        return "Invalid value at 'message.notification'."
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return "Invalid value at 'message.data': values must be strings."
    if any(key in ("from", "notification", "message_type") or key.startswith(("google", "gcm")) for key in data):
        return "Invalid data payload key."
    return None


def _error(code: str, message: str | None = None) -> tuple[int, dict]:
    status, rpc_status, default_message = FCM_ERRORS[code]
    return status, {
        "error": {
            "code": status,
            "message": message or default_message,
            "status": rpc_status,
            "details": [{"@type": FCM_ERROR_TYPE, "errorCode": code}],
        }
    }


def _unauthenticated() -> tuple[int, dict]:
    message = (
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
        "valid authentication credential."
    )
    return 401, {"error": {"code": 401, "message": message, "status": "UNAUTHENTICATED"}}


def _make_handler(server: FCMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers: dict[str, str] = {}
            if self.path == "/token":
                form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
                status, answer = server.grant(form)
            else:
                (status, answer), headers = server.send(self.path, self.headers.get("Authorization", ""), body)
            if status != 200:
                server.refused.append((status, answer))
            payload = json.dumps(answer, indent=2).encode()  # Google answers pretty-printed JSON
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args) -> None:
            pass

    return Handler
