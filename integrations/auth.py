"""How a request to an integration is authenticated, by auth_type, from its sealed auth_config.

OAuth2 tokens (client credentials; JWT bearer, RFC 7523, signed RS256 with PyJWT; a Google service
account, whose token google-auth obtains from the account's own fields; a user's refresh token) are
fetched from the configured token URL through the SSRF guard, then cached sealed in Redis until
`expires_in` minus a margin, so every worker shares one token. A 401 from the provider drops the
cached token; the caller retries once with a fresh one (integrations.providers.http does that).

A refresh token (auth_type oauth2_refresh_token, X's OAuth 2.0 user context) is spent by each use:
the token endpoint answers a new one and the old one stops working. The new one is sealed into the
integration's auth_config at once, and refreshes are serialized on the integration's row lock, so a
second worker waits for the first and then takes its access token instead of spending a refresh
token that is no longer valid (which would leave the integration unable to refresh at all).

OAuth 1.0a (auth_type oauth1, X's user context for apps with consumer keys) has no token to fetch:
each request is signed, HMAC-SHA1 by oauthlib, over its method, URL and query, and its body only when
that is a form (RFC 5849 §3.4.1.3.1: a JSON body is not part of the signature base string).

No text built here carries a credential: errors say which key is missing or what the token endpoint
answered, scrubbed of every secret value in the config.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import logging
import re
import time
import urllib.parse
import uuid
from typing import TYPE_CHECKING

import google.auth.exceptions
import google.auth.transport.requests
import jwt
import redis
import requests
from django.conf import settings
from django.db import transaction
from google.oauth2 import service_account
from oauthlib import oauth1

from config import outbound
from config.redis import redis_client
from integrations import credentials

if TYPE_CHECKING:
    from integrations.models import Integration

logger = logging.getLogger(__name__)
# oauthlib's client logs each signature base string (consumer key, token) and signature at DEBUG:
# whatever the logging settings say, those lines never reach a log
logging.getLogger("oauthlib.oauth1").setLevel(logging.INFO)

REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "none": (),
    "api_key": ("api_key",),
    "basic": ("username", "password"),
    "bearer": ("token",),
    "oauth2_client_credentials": ("token_url", "client_id", "client_secret"),
    "oauth2_jwt_bearer": ("token_url", "client_id", "private_key"),
    "service_account": ("client_email", "private_key", "token_uri"),
    # a confidential client adds client_secret (sent as HTTP Basic to the token endpoint)
    "oauth2_refresh_token": ("token_url", "client_id", "refresh_token"),
    "oauth1": ("consumer_key", "consumer_secret", "access_token", "access_token_secret"),
}
OAUTH2_TYPES = frozenset({"oauth2_client_credentials", "oauth2_jwt_bearer", "service_account", "oauth2_refresh_token"})
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
OAUTH_HEADER_PARAM = re.compile(r'(\w+)="([^"]*)"')
OAUTH_CREDENTIAL_PARAMS = frozenset({"oauth_signature", "oauth_consumer_key", "oauth_token", "oauth_nonce"})
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


def headers(
    integration: Integration,
    config: dict,
    *,
    method: str = "",
    url: str = "",
    body: bytes | None = None,
    content_type: str = "",
) -> dict[str, str]:
    """The headers that authenticate one request (fetching an OAuth2 token when none is cached).
    OAuth 1.0a signs the request itself, so it needs the method, URL, body and its Content-Type."""
    kind = integration.auth_type
    if kind == "oauth1":
        return {"Authorization": _oauth1_authorization(config, method, url, body, content_type)}
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
    may write it (with "/" escaped). An OAuth 1.0a header also gives each of its credential values
    (the signature, consumer key, token and nonce) alone: an echo may quote or mask them apart."""
    found: set[str] = set()
    for name, value in auth_headers.items():
        scheme, _, credential = value.partition(" ")
        secret = credential.strip() if name.lower() == "authorization" and scheme and credential.strip() else value
        values = [secret]
        if name.lower() == "authorization" and scheme == "OAuth":
            for key, quoted in OAUTH_HEADER_PARAM.findall(credential):
                if key in OAUTH_CREDENTIAL_PARAMS:
                    values += [quoted, urllib.parse.unquote(quoted)]
        for each in values:
            if len(each) >= 4:
                found.update({each, each.replace("/", "\\/")})
    return tuple(sorted(found, key=len, reverse=True))


def access_token(integration: Integration, config: dict) -> str:
    cached = _cached_token(integration, config)
    if cached:
        return cached
    if integration.auth_type == "oauth2_refresh_token":
        return _refreshed_access_token(integration, config)
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
    body = _token_answer(url, form, config)
    return str(body["access_token"]), _expires_in(body)


