"""`/metrics`: the seed's system, API and database metrics, and the scrape that adds every process up.

What is counted as it happens (requests, queries, incidents, calls, tasks, messages) is a counter or a
histogram in multiprocess files (config/prometheus.py). What is current (CPU, sessions, incidents by
state, queue depth, breakers, heartbeats) is read at scrape time by collectors: the seed's here, each
app's own in `<app>/metrics.py` (`SCRAPE_COLLECTORS`). A source that cannot be read is logged and
counted in `aicc_metrics_source_errors_total{source}`; its series are left out of that scrape and the
rest is still served.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
import weakref
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from functools import cache
from importlib import import_module

import psutil
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.backends.signals import connection_created
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.views import APIView

import config.prometheus  # before any counter below: they go to the multiprocess files
from accounts.client import client_address

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
QUERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# registry=None: these live in the multiprocess files, which the scrape reads; no per-process registry.
API_REQUESTS = Counter(
    "aicc_api_requests",
    "HTTP requests answered, by method, URL pattern and status",
    ["method", "route", "status"],
    registry=None,
)
API_DURATION = Histogram(
    "aicc_api_duration_seconds",
    "Time to answer an HTTP request, by method and URL pattern",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)
DB_QUERY_DURATION = Histogram(
    "aicc_db_query_duration_seconds",
    "Time of each database query (all processes)",
    buckets=QUERY_BUCKETS,
    registry=None,
)
SOURCE_ERRORS = Counter(
    "aicc_metrics_source_errors", "Metrics sources that could not be read at scrape time", ["source"], registry=None
)


# --- counted as it happens ---------------------------------------------------------------------


def route_of(request) -> str:
    """The URL pattern that answered (`/api/v1/incidents/<int:incident_id>`), never the raw path."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return "/" + (match.route or "")


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in KNOWN_METHODS else "other"
    API_REQUESTS.labels(method, route, str(status)).inc()
    API_DURATION.labels(method, route).observe(seconds)


def _time_query(execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        DB_QUERY_DURATION.observe(time.perf_counter() - started)


# Every connection wrapper of this process (connections are per thread), to count the open ones.
_connections_seen: weakref.WeakSet = weakref.WeakSet()


def install_query_timer(sender, connection, **kwargs) -> None:
    """connection_created: every new database connection of every process times its queries."""
    _connections_seen.add(connection)
    if _time_query not in connection.execute_wrappers:
        connection.execute_wrappers.append(_time_query)


connection_created.connect(install_query_timer, dispatch_uid="config.metrics.install_query_timer")


def after_commit(count: Callable[[], None]) -> None:
    """Counts a transition only once its transaction commits (a rolled-back one never happened)."""
    transaction.on_commit(count)


# --- read at scrape time -----------------------------------------------------------------------


@contextmanager
def bounded_reads():
    """Database reads at scrape time give up after METRICS_SOURCE_TIMEOUT_SECONDS (PostgreSQL)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            milliseconds = max(1, int(settings.METRICS_SOURCE_TIMEOUT_SECONDS * 1000))
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {milliseconds}")
        yield


def gauge(name: str, documentation: str, value: float | None = None, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value, labels=list(labels) or None)


psutil.cpu_percent(interval=None)  # the first reading of a process is meaningless: take it now


class SystemCollector:
    """The seed's system_* gauges, from psutil. CPU is the use since the previous scrape of this process."""

    source = "system"

    def collect(self):
        yield gauge("system_cpu_usage_percent", "CPU use of the machine, percent", psutil.cpu_percent(interval=None))
        yield gauge("system_memory_usage_percent", "Memory in use, percent", psutil.virtual_memory().percent)
        disk = psutil.disk_usage(settings.METRICS_DISK_PATH).percent
        yield gauge("system_disk_usage_percent", f"Disk use of {settings.METRICS_DISK_PATH}, percent", disk)


class DatabaseConnectionsCollector:
    """PostgreSQL: sessions on our database (pg_stat_activity). SQLite: this process's open connections."""

    source = "database"

    def collect(self):
        if connection.vendor == "postgresql":
            with bounded_reads(), connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                active = cursor.fetchone()[0]
        else:
            active = sum(1 for wrapper in list(_connections_seen) if wrapper.connection is not None)
        yield gauge("aicc_db_connections_active", "Open connections to our database", active)


class HeartbeatCollector:
    """How long ago beat last ticked and a worker last beat (config/heartbeats.py); absent when never."""

    source = "heartbeats"

    def collect(self):
        from config.heartbeats import BEAT_HEARTBEAT_KEY, WORKER_HEARTBEATS_KEY
        from config.redis import redis_client

        client = redis_client(timeout=settings.METRICS_SOURCE_TIMEOUT_SECONDS)
        now = time.time()
        newest_worker = client.zrevrange(WORKER_HEARTBEATS_KEY, 0, 0, withscores=True)
        last_tick = client.get(BEAT_HEARTBEAT_KEY)
        if last_tick:
            yield gauge("aicc_beat_heartbeat_age_seconds", "Seconds since beat's last tick", now - float(last_tick))
        if newest_worker:
            age = now - newest_worker[0][1]
            yield gauge("aicc_worker_heartbeat_age_seconds", "Seconds since any worker's last heartbeat", age)


# kombu's Redis transport keeps a priority's messages in "<queue>\x06\x16<priority>" beside "<queue>".
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)


