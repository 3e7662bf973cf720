"""A worker process killed in the middle of an escalation: after a restart the escalation goes on,
no call is placed twice, and nobody is skipped. Real processes, a real SIGKILL."""

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
    # a short carrier timeout: a call in doubt is checked once no live dial can still be sending it
    env = worker_environment(DIAL_GRACE_SECONDS="1", ESCALATION_SWEEP_SECONDS="0.5", PROVIDER_HTTP_TIMEOUT_SECONDS="1")
    return start(worker_command(beat=with_beat), env)


def test_a_worker_killed_inside_the_carrier_request_skips_nobody_and_places_no_call_twice(
    simulator, transactional_db, settings
):
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
    # and the carrier's outage ends (its held request was answered 503: that call never existed)
    simulator.set_scenario(primary.phone, Scenario.NO_ANSWER)

    # and a new worker (with beat) starts
    second_worker = start_worker_process(with_beat=True)
    try:
        # then the primary is rung after all, and the escalation goes on to the secondary, who acknowledges
        wait_until(
            lambda: Incident.objects.get(pk=incident.pk).state == "acknowledged", timeout=90, what="acknowledgement"
        )
    finally:
        stop(second_worker)
    simulator.wait_until_idle()

    # and the engine asked the carrier before dialing the primary again: one placed call each
    placed = [call.to for call in simulator.calls if call.sid]
    assert placed == [primary.phone, secondary.phone]
    first = CallAttempt.objects.get(incident=incident, step=1)
    assert (first.redials, first.status) == (1, "no_answer")
    timeline = list(incident.events.values_list("message", flat=True))
    assert any("asking the carriers whether it exists" in line for line in timeline), timeline
    assert any("it was never placed; dialing again" in line for line in timeline), timeline
    assert Incident.objects.get(pk=incident.pk).acknowledged_by.startswith("contact:Lee")
