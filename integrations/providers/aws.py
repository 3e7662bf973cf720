"""What the AWS providers (SNS, SES) share: a boto3 client per configuration whose HTTP goes through our
SSRF guard, the credentials, the region, and one judgement of AWS errors.

Credentials, by auth_type:
- "none": boto3's default chain (AWS_* variables, the shared config files, an ECS task role, an EC2
  instance role). Nothing secret is stored with the integration.
- "basic": auth_config {"username": access key ID, "password": secret access key, "session_token"?},
  sealed like every credential. AWS signs requests with a key pair, not a password, but the pair fits
  basic's two keys (the key ID is shown, as AWS's own console shows it; the secret is masked).

Every API request of the client is sent by `_GuardedSender` (botocore's "before-send" hook: a handler
that returns a response replaces botocore's own HTTP), through config.outbound's guarded session: the
endpoint's host is resolved, every address checked, and the socket connects to a checked address, so
an endpoint_url aimed inside our network is refused when it is saved and again when it is used. Only the
credential chain's own lookups (the instance metadata service, for auth_type "none") use botocore's HTTP.

Retries: none in botocore (total_max_attempts=1); the outbox retries with backoff, and a sync call must
answer within its timeout.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings

from config import outbound
from integrations import credentials
from integrations.providers import http
from integrations.providers.base import CallContext, ProviderError

if TYPE_CHECKING:
    from integrations.models import Integration

DEFAULT_REGION = "ap-northeast-2"
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
AUTH_TYPES = frozenset({"none", "basic"})
RESPONSE_MAX_BYTES = 1024 * 1024
CLIENT_CACHE_SIZE = 64
# Codes AWS uses for "too much, too fast" and for its own trouble: another try later can succeed.
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "Throttled",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "KMSThrottling",
        "KMSThrottlingException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServiceError",
        "RequestTimeout",
        "RequestTimeoutException",
        # temporary credentials that ran out: the chain fetches new ones for the next call
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
    }
)

_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()


def check_integration(integration: Integration) -> dict[str, str]:
    """Field errors common to the AWS providers: the region (endpoint_url, when given, is checked by
    Provider.check_integration)."""
    errors: dict[str, str] = {}
    region = (integration.options or {}).get("region") if isinstance(integration.options, dict) else None
    if region is not None and not (isinstance(region, str) and REGION.match(region)):
        errors["options"] = 'options.region must be an AWS region such as "ap-northeast-2".'
    return errors


def region_of(integration: Integration) -> str:
    """options.region, else the settings' INTEGRATION_AWS_REGION, else AWS_REGION / AWS_DEFAULT_REGION."""
    return (
        (integration.options or {}).get("region")
        or settings.INTEGRATION_AWS_REGION
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION
    )


def client_for(integration: Integration, service: str, context: CallContext) -> Any:
    """A boto3 client for `service`, shared by calls with the same configuration (its pool is reused)."""
    config = http.config_of(integration)
    keys = _keys(integration, config)
    timeout = context.timeout or http.default_timeout()
    region = region_of(integration)
    endpoint = integration.endpoint_url or None
    fingerprint = hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()
    cache_key = (service, region, endpoint, fingerprint, tuple(timeout))
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            if len(_clients) >= CLIENT_CACHE_SIZE:
                _clients.clear()  # configurations changed many times: start over rather than grow
            client = _clients[cache_key] = _build(service, region, endpoint, keys, timeout)
        return client


def _keys(integration: Integration, config: dict) -> dict[str, str]:
    if integration.auth_type == "basic":
        keys = {"aws_access_key_id": config["username"], "aws_secret_access_key": config["password"]}
        if config.get("session_token"):
            keys["aws_session_token"] = config["session_token"]
        return keys
    return {}


def _build(service: str, region: str, endpoint: str | None, keys: dict, timeout: tuple[float, float]) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(**keys)
    client = session.client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        config=Config(
            connect_timeout=timeout[0],
            read_timeout=timeout[1],
            retries={"total_max_attempts": 1, "mode": "standard"},  # the first try only: the outbox retries
        ),
    )
    client.meta.events.register("before-send", _GuardedSender(timeout))
    return client