class QueueDepthCollector:
    """Messages waiting in each Celery queue (LLEN on the broker), in one round trip."""

    source = "celery_queues"

    def collect(self):
        from config.celery import QUEUES
        from config.redis import redis_client

        client = redis_client(settings.CELERY_BROKER_URL, timeout=settings.METRICS_SOURCE_TIMEOUT_SECONDS)
        pipe = client.pipeline(transaction=False)
        for queue in QUEUES:
            pipe.llen(queue)
            for step in _PRIORITY_STEPS:
                pipe.llen(f"{queue}{_PRIORITY_SEPARATOR}{step}")
        lengths = pipe.execute()
        family = gauge("aicc_celery_queue_depth", "Messages waiting in a Celery queue", labels=["queue"])
        per_queue = 1 + len(_PRIORITY_STEPS)
        for index, queue in enumerate(QUEUES):
            family.add_metric([queue], sum(lengths[index * per_queue : (index + 1) * per_queue]))
        yield family


CONFIG_COLLECTORS = (SystemCollector(), DatabaseConnectionsCollector(), HeartbeatCollector(), QueueDepthCollector())


class SafeCollector:
    """Runs one collector; a failure is logged and counted, and the scrape goes on without it."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.source = getattr(inner, "source", inner.__class__.__name__)

    def collect(self):
        try:
            families = list(self.inner.collect())
        except Exception:  # any source may fail (Redis down, a slow query): never a failed scrape
            logger.warning("metrics source unreadable", extra={"source": self.source}, exc_info=True)
            SOURCE_ERRORS.labels(self.source).inc()
            return []
        return families


@cache
def scrape_collectors() -> tuple:
    """Ours, then every installed app's `<app>.metrics.SCRAPE_COLLECTORS`."""
    found = list(CONFIG_COLLECTORS)
    for app_config in apps.get_app_configs():
        try:
            module = import_module(f"{app_config.name}.metrics")
        except ModuleNotFoundError as error:
            if error.name != f"{app_config.name}.metrics":
                raise
            continue
        found.extend(getattr(module, "SCRAPE_COLLECTORS", ()))
    return tuple(SafeCollector(collector) for collector in found)


def scrape() -> bytes:
    """The text of one scrape: every process's counters plus what is current."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in scrape_collectors():
        registry.register(collector)
    # last, so that a source failing in this very scrape is already in its error count
    MultiProcessCollector(registry, path=str(config.prometheus.multiprocess_dir()))
    return generate_latest(registry)


# --- the view ----------------------------------------------------------------------------------


def _allowed_address(address: str | None, networks: list[str]) -> bool:
    if not networks:
        return True
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)


class MetricsScraper(BasePermission):
    """A bearer token (METRICS_TOKEN) and, when set, an address in METRICS_ALLOWED_NETWORKS. With no
    token configured the endpoint is open only under DEBUG."""

    def has_permission(self, request, view) -> bool:
        if not _allowed_address(client_address(request), settings.METRICS_ALLOWED_NETWORKS):
            raise PermissionDenied("This address may not read the metrics (METRICS_ALLOWED_NETWORKS).")
        expected = settings.METRICS_TOKEN
        if not expected:
            if settings.DEBUG:
                return True
            raise PermissionDenied(
                "Metrics are closed: set METRICS_TOKEN and send it as 'Authorization: Bearer <token>'."
            )
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected.encode()):
            raise PermissionDenied("Send the metrics token as 'Authorization: Bearer <token>'.")
        return True


class MetricsApi(APIView):
    permission_classes = [MetricsScraper]
    authentication_classes = []  # the bearer token is ours, not a JWT: no other authenticator reads it

    @extend_schema(exclude=True)
    def get(self, request):
        # the classic text format's type, which every Prometheus version (2.x and 3.x) reads
        return HttpResponse(scrape(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
