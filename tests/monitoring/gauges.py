"""A metric the tests control, given to the rules through the documented hook (MONITORING_EXTRA_METRICS).

The worker of the end-to-end tests is a thread of the test process, so it reads the same values."""

from __future__ import annotations

from monitoring.sources import Readings, series

NAME = "test_gauge"
PATH = "tests.monitoring.gauges.read"
_readings: Readings = {}
_broken: list[str] = []


def read() -> Readings:
    if _broken:
        raise ConnectionError(_broken[0])
    return dict(_readings)


def set_value(value: float, **labels: str) -> None:
    _readings[series(**labels)] = value


def remove(**labels: str) -> None:
    _readings.pop(series(**labels), None)


def break_with(message: str) -> None:
    _broken[:] = [message]


def reset() -> None:
    _readings.clear()
    _broken.clear()
