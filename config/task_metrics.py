"""Celery task metrics (duration and outcome by task name, failures) and the worker's share of the
multiprocess bookkeeping: stale files removed when a worker or beat starts.

Signals run in the process that runs the task (a prefork pool child, or a thread of the worker), so
each pool process writes its own file and the scrape adds them up.
"""

from __future__ import annotations

import time
from typing import Any

from celery.signals import beat_init, task_failure, task_postrun, task_prerun, worker_process_init, worker_ready
from prometheus_client import Counter, Histogram

import config.prometheus
from config.metrics import LATENCY_BUCKETS

TASK_DURATION = Histogram(
    "aicc_celery_task_duration_seconds",
    "Time a Celery task ran, by task name and final state",
    ["task", "state"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)
TASK_FAILURES = Counter("aicc_celery_task_failures", "Celery tasks that raised, by task name", ["task"], registry=None)

_started: dict[str, float] = {}  # task id -> perf_counter at prerun (per process; threads use distinct ids)


def _name(sender: Any) -> str:
    return getattr(sender, "name", None) or "unknown"


@task_prerun.connect(dispatch_uid="config.task_metrics.prerun")
def _task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.perf_counter()


@task_postrun.connect(dispatch_uid="config.task_metrics.postrun")
def _task_finished(
    sender: Any = None, task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
):
    started = _started.pop(task_id, None) if task_id else None
    if started is not None:
        TASK_DURATION.labels(_name(sender), state or "UNKNOWN").observe(time.perf_counter() - started)


@task_failure.connect(dispatch_uid="config.task_metrics.failure")
def _task_failed(sender: Any = None, **_: Any) -> None:
    TASK_FAILURES.labels(_name(sender)).inc()


@worker_ready.connect(dispatch_uid="config.task_metrics.worker_ready")
@beat_init.connect(dispatch_uid="config.task_metrics.beat_init")
def _clean_stale_files(**_: Any) -> None:
    config.prometheus.forget_inherited_files()
    config.prometheus.remove_files_of_dead_processes()


@worker_process_init.connect(dispatch_uid="config.task_metrics.worker_process_init")
def _forget_inherited_files(**_: Any) -> None:
    config.prometheus.forget_inherited_files()
