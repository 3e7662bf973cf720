"""Alert storm benchmark (issue 13): Alertmanager posts against the real stack, as the Procfile runs it.

Starts, on a fresh database and Redis: the web server (`python -m config.web`) with the Procfile's
web entry (its --workers/--threads unless --web-workers/--web-threads say otherwise), every Celery
entry of the Procfile as written there (worker(s) and beat, through config.supervise), and the carrier
simulator in its own process. The default policy's contact ends in 1, so the simulator presses 1.

Phases (one JSON object at the end):
1. storm: --posts firing posts to POST /api/v1/alerts/alertmanager over --keys groupKeys (post i is
   for key i % keys, so each key's posts spread through the run), sent closed-loop by --senders
   keep-alive connections spread over --client-processes processes. Every alert has its own
   fingerprint, labels and startsAt, so the stored rows can be checked for every alert.
2. resolve: one resolved post per key; how many incidents are resolved within --resolve-wait s.
3. overload (--overload-rate > 0): new-incident alerts (a groupKey each) at that rate for
   --overload-seconds, open-loop; alert -> Calls.create, and incidents never rung after the queues
   drained (target 0).

Usage: .venv/bin/python bench/alert_storm.py [--posts 10000 --keys 100 --senders 32] [--overload-rate 0]
Uses DATABASE_URL / REDIS_URL when set (a fresh `<name>_stormbench` database next to the named one; the
Redis database is flushed), else SQLite in var/ and an embedded Redis. Logs: var/bench-logs/storm-*.log.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from escalation_latency import (
    PROJECT,
    SID,
    TOKEN,
    SimulatorClient,
    free_port,
    percentiles,
    prepare_database,
    spawn,
    start_redis,
    stop,
    token_of,
    wait_for,
)

ENDPOINT = "/api/v1/alerts/alertmanager"
PRESSES_1 = "+821099900001"  # the simulator's callee for a number ending in 1 presses 1
# Every fingerprint sent starts with this mark (16 hex digits in all, as Alertmanager's), so it can
# be found in whatever form the code stores alerts: raw payloads, an aggregate, text.
MARK = "5707"
FINGERPRINT = re.compile(rf"\b{MARK}[0-9a-f]{{12}}\b")
PHASES = {"warmup": 0, "storm": 1, "overload": 3}
FINAL_STATES = ("acknowledged", "resolved", "exhausted")


class Row(NamedTuple):
    index: int
    key: int
    sent: float  # epoch seconds when the request left
    ms: float
    status: int  # 0: connection error
    incident: int | None
    error: str
    lag_ms: float | None  # open loop: how late the client sent it


# --- the payloads ----------------------------------------------------------------------------------


def group_key(phase: str, key: int) -> str:
    return f'{{}}/{{severity="critical"}}:{{alertname="AlertStorm", group="{phase}-{key:05d}"}}'


def fingerprint(phase: str, index: int, n: int) -> str:
    return f"{MARK}{PHASES[phase]:x}{index:07x}{n:04x}"


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def alertmanager_body(phase: str, index: int, key: int, alerts: int, status: str, epoch: float) -> dict:
    """A version 4 notification of group `key`, its alerts distinct in fingerprint, labels, startsAt
    (`epoch` + 1 ms per post index + 1 us per alert)."""
    group = f"{phase}-{key:05d}"
    now = time.time()
    items = []
    for n in range(alerts):
        labels = {"alertname": "AlertStorm", "severity": "critical", "group": group, "job": "node"}
        labels["instance"] = f"host-{index}-{n}:9100"
        items.append(
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": f"alert storm {group}", "description": f"post {index}, alert {n}"},
                "startsAt": rfc3339(epoch + index * 1e-3 + n * 1e-6),
                "endsAt": rfc3339(now) if status == "resolved" else "0001-01-01T00:00:00Z",
                "generatorURL": f"http://prometheus.bench:9090/graph?g0.expr=up%3D%3D0&post={index}",
                "fingerprint": fingerprint(phase, index, n),
            }
        )
    common = {k: v for k, v in items[0]["labels"].items() if all(a["labels"].get(k) == v for a in items)}
    return {
        "version": "4",
        "groupKey": group_key(phase, key),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "oncall-bench",
        "groupLabels": {"alertname": "AlertStorm", "group": group},
        "commonLabels": common,
        "commonAnnotations": {"summary": f"alert storm {group}"},
        "externalURL": "http://alertmanager.bench:9093",
        "alerts": items,
    }


# --- the client: processes of threads, one keep-alive connection per thread -------------------------


def _post(conn: http.client.HTTPConnection, body: bytes, headers: dict) -> tuple[int, bytes, bool]:
    """(status, body, reconnected). A kept-alive connection the server closed while it was idle is
    opened again once: the server had read no request on it, so nothing is sent twice."""
    reused = conn.sock is not None
    for attempt in (1, 2):
        try:
            conn.request("POST", ENDPOINT, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            if response.will_close:
                conn.close()
            return response.status, data, attempt == 2
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            conn.close()
            if not reused or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _sender(port, headers, work: queue.Queue, job: dict, start: float, out: list, reconnects: list) -> None:
    """Takes the next post (in index order) when free; an open-loop post waits for its time."""
    conn, reconnected_here = http.client.HTTPConnection("127.0.0.1", port, timeout=120), 0
    while True:
        try:
            index, key, offset = work.get_nowait()
        except queue.Empty:
            reconnects.append(reconnected_here)
            return
        lag = None
        if offset is not None:
            time.sleep(max(0.0, start + offset - time.time()))
            lag = max(0.0, (time.time() - start - offset) * 1000)
        body = json.dumps(
            alertmanager_body(job["phase"], index, key, job["alerts"], job["status"], job["epoch"])
        ).encode()
        sent, began, incident, error = time.time(), time.perf_counter(), None, ""
        try:
            code, data, reconnected = _post(conn, body, headers)
            reconnected_here += reconnected
            if 200 <= code < 300:
                incident = json.loads(data).get("incident_id")
            else:
                error = data[:200].decode(errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            code, error = 0, type(exc).__name__
            conn.close()
        out.append((index, key, sent, (time.perf_counter() - began) * 1000, code, incident, error, lag))


def sender_process(job: dict, items: list, threads: int, ready, go, start, results) -> None:
    """One client process: `threads` senders share its posts; puts its rows and its CPU time."""
    headers = {"Authorization": f"Api-Key {job['api_key']}", "Content-Type": "application/json"}
    work: queue.Queue = queue.Queue()
    for item in items:
        work.put(item)
    outs, reconnects = [[] for _ in range(threads)], []
    ready.wait()
    go.wait()
    cpu = time.process_time()
    pool = [
        threading.Thread(target=_sender, args=(job["port"], headers, work, job, start.value, out, reconnects))
        for out in outs
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    rows = [row for out in outs for row in out]
    results.put({"rows": rows, "cpu_seconds": time.process_time() - cpu, "reconnects": sum(reconnects)})


@dataclass
class Client:
    port: int
    api_key: str
    processes: int

    def send(self, posts, *, phase: str, senders: int, alerts=1, status="firing", rate=None):
        """Posts [(index, key)] closed-loop, or open-loop at `rate` per second; returns (rows, load)."""
        ctx = multiprocessing.get_context("spawn")  # no inherited database connections, no shared GIL
        senders = max(1, min(senders, len(posts)))
        processes = max(1, min(self.processes, senders))
        job = {"port": self.port, "api_key": self.api_key, "phase": phase, "alerts": alerts, "status": status}
        job["epoch"] = time.time() - 3600 - len(posts) * 1e-3  # every startsAt lies in the past
        scheduled = [(index, key, None if rate is None else n / rate) for n, (index, key) in enumerate(posts)]
        ready, go, start, results = ctx.Barrier(processes + 1), ctx.Event(), ctx.Value("d", 0.0), ctx.Queue()
        threads = -(-senders // processes)
        children = [
            ctx.Process(target=sender_process, args=(job, scheduled[p::processes], threads, ready, go, start, results))
            for p in range(processes)
        ]
        for child in children:
            child.start()
        ready.wait()
        start.value = time.time() + 0.05
        go.set()
        outcome = [results.get() for _ in children]
        for child in children:
            child.join()
        rows = [Row(*row) for result in outcome for row in result["rows"]]
        first_sent, wall = min(r.sent for r in rows), max(r.sent + r.ms / 1000 for r in rows)
        wall -= first_sent
        mode = (
            "closed loop: a sender posts when its previous answer arrived" if rate is None else f"open loop at {rate}/s"
        )
        load = {
            "client": f"{processes} processes (multiprocessing spawn) x {threads} threads, "
            "each thread one http.client keep-alive connection, taking the next post when free",
            "mode": mode,
            "sent_per_second": round(len(rows) / max(1e-9, max(r.sent for r in rows) - first_sent), 1),
            "client_cpu_share": round(sum(r["cpu_seconds"] for r in outcome) / (wall * psutil.cpu_count()), 3),
            "reconnects_after_idle_close": sum(r["reconnects"] for r in outcome),
        }
        return rows, load


# --- the stack ---------------------------------------------------------------------------------------


def procfile(env: dict) -> dict[str, list[str]]:
    """The Procfile's entries as argument lists, ${NAME:-default} expanded from `env`."""
    entries = {}
    for line in (PROJECT / "Procfile").read_text().splitlines():
        name, colon, command = line.partition(":")
        if colon and name.strip() and not name.lstrip().startswith("#"):
            command = re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: env.get(m[1]) or m[2] or "", command)
            argv = [part for part in shlex.split(command) if not re.fullmatch(r"[A-Z_]+=.*", part)]
            entries[name.strip()] = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
    return entries


