"""Whatever an alert's text holds, the call still works: the TwiML we serve Twilio is XML, and the
NCCO we give Vonage is JSON with the same cleaned text (no escape codes, no control characters)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from twilio.request_validator import RequestValidator

from incidents.services import open_incident
from orchestrator.models import CallAttempt
from orchestrator.selectors import call_script
from orchestrator.voice.vonage import message_ncco
from tests import factories

pytestmark = pytest.mark.django_db

AUTH_TOKEN = "spoken-text-token"
BASE = "https://oncall.example.com"

# (what the alert says, what the callee must hear of it)
NASTY_TEXTS = [
    ("\x1b[31mCPU 95%\x1b[0m on web-1", "CPU 95% on web-1"),
    ("\x1b[1;33;41mdisk full\x1b[K\x1b[2J", "disk full"),
    ("\x1b]0;window title\x07database down", "database down"),
    ("bell\x07 and backspace\x08 here", "bell and backspace here"),
    ("form\x0cfeed and vertical\x0btab", "form feed and vertical tab"),
    ("reversed BOM \ufffe and \uffff end", "reversed BOM and end"),
    ("C1 next line\x85and CSI \x9b31mred", "C1 next line and CSI red"),
    ("DEL\x7f and escape alone \x1b", "DEL and escape alone"),
    ("plane one \U0001fffe nonchar \ufdd0 here", "plane one nonchar here"),
    ('서버 A \x1b[31m다운\x1b[0m ]]> <Say> & "quotes"', '서버 A 다운 ]]> <Say> & "quotes"'),
]
# What XML 1.0 refuses, plus the C1 controls and noncharacters that speech would stumble on.
UNSPEAKABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff\U0001fffe]")


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = BASE


@pytest.fixture
def policy():
    return factories.policy(factories.contact("Kim"), message_repeats=2)


def attempt_saying(text: str) -> CallAttempt:
    # open_incident is the service every source ends in; stored text may predate ingestion cleaning
    incident = open_incident(summary="nasty text", tts_text=text).incident
    return CallAttempt.objects.get(incident=incident)


def twiml_for(client, attempt: CallAttempt) -> bytes:
    path = f"/webhooks/twilio/voice/{attempt.token}"
    params = {"CallSid": "CA" + "0" * 32, "CallStatus": "in-progress"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{BASE}{path}", params)
    response = client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 200
    return response.content


@pytest.mark.parametrize(("text", "heard"), NASTY_TEXTS)
def test_the_twiml_for_nasty_alert_text_is_xml_and_speaks_the_cleaned_text(client, policy, text, heard):
    # given: an incident whose spoken text holds escape codes, control characters or noncharacters
    attempt = attempt_saying(text)

    # when: Twilio fetches the call's TwiML
    twiml = twiml_for(client, attempt)

    # then: it parses as XML, and the alert is spoken cleaned
    document = ET.fromstring(twiml)  # noqa: S314 (our own TwiML); raises ParseError on invalid XML
    spoken = " ".join(say.text or "" for say in document.iter("Say"))
    assert heard in spoken
    assert not UNSPEAKABLE.search(spoken)


@pytest.mark.parametrize(("text", "heard"), NASTY_TEXTS)
def test_the_vonage_ncco_for_nasty_alert_text_is_json_with_the_cleaned_text(policy, text, heard):
    attempt = attempt_saying(text)

    ncco = message_ncco(attempt.token, call_script(attempt.token), round_number=1)

    sent = json.dumps(ncco, ensure_ascii=False).encode("utf-8")  # what goes on the wire; no lone surrogate
    talk = json.loads(sent)[0]
    assert talk["action"] == "talk"
    assert heard in talk["text"]
    assert not UNSPEAKABLE.search(talk["text"])
