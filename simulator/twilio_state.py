"""The state of a placed Twilio call, shared by the thread playing it and the REST API that reports it."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from simulator.records import SimulatedCall

API_VERSION = "2010-04-01"


def rfc2822(timestamp: float) -> str:
    """Twilio's date format in resources and callbacks, e.g. 'Tue, 14 May 2024 10:00:00 +0000'."""
    return format_datetime(datetime.fromtimestamp(timestamp, tz=UTC))


def short_sid(sid: str | None) -> str:
    return f"{sid[:8]}…" if sid else "(no sid)"


@dataclass(frozen=True)
class CallSnapshot:
    status: str
    updated_at: float
    answered_at: float | None
    ended_at: float | None
    duration: int
    answered_by: str | None


class LiveCall:
    """The mutable state of a placed call, shared by its playing thread and the REST handler."""

    def __init__(self, record: SimulatedCall, account_sid: str, form: dict[str, list[str]]) -> None:
        self.record = record
        self.account_sid = account_sid
        self.form = form
        self.created_at = time.time()
        self.hangup = threading.Event()
        self._lock = threading.Lock()
        self._status = "queued"
        self._updated_at = self.created_at
        self._answered_at: float | None = None
        self._ended_at: float | None = None
        self._answered_by: str | None = None

    def param(self, name: str, default: str = "") -> str:
        values = self.form.get(name)
        return values[0] if values and values[0] else default

    def param_values(self, name: str) -> list[str]:
        return list(self.form.get(name, []))

    @property
    def answered(self) -> bool:
        with self._lock:
            return self._answered_at is not None

    def set_status(self, status: str) -> None:
        with self._lock:
            self._status = status
            self._updated_at = time.time()
            if status == "in-progress":
                self._answered_at = self._updated_at

    def set_answered_by(self, answered_by: str) -> None:
        with self._lock:
            self._answered_by = answered_by

    def end(self, final_status: str) -> int:
        """Mark the call over; returns its duration in whole seconds, counted from the answer as Twilio does."""
        self.set_status(final_status)
        with self._lock:
            self._ended_at = self._updated_at
        return self.snapshot().duration

    def snapshot(self) -> CallSnapshot:
        with self._lock:
            duration = 0
            if self._answered_at is not None and self._ended_at is not None:
                duration = math.ceil(self._ended_at - self._answered_at)
            return CallSnapshot(
                self._status, self._updated_at, self._answered_at, self._ended_at, duration, self._answered_by
            )

    def request_hangup(self, requested_status: str) -> None:
        """Twilio cancels only calls not yet answered; `completed` ends a call in any state."""
        with self._lock:
            if self._ended_at is not None:
                return
            if requested_status == "canceled" and self._answered_at is not None:
                return
        self.hangup.set()
