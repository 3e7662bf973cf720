"""What every notification provider (Twilio SMS, AWS SNS and SES, Slack's Web API) shares, each
against its local server: bad input is a 400 naming the field and sends nothing, a silent service is a
504 within our timeout, an integration that cannot work is refused when saved, the SDKs connect only
through our SSRF guard, and no secret is in any answer of the API."""

from __future__ import annotations

import base64

import pytest

from integrations.models import OutboundMessage
from tests.integrations.notify_helpers import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    ON_CALL_PHONE,
    REGION,
    SENDER,
    assert_no_secret,
    moto_recorded,
    register,
    register_working,
    send,
    ses,
    slack_api,
    sns,
    twilio_sms,
)
from tests.integrations.notify_servers import SilentServer

pytestmark = pytest.mark.django_db


# --- What every provider shares -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "payload", "field"),
    [
        ("twilio_sms", {"method": "send_sms", "to": "010-1234", "text": "x"}, "payload.to"),
        ("twilio_sms", {"method": "send_sms", "to": ON_CALL_PHONE, "text": "x" * 1601}, "payload.text"),
        ("sns", {"method": "send_sms", "to": "+1", "text": "x"}, "payload.to"),
        ("ses", {"method": "send_email", "to": "not-an-address", "subject": "s", "text": "t"}, "payload.to"),
        ("ses", {"method": "send_email", "to": "kim@example.com", "text": "t"}, "payload.subject"),
        ("slack_api", {"method": "post_message", "blocks": []}, "payload.text"),
    ],
)
def test_a_bad_payload_is_a_400_naming_the_field_and_sends_nothing(
    admin_api, system_client, twilio, slack, aws, provider, payload, field
):
    integration_id = register_working(provider, admin_api, twilio, slack, aws)

    response = send(system_client, integration_id, payload)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert twilio.requests == [] and slack.requests == []
    assert not OutboundMessage.objects.exists()


@pytest.mark.parametrize("provider", ["twilio_sms", "sns", "ses", "slack_api"])
def test_a_service_that_never_answers_is_a_504_within_our_timeout(admin_api, system_client, settings, aws, provider):
    # given a provider whose service takes the connection and never answers
    settings.INTEGRATION_SYNC_TIMEOUT = (0.5, 0.5)
    with SilentServer() as silent:
        integration_id = register_working(provider, admin_api, silent, silent, silent.url)
        payload = {
            "twilio_sms": {"method": "send_sms", "to": ON_CALL_PHONE, "text": "x"},
            "sns": {"method": "send_sms", "text": "x"},
            "ses": {"method": "send_email", "to": "kim@example.com", "subject": "s", "text": "t"},
            "slack_api": {"method": "post_message", "text": "x"},
        }[provider]

        # when a message is sent now
        response = send(system_client, integration_id, payload)

    # then the SDK gave up at our read timeout, and the caller hears it was a timeout
    assert response.status_code == 504, response.content
    assert response.json()["error"]["code"] == "provider_timeout"


def test_an_unknown_method_lists_the_providers_methods(admin_api, system_client, twilio):
    twilio_sms(admin_api, twilio)

    response = send(system_client, "sms", {"method": "send_email", "to": "a@example.com"})

    assert response.status_code == 400
    assert "its methods are: send_sms" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("provider", "fields", "field", "says"),
    [
        ("twilio_sms", {"auth_type": "basic", "auth_config": {"username": ACCOUNT_SID}}, "auth_config", "password"),
        ("twilio_sms", {"auth_type": "bearer", "auth_config": {"token": "t"}}, "auth_type", "basic"),
        ("twilio_sms", {"auth_type": "basic", "options": {"to": ON_CALL_PHONE}}, "options", "options.from"),
        ("sns", {"options": {"region": "seoul"}}, "options", "options.region"),
        ("sns", {"options": {}}, "options", "options.topic_arn"),
        ("ses", {"options": {"to": ["ops@example.com"]}}, "options", "options.from"),
        ("ses", {"options": {"from": SENDER}}, "options", "at least one email address"),
        ("slack_api", {"auth_type": "bearer", "auth_config": {"token": "t"}}, "options", "options.channel"),
        ("slack_api", {"auth_type": "none"}, "auth_type", "bearer"),
    ],
)
def test_an_integration_that_cannot_work_is_refused_naming_the_field(admin_api, provider, fields, field, says):
    auth = {"auth_config": {"username": ACCOUNT_SID, "password": AUTH_TOKEN}} if provider == "twilio_sms" else {}

    response = register(admin_api, "broken", provider, **{**auth, **fields})

    assert response.status_code == 400, response.content
    assert says in response.json()["error"]["fields"][field]
    assert_no_secret(response.content.decode())


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest", "http://10.0.0.1/api"])
@pytest.mark.parametrize("provider", ["twilio_sms", "sns", "ses", "slack_api"])
def test_an_endpoint_inside_our_network_is_refused_when_saved(admin_api, settings, provider, target):
    settings.INTEGRATIONS_ALLOW_PRIVATE_TARGETS = False

    response = register(admin_api, "inside", provider, endpoint_url=target)

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["endpoint_url"].startswith("Refused: ")


