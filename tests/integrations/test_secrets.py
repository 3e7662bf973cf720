"""Integration secrets stay secret: a Slack webhook URL's path (its credential), a webhook URL's token
and the signing secret never reach a stored error, a log record or the admin's HTML."""

from __future__ import annotations

import json
import logging

import pytest

from integrations.models import Integration, MessageStatus
from integrations.services import deliver, notify
from tests.embedded_services import free_port
from tests.integrations.conftest import EXHAUSTED_PAYLOAD, build_integration

pytestmark = pytest.mark.django_db

SLACK_SECRET_PATH = "/services/T0123ABCD/B0456EFGH/q8Zr2VxSecretSlackPath"
SIGNING_SECRET = "whsec-7f3a9b-never-shown"


def _everything_logged(caplog) -> str:
    """Every record's message and every field a JSON log line would carry."""
    return "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records)


def test_a_slack_url_on_a_host_that_refuses_leaks_nowhere(make_integration, caplog):
    # given a Slack integration whose host refuses connections (nothing listens on the port)
    caplog.set_level(logging.INFO)
    make_integration("ops-slack", kind="slack", target=f"http://127.0.0.1:{free_port()}{SLACK_SECRET_PATH}")
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when a delivery fails
    message = deliver(message.pk)

    # then the admin reads where and why, but not the secret path, in the message and the attempt
    assert message.status == MessageStatus.PENDING
    assert message.last_error.startswith("connection failed to http://127.0.0.1:")
    assert "/…: " in message.last_error
    assert "ConnectionRefusedError" in message.last_error
    [attempt] = message.delivery_attempts.all()
    for text in (message.last_error, attempt.error, _everything_logged(caplog)):
        assert "q8Zr2VxSecretSlackPath" not in text
        assert "/services/" not in text
    assert "integration delivery failed; retrying" in _everything_logged(caplog)


def test_a_receiver_that_echoes_the_url_back_is_scrubbed_and_cut_short(receiver, make_integration):
    # given a receiver whose error page repeats the URL it was called on, and a lot more
    echo = f"invalid_token for {receiver.url}{SLACK_SECRET_PATH} \x1b[31m" + "x" * 2000
    receiver.plan((403, {}, echo.encode()))
    make_integration("ops-slack", kind="slack", target=f"{receiver.url}{SLACK_SECRET_PATH}")
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    message = deliver(message.pk)

    # then the excerpt kept for the admin is one short printable line without the secret
    assert message.status == MessageStatus.FAILED
    [attempt] = message.delivery_attempts.all()
    assert attempt.error.startswith(f"HTTP 403 Forbidden: invalid_token for {receiver.url}/… [31mxxx")
    assert "q8Zr2VxSecretSlackPath" not in attempt.error
    assert "\x1b" not in attempt.error
    assert len(attempt.error) < 200


def test_a_webhook_url_with_a_token_in_its_query_leaks_nowhere(make_integration, caplog):
    caplog.set_level(logging.INFO)
    make_integration(target=f"http://127.0.0.1:{free_port()}/hook?token=tok-9d8c7b6a5")
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    message = deliver(message.pk)

    [attempt] = message.delivery_attempts.all()
    for text in (message.last_error, attempt.error, _everything_logged(caplog)):
        assert "tok-9d8c7b6a5" not in text


def test_an_oauth2_token_a_receiver_echoes_in_its_answer_is_kept_nowhere(receiver, make_integration, caplog):
    # given a webhook authenticated with OAuth2 client credentials, whose receiver issues the token and
    # then answers the delivery by repeating the Authorization header it got
    caplog.set_level(logging.DEBUG)
    token = "at-5c1e-fetched-never-shown"
    json_type = {"Content-Type": "application/json"}
    receiver.plan(
        (200, json_type, json.dumps({"access_token": token, "expires_in": 3600}).encode()),
        (200, json_type, json.dumps({"accepted": True, "seen_authorization": f"Bearer {token}"}).encode()),
    )
    make_integration(
        target=f"{receiver.url}/hook",
        auth_type="oauth2_client_credentials",
        auth_config={"token_url": f"{receiver.url}/token", "client_id": "oncall", "client_secret": "cs-never-shown"},
    )
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when it is delivered
    message = deliver(message.pk)

    # then the delivery carried the token, and the answer kept on the attempt shows it masked
    assert message.status == MessageStatus.DELIVERED, message.last_error
    assert receiver.requests[1].headers["Authorization"] == f"Bearer {token}"
    [attempt] = message.delivery_attempts.all()
    assert attempt.excerpt == '{"accepted":true,"seen_authorization":"Bearer ••••"}'
    assert token not in _everything_logged(caplog)