def with_options(argv: list[str], **options: int | None) -> list[str]:
    """`argv` with the value of each --name given replaced (or added); None keeps argv's."""
    given = {f"--{name}": str(value) for name, value in options.items() if value is not None}
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token in given:
            skip = True
        elif token.split("=", 1)[0] not in given:
            out.append(token)
    return out + [part for name, value in given.items() for part in (name, value)]


def cpu_seconds(roles: dict[str, subprocess.Popen]) -> dict[str, float]:
    """CPU (user+system) used so far by each role's process tree, and by the PostgreSQL and Redis
    servers (every database on them: other users of the machine are counted too)."""
    totals: dict[str, float] = defaultdict(float)
    for role, popen in roles.items():
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(popen.pid)
            for process in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    totals[role] += sum(process.cpu_times()[:2])
    for process in psutil.process_iter(["name", "cpu_times"]):
        name = process.info["name"] or ""
        for server in ("postgres", "redis-server"):
            if name.startswith(server) and process.info["cpu_times"]:
                totals[f"{server} (all on the machine)"] += sum(process.info["cpu_times"][:2])
    return totals


class Sampler:
    """During a phase: the peak length of each Celery queue in Redis, and CPU seconds by process."""

    def __init__(self, redis_url: str, roles: dict[str, subprocess.Popen]):
        import redis

        from config.celery import QUEUES

        self.redis, self.roles, self.peaks, self.stop = redis.Redis.from_url(redis_url), roles, Counter(), None
        # kombu keeps a priority's messages in `<queue>\x06\x16<priority>` beside `<queue>`
        self.keys = {queue: [queue, *(f"{queue}\x06\x16{p}" for p in range(1, 10))] for queue in QUEUES}

    def __enter__(self):
        self.started, self.cpu, self.machine = time.monotonic(), cpu_seconds(self.roles), psutil.cpu_times()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            pipe = self.redis.pipeline()
            for keys in self.keys.values():
                for key in keys:
                    pipe.llen(key)
            lengths = iter(pipe.execute())
            for queue_name, keys in self.keys.items():
                self.peaks[queue_name] = max(self.peaks[queue_name], sum(next(lengths) for _ in keys))

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        wall, after, machine = time.monotonic() - self.started, cpu_seconds(self.roles), psutil.cpu_times()
        busy = sum(getattr(machine, f) - getattr(self.machine, f) for f in ("user", "system", "nice", "irq", "softirq"))
        self.report = {
            "seconds": round(wall, 1),
            "machine_busy_share": round(busy / (wall * psutil.cpu_count()), 2),
            "cpu_seconds": {role: round(after[role] - self.cpu.get(role, 0.0), 1) for role in sorted(after)},
            "queue_peaks": dict(self.peaks),
        }


