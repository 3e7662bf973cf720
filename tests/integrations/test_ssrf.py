"""The SSRF guard: integration targets may not reach the inside of our network.

With INTEGRATIONS_ALLOW_PRIVATE_TARGETS off (the default outside tests), a target on loopback, a
private range, link-local (the cloud metadata service) or a reserved address is refused when it is
saved and again when a delivery connects, after DNS resolution. The only servers a test can run are on
loopback, so "nothing was sent" is shown by a real receiver on 127.0.0.1 that hears no request.
"""

from __future__ import annotations

import ipaddress

import pytest
from django.core.exceptions import ValidationError

from config.outbound import refusal_reason
from integrations.models import Integration, MessageStatus
from integrations.services import deliver, notify
from tests.integrations.conftest import EXHAUSTED_PAYLOAD, KINDS

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_targets_refused(settings):
    settings.INTEGRATIONS_ALLOW_PRIVATE_TARGETS = False
    settings.INTEGRATION_HTTP_TIMEOUT = (0.5, 0.5)  # so an unguarded run fails fast, not after 3 s


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.10", "a private address"),
        ("100.64.0.1", "a private address"),
        ("fd00:ec2::254", "a private address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("169.254.169.254", "a link-local address (this includes the cloud metadata service)"),
        ("fe80::1", "a link-local address (this includes the cloud metadata service)"),
        ("64:ff9b::a9fe:a9fe", "a link-local address (this includes the cloud metadata service)"),
        ("2002:a9fe:a9fe::1", "a link-local address (this includes the cloud metadata service)"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),  # noqa: S104 (an address to refuse, not to bind)
        ("::", "an unspecified address"),
        ("::7f00:1", "a reserved address"),
    ],
)
def test_inside_addresses_are_refused_with_the_reason(address, why):
    assert refusal_reason(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert refusal_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("target", "named"),
    [
        ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
        ("http://10.0.0.1/hook", "10.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::1]:8080/hook", "::1 is a loopback address"),
        ("http://localhost:8080/hook", "localhost (127.0.0.1) is a loopback address"),
    ],
)
def test_saving_an_inside_target_is_refused(private_targets_refused, make_integration, target, named):
    with pytest.raises(ValidationError) as refused:
        make_integration(target=target)

    [error] = refused.value.message_dict["endpoint_url"]
    assert error.startswith(f"Refused: {named}")
    assert "INTEGRATIONS_ALLOW_PRIVATE_TARGETS" in error
    assert not Integration.objects.exists()


def test_a_public_target_can_be_saved(private_targets_refused, make_integration):
    integration = make_integration(target="https://93.184.215.14/hooks/oncall")

    assert integration.pk is not None


def test_the_admin_shows_why_an_inside_target_is_refused(private_targets_refused, admin_client):
    response = admin_client.post(
        "/admin/integrations/integration/add/",
        {
            "integration_id": "metadata",
            "name": "metadata",
            "type": "webhook",
            "provider": "webhook",
            "auth_type": "none",
            "options": "{}",
            "endpoint_url": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "events": "",
            "max_attempts": "6",
        },
    )

    assert response.status_code == 200
    assert "Refused: 169.254.169.254 is a link-local address" in response.content.decode()
    assert not Integration.objects.exists()


def _stored_target(target: str, kind: str = "webhook") -> Integration:
    """A target saved before the guard existed, or whose name resolves elsewhere since."""
    type_, provider = KINDS[kind]
    return Integration.objects.create(
        integration_id="legacy", name="legacy", type=type_, provider=provider, endpoint_url=target, events=[]
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_delivery_to_loopback_is_refused_and_nothing_is_sent(private_targets_refused, receiver, host):
    # given an integration whose target reaches a real receiver on this machine
    _stored_target(receiver.url.replace("127.0.0.1", host) + "/hook")
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when the message is delivered
    message = deliver(message.pk)

    # then the receiver heard nothing, and the refusal is recorded once, for good
    assert receiver.requests == []
    assert message.status == MessageStatus.FAILED
    assert message.last_error.startswith(f"Permanent failure: Not sent to http://{host}:")
    assert "is a loopback address" in message.last_error
    [attempt] = message.delivery_attempts.all()
    assert not attempt.ok
    assert attempt.http_status is None
    assert "is a loopback address" in attempt.error


@pytest.mark.parametrize(
    ("target", "named"),
    [
        ("http://10.0.0.1/hook", "10.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::1]:9/hook", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]:9/hook", "::ffff:127.0.0.1 is a loopback address"),
    ],
)
def test_a_delivery_to_an_inside_address_is_refused_before_connecting(private_targets_refused, target, named):
    _stored_target(target)
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    message = deliver(message.pk)

    assert message.status == MessageStatus.FAILED
    assert message.attempts == 1
    [attempt] = message.delivery_attempts.all()
    assert f"Refused: {named}" in attempt.error


def test_a_slack_target_is_guarded_too(private_targets_refused, receiver):
    _stored_target(f"{receiver.url}/services/T0/B0/secret", kind="slack")
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    message = deliver(message.pk)

    assert receiver.requests == []
    assert message.status == MessageStatus.FAILED
    assert "is a loopback address" in message.last_error


def test_a_redirect_is_not_followed_and_its_location_is_shown_without_its_path(receiver, make_integration):
    # given (private targets allowed, as for a receiver inside the network) a receiver that answers
    # with a redirect to the cloud metadata service
    metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/role"
    receiver.plan((302, {"Location": metadata}, b""))
    make_integration(target=f"{receiver.url}/hook")
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")

    # when the message is delivered
    message = deliver(message.pk)

    # then the redirect is a permanent failure naming where it pointed, and nothing else was requested
    assert len(receiver.requests) == 1
    assert message.status == MessageStatus.FAILED
    assert message.last_error == (
        "Permanent failure: HTTP 302 Found (redirect to http://169.254.169.254/… not followed; fix the target URL)"
    )
