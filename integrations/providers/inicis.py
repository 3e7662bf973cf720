"""KG Inicis (INIAPI v2): query a card payment, refund it in full or in part.

INIAPI v2 is the JSON version of Inicis's server API, documented at manual.inicis.com (transaction
inquiry: /pay/etc-inquiry.html; cancel and partial cancel: /inipaypro/cancel.html). It is used here
rather than the older form-encoded v1 (/api/v1/refund, /api/v1/extra) because v2's hashData covers
every field of the request's `data` (the tid, the reason, the amounts), where v1's inquiry hash does
not even cover the tid. Each call is POST {endpoint}/v2/pg/{refund|partialRefund|inquiry} with

    {"mid", "type", "timestamp" (YYYYMMDDhhmmss, Korean time), "clientIp", "data": {...}, "hashData"}

where hashData is the hex SHA-512 of INIAPIKey + mid + type + timestamp + the JSON text of `data`
exactly as sent (compact, UTF-8 unescaped, keys in order). Money is integers in KRW: a partial
refund sends `price` (refunded now) and `confirmPrice` (what remains after it), which Inicis checks
against its own remaining amount, so a partial refund sent twice is refused the second time.

Configuration: auth_type "api_key", auth_config {"api_key": the INIAPI key} (sealed). The key never
goes on the wire: INIAPI wants no key header, the key only feeds hashData, so requests go through
http.send (SSRF guard, timeouts, scrubbing of every auth_config secret) with no credential header
(own_auth={}). options {"mid": the 10-character merchant id, "client_ip": our server's outbound
address as registered with Inicis} (neither is secret). endpoint_url: https://iniapi.inicis.com
unless given (https://stginiapi.inicis.com for Inicis's test bed). Only card payments: refunding a
virtual account needs the customer's bank account, AES-encrypted (/v2/pg/refund/vacct), which this
integration does not send. Payment integrations take none of our events.

A refund is never sent again blindly. A try after a failed one (CallContext.attempt > 1: the earlier
one may have timed out after Inicis applied it) first queries the payment: a full refund already
cancelled, or a partial refund whose remaining amount is already `confirm_amount`, is answered from
the query without sending; an untouched payment is refunded; anything else fails permanently for a
person to look at in Inicis's merchant console.

Answers: resultCode "00" is success (samples of the inquiry answer also show "SUCCESS"). Any other
code in a 200 answer is Inicis refusing the request as given (a hash mismatch, an unknown tid, an
already cancelled payment, a wrong confirmPrice): sent again unchanged it would be refused again, so
it is permanent, with Inicis's code and message in the text. Inicis's own trouble (5xx, 429, a
timeout, a dropped connection) is retried, Retry-After honoured (http.send).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone
from rest_framework import serializers

from integrations.models import AuthType, IntegrationType
from integrations.providers import http
from integrations.providers.base import CallContext, Provider, ProviderError, Result
from integrations.providers.money import KrwAmount

DEFAULT_ENDPOINT = "https://iniapi.inicis.com"
KOREA = ZoneInfo("Asia/Seoul")
SUCCESS = "00"
INQUIRY_SUCCESS = frozenset({SUCCESS, "SUCCESS"})
MID = re.compile(r"^[A-Za-z0-9]{10}$")
TID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
MAX_KRW = 99_999_999_999
# What some of Inicis's refusal codes mean for whoever reads the failed message.
CODE_HINTS = {"500626": "the payment is already cancelled"}
# transactionStatus in an inquiry answer
APPROVED, CANCELLED, PARTLY_CANCELLED = "APPROVAL", "CANCEL", "PART_CANCEL"
STATUS_NAMES = {APPROVED: "approved", CANCELLED: "cancelled", PARTLY_CANCELLED: "partially_cancelled"}
REFUNDABLE_METHODS = ("Card",)


class TidField(serializers.RegexField):
    def __init__(self, **kwargs):
        kwargs.setdefault("error_messages", {"invalid": "Enter Inicis's transaction id (up to 40 letters and digits)."})
        super().__init__(TID, **kwargs)


class ReasonField(serializers.CharField):
    """Inicis hashes the JSON text of the data, and its own samples strip backslashes before hashing:
    a quote or a backslash in the reason would make the two sides disagree, so neither is taken."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 100)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if any(char in value for char in '"\\') or any(not char.isprintable() for char in value):
            raise serializers.ValidationError("Write the reason without quotes, backslashes or control characters.")
        return value


