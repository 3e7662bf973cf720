"""Readable text for people (Slack, email, SMS, push) built from an event payload, in the recipient's
language: Korean unless the integration asks for English (options["language"]: "ko" or "en").

Payloads are the publishers' (incidents.services.incident_payload, recordings.events.stored_payload,
monitoring.services._payload). The keys read here: `summary` (or `summary_<language>` when the
publisher gives one per language), `severity`, `state`, `incident_id`, `attempts`, `reason`,
`acknowledged_by`, the alert rule's `rule_name`/`metric`/`value`/`operator`/`threshold`, the
recording's `recording_id`/`kind`/`duration_seconds`/`customer_id`/`agent_id`/`session_id`/`format`/
`started_at`, and `url`. Any of them may be missing: the text then leaves that part out rather than
printing "None". Known values (a severity, a state, a recording kind) are said in words; anything
else is shown as the publisher sent it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from django.utils import timezone

from integrations.models import DEFAULT_MESSAGE_LANGUAGE, MESSAGE_LANGUAGES, TEST_EVENT

if TYPE_CHECKING:
    from integrations.models import Integration

EVENT_TITLES: dict[str, dict[str, str]] = {
    "ko": {
        "incident.triggered": "인시던트 발생",
        "incident.acknowledged": "인시던트 확인됨",
        "incident.resolved": "인시던트 해결됨",
        "incident.exhausted": "아무도 확인하지 않음",
        "drill.completed": "훈련 완료",
        "recording.stored": "녹음 저장됨",
        "alert_rule.firing": "경보 규칙 발생",
        "alert_rule.resolved": "경보 규칙 해소",
        "payment.status_changed": "결제 상태 변경",
        TEST_EVENT: "테스트 알림",
    },
    "en": {
        "incident.triggered": "Incident triggered",
        "incident.acknowledged": "Incident acknowledged",
        "incident.resolved": "Incident resolved",
        "incident.exhausted": "Nobody acknowledged",
        "drill.completed": "Drill completed",
        "recording.stored": "Recording stored",
        "alert_rule.firing": "Alert rule firing",
        "alert_rule.resolved": "Alert rule resolved",
        "payment.status_changed": "Payment status changed",
        TEST_EVENT: "Test notification",
    },
}

# (payload key, label per language), in the order a person woken at 3 a.m. reads them.
FACT_LABELS: tuple[tuple[str, dict[str, str]], ...] = (
    ("severity", {"ko": "심각도", "en": "Severity"}),
    ("state", {"ko": "상태", "en": "State"}),
    ("incident_id", {"ko": "인시던트", "en": "Incident"}),
    ("attempts", {"ko": "통화 시도", "en": "Call attempts"}),
    ("reason", {"ko": "사유", "en": "Reason"}),
    ("acknowledged_by", {"ko": "확인한 사람", "en": "Acknowledged by"}),
    ("rule_name", {"ko": "경보 규칙", "en": "Alert rule"}),
    ("metric", {"ko": "지표", "en": "Metric"}),
    ("value", {"ko": "현재 값", "en": "Value"}),
    ("threshold", {"ko": "임계값", "en": "Threshold"}),
    ("recording_id", {"ko": "녹음", "en": "Recording"}),
    ("kind", {"ko": "종류", "en": "Kind"}),
    ("duration_seconds", {"ko": "길이", "en": "Duration"}),
    ("customer_id", {"ko": "고객", "en": "Customer"}),
    ("agent_id", {"ko": "상담원", "en": "Agent"}),
    ("session_id", {"ko": "세션", "en": "Session"}),
    ("format", {"ko": "형식", "en": "Format"}),
    ("started_at", {"ko": "시작 시각", "en": "Started at"}),
    ("url", {"ko": "링크", "en": "Link"}),
)
# The same words the admin and the status page use for these values (locale/ko).
VALUE_WORDS: dict[str, dict[str, dict[str, str]]] = {
    "severity": {
        "ko": {"critical": "치명", "high": "높음", "warning": "경고", "info": "정보"},
        "en": {"critical": "critical", "high": "high", "warning": "warning", "info": "info"},
    },
    "state": {
        "ko": {
            "triggered": "호출 중",
            "exhausted": "소진: 아무도 받지 않음",
            "acknowledged": "확인됨",
            "resolved": "해결됨",
            "firing": "발생 중",
            "test": "테스트",
        },
        "en": {},
    },
    "kind": {"ko": {"voice": "음성 통화", "chat": "채팅"}, "en": {"voice": "voice call", "chat": "chat"}},
}
LINK_WORDS = {
    "incident": {"ko": "인시던트 열기", "en": "Open the incident"},
    "recording": {"ko": "녹음 열기", "en": "Open the recording"},
    "other": {"ko": "열기", "en": "Open"},
}
FOOTERS = {
    "ko": ("이벤트: {event}", "온콜 에스컬레이션 서비스의 알림 #{message_id}입니다."),
    "en": ("Event: {event}", "Notification #{message_id} from the on-call escalation service."),
}
SUBJECT_MAX_CHARS = 200
PUSH_TITLE_MAX_CHARS = 100
PUSH_BODY_MAX_CHARS = 1000
# Payload keys a push carries as data, so the app can open the right screen.
PUSH_DATA_KEYS = ("incident_id", "recording_id", "rule_id", "severity", "state", "url")


def language_of(integration: Integration) -> str:
    """The integration's language for people: options["language"], Korean when unset."""
    language = (integration.options or {}).get("language") if isinstance(integration.options, dict) else None
    return language if language in MESSAGE_LANGUAGES else DEFAULT_MESSAGE_LANGUAGE


