"""Integration delivery benchmark: async messages through the Procfile's worker to a local HTTP receiver.

The real stack: Redis, the database, the `worker` and `beat` entries of the Procfile (run as the
Procfile runs them, through config.supervise), and a webhook receiver in a process of its own on
127.0.0.1 that records the `message_id` of every body it gets (the webhook provider's envelope
carries it) with its arrival time. Messages are queued with `integrations.services.send_async`, what
`POST /api/v1/integrations/{id}/messages` with `message_type: async` calls (enqueued on commit).

Prints one JSON object:
- burst: --messages queued at once; messages_per_second = messages / (last delivered_at - first
  created_at), and enqueue -> delivered under that backlog;
- steady: --messages at --rate per second; p50/p99 from enqueue (created_at) to delivered
  (delivered_at, stored by the worker) and to the receiver's arrival;
- outage: the receiver goes away (connections refused) for --outage seconds while messages keep
  coming at --outage-rate per second, then returns; sent, delivered, lost (sent and never received),
  duplicated (a message id received twice; target for both: 0), attempts, and recovery_seconds from
  the receiver's return to the last delivery.

Retry timers are the settings' (INTEGRATION_RETRY_BASE_SECONDS, _MULTIPLIER, _MAX_SECONDS, the
breaker's INTEGRATION_BREAKER_*): set them in the environment to try others; the JSON says which were
used. The integration's own rate limit is --rate-limit (default 1000/s, so the worker is measured,
not the default 10/s token bucket; 0 keeps the settings' INTEGRATION_RATE_LIMIT_PER_SECOND).

Usage: .venv/bin/python bench/integration_delivery.py [--messages 1000] [--rate 20] [--outage 60]
Uses DATABASE_URL / REDIS_URL when set (a fresh database `<name>_deliverybench` next to the named one;
the Redis database is flushed), else SQLite in var/ and an embedded Redis.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from escalation_latency import PROJECT, free_port, percentiles, prepare_database, spawn, start_redis, stop

INTEGRATION_ID = "bench_receiver"
EVENT = "bench.delivery"


# --- the receiver: a process of its own, so the bench's own work never slows its answers -------------


def run_receiver(port: int, log: Path) -> None:
    """Answers 200 to every POST and appends `<message_id> <arrival epoch>` to `log`. On SIGTERM it
    stops listening (new connections are refused) and lets requests in flight finish."""
    lock = threading.Lock()
    out = log.open("a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            arrived = time.time()
            message_id = json.loads(body).get("message_id")
            with lock:
                out.write(f"{message_id} {arrived:.6f}\n")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    thread = threading.Thread(target=server.serve_forever, args=(0.05,))
    thread.start()
    stopping.wait()
    server.shutdown()
    server.server_close()
    time.sleep(0.5)  # requests already accepted get their answer
    out.close()


class Receiver:
    """Starts and stops the receiver process on one fixed port, and reads what it recorded."""

    def __init__(self, port: int, log: Path):
        self.port, self.log, self.process = port, log, None
        log.touch()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/bench"

    def start(self) -> None:
        command = [sys.executable, __file__, "--receiver-port", str(self.port), "--receiver-log", str(self.log)]
        self.process = subprocess.Popen(command, cwd=PROJECT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the receiver did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def arrivals(self) -> list[tuple[int, float]]:
        rows = []
        for line in self.log.read_text().splitlines():
            message_id, arrived = line.split()
            rows.append((int(message_id), float(arrived)))
        return rows


# --- the stack ---------------------------------------------------------------------------------------


def procfile_command(name: str) -> list[str]:
    """The Procfile's entry `name` as an argument list, run with this interpreter."""
    for line in (PROJECT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            command = shlex.split(line.split(":", 1)[1])
            return [sys.executable if command[0] == "python" else command[0], *command[1:]]
    raise RuntimeError(f"no {name!r} entry in the Procfile")


def send(integration, index: int, phase: str) -> int:
    from integrations import services

    payload = {"method": "post_event", "event": EVENT, "payload": {"phase": phase, "seq": index}}
    message, _ = services.send_async(integration, payload)
    return message.pk


def send_at_rate(integration, count: int | None, rate: float, phase: str, until: float | None = None) -> list[int]:
    """`count` messages (or until the monotonic time `until`) at `rate` per second."""
    ids, started, index = [], time.monotonic(), 0
    while (count is None or index < count) and (until is None or time.monotonic() < until):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ids.append(send(integration, index, phase))
        index += 1
    return ids


def wait_settled(ids: list[int], timeout: float) -> None:
    """Until every message is delivered, failed or dead (or the timeout passes)."""
    from integrations.models import MessageStatus, OutboundMessage

    deadline = time.monotonic() + timeout
    settled = (MessageStatus.DELIVERED, MessageStatus.FAILED, MessageStatus.DEAD)
    while time.monotonic() < deadline:
        if OutboundMessage.objects.filter(pk__in=ids, status__in=settled).count() >= len(ids):
            return
        time.sleep(0.25)


def latencies(ids: list[int], arrivals: dict[int, float]) -> tuple[dict, dict, list]:
    """(enqueue -> delivered_at, enqueue -> receiver arrival) in ms, and the rows."""
    from integrations.models import OutboundMessage

    rows = list(OutboundMessage.objects.filter(pk__in=ids).values("pk", "status", "created_at", "delivered_at"))
    stored = [(row["delivered_at"] - row["created_at"]).total_seconds() * 1000 for row in rows if row["delivered_at"]]
    received = [(arrivals[row["pk"]] - row["created_at"].timestamp()) * 1000 for row in rows if row["pk"] in arrivals]
    return percentiles(stored), percentiles(received), rows


def first_arrivals(receiver: Receiver) -> dict[int, float]:
    first: dict[int, float] = {}
    for message_id, arrived in receiver.arrivals():
        first.setdefault(message_id, arrived)
    return first


def burst(integration, receiver: Receiver, count: int, timeout: float) -> dict:
    started = time.monotonic()
    ids = [send(integration, index, "burst") for index in range(count)]
    enqueue_seconds = time.monotonic() - started
    wait_settled(ids, timeout)
    stored, received, rows = latencies(ids, first_arrivals(receiver))
    delivered = [row for row in rows if row["delivered_at"]]
    span = (
        (max(row["delivered_at"] for row in delivered) - min(row["created_at"] for row in rows)).total_seconds()
        if delivered
        else None
    )
    return {
        "messages": count,
        "delivered": len(delivered),
        "enqueue_per_second": round(count / enqueue_seconds, 1),
        "messages_per_second": round(len(delivered) / span, 1) if span else None,
        "enqueue_to_delivered_ms": stored,
        "enqueue_to_received_ms": received,
    }


def steady(integration, receiver: Receiver, count: int, rate: float, timeout: float) -> dict:
    ids = send_at_rate(integration, count, rate, "steady")
    wait_settled(ids, timeout)
    stored, received, rows = latencies(ids, first_arrivals(receiver))
    return {
        "messages": count,
        "rate_per_second": rate,
        "delivered": sum(1 for row in rows if row["delivered_at"]),
        "enqueue_to_delivered_ms": stored,
        "enqueue_to_received_ms": received,
    }


def outage(integration, receiver: Receiver, seconds: float, rate: float, timeout: float) -> dict:
    from integrations.models import OutboundMessage

    lead = 2.0  # messages before the receiver goes, and after it is back
    ids = send_at_rate(integration, None, rate, "outage-before", until=time.monotonic() + lead)
    receiver.stop()
    down_at = time.time()
    ids += send_at_rate(integration, None, rate, "outage", until=time.monotonic() + seconds)
    receiver.start()
    back_at = time.time()
    ids += send_at_rate(integration, None, rate, "outage-after", until=time.monotonic() + lead)
    wait_settled(ids, timeout)
    time.sleep(1)  # a duplicate, were there one, would arrive now
    wanted, rows = set(ids), OutboundMessage.objects.filter(pk__in=ids)
    arrivals = [(message_id, arrived) for message_id, arrived in receiver.arrivals() if message_id in wanted]
    received = Counter(message_id for message_id, _ in arrivals)
    # the backlog: messages queued before the receiver came back (later ones find it up)
    backlog = {pk for pk, created in rows.values_list("pk", "created_at") if created.timestamp() < back_at}
    last_arrival = max((arrived for message_id, arrived in arrivals if message_id in backlog), default=None)
    statuses = Counter(rows.values_list("status", flat=True))
    attempts = list(rows.values_list("attempts", flat=True))
    return {
        "outage_seconds": seconds,
        "rate_per_second": rate,
        "sent": len(ids),
        "sent_while_down": sum(
            1 for created in rows.values_list("created_at", flat=True) if down_at <= created.timestamp() < back_at
        ),
        "delivered": statuses.get("delivered", 0),
        "statuses": dict(statuses),
        "lost": len(wanted - set(received)),
        "duplicated": sum(1 for times in received.values() if times > 1),
        "attempts": {"total": sum(attempts), "max_per_message": max(attempts, default=0)},
        "recovery_seconds": round(last_arrival - back_at, 1) if last_arrival and last_arrival > back_at else None,
    }


def retry_settings() -> dict:
    from django.conf import settings

    names = (
        "INTEGRATION_RETRY_BASE_SECONDS",
        "INTEGRATION_RETRY_MULTIPLIER",
        "INTEGRATION_RETRY_MAX_SECONDS",
        "INTEGRATION_BREAKER_FAILURE_THRESHOLD",
        "INTEGRATION_BREAKER_WINDOW_SECONDS",
        "INTEGRATION_BREAKER_COOLDOWN_SECONDS",
    )
    return {name: getattr(settings, name) for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000, help="messages in the burst and in the steady run")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second in the steady run")
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the receiver is down (0: no outage run)")
    parser.add_argument("--outage-rate", type=float, default=5.0, help="messages per second around the outage")
    parser.add_argument("--rate-limit", type=float, default=1000.0, help="the integration's messages/s (0: default)")
    parser.add_argument("--timeout", type=float, default=900.0, help="longest wait for a phase's messages")
    parser.add_argument("--receiver-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--receiver-log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver_port:
        run_receiver(args.receiver_port, Path(args.receiver_log))
        return

    processes: list[subprocess.Popen] = []
    logs = PROJECT / "var" / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="delivery-bench-"))
    receiver = Receiver(free_port(), work / "arrivals.txt")
    try:
        env = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": "bench-secret",
            "SECURE_SSL_REDIRECT": "false",
            "INTEGRATIONS_ALLOW_PRIVATE_TARGETS": "true",  # the receiver is on loopback
            "INTEGRATIONS_CREDENTIAL_KEYS": "bench-1:" + base64.b64encode(os.urandom(32)).decode(),
            "PROMETHEUS_MULTIPROC_DIR": str(work / "prometheus"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "DATABASE_URL": prepare_database("deliverybench"),
        }
        (work / "prometheus").mkdir()
        env["REDIS_URL"] = start_redis(processes)
        env.pop("CELERY_BROKER_URL", None)
        env.pop("CELERY_RESULT_BACKEND", None)
        os.environ.update(env)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=PROJECT, env=env, check=True
        )
        import django

        django.setup()
        from integrations import registry

        receiver.start()
        integration = registry.create_integration(
            {
                "integration_id": INTEGRATION_ID,
                "name": "Bench receiver",
                "type": "webhook",
                "provider": "webhook",
                "endpoint_url": receiver.url,
                "auth_type": "none",
                "rate_limit_per_second": args.rate_limit or None,
            }
        )
        spawn(procfile_command("worker"), env, processes, logs / "delivery-worker.log")
        spawn(procfile_command("beat"), env, processes, logs / "delivery-beat.log")

        warm_up = [send(integration, index, "warm-up") for index in range(10)]
        wait_settled(warm_up, 120)  # the worker is up and every process has a connection

        figures = {
            "database": env["DATABASE_URL"].split(":", 1)[0],
            "worker": " ".join(procfile_command("worker")[1:]),
            "rate_limit_per_second": args.rate_limit or "settings default",
            "retry_settings": retry_settings(),
            "burst": burst(integration, receiver, args.messages, args.timeout),
            "steady": steady(integration, receiver, args.messages, args.rate, args.timeout),
        }
        if args.outage > 0:
            figures["outage"] = outage(integration, receiver, args.outage, args.outage_rate, args.timeout)
        everything = Counter(message_id for message_id, _ in receiver.arrivals())
        figures["duplicated_overall"] = sum(1 for times in everything.values() if times > 1)
        print(
            json.dumps(
                figures,
                indent=2,
                default=lambda value: value.isoformat() if isinstance(value, datetime) else str(value),
            )
        )
    finally:
        receiver.stop()
        stop(processes)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
