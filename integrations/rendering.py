"""Readable text for people (Slack, email) built from an event payload.

Payloads are the publisher's (see `incidents.services.incident_payload`); the keys read here are
`summary`, `severity`, `state`, `incident_id`, `attempts`, `reason`, `acknowledged_by`, `url`. Any
of them may be missing: the text then leaves that part out rather than printing "None".
"""

from __future__ import annotations

import re

from integrations.models import TEST_EVENT

EVENT_TITLES = {
    "incident.triggered": "Incident triggered",
    "incident.acknowledged": "Incident acknowledged",
    "incident.resolved": "Incident resolved",
    "incident.exhausted": "Nobody acknowledged",
    "drill.completed": "Drill completed",
    TEST_EVENT: "Test notification",
}
SUBJECT_MAX_CHARS = 200


def event_title(event: str) -> str:
    return EVENT_TITLES.get(event, event)


def summary_of(event: str, payload: dict) -> str:
    return _clean(payload.get("summary") or payload.get("title") or event_title(event))


def facts(payload: dict) -> list[tuple[str, str]]:
    """The labelled facts worth reading at 3 a.m., in the order a person reads them."""
    items = [
        ("Severity", payload.get("severity")),
        ("State", payload.get("state")),
        ("Incident", f"#{payload['incident_id']}" if payload.get("incident_id") is not None else None),
        ("Call attempts", payload.get("attempts")),
        ("Reason", payload.get("reason")),
        ("Acknowledged by", payload.get("acknowledged_by")),
        ("Link", payload.get("url")),
    ]
    return [(label, _clean(value)) for label, value in items if value not in (None, "", [], {})]


def slack_text(event: str, payload: dict) -> str:
    """One paragraph: "Nobody acknowledged: Disk full on db-1. Severity: critical. Incident: #42. ..."

    Slack reads `&`, `<` and `>` as markup, so the publisher's text is escaped; the link (last) is
    written as a Slack link so a trailing full stop cannot end up inside it.
    """
    sentences = [f"*{_slack_escape(event_title(event))}:* {_slack_escape(_sentence(summary_of(event, payload)))}"]
    link = ""
    for label, value in facts(payload):
        if label == "Link":
            link = f" <{value}|Open the incident>"
        else:
            sentences.append(f"{label}: {_slack_escape(_sentence(value))}")
    return " ".join(sentences) + link


def email_subject(event: str, payload: dict) -> str:
    severity = payload.get("severity")
    prefix = f"[{_clean(severity).upper()}] " if severity else ""
    subject = f"{prefix}{summary_of(event, payload)} — {event_title(event)}"
    return subject[:SUBJECT_MAX_CHARS]


def email_body(event: str, payload: dict, *, message_id: int) -> str:
    lines = [summary_of(event, payload), "", f"{event_title(event)}.", ""]
    lines += [f"{label}: {value}" for label, value in facts(payload)]
    lines += ["", f"Event: {event}", f"Notification #{message_id} from the on-call escalation service."]
    return "\n".join(lines) + "\n"


def _clean(value: object) -> str:
    """One line of text: headers and chat lines must not carry the publisher's newlines."""
    return re.sub(r"\s+", " ", str(value)).strip()


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else f"{text}."
