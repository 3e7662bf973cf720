"""Toss Payments (API v1): confirm, query and cancel (fully or in part) payments; Toss's webhooks.

Auth: HTTP Basic, the secret key as user name and no password: auth_type "api_key", auth_config
{"api_key": "test_sk_…"} (`basic` needs a password and shows its username in clear). The header is
built here and sent instead of the auth_type's (http.send's own_auth), which scrubs it and the key
from every text kept. Money: whole won (KRW) as JSON integers.

Confirm and cancel carry Toss's Idempotency-Key, made from our message (id, method, input digest): every
try of one message is one request to Toss, which answers a repeat with its first answer for 15 days.
Never blindly again: a try after a failed one (CallContext.attempt > 1) first queries the payment, and
a cancel already among its cancels, or a payment already confirmed for the same order and amount, is
answered from that state without sending (see `_canceled_already`, `_confirmed_already`).

Toss's errors ({"code", "message"}) are named in the reason; RETRYABLE_CODES, 5xx and 429 are retried,
every other code is permanent. Webhooks are not signed by Toss (it advises a query), so verify_incoming
queries the payment with our key (toss_webhooks: `webhook_claim`, STATUSES_AFTER) and receive() publishes its current
state as "payment.status_changed", once per status and transaction. Payments take none of our events.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from rest_framework import serializers

from integrations import credentials
from integrations.models import IntegrationType, OutboundMessage
from integrations.providers import http
from integrations.providers.base import CallContext, Incoming, IncomingAnswer, Provider, ProviderError, Result
from integrations.providers.money import KrwAmount
from integrations.providers.toss_webhooks import (
    ORDER_ID,
    PAYMENT_KEY,
    STATUSES_AFTER,
    _text,
    dedup_key,
    status_payload,
    webhook_claim,
)

DEFAULT_BASE_URL = "https://api.tosspayments.com"
STATUS_EVENT = "payment.status_changed"
SECRET_KEY_PREFIXES = ("test_sk_", "live_sk_", "test_gsk_", "live_gsk_")
CLIENT_KEY_PREFIXES = ("test_ck_", "live_ck_", "test_gck_", "live_gck_")
# Toss's codes that another try may get past (PROVIDER_ERROR is a 400 Toss says to try again)
RETRYABLE_CODES = frozenset(
    {
        "PROVIDER_ERROR",
        "FAILED_INTERNAL_SYSTEM_PROCESSING",
        "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING",
        "FAILED_REFUND_PROCESS",
        "FAILED_METHOD_HANDLING_CANCEL",
        "FAILED_PARTIAL_REFUND",
        "COMMON_ERROR",
        "IDEMPOTENT_REQUEST_PROCESSING",
        "FORBIDDEN_CONSECUTIVE_REQUEST",
        "NOT_AVAILABLE_BANK",
    }
)
PERMANENT_DESPITE_5XX = frozenset({"FAILED_CLOSED_ACCOUNT_REFUND"})  # the customer's account is closed
CONFIRMED = frozenset({"WAITING_FOR_DEPOSIT", "DONE", "PARTIAL_CANCELED", "CANCELED"})
AWAITING_CONFIRMATION = frozenset({"READY", "IN_PROGRESS"})
# a cancel stamped this long before our message was created may still be ours (Toss's clock and ours)
CLOCK_SKEW = timedelta(minutes=2)
WEBHOOK_QUERY_TIMEOUT = (2.0, 5.0)  # the webhook's own request waits for these queries


def payment_key_field(**kwargs: Any) -> serializers.RegexField:
    return serializers.RegexField(
        PAYMENT_KEY, error_messages={"invalid": "Enter Toss's paymentKey: up to 200 letters, digits, - or _."}, **kwargs
    )


def order_id_field(**kwargs: Any) -> serializers.RegexField:
    return serializers.RegexField(
        ORDER_ID, error_messages={"invalid": "Enter the orderId: 6 to 64 letters, digits, - or _."}, **kwargs
    )


class ConfirmPaymentIn(serializers.Serializer):
    payment_key = payment_key_field()
    order_id = order_id_field()
    amount = KrwAmount()


class GetPaymentIn(serializers.Serializer):
    payment_key = payment_key_field(required=False)
    order_id = order_id_field(required=False)

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("payment_key")) == bool(attrs.get("order_id")):
            raise serializers.ValidationError({"payment_key": "Give exactly one of payment_key or order_id."})
        return attrs


class RefundAccountIn(serializers.Serializer):
    """Where a virtual-account payment's money goes back to (Toss's refundReceiveAccount)."""

    bank = serializers.CharField(max_length=20)  # Toss's bank code, e.g. "88"
    account_number = serializers.RegexField(
        r"^\d{1,20}$", error_messages={"invalid": "Enter digits only, at most 20, without dashes."}
    )
    holder_name = serializers.CharField(max_length=60)


class CancelPaymentIn(serializers.Serializer):
    payment_key = payment_key_field()
    cancel_reason = serializers.CharField(max_length=200)
    cancel_amount = KrwAmount(required=False)  # omitted: the whole remaining balance
    refund_receive_account = RefundAccountIn(required=False)


class TossProvider(Provider):
    name = "toss"
    types = frozenset({IntegrationType.PAYMENT})
    methods = {"confirm_payment": ConfirmPaymentIn, "get_payment": GetPaymentIn, "cancel_payment": CancelPaymentIn}
    event_method = ""  # payments take none of our events
    needs_endpoint = False  # https://api.tosspayments.com unless endpoint_url says otherwise
    auth_types = frozenset({"api_key"})
    refund_methods = frozenset({"cancel_payment"})
    accepts_incoming = True

    def check_integration(self, integration) -> dict[str, str]:
        errors = super().check_integration(integration)
        if integration.events:
            errors["events"] = "A Toss integration takes none of our events; leave events empty."
        try:
            config = integration.auth_config
        except credentials.CredentialError:
            return errors  # the model's own check says so
        key = config.get("api_key")
        if isinstance(key, str) and key.startswith(CLIENT_KEY_PREFIXES):
            errors["auth_config"] = "That is a client key; give the secret key (test_sk_… or live_sk_…)."
        elif isinstance(key, str) and not key.startswith(SECRET_KEY_PREFIXES):
            errors["auth_config"] = "api_key must be a Toss secret key (test_sk_… or live_sk_…)."
        elif config.get("header_name"):
            errors["auth_config"] = "Toss takes the secret key as HTTP Basic; remove header_name."
        return errors

    def event_input(self, integration, event, payload, context):
        raise ProviderError(
            f"Payment integrations take none of our events ({event}); call their methods through the messages API.",
            permanent=True,
        )

    # --- methods ---------------------------------------------------------------------------------

    def do_get_payment(self, integration, data: dict, context: CallContext) -> Result:
        found = self._query(integration, data, context.timeout)
        payment = found.data if isinstance(found.data, dict) else {}
        return Result(
            http_status=found.http_status, data=without_secret(payment), request_id=_text(payment, "paymentKey")
        )

    def do_confirm_payment(self, integration, data: dict, context: CallContext) -> Result:
        key = idempotency_key(context, "confirm_payment", data)
        if context.attempt > 1 and (settled := self._confirmed_already(integration, data, context, key)):
            return settled
        body = {"paymentKey": data["payment_key"], "orderId": data["order_id"], "amount": data["amount"]}
        try:
            result = self._request(integration, "POST", "/v1/payments/confirm", context.timeout, body=body, key=key)
        except ProviderError as exc:
            if error_code(exc) == "ALREADY_PROCESSED_PAYMENT":
                settled = self._confirmed_already(integration, data, context, key)
                if settled:
                    return settled
            raise
        return Result(http_status=result.http_status, data=without_secret(result.data), request_id=key)

    def do_cancel_payment(self, integration, data: dict, context: CallContext) -> Result:
        key = idempotency_key(context, "cancel_payment", data)
        if context.attempt > 1 and (settled := self._canceled_already(integration, data, context, key)):
            return settled
        body: dict[str, Any] = {"cancelReason": data["cancel_reason"]}
        if data.get("cancel_amount"):
            body["cancelAmount"] = data["cancel_amount"]
        account = data.get("refund_receive_account")
        if account:
            body["refundReceiveAccount"] = {
                "bank": account["bank"],
                "accountNumber": account["account_number"],
                "holderName": account["holder_name"],
            }
        path = f"/v1/payments/{quote(data['payment_key'], safe='')}/cancel"
        result = self._request(integration, "POST", path, context.timeout, body=body, key=key)
        return Result(http_status=result.http_status, data=without_secret(result.data), request_id=key)

    # --- query first, after a try that may have acted ----------------------------------------------

    def _confirmed_already(self, integration, data: dict, context: CallContext, key: str) -> Result | None:
        """The confirmed payment when Toss already confirmed it for this order and amount; None when it
        still awaits confirmation (or Toss does not know it yet); a permanent error otherwise."""
        try:
            found = self._query_before_acting(integration, data, context, key)
        except ProviderError as exc:
            if error_code(exc) == "NOT_FOUND_PAYMENT":
                return None
            raise
        payment = found.data if isinstance(found.data, dict) else {}
        status = payment.get("status")
        if status in AWAITING_CONFIRMATION:
            return None
        same = (payment.get("orderId"), payment.get("totalAmount")) == (data["order_id"], data["amount"])
        if status in CONFIRMED and same:
            return Result(http_status=found.http_status, data=without_secret(payment), request_id=key)
        raise ProviderError(
            f"Not confirmed: the Toss payment is {status} for order {payment.get('orderId')}, "
            f"{payment.get('totalAmount')} KRW (asked: order {data['order_id']}, {data['amount']} KRW).",
            permanent=True,
            http_status=found.http_status,
            request_id=key,
        )

    def _canceled_already(self, integration, data: dict, context: CallContext, key: str) -> Result | None:
        """The payment when our cancel is already among its cancels; None when it is not (send it);
        a permanent error when someone else canceled the whole payment."""
        found = self._query_before_acting(integration, data, context, key)
        payment = found.data if isinstance(found.data, dict) else {}
        cancels = [item for item in payment.get("cancels") or [] if isinstance(item, dict) and _done(item)]
        since = _message_created_at(context.message_id)
        fully_canceled = payment.get("status") == "CANCELED"
        if data.get("cancel_amount"):
            applied = any(_is_our_cancel(item, data, since) for item in cancels)
        else:  # a full cancel is the one that left nothing: the last
            applied = fully_canceled and bool(cancels) and _is_our_cancel(cancels[-1], data, since)
        if applied:
            return Result(http_status=found.http_status, data=without_secret(payment), request_id=key)
        if fully_canceled:
            raise ProviderError(
                "Not sent: the Toss payment was already canceled in full by another request.",
                permanent=True,
                http_status=found.http_status,
                request_id=key,
            )
        return None

    def _query_before_acting(self, integration, data: dict, context: CallContext, key: str) -> Result:
        try:
            return self._query(integration, {"payment_key": data["payment_key"]}, context.timeout)
        except ProviderError as exc:
            reason = f"Not sent: the payment is queried before deciding, and the query failed. {exc.reason}"
            raise retold(exc, reason, key) from exc

    # --- webhooks --------------------------------------------------------------------------------

    def verify_incoming(self, integration, incoming: Incoming) -> bool:
        """Toss knows the payment under our secret key, with the claimed orderId, in the claimed status
        or one it moves on to (a redelivery may be stale); a DEPOSIT_CALLBACK's secret is the payment's."""
        claim = webhook_claim(incoming)
        if claim is None:
            return False
        try:
            found = self._query(integration, claim["lookup"], WEBHOOK_QUERY_TIMEOUT)
        except ProviderError:
            return False  # unknown to Toss under our key, or Toss unreachable: Toss sends it again later
        payment = found.data if isinstance(found.data, dict) else {}
        if payment.get("orderId") != claim["order_id"]:
            return False
        if claim["secret"] is not None:
            secret = payment.get("secret")
            if not isinstance(secret, str) or not hmac.compare_digest(secret.encode(), claim["secret"].encode()):
                return False
        current = payment.get("status")
        return current == claim["status"] or current in STATUSES_AFTER.get(claim["status"], frozenset())

    def receive(self, integration, incoming: Incoming) -> IncomingAnswer:
        from integrations import services  # services imports the providers

        claim = webhook_claim(incoming)
        if claim is None:  # verified a moment ago; only a changed body gets here
            return IncomingAnswer(status=400, body={"detail": "Not a Toss webhook."})
        try:
            found = self._query(integration, claim["lookup"], WEBHOOK_QUERY_TIMEOUT)
        except ProviderError:
            return IncomingAnswer(status=503, body={"detail": "The payment could not be queried; send it again."})
        payment = found.data if isinstance(found.data, dict) else {}
        published = status_payload(integration, payment, claim["event_type"])
        services.notify(STATUS_EVENT, published, dedup_key=dedup_key(payment))
        return IncomingAnswer(status=200, body={"received": claim["event_type"]})

    # --- HTTP ------------------------------------------------------------------------------------

    def _query(self, integration, lookup: dict, timeout) -> Result:
        if lookup.get("payment_key"):
            path = f"/v1/payments/{quote(lookup['payment_key'], safe='')}"
        else:
            path = f"/v1/payments/orders/{quote(lookup['order_id'], safe='')}"
        return self._request(integration, "GET", path, timeout)

    def _request(
        self, integration, method: str, path: str, timeout, *, body: dict | None = None, key: str = ""
    ) -> Result:
        """One call to Toss with the Basic header (and the Idempotency-Key); Toss's refusals explained."""
        credential = basic_credential(http.config_of(integration))
        headers = {"Idempotency-Key": key} if key else {}
        hide, raw = _hider(credential), None if body is None else http.json_body(body)
        url = base_url(integration) + path
        try:
            result = http.send(
                integration,
                method,
                url,
                body=raw,
                headers=headers,
                timeout=timeout,
                own_auth={"Authorization": f"Basic {credential}"},
            )
        except ProviderError as exc:
            raise explained(exc, hide, key) from exc
        return Result(http_status=result.http_status, data=http.scrubbed_strings(result.data, hide), request_id=key)


