"""Faults in the middle of escalations, with real processes: the worker is killed with SIGKILL while
it places calls, and Redis (the broker) is killed and started again empty, losing every queued
message. Afterwards nothing is lost, no call is placed twice, and no contact is passed over: every
incident's primary is called once, then its secondary, who acknowledges. (A primary whose call the
worker had claimed but not yet handed to the carrier when it was killed is in doubt: at its deadline
the engine asks the carrier, finds no such call, and dials that primary then.)

The test process (its live server answering the carrier's webhooks) and the worker processes share
a private Redis that the test can kill; the carrier simulator plays the calls.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from config.celery import app as celery_app
from incidents.models import Incident
from incidents.services import open_incident
from orchestrator.models import AttemptStatus, CallAttempt
from tests import factories
from tests.helpers import wait_until
from tests.processes import PrivateRedis, start, stop, worker_command, worker_environment

pytestmark = pytest.mark.e2e

INCIDENTS = 6


@pytest.fixture
def private_broker(settings):
    """A Redis of this test's own for the broker and the breaker, used by this process too."""
    server = PrivateRedis()
    server.start()
    real_broker = celery_app.conf.broker_url
    celery_app.conf.broker_url = server.url
    settings.REDIS_URL = server.url
    settings.CELERY_BROKER_URL = server.url
    # the live server in this process handles the carrier's callbacks: the same short timers
    settings.DIAL_GRACE_SECONDS = 1
    settings.DIAL_RESEND_SECONDS = 2
    settings.KEYPRESS_GRACE_SECONDS = 0.5
    yield server
    celery_app.conf.broker_url = real_broker
    server.kill()


def start_worker(broker: PrivateRedis, log_path: Path) -> subprocess.Popen:
    """A worker process with beat in it, on the private broker, with short timers."""
    timers = {
        "DIAL_GRACE_SECONDS": "1",
        "DIAL_RESEND_SECONDS": "2",
        "KEYPRESS_GRACE_SECONDS": "0.5",
        "PROVIDER_HTTP_TIMEOUT_SECONDS": "2",  # a call in doubt is checked once no dial can still be sending it
    }
    env = worker_environment(broker_url=broker.url, ESCALATION_SWEEP_SECONDS="0.5", **timers)
    command = [*worker_command(concurrency=2, beat=True), "--hostname", f"fault-{os.getpid()}-{log_path.stem}@%h"]
    return start(command, env, log_path)


def kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    stop(process, sig)


def token_of(call) -> str:
    return str(call.params.get("Url", "")).rstrip("/").rsplit("/", 1)[-1]


def test_a_killed_worker_and_a_restarted_empty_broker_lose_nothing_and_dial_nothing_twice(
    simulator, private_broker, transactional_db, tmp_path
):
    # given six incidents whose primary will not answer and whose secondary presses 1
    pairs = []
    for n in range(INCIDENTS):
        primary, secondary = factories.contact(f"Kim{n}", 3), factories.contact(f"Lee{n}", 1)
        policy = factories.policy(primary, secondary, name=f"team-{n}", is_default=False, max_attempts=4)
        pairs.append((primary, secondary, policy))
    first_worker = start_worker(private_broker, tmp_path / "first.log")
    try:
        incidents = [
            open_incident(summary=f"장애 {n}", dedup_key=f"fault-{n}", policy=policy).incident
            for n, (_, _, policy) in enumerate(pairs)
        ]
        simulator.wait_for_calls(2, timeout=60)

        # when the worker is killed mid-escalation, and Redis dies and comes back empty
        kill(first_worker)
    finally:
        kill(first_worker)
    private_broker.kill()
    private_broker.start()
    unfinished = Incident.objects.filter(pk__in=[i.pk for i in incidents]).exclude(state="acknowledged").count()
    assert unfinished > 0, "the faults came after every escalation had ended: the test proves nothing"
    print(f"fault hit {unfinished} of {INCIDENTS} escalations; {len(simulator.calls)} call(s) placed before it")

    # and a new worker (with beat) starts on the empty broker
    second_worker = start_worker(private_broker, tmp_path / "second.log")
    try:
        # then every incident is acknowledged by its secondary
        try:
            wait_until(
                lambda: all(Incident.objects.get(pk=i.pk).state == "acknowledged" for i in incidents),
                timeout=120,
                what="every incident acknowledged after the faults",
            )
        except AssertionError:
            states = list(
                Incident.objects.filter(pk__in=[i.pk for i in incidents]).values_list("state", "current_step")
            )
            worker_log = (tmp_path / "second.log").read_text()[-4000:]
            raise AssertionError(f"incidents (state, step): {states}\nsecond worker's log:\n{worker_log}") from None
    finally:
        kill(second_worker, signal.SIGTERM)
    simulator.wait_until_idle()

    redialed = CallAttempt.objects.filter(incident__in=incidents, redials__gt=0).count()
    print(f"{redialed} primary call(s) claimed but never placed were found out and dialed again")

    # and no call was placed twice
    tokens = Counter(token_of(call) for call in simulator.calls if call.sid)
    assert tokens and max(tokens.values()) == 1, tokens
    for incident, (primary, secondary, _) in zip(incidents, pairs, strict=True):
        attempts = list(CallAttempt.objects.filter(incident=incident).order_by("step"))
        # and no contact was passed over: the primary's call, then the secondary's, who pressed 1
        assert [attempt.to_number for attempt in attempts] == [primary.phone, secondary.phone]
        assert all(attempt.status != AttemptStatus.CANCELED for attempt in attempts)
        called = [call.to for call in simulator.calls if call.sid and token_of(call) in {a.token for a in attempts}]
        assert called == [primary.phone, secondary.phone], (called, [(a.error, a.redials) for a in attempts])
        assert Incident.objects.get(pk=incident.pk).acknowledged_by.startswith(f"contact:{secondary.name}")
