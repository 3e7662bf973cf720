"""Rule evaluation with Prometheus's semantics, at the service level, on a gauge the test sets and a
clock the test moves: pending until for_seconds, then firing (one incident, never two), resolved
when clear; the state lives in the database."""

from __future__ import annotations

import importlib
import threading
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.db import connection, transaction
from django.utils import timezone

from incidents.models import Incident, IncidentState
from incidents.services import acknowledge
from monitoring.models import AlertRule, RuleSeries
from monitoring.services import dedup_key, evaluate_rules
from monitoring.sources import quantile
from orchestrator.models import CallAttempt
from tests.monitoring import gauges

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0)


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def make_rule(**fields) -> AlertRule:
    values = {"rule_name": "cpu", "metric": gauges.NAME, "operator": ">", "threshold": 80, "for_seconds": 60}
    rule = AlertRule(**{**values, **fields})
    rule.full_clean()
    rule.save()
    return rule


def states(rule: AlertRule) -> dict[str, str]:
    return dict(RuleSeries.objects.filter(rule=rule).values_list("series_key", "state"))


def incidents_of(rule: AlertRule) -> list[Incident]:
    return list(Incident.objects.filter(dedup_key=dedup_key(rule)).order_by("pk"))


def test_a_breach_is_pending_for_for_seconds_then_fires_once_and_clearing_resolves(gauge, on_call):
    # given a critical rule "above 80 for 60 s" and a gauge at 92
    rule = make_rule()
    gauge.set_value(92)

    # when it is evaluated at once and 30 s later, it is pending and nobody is paged
    evaluate_rules(now=at(0))
    evaluate_rules(now=at(30))
    assert states(rule) == {"": "pending"}
    assert incidents_of(rule) == []

    # when 60 s have passed, it fires and opens one incident that says what crossed what
    report = evaluate_rules(now=at(60))
    assert (report.fired, states(rule)) == (1, {"": "firing"})
    [incident] = incidents_of(rule)
    assert "92%" in incident.summary and "임계값 > 80%" in incident.summary and "1분 이상" in incident.summary
    assert "threshold > 80%, for 1 min" in incident.summary
    assert incident.state == IncidentState.TRIGGERED and incident.policy == on_call

    # when it keeps firing, no second incident opens
    evaluate_rules(now=at(75))
    evaluate_rules(now=at(90))
    assert len(incidents_of(rule)) == 1

    # when the gauge falls, the series is resolving; once clear for for_seconds, the incident resolves
    gauge.set_value(50)
    report = evaluate_rules(now=at(105))
    assert (report.resolved, states(rule)) == (0, {"": "resolving"})
    report = evaluate_rules(now=at(165))
    assert (report.resolved, states(rule)) == (1, {"": "inactive"})
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED


def test_a_breach_that_clears_before_for_seconds_never_fires(gauge, on_call):
    rule = make_rule()
    gauge.set_value(95)
    evaluate_rules(now=at(0))

    gauge.set_value(70)
    evaluate_rules(now=at(30))
    gauge.set_value(95)
    evaluate_rules(now=at(61))  # pending again since 61 s: the 60 s start over

    assert states(rule) == {"": "pending"}
    assert incidents_of(rule) == []


def test_labels_choose_the_series_and_one_rule_is_one_incident_listing_its_series(gauge, on_call):
    # given a rule on the calls queue only, and three series of which two breach
    rule = make_rule(labels={"queue": "calls"}, for_seconds=0, threshold=10)
    gauge.set_value(50, queue="calls", host="a")
    gauge.set_value(60, queue="calls", host="b")
    gauge.set_value(99, queue="default", host="a")

    evaluate_rules(now=at(0))

    # then only the calls series fire, under one incident whose alerts name both
    assert states(rule) == {"host=a,queue=calls": "firing", "host=b,queue=calls": "firing"}
    [incident] = incidents_of(rule)
    assert Incident.objects.count() == 1
    assert "2 series" in incident.summary
    alerted = {alert.payload["series"] for alert in incident.alerts.all()}
    assert alerted == {"host=a,queue=calls", "host=b,queue=calls"}

    # when one series is no longer reported, it keeps firing for the hold, then is forgotten; the rule still fires
    gauge.remove(queue="calls", host="b")
    evaluate_rules(now=at(15))
    assert states(rule) == {"host=a,queue=calls": "firing", "host=b,queue=calls": "resolving"}
    evaluate_rules(now=at(30))
    assert states(rule) == {"host=a,queue=calls": "firing"}
    incident.refresh_from_db()
    assert incident.state == IncidentState.TRIGGERED

    # when the last series clears and stays clear for the hold, the incident resolves
    gauge.set_value(1, queue="calls", host="a")
    evaluate_rules(now=at(45))
    incident.refresh_from_db()
    assert incident.state == IncidentState.TRIGGERED
    evaluate_rules(now=at(60))
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED


def test_a_rule_over_twenty_series_opens_one_incident_and_places_one_call(gauge, on_call):
    # given a critical rule watching every route, and a slow database making 20 routes slow at once
    rule = make_rule(for_seconds=0)
    for number in range(20):
        gauge.set_value(95, route=f"/api/v1/r{number}")

    evaluate_rules(now=at(0))
    evaluate_rules(now=at(15))

    # then one incident, one phone call, and every firing series is listed on it
    [incident] = incidents_of(rule)
    assert Incident.objects.count() == 1
    assert CallAttempt.objects.filter(incident=incident).count() == 1
    assert len({alert.payload["series"] for alert in incident.alerts.all()}) == 20
    assert "20 series" in incident.summary


def test_a_flapping_rule_keeps_its_acknowledged_incident_and_calls_nobody_again(gauge, on_call):
    # given a critical rule "above 80 for 60 s" that fired and whose incident the on-call acknowledged
    rule = make_rule()
    gauge.set_value(95)
    evaluate_rules(now=at(0))
    evaluate_rules(now=at(60))
    [incident] = incidents_of(rule)
    acknowledge(incident.pk, actor="Kim")

    # when one evaluation sees 79, then the gauge is back at 95 twice
    gauge.set_value(79)
    evaluate_rules(now=at(75))
    incident.refresh_from_db()
    assert incident.state == IncidentState.ACKNOWLEDGED  # one clear is not yet a resolution
    gauge.set_value(95)
    evaluate_rules(now=at(90))
    evaluate_rules(now=at(150))

    # then still the one incident, acknowledged, and only the first call was placed
    [same] = incidents_of(rule)
    assert same.pk == incident.pk and same.state == IncidentState.ACKNOWLEDGED
    assert CallAttempt.objects.filter(incident__in=Incident.objects.all()).count() == 1
    assert states(rule) == {"": "firing"}


def test_a_clear_resolves_only_once_it_has_held_for_for_seconds(gauge, on_call):
    rule = make_rule()
    gauge.set_value(95)
    evaluate_rules(now=at(0))
    evaluate_rules(now=at(60))
    [incident] = incidents_of(rule)

    gauge.set_value(50)
    evaluate_rules(now=at(75))
    evaluate_rules(now=at(120))  # clear for 45 s of the 60
    incident.refresh_from_db()
    assert (incident.state, states(rule)) == (IncidentState.TRIGGERED, {"": "resolving"})

    evaluate_rules(now=at(135))  # clear for 60 s
    incident.refresh_from_db()
    assert (incident.state, states(rule)) == (IncidentState.RESOLVED, {"": "inactive"})


def test_a_series_without_data_is_not_a_clear_until_it_has_been_absent_for_the_hold(gauge, on_call):
    # given a response-time-like rule firing on one route
    rule = make_rule(for_seconds=30)
    gauge.set_value(9, route="/api/v1/incidents")
    rule.threshold = 5
    rule.save()
    evaluate_rules(now=at(0))
    evaluate_rules(now=at(30))
    [incident] = incidents_of(rule)

    # when no request comes for 15 s (the series disappears), the incident stays open
    gauge.remove(route="/api/v1/incidents")
    evaluate_rules(now=at(45))
    incident.refresh_from_db()
    assert incident.state == IncidentState.TRIGGERED

    # and when a slow request comes again, it is the same incident
    gauge.set_value(8, route="/api/v1/incidents")
    evaluate_rules(now=at(60))
    assert incidents_of(rule) == [incident]

    # when it stays absent for the hold, the rule resolves
    gauge.remove(route="/api/v1/incidents")
    evaluate_rules(now=at(75))
    evaluate_rules(now=at(105))
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED


def test_the_state_is_in_the_database_so_a_restarted_evaluator_carries_on(gauge, on_call):
    # given a rule pending since T0 (written by an evaluator that has since stopped)
    rule = make_rule(for_seconds=120)
    gauge.set_value(90)
    evaluate_rules(now=at(0))
    stored = RuleSeries.objects.get(rule=rule)
    assert (stored.state, stored.since, stored.value, stored.evaluated_at) == ("pending", at(0), 90, at(0))

    # when a new process evaluates 120 s after the start, it fires on the stored start time
    evaluate_rules(now=at(120))
    assert states(rule) == {"": "firing"}

    # and a firing series read back from the database opens nothing again
    evaluate_rules(now=at(135))
    assert len(incidents_of(rule)) == 1
    assert AlertRule.objects.get(pk=rule.pk).evaluated_at == at(135)