def base_url(integration) -> str:
    return (integration.endpoint_url or DEFAULT_BASE_URL).rstrip("/")


def basic_credential(config: dict) -> str:
    """base64("<secret key>:"): Toss's user name is the secret key, and there is no password."""
    key = config.get("api_key")
    if not isinstance(key, str) or not key:
        raise ProviderError("auth_config needs api_key: the Toss secret key.", permanent=True)
    return base64.b64encode(f"{key}:".encode()).decode()


def _hider(credential: str):
    escaped = credential.replace("/", "\\/")

    def hide(text: str) -> str:
        return text.replace(credential, credentials.MASK).replace(escaped, credentials.MASK)

    return hide


def idempotency_key(context: CallContext, method: str, data: dict) -> str:
    """The same for every try of one message: its id, the method, and a digest of the input (so a
    message id reused after a database reset never meets the first one's stored answer at Toss)."""
    if context.message_id is None:
        return f"oncall-{uuid.uuid4().hex}-{method}"
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"oncall-{context.message_id}-{method}-{digest}"


def error_code(error: ProviderError) -> str | None:
    answer = error.answer if isinstance(error.answer, dict) else {}
    code = answer.get("code")
    return code if isinstance(code, str) else None


def explained(error: ProviderError, hide, key: str) -> ProviderError:
    """The same failure in Toss's words (its code and message), judged by its code, with our key."""
    code = error_code(error)
    permanent = error.permanent
    reason = hide(error.reason)
    if error.http_status == 401:
        reason = "Toss UNAUTHORIZED_KEY: the secret key was refused; check auth_config.api_key (test_sk_…)."
    elif code:
        code = http.printable_line(code, limit=80)
        message = error.answer.get("message")
        said = http.printable_line(hide(message)) if isinstance(message, str) else ""
        reason = f"Toss {code}: {said} (HTTP {error.http_status})"
        if code in RETRYABLE_CODES:
            permanent = False
        elif code in PERMANENT_DESPITE_5XX:
            permanent = True
    return retold(error, reason, key, permanent=permanent, answer=http.scrubbed_strings(error.answer, hide))


