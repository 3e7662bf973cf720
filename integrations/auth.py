"""How a request to an integration is authenticated, by auth_type, from its sealed auth_config.

OAuth2 tokens (client credentials; JWT bearer, RFC 7523, signed RS256 with PyJWT; a Google service
account, whose token google-auth obtains from the account's own fields) are fetched from the configured
token URL through the SSRF guard, then cached sealed in Redis until `expires_in` minus a margin, so
every worker shares one token. A 401 from the provider drops the cached token; the caller retries
once with a fresh one (integrations.providers.http does that).

No text built here carries a credential: errors say which key is missing or what the token endpoint
answered, scrubbed of every secret value in the config.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING

import google.auth.exceptions
import google.auth.transport.requests
import jwt
import redis
import requests
from django.conf import settings
from google.oauth2 import service_account

from config import outbound
from config.redis import redis_client
from integrations import credentials

if TYPE_CHECKING:
    from integrations.models import Integration

logger = logging.getLogger(__name__)

REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "none": (),
    "api_key": ("api_key",),
    "basic": ("username", "password"),
    "bearer": ("token",),
    "oauth2_client_credentials": ("token_url", "client_id", "client_secret"),
    "oauth2_jwt_bearer": ("token_url", "client_id", "private_key"),
    "service_account": ("client_email", "private_key", "token_uri"),
}
OAUTH2_TYPES = frozenset({"oauth2_client_credentials", "oauth2_jwt_bearer", "service_account"})
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_KEY_PREFIX = "oncall:integration-token"  # noqa: S105 (a Redis key prefix)
# Salesforce refuses a JWT bearer assertion whose exp is more than 3 minutes away.
ASSERTION_LIFETIME_SECONDS = 180
# A service account's token is for the scopes its provider declares (`service_account_scopes`, e.g.
# FCM's firebase.messaging), or auth_config's "scopes"/"scope"; this one when neither says.
DEFAULT_SERVICE_ACCOUNT_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


class AuthError(Exception):
    """Credentials missing, or the token endpoint refused them. `permanent`: retrying cannot help."""

    def __init__(self, reason: str, *, permanent: bool, http_status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.http_status = http_status


def missing_keys(auth_type: str, config: dict) -> list[str]:
    return [key for key in REQUIRED_KEYS.get(auth_type, ()) if not config.get(key)]


def token_urls(auth_type: str, config: dict) -> list[str]:
    """The URLs an auth flow will call (checked against SSRF when the integration is saved)."""
    return [config[key] for key in ("token_url", "token_uri") if auth_type in OAUTH2_TYPES and config.get(key)]


def headers(integration: Integration, config: dict) -> dict[str, str]:
    """The headers that authenticate one request (fetching an OAuth2 token when none is cached)."""
    kind = integration.auth_type
    if kind == "api_key":
        return {config.get("header_name") or "X-API-Key": config["api_key"]}
    if kind == "basic":
        pair = f"{config['username']}:{config['password']}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    if kind == "bearer":
        return {"Authorization": f"Bearer {config['token']}"}
    if kind in OAUTH2_TYPES:
        return {"Authorization": f"Bearer {access_token(integration, config)}"}
    return {}


def sent_credentials(auth_headers: dict[str, str]) -> tuple[str, ...]:
    """The secret strings a request's auth headers carry, longest first, for scrubbing what the answer
    echoes back: the credential after the Authorization scheme ("Bearer <token>", "Basic <base64>";
    the scheme stays readable), any other header's whole value (an API key), each also the way JSON
    may write it (with "/" escaped)."""
    found: set[str] = set()
    for name, value in auth_headers.items():
        scheme, _, credential = value.partition(" ")
        secret = credential.strip() if name.lower() == "authorization" and scheme and credential.strip() else value
        if len(secret) >= 4:
            found.update({secret, secret.replace("/", "\\/")})
    return tuple(sorted(found, key=len, reverse=True))


def access_token(integration: Integration, config: dict) -> str:
    cached = _cached_token(integration, config)
    if cached:
        return cached
    token, expires_in = _fetch_token(integration, config)
    _cache_token(integration, config, token, expires_in)
    return token


def forget_token(integration: Integration, config: dict) -> None:
    """After a 401: the cached token is no good; the next request fetches a new one."""
    try:
        redis_client().delete(_token_key(integration, config))
    except redis.RedisError:
        logger.warning("cached token not dropped", extra={"integration": integration.integration_id})


def _token_key(integration: Integration, config: dict) -> str:
    # The config's fingerprint is in the key: new credentials never use a token the old ones got.
    fingerprint = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    return f"{TOKEN_KEY_PREFIX}:{integration.integration_id}:{fingerprint}"


def _cached_token(integration: Integration, config: dict) -> str | None:
    try:
        sealed = redis_client().get(_token_key(integration, config))
    except redis.RedisError:
        return None
    if not sealed:
        return None
    try:
        return credentials.open_bytes(sealed, "token").decode()
    except credentials.CredentialError:
        return None


def _cache_token(integration: Integration, config: dict, token: str, expires_in: float | None) -> None:
    margin = float(getattr(settings, "INTEGRATION_TOKEN_EXPIRY_MARGIN_SECONDS", 60.0))
    ttl = int((expires_in or 3600) - margin)
    if ttl <= 0:
        return
    try:
        redis_client().set(_token_key(integration, config), credentials.seal_bytes(token.encode(), "token"), ex=ttl)
    except redis.RedisError:
        logger.warning("token not cached", extra={"integration": integration.integration_id})


def _fetch_token(integration: Integration, config: dict) -> tuple[str, float | None]:
    kind = integration.auth_type
    if kind == "service_account":
        return _service_account_token(integration, config)
    if kind == "oauth2_client_credentials":
        url = config["token_url"]
        form = {"grant_type": "client_credentials", "client_id": config["client_id"]}
        form["client_secret"] = config["client_secret"]
    else:
        url = config["token_url"]
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": _assertion(config, url)}
    if config.get("scope") and kind == "oauth2_client_credentials":
        form["scope"] = config["scope"]
    if config.get("audience") and kind == "oauth2_client_credentials":
        form["audience"] = config["audience"]
    timeout = tuple(getattr(settings, "INTEGRATION_HTTP_TIMEOUT", (3.0, 10.0)))
    where = outbound.redact_url(url)
    try:
        with outbound.guarded_session() as session:
            response = session.post(url, data=form, timeout=timeout, allow_redirects=False)
    except outbound.BlockedDestination as exc:
        raise AuthError(f"Token endpoint {where} refused: {exc}", permanent=True) from exc
    except requests.RequestException as exc:
        cause = credentials.scrub_secrets(outbound.scrub(f"{type(exc).__name__}", url), config)
        raise AuthError(f"Token endpoint {where} unreachable: {cause}", permanent=False) from exc
    if response.status_code != 200:
        raise _refusal(response.status_code, response.text, url, config)
    try:
        body = response.json()
        token = body["access_token"]
    except (ValueError, KeyError, TypeError) as exc:
        raise AuthError(f"Token endpoint {where} answered without an access_token.", permanent=False) from exc
    expires_in = body.get("expires_in")
    return str(token), float(expires_in) if isinstance(expires_in, int | float | str) and expires_in != "" else None


def _refusal(status: int, answer: str, url: str, config: dict) -> AuthError:
    """The token endpoint said no: a 5xx, 408 or 429 may pass, anything else will be refused again."""
    text = credentials.scrub_secrets(outbound.scrub(" ".join(answer[:200].split()), url), config)
    retryable = status >= 500 or status in (408, 429)
    return AuthError(
        f"Token endpoint {outbound.redact_url(url)} answered HTTP {status}: {text}",
        permanent=not retryable,
        http_status=status,
    )


def _assertion(config: dict, audience_default: str) -> str:
    now = int(time.time())
    claims = {"iss": config["client_id"], "aud": config.get("audience") or audience_default}
    if config.get("subject"):
        claims["sub"] = config["subject"]
    if config.get("scope"):
        claims["scope"] = config["scope"]
    claims.update({"iat": now, "exp": now + ASSERTION_LIFETIME_SECONDS, "jti": uuid.uuid4().hex})
    headers = {"kid": config["key_id"]} if config.get("key_id") else None
    try:
        return jwt.encode(claims, config["private_key"], algorithm="RS256", headers=headers)
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise AuthError("private_key is not an RSA private key in PEM form.", permanent=True) from exc


# --- Google service accounts, through google-auth ------------------------------------------------


class _TokenEndpointRefused(Exception):
    """Raised from inside google-auth's refresh so a refusal reaches us with its status, and so the
    library's own sleep-and-retry loop (for 5xx/429) never blocks a worker: our retries decide."""

    def __init__(self, status: int, text: str):
        super().__init__(status)
        self.status = status
        self.text = text


