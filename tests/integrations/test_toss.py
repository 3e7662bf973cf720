"""Toss Payments through the messages API, against a local stand-in that speaks Toss's API v1
(toss_server.py): confirm, query, cancel in full or in part, Toss's refusals, a try after an ambiguous
timeout that queries before it acts, and Toss's webhooks verified by querying the payment."""

from __future__ import annotations

import base64
import json

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from accounts.models import AuditAction, AuditEvent
from integrations.models import DeliveryAttempt, Integration, MessageStatus, OutboundMessage
from integrations.services import deliver, send_test_notification
from tests.integrations.conftest import build_integration
from tests.integrations.toss_server import TossServer

pytestmark = pytest.mark.django_db

SECRET_KEY = "test_sk_oncallStandIn7Kx9Lm2QpWd4"
BASIC = base64.b64encode(f"{SECRET_KEY}:".encode()).decode()


@pytest.fixture
def toss():
    with TossServer(SECRET_KEY) as server:
        yield server


@pytest.fixture
def shop(toss) -> Integration:
    return toss_integration(toss)


def toss_integration(server: TossServer, integration_id: str = "pay_toss", **fields) -> Integration:
    """Toss as an admin registers it: the secret key sealed as the api_key, the stand-in as endpoint."""
    secret_key = fields.pop("api_key", SECRET_KEY)
    fields = {"type": "payment", "endpoint_url": server.url, "auth_type": "api_key", **fields}
    integration = Integration(integration_id=integration_id, name="Toss Payments", provider="toss", **fields)
    integration.set_auth_config({"api_key": secret_key})
    integration.full_clean()
    integration.save()
    return integration


def send(client: APIClient, payload: dict, *, message_type: str = "sync", integration_id: str = "pay_toss"):
    body = {"message_type": message_type, "payload": payload}
    return client.post(f"/api/v1/integrations/{integration_id}/messages", body, format="json")


def cancel(payment_key: str, reason: str = "고객 요청 환불", **fields) -> dict:
    return {"method": "cancel_payment", "payment_key": payment_key, "cancel_reason": reason, **fields}


def test_a_confirmed_payment_comes_back_as_tosss_payment_with_the_idempotency_key(sender, toss, shop):
    # given a customer who authorised 15,000 won in Toss's payment window
    payment_key = toss.authorized("order-20240611-0001", 15000)

    # when the contact center confirms it
    response = send(
        sender,
        {"method": "confirm_payment", "payment_key": payment_key, "order_id": "order-20240611-0001", "amount": 15000},
    )

    # then Toss confirmed it, and the caller sees the Payment without its webhook secret
    assert response.status_code == 200, response.content
    result = response.json()["result"]
    assert (result["status"], result["totalAmount"], result["orderId"]) == ("DONE", 15000, "order-20240611-0001")
    assert result["secret"] == "••••"
    # and Toss got its documented request: Basic auth with the secret key, an Idempotency-Key, the JSON body
    [request] = toss.seen("POST", "/v1/payments/confirm")
    assert request.authorization == f"Basic {BASIC}"
    assert request.body == {"paymentKey": payment_key, "orderId": "order-20240611-0001", "amount": 15000}
    message_id = response.json()["message_id"]
    assert request.idempotency_key.startswith(f"oncall-{message_id}-confirm_payment-")
    # and the attempt is recorded under that key
    assert DeliveryAttempt.objects.get(message_id=message_id).request_id == request.idempotency_key


def test_a_payment_is_found_by_its_key_and_by_its_order(sender, toss, shop):
    payment_key = toss.paid("order-20240611-0002", 8000)

    by_key = send(sender, {"method": "get_payment", "payment_key": payment_key})
    by_order = send(sender, {"method": "get_payment", "order_id": "order-20240611-0002"})

    assert by_key.status_code == by_order.status_code == 200
    assert by_key.json()["result"]["paymentKey"] == by_order.json()["result"]["paymentKey"] == payment_key
    assert by_order.json()["result"]["status"] == "DONE"
    assert [r.path for r in toss.seen("GET")] == [
        f"/v1/payments/{payment_key}",
        "/v1/payments/orders/order-20240611-0002",
    ]
    neither = send(sender, {"method": "get_payment"})
    assert neither.status_code == 400
    assert "payload.payment_key" in neither.json()["error"]["fields"]


