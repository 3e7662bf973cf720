"""Texts for people in the recipient's language (Korean unless the integration says "en"), for every
event we publish: incidents, stored recordings, and warning-level alert rules."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from integrations.services import deliver, notify
from tests.accounts.helpers import person

pytestmark = pytest.mark.django_db

# recordings.events.stored_payload's shape
RECORDING_PAYLOAD = {
    "recording_id": 7,
    "kind": "voice",
    "session_id": "call-20260301-0001",
    "agent_id": "agent-kim",
    "customer_id": "C-1042",
    "duration_seconds": 65.2,
    "format": "mp3",
    "started_at": "2026-03-01T03:12:00+09:00",
    "url": "http://127.0.0.1:8000/api/v1/recordings/7",
}
# monitoring.services._payload's shape for a warning rule (its summary is bilingual)
RULE_PAYLOAD = {
    "summary": "디스크 사용률 [db-1] 93.5% (임계값 > 90%) / Disk usage [db-1] 93.5% (threshold > 90%)",
    "severity": "warning",
    "state": "firing",
    "rule_id": 3,
    "rule_name": "disk-usage-db",
    "metric": "disk_usage_percent",
    "series": ["db-1"],
    "value": 93.5,
    "operator": ">",
    "threshold": 90.0,
    "for_seconds": 300,
}


def slack_text_for(receiver, make_integration, event: str, payload: dict, **options) -> str:
    make_integration("ops-slack", kind="slack", target=f"{receiver.url}/services/T0/B0/XYZ", options=options)
    [message] = notify(event, payload, dedup_key=f"{event}:1")
    deliver(message.pk)
    [request] = receiver.requests
    return request.json()["text"]


def test_a_stored_recording_is_announced_in_korean(receiver, make_integration):
    text = slack_text_for(receiver, make_integration, "recording.stored", RECORDING_PAYLOAD)

    assert text.startswith("*녹음 저장됨* 녹음: #7. 종류: 음성 통화. 길이: 1분 5초. 고객: C-1042. 상담원: agent-kim.")
    assert "형식: mp3. 시작 시각: 2026-03-01 03:12 KST." in text
    assert text.endswith("<http://127.0.0.1:8000/api/v1/recordings/7|녹음 열기>")


def test_a_stored_recording_is_announced_in_english(receiver, make_integration):
    text = slack_text_for(receiver, make_integration, "recording.stored", RECORDING_PAYLOAD, language="en")

    assert text.startswith("*Recording stored* Recording: #7. Kind: voice call. Duration: 1 min 5 s. Customer: C-1042.")
    assert text.endswith("<http://127.0.0.1:8000/api/v1/recordings/7|Open the recording>")


def test_a_firing_alert_rule_names_the_rule_the_value_and_the_threshold(receiver, make_integration):
    text = slack_text_for(receiver, make_integration, "alert_rule.firing", RULE_PAYLOAD)

    assert text.startswith("*경보 규칙 발생:* 디스크 사용률 [db-1] 93.5%")
    for fact in (
        "심각도: 경고.",
        "상태: 발생 중.",
        "경보 규칙: disk-usage-db.",
        "현재 값: 93.5.",
        "임계값: &gt; 90.0.",
    ):
        assert fact in text


def test_a_publisher_summary_per_language_is_used_for_that_language(smtp_server, make_integration):
    make_integration("ko-team", kind="email", target="kim@example.com")
    make_integration("en-team", kind="email", target="lee@example.com", options={"language": "en"})
    payload = {**RULE_PAYLOAD, "summary_ko": "디스크 사용률 93.5%", "summary_en": "Disk usage 93.5%"}

    for message in notify("alert_rule.resolved", payload, dedup_key="rule:3:resolved"):
        deliver(message.pk)

    subjects = {mail.rcpt_tos[0]: mail.message["Subject"].strip() for mail in smtp_server.mails}
    assert subjects == {
        "kim@example.com": "[WARNING] 디스크 사용률 93.5% — 경보 규칙 해소",
        "lee@example.com": "[WARNING] Disk usage 93.5% — Alert rule resolved",
    }


def test_a_language_we_do_not_write_is_refused_naming_the_field(settings):
    settings.MFA_REQUIRED_ROLES = []
    admin = APIClient()
    admin.force_authenticate(person("languages-admin", Role.ADMIN))

    response = admin.post(
        "/api/v1/integrations",
        {
            "integration_id": "ops_slack",
            "name": "Ops Slack",
            "type": "notification",
            "provider": "slack_webhook",
            "endpoint_url": "https://hooks.slack.com/services/T0/B0/XYZ",
            "options": {"language": "ja"},
        },
        format="json",
    )

    assert response.status_code == 400, response.content
    assert "options.language must be one of: ko, en" in response.json()["error"]["fields"]["options"]
