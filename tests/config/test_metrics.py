"""/metrics: Prometheus's text format, the seed's names, routes as patterns, a bearer token, and the
counts of every process (this one and a separate Celery worker process) in one scrape."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.test import Client

from config.prometheus import HOST
from tests.helpers import wait_until
from tests.scrape import METRICS_TOKEN, parse, scrape, value

SEED_NAMES = {
    "system_cpu_usage_percent",
    "system_memory_usage_percent",
    "system_disk_usage_percent",
    "aicc_active_sessions_total",
    "aicc_api_requests_total",
    "aicc_api_duration_seconds_bucket",
    "aicc_db_connections_active",
    "aicc_db_query_duration_seconds_bucket",
}


@pytest.fixture
def web():
    return Client()


# --- who may read ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_with_a_token_set_a_scrape_without_it_or_with_a_wrong_one_is_refused(web, settings):
    settings.METRICS_TOKEN = METRICS_TOKEN

    missing = web.get("/metrics")
    wrong = web.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    api_key_scheme = web.get("/metrics", HTTP_AUTHORIZATION=f"Api-Key {METRICS_TOKEN}")
    right = web.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")

    assert (missing.status_code, wrong.status_code, api_key_scheme.status_code) == (403, 403, 403)
    assert "Authorization: Bearer" in missing.json()["error"]["message"]
    assert right.status_code == 200
    assert right["Content-Type"].startswith("text/plain; version=0.0.4")


@pytest.mark.django_db
def test_with_debug_off_and_no_token_the_metrics_are_closed_and_say_how_to_open_them(web, settings):
    settings.DEBUG, settings.METRICS_TOKEN = False, ""

    response = web.get("/metrics")

    assert response.status_code == 403
    assert "set METRICS_TOKEN" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_in_development_with_no_token_the_metrics_are_open(web, settings):
    settings.DEBUG, settings.METRICS_TOKEN = True, ""

    assert web.get("/metrics").status_code == 200


@pytest.mark.django_db
def test_the_address_allow_list_refuses_other_networks_even_with_the_token(web, settings):
    settings.METRICS_TOKEN = METRICS_TOKEN
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {METRICS_TOKEN}"}

    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    refused = web.get("/metrics", **bearer)
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "127.0.0.0/8"]
    allowed = web.get("/metrics", **bearer)

    assert refused.status_code == 403 and "METRICS_ALLOWED_NETWORKS" in refused.json()["error"]["message"]
    assert allowed.status_code == 200


@pytest.mark.django_db
def test_health_answers_beside_healthz(web):
    assert web.get("/health").json() == {"status": "ok"}


# --- what is in a scrape -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_scrape_has_the_seeds_names(web, settings):
    web.get("/healthz")

    samples = scrape(web, settings)

    assert {name for name, _ in samples} >= SEED_NAMES
    assert 0 <= value(samples, "system_memory_usage_percent") <= 100
    assert value(samples, "aicc_db_connections_active") >= 1
    assert value(samples, "aicc_db_query_duration_seconds_count") > 0


@pytest.mark.django_db
def test_requests_are_labelled_with_the_url_pattern_never_the_raw_path(web, settings, system_client):
    before = scrape(web, settings)

    system_client.get("/api/v1/incidents/987654")
    system_client.get("/api/v1/incidents/987655")
    web.get("/no/such/page/5551234")
    after = scrape(web, settings)

    pattern = {"method": "GET", "route": "/api/v1/incidents/<int:incident_id>", "status": "404"}
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, "aicc_api_requests_total", **pattern) - value(before, "aicc_api_requests_total", **pattern) == 2
    assert (
        value(after, "aicc_api_requests_total", **unmatched) - value(before, "aicc_api_requests_total", **unmatched)
        == 1
    )
    routes = {dict(labels).get("route", "") for name, labels in after if name == "aicc_api_requests_total"}
    assert not any("987654" in route or "5551234" in route for route in routes)
    duration = {"method": "GET", "route": "/api/v1/incidents/<int:incident_id>"}
    assert value(after, "aicc_api_duration_seconds_count", **duration) >= 2


@pytest.mark.django_db
def test_a_source_that_cannot_be_read_is_counted_and_the_rest_is_still_served(web, settings):
    # given a broker nobody listens on
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    samples = scrape(web, settings)

    # then the scrape answers without the queue depths, and says that source failed
    assert value(samples, "aicc_metrics_source_errors_total", source="celery_queues") >= 1
    assert not any(name == "aicc_celery_queue_depth" for name, _ in samples)
    assert ("system_cpu_usage_percent", frozenset()) in samples


@pytest.mark.django_db
def test_queue_depth_is_read_from_the_broker(web, settings):
    from config.celery import app as celery_app

    celery_app.control.purge()
    celery_app.send_task("config.beat_heartbeat", queue="recordings")  # nobody consumes it in this test
    try:
        samples = scrape(web, settings)
    finally:
        celery_app.control.purge()

    assert value(samples, "aicc_celery_queue_depth", queue="recordings") == 1
    assert value(samples, "aicc_celery_queue_depth", queue="calls") == 0


# --- every process in one scrape ---------------------------------------------------------------


def start_worker_process(queue: str) -> subprocess.Popen:
    """A worker process on a queue of its own, writing to this process's PROMETHEUS_MULTIPROC_DIR."""
    from tests.processes import start, worker_command, worker_environment

    command = [*worker_command(queues=queue), "--without-gossip", "-n", f"metrics-{os.getpid()}@%h"]
    return start(command, worker_environment())