def test_a_partial_cancel_then_the_rest(system_client, toss, shop):
    # given a paid order of 10,000 won
    payment_key = toss.paid("order-20240611-0003", 10000)

    # when 3,000 won is refunded, and then whatever is left
    partial = send(system_client, cancel(payment_key, "배송 지연 보상", cancel_amount=3000))
    rest = send(system_client, cancel(payment_key, "주문 전체 취소"))

    # then Toss holds first 7,000 won, then nothing
    assert partial.status_code == rest.status_code == 200
    assert (partial.json()["result"]["status"], partial.json()["result"]["balanceAmount"]) == ("PARTIAL_CANCELED", 7000)
    assert (rest.json()["result"]["status"], rest.json()["result"]["balanceAmount"]) == ("CANCELED", 0)
    assert [c["cancelAmount"] for c in rest.json()["result"]["cancels"]] == [3000, 7000]
    # and the partial cancel named its amount while the full one left it out, each with its own key
    first, second = toss.seen("POST", "/cancel")
    assert first.path == f"/v1/payments/{payment_key}/cancel"
    assert first.body == {"cancelReason": "배송 지연 보상", "cancelAmount": 3000}
    assert second.body == {"cancelReason": "주문 전체 취소"}
    assert first.idempotency_key != second.idempotency_key


@pytest.mark.parametrize("amount", [15000.0, "15000", -15000, 0, True, 15000.5])
def test_money_that_is_not_a_whole_number_of_won_is_a_400_naming_the_field(sender, toss, shop, amount):
    payment_key = toss.authorized("order-20240611-0004", 15000)

    response = send(
        sender,
        {"method": "confirm_payment", "payment_key": payment_key, "order_id": "order-20240611-0004", "amount": amount},
    )

    assert response.status_code == 400
    assert "payload.amount" in response.json()["error"]["fields"]
    assert toss.requests == []


def test_a_cancel_amount_in_decimals_or_without_a_reason_is_refused_before_toss_hears_of_it(system_client, toss, shop):
    payment_key = toss.paid("order-20240611-0005", 10000)

    decimal = send(system_client, cancel(payment_key, cancel_amount=2500.5))
    no_reason = send(system_client, {"method": "cancel_payment", "payment_key": payment_key})

    assert decimal.status_code == no_reason.status_code == 400
    assert "payload.cancel_amount" in decimal.json()["error"]["fields"]
    assert "payload.cancel_reason" in no_reason.json()["error"]["fields"]
    assert toss.requests == []


def test_tosss_refusal_is_a_502_naming_its_code_and_is_not_tried_again(system_client, toss, shop):
    # given a paid order of 10,000 won
    payment_key = toss.paid("order-20240611-0006", 10000)

    # when more than was paid is refunded
    response = send(system_client, cancel(payment_key, cancel_amount=20000))

    # then Toss's NOT_CANCELABLE_AMOUNT is the answer, in its own words, and the message failed for good
    assert response.status_code == 502
    text = response.json()["error"]["message"]
    assert "Toss NOT_CANCELABLE_AMOUNT: 취소 할 수 없는 금액 입니다. (HTTP 403)" in text
    message = OutboundMessage.objects.get(pk=response.json()["error"]["fields"]["message_id"])
    assert message.status == MessageStatus.FAILED
    assert message.last_error.startswith("Permanent failure:")
    [request] = toss.seen("POST", "/cancel")
    assert message.delivery_attempts.get().request_id == request.idempotency_key


