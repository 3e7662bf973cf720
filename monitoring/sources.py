"""What an alert rule may watch: one registry of evaluable metrics, each read as `{labels: value}`.

The names are the series /metrics exports, so a rule reads the same as the Prometheus expression it
renders to (prometheus.yml). The values come from the very collectors the scrape uses (psutil for
system_*, the database for incidents, the broker for queues); they are read once per evaluation run,
so that the CPU reading of one run is one reading.

`aicc_api_duration_seconds` is the API's response time: the 95th percentile of the requests answered
since the previous evaluation, per method and URL pattern, summed over every process (the
multiprocess histogram), interpolated inside a bucket as Prometheus's histogram_quantile does. A route
with no request in the window has no value (like PromQL's NaN); the evaluation counts that absence as a
clear only once it has lasted the rule's hold (services.hold_seconds).

More metrics: `register(EvaluableMetric(...))` in code, or `MONITORING_EXTRA_METRICS` in settings
(`{"name": "dotted.path.to.function"}` or `{"name": {"read": ..., "unit": "%", ...}}`), which is how
the tests give rules a value they control.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from prometheus_client.multiprocess import MultiProcessCollector

import config.prometheus
from config.metrics import HeartbeatCollector, QueueDepthCollector, SystemCollector

Labels = tuple[tuple[str, str], ...]
Readings = dict[Labels, float]

API_DURATION = "aicc_api_duration_seconds"
API_QUANTILE = 0.95
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def series(**labels: str) -> Labels:
    """The key of one series: its labels, sorted."""
    return tuple(sorted((str(name), str(value)) for name, value in labels.items()))


def series_key(labels: Labels) -> str:
    """`queue=calls,state=open`: the stored and spoken form ("" for a series without labels)."""
    return ",".join(f"{name}={value}" for name, value in labels)


@dataclass(frozen=True)
class EvaluableMetric:
    name: str
    title_en: str
    title_ko: str
    unit: str = ""  # "%", "s" or "" (a count)
    collector: object | None = None  # read through this scrape collector (one family of it)...
    read: Callable[[], Readings] | None = None  # ...or through this function
    promql: str = ""  # the expression prometheus.yml uses; "{labels}" is replaced by the rule's selector
    label_names: tuple[str, ...] = field(default=())

    def expression(self, labels: dict) -> str:
        """The PromQL of a rule on these labels. Names were checked by `label_problem` when the rule was
        saved; one that is not a label name (a row written before the check) is refused, never pasted."""
        bad = [name for name in labels if not LABEL_NAME.fullmatch(str(name))]
        if bad:
            raise ValueError(f"not a label name: {bad[0]!r}")
        selector = "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in sorted(labels.items())) + "}"
        if self.promql:
            return self.promql.replace("{labels}", selector if labels else "")
        return self.name + (selector if labels else "")


def _escape(value) -> str:
    """A PromQL double-quoted string's content: backslash first, then the quote and the newline."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_REGISTRY: dict[str, EvaluableMetric] = {}

# The seed's own example names a rule's metric without the system_ prefix.
ALIASES = {
    "cpu_usage_percent": "system_cpu_usage_percent",
    "memory_usage_percent": "system_memory_usage_percent",
    "disk_usage_percent": "system_disk_usage_percent",
}


def register(metric: EvaluableMetric) -> EvaluableMetric:
    _REGISTRY[metric.name] = metric
    return metric


def evaluable_metrics() -> dict[str, EvaluableMetric]:
    """The registry, plus MONITORING_EXTRA_METRICS: name -> the dotted path of a `{labels: value}`
    function, or {"read": path, "unit": "%", "title_en": ..., "title_ko": ...}."""
    extra = {}
    for name, spec in getattr(settings, "MONITORING_EXTRA_METRICS", {}).items():
        spec = {"read": spec} if isinstance(spec, str) else dict(spec)
        titles = {"title_en": spec.get("title_en", name), "title_ko": spec.get("title_ko", name)}
        label_names = tuple(spec.get("label_names", ()))
        read = import_string(spec["read"])
        extra[name] = EvaluableMetric(name, **titles, unit=spec.get("unit", ""), read=read, label_names=label_names)
    return {**_REGISTRY, **extra}


def metric_named(name: str) -> EvaluableMetric | None:
    return evaluable_metrics().get(ALIASES.get(name, name))


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)


def label_problem(metric: EvaluableMetric, labels: dict) -> str:
    """Why a rule's labels cannot select this metric's series ("" when they can). A name the metric does
    not have would silently never match, and a name that is not a label name would be pasted into the
    rendered PromQL (`x"} or vector(10) or y{z` always fires), so both are refused."""
    for name in labels:
        if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
            return f"{name!r} is not a label name (letters, digits and _, not starting with a digit)."
        if name not in metric.label_names:
            known = ", ".join(metric.label_names) or "none: it has one series"
            return f"{metric.name} has no label {name!r}; its labels: {known}."
    return ""


# --- reading -------------------------------------------------------------------------------------