def event_title(event: str, language: str = DEFAULT_MESSAGE_LANGUAGE) -> str:
    return EVENT_TITLES[_language(language)].get(event, event)


def summary_of(event: str, payload: dict, language: str = DEFAULT_MESSAGE_LANGUAGE) -> str:
    """The publisher's one-line summary, or the event's title when it sent none."""
    language = _language(language)
    return _own_summary(payload, language) or event_title(event, language)


def facts(payload: dict, language: str = DEFAULT_MESSAGE_LANGUAGE) -> list[tuple[str, str]]:
    """The labelled facts worth reading at 3 a.m., in the order a person reads them."""
    return [(label, value) for _, label, value in _facts(payload, _language(language))]


def slack_text(event: str, payload: dict, *, language: str = DEFAULT_MESSAGE_LANGUAGE) -> str:
    """One paragraph: "아무도 확인하지 않음: db-1 디스크 가득 참. 심각도: 치명. 인시던트: #42. ..."

    Slack reads `&`, `<` and `>` as markup, so the publisher's text is escaped; the link (last) is
    written as a Slack link so a trailing full stop cannot end up inside it.
    """
    language = _language(language)
    title, summary = event_title(event, language), _own_summary(payload, language)
    if summary:
        sentences = [f"*{_slack_escape(title)}:* {_slack_escape(_sentence(summary))}"]
    else:  # e.g. recording.stored: the facts say it all
        sentences = [f"*{_slack_escape(title)}*"]
    link = ""
    for key, label, value in _facts(payload, language):
        if key == "url":
            link = f" <{value}|{_slack_escape(_link_words(event, language))}>"
        else:
            sentences.append(f"{label}: {_slack_escape(_sentence(value))}")
    return " ".join(sentences) + link


def email_subject(event: str, payload: dict, *, language: str = DEFAULT_MESSAGE_LANGUAGE) -> str:
    """ "[CRITICAL] <summary> — <title>": the severity tag stays in capitals in every language, so
    mail filters written for it keep working."""
    language = _language(language)
    severity = payload.get("severity")
    prefix = f"[{_clean(severity).upper()}] " if severity else ""
    summary, title = _own_summary(payload, language), event_title(event, language)
    subject = f"{prefix}{summary} — {title}" if summary else f"{prefix}{title}"
    return subject[:SUBJECT_MAX_CHARS]