@pytest.mark.parametrize(("status", "code"), [(400, "PROVIDER_ERROR"), (500, "FAILED_INTERNAL_SYSTEM_PROCESSING")])
def test_tosss_passing_trouble_is_tried_again(system_client, toss, shop, status, code):
    payment_key = toss.authorized("order-20240611-0007", 5000)
    toss.plan("confirm", status, code)
    payload = {
        "method": "confirm_payment",
        "payment_key": payment_key,
        "order_id": "order-20240611-0007",
        "amount": 5000,
    }

    queued = send(system_client, payload, message_type="async")
    message = deliver(queued.json()["message_id"])

    assert (message.status, message.attempts) == (MessageStatus.PENDING, 1)
    assert f"Toss {code}:" in message.last_error


def test_a_cancel_that_timed_out_after_toss_applied_it_is_not_sent_again(
    system_client, toss, shop, settings, fast_retries
):
    # given a paid order, and Toss that applies the next cancel but answers after our client stopped waiting
    settings.INTEGRATION_HTTP_TIMEOUT = (1.0, 0.3)
    payment_key = toss.paid("order-20240611-0008", 30000)
    toss.answer_late("cancel", 1.0)

    # when a supervisor's 12,000 won refund is delivered, times out, and is tried again
    queued = send(system_client, cancel(payment_key, "중복 결제 환불", cancel_amount=12000), message_type="async")
    first = deliver(queued.json()["message_id"])
    assert (first.status, first.attempts) == (MessageStatus.PENDING, 1)
    second = deliver(first.pk)

    # then the retry asked Toss about the payment first, found the cancel, and did not send it again
    assert second.status == MessageStatus.DELIVERED
    assert len(toss.seen("POST", "/cancel")) == 1
    assert toss.seen("GET", f"/v1/payments/{payment_key}")
    assert toss.payments[payment_key]["balanceAmount"] == 18000
    # and both tries are on record under the one Idempotency-Key Toss knows the cancel by
    timed_out, settled = second.delivery_attempts.order_by("number")
    assert (timed_out.ok, settled.ok) == (False, True)
    assert "timed out" in timed_out.error
    assert timed_out.request_id == settled.request_id == toss.seen("POST", "/cancel")[0].idempotency_key
    tries = AuditEvent.objects.filter(action=AuditAction.PAYMENT_REFUND_ATTEMPTED).order_by("pk")
    assert [(row.data["ok"], row.data["timed_out"]) for row in tries] == [(False, True), (True, False)]


def test_a_cancel_toss_never_applied_is_sent_again_under_the_same_key_after_the_query(
    system_client, toss, shop, fast_retries
):
    # given Toss failing inside on the first cancel, before it refunded anything
    payment_key = toss.paid("order-20240611-0009", 30000)
    toss.plan("cancel", 500, "FAILED_INTERNAL_SYSTEM_PROCESSING")

    queued = send(system_client, cancel(payment_key, cancel_amount=5000), message_type="async")
    deliver(queued.json()["message_id"])
    message = deliver(queued.json()["message_id"])

    # then the retry queried, saw no such cancel, and sent it once more with the same key: one refund
    assert message.status == MessageStatus.DELIVERED
    first, again = toss.seen("POST", "/cancel")
    assert first.idempotency_key == again.idempotency_key
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in toss.requests] == [
        ("POST", "cancel"),
        ("GET", payment_key),
        ("POST", "cancel"),
    ]
    assert [c["cancelAmount"] for c in toss.payments[payment_key]["cancels"]] == [5000]


def test_a_confirm_that_timed_out_after_toss_confirmed_it_is_not_confirmed_again(
    system_client, toss, shop, settings, fast_retries
):
    settings.INTEGRATION_HTTP_TIMEOUT = (1.0, 0.3)
    payment_key = toss.authorized("order-20240611-0010", 42000)
    toss.answer_late("confirm", 1.0)
    payload = {
        "method": "confirm_payment",
        "payment_key": payment_key,
        "order_id": "order-20240611-0010",
        "amount": 42000,
    }

    queued = send(system_client, payload, message_type="async")
    deliver(queued.json()["message_id"])
    message = deliver(queued.json()["message_id"])

    assert message.status == MessageStatus.DELIVERED
    assert len(toss.seen("POST", "/v1/payments/confirm")) == 1
    assert toss.payments[payment_key]["status"] == "DONE"


