"""A local stand-in for Toss Payments' API v1, speaking its protocol as docs.tosspayments.com documents it.

- Auth: `Authorization: Basic base64("<secret key>:")`; anything else is 401 UNAUTHORIZED_KEY.
- POST /v1/payments/confirm {paymentKey, orderId, amount}; GET /v1/payments/{paymentKey};
  GET /v1/payments/orders/{orderId}; POST /v1/payments/{paymentKey}/cancel {cancelReason,
  cancelAmount?, refundReceiveAccount?}. Answers are Payment objects (status, totalAmount,
  balanceAmount, cancels[] with transactionKey, canceledAt…), errors {"code", "message"} with Toss's
  HTTP statuses.
- Idempotency-Key: a repeated key (with the same path and method) gets the first answer again and
  changes nothing, as Toss's keys do for 15 days.

Tests seed payments (`authorized` for one awaiting confirmation, `paid` for one confirmed), plan errors
for the next calls (`plan`), and make the next confirm or cancel answer late (`answer_late`): it is
done, then the answer waits longer than the client's read timeout. Every request is recorded
(`requests`). It knows nothing about our code.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

KST = timezone(timedelta(hours=9))
MESSAGES = {
    "UNAUTHORIZED_KEY": "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.",
    "NOT_FOUND_PAYMENT": "존재하지 않는 결제 정보 입니다.",
    "ALREADY_PROCESSED_PAYMENT": "이미 처리된 결제 입니다.",
    "ALREADY_CANCELED_PAYMENT": "이미 취소된 결제 입니다.",
    "NOT_CANCELABLE_AMOUNT": "취소 할 수 없는 금액 입니다.",
    "INVALID_REQUEST": "잘못된 요청입니다.",
    "PROVIDER_ERROR": "일시적인 오류가 발생했습니다. 잠시 후 다시 시도해주세요.",
    "FAILED_INTERNAL_SYSTEM_PROCESSING": "내부 시스템 처리 작업이 실패했습니다. 잠시 후 다시 시도해주세요.",
    "REJECT_CARD_COMPANY": "결제 승인이 거절되었습니다.",
}


@dataclass
class Seen:
    method: str
    path: str
    authorization: str
    idempotency_key: str | None
    body: dict | None


class TossServer:
    def __init__(self, secret_key: str) -> None:
        self.secret_key = secret_key
        self.payments: dict[str, dict] = {}
        self.requests: list[Seen] = []
        self._idempotent: dict[tuple[str, str, str], tuple[int, dict]] = {}
        self._plan: deque[tuple[str, int, str, str | None]] = deque()
        self._late: dict[str, deque[float]] = {"confirm": deque(), "cancel": deque()}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> TossServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what tests arrange and read -----------------------------------------------------------

    def authorized(self, order_id: str, amount: int, *, order_name: str = "상담 예약 1건") -> str:
        """A payment the customer authorised in the payment window, awaiting our confirmation."""
        payment_key = "tgen_" + secrets.token_urlsafe(24).replace("-", "A").replace("_", "B")
        self.payments[payment_key] = _payment(payment_key, order_id, amount, order_name)
        return payment_key

    def paid(self, order_id: str, amount: int, **kwargs) -> str:
        payment_key = self.authorized(order_id, amount, **kwargs)
        self._approve(self.payments[payment_key])
        return payment_key

    def plan(self, kind: str, status: int, code: str, message: str | None = None) -> None:
        """The next request of `kind` ("confirm", "cancel" or "query") is answered with this error."""
        with self._lock:
            self._plan.append((kind, status, code, message))

    def answer_late(self, kind: str, seconds: float) -> None:
        """The next `kind` ("confirm" or "cancel") is done, then answered only after `seconds`."""
        with self._lock:
            self._late[kind].append(seconds)

    def seen(self, method: str, suffix: str = "") -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.secret_key}:".encode()).decode()

    # --- the API -------------------------------------------------------------------------------

    def handle(self, method: str, path: str, authorization: str, key: str | None, raw: bytes) -> tuple[int, dict]:
        body = _json(raw) if method == "POST" else None
        with self._lock:
            self.requests.append(Seen(method, path, authorization, key, body))
        if authorization != self.basic():
            return _error(401, "UNAUTHORIZED_KEY")
        kind = "confirm" if path == "/v1/payments/confirm" else "cancel" if path.endswith("/cancel") else "query"
        if key and (method, path, key) in self._idempotent:
            return self._idempotent[(method, path, key)]
        planned = self._planned(kind)
        if planned:
            return planned
        if method == "GET":
            return self._query(path)
        if body is None:
            return _error(400, "INVALID_REQUEST", "요청 본문이 JSON이 아닙니다.")
        answer = self._confirm(body) if kind == "confirm" else self._cancel(unquote(path.split("/")[3]), body)
        if key:  # the first answer as it was then, not the payment as it changes later
            self._idempotent[(method, path, key)] = (answer[0], json.loads(json.dumps(answer[1])))
        with self._lock:
            late = self._late[kind].popleft() if self._late[kind] else 0.0
        time.sleep(late)
        return answer

    def _planned(self, kind: str) -> tuple[int, dict] | None:
        with self._lock:
            for index, (planned_kind, status, code, message) in enumerate(self._plan):
                if planned_kind == kind:
                    del self._plan[index]
                    return _error(status, code, message)
        return None

    def _query(self, path: str) -> tuple[int, dict]:
        if path.startswith("/v1/payments/orders/"):
            order_id = unquote(path.removeprefix("/v1/payments/orders/"))
            found = next((p for p in self.payments.values() if p["orderId"] == order_id), None)
        else:
            found = self.payments.get(unquote(path.removeprefix("/v1/payments/")))
        return (200, found) if found else _error(404, "NOT_FOUND_PAYMENT")

    def _confirm(self, body: dict) -> tuple[int, dict]:
        payment = self.payments.get(body.get("paymentKey"))
        if payment is None:
            return _error(404, "NOT_FOUND_PAYMENT")
        if not isinstance(body.get("amount"), int) or not isinstance(body.get("orderId"), str):
            return _error(400, "INVALID_REQUEST", "amount는 정수, orderId는 문자열이어야 합니다.")
        if payment["status"] != "IN_PROGRESS":
            return _error(400, "ALREADY_PROCESSED_PAYMENT")
        if body["orderId"] != payment["orderId"] or body["amount"] != payment["totalAmount"]:
            return _error(400, "INVALID_REQUEST", "결제 금액 또는 주문번호가 일치하지 않습니다.")
        self._approve(payment)
        return 200, payment

    def _cancel(self, payment_key: str, body: dict) -> tuple[int, dict]:
        payment = self.payments.get(payment_key)
        if payment is None:
            return _error(404, "NOT_FOUND_PAYMENT")
        reason, amount = body.get("cancelReason"), body.get("cancelAmount", payment["balanceAmount"])
        if not isinstance(reason, str) or not reason or len(reason) > 200 or not isinstance(amount, int):
            return _error(400, "INVALID_REQUEST", "cancelReason은 필수이고 cancelAmount는 정수여야 합니다.")
        if payment["status"] == "CANCELED":
            return _error(400, "ALREADY_CANCELED_PAYMENT")
        if payment["status"] not in ("DONE", "PARTIAL_CANCELED") or not 0 < amount <= payment["balanceAmount"]:
            return _error(403, "NOT_CANCELABLE_AMOUNT")
        transaction_key = secrets.token_hex(16)
        payment["balanceAmount"] -= amount
        payment["status"] = "CANCELED" if payment["balanceAmount"] == 0 else "PARTIAL_CANCELED"
        payment["lastTransactionKey"] = transaction_key
        payment["cancels"] = [
            *(payment["cancels"] or []),
            {
                "transactionKey": transaction_key,
                "cancelReason": reason,
                "taxExemptionAmount": 0,
                "canceledAt": _now(),
                "easyPayDiscountAmount": 0,
                "receiptKey": secrets.token_hex(12),
                "cancelAmount": amount,
                "taxFreeAmount": 0,
                "refundableAmount": payment["balanceAmount"],
                "cancelStatus": "DONE",
                "cancelRequestId": None,
            },
        ]
        return 200, payment

    def _approve(self, payment: dict) -> None:
        payment["status"] = "DONE"
        payment["approvedAt"] = _now()
        payment["lastTransactionKey"] = secrets.token_hex(16)


def _payment(payment_key: str, order_id: str, amount: int, order_name: str) -> dict:
    """A card Payment object as Toss answers it (version 2022-11-16), before confirmation."""
    vat = round(amount / 11)
    return {
        "mId": "tosspayments",
        "lastTransactionKey": None,
        "paymentKey": payment_key,
        "orderId": order_id,
        "orderName": order_name,
        "taxExemptionAmount": 0,
        "status": "IN_PROGRESS",
        "requestedAt": _now(),
        "approvedAt": None,
        "useEscrow": False,
        "cultureExpense": False,
        "card": {
            "issuerCode": "71",
            "acquirerCode": "71",
            "number": "12345678****000*",
            "installmentPlanMonths": 0,
            "isInterestFree": False,
            "approveNo": "00000000",
            "cardType": "신용",
            "ownerType": "개인",
            "acquireStatus": "READY",
            "amount": amount,
        },
        "virtualAccount": None,
        "transfer": None,
        "mobilePhone": None,
        "giftCertificate": None,
        "cashReceipt": None,
        "cashReceipts": None,
        "discount": None,
        "cancels": None,
        "secret": "ps_" + secrets.token_urlsafe(18),
        "type": "NORMAL",
        "easyPay": None,
        "country": "KR",
        "failure": None,
        "isPartialCancelable": True,
        "receipt": {"url": f"https://dashboard.tosspayments.com/receipt/redirection?transactionId={payment_key}"},
        "checkout": {"url": f"https://api.tosspayments.com/v1/payments/{payment_key}/checkout"},
        "currency": "KRW",
        "totalAmount": amount,
        "balanceAmount": amount,
        "suppliedAmount": amount - vat,
        "vat": vat,
        "taxFreeAmount": 0,
        "method": "카드",
        "version": "2022-11-16",
    }


def _now() -> str:
    return datetime.now(KST).isoformat(timespec="seconds")


def _json(raw: bytes) -> dict | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _error(status: int, code: str, message: str | None = None) -> tuple[int, dict]:
    return status, {"code": code, "message": message or MESSAGES.get(code, code)}


def _make_handler(server: TossServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def _answer(self, method: str) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            status, answer = server.handle(
                method, self.path, self.headers.get("Authorization", ""), self.headers.get("Idempotency-Key"), raw
            )
            payload = json.dumps(answer, ensure_ascii=False).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a read timeout): Toss acted all the same

        def log_message(self, format: str, *args) -> None:
            pass

    return Handler