def email_body(event: str, payload: dict, *, message_id: int | None, language: str = DEFAULT_MESSAGE_LANGUAGE) -> str:
    language = _language(language)
    summary, title = _own_summary(payload, language), event_title(event, language)
    lines = [summary, "", _sentence(title), ""] if summary else [_sentence(title), ""]
    lines += [f"{label}: {value}" for _, label, value in _facts(payload, language)]
    event_line, sender_line = FOOTERS[language]
    lines += ["", event_line.format(event=event), sender_line.format(message_id=message_id)]
    return "\n".join(lines) + "\n"


def push_notification(event: str, payload: dict, *, language: str = DEFAULT_MESSAGE_LANGUAGE) -> dict:
    """A phone notification {title, body, data}: the title says what happened, the body the summary and
    the facts that fit on a lock screen; data (strings only, as push services require) lets the app
    open the incident or recording."""
    language = _language(language)
    title = event_title(event, language)
    severity = payload.get("severity")
    if severity:
        title = f"[{_clean(severity).upper()}] {title}"
    summary = _own_summary(payload, language)
    sentences = [_sentence(summary)] if summary else []
    sentences += [f"{label}: {_sentence(value)}" for key, label, value in _facts(payload, language) if key != "url"]
    data = {"event": event}
    data.update({key: _clean(payload[key]) for key in PUSH_DATA_KEYS if payload.get(key) not in (None, "")})
    return {
        "title": _cut(title, PUSH_TITLE_MAX_CHARS),
        "body": _cut(" ".join(sentences) or _sentence(event_title(event, language)), PUSH_BODY_MAX_CHARS),
        "data": data,
    }


def _own_summary(payload: dict, language: str) -> str:
    summary = payload.get(f"summary_{language}") or payload.get("summary") or payload.get("title")
    return _clean(summary) if summary else ""


def _facts(payload: dict, language: str) -> list[tuple[str, str, str]]:
    items = []
    for key, labels in FACT_LABELS:
        value = _value(key, payload, language)
        if value not in (None, "", [], {}):
            items.append((key, labels[language], _clean(value)))
    return items


def _value(key: str, payload: dict, language: str) -> object:
    value = payload.get(key)
    if value in (None, "", [], {}):
        return None
    if key in VALUE_WORDS:
        return VALUE_WORDS[key][language].get(str(value), value)
    if key in ("incident_id", "recording_id"):
        return f"#{value}"
    if key == "attempts":
        return f"{value}회" if language == "ko" else value
    if key == "threshold":
        operator = payload.get("operator")
        return f"{operator} {value}" if operator else value
    if key == "duration_seconds":
        return _duration(value, language)
    if key == "started_at":
        return _local_time(value)
    return value


def _local_time(value: object) -> object:
    """An ISO timestamp as the service's local time ("2026-03-01 03:12 KST"), readable at a glance."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return value
    if timezone.is_naive(moment):
        return value
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


def _duration(value: object, language: str) -> object:
    try:
        seconds = round(float(value))
    except (TypeError, ValueError):
        return value
    minutes, seconds = divmod(seconds, 60)
    if language == "ko":
        return f"{minutes}분 {seconds}초" if minutes else f"{seconds}초"
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def _link_words(event: str, language: str) -> str:
    family = event.split(".", 1)[0]
    return LINK_WORDS.get(family, LINK_WORDS["other"])[language]


def _language(language: str | None) -> str:
    return language if language in MESSAGE_LANGUAGES else DEFAULT_MESSAGE_LANGUAGE


def _clean(value: object) -> str:
    """One line of text: headers and chat lines must not carry the publisher's newlines."""
    return re.sub(r"\s+", " ", str(value)).strip()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else f"{text}."
