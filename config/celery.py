"""The Celery app: JSON only, late acks, prefetch 1, time limits, four queues, beat schedule in code.

Queues: `calls` is urgent (its own worker pool in production, so a backlog of uploads never delays
a phone call), `timers` (the escalation sweep and deadline checks: never stuck behind a backlog of
dials), `default`, `recordings`, `integrations`. Tasks are routed by the app prefix of their explicit
name, the timers by their exact name.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")

app.config_from_object("django.conf:settings", namespace="CELERY")

QUEUES = ("calls", "timers", "default", "recordings", "integrations")
app.conf.task_queues = tuple(Queue(name) for name in QUEUES)
app.conf.task_default_queue = "default"
app.conf.task_routes = {
    "orchestrator.sweep_escalations": {"queue": "timers"},
    "orchestrator.check_deadline": {"queue": "timers"},
    "monitoring.evaluate_rules": {"queue": "timers"},
    "orchestrator.*": {"queue": "calls"},
    "recordings.*": {"queue": "recordings"},
    "integrations.*": {"queue": "integrations"},
}


@task_prerun.connect(dispatch_uid="config.celery.database_connections_before")
@task_postrun.connect(dispatch_uid="config.celery.database_connections_after")
def keep_database_connections(sender=None, **kwargs) -> None:
    """Each task treats database connections as Django treats them around a request: one is kept for
    CONN_MAX_AGE and dropped when it is unusable or in a broken state. Celery's own Django fix-up
    (celery 5.7) closes every connection before and after every task instead, so each dial opened a
    new PostgreSQL connection, a forked backend, about a fifth of a dial's CPU time; settings'
    CELERY_DB_REUSE_MAX keeps it from doing so. Eager tasks (run inside the caller) are left alone."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


# The beat schedule is code too: CELERY_BEAT_SCHEDULE in config/settings.py, which
# django-celery-beat's DatabaseScheduler copies into the database at start.
app.conf.imports = ("config.tasks",)
app.autodiscover_tasks()
