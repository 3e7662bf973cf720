"""Alert rules (the seed's `{rule_name, metric, threshold, operator, level}` plus how long, which
series and whom to call) and their evaluation state, kept in the database so that a restarted beat or
worker carries on where the last evaluation left off (a pending rule keeps its start time)."""

from __future__ import annotations

import math
import operator as python_operator

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

MAX_FOR_SECONDS = 7 * 24 * 3600


class Operator(models.TextChoices):
    GT = ">", "> (above)"
    GE = ">=", ">= (at or above)"
    LT = "<", "< (below)"
    LE = "<=", "<= (at or below)"
    EQ = "==", "== (equal)"
    NE = "!=", "!= (not equal)"


COMPARE = {
    Operator.GT: python_operator.gt,
    Operator.GE: python_operator.ge,
    Operator.LT: python_operator.lt,
    Operator.LE: python_operator.le,
    Operator.EQ: python_operator.eq,
    Operator.NE: python_operator.ne,
}


class Level(models.TextChoices):
    """critical: opens an incident and phones the policy; warning: tells the integrations only."""

    CRITICAL = "critical", _("Critical (phone)")
    WARNING = "warning", _("Warning (notify only)")


class AlertRule(models.Model):
    rule_name = models.CharField(max_length=100, unique=True, verbose_name=_("rule name"))
    metric = models.CharField(
        max_length=100, help_text=_("One of the evaluable metrics (see the README)."), verbose_name=_("metric")
    )
    operator = models.CharField(max_length=2, choices=Operator.choices, default=Operator.GT, verbose_name=_("operator"))
    threshold = models.FloatField(verbose_name=_("threshold"))
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.CRITICAL, verbose_name=_("level"))
    for_seconds = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_FOR_SECONDS)],
        help_text=_("How long the condition must hold before the rule fires (0: at once)."),
        verbose_name=_("for (seconds)"),
    )
    labels = models.JSONField(
        default=dict,
        blank=True,
        help_text=_('Which series, e.g. {"queue": "calls"}; every label named must match. {} watches every series.'),
        verbose_name=_("labels"),
    )
    policy = models.ForeignKey(
        "incidents.EscalationPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Who is called when a critical rule fires; empty: the default policy."),
        verbose_name=_("escalation policy"),
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    evaluated_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last evaluated"))
    firing_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("Set while any series fires: the rule's one incident is open."),
        verbose_name=_("firing since"),
    )
    last_error = models.CharField(max_length=500, blank=True, verbose_name=_("last error"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["rule_name"]

    def __str__(self) -> str:
        return f"{self.rule_name}: {self.metric} {self.operator} {self.threshold:g}"

    def clean(self) -> None:
        from monitoring.sources import canonical_name, label_problem, metric_named

        errors = {}
        self.metric = canonical_name(self.metric or "")
        metric = metric_named(self.metric)
        if metric is None:
            errors["metric"] = f"Unknown metric {self.metric!r}; see GET /api/v1/alert-rules/metrics."
        if self.threshold is not None and not math.isfinite(self.threshold):
            errors["threshold"] = "The threshold must be a finite number."
        if self.labels is None:
            self.labels = {}
        if not isinstance(self.labels, dict) or not all(
            isinstance(value, str | int | float) and not isinstance(value, bool) for value in self.labels.values()
        ):
            errors["labels"] = 'Labels are a JSON object of label names to values, e.g. {"queue": "calls"}.'
        elif metric is not None and label_problem(metric, self.labels):
            errors["labels"] = label_problem(metric, self.labels)
        if errors:
            raise ValidationError(errors)

    def breached_by(self, value: float) -> bool:
        return not math.isnan(value) and COMPARE[self.operator](value, self.threshold)


class SeriesState(models.TextChoices):
    INACTIVE = "inactive", _("Inactive")
    PENDING = "pending", _("Pending")
    FIRING = "firing", _("Firing")
    RESOLVING = "resolving", _("Resolving (clear, held before it resolves)")


class RuleSeries(models.Model):
    """One rule on one series (a label set of its metric): Prometheus's inactive -> pending -> firing,
    and firing -> resolving -> inactive once the clear has held (hold_seconds); a breach while resolving
    goes straight back to firing."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="series", verbose_name=_("rule"))
    series_key = models.CharField(max_length=500, blank=True, verbose_name=_("series"))
    labels = models.JSONField(default=dict, blank=True, verbose_name=_("labels"))
    state = models.CharField(
        max_length=10, choices=SeriesState.choices, default=SeriesState.INACTIVE, verbose_name=_("state")
    )
    since = models.DateTimeField(null=True, blank=True, verbose_name=_("since"))
    cleared_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When a firing series cleared or stopped being reported."),
        verbose_name=_("cleared at"),
    )
    value = models.FloatField(null=True, blank=True, verbose_name=_("last value"))
    evaluated_at = models.DateTimeField(verbose_name=_("last evaluated"))

    class Meta:
        verbose_name = _("rule series state")
        verbose_name_plural = _("rule series states")
        ordering = ["rule", "series_key"]
        constraints = [models.UniqueConstraint(fields=["rule", "series_key"], name="one_state_per_rule_series")]

    def __str__(self) -> str:
        return f"{self.rule.rule_name} {{{self.series_key}}}: {self.state}"


class HistogramSnapshot(models.Model):
    """The cumulative buckets of a histogram at the previous evaluation, so that a quantile is the one
    of the window since then (as Prometheus's rate() over a range), across restarts too."""

    metric = models.CharField(max_length=100, unique=True)
    buckets = models.JSONField(default=dict)
    taken_at = models.DateTimeField()

    class Meta:
        verbose_name = _("histogram snapshot")
        verbose_name_plural = _("histogram snapshots")

    def __str__(self) -> str:
        return f"{self.metric} at {self.taken_at:%Y-%m-%d %H:%M:%S}"
