"""Fixtures for integrations: the local receivers, a quick way to make integrations, and the local
services the notification and CRM provider tests register integrations against."""

from __future__ import annotations

import base64

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from config.redis import redis_client
from integrations.models import Integration
from tests.accounts.helpers import person
from tests.integrations.crm_helpers import DV_SECRET, HUBSPOT_TOKEN, SF_SECRET
from tests.integrations.crm_helpers import register as register_crm
from tests.integrations.crm_servers import HubSpotServer, SalesforceServer
from tests.integrations.dynamics_server import DynamicsServer
from tests.integrations.notify_helpers import ACCOUNT_SID, AUTH_TOKEN, BOT_TOKEN, TWILIO_NUMBER, free_port
from tests.integrations.notify_servers import SlackWebAPI, TwilioMessagingAPI
from tests.integrations.receivers import HTTPReceiver, SMTPServer

EXHAUSTED_PAYLOAD = {
    "incident_id": 42,
    "summary": "Disk full on db-1",
    "severity": "critical",
    "state": "triggered",
    "attempts": 5,
    "reason": "nobody pressed 1 after 5 calls",
    "url": "http://127.0.0.1:8000/api/v1/incidents/42",
}


TEST_CREDENTIAL_KEYS = (
    "cred-2:" + base64.b64encode(b"c" * 32).decode() + ",cred-1:" + base64.b64encode(b"d" * 32).decode()
)


@pytest.fixture(autouse=True)
def credential_keys(settings):
    """A key ring of the tests' own: credentials are sealed as in production (DEBUG is off)."""
    settings.INTEGRATIONS_CREDENTIAL_KEYS = TEST_CREDENTIAL_KEYS


@pytest.fixture(autouse=True)
def no_breaker_or_rate_limit_in_the_way(settings):
    """Breakers, rate buckets and cached tokens live in Redis and outlive a test: each test starts
    with none, and with limits high enough that only the tests of those limits meet them."""
    settings.INTEGRATION_BREAKER_FAILURE_THRESHOLD = 1000
    settings.INTEGRATION_RATE_LIMIT_PER_SECOND = 100000.0
    client = redis_client()
    # (which social messages were recorded is remembered too: a redelivery after the log is stored)
    for pattern in (
        "oncall:breaker:integration:*",
        "oncall:integration-rate:*",
        "oncall:integration-token:*",
        "oncall:social-seen:*",
        "oncall:incoming-rate:*",
    ):
        stale = list(client.scan_iter(match=pattern))
        if stale:
            client.delete(*stale)


@pytest.fixture
def receiver():
    with HTTPReceiver() as server:
        yield server


@pytest.fixture
def smtp_server(settings):
    with SMTPServer(refuse=("nobody@example.com",)) as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = server.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        yield server


@pytest.fixture
def fast_retries(settings):
    """Retries fall due at once, so a test can try again without waiting."""
    settings.INTEGRATION_RETRY_BASE_SECONDS = 0.0


# Today's three kinds of notification and what they are in the registry: (type, provider).
KINDS = {
    "webhook": ("webhook", "webhook"),
    "slack": ("notification", "slack_webhook"),
    "email": ("notification", "smtp"),
}


def build_integration(
    name: str = "ops-webhook", *, kind: str = "webhook", target: str = "", secret: str = "", **fields
) -> Integration:
    """An integration as an admin would save it, named the old way (kind, target, secret): the
    integration_id is the name, an email target becomes options["to"], a secret the sealed
    auth_config's signing_secret."""
    type_, provider = KINDS[kind]
    type_ = fields.pop("type", type_)
    config = dict(fields.pop("auth_config", {}) or {})
    integration = Integration(integration_id=name, name=name, type=type_, provider=provider, **fields)
    if provider == "smtp":
        to = [address.strip() for address in target.split(",") if address.strip()]
        integration.options = {**(integration.options or {}), "to": to}
    else:
        integration.endpoint_url = target
    if secret:
        config["signing_secret"] = secret
    integration.set_auth_config(config)
    integration.full_clean()
    integration.save()
    return integration


@pytest.fixture
def make_integration(db):
    return build_integration


# --- the notification providers' local services (tests/integrations/notify_helpers.py registers them) --


@pytest.fixture
def admin_api(settings) -> APIClient:
    settings.MFA_REQUIRED_ROLES = []
    client = APIClient()
    client.force_authenticate(person("notify-admin", Role.ADMIN))
    return client


@pytest.fixture(scope="module")
def moto_url():
    """moto's server: SNS and SES on a loopback port, which boto3 talks to as to AWS."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url, monkeypatch) -> str:
    """The default credential chain finds keys in the environment (auth_type "none" uses it)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_url


@pytest.fixture
def twilio():
    with TwilioMessagingAPI(ACCOUNT_SID, AUTH_TOKEN, numbers=(TWILIO_NUMBER,)) as server:
        yield server


@pytest.fixture
def slack():
    with SlackWebAPI(
        BOT_TOKEN, channels={"C0OPS00001": "ops", "C0SALES001": "sales"}, joined=("C0OPS00001",)
    ) as server:
        yield server


# --- the local CRMs, each registered as an integration (tests/integrations/crm_helpers.py) -----------


@pytest.fixture
def sender(make_api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('integrations:write', name='contact-center')}")
    return client


@pytest.fixture
def salesforce(db):
    with SalesforceServer(client_id="sf-consumer", client_secret=SF_SECRET) as server:
        register_crm(
            "crm_salesforce",
            "salesforce",
            endpoint_url=server.url,
            auth_type="oauth2_client_credentials",
            auth_config={
                "client_id": "sf-consumer",
                "client_secret": SF_SECRET,
                "token_url": f"{server.url}{server.token_path}",
            },
        )
        yield server


@pytest.fixture
def hubspot(db):
    with HubSpotServer(token=HUBSPOT_TOKEN) as server:
        register_crm(
            "crm_hubspot", "hubspot", endpoint_url=server.url, auth_type="bearer", auth_config={"token": HUBSPOT_TOKEN}
        )
        yield server


@pytest.fixture
def dynamics(db):
    with DynamicsServer(client_id="dv-app", client_secret=DV_SECRET) as server:
        register_crm(
            "crm_dynamics",
            "dynamics",
            endpoint_url=server.url,
            auth_type="oauth2_client_credentials",
            auth_config={
                "client_id": "dv-app",
                "client_secret": DV_SECRET,
                "token_url": server.token_url,
                "scope": f"{server.url}/.default",
            },
        )
        yield server