def read_metrics(names: Iterable[str]) -> dict[str, Readings | Exception]:
    """Each named metric once; a collector is asked once even when several metrics come from it. A
    metric that cannot be read is its exception (its rules keep their state), never a failed run."""
    known = evaluable_metrics()
    families: dict[int, dict[str, Readings] | Exception] = {}
    readings: dict[str, Readings | Exception] = {}
    for name in sorted(set(names)):
        metric = known.get(name)
        if metric is None:
            readings[name] = LookupError(f"unknown metric {name!r}")
            continue
        try:
            if metric.read is not None:
                readings[name] = dict(metric.read())
                continue
            collected = families.get(id(metric.collector))
            if collected is None:
                collected = families[id(metric.collector)] = _collect(metric.collector)
            if isinstance(collected, Exception):
                raise collected
            readings[name] = collected.get(name, {})
        except Exception as error:  # any source may fail (Redis down, a slow query): the rules wait
            readings[name] = error
    return readings


def _collect(collector) -> dict[str, Readings] | Exception:
    try:
        return {
            family.name: {series(**sample.labels): float(sample.value) for sample in family.samples}
            for family in collector.collect()
        }
    except Exception as error:
        return error


# --- the API's response time from the multiprocess histogram -------------------------------------


def _cumulative_buckets() -> dict[str, dict]:
    """{series_key: {"labels": {...}, "buckets": {le: cumulative count}}} summed over every process."""
    found: dict[str, dict] = {}
    collector = MultiProcessCollector(None, path=str(config.prometheus.multiprocess_dir()))
    for family in collector.collect():
        if family.name != API_DURATION:
            continue
        for sample in family.samples:
            if not sample.name.endswith("_bucket"):
                continue
            labels = {name: value for name, value in sample.labels.items() if name != "le"}
            entry = found.setdefault(series_key(series(**labels)), {"labels": labels, "buckets": {}})
            entry["buckets"][sample.labels["le"]] = sample.value
    return found


def _window(current: dict, previous: dict) -> dict[str, dict]:
    """Counts since `previous`; a series whose counts fell (its processes restarted) counts from zero."""
    window = {}
    for key, entry in current.items():
        before = previous.get(key, {}).get("buckets", {})
        now = entry["buckets"]
        if any(now.get(le, 0) < count for le, count in before.items()):
            before = {}
        window[key] = {"labels": entry["labels"], "buckets": {le: now[le] - before.get(le, 0) for le in now}}
    return window


def quantile(q: float, buckets: dict[str, float]) -> float | None:
    """histogram_quantile over cumulative buckets ({"0.5": n, ..., "+Inf": n}); None with no observation.
    A rank in the +Inf bucket answers the highest finite bound, as Prometheus does."""
    ordered = sorted((float(le), count) for le, count in buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def read_api_duration() -> Readings:
    """p95 of the window since the previous evaluation. Two evaluations close together (a second beat)
    measure the same window instead of a sliver of it."""
    from monitoring.models import HistogramSnapshot

    current = _cumulative_buckets()
    now = timezone.now()
    minimum_window = timedelta(seconds=settings.RULE_EVALUATION_SECONDS / 2)
    with transaction.atomic():
        snapshot = HistogramSnapshot.objects.select_for_update().filter(metric=API_DURATION).first()
        if snapshot is None:
            HistogramSnapshot.objects.create(metric=API_DURATION, buckets={"now": current}, taken_at=now)
            return {}  # the first reading only starts the window
        if now - snapshot.taken_at < minimum_window and "before" in snapshot.buckets:
            window = _window(snapshot.buckets["now"], snapshot.buckets["before"])
        else:
            window = _window(current, snapshot.buckets.get("now", {}))
            snapshot.buckets = {"now": current, "before": snapshot.buckets.get("now", {})}
            snapshot.taken_at = now
            snapshot.save(update_fields=["buckets", "taken_at"])
    readings = {}
    for entry in window.values():
        value = quantile(API_QUANTILE, entry["buckets"])
        if value is not None:
            readings[series(**entry["labels"])] = value
    return readings


# --- the registry --------------------------------------------------------------------------------

_system = SystemCollector()
_queues = QueueDepthCollector()
_heartbeats = HeartbeatCollector()


def _open_incidents_collector():
    from incidents.metrics import OpenIncidentsCollector

    return OpenIncidentsCollector()


register(EvaluableMetric("system_cpu_usage_percent", "CPU usage", "CPU 사용률", "%", collector=_system))
register(EvaluableMetric("system_memory_usage_percent", "Memory usage", "메모리 사용률", "%", collector=_system))
register(EvaluableMetric("system_disk_usage_percent", "Disk usage", "디스크 사용률", "%", collector=_system))
register(
    EvaluableMetric(
        API_DURATION,
        "API response time (p95)",
        "API 응답 시간(p95)",
        "s",
        read=read_api_duration,
        promql=(f"histogram_quantile(0.95, sum by (le, method, route) (rate({API_DURATION}_bucket{{labels}}[5m])))"),
        label_names=("method", "route"),
    )
)
register(
    EvaluableMetric(
        "aicc_incidents_open",
        "Open incidents",
        "열린 인시던트",
        collector=_open_incidents_collector(),
        label_names=("state",),
    )
)
register(
    EvaluableMetric("aicc_celery_queue_depth", "Queue depth", "대기열 길이", collector=_queues, label_names=("queue",))
)
register(
    EvaluableMetric(
        "aicc_beat_heartbeat_age_seconds",
        "Seconds since beat's last tick",
        "비트 마지막 신호 후 경과",
        "s",
        collector=_heartbeats,
    )
)
register(
    EvaluableMetric(
        "aicc_worker_heartbeat_age_seconds",
        "Seconds since a worker's last heartbeat",
        "워커 마지막 신호 후 경과",
        "s",
        collector=_heartbeats,
    )
)
