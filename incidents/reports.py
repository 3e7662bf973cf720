"""The response-times report (MTTA / MTTR): how fast people acknowledge and how fast incidents close.

A selector: the counts, the acknowledgements by person and the calls per incident are SQL aggregates
over the incidents opened in the window. The p50/p90 are computed here in Python over the durations
the database returns (one number per incident in the window), with the same linear interpolation as
PostgreSQL's percentile_cont; that is fine for weeks of incidents. Should windows ever hold hundreds
of thousands, move them to percentile_cont in SQL.

Drills are left out: they measure the policy, not a real response. "Calls" are the incident's
`current_step` (calls placed so far, kept by the engine on the record), so the record needs no
query into the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Avg, Count, DurationField, Exists, ExpressionWrapper, F, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from incidents.models import EscalationPolicy, EventKind, Incident, IncidentEvent, IncidentState

DEFAULT_DAYS = 7
# The days a window may name: beyond them a date (or the datetime a window's end is) overflows, and
# no incident of ours is that old or that far ahead.
FIRST_SUPPORTED_DAY, LAST_SUPPORTED_DAY = date(2000, 1, 1), date(2100, 12, 31)
# The chart's bars: (label, upper bound in seconds), the last one open-ended.
DISTRIBUTION_BOUNDS = (("< 1 min", 60), ("1-5 min", 300), ("5-15 min", 900), ("15-60 min", 3600), ("1-4 h", 14400))
OVER_LAST_BOUND = "> 4 h"


@dataclass(frozen=True)
class Window:
    """Incidents opened from `start` (inclusive) to `end` (exclusive), in TIME_ZONE's days."""

    first_day: date
    last_day: date

    @property
    def start(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.first_day, time.min))

    @property
    def end(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.last_day + timedelta(days=1), time.min))

    @classmethod
    def last_days(cls, days: int = DEFAULT_DAYS, today: date | None = None) -> Window:
        today = today or timezone.localdate()
        return cls(first_day=today - timedelta(days=days - 1), last_day=today)


@dataclass(frozen=True)
class Percentiles:
    count: int
    p50_seconds: float | None
    p90_seconds: float | None
    mean_seconds: float | None


@dataclass(frozen=True)
class ResponseTimes:
    window: Window
    policy: EscalationPolicy | None
    opened: int
    acknowledged: int
    resolved: int
    exhausted: int
    time_to_acknowledge: Percentiles
    time_to_resolve: Percentiles
    acknowledged_by: list[dict] = field(default_factory=list)  # [{"person", "count", "p50_seconds"}]
    calls_per_incident_mean: float | None = None
    calls_per_incident_max: int | None = None
    # [(bar label, incidents)] for the admin chart, from DISTRIBUTION_BOUNDS
    acknowledge_distribution: list[tuple[str, int]] = field(default_factory=list)
    resolve_distribution: list[tuple[str, int]] = field(default_factory=list)


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont)."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * fraction
    lower, upper = math.floor(position), math.ceil(position)
    if lower == upper:
        return sorted_values[lower]
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * (position - lower)


def _percentiles(seconds: list[float]) -> Percentiles:
    ordered = sorted(seconds)
    mean = sum(ordered) / len(ordered) if ordered else None
    return Percentiles(len(ordered), percentile(ordered, 0.5), percentile(ordered, 0.9), mean)


def distribution(seconds: list[float]) -> list[tuple[str, int]]:
    counts = [0] * (len(DISTRIBUTION_BOUNDS) + 1)
    for value in seconds:
        index = next((i for i, (_, bound) in enumerate(DISTRIBUTION_BOUNDS) if value < bound), -1)
        counts[index] += 1
    labels = [label for label, _ in DISTRIBUTION_BOUNDS] + [OVER_LAST_BOUND]
    return list(zip(labels, counts, strict=True))


def _durations(incidents: QuerySet[Incident], moment: str) -> list[tuple[str, float]]:
    """(acknowledged_by, seconds from opening to `moment`) for the incidents that reached it."""
    elapsed = ExpressionWrapper(F(moment) - F("created_at"), output_field=DurationField())
    rows = (
        incidents.filter(**{f"{moment}__isnull": False})
        .annotate(elapsed=elapsed)
        .values_list("acknowledged_by", "elapsed")
    )
    return [(person, max(0.0, duration.total_seconds())) for person, duration in rows]


def incidents_in(window: Window, policy: EscalationPolicy | None = None) -> QuerySet[Incident]:
    incidents = Incident.objects.filter(is_drill=False, created_at__gte=window.start, created_at__lt=window.end)
    return incidents.filter(policy=policy) if policy is not None else incidents


def response_times(window: Window, policy: EscalationPolicy | None = None) -> ResponseTimes:
    incidents = incidents_in(window, policy).order_by()
    was_exhausted = Exists(IncidentEvent.objects.filter(incident=OuterRef("pk"), kind=EventKind.EXHAUSTED))
    totals = incidents.annotate(was_exhausted=was_exhausted).aggregate(
        opened=Count("pk"),
        acknowledged=Count("pk", filter=Q(acknowledged_at__isnull=False)),
        resolved=Count("pk", filter=Q(resolved_at__isnull=False)),
        # exhausted now, or once (the timeline keeps it when someone acknowledged later)
        exhausted=Count("pk", filter=Q(state=IncidentState.EXHAUSTED) | Q(was_exhausted=True)),
        calls_mean=Avg("current_step"),
        calls_max=Max("current_step"),
    )
    acknowledgements = _durations(incidents, "acknowledged_at")
    resolutions = _durations(incidents, "resolved_at")
    ack_seconds, resolve_seconds = [s for _, s in acknowledgements], [s for _, s in resolutions]
    return ResponseTimes(
        window=window,
        policy=policy,
        opened=totals["opened"],
        acknowledged=totals["acknowledged"],
        resolved=totals["resolved"],
        exhausted=totals["exhausted"],
        time_to_acknowledge=_percentiles(ack_seconds),
        time_to_resolve=_percentiles(resolve_seconds),
        acknowledged_by=_by_person(acknowledgements),
        calls_per_incident_mean=float(totals["calls_mean"]) if totals["calls_mean"] is not None else None,
        calls_per_incident_max=totals["calls_max"],
        acknowledge_distribution=distribution(ack_seconds),
        resolve_distribution=distribution(resolve_seconds),
    )


def _by_person(acknowledgements: list[tuple[str, float]]) -> list[dict]:
    """Who acknowledged how many, and their median time; most acknowledgements first."""
    per_person: dict[str, list[float]] = {}
    for person, seconds in acknowledgements:
        per_person.setdefault(person or "unknown", []).append(seconds)
    rows = [
        {"person": person, "count": len(times), "p50_seconds": percentile(sorted(times), 0.5)}
        for person, times in per_person.items()
    ]
    return sorted(rows, key=lambda row: (-row["count"], row["person"]))
