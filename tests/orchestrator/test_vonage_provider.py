"""The Vonage provider against the carrier simulator over real HTTP: the call it asks for, and how
each way the carrier can fail tells the engine whether the call may exist."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from incidents.services import open_incident
from orchestrator.models import CallAttempt
from orchestrator.voice import CallRequest, ProviderError, get_provider
from orchestrator.voice.vonage import VonageProvider
from simulator import CarrierSimulator
from tests import factories

pytestmark = pytest.mark.django_db

APPLICATION_ID = "5b6c7d8e-9f00-4a1b-8c2d-3e4f5a6b7c8d"
SIGNATURE_SECRET = "provider-test-signature-secret-0123456789abcdef"
PUBLIC_BASE_URL = "https://oncall.example.com"


def generate_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEY = generate_key()
PRIVATE_PEM = KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")
PUBLIC_PEM = KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


@pytest.fixture
def sim() -> Iterator[CarrierSimulator]:
    simulator = CarrierSimulator(
        "AC" + "2" * 32,
        "twilio-token",
        ring_seconds=0.05,
        step_seconds=0.01,
        api_timeout_seconds=2.0,
        vonage_application_id=APPLICATION_ID,
        vonage_public_key_pem=PUBLIC_PEM,
        vonage_signature_secret=SIGNATURE_SECRET,
    )
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def vonage_settings(settings, sim: CarrierSimulator) -> None:
    settings.VONAGE_APPLICATION_ID = APPLICATION_ID
    settings.VONAGE_PRIVATE_KEY = PRIVATE_PEM
    settings.VONAGE_FROM_NUMBER = "+821000000000"
    settings.VONAGE_API_BASE_URL = sim.base_url
    settings.PUBLIC_BASE_URL = PUBLIC_BASE_URL  # the simulator's callbacks to it fail and are only logged
    settings.PROVIDER_HTTP_TIMEOUT_SECONDS = 5


def call_request(last_digit: int, *, language: str = "ko-KR", tts_text: str = "서버 A 디스크 95%") -> CallRequest:
    """A real attempt (the provider reads what to say from it) for a number whose last digit picks
    the simulator's scenario."""
    factories.policy(factories.contact("Kim", last_digit, language=language), ring_timeout_seconds=25)
    incident = open_incident(summary="disk", tts_text=tts_text).incident
    attempt = CallAttempt.objects.select_related("contact").get(incident=incident)
    return CallRequest(to=attempt.to_number, token=attempt.token, ring_timeout_seconds=25, language=language)


def test_the_call_carries_an_inline_ncco_in_the_contacts_language(sim):
    request = call_request(4)  # busy: the simulator plays no NCCO

    call_uuid = get_provider("vonage").place_call(request)

    call = sim.wait_for_calls(1)[0]
    assert call.sid == call_uuid and call.carrier == "vonage" and call.api_status == 201
    assert call.to == request.to.removeprefix("+") and call.from_ == "821000000000"
    assert call.params["event_url"] == f"{PUBLIC_BASE_URL}/webhooks/vonage/event/{request.token}"
    assert call.params["event_method"] == "POST" and call.params["machine_detection"] == "continue"
    assert (call.params["ringing_timer"], call.params["length_timer"]) == ("25", "600")
    alert, listen = json.loads(call.params["ncco"])
    assert alert["action"] == "talk" and alert["language"] == "ko-KR" and alert["bargeIn"] is True
    assert alert["text"].startswith("서버 A 디스크 95%") and "확인하셨으면 1번" in alert["text"]
    assert listen["action"] == "input" and listen["type"] == ["dtmf"]
    assert listen["dtmf"] == {"maxDigits": 1, "timeOut": 6}
    assert listen["eventUrl"] == [f"{PUBLIC_BASE_URL}/webhooks/vonage/input/{request.token}?round=1"]
    sim.wait_until_idle()


def test_an_english_contact_and_an_over_long_alert(sim):
    request = call_request(4, language="en-US", tts_text="Disk almost full. " * 120)  # 2,160 characters

    get_provider("vonage").place_call(request)

    alert = json.loads(sim.wait_for_calls(1)[0].params["ncco"])[0]
    assert alert["language"] == "en-US" and alert["text"].endswith(
        "Press 1 to acknowledge, or 2 to pass this to the next person."
    )
    assert len(alert["text"]) <= 1500 and "…" in alert["text"]
    sim.wait_until_idle()


