"""The Grafana dashboard in deploy/grafana never drifts from the code: it is importable JSON with a
Prometheus datasource variable, and every panel's expression names only series /metrics exports.

"Exports" is what a scrape shows after real activity (a request, beat's and a worker's heartbeats, an
Amazon Connect poll against the local Connect server), plus the counters and histograms the code
declares in config/ and every app's metrics.py (in multiprocess mode a counter shows up in a scrape only
once something counted it)."""

from __future__ import annotations

import json
import re
from importlib import import_module
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.test import Client
from prometheus_client import Counter, Gauge, Histogram, Summary

from config.heartbeats import record_beat_tick, record_worker_heartbeat
from contactcenter.services import SNAPSHOT_KEY, poll_connect
from tests.contactcenter.connect_server import ConnectServer
from tests.scrape import scrape

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "oncall-dashboard.json"
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan"}
# what a dashboard for this product must show (the list)
MUST_SHOW = {
    "system_cpu_usage_percent",
    "aicc_api_requests_total",
    "aicc_db_connections_active",
    "aicc_incidents_open",
    "aicc_incidents_opened_total",
    "aicc_incident_time_to_acknowledge_seconds_bucket",
    "aicc_incident_time_to_resolve_seconds_bucket",
    "aicc_calls_total",
    "aicc_carrier_breaker_open",
    "aicc_celery_queue_depth",
    "aicc_beat_heartbeat_age_seconds",
    "aicc_connect_contacts_in_queue",
    "aicc_connect_agents_available",
    "aicc_connect_poll_errors_total",
}


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (not its functions, labels, keywords or ranges)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        followed_by_call = text[match.end() :].lstrip().startswith("(")
        if not followed_by_call and match.group().lower() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def declared_series() -> set[str]:
    """Sample names of every counter and histogram the code declares for the multiprocess files."""
    modules = [import_module("config.metrics"), import_module("config.task_metrics")]
    for app_config in apps.get_app_configs():
        try:
            modules.append(import_module(f"{app_config.name}.metrics"))
        except ModuleNotFoundError:
            continue
    suffixes = {
        Counter: ("_total",),
        Histogram: ("_bucket", "_count", "_sum"),
        Summary: ("_count", "_sum"),
        Gauge: ("",),
    }
    found = set()
    for module in modules:
        for metric in vars(module).values():
            for kind, endings in suffixes.items():
                if isinstance(metric, kind):
                    found.update(metric._name + ending for ending in endings)
    return found


def panels(dashboard: dict):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


@pytest.fixture
def exported(settings, monkeypatch) -> set[str]:
    """Given real activity, the names one scrape shows plus the declared counters and histograms."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTESTCONNECT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    web = Client()
    web.get("/healthz")
    record_beat_tick()
    record_worker_heartbeat(SimpleNamespace(eventer=SimpleNamespace(hostname="celery@dashboard-test")))
    with ConnectServer("instance-1") as connect:
        connect.state.queues = {"q-1": "Support"}
        connect.state.metrics = {"q-1": {"CONTACTS_IN_QUEUE": 2}}
        connect.state.agents = [("u-1", "Available")]
        settings.CONNECT_INSTANCE_ID, settings.CONNECT_ENDPOINT_URL = "instance-1", connect.url
        settings.CONNECT_QUEUE_IDS, settings.CONNECT_MAX_ATTEMPTS = [], 1
        poll_connect()
        scraped = {name for name, _ in scrape(web, settings)}
    from config.redis import redis_client

    redis_client().delete(SNAPSHOT_KEY)
    return scraped | declared_series()


def test_the_dashboard_is_importable_json_with_a_prometheus_datasource_variable():
    dashboard = json.loads(DASHBOARD.read_text())

    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    graphs = [panel for panel in panels(dashboard) if panel["type"] != "row"]
    assert graphs and all(panel["datasource"]["uid"] == "${datasource}" for panel in graphs)
    assert all(panel["targets"] and all(target["expr"] for target in panel["targets"]) for panel in graphs)
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))


@pytest.mark.django_db
def test_every_panel_names_only_series_that_metrics_exports(exported):
    dashboard = json.loads(DASHBOARD.read_text())

    used = {
        (panel["title"], name)
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        for name in metric_names(target["expr"])
    }

    assert {(title, name) for title, name in used if name not in exported} == set()
    assert MUST_SHOW - {name for _, name in used} == set()


def test_the_expression_reader_finds_a_misspelt_series():
    expr = 'histogram_quantile(0.9, sum by (le) (increase(aicc_tyop_seconds_bucket{drill="false"}[1d]))) > bool 5'

    assert metric_names(expr) == {"aicc_tyop_seconds_bucket"}
    assert metric_names("sum(rate(a_total[$__rate_interval])) / on(job) b") == {"a_total", "b"}
