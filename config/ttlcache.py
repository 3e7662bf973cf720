"""A small in-process cache whose entries live a few seconds: for reads every request makes (which API
key is this, which policy does an alert go to) that change rarely.

Each process has its own; a change made in this process clears it at once (the owners connect
model signals to `clear`), and a change made in another process is seen when the entry expires,
after at most `seconds` (the setting's value, read at each use so tests and operators can change it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from django.conf import settings

_MISSING = object()


class TTLCache:
    def __init__(self, seconds_setting: str, *, max_entries: int = 1000):
        self.seconds_setting, self.max_entries = seconds_setting, max_entries
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get_or_load(self, key: Hashable, load: Callable[[], Any], *, keep: Callable[[Any], bool] = bool) -> Any:
        """The cached value of `key`, else `load()`; what `keep` rejects (by default a None) is not cached."""
        seconds = float(getattr(settings, self.seconds_setting, 0) or 0)
        now = time.monotonic()
        if seconds > 0:
            expires, value = self._entries.get(key, (0.0, _MISSING))
            if value is not _MISSING and expires > now:
                return value
        value = load()
        if seconds > 0 and keep(value):
            with self._lock:
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
                self._entries[key] = (now + seconds, value)
        return value

    def clear(self, *args, **kwargs) -> None:
        """Forgets everything (usable as a signal receiver)."""
        with self._lock:
            self._entries.clear()
