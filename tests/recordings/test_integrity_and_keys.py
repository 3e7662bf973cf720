"""A damaged object is never served as audio; rotated keys keep old recordings readable."""

from __future__ import annotations

import base64
import io

import pytest
from django.core.management import call_command

from recordings import services
from recordings.models import Recording, Status
from recordings.storage import get_storage
from tests.recordings.audio_samples import encoded
from tests.recordings.helpers import download, put_audio, start_voice


@pytest.fixture
def stored_recording(system_client, tmp_path):
    """A lossless voice recording processed as the worker does it (services.process)."""

    def _make(seconds: float = 20) -> Recording:
        recording_id = start_voice(system_client, quality="lossless")
        sample = encoded(tmp_path / "c.wav", "wav", seconds).read_bytes()
        assert put_audio(system_client, recording_id, sample).status_code == 200
        assert system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop").status_code == 202
        services.process(recording_id)
        recording = Recording.objects.get(pk=recording_id)
        assert recording.status == Status.STORED
        return recording

    return _make


def rewrite(recording: Recording, damage) -> None:
    store = get_storage()
    sealed = store.open(recording.storage_key).read()
    store.put(recording.storage_key, io.BytesIO(damage(sealed)))


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:50000] + bytes([b[50000] ^ 0x01]) + b[50001:], id="flipped byte"),
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b[: 18 + 65536 + 16], id="cut at a chunk boundary"),
    ],
)
def test_a_damaged_object_makes_the_download_fail_clearly_and_sends_no_audio(
    any_store, stored_recording, system_client, damage
):
    # given: a stored recording whose object was altered in the store
    recording = stored_recording()
    rewrite(recording, damage)

    # when: it is downloaded, whole or by range
    whole, body = download(system_client, recording.pk)
    ranged, ranged_body = download(system_client, recording.pk, HTTP_RANGE="bytes=0-100")

    # then: a clear error, no audio bytes
    for response, sent in ((whole, body), (ranged, ranged_body)):
        assert response.status_code == 502
        error = response.json()["error"]
        assert error["code"] == "recording_corrupted"
        assert "failed its integrity check and was not sent" in error["message"]
        assert b"fLaC" not in sent


def test_rotating_the_master_key_keeps_old_recordings_readable_and_rewrap_moves_them(
    local_store, stored_recording, system_client, settings
):
    # given: a recording stored under the newest key of the test ring, and its object's bytes
    old = stored_recording()
    old_key_id = old.key_id
    object_before = get_storage().open(old.storage_key).read()
    _, audio_before = download(system_client, old.pk)

    # when: a new master key is put first in the ring
    new_key = "2027:" + base64.b64encode(b"n" * 32).decode()
    settings.RECORDINGS_MASTER_KEYS = f"{new_key},{settings.RECORDINGS_MASTER_KEYS}"
    # then: the old recording still downloads, and a new one is wrapped by the new key
    assert download(system_client, old.pk)[1] == audio_before
    assert stored_recording(seconds=2).key_id == "2027"

    # when: the data keys are re-wrapped and the old master key retired
    out = io.StringIO()
    call_command("rewrap_recording_keys", stdout=out)
    settings.RECORDINGS_MASTER_KEYS = new_key

    # then: the old recording is under the new key, its object untouched, its audio the same
    old.refresh_from_db()
    assert old_key_id != "2027" and old.key_id == "2027"
    assert "re-wrapped under key '2027'" in out.getvalue()
    assert get_storage().open(old.storage_key).read() == object_before
    assert download(system_client, old.pk)[1] == audio_before
