"""Reads for alert rules."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from config.errors import NotFound
from monitoring.models import AlertRule, RuleSeries


def rule_list() -> QuerySet[AlertRule]:
    series = RuleSeries.objects.order_by("series_key")
    return AlertRule.objects.select_related("policy").prefetch_related(Prefetch("series", queryset=series))


def rule_detail(rule_id: int) -> AlertRule:
    rule = rule_list().filter(pk=rule_id).first()
    if rule is None:
        raise NotFound(f"Alert rule {rule_id} does not exist.")
    return rule


def enabled_rule_metrics() -> list[tuple[int, str]]:
    """(id, metric) of every enabled rule, in id order (the order evaluation locks them)."""
    return list(AlertRule.objects.filter(enabled=True).order_by("pk").values_list("pk", "metric"))


def enabled_rules() -> QuerySet[AlertRule]:
    return AlertRule.objects.filter(enabled=True).select_related("policy").order_by("rule_name", "pk")