def _token_answer(url: str, form: dict, config: dict, basic: tuple[str, str] | None = None) -> dict:
    """The token endpoint's JSON answer to a form POST (with HTTP Basic client authentication when
    `basic` is given); AuthError when it refuses or answers without an access_token."""
    timeout = tuple(getattr(settings, "INTEGRATION_HTTP_TIMEOUT", (3.0, 10.0)))
    where = outbound.redact_url(url)
    try:
        with outbound.guarded_session() as session:
            response = session.post(url, data=form, auth=basic, timeout=timeout, allow_redirects=False)
    except outbound.BlockedDestination as exc:
        raise AuthError(f"Token endpoint {where} refused: {exc}", permanent=True) from exc
    except requests.RequestException as exc:
        cause = credentials.scrub_secrets(outbound.scrub(f"{type(exc).__name__}", url), config)
        raise AuthError(f"Token endpoint {where} unreachable: {cause}", permanent=False) from exc
    if response.status_code != 200:
        raise _refusal(response.status_code, response.text, url, config)
    try:
        body = response.json()
        if not body["access_token"]:
            raise KeyError("access_token")
    except (ValueError, KeyError, TypeError) as exc:
        raise AuthError(f"Token endpoint {where} answered without an access_token.", permanent=False) from exc
    return body


def _expires_in(body: dict) -> float | None:
    expires_in = body.get("expires_in")
    return float(expires_in) if isinstance(expires_in, int | float | str) and expires_in != "" else None


# --- OAuth 2.0 user context: a refresh token the token endpoint rotates on each use ---------------


def _refreshed_access_token(integration: Integration, config: dict) -> str:
    """An access token from the refresh-token grant, the rotated refresh token sealed into the
    integration's auth_config in the same transaction, under the row's lock (see the module's
    docstring). `config` is what the caller read; when the stored config differs, another worker
    refreshed since, and its cached access token is used instead of refreshing again."""
    from integrations.models import Integration  # the models import this module

    if integration.pk is None:
        raise AuthError("Save the integration before using its refresh token.", permanent=True)
    with transaction.atomic():
        row = Integration.objects.select_for_update().only("pk", "auth_config_sealed").get(pk=integration.pk)
        try:
            stored = row.auth_config
        except credentials.CredentialError as exc:
            raise AuthError(str(exc), permanent=True) from exc
        if stored != config:
            cached = _cached_token(integration, stored)
            if cached:
                integration.auth_config_sealed = row.auth_config_sealed
                return cached
        missing = missing_keys("oauth2_refresh_token", stored)
        if missing:
            raise AuthError(f"auth_config needs: {', '.join(missing)}.", permanent=True)
        form = {
            "grant_type": "refresh_token",
            "refresh_token": stored["refresh_token"],
            "client_id": stored["client_id"],
        }
        basic = (stored["client_id"], stored["client_secret"]) if stored.get("client_secret") else None
        answer = _token_answer(stored["token_url"], form, stored, basic)
        rotated = answer.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != stored["refresh_token"]:
            stored = {**stored, "refresh_token": rotated}
            row.set_auth_config(stored)
            row.save(update_fields=["auth_config_sealed"])  # the key names are the same
            logger.info("refresh token rotated and stored", extra={"integration": integration.integration_id})
        token = str(answer["access_token"])
        _cache_token(integration, stored, token, _expires_in(answer))
    integration.auth_config_sealed = row.auth_config_sealed
    return token


# --- OAuth 1.0a: every request signed --------------------------------------------------------------


def _oauth1_authorization(config: dict, method: str, url: str, body: bytes | None, content_type: str) -> str:
    """The `Authorization: OAuth ...` header of one request, signed HMAC-SHA1 by oauthlib. A form body's
    parameters are part of the signature; any other body (JSON) is not, as RFC 5849 says."""
    if not method or not url:
        raise AuthError("OAuth 1.0a signs each request: this call gave no method and URL to sign.", permanent=True)
    client = oauth1.Client(
        config["consumer_key"],
        client_secret=config["consumer_secret"],
        resource_owner_key=config["access_token"],
        resource_owner_secret=config["access_token_secret"],
        signature_method=oauth1.SIGNATURE_HMAC_SHA1,
    )
    is_form = content_type.split(";")[0].strip().lower() == FORM_CONTENT_TYPE
    form = body.decode("utf-8") if is_form and body else None
    try:
        _, signed, _ = client.sign(
            url, http_method=method.upper(), body=form, headers={"Content-Type": FORM_CONTENT_TYPE} if form else None
        )
    except (ValueError, TypeError) as exc:  # a body oauthlib cannot read as a form
        raise AuthError(f"The request could not be signed (OAuth 1.0a): {type(exc).__name__}.", permanent=True) from exc
    return signed["Authorization"]


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
