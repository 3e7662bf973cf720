"""Work that was queued and never finished is queued again by the beat sweep, with a limit.

The lost message is made the way it happens: the task was on the broker and the broker lost it
(here, the queues are purged before any worker took it); then a real worker picks up what the sweep
queues again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from config.celery import app as celery_app
from recordings import resume
from recordings.models import Kind, Recording, Status
from tests.recordings.audio_samples import encoded
from tests.recordings.helpers import download, put_audio, start_voice, wait_until_settled


def stopped_upload(system_client, tmp_path) -> int:
    recording_id = start_voice(system_client)
    assert put_audio(system_client, recording_id, encoded(tmp_path / "a.wav", "wav", 1).read_bytes()).status_code == 200
    assert system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop").status_code == 202
    return recording_id


@pytest.mark.django_db(transaction=True)
def test_a_recording_whose_task_the_broker_lost_is_queued_again_and_stored(
    local_store, system_client, settings, tmp_path
):
    # given a stopped recording whose processing task the broker lost
    recording_id = stopped_upload(system_client, tmp_path)
    celery_app.control.purge()
    # and the time after which queued work counts as stalled has passed
    settings.RECORDINGS_STALLED_AFTER_SECONDS = 0

    with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"):
        # when the sweep runs
        result = resume.resume_stalled()

        # then it queues the work again, and the worker stores the recording
        assert (result.requeued, result.failed) == (1, 0)
        recording = wait_until_settled(recording_id)
    assert recording.status == Status.STORED
    assert recording.work_tries == 2
    assert download(system_client, recording_id)[0].status_code == 200


@pytest.mark.django_db
def test_work_queued_recently_is_left_to_its_worker(local_store, system_client, tmp_path):
    recording_id = stopped_upload(system_client, tmp_path)

    result = resume.resume_stalled()

    assert (result.requeued, result.failed) == (0, 0)
    assert Recording.objects.get(pk=recording_id).work_tries == 1


@pytest.mark.django_db
def test_work_that_never_finishes_is_given_up_with_the_reason(local_store, system_client, settings, tmp_path):
    # given a recording whose work was queued the maximum number of times and never finished
    settings.RECORDINGS_MAX_WORK_TRIES = 3
    recording_id = stopped_upload(system_client, tmp_path)
    Recording.objects.filter(pk=recording_id).update(
        work_tries=3, work_queued_at=timezone.now() - timedelta(seconds=settings.RECORDINGS_STALLED_AFTER_SECONDS + 1)
    )

    # when the sweep runs
    result = resume.resume_stalled()

    # then the recording is failed, and its page says why
    assert (result.requeued, result.failed) == (0, 1)
    shown = system_client.get(f"/api/v1/recordings/{recording_id}").json()
    assert shown["status"] == "failed"
    assert "queued 3 times and never finished" in shown["failure_reason"]
    assert shown["retention_until"] is not None  # a failed recording is purged in time too


@pytest.mark.django_db
def test_a_carrier_recording_whose_ready_callback_never_came_is_failed_after_the_wait(system_client, settings):
    # given a carrier recording stopped long ago, still waiting for the carrier to say it is ready
    stopped = timezone.now() - timedelta(seconds=settings.RECORDINGS_CARRIER_CALLBACK_WAIT_SECONDS + 60)
    waiting = Recording.objects.create(
        kind=Kind.VOICE,
        status=Status.PROCESSING,
        session_id="s",
        agent_id="a",
        customer_id="c",
        carrier="twilio",
        carrier_call_id="CA" + "1" * 32,
        carrier_recording_id="RE" + "1" * 32,
        started_at=stopped - timedelta(minutes=5),
        stopped_at=stopped,
    )
    # and one stopped a minute ago
    recent = Recording.objects.create(
        kind=Kind.VOICE,
        status=Status.PROCESSING,
        session_id="s",
        agent_id="a",
        customer_id="c",
        carrier="vonage",
        started_at=timezone.now() - timedelta(minutes=2),
        stopped_at=timezone.now() - timedelta(minutes=1),
    )

    result = resume.resume_stalled()

    assert (result.requeued, result.failed) == (0, 1)
    failed = Recording.objects.get(pk=waiting.pk)
    assert failed.status == Status.FAILED
    assert "twilio never reported the recording ready" in failed.failure_reason
    assert Recording.objects.get(pk=recent.pk).status == Status.PROCESSING
