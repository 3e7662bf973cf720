"""Alertmanager retries and fans out: the same group posted many times at once must open one
incident and place one call; its resolved notification stops the escalation."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from accounts.services import create_api_key
from incidents.models import Alert, Incident
from orchestrator.models import CallAttempt
from tests import factories
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e

GROUP_KEY = '{}/{severity="critical"}:{alertname="HighCPU"}'


def alertmanager_payload(status: str = "firing") -> dict:
    return {
        "version": "4",
        "groupKey": GROUP_KEY,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "oncall-phone",
        "groupLabels": {"alertname": "HighCPU"},
        "commonLabels": {"alertname": "HighCPU", "severity": "critical"},
        "commonAnnotations": {"summary": "서버 A CPU 95%", "description": "서버 A의 CPU 사용률이 95퍼센트입니다."},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "HighCPU", "instance": "server-a", "severity": "critical"},
                "annotations": {"summary": "서버 A CPU 95%"},
                "startsAt": "2026-11-21T03:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": "a1b2c3",
            }
        ],
    }


def test_fifty_concurrent_copies_of_a_group_open_one_incident_and_one_call(carrier, live_server):
    # given a primary whose phone rings for a while without an answer
    carrier.ring_seconds = 3.0
    primary = factories.contact("Kim", 3)
    factories.policy(primary, factories.contact("Lee", 3))
    _, raw_key = create_api_key(name="alertmanager", scopes=["alerts:write"])
    url = f"{live_server.url}/api/v1/alerts/alertmanager"
    headers = {"Authorization": f"Api-Key {raw_key}"}

    # when Alertmanager posts the same group 50 times at once
    def post(_):
        return requests.post(url, json=alertmanager_payload(), headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(post, range(50)))

    # then one incident was opened (201 once) and every other copy joined it (200)
    codes = sorted(response.status_code for response in responses)
    assert codes == [200] * 49 + [201], codes
    assert len({response.json()["incident_id"] for response in responses}) == 1
    incident = Incident.objects.get()
    assert Alert.objects.filter(incident=incident).count() == 50
    assert incident.summary == "서버 A CPU 95%"
    wait_until(lambda: carrier.calls, what="the first call")

    # when the group resolves
    resolved = requests.post(url, json=alertmanager_payload("resolved"), headers=headers, timeout=10)

    # then the incident is resolved and no other call is placed
    assert resolved.status_code == 200 and resolved.json()["resolved"] is True
    carrier.wait_until_idle()
    incident.refresh_from_db()
    assert incident.state == "resolved"
    assert [call.to for call in carrier.calls] == [primary.phone]
    assert CallAttempt.objects.filter(incident=incident).count() == 1


def test_grafana_state_ok_resolves(system_client, transactional_db):
    factories.policy(factories.contact("Kim"))
    payload = {
        "receiver": "oncall",
        "status": "firing",
        "state": "alerting",
        "title": "[FIRING:1] DiskFull",
        "message": "디스크가 가득 찼습니다.",
        "groupKey": '{}:{alertname="DiskFull"}',
        "commonLabels": {"alertname": "DiskFull", "severity": "warning"},
        "commonAnnotations": {},
        "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull"}, "annotations": {}, "fingerprint": "ff01"}],
        "version": "1",
    }

    opened = system_client.post("/api/v1/alerts/grafana", payload, format="json")
    repeat = system_client.post("/api/v1/alerts/grafana", payload, format="json")
    closed = system_client.post(
        "/api/v1/alerts/grafana", {**payload, "state": "ok", "status": "resolved"}, format="json"
    )

    assert opened.status_code == 201 and repeat.json()["deduplicated"] is True
    assert closed.json()["resolved"] is True
    incident = Incident.objects.get()
    assert (incident.state, incident.severity, incident.source) == ("resolved", "warning", "grafana")
    assert incident.tts_text == "디스크가 가득 찼습니다."


def test_an_alertmanager_payload_of_another_version_is_refused(system_client, db):
    response = system_client.post(
        "/api/v1/alerts/alertmanager", {**alertmanager_payload(), "version": "3"}, format="json"
    )

    assert response.status_code == 400
    assert "version" in response.json()["error"]["fields"]
