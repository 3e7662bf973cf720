"""A worker process killed in the middle of an escalation: after a restart the escalation goes on,
and no attempt is dialed twice. Real processes, a real SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from incidents.models import Incident
from incidents.services import open_incident
from orchestrator.models import CallAttempt
from simulator import Scenario
from tests import factories
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e

PROJECT_DIR = Path(__file__).resolve().parents[2]


def database_url_for_subprocess() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker_process(*, with_beat: bool) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "VOICE_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": settings.TWILIO_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": settings.TWILIO_AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": settings.TWILIO_FROM_NUMBER,
        "TWILIO_API_BASE_URL": settings.TWILIO_API_BASE_URL,
        "PUBLIC_BASE_URL": settings.PUBLIC_BASE_URL,
        "DIAL_GRACE_SECONDS": "1",
        "ESCALATION_SWEEP_SECONDS": "0.5",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork", "--concurrency", "1"]
    command += ["-Q", "calls,timers,default,recordings,integrations", "--loglevel", "WARNING", "--without-mingle"]
    if with_beat:
        command += ["--beat", "--schedule", str(PROJECT_DIR / "var" / f"beat-test-{os.getpid()}")]
    return subprocess.Popen(command, cwd=PROJECT_DIR, env=env, start_new_session=True)


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(timeout=30)


def test_a_killed_worker_loses_no_escalation_and_dials_no_attempt_twice(simulator, transactional_db, settings):
    from config.celery import app as celery_app

    celery_app.control.purge()
    # given a primary whose carrier request hangs (the worker will die inside it) and a secondary who presses 1
    primary, secondary = factories.contact("Kim", 0), factories.contact("Lee", 1)
    simulator.set_scenario(primary.phone, Scenario.API_TIMEOUT)
    factories.policy(primary, secondary, ring_timeout_seconds=5)
    first_worker = start_worker_process(with_beat=False)
    try:
        incident = open_incident(summary="결제 서버 다운").incident
        simulator.wait_for_calls(1, timeout=60)

        # when the worker is killed while it is placing the first call
        stop(first_worker, signal.SIGKILL)
    finally:
        stop(first_worker, signal.SIGKILL)
    assert CallAttempt.objects.get(incident=incident, step=1).status == "dialing"

    # and a new worker (with beat) starts
    second_worker = start_worker_process(with_beat=True)
    try:
        # then the escalation goes on to the secondary, who acknowledges
        wait_until(
            lambda: Incident.objects.get(pk=incident.pk).state == "acknowledged", timeout=60, what="acknowledgement"
        )
    finally:
        stop(second_worker)
    simulator.wait_until_idle()

    # and the first attempt was never dialed again
    assert [call.to for call in simulator.calls] == [primary.phone, secondary.phone]
    first = CallAttempt.objects.get(incident=incident, step=1)
    assert first.status == "dialing" and "deadline" in first.error
    assert Incident.objects.get(pk=incident.pk).acknowledged_by.startswith("contact:Lee")
