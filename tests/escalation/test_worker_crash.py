"""A worker process killed in the middle of an escalation: after a restart the escalation goes on,
and no attempt is dialed twice. Real processes, a real SIGKILL."""

from __future__ import annotations

import signal
import subprocess

import pytest

from incidents.models import Incident
from incidents.services import open_incident
from orchestrator.models import CallAttempt
from simulator import Scenario
from tests import factories
from tests.helpers import wait_until
from tests.processes import start, stop, worker_command, worker_environment

pytestmark = pytest.mark.e2e


def start_worker_process(*, with_beat: bool) -> subprocess.Popen:
    env = worker_environment(DIAL_GRACE_SECONDS="1", ESCALATION_SWEEP_SECONDS="0.5")
    return start(worker_command(beat=with_beat), env)


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
