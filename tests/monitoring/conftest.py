"""A gauge the tests set, registered through MONITORING_EXTRA_METRICS; a policy to call."""

from __future__ import annotations

import pytest

from tests import factories
from tests.integrations.conftest import make_integration, receiver  # noqa: F401 (the integrations' fixtures)
from tests.monitoring import gauges


@pytest.fixture
def gauge(settings):
    settings.MONITORING_EXTRA_METRICS = {
        gauges.NAME: {"read": gauges.PATH, "unit": "%", "title_en": "CPU usage", "title_ko": "CPU 사용률"}
        | {"label_names": ["queue", "host", "route"]}
    }
    gauges.reset()
    yield gauges
    gauges.reset()


@pytest.fixture
def on_call(db):
    """A default policy with one contact (digit 1: presses 1 in the carrier simulator)."""
    return factories.policy(factories.contact("Kim", 1))
