"""Log context: the request id in the web process, the task id in Celery workers."""

from __future__ import annotations

import contextvars
import logging

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