def retold(error: ProviderError, reason: str, key: str, *, permanent: bool | None = None, answer: Any = None):
    """`error` with another reason (and verdict, and answer), under our Idempotency-Key."""
    permanent = error.permanent if permanent is None else permanent
    return error.retold(
        reason,
        permanent=permanent,
        retry_after=None if permanent else error.retry_after,
        answer=error.answer if answer is None else answer,
        request_id=key,
    )


def without_secret(payment: Any) -> Any:
    """A Payment object without its `secret` (what proves a virtual account's webhooks): callers and
    stored results never need it."""
    if isinstance(payment, dict) and payment.get("secret"):
        return {**payment, "secret": credentials.MASK}
    return payment


def _done(cancel: dict) -> bool:
    return cancel.get("cancelStatus") in (None, "DONE")


def _message_created_at(message_id: int | None) -> datetime | None:
    if message_id is None:
        return None
    return OutboundMessage.objects.filter(pk=message_id).values_list("created_at", flat=True).first()


def _is_our_cancel(cancel: dict, data: dict, since: datetime | None) -> bool:
    """Same reason, same amount (a partial cancel), and not older than our message. An unreadable time
    counts as ours: refunding once too few is put right by a person; twice, not."""
    if cancel.get("cancelReason") != data["cancel_reason"]:
        return False
    if data.get("cancel_amount") and cancel.get("cancelAmount") != data["cancel_amount"]:
        return False
    try:
        at = datetime.fromisoformat(cancel["canceledAt"])
    except (KeyError, TypeError, ValueError):
        return True
    return since is None or at.tzinfo is None or at >= since - CLOCK_SKEW


PROVIDER = TossProvider()
