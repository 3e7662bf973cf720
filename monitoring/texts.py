"""What a firing rule says, in Korean and English: "CPU 사용률 92% (임계값 > 80%, 5분 이상)"."""

from __future__ import annotations

from monitoring.sources import EvaluableMetric


def number(value: float) -> str:
    """92.0 -> "92", 0.1234 -> "0.12", 1234.5 -> "1234.5"."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def with_unit(value: float, unit: str, *, korean: bool) -> str:
    if unit == "s":
        return f"{number(value)}{'초' if korean else ' s'}"
    return f"{number(value)}{unit}"


def duration(seconds: int, *, korean: bool) -> str:
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}{'시간' if korean else ' h'}"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}{'분' if korean else ' min'}"
    return f"{seconds}{'초' if korean else ' s'}"


def describe(rule, metric: EvaluableMetric, value: float, series_key: str) -> tuple[str, str, str]:
    """(Korean, English, spoken Korean) for a rule firing on one series."""
    where = f" [{series_key}]" if series_key else ""
    now_ko, now_en = with_unit(value, metric.unit, korean=True), with_unit(value, metric.unit, korean=False)
    limit_ko = with_unit(rule.threshold, metric.unit, korean=True)
    limit_en = with_unit(rule.threshold, metric.unit, korean=False)
    held_ko = f", {duration(rule.for_seconds, korean=True)} 이상" if rule.for_seconds else ""
    held_en = f", for {duration(rule.for_seconds, korean=False)}" if rule.for_seconds else ""
    korean = f"{metric.title_ko}{where} {now_ko} (임계값 {rule.operator} {limit_ko}{held_ko})"
    english = f"{metric.title_en}{where} {now_en} (threshold {rule.operator} {limit_en}{held_en})"
    now_spoken, limit_spoken = now_ko.replace("%", "퍼센트"), limit_ko.replace("%", "퍼센트")
    spoken = f"경보 규칙 {rule.rule_name}. {metric.title_ko} {now_spoken}, 임계값 {limit_spoken}."
    return korean, english, spoken
