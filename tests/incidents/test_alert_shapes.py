"""A page is never dropped for its shape: odd but understandable JSON is stored (cleaned) and pages;
only what cannot be understood is refused, with a 4xx that says why. Run on PostgreSQL, whose jsonb
refuses NUL, NaN and Infinity."""

from __future__ import annotations

import json

import pytest

from incidents.models import Alert, Incident
from orchestrator.models import CallAttempt
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def default_policy():
    return factories.policy(factories.contact("Kim"), name="default")


def post_raw(client, path: str, raw: str):
    client.raise_request_exception = False  # a crash is the answer under test, not a test error
    return client.post(path, data=raw.encode("utf-8", "surrogatepass"), content_type="application/json")


def assert_paged(response) -> Incident:
    assert response.status_code == 201, response.content[:300]
    incident = Incident.objects.get(pk=response.json()["incident_id"])
    assert CallAttempt.objects.filter(incident=incident).exists()
    return incident


def stored_payload(incident: Incident) -> dict:
    return Alert.objects.get(incident=incident).payload


def alertmanager(labels: dict, annotations: dict, common_labels: dict | None = None) -> dict:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="Odd"}',
        "status": "firing",
        "commonLabels": common_labels if common_labels is not None else labels,
        "commonAnnotations": annotations,
        "alerts": [{"status": "firing", "labels": labels, "annotations": annotations, "fingerprint": "f1"}],
    }


def test_a_nul_character_anywhere_is_removed_and_the_alert_pages(system_client):
    # given: NUL in the summary, in an extra value and in a key (jsonb refuses all three)
    raw = '{"summary": "disk\\u0000 full", "dedup_key": "d\\u0000k", "details": {"k\\u0000ey": "v\\u0000al"}}'

    response = post_raw(system_client, "/api/v1/alerts/generic", raw)

    incident = assert_paged(response)
    assert incident.summary == "disk full"
    assert stored_payload(incident)["details"] == {"key": "val"}


def test_a_lone_surrogate_is_removed_and_the_alert_pages(system_client):
    raw = '{"summary": "cpu \\ud800high", "extra": ["\\udfff"]}'

    incident = assert_paged(post_raw(system_client, "/api/v1/alerts/generic", raw))

    assert incident.summary == "cpu high"
    assert stored_payload(incident)["extra"] == [""]


def test_nan_and_infinity_are_stored_as_strings(system_client):
    raw = '{"summary": "latency", "value": NaN, "limits": [Infinity, -Infinity, 1e999]}'

    incident = assert_paged(post_raw(system_client, "/api/v1/alerts/generic", raw))

    payload = stored_payload(incident)
    assert payload["value"] == "NaN"
    assert payload["limits"] == ["Infinity", "-Infinity", "1e999"]


def test_an_integer_of_5000_digits_is_stored_as_a_string(system_client):
    raw = '{"summary": "big number", "value": ' + "7" * 5000 + "}"

    incident = assert_paged(post_raw(system_client, "/api/v1/alerts/generic", raw))

    assert stored_payload(incident)["value"] == "7" * 5000


def test_a_thousand_levels_of_nesting_are_cut_with_a_marker(system_client):
    raw = '{"summary": "deep", "details": ' + "[" * 1000 + "1" + "]" * 1000 + "}"

    incident = assert_paged(post_raw(system_client, "/api/v1/alerts/generic", raw))

    depth, node = 0, stored_payload(incident)["details"]
    while isinstance(node, list):
        depth, node = depth + 1, node[0]
    assert 10 <= depth < 100
    assert "truncated" in node


def test_a_body_nested_a_hundred_thousand_deep_is_a_400_not_a_crash(system_client):
    response = post_raw(system_client, "/api/v1/alerts/generic", "[" * 100_000 + "]" * 100_000)

    assert response.status_code == 400
    assert not Incident.objects.exists()


def test_alertmanager_labels_and_annotations_that_are_not_strings_still_page(system_client):
    # given: numbers, booleans, null and objects where Alertmanager sends strings
    labels = {"alertname": "Odd", "severity": 5, "replica": 2.5, "canary": True, "zone": None}
    annotations = {"summary": 404, "description": {"text": "nested"}, "runbook": ["a", "b"]}
    body = alertmanager(labels, annotations)

    incident = assert_paged(post_raw(system_client, "/api/v1/alerts/alertmanager", json.dumps(body)))

    assert incident.summary == "404"
    assert incident.severity == "critical"  # "5" is no known severity
    assert stored_payload(incident)["commonLabels"]["replica"] == 2.5  # the raw payload is kept as sent


