"""The alert fast lane (incidents/fast_lane.py) against Django's own path, side by side, through the
WSGI application the web server serves (config.wsgi): a duplicate from an API key is answered by the lane
exactly as the DRF view answers it, and every other post reaches Django, which answers as before,
with nothing stored twice."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest
from django.core import signals
from django.db import close_old_connections, connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from accounts.models import APIKey, Scope
from accounts.services import create_api_key, revoke_api_key
from config.metrics import DB_QUERY_DURATION
from config.wsgi import django_application
from incidents.fast_lane import AlertFastLane
from incidents.models import Alert, Incident
from tests import factories
from tests.scrape import scrape, value

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the fast lane runs on PostgreSQL only"),
]

PATH = "/api/v1/alerts/alertmanager"
VARYING = {"X-Request-ID", "Content-Length"}


class CountingDjango:
    """Django's WSGI application, counting the requests the lane handed on."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: dict, start_response: Callable):
        """As Django's test client does: the request signals must not close the test's connection."""
        self.calls += 1
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        try:
            response = django_application(environ, start_response)
            body = b"".join(response)
            response.close()
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)
        return [body]


@pytest.fixture
def django_app() -> CountingDjango:
    return CountingDjango()


@pytest.fixture
def lane(django_app) -> AlertFastLane:
    return AlertFastLane(django_app)


@pytest.fixture
def key(db) -> str:
    factories.policy(factories.contact("Kim", 1), name="payments")
    return create_api_key(name="alertmanager", scopes=[Scope.ALERTS_WRITE])[1]


def alertmanager(group: str = "g1", status: str = "firing", **extra) -> dict:
    alert = {"status": status, "labels": {"alertname": "Down", "instance": "db-1"}, "fingerprint": "f1"}
    return {"version": "4", "groupKey": group, "status": status, "alerts": [alert], **extra}