class PaymethodField(serializers.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("default", "Card")
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value not in REFUNDABLE_METHODS:
            raise serializers.ValidationError(
                "Only card payments (Card) are refunded through this integration; refund a virtual account "
                "or other method in Inicis's merchant console."
            )
        return value


class GetTransactionIn(serializers.Serializer):
    tid = TidField()


class RefundIn(serializers.Serializer):
    tid = TidField()
    reason = ReasonField()
    paymethod = PaymethodField()


class PartialRefundIn(serializers.Serializer):
    tid = TidField()
    reason = ReasonField()
    refund_amount = KrwAmount(max_value=MAX_KRW)
    # what remains of the payment after this refund: Inicis refuses the refund when it disagrees
    confirm_amount = KrwAmount(min_value=0, max_value=MAX_KRW)
    paymethod = PaymethodField()


class InicisProvider(Provider):
    name = "inicis"
    types = frozenset({IntegrationType.PAYMENT})
    methods = {"get_transaction": GetTransactionIn, "refund": RefundIn, "partial_refund": PartialRefundIn}
    refund_methods = frozenset({"refund", "partial_refund"})
    event_method = ""
    needs_endpoint = False  # Inicis's own endpoint unless one is given
    auth_types = frozenset({AuthType.API_KEY})

    def check_integration(self, integration) -> dict[str, str]:
        errors = super().check_integration(integration)
        options = integration.options if isinstance(integration.options, dict) else {}
        problems = []
        if not MID.match(str(options.get("mid") or "")):
            problems.append('Set options.mid to the 10-character merchant id Inicis gave you, e.g. "INIpayTest".')
        if not _is_ip(options.get("client_ip")):
            problems.append(
                "Set options.client_ip to this server's outbound IP address as registered with Inicis "
                '(e.g. "203.0.113.10"): Inicis checks every request against it.'
            )
        if problems:
            errors["options"] = " ".join(problems)
        if integration.events:
            errors["events"] = "The inicis provider takes none of our events (it answers the messages API only)."
        return errors

    def event_input(self, integration, event, payload, context):
        raise ProviderError(
            f"The inicis provider takes no events ({event}): payments are queried and refunded through the "
            "messages API only.",
            permanent=True,
        )

    def do_get_transaction(self, integration, data: dict, context: CallContext) -> Result:
        answer, request_id = self._inquiry(integration, data["tid"], context)
        return Result(http_status=200, data=transaction_out(answer), request_id=request_id)

    def do_refund(self, integration, data: dict, context: CallContext) -> Result:
        if context.attempt > 1:
            answer, request_id = self._inquiry(integration, data["tid"], context)
            status = answer.get("transactionStatus")
            if status == CANCELLED:
                return Result(http_status=200, data=_confirmed_by(answer, "refund"), request_id=request_id)
            if status not in (APPROVED, PARTLY_CANCELLED):
                raise _undecided(answer, request_id, "a full refund")
        answer, request_id = self._call(integration, "refund", {"tid": data["tid"], "msg": data["reason"]}, context)
        out = {
            "tid": data["tid"],
            "status": STATUS_NAMES[CANCELLED],
            "cancelled_at": _korean_time(answer.get("cancelDate"), answer.get("cancelTime")),
            "confirmed_by": "refund",
            "result_code": answer.get("resultCode"),
            "result_message": _text(answer.get("resultMsg")),
        }
        return Result(http_status=200, data=out, request_id=request_id)

    def do_partial_refund(self, integration, data: dict, context: CallContext) -> Result:
        refund, remaining_after = data["refund_amount"], data["confirm_amount"]
        if context.attempt > 1:
            answer, request_id = self._inquiry(integration, data["tid"], context)
            remaining = remaining_amount(answer)
            if remaining == remaining_after:
                return Result(http_status=200, data=_confirmed_by(answer, "partial_refund"), request_id=request_id)
            if remaining != remaining_after + refund:
                raise _undecided(
                    answer,
                    request_id,
                    f"a refund of {refund} KRW (Inicis says {_krw(remaining)} remain; {remaining_after + refund} KRW "
                    f"would before it, {remaining_after} KRW after it)",
                )
        body = {"tid": data["tid"], "msg": data["reason"], "price": refund, "confirmPrice": remaining_after}
        answer, request_id = self._call(integration, "partialRefund", body, context)
        out = {
            "tid": data["tid"],
            "partial_cancel_tid": answer.get("tid"),
            "status": STATUS_NAMES[PARTLY_CANCELLED],
            "refund_amount": _amount(answer.get("prtcPrice")),
            "remaining_amount": _amount(answer.get("prtcRemains")),
            "partial_cancel_count": _amount(answer.get("prtcCnt")),
            "cancelled_at": _korean_time(answer.get("prtcDate"), answer.get("prtcTime")),
            "confirmed_by": "partial_refund",
            "result_code": answer.get("resultCode"),
            "result_message": _text(answer.get("resultMsg")),
        }
        return Result(http_status=200, data=out, request_id=request_id)

    def _inquiry(self, integration, tid: str, context: CallContext) -> tuple[dict, str]:
        return self._call(integration, "inquiry", {"tid": tid}, context, success=INQUIRY_SUCCESS)

    def _call(
        self,
        integration,
        kind: str,
        data: dict,
        context: CallContext,
        *,
        success: frozenset[str] = frozenset({SUCCESS}),
    ) -> tuple[dict, str]:
        """One signed INIAPI call; (Inicis's answer, the request id: tid@timestamp) or ProviderError."""
        options = integration.options or {}
        mid, timestamp = str(options["mid"]), timezone.now().astimezone(KOREA).strftime("%Y%m%d%H%M%S")
        request_id = f"{data['tid']}@{timestamp}"
        key = str(http.config_of(integration).get("api_key") or "")
        if not key:
            raise ProviderError("auth_config has no api_key (the INIAPI key).", permanent=True, request_id=request_id)
        body = {
            "mid": mid,
            "type": kind,
            "timestamp": timestamp,
            "clientIp": str(options["client_ip"]),
            "data": data,
            "hashData": hash_data(key, mid, kind, timestamp, data),
        }
        url = f"{endpoint(integration)}/v2/pg/{kind}"
        try:
            # no credential header: the key only signs the body (hashData)
            result = http.send(
                integration, "POST", url, body=http.json_body(body), timeout=context.timeout, own_auth={}
            )
        except ProviderError as exc:
            raise _explained(exc, kind, request_id) from exc
        answer = result.data if isinstance(result.data, dict) else None
        if answer is None:
            raise ProviderError(
                f"Inicis {kind}: the answer was not INIAPI's JSON (check endpoint_url): {http.excerpt_of(result.data)}",
                permanent=True,
                http_status=result.http_status,
                request_id=request_id,
            )
        code = str(answer.get("resultCode") or "")
        if code not in success:
            raise ProviderError(
                f"Inicis refused {kind}: {_said(answer)}",
                permanent=True,
                http_status=200,
                answer=answer,
                request_id=request_id,
            )
        return answer, request_id


def hash_data(key: str, mid: str, kind: str, timestamp: str, data: dict) -> str:
    """hashData: SHA-512 (hex) of INIAPIKey + mid + type + timestamp + the JSON text of data as sent."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha512(f"{key}{mid}{kind}{timestamp}{text}".encode()).hexdigest()


def endpoint(integration) -> str:
    return (integration.endpoint_url or DEFAULT_ENDPOINT).rstrip("/")


def remaining_amount(answer: dict) -> int | None:
    """What can still be refunded, by the inquiry answer; None when it does not say."""
    status = answer.get("transactionStatus")
    if status == CANCELLED:
        return 0
    if status == APPROVED:
        return _amount(answer.get("price"))
    if status == PARTLY_CANCELLED:
        return _amount(answer.get("availablePartCancelPrice"))
    return None


def transaction_out(answer: dict) -> dict:
    """The inquiry answer in our words, amounts as integers; the buyer's name, phone and email stay out."""
    partial = answer.get("partCancelTransInfo") if isinstance(answer.get("partCancelTransInfo"), list) else []
    return {
        "tid": answer.get("tid"),
        "order_id": answer.get("oid"),
        "paymethod": answer.get("paymethod"),
        "status": STATUS_NAMES.get(answer.get("transactionStatus"), answer.get("transactionStatus")),
        "amount": _amount(answer.get("price")),
        "remaining_amount": remaining_amount(answer),
        "approved_at": _korean_time(answer.get("approvedDate"), answer.get("approvedTime")),
        "cancelled_at": _korean_time(answer.get("cancelDate"), answer.get("cancelTime")),
        "partial_cancels": [
            {
                "tid": item.get("tid"),
                "amount": _amount(item.get("requestPrice")),
                "requested_at": _korean_time(item.get("requestDate"), item.get("requestTime")),
            }
            for item in partial
            if isinstance(item, dict)
        ],
        "result_code": answer.get("resultCode"),
        "result_message": _text(answer.get("resultMsg")),
    }


def _confirmed_by(answer: dict, method: str) -> dict:
    """A retry's answer when the query shows the refund already applied: nothing was sent again."""
    return {"confirmed_by": "inquiry", "method": method, **transaction_out(answer)}


def _undecided(answer: dict, request_id: str, what: str) -> ProviderError:
    status = answer.get("transactionStatus")
    return ProviderError(
        f"Not sent again: an earlier try may have reached Inicis, and the payment is now {status or 'unknown'}, "
        f"which fits neither before nor after {what}. Check it in Inicis's merchant console, then send a new request.",
        permanent=True,
        http_status=200,
        request_id=request_id,
    )


def _explained(error: ProviderError, kind: str, request_id: str) -> ProviderError:
    """http.send's verdict, kept, with Inicis's code and message when its answer carries them."""
    answer = error.answer if isinstance(error.answer, dict) else {}
    reason = f"Inicis {kind}: {error.reason}"
    if answer.get("resultCode"):
        reason = f"Inicis {kind}: HTTP {error.http_status}: {_said(answer)}"
    if error.timed_out and kind != "inquiry":
        reason = (
            reason.rstrip(". ")
            + ". Inicis may have applied it: the next try queries the payment before sending anything."
        )
    return error.retold(reason, request_id=request_id)


def _said(answer: dict) -> str:
    code = http.printable_line(str(answer.get("resultCode") or "?"), limit=20)
    detail = str(answer.get("detailResultCode") or "")
    text = f"resultCode {code} ({_text(answer.get('resultMsg')) or 'no message'})"
    hint = CODE_HINTS.get(code) or CODE_HINTS.get(detail)
    if detail and detail != code:
        text += f", detailResultCode {http.printable_line(detail, limit=20)}"
    return f"{text}: {hint}" if hint else text


def _text(value: Any) -> str:
    return http.printable_line(value, limit=200) if isinstance(value, str) else ""


def _amount(value: Any) -> int | None:
    """Inicis writes amounts as digit strings (or numbers); anything else is no amount."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _korean_time(date: Any, time: Any) -> str | None:
    """YYYYMMDD + hhmmss in Korean time, as ISO 8601 with its +09:00 offset."""
    if not (isinstance(date, str) and isinstance(time, str) and len(date) == 8 and len(time) == 6):
        return None
    if not (date.isdigit() and time.isdigit()):
        return None
    return f"{date[:4]}-{date[4:6]}-{date[6:]}T{time[:2]}:{time[2:4]}:{time[4:]}+09:00"


def _krw(amount: int | None) -> str:
    return "an unknown amount" if amount is None else f"{amount} KRW"


def _is_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(str(value or ""))
    except ValueError:
        return False
    return True


PROVIDER = InicisProvider()