def test_an_alertmanager_severity_that_is_an_object_still_pages(system_client):
    body = alertmanager({"alertname": "Odd"}, {"summary": "s"}, common_labels={"severity": {"level": "page"}})

    incident = assert_paged(post_raw(system_client, "/api/v1/alerts/alertmanager", json.dumps(body)))

    assert incident.severity == "critical"


def test_grafana_labels_and_annotations_that_are_not_strings_still_page(system_client):
    body = {
        "status": "firing",
        "state": "alerting",
        "title": 17,
        "message": {"rich": "text"},
        "groupKey": "g1",
        "commonLabels": {"severity": ["warning"]},
        "commonAnnotations": {"summary": 3.5},
        "alerts": [{"status": "firing", "labels": {"n": 1}, "annotations": {"x": {"y": 1}}, "fingerprint": "fp"}],
    }

    incident = assert_paged(post_raw(system_client, "/api/v1/alerts/grafana", json.dumps(body)))

    assert incident.summary == "3.5"


def test_control_characters_in_the_text_are_cleaned_when_stored(system_client):
    raw = json.dumps({"summary": "\x1b[31mCPU\x1b[0m 95%\x07", "tts_text": "서버\x0b A\ufffe 다운\uffff"})

    incident = assert_paged(post_raw(system_client, "/api/v1/alerts/generic", raw))

    assert incident.summary == "CPU 95%"
    assert incident.tts_text == "서버 A 다운"


@pytest.mark.parametrize(
    "raw",
    ['{"summary": "x",', "{'summary': 'x'}", '{"summary": "x"} trailing', "\ufeff{", '{"summary": nul}'],
)
def test_json_that_cannot_be_understood_is_a_400_that_says_so(system_client, raw):
    response = post_raw(system_client, "/api/v1/alerts/generic", raw)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert not Incident.objects.exists()


def test_alert_payloads_validated_at_once_in_many_threads_each_get_their_own_answer():
    """The alert serializers share their fields' definitions between instances (built once per class,
    for the storm's sake): posts validated at the same moment on a web worker's threads must never see
    each other's values or errors."""
    from concurrent.futures import ThreadPoolExecutor

    from incidents.serializers import AlertmanagerIn

    def notification(index: int) -> dict:
        alert = {"status": "firing", "labels": {"alertname": f"A{index}", "n": index}, "fingerprint": f"f{index}"}
        body = {"groupKey": f"g{index}", "status": "firing", "alerts": [alert] * (1 + index % 3)}
        if index % 5 == 0:
            body["alerts"] = []  # refused: an Alertmanager notification always carries alerts
        return body

    def validate(index: int):
        serializer = AlertmanagerIn(data=notification(index))
        return index, serializer.is_valid(), serializer.validated_data if serializer.is_valid() else serializer.errors

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(validate, range(400)))

    for index, valid, result in answers:
        assert valid is (index % 5 != 0)
        if valid:
            assert result["groupKey"] == f"g{index}"
            assert len(result["alerts"]) == 1 + index % 3
            assert {alert["labels"]["n"] for alert in result["alerts"]} == {str(index)}
        else:
            assert set(result) == {"alerts"}


def test_a_serializer_reused_for_post_after_post_answers_as_a_fresh_one_would():
    """The fast lane keeps one serializer per thread and gives it each new body: valid after invalid,
    and the other way round, on 8 threads at once, it must answer exactly what a new one answers."""
    from concurrent.futures import ThreadPoolExecutor

    from incidents.serializers import AlertmanagerIn, GenericAlertIn, GrafanaIn, validated_or_none

    def body(index: int) -> tuple[type, dict]:
        alert = {"status": "firing", "labels": {"alertname": f"A{index}", "n": index}, "fingerprint": f"f{index}"}
        kind = index % 3
        if kind == 0:
            return AlertmanagerIn, {"groupKey": f" g{index} ", "status": "firing", "alerts": [alert] * (index % 4)}
        if kind == 1:
            return GrafanaIn, {"state": "alerting", "alerts": [alert], "groupKey": "" if index % 2 else f"k{index}"}
        return GenericAlertIn, {"summary": f"s{index}" if index % 7 else "", "dedup_key": f"d{index}"}

    def both(index: int):
        serializer_class, data = body(index)
        fresh = serializer_class(data=data)
        expected = fresh.validated_data if fresh.is_valid() else None
        return expected, validated_or_none(serializer_class, data)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(both, range(600)))

    assert all(expected == reused for expected, reused in answers)
    assert sum(expected is None for expected, _ in answers) > 50  # refusals were mixed in
    assert sum(expected is not None for expected, _ in answers) > 300