class _GuardedSender:
    """Sends botocore's signed request through the SSRF guard with our timeouts; returns its answer."""

    def __init__(self, timeout: tuple[float, float]):
        self.timeout = timeout
        self.session = outbound.guarded_session()
        self.session.headers.clear()  # botocore's headers only (they are signed); no gzip to undo

    def __call__(self, request, **kwargs):
        from botocore.awsrequest import AWSResponse

        response = self.session.request(
            request.method,
            request.url,
            data=request.body,
            headers=dict(request.headers.items()),
            timeout=self.timeout,
            allow_redirects=False,
            stream=True,
        )
        with response:
            body = response.raw.read(RESPONSE_MAX_BYTES, decode_content=True)
            return AWSResponse(request.url, response.status_code, response.raw.headers, _Buffered(body))


class _Buffered:
    """The read body, in the shape botocore reads an answer from (`stream()`)."""

    def __init__(self, data: bytes):
        self.data = data

    def stream(self, *args, **kwargs):
        yield self.data


def call(integration: Integration, service_name: str, operation: str, send) -> Any:
    """Runs `send()` (one boto3 call) and turns every failure into a ProviderError, scrubbed."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError

    config = http.config_of(integration)
    where = outbound.redact_url(integration.endpoint_url) if integration.endpoint_url else f"AWS {service_name}"
    try:
        return send()
    except ClientError as exc:
        raise client_error(exc, service_name, operation, config) from exc
    except outbound.BlockedDestination as exc:
        raise ProviderError(f"Not sent to {where}: {exc}", permanent=True) from exc
    except requests.Timeout as exc:
        raise ProviderError(f"{where} timed out: {type(exc).__name__}", permanent=False, timed_out=True) from exc
    except requests.ConnectionError as exc:
        cause = _scrubbed(f"{type(_innermost(exc)).__name__}: {_innermost(exc)}", integration, config)
        raise ProviderError(f"connection failed to {where}: {cause}", permanent=False) from exc
    except NoCredentialsError as exc:
        raise ProviderError(
            f"No AWS credentials for {service_name}: give the worker a role (or AWS_* variables), "
            'or use auth_type "basic" with the access key ID as username and the secret key as password.',
            permanent=True,
        ) from exc
    except ParamValidationError as exc:
        raise ProviderError(
            _scrubbed(f"AWS {service_name} {operation}: {exc}", integration, config), permanent=True
        ) from exc
    except BotoCoreError as exc:  # botocore's own transport and parsing troubles: worth another try
        raise ProviderError(
            _scrubbed(f"AWS {service_name} {operation} failed: {type(exc).__name__}: {exc}", integration, config),
            permanent=False,
        ) from exc


def client_error(exc, service_name: str, operation: str, config: dict) -> ProviderError:
    """An AWS error answer: throttling, 5xx and AWS's own trouble are retryable, the rest permanent."""
    error = exc.response.get("Error") or {}
    code = str(error.get("Code") or "Unknown")
    message = http.one_line(str(error.get("Message") or error.get("message") or ""))
    status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    retryable = code in RETRYABLE_CODES or (isinstance(status, int) and (status >= 500 or status == 429))
    reason = f"AWS {service_name} refused {operation} (HTTP {status}, {code})" + (f": {message}" if message else "")
    return ProviderError(
        credentials.scrub_secrets(outbound.scrub(reason), config),
        permanent=not retryable,
        http_status=status if isinstance(status, int) else None,
    )


def _scrubbed(text: str, integration: Integration, config: dict) -> str:
    return credentials.scrub_secrets(outbound.scrub(text, integration.endpoint_url or ""), config)


def _innermost(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        following = getattr(exc, "reason", None)
        if not isinstance(following, BaseException):
            following = exc.__cause__ or exc.__context__
        if following is None:
            break
        exc = following
    return exc
