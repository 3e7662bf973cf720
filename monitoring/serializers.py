"""The seed's rule shape `{rule_name, metric, threshold, operator, level}` plus for_seconds, labels,
policy and enabled. Every refusal names its field."""

from __future__ import annotations

import math

from rest_framework import serializers

from incidents.models import EscalationPolicy
from monitoring.models import MAX_FOR_SECONDS, AlertRule, Level, Operator, RuleSeries
from monitoring.sources import canonical_name, evaluable_metrics, label_problem


class LabelValueField(serializers.CharField):
    """Label values are text; a number in a hand-written rule is read as its text."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int | float):
            raise serializers.ValidationError("A label value must be text.")
        return super().to_internal_value(str(data))


class AlertRuleIn(serializers.Serializer):
    rule_name = serializers.CharField(max_length=100)
    metric = serializers.CharField(max_length=100)
    threshold = serializers.FloatField()
    operator = serializers.ChoiceField(
        choices=Operator.values, error_messages={"invalid_choice": f"Use one of {', '.join(Operator.values)}."}
    )
    level = serializers.ChoiceField(
        choices=Level.values,
        default=Level.CRITICAL,
        error_messages={"invalid_choice": "Use critical (phones) or warning (notifies only)."},
    )
    for_seconds = serializers.IntegerField(min_value=0, max_value=MAX_FOR_SECONDS, default=0)
    labels = serializers.DictField(child=LabelValueField(max_length=200, allow_blank=True), default=dict)
    policy = serializers.PrimaryKeyRelatedField(queryset=EscalationPolicy.objects.all(), allow_null=True, default=None)
    enabled = serializers.BooleanField(default=True)

    def validate_metric(self, value: str) -> str:
        name = canonical_name(value.strip())
        if name not in evaluable_metrics():
            raise serializers.ValidationError(
                f"Unknown metric {value!r}. Known: {', '.join(sorted(evaluable_metrics()))}."
            )
        return name

    def validate_threshold(self, value: float) -> float:
        if not math.isfinite(value):
            raise serializers.ValidationError("The threshold must be a finite number.")
        return value

    def validate(self, attrs: dict) -> dict:
        """Labels name the metric's labels (a change of one without the other is checked by the model)."""
        if attrs.get("labels") and "metric" in attrs:
            problem = label_problem(evaluable_metrics()[attrs["metric"]], attrs["labels"])
            if problem:
                raise serializers.ValidationError({"labels": problem})
        return attrs


class RuleSeriesOut(serializers.ModelSerializer):
    class Meta:
        model = RuleSeries
        fields = ["labels", "state", "since", "value", "evaluated_at"]


class AlertRuleOut(serializers.ModelSerializer):
    series = RuleSeriesOut(many=True, read_only=True)
    policy_name = serializers.CharField(source="policy.name", default=None, read_only=True)

    class Meta:
        model = AlertRule
        fields = ["id", "rule_name", "metric", "threshold", "operator", "level", "for_seconds", "labels"]
        fields += ["policy", "policy_name", "enabled", "series", "evaluated_at", "last_error"]
        fields += ["created_at", "updated_at"]


class EvaluableMetricOut(serializers.Serializer):
    name = serializers.CharField()
    title_en = serializers.CharField()
    title_ko = serializers.CharField()
    unit = serializers.CharField()
    label_names = serializers.ListField(child=serializers.CharField())
