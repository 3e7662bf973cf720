"""How a request to an integration is authenticated, by auth_type, from its sealed auth_config.

OAuth2 tokens (client credentials; JWT bearer, RFC 7523, signed RS256 with PyJWT; a Google-style
service account, which is JWT bearer with the account's own fields) are fetched from the configured
token URL through the SSRF guard, then cached sealed in Redis until `expires_in` minus a margin, so
every worker shares one token. A 401 from the provider drops the cached token; the caller retries
once with a fresh one (integrations.providers.http does that).

No text built here carries a credential: errors say which key is missing or what the token endpoint
answered, scrubbed of every secret value in the config.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING

import jwt
import redis
import requests
from django.conf import settings

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
ASSERTION_LIFETIME_SECONDS = 300


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
    if kind == "oauth2_client_credentials":
        url = config["token_url"]
        form = {"grant_type": "client_credentials", "client_id": config["client_id"]}
        form["client_secret"] = config["client_secret"]
    else:
        url = config["token_url"] if kind == "oauth2_jwt_bearer" else config["token_uri"]
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": _assertion(kind, config, url)}
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
        text = credentials.scrub_secrets(outbound.scrub(" ".join(response.text[:200].split()), url), config)
        retryable = response.status_code >= 500 or response.status_code in (408, 429)
        raise AuthError(
            f"Token endpoint {where} answered HTTP {response.status_code}: {text}",
            permanent=not retryable,
            http_status=response.status_code,
        )
    try:
        body = response.json()
        token = body["access_token"]
    except (ValueError, KeyError, TypeError) as exc:
        raise AuthError(f"Token endpoint {where} answered without an access_token.", permanent=False) from exc
    expires_in = body.get("expires_in")
    return str(token), float(expires_in) if isinstance(expires_in, int | float | str) and expires_in != "" else None


def _assertion(kind: str, config: dict, audience_default: str) -> str:
    now = int(time.time())
    if kind == "service_account":
        claims = {"iss": config["client_email"], "aud": config["token_uri"]}
        scope = config.get("scope") or config.get("scopes")
        if scope:
            claims["scope"] = scope if isinstance(scope, str) else " ".join(scope)
    else:
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
