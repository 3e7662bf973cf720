"""What the notification provider tests share: the credentials they register (and must never see again),
registering each provider through the admin API against its local server, and sending a message.
The fixtures that start those servers (twilio, slack, moto's aws, admin_api) are in conftest.py."""

from __future__ import annotations

import socket

import boto3
import requests

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "twilio-auth-token-never-shown-71"
BOT_TOKEN = "xoxb-bot-token-never-shown-2f9"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "aws-secret-key-never-shown/K7MDENG"
TWILIO_NUMBER = "+15017122661"
ON_CALL_PHONE = "+821012345678"
SENDER = "oncall@example.com"
REGION = "ap-northeast-2"
SECRETS = (AUTH_TOKEN, BOT_TOKEN, AWS_SECRET)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def aws_admin(moto_url: str, service: str):
    """boto3 as an AWS administrator would use it, to prepare the account (a topic, a verified sender)."""
    return boto3.client(service, region_name=REGION, endpoint_url=moto_url)


def moto_recorded(moto_url: str, service: str, model: str) -> list[dict]:
    """What moto's server keeps of a service (its introspection endpoint)."""
    return requests.get(f"{moto_url}/moto-api/data.json", timeout=5).json()[service][model]


def register(admin_api, integration_id: str, provider: str, **fields):
    body = {"integration_id": integration_id, "name": integration_id, "type": "notification", "provider": provider}
    return admin_api.post("/api/v1/integrations", {**body, **fields}, format="json")


def twilio_sms(admin_api, twilio, **options):
    return register(
        admin_api,
        "sms",
        "twilio_sms",
        endpoint_url=twilio.url,
        auth_type="basic",
        auth_config={"username": ACCOUNT_SID, "password": AUTH_TOKEN},
        options={"from": TWILIO_NUMBER, "to": ON_CALL_PHONE, **options},
    )


def sns(admin_api, moto_url, **options):
    return register(
        admin_api,
        "aws_sms",
        "sns",
        endpoint_url=moto_url,
        auth_type="basic",
        auth_config={"username": AWS_KEY_ID, "password": AWS_SECRET},
        options={"region": REGION, **options},
    )


def ses(admin_api, moto_url, **options):
    return register(
        admin_api,
        "aws_email",
        "ses",
        endpoint_url=moto_url,
        options={"from": SENDER, "to": ["ops@example.com"], "region": REGION, **options},
    )


def slack_api(admin_api, slack, **options):
    return register(
        admin_api,
        "slack_bot",
        "slack_api",
        endpoint_url=f"{slack.url}/api",
        auth_type="bearer",
        auth_config={"token": BOT_TOKEN},
        options={"channel": "C0OPS00001", **options},
    )


def register_working(provider: str, admin_api, twilio, slack, moto_url: str) -> str:
    """One working integration of `provider`; its integration_id."""
    if provider == "twilio_sms":
        response = twilio_sms(admin_api, twilio)
    elif provider == "sns":
        response = sns(admin_api, moto_url, to=ON_CALL_PHONE)
    elif provider == "ses":
        response = ses(admin_api, moto_url)
    else:
        response = slack_api(admin_api, slack)
    assert response.status_code == 201, response.content
    return response.json()["integration_id"]


def send(client, integration_id: str, payload: dict, message_type: str = "sync"):
    body = {"message_type": message_type, "payload": payload}
    return client.post(f"/api/v1/integrations/{integration_id}/messages", body, format="json")


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
