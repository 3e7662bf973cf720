"""In a real browser (Debian's Chromium through Playwright): an ADMIN opens a stored call recording in
the admin, plays it in the page's player (the audio is decrypted as it streams, and the listen is
audited), and places it on legal hold with the list's action. The screenshot goes to
/tmp/shots/admin_recording.png; on a failure the page is saved under var/test-output/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import AuditAction, AuditEvent
from recordings import services
from recordings.models import Recording
from tests.browser.test_admin_incidents import CHROMIUM, admin_signed_in, shoot
from tests.recordings.audio_samples import encoded
from tests.recordings.conftest import local_store, recording_keys  # noqa: F401 (fixtures)
from tests.recordings.helpers import put_audio, start_voice

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")


@pytest.mark.usefixtures("local_store")
def test_an_admin_plays_a_recording_and_places_it_on_legal_hold(live_server, settings, system_client, tmp_path):
    # given: plain-http cookies for the live server, an ADMIN, and a stored 2-second call recording
    recording_id = start_voice(system_client, quality="high")
    put_audio(system_client, recording_id, encoded(tmp_path / "call.wav", "wav", 2).read_bytes())
    system_client.post(f"/api/v1/recordings/voice/{recording_id}/stop")
    services.process(recording_id)

    with admin_signed_in("admin_recording", live_server, settings) as page:
        # when: the ADMIN (signed in) opens the recording's page from the list
        page.goto(f"{live_server.url}/admin/recordings/recording/")
        page.get_by_role("link", name=str(recording_id), exact=True).click()

        # then: the player loads the decrypted audio and knows its length
        player = page.locator(f"audio[data-recording='{recording_id}']")
        expect(player).to_be_visible()
        duration = page.evaluate(
            """(selector) => new Promise((resolve, reject) => {
                const audio = document.querySelector(selector);
                audio.addEventListener('loadedmetadata', () => resolve(audio.duration));
                audio.addEventListener('error', () => reject(new Error('audio error ' + audio.error.code)));
                audio.load();
            })""",
            f"audio[data-recording='{recording_id}']",
        )
        assert duration == pytest.approx(2.0, abs=0.15)
        expect(page.get_by_text("Every play is written to the audit log.")).to_be_visible()
        shoot(page, "admin_recording")

        # when: back on the list, the ADMIN places it on legal hold
        page.goto(f"{live_server.url}/admin/recordings/recording/")
        page.check(f"input[name=_selected_action][value='{recording_id}']")
        page.select_option("select[name=action]", "place_legal_hold")
        page.click("button[name=index]")

        # then: the page says so, and the recording is held
        expect(page.locator(".messagelist")).to_contain_text(f"#{recording_id} is on legal hold")
        shoot(page, "admin_recordings_held")

    assert Recording.objects.get(pk=recording_id).legal_hold is True
    listens = AuditEvent.objects.filter(action=AuditAction.RECORDING_DOWNLOADED, target=f"recording:{recording_id}")
    assert listens.exists()
    assert all(event.data["via"] == "player" and event.actor == "user:officer" for event in listens)
    assert AuditEvent.objects.filter(action=AuditAction.RECORDING_CHANGED, actor="user:officer").count() == 1
