"""The rules as a Prometheus rule file, for teams who run their own Prometheus and Alertmanager (which
then post to our /api/v1/alerts/alertmanager). Written by hand as YAML whose every string is a JSON
string (valid YAML), so serving it needs no YAML library."""

from __future__ import annotations

import json

from monitoring import texts
from monitoring.sources import metric_named

GROUP_NAME = "aicc-alert-rules"


def _text(value) -> str:
    return json.dumps(str(value), ensure_ascii=False)


def prometheus_duration(seconds: int) -> str:
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def render(rules) -> str:
    lines = [
        "# Alert rules of the on-call service, as a Prometheus rule file (rule_files: in prometheus.yml).",
        "groups:",
    ]
    lines += [f"  - name: {_text(GROUP_NAME)}", "    rules:"]
    header, count = len(lines) - 1, 0
    for rule in rules:
        metric = metric_named(rule.metric)
        if metric is None:
            continue
        try:
            expression = metric.expression(rule.labels)
        except ValueError as error:  # a row saved before label names were checked: left out, and said so
            lines.append(f"      # left out {_text(rule.rule_name)}: {_text(error)}")
            continue
        threshold = texts.number(rule.threshold)
        value, limit = "{{ $value }}", f"{rule.operator} {threshold}"
        summary = f"{metric.title_ko} {value} (임계값 {limit}) / {metric.title_en} {value} (threshold {limit})"
        lines += [
            f"      - alert: {_text(rule.rule_name)}",
            f"        expr: {_text(f'{expression} {rule.operator} {threshold}')}",
            f"        for: {_text(prometheus_duration(rule.for_seconds))}",
            "        labels:",
            f"          severity: {_text(rule.level)}",
            f"          rule_id: {_text(rule.pk)}",
        ]
        if rule.policy is not None:
            lines.append(f"          escalation_policy: {_text(rule.policy.name)}")
        lines += ["        annotations:", f"          summary: {_text(summary)}"]
        count += 1
    if count == 0:
        lines[header] = "    rules: []"
    return "\n".join(lines) + "\n"