def test_the_sdks_connect_only_through_our_guard(admin_api, system_client, settings, twilio, aws):
    # given integrations saved while loopback targets were allowed (a local test receiver) ...
    assert twilio_sms(admin_api, twilio).status_code == 201
    assert sns(admin_api, aws, to=ON_CALL_PHONE).status_code == 201
    before = len(moto_recorded(aws, "sns", "SMS"))
    # ... when the guard is back on, the twilio SDK and boto3 both meet it at connect time
    settings.INTEGRATIONS_ALLOW_PRIVATE_TARGETS = False

    answers = [
        send(system_client, "sms", {"method": "send_sms", "to": ON_CALL_PHONE, "text": "x"}),
        send(system_client, "aws_sms", {"method": "send_sms", "text": "x"}),
    ]

    for answer in answers:
        assert answer.status_code == 502
        assert "Refused: 127.0.0.1 is a loopback address" in answer.json()["error"]["message"]
    assert twilio.requests == []
    assert len(moto_recorded(aws, "sns", "SMS")) == before


def test_no_secret_in_any_answer_of_the_api(admin_api, system_client, twilio, slack, aws):
    # given all four providers registered with their secrets, and a failing message for each
    twilio_sms(admin_api, twilio)
    sns(admin_api, aws, topic_arn=f"arn:aws:sns:{REGION}:123456789012:missing")
    ses(admin_api, aws, **{"from": "unverified@example.net"})
    slack_api(admin_api, slack)
    twilio.fail_next("server_error")
    failures = [
        send(system_client, "sms", {"method": "send_sms", "to": ON_CALL_PHONE, "text": "x"}),
        send(system_client, "aws_sms", {"method": "send_sms", "text": "x"}),
        send(system_client, "aws_email", {"method": "send_email", "to": "a@example.com", "subject": "s", "text": "t"}),
        send(system_client, "slack_bot", {"method": "post_message", "channel": "#nowhere", "text": "x"}),
    ]
    assert [failure.status_code for failure in failures] == [502, 502, 502, 502]

    # when everything the API shows is read back
    pages = [admin_api.get("/api/v1/integrations")]
    for integration_id in ("sms", "aws_sms", "aws_email", "slack_bot"):
        pages.append(admin_api.get(f"/api/v1/integrations/{integration_id}"))
        for row in system_client.get(f"/api/v1/integrations/{integration_id}/messages").json()["results"]:
            pages.append(system_client.get(f"/api/v1/integrations/{integration_id}/messages/{row['message_id']}"))

    # then no secret is in any of it, while the errors still say what went wrong
    assert_no_secret(*(page.content.decode() for page in pages + failures))
    assert "error 20500" in failures[0].json()["error"]["message"]


def test_basic_credentials_echoed_by_a_gateway_are_in_no_answer(admin_api, system_client, twilio):
    # given a gateway before Twilio that repeats the request's Authorization header in its error
    assert twilio_sms(admin_api, twilio).status_code == 201
    twilio.fail_next("echo_credentials")

    # when a message is sent
    response = send(system_client, "sms", {"method": "send_sms", "to": ON_CALL_PHONE, "text": "x"})

    # then the error says what came back, with the credentials (base64 of SID:token) masked
    basic = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert twilio.requests[0].headers["Authorization"] == f"Basic {basic}"
    assert response.status_code == 502
    assert "(sent Authorization: Basic ••••)" in response.json()["error"]["message"]
    message_id = response.json()["error"]["fields"]["message_id"]
    detail = system_client.get(f"/api/v1/integrations/sms/messages/{message_id}")
    assert detail.status_code == 200
    for text in (response.content.decode(), detail.content.decode()):
        assert basic not in text
