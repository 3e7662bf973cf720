"""Phone-call metrics: calls ended by carrier and outcome, alert-to-dial latency, and each carrier's
circuit breaker read from Redis at scrape time."""

from __future__ import annotations

from django.conf import settings
from prometheus_client import Counter, Histogram

from config.metrics import after_commit, gauge

CALLS = Counter("aicc_calls", "Call attempts that ended, by carrier and outcome", ["carrier", "outcome"], registry=None)
ALERT_TO_DIAL = Histogram(
    "aicc_alert_to_dial_seconds",
    "From an incident's opening to a carrier accepting its first call",
    ["carrier"],
    buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300),
    registry=None,
)


def call_ended(attempt) -> None:
    labels = (attempt.provider or "none", str(attempt.status))
    after_commit(lambda: CALLS.labels(*labels).inc())


def call_placed(incident, attempt) -> None:
    """Observed for the incident's first call only: later calls wait for earlier ones by design."""
    if attempt.step != 1 or not attempt.dialed_at:
        return
    carrier, seconds = attempt.provider, max(0.0, (attempt.dialed_at - incident.created_at).total_seconds())
    after_commit(lambda: ALERT_TO_DIAL.labels(carrier).observe(seconds))


class BreakerCollector:
    """1 while a carrier's breaker is open (it is being skipped), else 0; for every configured carrier."""

    source = "breakers"

    def collect(self):
        import time

        from config.redis import redis_client
        from orchestrator.voice import breaker
        from orchestrator.voice.routing import carriers_for

        carriers = carriers_for()
        client = redis_client(timeout=settings.METRICS_SOURCE_TIMEOUT_SECONDS)
        open_until = client.mget([breaker._keys(carrier)[1] for carrier in carriers])
        now = time.time()
        family = gauge("aicc_carrier_breaker_open", "1 while the carrier's circuit breaker is open", labels=["carrier"])
        for carrier, until in zip(carriers, open_until, strict=True):
            family.add_metric([carrier], 1 if until is not None and float(until) > now else 0)
        yield family


SCRAPE_COLLECTORS = (BreakerCollector(),)