def test_one_scrape_adds_up_the_worker_thread_and_a_separate_worker_process(celery_worker, settings):
    from config.celery import app as celery_app
    from config.prometheus import remove_files_of_dead_processes

    web = Client()
    task = {"task": "config.beat_heartbeat", "state": "SUCCESS"}
    # the new worker removes the files of processes that are gone (an earlier test's worker) when it
    # starts: done first here, so the count before and after compare the same set of processes
    remove_files_of_dead_processes()
    before = value(scrape(web, settings), "aicc_celery_task_duration_seconds_count", **task)
    # given a second worker, a separate process, on a queue of its own (the thread worker does not read it)
    queue = f"metrics-test-{os.getpid()}"
    process = start_worker_process(queue)
    try:
        # when one task runs in the worker thread and one in the worker process
        celery_app.send_task("config.beat_heartbeat")  # it keeps no result: the scrape is how we know
        celery_app.send_task("config.beat_heartbeat", queue=queue)
        # then the worker process counted its task in files of its own, and one scrape counts both
        # (at least: a heartbeat left by an earlier test may be counted by the thread worker too)
        wait_until(lambda: counted_by_other_processes(task) >= 1, timeout=90, interval=0.5, what="the process's task")
        wait_until(
            lambda: value(scrape(web, settings), "aicc_celery_task_duration_seconds_count", **task) - before >= 2,
            timeout=30,
            interval=0.5,
            what="both tasks in the scrape",
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def counted_by_other_processes(task: dict) -> float:
    """The task's count in the metrics files of processes other than this one (the worker process)."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    others = Path(tempfile.mkdtemp(prefix="metrics-others-"))
    for path in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        if not path.stem.endswith(f"_{HOST}-{os.getpid()}"):
            shutil.copy(path, others / path.name)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(others))
    samples = parse(generate_latest(registry).decode())
    shutil.rmtree(others, ignore_errors=True)
    return value(samples, "aicc_celery_task_duration_seconds_count", **task)


def test_files_of_processes_that_are_gone_are_removed_at_start_and_live_ones_kept(tmp_path):
    from config.prometheus import remove_files_of_dead_processes

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    (tmp_path / f"counter_{HOST}-{dead_pid}.db").write_bytes(b"")
    (tmp_path / f"counter_{HOST}-{os.getpid()}.db").write_bytes(b"")
    (tmp_path / f"counter_other-host-{dead_pid}.db").write_bytes(b"")

    assert remove_files_of_dead_processes(tmp_path) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [f"counter_{HOST}-{os.getpid()}.db", f"counter_other-host-{dead_pid}.db"]
    )
