"""Who may move money back: a Toss cancel through the messages API, walked role by role and key by key,
signed in the way people and systems really are (a JWT from the login route, an API key), and the
audit trail each refund leaves."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditAction, AuditEvent, Role
from integrations.models import OutboundMessage
from tests.accounts.helpers import person, signed_in
from tests.integrations.conftest import build_integration
from tests.integrations.test_toss import SECRET_KEY, toss_integration
from tests.integrations.toss_server import TossServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def toss():
    with TossServer(SECRET_KEY) as server:
        yield server


@pytest.fixture
def shop(toss, settings):
    # MFA is walked in tests/accounts; here every role signs in with a password alone
    settings.MFA_REQUIRED_ROLES = []
    return toss_integration(toss)


def key_client(make_api_key, *scopes: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key(*scopes, name='contact-center')}")
    return client


def as_role(role: str) -> APIClient:
    person(f"kim-{role.lower()}", role)
    return signed_in(f"kim-{role.lower()}")


def refund(client: APIClient, payment_key: str, amount: int = 1000, integration_id: str = "pay_toss"):
    payload = {
        "method": "cancel_payment",
        "payment_key": payment_key,
        "cancel_reason": "고객 요청",
        "cancel_amount": amount,
    }
    return client.post(
        f"/api/v1/integrations/{integration_id}/messages", {"message_type": "sync", "payload": payload}, format="json"
    )


@pytest.mark.parametrize(
    ("caller", "allowed"),
    [("anonymous", False), (Role.VIEWER, False), (Role.AGENT, False), (Role.SUPERVISOR, True), (Role.ADMIN, True)],
)
def test_the_refund_role_walk(toss, shop, caller, allowed):
    # given a paid order of 10,000 won
    payment_key = toss.paid("order-20240611-0100", 10000)
    client = APIClient() if caller == "anonymous" else as_role(caller)

    # when the caller refunds 1,000 won of it
    response = refund(client, payment_key)

    # then only a supervisor or above gets it done; nobody else reaches Toss or leaves a message
    if allowed:
        assert response.status_code == 200, response.content
        assert response.json()["result"]["balanceAmount"] == 9000
        assert len(toss.seen("POST", "/cancel")) == 1
    else:
        assert response.status_code == (401 if caller == "anonymous" else 403)
        assert toss.requests == []
        assert not OutboundMessage.objects.exists()
    if caller in (Role.VIEWER, Role.AGENT):
        assert "SUPERVISOR" in response.json()["error"]["message"]


def test_a_supervisor_reaches_payment_integrations_only(toss, shop, receiver):
    # given an ops webhook next to the payment integration
    build_integration("ops-webhook", target=receiver.url)
    supervisor = as_role(Role.SUPERVISOR)

    # when a supervisor tries to use the webhook's messages, and then the payments'
    other = supervisor.post(
        "/api/v1/integrations/ops-webhook/messages",
        {"message_type": "sync", "payload": {"method": "post_event", "event": "ops.note"}},
        format="json",
    )
    payments = supervisor.get("/api/v1/integrations/pay_toss/messages")

    # then the webhook is an ADMIN's business, while the payment integration's messages are open to them
    assert other.status_code == 403
    assert "ADMIN" in other.json()["error"]["message"]
    assert receiver.requests == []
    assert payments.status_code == 200


def test_a_key_without_payments_refund_may_query_but_not_refund(toss, shop, make_api_key):
    payment_key = toss.paid("order-20240611-0101", 10000)
    contact_center = key_client(make_api_key, "integrations:write")

    refused = refund(contact_center, payment_key)
    queried = contact_center.post(
        "/api/v1/integrations/pay_toss/messages",
        {"message_type": "sync", "payload": {"method": "get_payment", "payment_key": payment_key}},
        format="json",
    )

    assert refused.status_code == 403
    assert "payments:refund" in refused.json()["error"]["message"]
    assert queried.status_code == 200
    assert [r.method for r in toss.requests] == ["GET"]


def test_a_key_with_both_scopes_may_refund(toss, shop, make_api_key):
    payment_key = toss.paid("order-20240611-0102", 10000)

    response = refund(key_client(make_api_key, "integrations:write", "payments:refund"), payment_key, 2500)

    assert response.status_code == 200, response.content
    assert toss.payments[payment_key]["balanceAmount"] == 7500


def test_a_key_with_payments_refund_alone_reaches_no_messages(toss, shop, make_api_key):
    payment_key = toss.paid("order-20240611-0103", 10000)

    response = refund(key_client(make_api_key, "payments:refund"), payment_key)

    assert response.status_code == 403
    assert "integrations:write" in response.json()["error"]["message"]
    assert toss.requests == []


def test_a_refund_is_audited_with_who_asked_and_what_toss_answered(toss, shop):
    # given a supervisor and a paid order
    payment_key = toss.paid("order-20240611-0104", 10000)

    # when the supervisor refunds 4,000 won
    response = refund(as_role(Role.SUPERVISOR), payment_key, 4000)

    # then the request is on record with the person and what they asked for (never a credential)
    assert response.status_code == 200, response.content
    message_id = response.json()["message_id"]
    [asked] = AuditEvent.objects.filter(action=AuditAction.PAYMENT_REFUND_REQUESTED)
    assert asked.actor == "user:kim-supervisor"
    assert asked.target == f"integration:pay_toss:message:{message_id}"
    assert asked.data["payment"] == payment_key
    assert (asked.data["cancel_amount"], asked.data["cancel_reason"]) == (4000, "고객 요청")
    # and so is Toss's answer, under the Idempotency-Key Toss knows the cancel by
    [tried] = AuditEvent.objects.filter(action=AuditAction.PAYMENT_REFUND_ATTEMPTED)
    [request] = toss.seen("POST", "/cancel")
    assert (tried.data["ok"], tried.data["http_status"]) == (True, 200)
    assert tried.data["request_id"] == request.idempotency_key
    assert SECRET_KEY not in str(asked.data) + str(tried.data)


def test_a_query_leaves_no_refund_audit(toss, shop, make_api_key):
    payment_key = toss.paid("order-20240611-0105", 10000)
    contact_center = key_client(make_api_key, "integrations:write")

    contact_center.post(
        "/api/v1/integrations/pay_toss/messages",
        {"message_type": "sync", "payload": {"method": "get_payment", "payment_key": payment_key}},
        format="json",
    )

    assert not AuditEvent.objects.filter(
        action__in=(AuditAction.PAYMENT_REFUND_REQUESTED, AuditAction.PAYMENT_REFUND_ATTEMPTED)
    ).exists()
