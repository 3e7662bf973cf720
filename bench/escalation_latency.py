"""Escalation benchmark on the real stack: the web server (config.web), a Celery worker process, Redis, the database,
and the carrier simulator (in this process) answering the real Twilio SDK over HTTP.

Prints one JSON object:
- alert_to_dial_ms: from `POST /api/v1/alerts/generic` leaving the client to the simulator receiving
  `Calls.create`, over N alerts sent at a steady rate (target: p99 <= 100 ms);
- after_no_answer_ms: from our server storing a no-answer callback to the next `Calls.create`;
- after_missed_deadline_ms: from a deadline with no news of the call (the carrier never answered our
  request) to the next `Calls.create`: the engine asks the carrier, which has no such call, and dials
  the same person again (at most DIAL_REDIAL_LIMIT times), then the next person
  (target for both: p99 <= 250 ms).

Usage: .venv/bin/python bench/escalation_latency.py [--alerts 500] [--rate 20] [--timers 60]
Uses DATABASE_URL / REDIS_URL when set (a fresh database `<name>_bench` is created next to the named
one), else SQLite in var/ and an embedded Redis.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import requests

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
SID, TOKEN = "AC" + "2" * 32, "bench-auth-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "n": len(values),
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": round(ordered[-1], 1),
        "mean": round(statistics.fmean(values), 1),
    }


class SimulatorClient:
    """Reads the simulator process's calls over its HTTP listing."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def calls(self) -> list[dict]:
        return requests.get(f"{self.base_url}/_simulator/calls", timeout=10).json()

    def wait_for_calls(self, n: int, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            calls = self.calls()
            if len(calls) >= n:
                return calls
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {n} calls, the simulator saw {len(calls)}")
            time.sleep(0.2)


def missed_deadlines(first, second, placed: dict[str, list[float]], grace: float) -> list[float]:
    """ms from each ring deadline of the primary's call (ring timeout + DIAL_GRACE_SECONDS after a
    worker claimed it) to the next Calls.create: the same person dialed again after the carrier was
    asked, or, after the last claim, the next person. Claims come from the "asking the carriers" rows
    (they name the claim they ask about) and the attempt's last claim."""
    from incidents.models import EventKind

    asked = first.incident.events.filter(kind=EventKind.DIAL_DELAYED, attempt_id=first.pk, data__has_key="check")
    claims = sorted({datetime.fromisoformat(event.data["check"]).timestamp() for event in asked})
    claims.append(first.dial_started_at.timestamp())
    later = sorted(placed.get(first.token, []) + placed.get(second.token, []))
    ring = first.incident.policy.ring_timeout_seconds
    found = []
    for claim in sorted(set(claims)):
        deadline = claim + ring + grace
        following = [at for at in later if at > deadline]
        if following:
            found.append((following[0] - deadline) * 1000)
    return found


def token_of(call: dict) -> str:
    return call["url"].rstrip("/").rsplit("/", 1)[-1]


def prepare_database(suffix: str = "bench") -> str:
    """A fresh database for one benchmark: `<name>_<suffix>` beside DATABASE_URL's, else SQLite in var/."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        path = PROJECT / "var" / f"{suffix}.sqlite3"
        for ending in ("", "-wal", "-shm"):
            Path(f"{path}{ending}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    import psycopg

    parsed = urlparse(url)
    name = f"{parsed.path.lstrip('/') or 'oncall'}_{suffix}"
    maintenance = parsed._replace(path="/postgres").geturl()  # the named database need not exist
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return parsed._replace(path=f"/{name}").geturl()


def start_redis(processes: list) -> str:
    if os.environ.get("REDIS_URL"):
        import redis

        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
        return os.environ["REDIS_URL"]
    from config.devrun import redis_command

    port = free_port()
    processes.append(subprocess.Popen(redis_command(port, Path(tempfile.mkdtemp())), stdout=subprocess.DEVNULL))
    time.sleep(0.5)
    return f"redis://127.0.0.1:{port}/0"


def spawn(command: list[str], env: dict, processes: list, log: Path) -> None:
    handle = log.open("w")
    processes.append(
        subprocess.Popen(command, cwd=PROJECT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    )


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM to each process group we started, then SIGKILL to whatever is left of it after 20 s (a
    beat that ignored the signal forwarded by config.supervise would otherwise outlive the bench)."""
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            process.terminate()  # the embedded Redis is not a group leader
    deadline = time.monotonic() + 20
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
            process.wait()


def dial_phases(calls: list[dict], sent_at: dict[int, float]) -> dict[str, list[float]]:
    """Where alert -> dial time goes, from the rows' own times: the web request up to the incident's
    insert, the wait until a worker claimed the first call, and the claim to the carrier's request."""
    from orchestrator.models import CallAttempt

    by_token = {
        attempt.token: attempt
        for attempt in CallAttempt.objects.filter(token__in=[token_of(call) for call in calls]).select_related(
            "incident"
        )
    }
    phases: dict[str, list[float]] = {"post_to_incident": [], "incident_to_claim": [], "claim_to_carrier": []}
    for call in calls:
        attempt = by_token.get(token_of(call))
        if attempt is None or attempt.dial_started_at is None:
            continue
        created, claimed = attempt.incident.created_at.timestamp(), attempt.dial_started_at.timestamp()
        phases["post_to_incident"].append((created - sent_at[attempt.incident_id]) * 1000)
        phases["incident_to_claim"].append((claimed - created) * 1000)
        phases["claim_to_carrier"].append((call["requested_at"] - claimed) * 1000)
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0, help="alerts per second")
    parser.add_argument("--timers", type=int, default=60, help="incidents for each timer measurement")
    parser.add_argument("--worker-pool", default="threads", choices=["threads", "prefork"])
    parser.add_argument("--worker-concurrency", type=int, default=16)
    args = parser.parse_args()

    processes: list[subprocess.Popen] = []
    logs = PROJECT / "var" / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        # plain http on loopback: no redirect to https (DEBUG off turns SECURE_SSL_REDIRECT on)
        env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "bench-secret", "LOG_LEVEL": "WARNING"}
        env["SECURE_SSL_REDIRECT"] = "false"
        env["DATABASE_URL"] = prepare_database()
        env["REDIS_URL"] = start_redis(processes)

        web_port, simulator_port = free_port(), free_port()
        env.update(
            VOICE_PROVIDER="twilio",
            TWILIO_ACCOUNT_SID=SID,
            TWILIO_AUTH_TOKEN=TOKEN,
            TWILIO_FROM_NUMBER="+821000000000",
            TWILIO_API_BASE_URL=f"http://127.0.0.1:{simulator_port}",
            PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
            PROVIDER_HTTP_TIMEOUT_SECONDS="1.0",
            DIAL_GRACE_SECONDS="1",
            ESCALATION_SWEEP_SECONDS="2",
        )
        os.environ.update(env)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=PROJECT, env=env, check=True
        )
        import django

        django.setup()
        from accounts.services import create_api_key
        from incidents.services import create_contact, create_policy

        def policy(name: str, *numbers: str, **options):
            contacts = [create_contact(name=f"{name}-{i}", phone=number) for i, number in enumerate(numbers)]
            return create_policy(name=name, contacts=contacts, ring_timeout_seconds=5, **options)

        policy("press1", "+821099900001", is_default=True)
        policy("noanswer", "+821099900003", "+821099900011")
        policy("deadline", "+821099900008", "+821099900021")
        _, api_key = create_api_key(name="bench", scopes=["alerts:write", "incidents:read"])

        spawn(
            [
                sys.executable,
                "-m",
                "config.web",
                "--bind",
                f"127.0.0.1:{web_port}",
                "--workers",
                "2",
                "--threads",
                "8",
            ],
            env,
            processes,
            logs / "web.log",
        )
        spawn(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "calls,timers,default,integrations",
                "--pool",
                args.worker_pool,
                "--concurrency",
                str(args.worker_concurrency),
                "--loglevel",
                "WARNING",
                "--without-mingle",
                "--without-gossip",
            ],
            env,
            processes,
            logs / "worker.log",
        )
        spawn(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING"],
            env,
            processes,
            logs / "beat.log",
        )
        # The simulator runs in its own process, so it does not compete with this client for the GIL.
        spawn(
            [
                sys.executable,
                "-m",
                "simulator",
                "--port",
                str(simulator_port),
                "--ring-seconds",
                "1",
                "--step-seconds",
                "0.01",
                "--api-timeout-seconds",
                "3",
            ],
            env,
            processes,
            logs / "simulator.log",
        )
        simulator = SimulatorClient(f"http://127.0.0.1:{simulator_port}")
        wait_for(f"http://127.0.0.1:{simulator_port}/_simulator/calls")
        base = f"http://127.0.0.1:{web_port}"
        wait_for(f"{base}/healthz")
        session = requests.Session()
        session.headers["Authorization"] = f"Api-Key {api_key}"

        sent_at: dict[int, float] = {}
        lock = threading.Lock()

        def post(index: int, policy_name: str, phase: str) -> None:
            key = f"{phase}-{index}"
            body = {"summary": f"bench {phase} {index}", "dedup_key": key, "policy": policy_name}
            started = time.time()
            response = session.post(f"{base}/api/v1/alerts/generic", json=body, timeout=30)
            response.raise_for_status()
            with lock:
                sent_at[response.json()["incident_id"]] = started

        def steady(count: int, rate: float, policy_name: str, phase: str) -> None:
            with ThreadPoolExecutor(max_workers=32) as pool:
                start = time.monotonic()
                futures = []
                for index in range(count):
                    delay = start + index / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    futures.append(pool.submit(post, index, policy_name, phase))
                for future in futures:
                    future.result()  # an HTTP error fails the benchmark loudly

        # warm up (not measured)
        steady(20, args.rate, "press1", "warmup")
        simulator.wait_for_calls(20, timeout=60)
        sent_at.clear()

        from orchestrator.models import CallAttempt

        tokens = dict(CallAttempt.objects.values_list("token", "incident_id"))
        skip = len(simulator.calls())
        steady(args.alerts, args.rate, "press1", "dial")
        calls = simulator.wait_for_calls(skip + args.alerts, timeout=300)[skip:]
        tokens = dict(CallAttempt.objects.values_list("token", "incident_id"))
        dial_latency = [(call["requested_at"] - sent_at[tokens[token_of(call)]]) * 1000 for call in calls]
        phases = dial_phases(calls, sent_at)

        # timers: next call after a no-answer callback, and after a missed deadline
        skip += args.alerts
        steady(args.timers, 5.0, "noanswer", "noanswer")
        simulator.wait_for_calls(skip + 2 * args.timers, timeout=180)
        steady(args.timers, 5.0, "deadline", "deadline")
        # a deadline incident: its primary's call is asked after and dialed again twice, then the secondary
        placed: dict[str, list[float]] = {}
        for call in simulator.wait_for_calls(skip + 2 * args.timers + 4 * args.timers, timeout=240):
            placed.setdefault(token_of(call), []).append(call["requested_at"])
        after_no_answer, after_deadline = [], []
        for second in CallAttempt.objects.filter(step=2).select_related("incident__policy"):
            first = CallAttempt.objects.get(incident_id=second.incident_id, step=1)
            dialed = min(placed.get(second.token, []), default=None)
            if dialed is None:
                continue
            if second.incident.policy.name == "noanswer" and first.ended_at:
                after_no_answer.append((dialed - first.ended_at.timestamp()) * 1000)
            elif second.incident.policy.name == "deadline" and first.dial_started_at:
                after_deadline += missed_deadlines(first, second, placed, float(env["DIAL_GRACE_SECONDS"]))

        print(
            json.dumps(
                {
                    "database": env["DATABASE_URL"].split(":", 1)[0],
                    "alerts": args.alerts,
                    "rate_per_second": args.rate,
                    "worker": f"{args.worker_pool} x{args.worker_concurrency}",
                    "alert_to_dial_ms": percentiles(dial_latency),
                    "alert_to_dial_phases_ms": {name: percentiles(values) for name, values in phases.items()},
                    "after_no_answer_ms": percentiles(after_no_answer),
                    "after_missed_deadline_ms": percentiles(after_deadline),
                },
                indent=2,
            )
        )
    finally:
        stop(processes)


if __name__ == "__main__":
    main()
