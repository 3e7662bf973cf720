"""Every JSON log line carries its time in ISO 8601 with the offset of TIME_ZONE (Asia/Seoul: +09:00), the
same in the web process, the workers and beat, so lines from different processes line up and read the
same clock as the admin."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import subprocess
import sys
from datetime import UTC, datetime

from django.conf import settings

# 2026-03-01 00:00:00.250 UTC is 09:00:00.250 in Seoul
MOMENT = datetime(2026, 3, 1, 0, 0, 0, 250000, tzinfo=UTC).timestamp()


def _configured_formatter() -> logging.Formatter:
    """The formatter exactly as settings.LOGGING builds it for the console handler."""
    configurator = logging.config.DictConfigurator(settings.LOGGING)
    return configurator.configure_formatter(dict(settings.LOGGING["formatters"]["json"]))


def _line(formatter: logging.Formatter) -> dict:
    record = logging.LogRecord("orchestrator.services", logging.INFO, __file__, 1, "incident event", None, None)
    record.created = MOMENT
    return json.loads(formatter.format(record))


def test_a_log_line_says_its_time_in_seoul_with_the_offset():
    # given the product's default zone
    assert settings.TIME_ZONE == "Asia/Seoul"

    # when a line is formatted
    line = _line(_configured_formatter())

    # then its time is ISO 8601 with +09:00, to the millisecond
    assert line["time"] == "2026-03-01T09:00:00.250+09:00"
    assert datetime.fromisoformat(line["time"]).timestamp() == MOMENT
    assert (line["level"], line["logger"], line["message"]) == ("INFO", "orchestrator.services", "incident event")


def test_the_zone_follows_time_zone(settings):
    settings.TIME_ZONE = "UTC"

    assert _line(_configured_formatter())["time"] == "2026-03-01T00:00:00.250+00:00"


def test_web_worker_and_beat_print_the_same_zone():
    # given the worker and beat keep Django's logging (Celery does not replace the root handler)
    assert settings.CELERY_WORKER_HIJACK_ROOT_LOGGER is False

    # when a process starts Django as each of them does and logs a line (DEBUG as on a laptop, whatever
    # the machine's own zone)
    code = "import django, logging; django.setup(); logging.getLogger('orchestrator').warning('hello')"
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true", "TZ": "America/New_York"}
    env.pop("TIME_ZONE", None)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)

    # then its line is JSON with the time in Seoul's offset
    lines = [json.loads(text) for text in (run.stdout + run.stderr).splitlines() if text.startswith("{")]
    hello = next(line for line in lines if line.get("message") == "hello")
    assert hello["time"].endswith("+09:00") and "T" in hello["time"]
