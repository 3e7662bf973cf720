"""Direct upload and chat logs, end to end: the API, a real worker on the `recordings` queue,
PostgreSQL, and the store (a folder, and moto's S3 over HTTP)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from accounts.models import AuditEvent
from recordings import audio
from recordings.models import ChatMessage, Status
from tests.recordings.audio_samples import encoded
from tests.recordings.helpers import download, put_audio, start_voice, wait_until_settled


def stored_bytes(store, recording) -> bytes:
    from recordings.storage import get_storage

    return get_storage().open(recording.storage_key).read()


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac", "aac"])
def test_each_format_uploaded_comes_back_as_audio_of_the_same_length(
    fmt, any_store, celery_worker, system_client, tmp_path
):
    # given: a 2-second sine in the format, uploaded to an open recording
    sample = encoded(tmp_path / f"call.{fmt}", fmt)
    recording_id = start_voice(system_client, quality="standard")
    uploaded = put_audio(system_client, recording_id, sample.read_bytes())
    assert uploaded.status_code == 200, uploaded.json()
    assert uploaded.json()["source_format"] == fmt

    # when: the recording is stopped and the worker processes it
    stopped = system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")
    assert stopped.status_code == 202
    recording = wait_until_settled(recording_id)

    # then: stored as MP3 with its metadata, and the download decodes to 2 seconds of audio
    assert recording.status == Status.STORED, recording.failure_reason
    assert (recording.format, recording.codec, recording.channels) == ("mp3", "libmp3lame", 1)
    assert recording.duration_seconds == pytest.approx(2.0, abs=0.15)
    assert recording.source_size_bytes == sample.stat().st_size
    assert recording.storage_key.startswith("voice/")
    response, body = download(system_client, recording_id)
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/mpeg"
    assert int(response["Content-Length"]) == len(body) == recording.size_bytes
    assert f'filename="voice-recording-{recording_id}.mp3"' in response["Content-Disposition"]
    heard = tmp_path / "heard.mp3"
    heard.write_bytes(body)
    assert audio.detect_format(body[:12]) == "mp3"
    assert audio.probe(heard).duration_seconds == pytest.approx(2.0, abs=0.15)


def test_lossless_keeps_every_sample_and_ranges_serve_the_right_bytes(
    local_store, celery_worker, system_client, tmp_path
):
    sample = encoded(tmp_path / "call.wav", "wav", seconds=20)  # its FLAC spans two 64 KiB chunks
    recording_id = start_voice(system_client, quality="lossless")
    put_audio(system_client, recording_id, sample.read_bytes())
    system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")
    recording = wait_until_settled(recording_id)
    assert (recording.status, recording.format, recording.sample_rate) == (Status.STORED, "flac", 8000)
    _, whole = download(system_client, recording_id)

    response, part = download(system_client, recording_id, HTTP_RANGE="bytes=30000-80000")

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 30000-80000/{len(whole)}"
    assert part == whole[30000:80001]
    assert int(response["Content-Length"]) == len(part)
    refused, _ = download(system_client, recording_id, HTTP_RANGE=f"bytes={len(whole)}-")
    assert refused.status_code == 416


def test_the_stored_object_holds_no_plaintext(any_store, celery_worker, system_client, tmp_path):
    # given: a lossless recording (FLAC keeps the WAV's PCM bytes recognisable) and a chat with a secret
    sample = encoded(tmp_path / "call.wav", "wav")
    pcm_pattern = sample.read_bytes()[1000:1032]
    recording_id = start_voice(system_client, quality="lossless")
    put_audio(system_client, recording_id, sample.read_bytes())
    incoming = wait_for_incoming(recording_id)
    assert pcm_pattern not in stored_bytes(any_store, incoming)  # the upload waiting for the worker
    system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")
    stored = wait_until_settled(recording_id)
    _, flac = download(system_client, recording_id)

    assert flac[200:232] in flac and flac[200:232] not in stored_bytes(any_store, stored)
    assert b"fLaC" not in stored_bytes(any_store, stored)


def wait_for_incoming(recording_id):
    from recordings.models import Recording

    return Recording.objects.get(pk=recording_id)


def test_a_chat_log_is_stored_as_encrypted_gzip_json_and_the_lines_leave_the_database(
    any_store, celery_worker, system_client
):
    opened = system_client.post(
        "/api/v1/recordings/chat",
        {"session_id": "s-9", "agent_id": "a-1", "customer_id": "c-7", "channel": "web"},
        format="json",
    )
    assert opened.status_code == 201
    chat_id = opened.json()["recording_id"]
    for sender, text in [("customer", "My card number is SECRET-4111"), ("agent", "안녕하세요, 확인했습니다")]:
        added = system_client.post(
            f"/api/v1/recordings/chat/{chat_id}/messages",
            {"sender": sender, "text": text, "sent_at": "2026-11-30T10:00:00+09:00"},
            format="json",
        )
        assert added.status_code == 201

    assert system_client.post(f"/api/v1/recordings/chat/{chat_id}/close").status_code == 202
    recording = wait_until_settled(chat_id)

    assert recording.status == Status.STORED
    assert ChatMessage.objects.filter(recording_id=chat_id).count() == 0
    assert b"SECRET-4111" not in stored_bytes(any_store, recording)
    response, body = download(system_client, chat_id)
    assert response["Content-Type"] == "application/gzip"
    log = json.loads(gzip.decompress(body))
    assert [m["text"] for m in log["messages"]] == ["My card number is SECRET-4111", "안녕하세요, 확인했습니다"]
    assert log["customer_id"] == "c-7"
    assert system_client.post(f"/api/v1/recordings/chat/{chat_id}/close").status_code == 409


def test_each_download_is_audited(local_store, celery_worker, system_client, tmp_path):
    recording_id = start_voice(system_client)
    put_audio(system_client, recording_id, Path(encoded(tmp_path / "c.wav", "wav")).read_bytes())
    system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")
    wait_until_settled(recording_id)

    download(system_client, recording_id)

    event = AuditEvent.objects.get(action="recording_downloaded")
    assert event.target == f"recording:{recording_id}"
    assert event.actor.startswith("api-key:")


def test_a_file_that_only_looks_like_audio_fails_with_its_reason(local_store, celery_worker, system_client):
    recording_id = start_voice(system_client)
    put_audio(system_client, recording_id, b"RIFF\x00\x00\x00\x00WAVEthis is not audio at all" * 10)
    system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")

    recording = wait_until_settled(recording_id)

    assert recording.status == Status.FAILED
    assert "could not be decoded" in recording.failure_reason or "no audio" in recording.failure_reason
