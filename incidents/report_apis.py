"""GET /api/v1/reports/response-times: MTTA / MTTR and who acknowledged, for a window and a policy.

Read-only, but it names people and how fast they answered: an API key needs incidents:read, a person
SUPERVISOR or higher (a VIEWER or AGENT sees incidents, not their colleagues' response times)."""

from __future__ import annotations

from datetime import date, timedelta

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role, Scope
from accounts.permissions import scope_or_role
from config.errors import InvalidInput
from incidents import reports, selectors

CanReadReports = scope_or_role(Scope.INCIDENTS_READ, Role.SUPERVISOR)
MAX_DAYS = 366


def _day(params, name: str) -> date | None:
    """The ISO day in `name`, or None; a 400 naming the field when it is not a day a report covers."""
    text = (params.get(name) or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        message = f"'{text}' is not an ISO date (YYYY-MM-DD)."
        raise InvalidInput(f"{name}: {message}", fields={name: message}) from None
    if not reports.FIRST_SUPPORTED_DAY <= day <= reports.LAST_SUPPORTED_DAY:
        first, last = reports.FIRST_SUPPORTED_DAY, reports.LAST_SUPPORTED_DAY
        message = f"{day} is outside the days a report covers: between {first} and {last}."
        raise InvalidInput(f"{name}: {message}", fields={name: message})
    return day


def window_from(params) -> reports.Window:
    """`from` and `to` are days in TIME_ZONE, both included; the default is the last 7 days."""
    first, last = _day(params, "from"), _day(params, "to")
    default = reports.Window.last_days(today=last)
    window = reports.Window(first_day=first or default.first_day, last_day=last or default.last_day)
    if window.first_day > window.last_day:
        message = f"from ({window.first_day}) is after to ({window.last_day})."
        raise InvalidInput(message, fields={"from": message})
    if window.last_day - window.first_day >= timedelta(days=MAX_DAYS):
        message = f"at most {MAX_DAYS} days at a time."
        raise InvalidInput(f"from: {message}", fields={"from": message})
    return window


def policy_from(params):
    reference = (params.get("policy") or "").strip()
    if not reference:
        return None
    policy = selectors.policy_by_reference(reference)
    if policy is None:
        message = f"no escalation policy with id or name '{reference}'."
        raise InvalidInput(f"policy: {message}", fields={"policy": message})
    return policy


class PercentilesOut(serializers.Serializer):
    count = serializers.IntegerField()
    p50_seconds = serializers.FloatField(allow_null=True)
    p90_seconds = serializers.FloatField(allow_null=True)
    mean_seconds = serializers.FloatField(allow_null=True)


class PersonOut(serializers.Serializer):
    person = serializers.CharField()
    count = serializers.IntegerField()
    p50_seconds = serializers.FloatField(allow_null=True, help_text="their median time to acknowledge")


class ResponseTimesOut(serializers.Serializer):
    """The schema of the answer (report_body builds it)."""

    from_ = serializers.DateField()
    to = serializers.DateField()
    policy = serializers.DictField(allow_null=True, help_text="{id, name}, or null for every policy")
    drills_excluded = serializers.BooleanField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="opened, acknowledged, ...")
    time_to_acknowledge = PercentilesOut(help_text="MTTA: from opening to acknowledged_at")
    time_to_resolve = PercentilesOut(help_text="MTTR: from opening to resolved_at")
    acknowledged_by = PersonOut(many=True)
    calls_per_incident = serializers.DictField(help_text="mean and max calls placed per incident")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # "from" is a Python keyword
        return fields


def _percentiles(values: reports.Percentiles) -> dict:
    return {
        "count": values.count,
        "p50_seconds": values.p50_seconds,
        "p90_seconds": values.p90_seconds,
        "mean_seconds": values.mean_seconds,
    }


def report_body(report: reports.ResponseTimes) -> dict:
    return {
        "from": report.window.first_day.isoformat(),
        "to": report.window.last_day.isoformat(),
        "policy": {"id": report.policy.pk, "name": report.policy.name} if report.policy else None,
        "drills_excluded": True,
        "counts": {
            "opened": report.opened,
            "acknowledged": report.acknowledged,
            "resolved": report.resolved,
            "exhausted": report.exhausted,
        },
        "time_to_acknowledge": _percentiles(report.time_to_acknowledge),
        "time_to_resolve": _percentiles(report.time_to_resolve),
        "acknowledged_by": report.acknowledged_by,
        "calls_per_incident": {"mean": report.calls_per_incident_mean, "max": report.calls_per_incident_max},
    }


class ResponseTimesReportApi(APIView):
    permission_classes = [CanReadReports]

    @extend_schema(
        summary="MTTA / MTTR report: counts, p50/p90, acknowledgements by person, calls per incident",
        tags=["reports"],
        parameters=[
            OpenApiParameter("from", date, description="first day (ISO date, TIME_ZONE); default 6 days before to"),
            OpenApiParameter("to", date, description="last day, included; default today"),
            OpenApiParameter("policy", str, description="escalation policy id or name; default every policy"),
        ],
        responses=ResponseTimesOut,
    )
    def get(self, request):
        window, policy = window_from(request.query_params), policy_from(request.query_params)
        return Response(report_body(reports.response_times(window, policy)))