class _GuardedGoogleRequest(google.auth.transport.requests.Request):
    """google-auth's transport over our SSRF-guarded session, with our timeout and no redirects; any
    answer but 200 becomes `_TokenEndpointRefused`."""

    def __init__(self, session: requests.Session, timeout: tuple[float, float]):
        super().__init__(session=session)
        self.our_timeout = timeout

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        response = super().__call__(
            url, method=method, body=body, headers=headers, timeout=self.our_timeout, allow_redirects=False
        )
        if response.status != 200:
            raise _TokenEndpointRefused(response.status, bytes(response.data or b"").decode("utf-8", "replace"))
        return response


def _service_account_token(integration: Integration, config: dict) -> tuple[str, float | None]:
    """An access token for the service account, obtained by google-auth (it signs the RS256 assertion
    with the account's private key and posts the JWT-bearer grant to the account's token_uri)."""
    url = config["token_uri"]
    where = outbound.redact_url(url)
    try:
        account = service_account.Credentials.from_service_account_info(
            config, scopes=list(_service_account_scopes(integration, config))
        )
    except (ValueError, TypeError) as exc:
        missing = missing_keys("service_account", config)
        reason = "private_key is not an RSA private key in PEM form."
        if missing:
            reason = f"auth_config needs: {', '.join(missing)}."
        raise AuthError(reason, permanent=True) from exc
    timeout = tuple(getattr(settings, "INTEGRATION_HTTP_TIMEOUT", (3.0, 10.0)))
    try:
        with outbound.guarded_session() as session:
            account.refresh(_GuardedGoogleRequest(session, timeout))
    except outbound.BlockedDestination as exc:
        raise AuthError(f"Token endpoint {where} refused: {exc}", permanent=True) from exc
    except _TokenEndpointRefused as exc:
        raise _refusal(exc.status, exc.text, url, config) from exc
    except google.auth.exceptions.TransportError as exc:
        inner = exc.__cause__ or exc
        cause = credentials.scrub_secrets(outbound.scrub(type(inner).__name__, url), config)
        raise AuthError(f"Token endpoint {where} unreachable: {cause}", permanent=False) from exc
    except google.auth.exceptions.GoogleAuthError as exc:  # RefreshError: no access_token in the answer
        raise AuthError(f"Token endpoint {where} answered without an access_token.", permanent=False) from exc
    expires_in = None
    if account.expiry is not None:  # google-auth keeps it naive, in UTC
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        expires_in = (account.expiry - now).total_seconds()
    return str(account.token), expires_in


def _service_account_scopes(integration: Integration, config: dict) -> tuple[str, ...]:
    scope = config.get("scopes") or config.get("scope")
    if scope:
        return tuple(scope.split()) if isinstance(scope, str) else tuple(scope)
    from integrations import providers  # the providers import this module

    provider = providers.PROVIDERS.get(integration.provider)
    return (provider.service_account_scopes if provider else ()) or DEFAULT_SERVICE_ACCOUNT_SCOPES
