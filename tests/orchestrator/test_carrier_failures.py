"""Carriers that fail in the ways real networks fail, served by a local socket at the network
boundary: a connection dropped after our request was sent, and a 201 whose body is not JSON."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from config.redis import redis_client
from incidents.models import EventKind
from incidents.services import open_incident
from orchestrator import dialing
from orchestrator.models import AttemptStatus, CallAttempt
from orchestrator.voice import ProviderError, breaker
from orchestrator.voice.base import CallRequest
from tests import factories
from tests.conftest import SIMULATED_ACCOUNT_SID

pytestmark = pytest.mark.django_db


class BrokenCarrier:
    """Reads each request whole, then either hangs up without a word or answers `reply`."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.requests = 0
        self.request_lines: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += connection.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                while len(body) < length:
                    body += connection.recv(65536)
                self.requests += 1
                self.request_lines.append(head.split(b"\r\n")[0].decode())
                if self.reply is not None:
                    connection.sendall(self.reply)

    def __enter__(self) -> BrokenCarrier:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.close()


@pytest.fixture
def twilio_at(settings) -> Iterator:
    def point(url: str) -> None:
        settings.VOICE_PROVIDER = "twilio"
        settings.VOICE_FAILOVER_PROVIDER = ""
        settings.TWILIO_ACCOUNT_SID = SIMULATED_ACCOUNT_SID
        settings.TWILIO_AUTH_TOKEN = "token"
        settings.TWILIO_FROM_NUMBER = "+821000000000"
        settings.TWILIO_API_BASE_URL = url
        settings.PROVIDER_HTTP_TIMEOUT_SECONDS = 3.0

    redis_client().delete(*breaker._keys("twilio"))
    yield point
    redis_client().delete(*breaker._keys("twilio"))


REQUEST = CallRequest(to="+821012345678", token="t" * 32, ring_timeout_seconds=20, language="ko-KR")
NOT_JSON_201 = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{not json"


def test_a_twilio_connection_dropped_after_the_request_was_sent_is_ambiguous(twilio_at):
    # given Twilio reads our request and drops the connection without an answer
    with BrokenCarrier(reply=None) as carrier:
        twilio_at(carrier.url)
        from orchestrator.voice import get_provider

        # when a call is placed
        with pytest.raises(ProviderError) as raised:
            get_provider("twilio").place_call(REQUEST)

    # then the call may exist: the same rule as Vonage, never "no call was placed"
    assert carrier.requests == 1
    assert raised.value.ambiguous is True
    assert "the call may exist" in str(raised.value)


def test_twilio_unreachable_is_not_ambiguous(twilio_at):
    from tests.embedded_services import free_port

    twilio_at(f"http://127.0.0.1:{free_port()}")
    from orchestrator.voice import get_provider

    with pytest.raises(ProviderError) as raised:
        get_provider("twilio").place_call(REQUEST)

    assert raised.value.ambiguous is False and "unreachable" in str(raised.value)


def test_an_unexpected_sdk_exception_is_recorded_on_the_attempt_the_timeline_and_the_breaker(twilio_at):
    # given a carrier that answers 201 with a body its SDK cannot read
    factories.policy(factories.contact("Kim"), factories.contact("Lee"))
    incident = open_incident(summary="결제 장애").incident
    attempt = CallAttempt.objects.get(incident=incident, step=1)
    with BrokenCarrier(reply=NOT_JSON_201) as carrier:
        twilio_at(carrier.url)

        # when the dial runs
        dialing.dial(attempt.pk)

    # then the failure is on the attempt and in the timeline, counted by the breaker, and the call
    # (which may exist) is left to its deadline rather than placed again
    attempt = CallAttempt.objects.get(pk=attempt.pk)
    assert attempt.status == AttemptStatus.DIALING
    assert "unexpected" in attempt.error and "the call may exist" in attempt.error
    failures = incident.events.filter(kind=EventKind.DIAL_FAILED).values_list("message", flat=True)
    assert any("unexpected" in message for message in failures)
    assert any("waiting for the deadline" in message for message in failures)
    assert int(redis_client().get(breaker._keys("twilio")[0])) == 1
    assert incident.attempts.count() == 1