def test_a_metric_that_cannot_be_read_keeps_the_state_and_says_why(gauge, on_call):
    rule = make_rule()
    gauge.set_value(92)
    evaluate_rules(now=at(0))

    gauge.break_with("redis is down")
    report = evaluate_rules(now=at(60))

    rule.refresh_from_db()
    assert report.errors == 1
    assert states(rule) == {"": "pending"}
    assert "redis is down" in rule.last_error
    assert incidents_of(rule) == []


def test_a_warning_rule_opens_no_incident(gauge, on_call):
    rule = make_rule(level="warning", for_seconds=0)
    gauge.set_value(99)

    report = evaluate_rules(now=at(0))

    assert (report.fired, states(rule)) == (1, {"": "firing"})
    assert Incident.objects.count() == 0


def test_a_disabled_rule_is_not_evaluated(gauge, on_call):
    rule = make_rule(enabled=False, for_seconds=0)
    gauge.set_value(99)

    assert evaluate_rules(now=at(0)).rules == 0
    assert states(rule) == {}


@pytest.mark.django_db(transaction=True)
def test_a_rule_another_evaluator_holds_is_skipped_not_evaluated_twice(gauge):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks and SKIP LOCKED (SQLite locks the whole database)")
    # given a rule whose row another evaluator has locked
    rule = make_rule(for_seconds=0, level="warning")
    gauge.set_value(99)
    locked, release = threading.Event(), threading.Event()

    def other_evaluator():
        with transaction.atomic():
            AlertRule.objects.select_for_update().get(pk=rule.pk)
            locked.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=other_evaluator)
    thread.start()
    assert locked.wait(10)
    try:
        # when this evaluator runs, it skips the rule instead of waiting or firing it again
        report = evaluate_rules(now=at(0))
    finally:
        release.set()
        thread.join()

    assert (report.rules, report.skipped) == (0, 1)
    assert states(rule) == {}


def test_the_api_response_time_is_the_p95_of_the_window_since_the_last_evaluation(api_client):
    # given a rule on /healthz's response time and a first evaluation, which starts the window
    rule = make_rule(metric="aicc_api_duration_seconds", threshold=0, for_seconds=0, level="warning")
    rule.labels = {"route": "/healthz"}
    rule.save()
    evaluate_rules()

    # when requests are answered
    for _ in range(3):
        assert api_client.get("/healthz").status_code == 200
    evaluate_rules()

    # then the rule sees their response time (above 0 s) on the GET /healthz series
    [series] = RuleSeries.objects.filter(rule=rule)
    assert series.labels == {"method": "GET", "route": "/healthz"}
    assert series.value > 0 and series.state == "firing"


def test_the_quantile_interpolates_inside_the_bucket_like_prometheus():
    buckets = {"0.1": 50, "0.5": 90, "1.0": 100, "+Inf": 100}

    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.95, buckets) == pytest.approx(0.75)
    assert quantile(0.95, {"1.0": 0, "+Inf": 10}) == 1.0  # beyond the last bound: the highest finite one
    assert quantile(0.95, {"1.0": 0, "+Inf": 0}) is None  # no request: no value


def test_the_seed_rules_are_installed_disabled_unless_the_setting_says_so(settings):
    seeded = AlertRule.objects.filter(rule_name__in=["high_cpu_usage", "high_memory_usage", "high_disk_usage"])
    assert {(rule.metric, rule.threshold, rule.for_seconds, rule.enabled) for rule in seeded} == {
        ("system_cpu_usage_percent", 80, 300, False),
        ("system_memory_usage_percent", 85, 300, False),
        ("system_disk_usage_percent", 90, 60, False),
    }
    api = AlertRule.objects.get(rule_name="slow_api_response")
    assert (api.metric, api.threshold, api.for_seconds, api.level) == ("aicc_api_duration_seconds", 5, 180, "critical")

    # when the migration runs with MONITORING_SEED_RULES=true, the rules are enabled
    AlertRule.objects.all().delete()
    settings.MONITORING_SEED_RULES = True
    importlib.import_module("monitoring.migrations.0002_seed_rules").install(django_apps, None)
    assert set(AlertRule.objects.values_list("enabled", flat=True)) == {True}
    assert AlertRule.objects.count() == 4