# --- what the database and the simulator saw -----------------------------------------------------------


def incidents_by_key(phase: str, keys: range) -> dict[int, list]:
    from incidents.ingestion import namespaced_key
    from incidents.models import Incident, Source

    dedup = {namespaced_key(Source.ALERTMANAGER, group_key(phase, key)): key for key in keys}
    found: dict[int, list] = {key: [] for key in keys}
    for incident in Incident.objects.filter(dedup_key__in=list(dedup)).order_by("pk"):
        found[dedup[incident.dedup_key]].append(incident)
    return found


def calls_by_incident(simulator: SimulatorClient, incident_ids: list[int]) -> dict[int, list[float]]:
    """When the simulator received each accepted Calls.create, per incident."""
    from orchestrator.models import CallAttempt

    tokens = dict(CallAttempt.objects.filter(incident_id__in=incident_ids).values_list("token", "incident_id"))
    calls: dict[int, list[float]] = defaultdict(list)
    for call in simulator.calls():
        if token_of(call) in tokens and call["api_status"] == 201:
            calls[tokens[token_of(call)]].append(call["requested_at"])
    return dict(calls)


def wait_until(predicate, timeout: float, step: float = 0.5) -> float | None:
    """Seconds until `predicate()` held, or None after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(step)
    return None


def _walk(value, found: set) -> None:
    if isinstance(value, str):
        found.update(FINGERPRINT.findall(value))
    elif isinstance(value, dict):
        for item in value.items():
            _walk(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _walk(item, found)


def stored_alerts(incident_ids: list[int], sent: set[str]) -> dict:
    """Searches every row that points at these incidents (directly, or through a model that does) for
    the fingerprints sent, in any column and form (raw payloads, an aggregate, text)."""
    from django.apps import apps

    from incidents.models import Incident

    def links(model) -> list:
        return [f for f in model._meta.concrete_fields if f.is_relation and f.related_model is not None]

    report, found = {"alerts_accepted": len(sent)}, set()
    for model in apps.get_models():
        paths = [f.name for f in links(model) if f.related_model is Incident]
        paths += [
            f"{f.name}__{g.name}" for f in links(model) for g in links(f.related_model) if g.related_model is Incident
        ]
        if model is Incident or not paths:
            continue
        columns = [f.attname for f in model._meta.concrete_fields]
        rows = with_ours = 0
        for values in (
            model._default_manager.filter(**{f"{paths[0]}__in": incident_ids}).values_list(*columns).iterator(2000)
        ):
            mine: set[str] = set()
            _walk(values, mine)
            rows, with_ours, found = rows + 1, with_ours + bool(mine), found | mine
        report[model._meta.label] = {"rows": rows, "rows_with_our_fingerprints": with_ours}
    return {**report, "alerts_found": len(found & sent), "missing": len(sent - found)}


def status_counts(rows: list[Row]) -> dict:
    classes = Counter("connection_error" if r.status == 0 else f"{r.status // 100}xx" for r in rows)
    details = Counter(str(r.status) if r.status else r.error for r in rows if not 200 <= r.status < 300)
    return {**classes, "by_status_or_error": dict(details)} if details else dict(classes)


def first_error(rows: list[Row]) -> str | None:
    return next((f"{r.status} {r.error}"[:300] for r in rows if not 200 <= r.status < 300), None)


def log_summary(logs: Path) -> dict:
    """Tracebacks and ERROR lines in each process's log: where a 5xx or a failed task left its trace."""
    summary = {}
    for log in sorted(logs.glob("storm-*.log")):
        lines = log.read_text(errors="replace").splitlines()
        errors = [line for line in lines if "Traceback" in line or " ERROR " in line or '"ERROR"' in line]
        summary[log.stem] = {"lines": len(lines), "errors": len(errors), "first_error": (errors or [None])[0]}
    return summary