def test_a_payment_confirmed_elsewhere_settles_tosss_already_processed_answer(sender, toss, shop):
    # given a payment confirmed already (by the shop's own server, say)
    payment_key = toss.paid("order-20240611-0011", 9900)

    response = send(
        sender,
        {"method": "confirm_payment", "payment_key": payment_key, "order_id": "order-20240611-0011", "amount": 9900},
    )

    # then Toss's ALREADY_PROCESSED_PAYMENT led to a query, which shows the payment confirmed as asked
    assert response.status_code == 200, response.content
    assert response.json()["result"]["status"] == "DONE"
    assert [r.method for r in toss.requests] == ["POST", "GET"]


# --- webhooks ------------------------------------------------------------------------------------


def webhook(client: APIClient, body: dict, integration_id: str = "pay_toss"):
    return client.post(
        f"/api/v1/integrations/{integration_id}/incoming", json.dumps(body), content_type="application/json"
    )


def status_changed(payment: dict, **changes) -> dict:
    return {
        "eventType": "PAYMENT_STATUS_CHANGED",
        "createdAt": "2024-06-11T10:00:00.000000",
        "data": {**payment, **changes},
    }


@pytest.fixture
def payments_feed(receiver):
    """Whoever listens to our payment events: a webhook subscribed to payment.status_changed."""
    return build_integration("payments-feed", target=receiver.url, events=["payment.status_changed"])


def test_a_genuine_status_change_is_published_once_however_often_toss_sends_it(api_client, toss, shop, payments_feed):
    # given a payment that was just canceled in part
    payment_key = toss.paid("order-20240611-0012", 20000)
    toss.payments[payment_key].update(status="PARTIAL_CANCELED", balanceAmount=15000, lastTransactionKey="tx-1")

    # when Toss tells us, and tells us again (as it does until it hears 200)
    first = webhook(api_client, status_changed(toss.payments[payment_key]))
    again = webhook(api_client, status_changed(toss.payments[payment_key]))

    # then both were taken, and our subscribers hear of it once, with the payment as Toss has it
    assert first.status_code == again.status_code == 200
    [event] = OutboundMessage.objects.filter(integration=payments_feed, event="payment.status_changed")
    assert event.payload["payment_key"] == payment_key
    assert (event.payload["status"], event.payload["balance_amount"]) == ("PARTIAL_CANCELED", 15000)
    assert "secret" not in json.dumps(event.payload)
    assert not OutboundMessage.objects.filter(integration=shop).exists()  # a payment integration hears no events
    # and each webhook was checked against Toss with our secret key
    assert [r.path for r in toss.seen("GET")] == [f"/v1/payments/{payment_key}"] * 4
    assert all(r.authorization == f"Basic {BASIC}" for r in toss.requests)


def test_a_stale_redelivery_publishes_the_payment_as_it_is_now(api_client, toss, shop, payments_feed):
    # given a DONE webhook Toss failed to deliver, while the payment has since been canceled
    payment_key = toss.paid("order-20240611-0013", 20000)
    was_done = dict(toss.payments[payment_key])
    toss.payments[payment_key].update(status="CANCELED", balanceAmount=0, lastTransactionKey="tx-cancel")

    response = webhook(api_client, status_changed(was_done))

    assert response.status_code == 200
    [event] = OutboundMessage.objects.filter(integration=payments_feed)
    assert event.payload["status"] == "CANCELED"