@pytest.mark.parametrize(
    "private_key",
    [
        PRIVATE_PEM.replace("\n", "\\n"),  # one line in a .env file
        KEY.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption()).decode("ascii"),  # PKCS#1
        "file",
    ],
    ids=["escaped-newlines", "pkcs1", "file-path"],
)
def test_the_private_key_is_read_as_the_simulator_reads_it(sim, settings, tmp_path, private_key):
    if private_key == "file":
        private_key = str(tmp_path / "private.key")
        (tmp_path / "private.key").write_text(PRIVATE_PEM)
    settings.VONAGE_PRIVATE_KEY = private_key

    assert get_provider("vonage").place_call(call_request(4))
    sim.wait_until_idle()


def test_one_client_per_configuration(settings):
    first, second = VonageProvider.from_settings(), VonageProvider.from_settings()
    settings.PROVIDER_HTTP_TIMEOUT_SECONDS = 0.2  # whole seconds for the SDK, and at least one

    other = VonageProvider.from_settings()

    assert first.client is second.client and other.client is not first.client and other.timeout == 1


def test_a_wrong_key_is_refused_with_a_definite_401(sim, settings):
    settings.VONAGE_PRIVATE_KEY = (
        generate_key().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    )

    with pytest.raises(ProviderError) as refused:
        get_provider("vonage").place_call(call_request(1))

    assert (refused.value.status, refused.value.ambiguous) == (401, False)
    assert "Unauthorized" in str(refused.value) and sim.calls == []


@pytest.mark.parametrize(("last_digit", "status"), [(7, 500), (8, 503)], ids=["api-error", "unavailable"])
def test_an_error_answer_is_definite(sim, last_digit, status):
    sim.api_timeout_seconds = 0.1  # the 503 comes back before our timeout

    with pytest.raises(ProviderError) as refused:
        get_provider("vonage").place_call(call_request(last_digit))

    assert (refused.value.status, refused.value.ambiguous) == (status, False)
    assert len(sim.calls) == 1 and sim.calls[0].sid is None


def test_a_number_vonage_rejects_is_a_definite_400(sim):
    request = call_request(4)

    with pytest.raises(ProviderError) as refused:
        VonageProvider.from_settings().place_call(CallRequest("+0123", request.token, 25, "ko-KR"))

    assert (refused.value.status, refused.value.ambiguous) == (400, False)


def test_a_read_timeout_is_ambiguous_and_the_post_is_sent_once(sim, settings):
    settings.PROVIDER_HTTP_TIMEOUT_SECONDS = 1  # the simulator holds the request for 2 s

    with pytest.raises(ProviderError) as timed_out:
        get_provider("vonage").place_call(call_request(8))

    assert timed_out.value.ambiguous and timed_out.value.status is None
    assert "may exist" in str(timed_out.value)
    assert len(sim.wait_for_calls(1)) == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_connection_is_definite(settings):
    settings.VONAGE_API_BASE_URL = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(ProviderError) as unreachable:
        get_provider("vonage").place_call(call_request(1))

    assert not unreachable.value.ambiguous and unreachable.value.status is None
    assert "unreachable" in str(unreachable.value)


def test_a_connection_dropped_after_the_request_is_ambiguous_and_never_resent(settings):
    """A carrier that reads the whole request and hangs up: it may have placed the call, so the SDK
    must not send it again (it would, pool_maxsize times, on RemoteDisconnected)."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def read_then_hang_up() -> None:
        listener.settimeout(5)
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                received.append(connection.recv(65536))

    threading.Thread(target=read_then_hang_up, daemon=True).start()
    settings.VONAGE_API_BASE_URL = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with pytest.raises(ProviderError) as dropped:
            get_provider("vonage").place_call(call_request(1))
    finally:
        listener.close()

    assert dropped.value.ambiguous and dropped.value.status is None
    assert len(received) == 1 and received[0].startswith(b"POST /v1/calls ")


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("VONAGE_APPLICATION_ID", "", "Vonage is not configured"),
        (
            "VONAGE_PRIVATE_KEY",
            "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----",
            "VONAGE_PRIVATE_KEY",
        ),
        ("VONAGE_API_BASE_URL", "api.nexmo.com", "VONAGE_API_BASE_URL"),
    ],
)
def test_a_configuration_error_is_definite_and_says_what_to_fix(settings, setting, value, message):
    setattr(settings, setting, value)

    with pytest.raises(ProviderError, match=message) as refused:
        get_provider("vonage")

    assert not refused.value.ambiguous
