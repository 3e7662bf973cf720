"""Log context (the request id in the web process, the task id in Celery workers), masking of the
carrier webhook tokens that request paths carry, and the JSON lines' time in one zone."""

from __future__ import annotations

import contextvars
import json
import logging
import re
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import HttpRequest
from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# (ip, user agent) of the request being served, for the audit log.
client_var: contextvars.ContextVar[tuple[str | None, str]] = contextvars.ContextVar("client", default=(None, ""))


class ContextFilter(logging.Filter):
    """Adds `request_id` and `task_id` to every record so each JSON line can be traced back."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id and not hasattr(record, "request_id"):
            record.request_id = request_id
        if not hasattr(record, "task_id"):
            task_id = _current_task_id()
            if task_id:
                record.task_id = task_id
        return True


def _current_task_id() -> str | None:
    from celery import current_task

    request = getattr(current_task, "request", None)
    return getattr(request, "id", None) if request is not None else None


# /webhooks/<carrier>/<kind>/<token>: the token names one call attempt and is the capability that lets
# a carrier's callback act on it, so logs show the route and hide the token.
_WEBHOOK_TOKEN = re.compile(r"(/webhooks/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+/)[^/?#\s'\"<>]+")
MASKED = "***"


def mask_webhook_path(text: str) -> str:
    """`text` with every carrier webhook token replaced: /webhooks/twilio/status/*** ."""
    if "/webhooks/" not in text:
        return text
    return _WEBHOOK_TOKEN.sub(rf"\g<1>{MASKED}", text)


def _masked(value: object) -> object:
    if isinstance(value, str):
        return mask_webhook_path(value)
    if isinstance(value, tuple):
        return tuple(_masked(item) for item in value)
    if isinstance(value, HttpRequest):  # Django's request logs pass the request; its repr has the path
        return mask_webhook_path(repr(value))
    return value


class MaskWebhookTokensFilter(logging.Filter):
    """Masks webhook tokens in a record's message, arguments and extra fields.

    Attached to the output handler (every line we print) and to the loggers that log request paths
    themselves (`django.request`, `django.server`), so other handlers never see the token either.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_webhook_path(record.msg)
        if isinstance(record.args, tuple):
            record.args = _masked(record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _masked(value) for key, value in record.args.items()}
        for name, value in list(vars(record).items()):
            if name not in ("msg", "args") and isinstance(value, str | HttpRequest):
                setattr(record, name, _masked(value))
        return True


# Tasks that run every few seconds whatever happens (beat's schedule): Celery's own INFO lines about
# them ("received", "succeeded", beat's "Sending due task") would bury the story every 2 seconds. The
# tasks log themselves when they did something; their failures (WARNING and above) still show.
ROUTINE_TASKS = ("orchestrator.sweep_escalations", "config.beat_heartbeat", "integrations.retry_due_messages")


class QuietRoutineTasksFilter(logging.Filter):
    """Drops Celery's routine INFO lines about the scheduled sweeps and heartbeats."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or not record.name.startswith("celery"):
            return True
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is not ours to judge
            return True
        return not any(task in text for task in ROUTINE_TASKS)


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class ZonedJsonFormatter(JsonFormatter):
    """JSON lines whose `time` is ISO 8601 in TIME_ZONE with its offset: "2026-11-30T16:46:16.298+09:00".

    Web, worker and beat all print the same zone (the product's, Asia/Seoul by default, the one the admin
    shows), and the offset makes each line unambiguous next to another system's logs."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _zoned_time(record)


def _zoned_time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=_zone(settings.TIME_ZONE))
    return moment.isoformat(timespec="milliseconds")


class AccessLineFormatter(logging.Formatter):
    """The web server's access lines (config/web.py), one per request: the same JSON keys as every
    other line, the webhook token masked, built directly. Through the general formatter and filters a
    line cost about 100 us, a tenth of a duplicate alert's CPU in a storm; this costs a fraction."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": _zoned_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_webhook_path(record.getMessage()),
        }
        return json.dumps(line, ensure_ascii=False)
