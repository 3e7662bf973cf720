"""A worker behind an outbound proxy: the carrier's client reads HTTP(S)_PROXY and NO_PROXY once,
when it is built, and every call it places goes through that proxy."""

from __future__ import annotations

import json

from orchestrator.voice import get_provider
from orchestrator.voice.base import CallRequest
from tests.orchestrator import test_carrier_failures
from tests.orchestrator.test_carrier_failures import BrokenCarrier

twilio_at = test_carrier_failures.twilio_at  # the fixture that points the Twilio client at a local server

CALL = {"sid": "CA" + "7" * 32, "status": "queued"}
CREATED = (
    b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    % (len(json.dumps(CALL)), json.dumps(CALL).encode())
)
REQUEST = CallRequest(to="+821012345678", token="p" * 32, ring_timeout_seconds=20, language="ko-KR")


def test_calls_go_through_the_proxy_the_environment_names(twilio_at, monkeypatch):
    # given an outbound proxy in the worker's environment, and a carrier reachable only through it
    with BrokenCarrier(reply=CREATED) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        twilio_at("http://carrier-behind-proxy.invalid")

        # when two calls are placed
        first = get_provider("twilio").place_call(REQUEST)
        second = get_provider("twilio").place_call(REQUEST)

    # then both went to the proxy, asking it for the carrier's own URL
    assert first == second == CALL["sid"]
    assert len(proxy.request_lines) == 2
    assert all(
        line.startswith("POST http://carrier-behind-proxy.invalid/2010-04-01/Accounts/") for line in proxy.request_lines
    )


def test_no_proxy_sends_the_carrier_calls_direct(twilio_at, monkeypatch):
    # given a proxy that the carrier's host is excluded from
    with BrokenCarrier(reply=CREATED) as carrier:
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        twilio_at(carrier.url + "/")  # a URL of its own: a client of its own

        # when a call is placed
        placed = get_provider("twilio").place_call(REQUEST)

    # then it went straight to the carrier
    assert placed == CALL["sid"]
    assert carrier.request_lines[0].startswith("POST /2010-04-01/Accounts/")
