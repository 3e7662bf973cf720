"""Readable logs: one INFO line per incident event (the log alone tells the story), routine sweeps
silent unless they did something, no request printed twice, SDK request headers at DEBUG only."""

from __future__ import annotations

import logging

import pytest

from config.logging import QuietRoutineTasksFilter
from incidents.services import acknowledge, open_incident
from orchestrator.tasks import sweep_escalations
from tests import factories

pytestmark = pytest.mark.django_db


def event_lines(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.getMessage() == "incident event"]


def test_each_incident_event_is_one_info_line_that_tells_what_happened(caplog):
    # given: a policy; when: an alert opens an incident and someone acknowledges it
    factories.policy(factories.contact("Kim"), name="web")
    with caplog.at_level(logging.INFO, logger="incidents.services"):
        incident = open_incident(summary="disk full on web-1", actor="api-key:alertmanager").incident
        acknowledge(incident.pk, actor="user:lee")

    # then: the log has one line per timeline row, in order, naming the incident, who and what
    lines = event_lines(caplog)
    assert [(line.kind, line.incident_id) for line in lines] == [
        (row.kind, incident.pk) for row in incident.events.order_by("at", "pk")
    ]
    opened, *_, acknowledged = lines
    assert (opened.levelname, opened.kind, opened.actor, opened.detail) == (
        "INFO",
        "created",
        "api-key:alertmanager",
        "disk full on web-1",
    )
    assert (acknowledged.kind, acknowledged.actor) == ("acknowledged", "user:lee")
    queued = next(line for line in lines if line.kind == "call_queued")
    assert (queued.attempt, queued.contact) == (1, "Kim")


def test_nothing_else_logs_an_incident_event_a_second_time(caplog):
    factories.policy(factories.contact("Kim"))
    with caplog.at_level(logging.INFO):
        incident = open_incident(summary="once").incident

    mentions = [record for record in caplog.records if getattr(record, "incident_id", None) == incident.pk]
    assert len(mentions) == incident.events.count()


def test_a_sweep_with_nothing_to_do_logs_nothing(caplog):
    with caplog.at_level(logging.DEBUG, logger="orchestrator"):
        assert sweep_escalations() == 0

    assert [record for record in caplog.records if record.name.startswith("orchestrator")] == []


def celery_record(name: str, level: int, message: str, args) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


SUCCEEDED = "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s"


@pytest.mark.parametrize(
    ("record", "shown"),
    [
        # Celery's own lines about the 2-second sweep and the heartbeats: hidden
        (
            celery_record(
                "celery.app.trace",
                logging.INFO,
                SUCCEEDED,
                ({"name": "orchestrator.sweep_escalations", "id": "x", "runtime": 0.01, "return_value": 0},),
            ),
            False,
        ),
        (
            celery_record(
                "celery.worker.strategy", logging.INFO, "Task %s[%s] received", ("config.beat_heartbeat", "x")
            ),
            False,
        ),
        (
            celery_record(
                "celery.beat",
                logging.INFO,
                "Scheduler: Sending due task %s (%s)",
                ("sweep-escalations", "orchestrator.sweep_escalations"),
            ),
            False,
        ),
        # a dial is worth a line; a sweep that failed too
        (
            celery_record(
                "celery.app.trace",
                logging.INFO,
                SUCCEEDED,
                ({"name": "orchestrator.dial_attempt", "id": "x", "runtime": 0.2, "return_value": None},),
            ),
            True,
        ),
        (
            celery_record(
                "celery.app.trace",
                logging.ERROR,
                "Task %s[%s] raised unexpected: %r",
                ("orchestrator.sweep_escalations", "x", "boom"),
            ),
            True,
        ),
        (celery_record("orchestrator.tasks", logging.INFO, "escalation sweep handled due incidents", ()), True),
    ],
)
def test_routine_task_lines_are_filtered_but_failures_and_real_work_are_not(record, shown):
    assert QuietRoutineTasksFilter().filter(record) is shown


def test_the_console_handler_filters_routine_task_lines():
    from django.conf import settings

    assert "quiet_routine_tasks" in settings.LOGGING["handlers"]["console"]["filters"]


def test_requests_are_logged_once_and_sdk_headers_only_at_debug():
    # the access log (the web server's, or django.server) has every request; django.request adds only 5xx
    assert logging.getLogger("django.request").getEffectiveLevel() == logging.ERROR
    # the twilio SDK prints request headers at INFO
    assert logging.getLogger("twilio.http_client").getEffectiveLevel() == logging.WARNING


def test_a_refused_request_is_not_logged_by_django_as_well(client, caplog):
    with caplog.at_level(logging.INFO):
        response = client.get("/api/v1/incidents")

    assert response.status_code in (401, 403)
    assert [record for record in caplog.records if record.name == "django.request"] == []
