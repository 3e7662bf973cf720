"""Refunding card payments through KG Inicis (INIAPI v2), as the contact center does: a supervisor or a
system with the payments:refund scope calls the messages API, and a local stand-in for Inicis
(inicis_server.py) checks each request's signature (hashData), timestamp, mid and fields the way
Inicis does. A refund whose answer was lost is never sent blindly again: the next try asks Inicis first."""

from __future__ import annotations

import json
import logging

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from accounts.models import AuditAction, AuditEvent, Role
from integrations.models import DeliveryAttempt, Integration, MessageStatus, OutboundMessage
from integrations.services import deliver, send_test_notification
from tests.accounts.helpers import person
from tests.integrations.inicis_server import InicisServer

pytestmark = pytest.mark.django_db

MID = "INIpayTest"
INIAPI_KEY = "iniapi-key-never-shown-7Qm2"
SERVER_IP = "203.0.113.10"


@pytest.fixture
def inicis():
    with InicisServer(mid=MID, api_key=INIAPI_KEY) as server:
        yield server


@pytest.fixture
def supervisor(settings) -> APIClient:
    settings.MFA_REQUIRED_ROLES = []
    client = APIClient()
    client.force_authenticate(person("supervisor-kim", Role.SUPERVISOR))
    return client


@pytest.fixture
def billing_system(make_api_key) -> APIClient:
    """The billing back office: it may call integrations and refund customers."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('integrations:write', 'payments:refund')}")
    return client


def register(server: InicisServer, *, key: str = INIAPI_KEY, **fields) -> Integration:
    """Inicis as an admin registers it: the INIAPI key sealed, the merchant id and our server's
    outbound address as options, the endpoint (here, the local stand-in)."""
    integration = Integration(
        integration_id="pay_inicis",
        name="KG Inicis",
        type="payment",
        provider="inicis",
        endpoint_url=server.url,
        auth_type="api_key",
        options={"mid": MID, "client_ip": SERVER_IP},
        **fields,
    )
    integration.set_auth_config({"api_key": key})
    integration.full_clean()
    integration.save()
    return integration


def call(client: APIClient, message_type: str = "sync", **payload):
    body = {"message_type": message_type, "payload": payload}
    return client.post("/api/v1/integrations/pay_inicis/messages", body, format="json")


def attempts(message_id: int) -> list[DeliveryAttempt]:
    return list(DeliveryAttempt.objects.filter(message_id=message_id).order_by("number"))


def test_a_supervisor_refunds_a_card_payment_in_full(inicis, supervisor):
    # given a customer's card payment of 13,000 won
    register(inicis)
    payment = inicis.pay(13000)

    # when a supervisor refunds it
    response = call(supervisor, method="refund", tid=payment.tid, reason="고객 요청 환불")

    # then Inicis cancelled it, and the answer says so
    assert response.status_code == 200, response.content
    result = response.json()["result"]
    assert result["status"] == "cancelled"
    assert result["confirmed_by"] == "refund"
    assert result["cancelled_at"].endswith("+09:00")
    assert inicis.refunds == [("refund", payment.tid, 13000)]
    # and the request was INIAPI v2's signed JSON (the stand-in recomputed its hashData)
    [request] = inicis.requests
    assert request.path == "/v2/pg/refund"
    assert request.body["data"] == {"tid": payment.tid, "msg": "고객 요청 환불"}
    assert request.body["mid"] == MID and request.body["clientIp"] == SERVER_IP
    # and the call can be traced at Inicis by its tid and timestamp
    [attempt] = attempts(response.json()["message_id"])
    assert attempt.request_id == f"{payment.tid}@{request.body['timestamp']}"
    # and the refund was audited with who asked, then with its outcome
    asked = AuditEvent.objects.get(action=AuditAction.PAYMENT_REFUND_REQUESTED)
    assert asked.actor_user.username == "supervisor-kim"
    assert asked.data["tid"] == payment.tid
    sent = AuditEvent.objects.get(action=AuditAction.PAYMENT_REFUND_ATTEMPTED)
    assert sent.data["ok"] is True and sent.data["request_id"] == attempt.request_id


def test_a_partial_refund_sends_the_amounts_as_integers_and_answers_what_remains(inicis, billing_system):
    register(inicis)
    payment = inicis.pay(13000)

    response = call(
        billing_system,
        method="partial_refund",
        tid=payment.tid,
        reason="부분 환불",
        refund_amount=3000,
        confirm_amount=10000,
    )

    assert response.status_code == 200, response.content
    result = response.json()["result"]
    assert (result["refund_amount"], result["remaining_amount"], result["partial_cancel_count"]) == (3000, 10000, 1)
    assert result["partial_cancel_tid"] and result["partial_cancel_tid"] != payment.tid
    [request] = inicis.requests
    assert request.path == "/v2/pg/partialRefund"
    assert b'"price":3000,"confirmPrice":10000' in request.raw
    assert inicis.refunds == [("partialRefund", payment.tid, 3000)]


def test_a_transaction_query_shows_its_state_and_amounts_but_not_the_buyer(inicis, supervisor):
    # given a payment of 13,000 won of which 3,000 was refunded
    register(inicis)
    payment = inicis.pay(13000)
    call(
        supervisor,
        method="partial_refund",
        tid=payment.tid,
        reason="부분 환불",
        refund_amount=3000,
        confirm_amount=10000,
    )

    # when a supervisor looks it up
    response = call(supervisor, method="get_transaction", tid=payment.tid)

    # then the answer gives its state and amounts as integers, and none of the buyer's details
    assert response.status_code == 200, response.content
    result = response.json()["result"]
    assert result["status"] == "partially_cancelled"
    assert (result["amount"], result["remaining_amount"]) == (13000, 10000)
    assert [item["amount"] for item in result["partial_cancels"]] == [3000]
    assert result["paymethod"] == "Card" and result["order_id"] == payment.oid
    assert "홍길동" not in response.content.decode() and "buyer@example.com" not in response.content.decode()
    assert inicis.kinds() == ["partialRefund", "inquiry"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"method": "partial_refund", "refund_amount": "3000.5", "confirm_amount": 10000}, "payload.refund_amount"),
        ({"method": "partial_refund", "refund_amount": 0, "confirm_amount": 13000}, "payload.refund_amount"),
        ({"method": "partial_refund", "refund_amount": 3000.0, "confirm_amount": 10000}, "payload.refund_amount"),
        ({"method": "partial_refund", "refund_amount": "3000", "confirm_amount": 10000}, "payload.refund_amount"),
        ({"method": "partial_refund", "refund_amount": 3000, "confirm_amount": True}, "payload.confirm_amount"),
        ({"method": "partial_refund", "refund_amount": 3000}, "payload.confirm_amount"),
        ({"method": "refund", "reason": 'say "sorry"'}, "payload.reason"),
        ({"method": "refund", "paymethod": "VBank"}, "payload.paymethod"),
        ({"method": "refund", "tid": "../../v2/pg/refund"}, "payload.tid"),
        ({"method": "cancel_everything"}, "payload.method"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_reaches_nobody(inicis, supervisor, payload, field):
    register(inicis)
    payment = inicis.pay(13000)
    payload = {"tid": payment.tid, "reason": "환불", **payload}

    response = call(supervisor, **payload)

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert inicis.requests == []


def test_a_wrong_key_is_refused_by_inicis_as_a_bad_hash_and_not_tried_again(inicis, supervisor):
    # given an integration registered with a key that is not the merchant's
    register(inicis, key="stale-iniapi-key-never-shown-0000")
    payment = inicis.pay(13000)

    # when a refund is asked for
    response = call(supervisor, method="refund", tid=payment.tid, reason="환불")

    # then Inicis's refusal comes back as a 502 with its code and message, and nothing was refunded
    assert response.status_code == 502, response.content
    error = response.json()["error"]
    assert "resultCode 01" in error["message"] and "hashData" in error["message"]
    message = OutboundMessage.objects.get(pk=error["fields"]["message_id"])
    assert message.status == MessageStatus.FAILED and message.attempts == 1
    assert inicis.refunds == []


def test_refunding_an_already_cancelled_payment_says_so_with_inicis_code(inicis, supervisor):
    register(inicis)
    payment = inicis.pay(13000)
    assert call(supervisor, method="refund", tid=payment.tid, reason="환불").status_code == 200

    again = call(supervisor, method="refund", tid=payment.tid, reason="다시 환불")

    assert again.status_code == 502, again.content
    assert "resultCode 500626" in again.json()["error"]["message"]
    assert "already cancelled" in again.json()["error"]["message"]
    assert len(inicis.refunds) == 1


def test_inicis_in_trouble_is_tried_again_after_asking_whether_the_refund_happened(
    inicis, billing_system, fast_retries
):
    # given Inicis answering its next call with a system error
    register(inicis)
    payment = inicis.pay(13000)
    inicis.fail_next(503, "99", "시스템 점검 중")
    queued = call(billing_system, "async", method="refund", tid=payment.tid, reason="환불")
    assert queued.status_code == 202, queued.content
    message_id = queued.json()["message_id"]

    # when the first try meets the error
    first = deliver(message_id)

    # then the message waits for another try, the error names Inicis's code
    assert first.status == MessageStatus.PENDING
    assert "resultCode 99" in attempts(message_id)[0].error
    # and the next try asks Inicis first, finds the payment untouched, and refunds it once
    assert deliver(message_id).status == MessageStatus.DELIVERED
    assert inicis.kinds() == ["refund", "inquiry", "refund"]
    assert inicis.refunds == [("refund", payment.tid, 13000)]


def test_a_refund_whose_answer_was_lost_is_confirmed_by_a_query_and_never_sent_twice(
    inicis, billing_system, fast_retries, settings
):
    # given Inicis applying the refund but answering after our read timeout
    settings.INTEGRATION_HTTP_TIMEOUT = (2.0, 0.5)
    register(inicis)
    payment = inicis.pay(13000)
    inicis.answer_late("refund", 1.5)
    message_id = call(billing_system, "async", method="refund", tid=payment.tid, reason="환불").json()["message_id"]

    # when the first try times out
    assert deliver(message_id).status == MessageStatus.PENDING
    first = attempts(message_id)[0]
    assert "timed out" in first.error and "queries the payment" in first.error

    # then the next try asks Inicis, sees the payment cancelled, and sends nothing again
    assert deliver(message_id).status == MessageStatus.DELIVERED
    assert inicis.kinds() == ["refund", "inquiry"]
    assert inicis.refunds == [("refund", payment.tid, 13000)]
    second = attempts(message_id)[1]
    assert '"confirmed_by":"inquiry"' in second.excerpt
    assert second.request_id.startswith(f"{payment.tid}@")
    outcomes = AuditEvent.objects.filter(action=AuditAction.PAYMENT_REFUND_ATTEMPTED).order_by("pk")
    assert [(row.data["ok"], row.data["timed_out"]) for row in outcomes] == [(False, True), (True, False)]


def test_a_partial_refund_whose_answer_was_lost_is_confirmed_by_the_remaining_amount(
    inicis, billing_system, fast_retries, settings
):
    settings.INTEGRATION_HTTP_TIMEOUT = (2.0, 0.5)
    register(inicis)
    payment = inicis.pay(13000)
    inicis.answer_late("partialRefund", 1.5)
    queued = call(
        billing_system,
        "async",
        method="partial_refund",
        tid=payment.tid,
        reason="부분 환불",
        refund_amount=3000,
        confirm_amount=10000,
    )
    message_id = queued.json()["message_id"]

    assert deliver(message_id).status == MessageStatus.PENDING
    assert deliver(message_id).status == MessageStatus.DELIVERED

    assert inicis.kinds() == ["partialRefund", "inquiry"]
    assert inicis.refunds == [("partialRefund", payment.tid, 3000)]


def test_a_retry_that_finds_another_amount_remaining_sends_nothing_and_asks_for_a_person(
    inicis, billing_system, fast_retries, settings
):
    # given a partial refund of 3,000 whose answer was lost
    settings.INTEGRATION_HTTP_TIMEOUT = (2.0, 0.5)
    register(inicis)
    payment = inicis.pay(13000)
    inicis.answer_late("partialRefund", 1.5)
    first = call(
        billing_system,
        "async",
        method="partial_refund",
        tid=payment.tid,
        reason="부분 환불",
        refund_amount=3000,
        confirm_amount=10000,
    ).json()["message_id"]
    deliver(first)
    # and meanwhile another refund of 2,000 went through
    other = call(
        billing_system,
        method="partial_refund",
        tid=payment.tid,
        reason="추가 환불",
        refund_amount=2000,
        confirm_amount=8000,
    )
    assert other.status_code == 200, other.content

    # when the lost one is tried again
    message = deliver(first)

    # then it finds 8,000 remaining, neither before nor after its own refund, and sends nothing
    assert message.status == MessageStatus.FAILED
    assert "Not sent again" in message.last_error and "merchant console" in message.last_error
    assert inicis.kinds() == ["partialRefund", "partialRefund", "inquiry"]
    assert [amount for _, _, amount in inicis.refunds] == [3000, 2000]


def test_a_key_without_the_refund_scope_may_look_but_not_refund(inicis, make_api_key):
    register(inicis)
    payment = inicis.pay(13000)
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('integrations:write')}")

    refused = call(reader, method="refund", tid=payment.tid, reason="환불")
    looked = call(reader, method="get_transaction", tid=payment.tid)

    assert refused.status_code == 403, refused.content
    assert "payments:refund" in refused.json()["error"]["message"]
    assert looked.status_code == 200, looked.content
    assert inicis.kinds() == ["inquiry"]


def test_the_iniapi_key_is_never_sent_nor_kept_anywhere(
    inicis, supervisor, billing_system, fast_retries, settings, caplog
):
    # given every path a call can take: success, a refusal, a timeout and its retry
    caplog.set_level(logging.DEBUG)
    settings.INTEGRATION_HTTP_TIMEOUT = (2.0, 0.5)
    register(inicis)
    paid, late = inicis.pay(13000), inicis.pay(5000)
    answers = [
        call(supervisor, method="get_transaction", tid=paid.tid),
        call(
            supervisor, method="partial_refund", tid=paid.tid, reason="환불", refund_amount=3000, confirm_amount=10000
        ),
        call(
            supervisor, method="partial_refund", tid=paid.tid, reason="환불", refund_amount=3000, confirm_amount=10000
        ),
    ]
    inicis.answer_late("refund", 1.5)
    message_id = call(billing_system, "async", method="refund", tid=late.tid, reason="환불").json()["message_id"]
    deliver(message_id)
    deliver(message_id)

    # then no request carried the key, in a header or in its body
    assert len(inicis.requests) == 5
    for request in inicis.requests:
        assert "x-api-key" not in request.headers and "authorization" not in request.headers
        assert INIAPI_KEY not in json.dumps(request.headers) and INIAPI_KEY.encode() not in request.raw
    # and nothing we kept or answered shows it
    kept = [answer.content.decode() for answer in answers]
    kept += [json.dumps([m.payload, m.result, m.last_error]) for m in OutboundMessage.objects.all()]
    kept += [f"{a.error} {a.excerpt} {a.request_id}" for a in DeliveryAttempt.objects.all()]
    kept += [json.dumps(event.data, ensure_ascii=False) for event in AuditEvent.objects.all()]
    kept.append(caplog.text)
    assert not [text for text in kept if INIAPI_KEY in text]
    assert [message.status for message in OutboundMessage.objects.order_by("pk")] == [
        MessageStatus.DELIVERED,
        MessageStatus.DELIVERED,
        MessageStatus.FAILED,
        MessageStatus.DELIVERED,
    ]


def test_registration_needs_the_merchant_id_and_our_address_and_takes_no_events(inicis):
    integration = Integration(
        integration_id="pay_inicis",
        name="KG Inicis",
        type="payment",
        provider="inicis",
        auth_type="bearer",
        options={"mid": "INIpay", "client_ip": "our-server"},
        events=["incident.exhausted"],
    )
    integration.set_auth_config({"token": INIAPI_KEY})

    with pytest.raises(ValidationError) as refused:
        integration.full_clean()

    errors = refused.value.message_dict
    assert set(errors) >= {"auth_type", "options", "events"}
    assert "options.mid" in errors["options"][0] and "options.client_ip" in errors["options"][0]


def test_our_events_never_become_payment_calls(inicis):
    integration = register(inicis)

    message = deliver(send_test_notification(integration).pk)

    assert message.status == MessageStatus.FAILED
    assert "takes no events" in message.last_error
    assert inicis.requests == []
