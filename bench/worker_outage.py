"""Worker outage benchmark: alerts arrive while no Celery worker runs, then a worker starts.

The real stack (the web server, beat, Redis, the database, the carrier simulator in its own process); the
worker is started only after `--outage` seconds. Every incident's first contact presses 1, so the
right outcome is: every first contact is rung (late), acknowledges, and nobody else is called.

Prints one JSON object:
- first_contacts_rung / incidents: first contacts who got their call (target: all);
- skipped_undialed: attempts cancelled without ever being dialed (target: 0);
- second_contacts_called: calls to the next person although the first would have pressed 1 (target: 0);
- dialed_after_exhaustion: calls placed for an incident already exhausted (target: 0);
- calls_queue_peak: the most messages waiting in the `calls` queue during the outage;
- recovery_seconds: from the worker's start to the last acknowledgement.

Usage: .venv/bin/python bench/worker_outage.py [--incidents 30] [--outage 90]
Uses DATABASE_URL / REDIS_URL when set (a fresh database `<name>_bench` next to the named one), else
SQLite in var/ and an embedded Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from escalation_latency import (
    PROJECT,
    SID,
    TOKEN,
    SimulatorClient,
    free_port,
    prepare_database,
    spawn,
    start_redis,
    stop,
    token_of,
    wait_for,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=30)
    parser.add_argument("--outage", type=float, default=90.0, help="seconds with no worker")
    args = parser.parse_args()

    processes: list[subprocess.Popen] = []
    logs = PROJECT / "var" / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "bench-secret", "LOG_LEVEL": "WARNING"}
        env["DATABASE_URL"] = prepare_database("outagebench")
        env["REDIS_URL"] = start_redis(processes)
        web_port, simulator_port = free_port(), free_port()
        env.update(
            VOICE_PROVIDER="twilio",
            TWILIO_ACCOUNT_SID=SID,
            TWILIO_AUTH_TOKEN=TOKEN,
            TWILIO_FROM_NUMBER="+821000000000",
            TWILIO_API_BASE_URL=f"http://127.0.0.1:{simulator_port}",
            PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
            SECURE_SSL_REDIRECT="false",
            PROVIDER_HTTP_TIMEOUT_SECONDS="3.0",
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

        first = create_contact(name="first", phone="+821099900001")  # presses 1
        second = create_contact(name="second", phone="+821099900013")  # would not answer
        create_policy(name="outage", contacts=[first, second], is_default=True, ring_timeout_seconds=20)
        _, api_key = create_api_key(name="bench", scopes=["alerts:write", "incidents:read"])

        spawn(
            [sys.executable, "-m", "config.web", "--bind", f"127.0.0.1:{web_port}"],
            env,
            processes,
            logs / "outage-web.log",
        )
        spawn(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING"],
            env,
            processes,
            logs / "outage-beat.log",
        )
        simulator_command = [sys.executable, "-m", "simulator", "--port", str(simulator_port), "--ring-seconds", "1"]
        spawn([*simulator_command, "--step-seconds", "0.01"], env, processes, logs / "outage-simulator.log")
        simulator = SimulatorClient(f"http://127.0.0.1:{simulator_port}")
        wait_for(f"http://127.0.0.1:{simulator_port}/_simulator/calls")
        base = f"http://127.0.0.1:{web_port}"
        wait_for(f"{base}/healthz")

        # the outage: alerts arrive, no worker runs
        import redis

        broker = redis.Redis.from_url(env["REDIS_URL"])
        session = requests.Session()
        session.headers["Authorization"] = f"Api-Key {api_key}"
        outage_started = time.monotonic()
        for index in range(args.incidents):
            body = {"summary": f"outage {index}", "dedup_key": f"outage-{index}"}
            session.post(f"{base}/api/v1/alerts/generic", json=body, timeout=30).raise_for_status()
        queue_peak = 0
        while time.monotonic() - outage_started < args.outage:
            queue_peak = max(queue_peak, broker.llen("calls"))
            time.sleep(1)

        # the worker comes back
        worker_started = time.time()
        worker = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "calls,timers,default,integrations"]
        spawn(
            [*worker, "--pool", "threads", "--concurrency", "16", "--loglevel", "WARNING"],
            env,
            processes,
            logs / "outage-worker.log",
        )

        from incidents.models import Incident

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if not Incident.objects.exclude(state__in=["acknowledged", "exhausted", "resolved"]).exists():
                break
            time.sleep(0.5)
        time.sleep(3)  # let late calls (there should be none) reach the simulator
        print(json.dumps(outcome(args, simulator, queue_peak, worker_started), indent=2))
    finally:
        stop(processes)


def outcome(args, simulator: SimulatorClient, queue_peak: int, worker_started: float) -> dict:
    from incidents.models import Incident
    from orchestrator.models import CallAttempt

    calls = simulator.calls()
    called_tokens = {token_of(call): call for call in calls}
    attempts = list(CallAttempt.objects.select_related("incident"))
    firsts = [attempt for attempt in attempts if attempt.step == 1]
    exhausted_at = {
        incident.pk: incident.updated_at.timestamp() for incident in Incident.objects.filter(state="exhausted")
    }
    acknowledged = list(Incident.objects.filter(state="acknowledged").values_list("acknowledged_at", flat=True))
    return {
        "database": os.environ["DATABASE_URL"].split(":", 1)[0],
        "incidents": args.incidents,
        "outage_seconds": args.outage,
        "first_contacts_rung": sum(1 for attempt in firsts if attempt.token in called_tokens),
        "acknowledged": len(acknowledged),
        "skipped_undialed": sum(
            1 for attempt in attempts if attempt.status == "canceled" and attempt.dial_started_at is None
        ),
        "second_contacts_called": sum(1 for attempt in attempts if attempt.step > 1 and attempt.token in called_tokens),
        "dialed_after_exhaustion": sum(
            1
            for attempt in attempts
            if attempt.token in called_tokens
            and attempt.incident_id in exhausted_at
            and called_tokens[attempt.token]["requested_at"] > exhausted_at[attempt.incident_id]
        ),
        "calls_queue_peak": queue_peak,
        "recovery_seconds": round(max(a.timestamp() for a in acknowledged) - worker_started, 1)
        if acknowledged
        else None,
    }


if __name__ == "__main__":
    main()
