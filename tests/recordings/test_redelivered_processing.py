"""A processing task delivered twice (a worker lost its ack, the broker redelivered) must leave the
recording readable: the two tries never write the same object, and the try that loses removes its own.

The race, made deterministic: the losing try read the row while it was still `processing`, then the
winning try stored the recording, then the loser finishes its work. Both tries run our real code
(`process` for the winner, the worker's processing step for the loser) against the real store."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from recordings import audio, services
from recordings.models import Recording, Status
from tests.recordings.audio_samples import encoded
from tests.recordings.helpers import download, put_audio, start_voice

pytestmark = pytest.mark.django_db


def stored_objects(root: Path, folder: str) -> list[str]:
    return sorted(path.name for path in (root / folder).glob("*")) if (root / folder).exists() else []


def test_a_redelivered_voice_task_leaves_the_stored_recording_readable(local_store, system_client, tmp_path):
    # given a stopped voice recording waiting for processing
    recording_id = start_voice(system_client)
    uploaded = put_audio(system_client, recording_id, Path(encoded(tmp_path / "a.wav", "wav")).read_bytes())
    assert uploaded.status_code == 200, uploaded.json()
    assert system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop").status_code == 202
    # and a second delivery of its task that has read the row while it was processing
    loser_view = Recording.objects.get(pk=recording_id)
    assert loser_view.status == Status.PROCESSING

    # when the first delivery stores it, and then the second one finishes its own work
    services.process(recording_id)
    stored = Recording.objects.get(pk=recording_id)
    assert stored.status == Status.STORED
    loser_work = tmp_path / "loser"
    loser_work.mkdir()
    services._process_voice(loser_view, loser_work)

    # then the recording still downloads and decodes as the audio that was uploaded
    assert Recording.objects.get(pk=recording_id).storage_key == stored.storage_key
    response, body = download(system_client, recording_id)
    assert response.status_code == 200
    assert len(body) == stored.size_bytes
    assert audio.detect_format(body[: audio.MAGIC_BYTES_NEEDED]) == stored.format
    # and the losing try left no object of its own behind
    assert stored_objects(local_store, "voice") == [Path(stored.storage_key).name]


def test_a_redelivered_chat_task_keeps_the_chat_log(local_store, system_client, tmp_path):
    # given a closed chat with its lines, waiting for processing
    opened = system_client.post(
        "/api/v1/recordings/chat", {"session_id": "s-1", "agent_id": "a-1", "customer_id": "c-1"}, format="json"
    )
    chat_id = opened.json()["recording_id"]
    for text in ["hello", "my order is late"]:
        added = system_client.post(
            f"/api/v1/recordings/chat/{chat_id}/messages",
            {"sender": "customer", "text": text, "sent_at": "2026-11-30T10:00:00+09:00"},
            format="json",
        )
        assert added.status_code == 201
    assert system_client.post(f"/api/v1/recordings/chat/{chat_id}/close").status_code == 202
    # and a second delivery of its task that has read the row while it was processing
    loser_view = Recording.objects.get(pk=chat_id)

    # when the first delivery stores the log (and deletes the lines), then the second one finishes
    services.process(chat_id)
    stored = Recording.objects.get(pk=chat_id)
    assert stored.status == Status.STORED
    loser_work = tmp_path / "loser"
    loser_work.mkdir()
    services._process_chat(loser_view, loser_work)

    # then the stored log still downloads, decrypts and holds every line
    response, body = download(system_client, chat_id)
    assert response.status_code == 200
    assert [m["text"] for m in json.loads(gzip.decompress(body))["messages"]] == ["hello", "my order is late"]
    # and only the winner's object is left
    assert stored_objects(local_store, "chat") == [Path(stored.storage_key).name]