def post(app, body, *, key: str | None = None, path: str = PATH, **environ) -> tuple[int, dict, dict]:
    """(status, headers, JSON body) as a client of the web server would see them."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {key}"} if key else {}
    request = RequestFactory().post(path, data=raw, content_type="application/json", **headers, **environ)
    environ_dict = {**request.environ, "wsgi.input": io.BytesIO(raw)}
    seen: dict = {}

    def start_response(status: str, header_list: list, exc_info=None):
        seen["status"], seen["headers"] = int(status.split()[0]), dict(header_list)

    chunks = b"".join(app(environ_dict, start_response))
    return seen["status"], seen["headers"], json.loads(chunks) if chunks else {}


def statements_timed() -> float:
    """How many statements this process has timed into aicc_db_query_duration_seconds."""
    return next(sample.value for sample in DB_QUERY_DURATION.collect()[0].samples if sample.name.endswith("_count"))


def test_a_new_group_runs_the_duplicate_statement_once_not_twice(lane, django_app, key):
    def statements_outside_djangos_cursor(app, group: str) -> float:
        """The duplicate statement is sent on psycopg's own cursor: timed, but not among Django's queries."""
        timed_before = statements_timed()
        with CaptureQueriesContext(connection) as queries:
            status, _, _ = post(app, alertmanager(group), key=key)
        assert status == 201
        return statements_timed() - timed_before - len(queries.captured_queries)

    # when one new group opens through the lane and another through Django alone
    through_the_lane = statements_outside_djangos_cursor(lane, "g1")
    through_django_alone = statements_outside_djangos_cursor(django_app, "g2")

    # then the lane's statement, which found nothing to join, took the place of Django's own
    assert through_the_lane == through_django_alone


def requests_counted(settings) -> float:
    """The API metric of 200 answers on the route, as a Prometheus scrape reads it."""
    samples = scrape(Client(), settings)
    return value(samples, "aicc_api_requests_total", method="POST", route=PATH, status="200")


def test_a_duplicate_is_answered_by_the_lane_exactly_as_by_django(lane, django_app, key, settings):
    # given an incident opened by a first alert
    first_status, _, opened = post(lane, alertmanager(), key=key)
    assert first_status == 201 and django_app.calls == 1

    # when the same group fires again, once through the lane and once with the lane turned off
    counted_before = requests_counted(settings)
    lane_status, lane_headers, lane_body = post(lane, alertmanager(), key=key)
    assert django_app.calls == 1, "the lane answered it"
    settings.ALERT_FAST_LANE = False
    django_status, django_headers, django_body = post(lane, alertmanager(), key=key)
    assert django_app.calls == 2

    # then the two answers are the same: status, body and headers
    assert (lane_status, lane_body) == (django_status, django_body)
    assert lane_body == {
        "incident_id": opened["incident_id"],
        "state": "triggered",
        "deduplicated": True,
        "warnings": [],
        "resolved": False,
        "retriggered": False,
    }
    same = {name: value for name, value in lane_headers.items() if name not in VARYING}
    assert same == {name: value for name, value in django_headers.items() if name not in VARYING}
    assert set(lane_headers) == set(django_headers)
    # and every alert is stored, with its payload, as a duplicate of the one incident
    alerts = list(Alert.objects.order_by("pk"))
    assert [alert.duplicate for alert in alerts] == [False, True, True]
    assert alerts[1].payload == alertmanager() and alerts[1].received_by == "api-key:alertmanager"
    # and the lane's answer is counted in the API metrics under its route
    assert requests_counted(settings) == counted_before + 2


def test_the_lane_echoes_a_sane_request_id_and_makes_one_otherwise(lane, key):
    post(lane, alertmanager(), key=key)
    _, headers, _ = post(lane, alertmanager(), key=key, HTTP_X_REQUEST_ID="storm-42")
    assert headers["X-Request-ID"] == "storm-42"
    _, headers, _ = post(lane, alertmanager(), key=key, HTTP_X_REQUEST_ID="bad id\n")
    assert len(headers["X-Request-ID"]) == 32


@pytest.mark.parametrize(
    ("case", "expected_status"),
    [
        ("no key", 401),
        ("a person's bearer token", 401),
        ("a wrong key", 401),
        ("a key without alerts:write", 403),
        ("a revoked key", 401),
        ("broken JSON", 400),
        ("a body the serializer refuses", 400),
        ("a body over the limit", 413),
        ("a Host we do not serve", 400),
        ("an unknown policy", 200),
        ("a resolve", 200),
        ("the rate limit", 429),
    ],
)
def test_whatever_is_not_a_plain_duplicate_from_a_good_key_gets_djangos_own_answer(
    lane, django_app, key, settings, case, expected_status
):
    # given an open incident for the group
    post(lane, alertmanager(), key=key)
    if case == "the rate limit":
        settings.ALERT_RATE_PER_KEY = "1/hour"
        post(lane, alertmanager(), key=key)  # spends the bucket's one alert
    calls_before, alerts_before = django_app.calls, Alert.objects.count()
    body, environ, sent_key = alertmanager(), {}, key
    if case == "no key":
        sent_key = None
    elif case == "a person's bearer token":
        sent_key, environ["HTTP_AUTHORIZATION"] = None, "Bearer not-a-valid-jwt"
    elif case == "a wrong key":
        sent_key = key[:-4] + "xxxx"
    elif case == "a key without alerts:write":
        sent_key = create_api_key(name="reader", scopes=[Scope.INCIDENTS_READ])[1]
    elif case == "a revoked key":
        revoke_api_key(APIKey.objects.get(name="alertmanager"))
    elif case == "broken JSON":
        body = b'{"groupKey": '
    elif case == "a body the serializer refuses":
        body = alertmanager(version="3")
    elif case == "a body over the limit":
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    elif case == "a Host we do not serve":
        environ["HTTP_HOST"] = "evil.example.com"
    elif case == "an unknown policy":
        body = alertmanager(commonLabels={"escalation_policy": "nobody-knows"})
    elif case == "a resolve":
        body = alertmanager(status="resolved")

    # when it is posted
    status, _, answer = post(lane, body, key=sent_key, **environ)

    # then Django's path answered it, as it always has
    assert django_app.calls == calls_before + 1
    assert status == expected_status, answer
    stored = Alert.objects.count() - alerts_before
    assert stored == (1 if expected_status == 200 else 0)
    if case == "an unknown policy":
        assert answer["warnings"] and "nobody-knows" in answer["warnings"][0]
    if case == "a resolve":
        assert answer["resolved"] is True and Incident.objects.get().state == "resolved"


def test_a_new_group_opens_its_incident_through_djangos_path(lane, django_app, key):
    post(lane, alertmanager("g1"), key=key)
    status, _, _ = post(lane, alertmanager("g2"), key=key)
    assert status == 201 and django_app.calls == 2 and Incident.objects.count() == 2
    # and once open, its duplicates take the lane
    post(lane, alertmanager("g2"), key=key)
    assert django_app.calls == 2


@pytest.mark.parametrize(
    "odd",
    [
        '"labels": {"alertname": "Down", "value": NaN}',
        '"labels": {"alertname": "Down\\u0000here"}',
        '"labels": {"alertname": "Down", "big": 1' + "7" * 5000 + "}",
        '"labels": {"alertname": "Down", "deep": ' + "[" * 40 + "]" * 40 + "}",
    ],
    ids=["NaN", "NUL", "a 5000-digit number", "40 levels deep"],
)
def test_odd_json_is_stored_by_the_lane_exactly_as_djangos_parser_stores_it(lane, django_app, key, settings, odd):
    post(lane, alertmanager(), key=key)
    raw = (
        '{"version": "4", "groupKey": "g1", "status": "firing", "alerts": [{"status": "firing", ' + odd + "}]}"
    ).encode()

    lane_answer = post(lane, raw, key=key)
    settings.ALERT_FAST_LANE = False
    django_answer = post(lane, raw, key=key)

    assert django_app.calls == 2, "the lane took the first of the two"
    assert (lane_answer[0], lane_answer[2]) == (django_answer[0], django_answer[2]) == (200, lane_answer[2])
    by_lane, by_django = (alert.payload for alert in Alert.objects.order_by("pk")[1:])
    assert by_lane == by_django


def test_a_database_error_in_the_duplicate_statement_is_djangos_error(key):
    # given an open incident
    from django.db import DataError, transaction

    from incidents.duplicates import join_as_duplicate
    from incidents.services import open_incident

    open_incident(summary="disk full", dedup_key="disk")

    # when PostgreSQL refuses the payload (a lone surrogate is no text jsonb can hold)
    with pytest.raises(DataError), transaction.atomic():
        join_as_duplicate("disk", source="generic", payload={"text": "\ud800"}, actor="test")

    # then it is Django's DataError (the lane hands such an alert to Django), and nothing was stored
    assert Alert.objects.filter(duplicate=True).count() == 0
