"""A stored recording is counted on /metrics: how many, of which kind and format, and the bytes stored."""

from __future__ import annotations

from tests.recordings.audio_samples import encoded
from tests.recordings.helpers import put_audio, start_voice, wait_until_settled
from tests.scrape import scrape, value


def test_a_stored_recording_is_counted_with_its_bytes(
    local_store, celery_worker, system_client, client, settings, tmp_path
):
    # given the counts before
    before = scrape(client, settings)

    # when a WAV upload is stored losslessly by the worker
    recording_id = start_voice(system_client, quality="lossless")
    assert put_audio(system_client, recording_id, encoded(tmp_path / "call.wav", "wav").read_bytes()).status_code == 200
    assert system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop").status_code == 202
    recording = wait_until_settled(recording_id)
    assert recording.status == "stored"

    # then one more voice/flac recording, and its encrypted size, are on the scrape
    after = scrape(client, settings)
    counted = "aicc_recordings_stored_total"
    assert value(after, counted, kind="voice", format="flac") == value(before, counted, kind="voice", format="flac") + 1
    stored = "aicc_recordings_stored_bytes_total"
    grown = value(after, stored, kind="voice") - value(before, stored, kind="voice")
    assert grown == recording.stored_size_bytes > 0
