"""The simulator lists calls as the carriers do, so the engine can ask whether a call exists: Twilio's
GET Calls.json (filters, newest first, pages the SDK follows) and Vonage's GET /v1/calls (time
filter, order, record_index pages). The official SDKs read both; our providers' `calls_to` on top."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from twilio.base.exceptions import TwilioException
from twilio.rest import Client
from vonage_voice import CreateCallRequest, ListCallsFilter, Talk

from orchestrator.voice import ProviderError
from orchestrator.voice.twilio import TwilioProvider
from orchestrator.voice.vonage import VonageProvider, _client
from simulator import CarrierSimulator

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "list-test-token"
FROM = "+821000000000"
APPLICATION_ID = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_PEM = KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")
PUBLIC_PEM = KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")
NOWHERE = "http://127.0.0.1:9"  # no webhook server: a busy callee never needs one


@pytest.fixture
def sim() -> Iterator[CarrierSimulator]:
    simulator = CarrierSimulator(
        ACCOUNT_SID,
        AUTH_TOKEN,
        ring_seconds=0.05,
        step_seconds=0.01,
        vonage_application_id=APPLICATION_ID,
        vonage_public_key_pem=PUBLIC_PEM,
        vonage_signature_secret="list-test-signature-secret-0123456789abcdef",
    )
    simulator.start()
    yield simulator
    simulator.stop()


def twilio(sim: CarrierSimulator) -> Client:
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = sim.base_url
    return client


def vonage(sim: CarrierSimulator) -> VonageProvider:
    return VonageProvider(
        application_id=APPLICATION_ID, private_key=PRIVATE_PEM, from_number=FROM, base_url=sim.base_url, timeout=5
    )


def twilio_call(sim: CarrierSimulator, to: str) -> str:
    return twilio(sim).calls.create(to=to, from_=FROM, url=f"{NOWHERE}/twiml").sid


def vonage_call(sim: CarrierSimulator, to: str) -> str:
    request = CreateCallRequest(
        to=[{"type": "phone", "number": to.lstrip("+")}],
        from_={"type": "phone", "number": FROM.lstrip("+")},
        ncco=[Talk(text="장애", language="ko-KR")],
        event_url=[f"{NOWHERE}/event"],
    )
    return _client(APPLICATION_ID, PRIVATE_PEM, sim.base_url, 5).create_call(request).uuid


def test_twilio_lists_calls_newest_first_filtered_by_number_across_pages(sim):
    # given three calls to one busy number and one to another
    first, second = twilio_call(sim, "+821012340004"), twilio_call(sim, "+821012340004")
    twilio_call(sim, "+821099990004")
    time.sleep(0.01)
    third = twilio_call(sim, "+821012340004")

    # when the SDK lists the number's calls two per page
    listed = twilio(sim).calls.list(to="+821012340004", from_=FROM, page_size=2)

    # then it follows the pages and gets exactly those calls, newest first
    assert [call.sid for call in listed] == [third, second, first]
    assert all(call.to == "+821012340004" and call.date_created is not None for call in listed)


def test_twilio_lists_nothing_for_a_number_never_called_and_refuses_a_wrong_token(sim):
    twilio_call(sim, "+821012340004")
    assert twilio(sim).calls.list(to="+821055550004") == []
    wrong = Client(ACCOUNT_SID, "not-the-token")
    wrong.api.base_url = sim.base_url
    with pytest.raises(TwilioException, match="401"):
        wrong.calls.list()
    stranger = TwilioProvider(
        account_sid=ACCOUNT_SID, auth_token="not-the-token", from_number=FROM, base_url=sim.base_url, timeout=5
    )
    with pytest.raises(ProviderError, match="Twilio refused to list its calls"):
        stranger.calls_to("+821012340004", datetime.now(UTC))


def test_our_twilio_provider_finds_only_the_calls_since_the_moment_it_asks_about(sim):
    provider = TwilioProvider(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=FROM, base_url=sim.base_url, timeout=5
    )
    old = twilio_call(sim, "+821012340004")
    assert [call.call_id for call in provider.calls_to("+821012340004", datetime.now(UTC) - timedelta(minutes=1))] == [
        old
    ]
    assert provider.calls_to("+821012340004", datetime.now(UTC) + timedelta(minutes=1)) == []


def test_vonage_lists_calls_after_date_start_in_pages_and_newest_first(sim):
    # given calls to Vonage numbers, one of them before the moment we ask from
    before = vonage_call(sim, "821012340004")
    time.sleep(1.1)
    since = datetime.now(UTC)
    later = [vonage_call(sim, "821012340004") for _ in range(3)]

    # when the SDK lists from that moment, two per page, newest first
    voice = _client(APPLICATION_ID, PRIVATE_PEM, sim.base_url, 5)
    start = (since - timedelta(seconds=0.5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    page, more = voice.list_calls(ListCallsFilter(date_start=start, page_size=2, order="desc", record_index=0))
    rest, _ = voice.list_calls(ListCallsFilter(date_start=start, page_size=2, order="desc", record_index=2))

    # then the earlier call is left out and the others come newest first over two pages
    assert [call.uuid for call in page + rest] == list(reversed(later))
    assert more is not None and before not in [call.uuid for call in page + rest]
    assert page[0].to.number == "821012340004"


def test_vonage_refuses_a_page_size_it_does_not_serve_naming_the_field(sim):
    headers = vonage(sim).media_headers(f"{sim.base_url}/v1/calls")
    answer = requests.get(f"{sim.base_url}/v1/calls", params={"page_size": "0"}, headers=headers, timeout=5)
    assert answer.status_code == 400 and answer.json()["invalid_parameters"][0]["name"] == "page_size"
    unsigned = requests.get(f"{sim.base_url}/v1/calls", timeout=5)
    assert unsigned.status_code == 401


def test_our_vonage_provider_matches_the_number_itself_since_vonage_cannot_filter_by_it(sim):
    ours = vonage_call(sim, "821012340004")
    vonage_call(sim, "821099990004")
    found = vonage(sim).calls_to("+821012340004", datetime.now(UTC) - timedelta(minutes=1))
    assert [call.call_id for call in found] == [ours]