@pytest.mark.parametrize(
    "forgery",
    [
        pytest.param(lambda paid: status_changed(paid, paymentKey="tgen_madeUpByAForger"), id="unknown-payment"),
        pytest.param(lambda paid: status_changed(paid, status="CANCELED"), id="status-it-never-reached"),
        pytest.param(lambda paid: status_changed(paid, orderId="order-someone-else"), id="another-order"),
        pytest.param(
            lambda paid: {
                "createdAt": "2024-06-11T10:00:00.000000",
                "secret": "ps_guessed",
                "status": "DONE",
                "transactionKey": "tx",
                "orderId": paid["orderId"],
            },
            id="deposit-callback-wrong-secret",
        ),
        pytest.param(lambda paid: {"eventType": "PAYMENT_STATUS_CHANGED"}, id="no-payment"),
    ],
)
def test_a_forged_webhook_is_a_403_and_publishes_nothing(api_client, toss, shop, payments_feed, forgery):
    payment_key = toss.paid("order-20240611-0014", 20000)

    response = webhook(api_client, forgery(toss.payments[payment_key]))

    assert response.status_code == 403
    assert not OutboundMessage.objects.filter(event="payment.status_changed").exists()


def test_a_deposit_callback_with_the_payments_secret_is_taken(api_client, toss, shop, payments_feed):
    payment_key = toss.paid("order-20240611-0015", 33000)
    paid = toss.payments[payment_key]
    body = {
        "createdAt": "2024-06-11T10:00:00.000000",
        "secret": paid["secret"],
        "status": "DONE",
        "transactionKey": paid["lastTransactionKey"],
        "orderId": paid["orderId"],
    }

    response = webhook(api_client, body)

    assert response.status_code == 200
    assert toss.seen("GET", "/v1/payments/orders/order-20240611-0015")
    [event] = OutboundMessage.objects.filter(integration=payments_feed)
    assert (event.payload["webhook_event"], event.payload["status"]) == ("DEPOSIT_CALLBACK", "DONE")


# --- credentials, registration and events --------------------------------------------------------


def test_no_secret_is_kept_even_when_an_answer_echoes_it(sender, toss, shop):
    # given a gateway in front of Toss that echoes the request's credentials in its refusal
    payment_key = toss.paid("order-20240611-0016", 1000)
    toss.plan("query", 400, "INVALID_REQUEST", f"bad request; Authorization: Basic {BASIC}; key {SECRET_KEY}")

    refused = send(sender, {"method": "get_payment", "payment_key": payment_key})
    found = send(sender, {"method": "get_payment", "payment_key": payment_key})

    # then the refusal reads as Toss's code, and neither the key, its Basic form nor the payment's
    # webhook secret is in any answer, stored message, attempt or audit row
    assert refused.status_code == 502
    assert "Toss INVALID_REQUEST" in refused.json()["error"]["message"]
    assert found.status_code == 200
    kept = [refused.content.decode(), found.content.decode()]
    for message in OutboundMessage.objects.all():
        kept += [json.dumps(message.result), message.last_error, json.dumps(message.payload)]
    for attempt in DeliveryAttempt.objects.all():
        kept += [attempt.error, attempt.excerpt, attempt.request_id]
    kept += [json.dumps(row.data) for row in AuditEvent.objects.all()]
    for secret in (SECRET_KEY, BASIC, toss.payments[payment_key]["secret"]):
        assert not [text for text in kept if secret in text]


def test_a_wrong_secret_key_is_refused_by_toss_and_said_so(sender, toss):
    toss_integration(toss, api_key="test_sk_revokedLongAgo00000000000")
    payment_key = toss.paid("order-20240611-0017", 1000)

    response = send(sender, {"method": "get_payment", "payment_key": payment_key})

    assert response.status_code == 502
    assert "Toss UNAUTHORIZED_KEY" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"events": ["incident.exhausted"]}, "events"),
        ({"api_key": "test_ck_D5GePWvyJnrK0W0k6q8gLzN97Eoq"}, "auth_config"),
        ({"type": "crm"}, "type"),
    ],
)
def test_an_integration_toss_cannot_serve_is_refused_when_saved(toss, fields, problem):
    with pytest.raises(ValidationError) as refused:
        toss_integration(toss, **fields)

    assert problem in refused.value.message_dict


def test_a_payment_integration_takes_none_of_our_events(toss, shop):
    message = deliver(send_test_notification(shop).pk)

    assert message.status == MessageStatus.FAILED
    assert "Payment integrations take none of our events" in message.last_error
    assert toss.requests == []
