"""Incident metrics: opened, acknowledged, resolved and exhausted totals, time to acknowledge and to
resolve (MTTA, MTTR), and, at scrape time, how many incidents are open in each state.

The services call these helpers at the transition; each counts after its transaction commits.
`drill` is a label so dashboards can leave drills out.
"""

from __future__ import annotations

from django.db.models import Count
from prometheus_client import Counter, Histogram

from config.metrics import after_commit, bounded_reads, gauge

# From 15 seconds to a day: people answer phones in minutes, incidents close in hours.
RESPONSE_BUCKETS = (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)

OPENED = Counter("aicc_incidents_opened", "Incidents opened, by severity", ["severity", "drill"], registry=None)
ACKNOWLEDGED = Counter("aicc_incidents_acknowledged", "Incidents acknowledged", ["drill"], registry=None)
RESOLVED = Counter("aicc_incidents_resolved", "Incidents resolved", ["drill"], registry=None)
EXHAUSTED = Counter(
    "aicc_incidents_exhausted", "Call rounds that reached everybody with no acknowledgement", ["drill"], registry=None
)
TIME_TO_ACKNOWLEDGE = Histogram(
    "aicc_incident_time_to_acknowledge_seconds",
    "From the incident's opening to its acknowledgement (MTTA)",
    ["drill"],
    buckets=RESPONSE_BUCKETS,
    registry=None,
)
TIME_TO_RESOLVE = Histogram(
    "aicc_incident_time_to_resolve_seconds",
    "From the incident's opening to its resolution (MTTR)",
    ["drill"],
    buckets=RESPONSE_BUCKETS,
    registry=None,
)


def _drill(incident) -> str:
    return "true" if incident.is_drill else "false"


def _seconds_since_opened(incident, moment) -> float:
    return max(0.0, (moment - incident.created_at).total_seconds()) if moment and incident.created_at else 0.0


def incident_opened(incident) -> None:
    labels = (incident.severity, _drill(incident))
    after_commit(lambda: OPENED.labels(*labels).inc())


def incident_acknowledged(incident) -> None:
    drill, seconds = _drill(incident), _seconds_since_opened(incident, incident.acknowledged_at)
    after_commit(lambda: (ACKNOWLEDGED.labels(drill).inc(), TIME_TO_ACKNOWLEDGE.labels(drill).observe(seconds)))


def incident_resolved(incident) -> None:
    drill, seconds = _drill(incident), _seconds_since_opened(incident, incident.resolved_at)
    after_commit(lambda: (RESOLVED.labels(drill).inc(), TIME_TO_RESOLVE.labels(drill).observe(seconds)))


def incident_exhausted(incident) -> None:
    drill = _drill(incident)
    after_commit(lambda: EXHAUSTED.labels(drill).inc())


class OpenIncidentsCollector:
    """Open incidents per state, one indexed GROUP BY (resolved ones are counted by the counter)."""

    source = "incidents"

    def collect(self):
        from incidents.models import OPEN_STATES, Incident

        with bounded_reads():
            rows = Incident.objects.filter(state__in=OPEN_STATES).values("state").annotate(n=Count("id")).order_by()
            counts = {row["state"]: row["n"] for row in rows}
        family = gauge("aicc_incidents_open", "Open incidents, by state", labels=["state"])
        for state in OPEN_STATES:
            family.add_metric([str(state)], counts.get(state, 0))
        yield family


SCRAPE_COLLECTORS = (OpenIncidentsCollector(),)
