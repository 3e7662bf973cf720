"""A local stand-in for KG Inicis's INIAPI v2 (query, refund, partial refund of card payments).

It checks what Inicis checks and answers as Inicis does. Every call is POST /v2/pg/{inquiry | refund |
partialRefund} with a JSON body {mid, type, timestamp, clientIp, data, hashData}: the type must match
the path, the mid the merchant's, the timestamp must be YYYYMMDDhhmmss in Korean time (and recent),
clientIp an address, data the fields of its type (partialRefund: tid, msg, and price / confirmPrice
as numbers), and hashData the hex SHA-512 of INIAPIKey + mid + type + timestamp + the JSON text of
data, recomputed here with the merchant's own key. Answers are HTTP 200 JSON with resultCode "00" and
the fields of each type (amounts as digit strings, dates YYYYMMDD, times hhmmss), or a refusal
{"resultCode": code, "resultMsg": text}; Inicis's own trouble is an HTTP 5xx.

The merchant's card payments live in `payments` (add one with `pay`); `requests` keeps every request
as received, `refunds` every refund applied. `answer_late(kind, seconds)` applies the next call of
that kind, then answers only after `seconds` (a reply lost to the caller's read timeout);
`fail_next(status, code, text)` answers the next call with Inicis in trouble. It knows nothing of
our code.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

KOREA = ZoneInfo("Asia/Seoul")
FIELDS = {"inquiry": {"tid"}, "refund": {"tid", "msg"}, "partialRefund": {"tid", "msg", "price", "confirmPrice"}}
ENVELOPE = {"mid", "type", "timestamp", "clientIp", "data", "hashData"}
TIMESTAMP_LEEWAY = timedelta(minutes=10)
DONE = "정상처리되었습니다."
ALREADY_CANCELLED = "500626"


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    raw: bytes
    body: dict | None


@dataclass
class Payment:
    tid: str
    oid: str
    price: int
    approved_at: str  # YYYYMMDDhhmmss, Korean time
    paymethod: str = "Card"
    cancelled: bool = False
    cancelled_date: str = ""
    cancelled_time: str = ""
    partial_cancels: list[dict] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return 0 if self.cancelled else self.price - sum(item["price"] for item in self.partial_cancels)

    @property
    def status(self) -> str:
        if self.cancelled:
            return "CANCEL"
        return "PART_CANCEL" if self.partial_cancels else "APPROVAL"


class InicisServer:
    def __init__(self, mid: str, api_key: str) -> None:
        self.mid = mid
        self.api_key = api_key
        self.payments: dict[str, Payment] = {}
        self.requests: list[Request] = []
        self.refunds: list[tuple[str, str, int]] = []  # (type, tid, amount) applied
        self._late: dict[str, float] = {}
        self._failures: deque = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> InicisServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    def pay(self, price: int, paymethod: str = "Card") -> Payment:
        """A customer's approved payment, with a 40-character tid as Inicis's standard payment issues."""
        approved_at = datetime.now(KOREA).strftime("%Y%m%d%H%M%S")
        tid = (f"Stdpay{paymethod.upper()[:4]}{self.mid}{approved_at}" + secrets.token_hex(20))[:40]
        oid = f"ORDER-{secrets.token_hex(4)}"
        payment = Payment(tid=tid, oid=oid, price=price, approved_at=approved_at, paymethod=paymethod)
        self.payments[tid] = payment
        return payment

    def answer_late(self, kind: str, seconds: float) -> None:
        with self._lock:
            self._late[kind] = seconds

    def fail_next(self, status: int, code: str, text: str) -> None:
        with self._lock:
            self._failures.append((status, code, text))

    def kinds(self) -> list[str]:
        """The type of every request received, in order."""
        return [request.body.get("type") if request.body else None for request in self.requests]

    # --- one request --------------------------------------------------------------------------

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict]:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self._lock:
            self.requests.append(Request(path, headers, raw, body if isinstance(body, dict) else None))
            failure = self._failures.popleft() if self._failures else None
        if failure:
            status, code, text = failure
            return status, {"resultCode": code, "resultMsg": text}
        if "application/json" not in headers.get("content-type", ""):
            return 200, _refused("01", "Content-Type must be application/json")
        if not isinstance(body, dict):
            return 200, _refused("01", "요청 전문이 JSON 형식이 아닙니다")
        problem = self._envelope_problem(path, body)
        if problem:
            return 200, _refused("01", problem)
        kind, data = body["type"], body["data"]
        payment = self.payments.get(data["tid"])
        if payment is None:
            return 200, _refused("01", "[tid] 존재하지 않는 거래입니다")
        with self._lock:
            late = self._late.pop(kind, 0.0)
        answer = getattr(self, f"_{kind}")(payment, data)
        if late:
            time.sleep(late)  # applied, but the answer comes after the caller stopped waiting
        return 200, answer

    def _envelope_problem(self, path: str, body: dict) -> str | None:
        if set(body) != ENVELOPE:
            return f"필수 항목 오류: {sorted(ENVELOPE ^ set(body))}"
        kind = body["type"]
        if kind not in FIELDS or path != f"/v2/pg/{kind}":
            return f"[type] {kind} does not match the API {path}"
        if body["mid"] != self.mid:
            return "[mid] 등록되지 않은 상점아이디입니다"
        if not _recent_korean_timestamp(body["timestamp"]):
            return "[timestamp] YYYYMMDDhhmmss 형식의 현재 시각이 아닙니다"
        try:
            ipaddress.ip_address(body["clientIp"])
        except ValueError:
            return "[clientIp] IP 형식 오류"
        data = body["data"]
        if not isinstance(data, dict) or set(data) != FIELDS[kind]:
            return f"[data] {kind} 필수 항목 오류"
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        signed = f"{self.api_key}{body['mid']}{kind}{body['timestamp']}{text}"
        if body["hashData"] != hashlib.sha512(signed.encode()).hexdigest():
            return "[hashData] 위변조 검증 실패"
        if kind == "partialRefund" and not all(
            isinstance(data[name], int) and not isinstance(data[name], bool) for name in ("price", "confirmPrice")
        ):
            return "[price] 금액 형식 오류"
        return None

    def _inquiry(self, payment: Payment, data: dict) -> dict:
        approved = payment.approved_at
        answer = {
            "resultCode": "00",
            "resultMsg": DONE,
            "mid": self.mid,
            "tid": payment.tid,
            "oid": payment.oid,
            "price": str(payment.price),
            "goodsName": "상담 예약",
            "paymethod": payment.paymethod,
            "approvedDate": approved[:8],
            "approvedTime": approved[8:],
            "buyerName": "홍길동",
            "buyerTel": "01012345678",
            "buyerMail": "buyer@example.com",
            "transactionStatus": payment.status,
            "availablePartCancel": not payment.cancelled,
            "availablePartCancelPrice": str(payment.remaining),
            "partCancelTransInfo": [
                {
                    "tid": item["tid"],
                    "requestDate": item["date"],
                    "requestTime": item["time"],
                    "requestPrice": str(item["price"]),
                }
                for item in payment.partial_cancels
            ],
        }
        if payment.cancelled:
            answer.update(cancelDate=payment.cancelled_date, cancelTime=payment.cancelled_time)
        return answer

    def _refund(self, payment: Payment, data: dict) -> dict:
        if payment.cancelled:
            return _refused(ALREADY_CANCELLED, "기취소 거래입니다")
        date, clock = _now()
        with self._lock:
            self.refunds.append(("refund", payment.tid, payment.remaining))
            payment.cancelled = True
            payment.cancelled_date, payment.cancelled_time = date, clock
        return {
            "resultCode": "00",
            "resultMsg": DONE,
            "cancelDate": date,
            "cancelTime": clock,
            "cshrCancelNum": "",
            "detailResultCode": "",
            "receiptInfo": "",
        }

    def _partialRefund(self, payment: Payment, data: dict) -> dict:
        price, confirm = data["price"], data["confirmPrice"]
        if payment.cancelled:
            return _refused(ALREADY_CANCELLED, "기취소 거래입니다")
        if price < 1 or price > payment.remaining:
            return _refused("01", "[price] 부분취소 금액이 취소 가능 금액을 초과합니다")
        if payment.remaining - price != confirm:
            return _refused("01", "[confirmPrice] 부분취소 후 승인금액이 일치하지 않습니다")
        date, clock = _now()
        cancel_tid = ("StdpayPCNL" + self.mid + date + clock + secrets.token_hex(10))[:40]
        with self._lock:
            payment.partial_cancels.append({"tid": cancel_tid, "price": price, "date": date, "time": clock})
            self.refunds.append(("partialRefund", payment.tid, price))
        return {
            "resultCode": "00",
            "resultMsg": DONE,
            "tid": cancel_tid,
            "prtcTid": payment.tid,
            "prtcPrice": str(price),
            "prtcRemains": str(payment.remaining),
            "prtcCnt": str(len(payment.partial_cancels)),
            "prtcType": "1",
            "prtcDate": date,
            "prtcTime": clock,
            "receiptInfo": "",
        }


def _refused(code: str, text: str) -> dict:
    return {"resultCode": code, "resultMsg": text}


def _now() -> tuple[str, str]:
    now = datetime.now(KOREA)
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S")


def _recent_korean_timestamp(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 14 or not value.isdigit():
        return False
    try:
        when = datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=KOREA)
    except ValueError:
        return False
    return abs(datetime.now(KOREA) - when) <= TIMESTAMP_LEEWAY


def _make_handler(server: InicisServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, answer = server.handle(self.path, headers, raw)
            payload = json.dumps(answer, ensure_ascii=False).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the caller gave up waiting (a late answer)

        def log_message(self, format: str, *args) -> None:
            pass

    return Handler