# --- the phases --------------------------------------------------------------------------------------


def by_five_seconds(accepted: list[Row], start: float) -> list[dict]:
    """Answers per second and their p99 in each 5 s of the run: the opening burst (every key's first
    alert opens an incident and rings a phone) apart from the steady storm of duplicates."""
    windows: dict[int, list[Row]] = defaultdict(list)
    for r in accepted:
        windows[int((r.sent + r.ms / 1000 - start) // 5)].append(r)
    return [
        {
            "from_s": 5 * n,
            "per_second": round(len(windows[n]) / 5, 1),
            "p99_ms": percentiles([r.ms for r in windows[n]])["p99"],
        }
        for n in sorted(windows)
    ]


def storm(args, client: Client, simulator: SimulatorClient, sampler) -> tuple[dict, dict]:
    posts = [(index, index % args.keys) for index in range(args.posts)]
    with sampler() as during:
        rows, load = client.send(posts, phase="storm", senders=args.senders, alerts=args.alerts_per_post)
    start = min(r.sent for r in rows)
    wall = max(r.sent + r.ms / 1000 for r in rows) - start
    if args.rows_out:  # every post's send time, latency and answer, to see where the slow ones were
        Path(args.rows_out).write_text(json.dumps([r._asdict() for r in rows]))
    accepted = [r for r in rows if 200 <= r.status < 300]
    incidents = incidents_by_key("storm", range(args.keys))
    ids = [incident.pk for group in incidents.values() for incident in group]
    wait_until(lambda: len(calls_by_incident(simulator, ids)) >= len(ids), args.call_wait)
    time.sleep(3)  # a second call for an incident (there should be none) has time to show
    calls = calls_by_incident(simulator, ids)
    first_post: dict[int, float] = {}
    for r in rows:
        first_post[r.key] = min(first_post.get(r.key, r.sent), r.sent)
    first_calls = {key: min(calls[group[0].pk]) for key, group in incidents.items() if group and calls.get(group[0].pk)}
    sent = {fingerprint("storm", r.index, n) for r in accepted for n in range(args.alerts_per_post)}
    report = {
        "posts": len(rows),
        "keys": args.keys,
        "alerts_per_post": args.alerts_per_post,
        "senders": args.senders,
        "load": load,
        "seconds": round(wall, 2),
        "accepted_per_second": round(len(accepted) / wall, 1),
        "latency_ms": percentiles([r.ms for r in rows]),
        "by_5_seconds": by_five_seconds(accepted, start),
        "responses": status_counts(rows),
        "created_201": sum(1 for r in rows if r.status == 201),
        "created_201_latency_ms": percentiles([r.ms for r in rows if r.status == 201]),
        "duplicates_in_first_5s_latency_ms": percentiles(
            [r.ms for r in rows if r.status == 200 and r.sent - start < 5]
        ),
        "first_error": first_error(rows),
        "incidents_opened": len(ids),
        "keys_without_incident": sum(1 for group in incidents.values() if not group),
        "keys_with_several_incidents": sum(1 for group in incidents.values() if len(group) > 1),
        "incidents_called": len(calls),
        "calls": sum(len(times) for times in calls.values()),
        "incidents_called_more_than_once": sum(1 for times in calls.values() if len(times) > 1),
        "first_post_to_last_first_call_s": round(max(first_calls.values()) - start, 2) if first_calls else None,
        "key_first_post_to_first_call_ms": percentiles([(at - first_post[k]) * 1000 for k, at in first_calls.items()]),
        "alerts_stored": stored_alerts(ids, sent),
        "during": during.report,
    }
    return report, incidents


def resolve(args, client: Client, incidents: dict[int, list]) -> dict:
    from incidents.models import Incident

    posts = [(args.posts + key, key) for key in range(args.keys)]  # indexes after the storm's: new fingerprints
    began = time.monotonic()
    rows, _ = client.send(posts, phase="storm", senders=args.senders, status="resolved")
    answered = time.monotonic()
    latest = [group[-1].pk for group in incidents.values() if group]

    def resolved() -> int:
        return Incident.objects.filter(pk__in=latest, state="resolved").count()

    waited = wait_until(lambda: resolved() == len(latest), args.resolve_wait, step=0.1)
    return {
        "posts": len(rows),
        "latency_ms": percentiles([r.ms for r in rows]),
        "responses": status_counts(rows),
        "first_error": first_error(rows),
        "incidents": len(latest),
        "resolved_within_wait": resolved(),
        "wait_seconds": args.resolve_wait,
        "seconds_to_all_resolved": None if waited is None else round(answered - began + waited, 2),
    }


def overload(args, client: Client, simulator: SimulatorClient, sampler) -> dict:
    from incidents.models import Incident
    from orchestrator.models import CallAttempt

    count = int(args.overload_rate * args.overload_seconds)
    senders = max(args.senders, min(1000, int(args.overload_rate * 4)))  # up to 4 s of posts in flight
    posts = [(index, index) for index in range(count)]
    with sampler() as during:
        rows, load = client.send(posts, phase="overload", senders=senders, rate=args.overload_rate)
        incidents = incidents_by_key("overload", range(count))
        ids = [incident.pk for group in incidents.values() for incident in group]
        unfinished = Incident.objects.filter(pk__in=ids).exclude(state__in=FINAL_STATES)
        drained = wait_until(lambda: not unfinished.exists(), args.drain_timeout, step=1.0)
    time.sleep(3)  # late calls (there should be none) reach the simulator
    calls = calls_by_incident(simulator, ids)
    states = dict(Incident.objects.filter(pk__in=ids).values_list("pk", "state"))
    first_post = {r.key: r.sent for r in rows}
    to_call = [(min(calls[g[0].pk]) - first_post[k]) * 1000 for k, g in incidents.items() if g and calls.get(g[0].pk)]
    never_rung = [pk for pk in ids if not calls.get(pk)]
    return {
        "rate_per_second": args.overload_rate,
        "seconds": args.overload_seconds,
        "posts": len(rows),
        "senders": senders,
        "load": load,
        "send_lag_ms": percentiles([r.lag_ms for r in rows]),
        "latency_ms": percentiles([r.ms for r in rows]),
        "responses": status_counts(rows),
        "first_error": first_error(rows),
        "incidents_created": len(ids),
        "alert_to_call_ms": percentiles(to_call),
        "states": dict(Counter(states.values())),
        "drained_in_seconds": None if drained is None else round(drained, 1),
        "drain_timeout_seconds": args.drain_timeout,
        "never_rung": len(never_rung),
        "exhausted_never_rung": sum(1 for pk in never_rung if states.get(pk) == "exhausted"),
        "undialed_at_end": sum(1 for pk in never_rung if states.get(pk) not in FINAL_STATES),
        "incidents_called_more_than_once": sum(1 for times in calls.values() if len(times) > 1),
        "attempts_canceled_undialed": CallAttempt.objects.filter(
            incident_id__in=ids, status="canceled", dial_started_at__isnull=True
        ).count(),
        "during": during.report,
    }


# --- main ----------------------------------------------------------------------------------------------


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--posts", type=int, default=10000)
    add("--keys", type=int, default=100, help="Alertmanager groupKeys of the storm")
    add("--senders", type=int, default=32, help="concurrent keep-alive connections")
    add("--client-processes", type=int, default=4)
    add("--rows-out", help="write the storm's posts (send time, ms, status, incident) to this JSON file")
    add("--alerts-per-post", type=int, default=1)
    add("--web-workers", type=int, help="web --workers (default: the Procfile's)")
    add("--web-threads", type=int, help="web --threads (default: the Procfile's)")
    add("--ring-timeout", type=int, default=10, help="the policy's ring timeout (s)")
    add("--max-attempts", type=int, default=2, help="the policy's calls before it is exhausted")
    add("--log-level", help="LOG_LEVEL of the stack (default: the settings')")
    add("--alert-rate-per-key", help="ALERT_RATE_PER_KEY (default: the settings')")
    add("--call-wait", type=float, default=120, help="longest wait for the storm's first calls (s)")
    add("--resolve-wait", type=float, default=5)
    add("--overload-rate", type=float, default=0, help="new incidents per second; 0 skips the phase")
    add("--overload-seconds", type=float, default=30)
    add("--drain-timeout", type=float, default=300)
    return parser.parse_args()


def start_stack(args, env: dict, processes: list, logs: Path) -> tuple[dict, dict]:
    """The web server (the Procfile's web entry), every Celery entry of the Procfile, the simulator."""
    entries = procfile(env)
    commands = {"web": with_options(entries["web"], workers=args.web_workers, threads=args.web_threads)}
    commands |= {name: argv for name, argv in entries.items() if "celery" in argv}
    commands["simulator"] = [sys.executable, "-m", "simulator", "--port", env["CARRIER_SIMULATOR_PORT"]]
    commands["simulator"] += ["--ring-seconds", "1", "--step-seconds", "0.01", "--api-timeout-seconds", "3"]
    roles = {}
    for name, argv in commands.items():
        spawn(argv, env, processes, logs / f"storm-{name}.log")
        roles[name] = processes[-1]
    return roles, {name: shlex.join(argv).replace(sys.executable, "python") for name, argv in commands.items()}


def stack_environment(web_port: int, simulator_port: int, metrics_dir: str, args) -> dict:
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "bench-secret", "SECURE_SSL_REDIRECT": "false"}
    env.update(
        WEB_PORT=str(web_port),
        CARRIER_SIMULATOR_PORT=str(simulator_port),
        PROMETHEUS_MULTIPROC_DIR=metrics_dir,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # the Procfile's `celery`
        VOICE_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID=SID,
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_FROM_NUMBER="+821000000000",
        TWILIO_API_BASE_URL=f"http://127.0.0.1:{simulator_port}",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
    )
    env.setdefault("PROVIDER_HTTP_TIMEOUT_SECONDS", "3.0")
    env.setdefault("DIAL_GRACE_SECONDS", "5")
    for name, value in (("LOG_LEVEL", args.log_level), ("ALERT_RATE_PER_KEY", args.alert_rate_per_key)):
        if value:
            env[name] = value
    return env


def main() -> None:
    args = arguments()
    processes: list[subprocess.Popen] = []
    logs = PROJECT / "var" / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("storm-*.log"):
        old.unlink()
    metrics_dir = tempfile.mkdtemp(prefix="stormbench-metrics-")  # this run's web/worker metric files
    try:
        web_port, simulator_port = free_port(), free_port()
        env = stack_environment(web_port, simulator_port, metrics_dir, args)
        env["DATABASE_URL"] = prepare_database("stormbench")
        env["REDIS_URL"] = start_redis(processes)
        os.environ.update(env)
        migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
        subprocess.run(migrate, cwd=PROJECT, env=env, check=True)
        import django

        django.setup()
        from django.conf import settings

        from accounts.services import create_api_key
        from incidents.services import create_contact, create_policy

        contact = create_contact(name="presses-1", phone=PRESSES_1)
        options = {"ring_timeout_seconds": args.ring_timeout, "max_attempts": args.max_attempts}
        create_policy(name="storm", contacts=[contact], is_default=True, **options)
        _, api_key = create_api_key(name="storm-bench", scopes=["alerts:write", "incidents:read"])
        roles, commands = start_stack(args, env, processes, logs)
        simulator = SimulatorClient(f"http://127.0.0.1:{simulator_port}")
        wait_for(f"http://127.0.0.1:{simulator_port}/_simulator/calls")
        wait_for(f"http://127.0.0.1:{web_port}/healthz")
        client = Client(web_port, api_key, args.client_processes)

        def sampler() -> Sampler:
            return Sampler(env["REDIS_URL"], roles)

        # warm-up (not measured): every web thread imports and connects, the worker is up
        rows, _ = client.send([(i, i % 4) for i in range(32)], phase="warmup", senders=8)
        if any(not 200 <= r.status < 300 for r in rows):
            raise RuntimeError(f"warm-up failed: {first_error(rows)}; logs: {json.dumps(log_summary(logs))}")
        warmup = [i.pk for group in incidents_by_key("warmup", range(4)).values() for i in group]
        if wait_until(lambda: len(calls_by_incident(simulator, warmup)) >= 4, 180) is None:
            raise RuntimeError(f"the warm-up incidents were never called; logs: {json.dumps(log_summary(logs))}")
        time.sleep(2)

        result = {
            "database": env["DATABASE_URL"].split(":", 1)[0],
            "commands": commands,
            "settings": {
                name: getattr(settings, name) for name in ("ALERT_RATE_PER_KEY", "DIAL_GRACE_SECONDS", "LOG_LEVEL")
            },
            "policy": f"1 contact pressing 1, ring timeout {args.ring_timeout} s, {args.max_attempts} attempts",
            "cpus": psutil.cpu_count(),
        }
        result["storm"], storm_incidents = storm(args, client, simulator, sampler)
        result["resolve"] = resolve(args, client, storm_incidents)
        if args.overload_rate > 0:
            result["overload"] = overload(args, client, simulator, sampler)
        result["logs"] = log_summary(logs)
        print(json.dumps(result, indent=2))
    finally:
        stop(processes)
        shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
