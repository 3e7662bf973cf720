"""A local stand-in for Amazon Connect's real-time API on loopback, speaking its REST-JSON protocol
(botocore's connect/2017-08-08 service model): GET /queues-summary/{InstanceId},
POST /metrics/current/{InstanceId}, POST /metrics/userdata/{InstanceId}.

It answers what the test puts in `queues`, `metrics` and `agents`, records every request (path, the
SigV4 Authorization header, the JSON body), and can answer each operation with an error instead:
`fail["current"] = (429, "ThrottlingException")` or `(500, "InternalServiceException")`, or `"garbage"`
for a body that is not JSON.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Seen:
    method: str
    path: str
    authorization: str
    body: dict


@dataclass
class ConnectState:
    instance_id: str
    queues: dict[str, str] = field(default_factory=dict)  # id -> name
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # queue id -> {metric: value}
    agents: list[tuple[str, str]] = field(default_factory=list)  # (user id, status name)
    fail: dict[str, object] = field(default_factory=dict)  # operation -> (status, code) or "garbage"
    seen: list[Seen] = field(default_factory=list)

    def requests(self, operation: str) -> list[Seen]:
        prefix = {"queues": "/queues-summary/", "current": "/metrics/current/", "userdata": "/metrics/userdata/"}
        return [seen for seen in self.seen if seen.path.startswith(prefix[operation])]


def _queue_arn(state: ConnectState, queue_id: str) -> str:
    return f"arn:aws:connect:ap-northeast-2:123456789012:instance/{state.instance_id}/queue/{queue_id}"


def _current_metric_data(state: ConnectState, body: dict) -> dict:
    wanted = [metric["Name"] for metric in body.get("CurrentMetrics", [])]
    units = {metric["Name"]: metric.get("Unit", "COUNT") for metric in body.get("CurrentMetrics", [])}
    results = [
        {
            "Dimensions": {"Queue": {"Id": queue_id, "Arn": _queue_arn(state, queue_id)}, "Channel": "VOICE"},
            "Collections": [
                {"Metric": {"Name": name, "Unit": units[name]}, "Value": state.metrics[queue_id].get(name, 0.0)}
                for name in wanted
            ],
        }
        for queue_id in body.get("Filters", {}).get("Queues", [])
        if queue_id in state.metrics
    ]
    return {"MetricResults": results, "DataSnapshotTime": time.time(), "ApproximateTotalCount": len(results)}


def _current_user_data(state: ConnectState, body: dict) -> dict:
    users = [
        {
            "User": {"Id": user_id, "Arn": f"arn:aws:connect:::agent/{user_id}"},
            "Status": {"StatusStartTimestamp": time.time() - 60, "StatusArn": "arn:status", "StatusName": status},
            "AvailableSlotsByChannel": {"VOICE": 1 if status == "Available" else 0},
            "MaxSlotsByChannel": {"VOICE": 1},
            "ActiveSlotsByChannel": {"VOICE": 0},
            "Contacts": [],
        }
        for user_id, status in state.agents
    ]
    return {"UserDataList": users, "ApproximateTotalCount": len(users)}


def _handler(state: ConnectState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _answer(self, status: int, body: bytes, error_code: str = "") -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-amzn-RequestId", "req-1")
            if error_code:
                self.send_header("x-amzn-ErrorType", error_code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _serve(self) -> None:
            path = urlsplit(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else {}
            state.seen.append(Seen(self.command, path, self.headers.get("Authorization", ""), body))
            operation = next(
                (
                    name
                    for name, prefix in (
                        ("queues", "/queues-summary/"),
                        ("current", "/metrics/current/"),
                        ("userdata", "/metrics/userdata/"),
                    )
                    if path.startswith(prefix)
                ),
                None,
            )
            if operation is None or not path.endswith(f"/{state.instance_id}"):
                message = json.dumps({"Message": f"Instance not found: {path}"}).encode()
                return self._answer(404, message, "ResourceNotFoundException")
            failure = state.fail.get(operation)
            if failure == "garbage":
                return self._answer(200, b"<html>not json</html>")
            if failure:
                status, code = failure
                return self._answer(status, json.dumps({"message": f"{code} from the test"}).encode(), code)
            if operation == "queues":
                summaries = [
                    {"Id": queue_id, "Arn": _queue_arn(state, queue_id), "Name": name, "QueueType": "STANDARD"}
                    for queue_id, name in state.queues.items()
                ]
                answer = {"QueueSummaryList": summaries}
            elif operation == "current":
                answer = _current_metric_data(state, body)
            else:
                answer = _current_user_data(state, body)
            return self._answer(200, json.dumps(answer).encode())

        do_GET = do_POST = _serve

    return Handler


class ConnectServer:
    def __init__(self, instance_id: str) -> None:
        self.state = ConnectState(instance_id=instance_id)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ConnectServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