@pytest.fixture
def slack_and_signed_webhook():
    slack = build_integration("ops-slack", kind="slack", target=f"https://hooks.slack.com{SLACK_SECRET_PATH}")
    webhook = build_integration(
        "ops-webhook", target="https://hooks.example.com/oncall?key=key-5e4d3c2b", secret=SIGNING_SECRET
    )
    return slack, webhook


def test_the_admin_never_renders_a_secret(admin_client, slack_and_signed_webhook):
    slack, webhook = slack_and_signed_webhook

    pages = {
        "list": admin_client.get("/admin/integrations/integration/").content.decode(),
        "slack": admin_client.get(f"/admin/integrations/integration/{slack.pk}/change/").content.decode(),
        "webhook": admin_client.get(f"/admin/integrations/integration/{webhook.pk}/change/").content.decode(),
    }

    for page in pages.values():
        for secret in ("q8Zr2VxSecretSlackPath", "/services/T0123ABCD", "key-5e4d3c2b", SIGNING_SECRET):
            assert secret not in page
    # and the admin still sees where each one goes, and that a secret is set
    assert "https://hooks.slack.com/…" in pages["list"]
    assert "Stored: https://hooks.slack.com/… (hidden). Leave blank to keep it" in pages["slack"]
    assert "Stored: https://hooks.example.com/… (hidden)" in pages["webhook"]
    assert "A secret is set; leave blank to keep it." in pages["webhook"]


def _change(admin_client, integration: Integration, **fields) -> None:
    data = {
        "integration_id": integration.integration_id,
        "name": integration.name,
        "type": integration.type,
        "provider": integration.provider,
        "auth_type": integration.auth_type,
        "options": json.dumps(integration.options),
        "endpoint_url": "",
        "signing_secret": "",
        "events": "",
        "active": "on",
        "max_attempts": "6",
        **fields,
    }
    response = admin_client.post(f"/admin/integrations/integration/{integration.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]


def test_saving_with_the_secret_fields_blank_keeps_them(admin_client, slack_and_signed_webhook):
    slack, webhook = slack_and_signed_webhook

    _change(admin_client, slack, max_attempts="3")
    _change(admin_client, webhook, events="incident.exhausted")

    slack.refresh_from_db()
    webhook.refresh_from_db()
    assert (slack.endpoint_url, slack.max_attempts) == (f"https://hooks.slack.com{SLACK_SECRET_PATH}", 3)
    assert webhook.endpoint_url == "https://hooks.example.com/oncall?key=key-5e4d3c2b"
    assert webhook.auth_config == {"signing_secret": SIGNING_SECRET}
    assert webhook.events == ["incident.exhausted"]


def test_an_admin_replaces_the_url_and_removes_the_secret(admin_client, slack_and_signed_webhook):
    _, webhook = slack_and_signed_webhook

    _change(admin_client, webhook, endpoint_url="https://hooks.example.com/v2", clear_signing_secret="on")

    webhook.refresh_from_db()
    assert (webhook.endpoint_url, webhook.auth_config) == ("https://hooks.example.com/v2", {})


def test_changing_the_provider_needs_its_own_settings(admin_client, slack_and_signed_webhook):
    slack, _ = slack_and_signed_webhook

    response = admin_client.post(
        f"/admin/integrations/integration/{slack.pk}/change/",
        {
            "integration_id": slack.integration_id,
            "name": slack.name,
            "type": "notification",
            "provider": "smtp",
            "auth_type": "none",
            "options": "{}",
            "endpoint_url": "",
            "events": "",
            "max_attempts": "6",
        },
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Enter at least one email address." in page
    assert "q8Zr2VxSecretSlackPath" not in page
