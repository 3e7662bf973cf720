"""Toss Payments' webhooks: what one claims, and what we publish about it (toss.py verifies and receives).

Toss does not sign PAYMENT_STATUS_CHANGED or DEPOSIT_CALLBACK (only payout and seller events carry a
signature header), so a claim is only believed after querying the payment with our secret key: it
must exist under the claimed order, in the claimed status or one it can move on to (STATUSES_AFTER;
a redelivery may be stale), and a DEPOSIT_CALLBACK's `secret` must be the payment's.
"""

from __future__ import annotations

import hashlib
import json
import re

from integrations.providers.base import Incoming

PAYMENT_KEY = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")  # Toss: 6-64 letters, digits, - and _
# The statuses a payment can move on to from each (a webhook claiming one of the keys is plausible while
# the payment is in one of its values). Toss documents DONE going back to WAITING_FOR_DEPOSIT.
STATUSES_AFTER: dict[str, frozenset[str]] = {
    status: frozenset(after.split())
    for status, after in {
        "READY": "IN_PROGRESS WAITING_FOR_DEPOSIT DONE PARTIAL_CANCELED CANCELED ABORTED EXPIRED",
        "IN_PROGRESS": "WAITING_FOR_DEPOSIT DONE PARTIAL_CANCELED CANCELED ABORTED EXPIRED",
        "WAITING_FOR_DEPOSIT": "DONE PARTIAL_CANCELED CANCELED ABORTED EXPIRED",
        "DONE": "PARTIAL_CANCELED CANCELED WAITING_FOR_DEPOSIT",
        "PARTIAL_CANCELED": "CANCELED",
        "CANCELED": "",
        "ABORTED": "",
        "EXPIRED": "",
    }.items()
}


def _text(payment: dict, name: str) -> str:
    value = payment.get(name)
    return value if isinstance(value, str) else ""


def webhook_claim(incoming: Incoming) -> dict | None:
    """What a Toss webhook claims ({event_type, lookup, order_id, status, secret}), or None when the
    request is not one: PAYMENT_STATUS_CHANGED carries the Payment in `data`; DEPOSIT_CALLBACK carries
    orderId, status and the payment's `secret` at the top."""
    if incoming.method != "POST":
        return None
    try:
        body = json.loads(incoming.body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    event_type = body.get("eventType")
    if event_type == "PAYMENT_STATUS_CHANGED" and isinstance(body.get("data"), dict):
        data, secret = body["data"], None
        payment_key = data.get("paymentKey")
        if not isinstance(payment_key, str) or not PAYMENT_KEY.match(payment_key):
            return None
        lookup = {"payment_key": payment_key}
    elif event_type in (None, "DEPOSIT_CALLBACK") and isinstance(body.get("secret"), str):
        data, secret, event_type = body, body["secret"], "DEPOSIT_CALLBACK"
        if not 0 < len(secret) <= 100:
            return None
        lookup = {"order_id": data.get("orderId")}
    else:
        return None
    order_id, status = data.get("orderId"), data.get("status")
    if not isinstance(order_id, str) or not ORDER_ID.match(order_id) or status not in STATUSES_AFTER:
        return None
    return {"event_type": event_type, "lookup": lookup, "order_id": order_id, "status": status, "secret": secret}


def status_payload(integration, payment: dict, event_type: str) -> dict:
    """Our event: the payment as Toss has it now, in our names (never its secret)."""
    status, order_id = payment.get("status"), payment.get("orderId")
    total, balance = payment.get("totalAmount"), payment.get("balanceAmount")
    cancels = [
        {
            "cancel_amount": item.get("cancelAmount"),
            "cancel_reason": item.get("cancelReason"),
            "canceled_at": item.get("canceledAt"),
            "transaction_key": item.get("transactionKey"),
        }
        for item in payment.get("cancels") or []
        if isinstance(item, dict)
    ]
    return {
        "provider": "toss",
        "integration_id": integration.integration_id,
        "webhook_event": event_type,
        "payment_key": payment.get("paymentKey"),
        "order_id": order_id,
        "order_name": payment.get("orderName"),
        "status": status,
        "state": status,
        "method": payment.get("method"),
        "currency": payment.get("currency"),
        "total_amount": total,
        "balance_amount": balance,
        "approved_at": payment.get("approvedAt"),
        "last_transaction_key": payment.get("lastTransactionKey"),
        "cancels": cancels,
        "summary_ko": f"토스페이먼츠 결제 {order_id}: {status} (결제 {total}원, 잔액 {balance}원)",
        "summary_en": f"Toss payment {order_id}: {status} (paid {total} KRW, balance {balance} KRW)",
    }


def dedup_key(payment: dict) -> str:
    """One event per payment, status and last transaction (two partial cancels are two events)."""
    payment_key = _text(payment, "paymentKey")
    tail = f":{payment.get('status')}:{_text(payment, 'lastTransactionKey')}"
    key = f"toss:{payment_key}{tail}"
    if len(key) > 200:
        key = f"toss:{hashlib.sha256(payment_key.encode()).hexdigest()}{tail}"[:200]
    return key
