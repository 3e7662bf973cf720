"""/metrics benchmark: scrape time with 4 web workers and 2 Celery pool processes after 10,000
incidents, and the metrics middleware's overhead per request.

Prints one JSON object:
- scrape_ms: p50/p90/p99/max of GET /metrics (with the bearer token) over --scrapes scrapes, after
  --incidents incidents are in the database (a mix of states) and --requests requests over several
  routes and --tasks tasks have filled every process's metrics files (target: p99 <= 50 ms);
- scrape_bytes, series, metrics_files: what one scrape carries and how many files it reads;
- middleware_overhead_ms: per request, the MetricsMiddleware around a view that does nothing, minus
  the same without it, over --calls calls in this process (multiprocess files; target <= 0.2 ms).

Usage: .venv/bin/python bench/metrics_scrape.py [--incidents 10000] [--scrapes 200]
Uses DATABASE_URL / REDIS_URL when set (a fresh database `<name>_metricsbench` is created next to
the named one; the Redis database is flushed), else SQLite in var/ and an embedded Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench.escalation_latency import free_port, prepare_database, spawn, start_redis, wait_for  # noqa: E402

TOKEN = "bench-metrics-token"  # noqa: S105


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)  # noqa: E731
    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": round(ordered[-1], 2), "n": len(values)}


def fill_database(count: int) -> None:
    """Incidents in a mix of states (most resolved, as in a database that has lived a while)."""

    from incidents.models import Incident, IncidentState
    from incidents.services import create_contact, create_policy

    policy = create_policy(
        name="bench", contacts=[create_contact(name="bench", phone="+821099900001")], is_default=True
    )
    states = [IncidentState.RESOLVED] * 17 + [IncidentState.ACKNOWLEDGED, IncidentState.EXHAUSTED]
    rows = [Incident(summary=f"bench incident {i}", policy=policy, state=states[i % len(states)]) for i in range(count)]
    Incident.objects.bulk_create(rows, batch_size=2000)


def middleware_overhead_ms(calls: int) -> float:
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve

    from config.middleware import MetricsMiddleware

    request = RequestFactory().get("/api/v1/incidents/1")
    request.resolver_match = resolve("/api/v1/incidents/1")
    response = HttpResponse(status=200)

    def view(_request):
        return response

    wrapped = MetricsMiddleware(view)

    def run(handler) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            handler(request)
        return time.perf_counter() - started

    run(wrapped)  # warm: the series' first write creates its entry in the file
    bare, measured = min(run(view) for _ in range(3)), min(run(wrapped) for _ in range(3))
    return round((measured - bare) / calls * 1000, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()

    processes: list[subprocess.Popen] = []
    logs = PROJECT / "var" / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    metrics_dir = tempfile.mkdtemp(prefix="bench-metrics-")
    try:
        env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "bench-secret", "LOG_LEVEL": "WARNING"}
        env.update(METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR=metrics_dir, SECURE_SSL_REDIRECT="false")
        env["DATABASE_URL"] = prepare_database("metricsbench")
        env["REDIS_URL"] = start_redis(processes)
        os.environ.update(env)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=PROJECT, env=env, check=True
        )
        import django

        django.setup()
        from accounts.services import create_api_key
        from config.celery import app as celery_app

        fill_database(args.incidents)
        _, api_key = create_api_key(name="bench", scopes=["incidents:read"])

        web_port = free_port()
        web = [sys.executable, "-m", "config.web", "--bind", f"127.0.0.1:{web_port}"]
        web += ["--workers", "4", "--threads", "4"]
        spawn(web, env, processes, logs / "metrics-web.log")
        worker = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default", "--pool", "prefork"]
        worker += ["--concurrency", "2", "--loglevel", "WARNING", "--without-mingle", "--without-gossip"]
        spawn(worker, env, processes, logs / "metrics-worker.log")
        base = f"http://127.0.0.1:{web_port}"
        wait_for(f"{base}/healthz")

        # every process counts something: requests over several routes, tasks in both pool processes
        routes = ["/healthz", "/health", "/api/v1/incidents", "/api/v1/incidents/1", "/api/v1/contacts", "/nope"]
        headers = {"Authorization": f"Api-Key {api_key}"}

        def hit(i: int) -> None:
            requests.get(base + routes[i % len(routes)], headers=headers, timeout=30)

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(hit, range(args.requests)))
        for _ in range(args.tasks):
            celery_app.send_task("config.beat_heartbeat")
        time.sleep(5)

        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        timings, body = [], b""
        for _ in range(args.scrapes):
            started = time.perf_counter()
            response = session.get(f"{base}/metrics", timeout=30)
            timings.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            body = response.content
        series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
        print(
            json.dumps(
                {
                    "incidents": args.incidents,
                    "web_processes": 4,
                    "worker_processes": 2,
                    "scrape_ms": percentiles(timings),
                    "scrape_bytes": len(body),
                    "series": series,
                    "metrics_files": len(list(Path(metrics_dir).glob("*.db"))),
                    "middleware_overhead_ms": middleware_overhead_ms(args.calls),
                    "database": "postgresql" if env["DATABASE_URL"].startswith("postgres") else "sqlite",
                },
                indent=2,
            )
        )
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
